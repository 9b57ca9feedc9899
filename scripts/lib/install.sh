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

