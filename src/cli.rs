//! The command line, with clap derive: the doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::audio::Quality;
use crate::genre::GenreFrom;
use crate::push::plan::DeleteCap;

const EXIT_CODES: &str = "\
Exit codes:
  0    everything done
  1    some files failed (each named on stderr); the rest were done
  2    bad arguments, settings or config file; nothing was started
  3    refused by a safety guard (library unmounted, staging locked by another run); nothing changed
  4    rclone or the remote failed (rclone missing or too old, host unreachable, auth, disk full)
  5    a local failure stopped the run (staging not writable, local disk full, an I/O error)
  130  interrupted (Ctrl-C): the files in flight were finished and saved; run again to continue";

/// Keep a lossy MP3 mirror of a lossless music library, without ever losing a file.
#[derive(Parser, Debug)]
#[command(version, about, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log more (-v: each action, -vv: debugging detail) to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Also append a timestamped line per action, failure and run summary to FILE (plain
    /// text, whatever -q or -v say).
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// Colour in stderr's messages: auto (when stderr is a terminal and NO_COLOR is unset),
    /// always or never.
    #[arg(long, global = true, value_name = "WHEN", value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,

    /// The config file whose settings are the flags' defaults
    /// [default: $XDG_CONFIG_HOME/musync/config.toml, if it exists].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Use the settings of `[profile.NAME]` in the config file over its top level.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

impl Cli {
    /// What logging needs of the command line.
    pub fn log_options(&self) -> crate::report::LogOptions {
        use crate::report::ColorChoice;
        crate::report::LogOptions {
            quiet: self.quiet,
            verbose: self.verbose,
            log_file: self.log_file.clone(),
            color: match self.color {
                ColorArg::Auto => ColorChoice::Auto,
                ColorArg::Always => ColorChoice::Always,
                ColorArg::Never => ColorChoice::Never,
            },
        }
    }
}

/// The remote a `--remote` that may be given without a value names: `None` without one (or with
/// `--offline`); an error for a bare `--remote` when no config file names a remote.
pub fn optional_remote(
    remote: Option<Option<String>>,
    offline: bool,
) -> anyhow::Result<Option<String>> {
    match remote {
        _ if offline => Ok(None),
        Some(None) => anyhow::bail!(
            "--remote without a value means the config file's remote, and none is set: give \
             --remote REMOTE, or add `remote = ...` to the config file (musync init)"
        ),
        Some(Some(remote)) => Ok(Some(remote)),
        None => Ok(None),
    }
}

/// Parse `args` with the config file's values as the flags' defaults: a flag given wins.
pub fn parse(args: Vec<std::ffi::OsString>, defaults: &crate::config::Defaults) -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let command = with_defaults(Cli::command(), defaults);
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `command` and its subcommands, each argument whose id has a config value defaulting to it.
fn with_defaults(mut command: clap::Command, defaults: &crate::config::Defaults) -> clap::Command {
    for (id, values) in &defaults.args {
        if command.get_arguments().any(|a| a.get_id() == *id) {
            command = command.mut_arg(*id, |a| {
                // `--remote` with no value (status, verify) means the config file's remote.
                let optional_value = a.get_num_args().is_some_and(|n| n.min_values() == 0);
                let a = a.default_values(values.clone()).required(false);
                if optional_value {
                    a.default_missing_values(values.clone())
                } else {
                    a
                }
            });
        }
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, |c| with_defaults(c, defaults));
    }
    command
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert the library's lossless files into MP3s in the staging folder, mirroring its layout.
    #[command(after_help = EXIT_CODES)]
    Convert(ConvertArgs),
    /// Set the staged files' genre from the library's folder names (and other tag changes).
    #[command(after_help = EXIT_CODES)]
    Tag(TagArgs),
    /// Bring a remote (anything rclone reaches) to the staged mirror, with the real rclone.
    #[command(after_help = EXIT_CODES)]
    Push(PushArgs),
    /// Convert, tag and push in one go: the command to run after ripping CDs.
    #[command(after_help = EXIT_CODES)]
    Sync(SyncArgs),
    /// Keep the library in step with another copy of it (a NAS, a second machine), both ways:
    /// new and changed files go across, renames become moves, deletions go across when the
    /// other side did not change the file, conflicts are settled by --conflict. Every file
    /// overwritten or deleted is first moved into .musync-backups/<UTC time>/ on its side.
    ///
    /// The previous listings of each library and peer, and the library's lock, are kept outside
    /// the library, in $XDG_STATE_HOME/musync/libsync/ (else ~/.local/state/musync/libsync/):
    /// an empty or missing side that held files at the last bisync (an unmounted disk) is
    /// refused; a peer that does not exist on a first run is refused too (exit 2).
    #[command(after_help = EXIT_CODES)]
    Bisync(BisyncArgs),
    /// Make the library follow a share, one way: new and changed files are fetched, renames
    /// replayed as local moves, files fetched before and gone from the share removed (into
    /// .musync-backups/); local files the share never had stay unless --delete-extras.
    ///
    /// The previous listings and the library's lock are kept outside the library, in
    /// $XDG_STATE_HOME/musync/libsync/ (else ~/.local/state/musync/libsync/): an empty or
    /// missing library or share that held files at the last pull is refused.
    #[command(after_help = EXIT_CODES)]
    Pull(PullArgs),
    /// Write a commented config file from the flags given, and check the library, rclone and
    /// the remote it names.
    #[command(after_help = EXIT_CODES)]
    Init(InitArgs),
    /// Delete the remote's backup folders older than an age.
    #[command(after_help = EXIT_CODES)]
    PruneBackups(PruneArgs),
    /// Check the staged mirror (and a remote) against musync's records: every staged file is
    /// hashed again; missing, changed and unknown files are named. Writes nothing.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
    /// Show what convert, tag and push would do now, without doing or writing anything.
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),
    /// Print a shell completion script on stdout, e.g. `musync completions bash >
    /// ~/.local/share/bash-completion/completions/musync`.
    #[command(after_help = EXIT_CODES)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout, e.g. `musync man | man -l -`; with --dir, write
    /// musync.1 and a page per subcommand (musync-convert.1…) there.
    #[command(after_help = EXIT_CODES)]
    Man(ManArgs),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The music library to write into the config.
    #[arg(long, value_name = "DIR")]
    pub library: Option<PathBuf>,

    /// The staging folder to write into the config.
    #[arg(long, value_name = "DIR")]
    pub staging: Option<PathBuf>,

    /// The remote to write into the config (and check).
    #[arg(long, value_name = "REMOTE")]
    pub remote: Option<String>,

    /// Replace an existing config file.
    #[arg(long)]
    pub force: bool,
}

/// Where and how to push.
#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// The remote, as rclone names it: `nas:music` (from your rclone config), `/mnt/usb/music`,
    /// an sftp/smb/webdav remote.
    #[arg(long, value_name = "REMOTE")]
    pub remote: String,

    #[command(flatten)]
    pub policy: PushPolicy,

    /// Does nothing: kept so that old scripts still run. The lock is the kernel's now, and
    /// ends with the run that holds it, so there is never one to break.
    #[arg(long, hide = true)]
    pub break_lock: bool,

    #[command(flatten)]
    pub subsonic: SubsonicArgs,
}

/// What a push may overwrite and delete; shared by `push`, `sync` and `status`.
#[derive(Args, Debug)]
pub struct PushPolicy {
    /// Refuse a push that would delete more than N files, or N% of the files musync manages on
    /// the remote.
    #[arg(long, value_name = "N|N%", default_value = "50%")]
    pub max_delete: DeleteCap,

    /// Overwrite and delete without moving the old files into the remote's .musync-backups/.
    #[arg(long)]
    pub no_backup: bool,

    /// Also delete remote files musync did not put there (playlists, other people's files).
    #[arg(long)]
    pub delete_foreign: bool,
}

/// The Subsonic server to ask for a rescan after the push.
#[derive(Args, Debug)]
pub struct SubsonicArgs {
    /// After the push, ask this Subsonic server (Navidrome, gonic, supysonic…) to rescan, e.g.
    /// http://nas:4533; the password comes from MUSYNC_SUBSONIC_PASSWORD or
    /// --subsonic-password-file, never from the command line.
    #[arg(long, value_name = "URL", requires = "subsonic_user")]
    pub subsonic_url: Option<String>,

    /// The Subsonic user that asks for the rescan (an admin: starting a scan needs one).
    #[arg(long, value_name = "USER", requires = "subsonic_url")]
    pub subsonic_user: Option<String>,

    /// A file whose first line is the Subsonic password (MUSYNC_SUBSONIC_PASSWORD wins).
    #[arg(long, value_name = "FILE", requires = "subsonic_url")]
    pub subsonic_password_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    pub common: Common,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    pub convert: ConvertArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,

    #[command(flatten)]
    pub peer: SyncPeerArgs,
}

/// `sync` with a peer: a bisync before convert. The options are bisync's, named `--peer-…`
/// where convert or push has one of that name; the config file's `peer` and `[bisync]` set
/// them as they do for `musync bisync`.
#[derive(Args, Debug)]
pub struct SyncPeerArgs {
    /// First bisync the library with this other copy of it (as `musync bisync --peer`), so that
    /// a CD ripped on either side is converted and pushed in the same run. A bisync that is
    /// refused or fails stops the sync before convert.
    #[arg(long, value_name = "REMOTE")]
    pub peer: Option<String>,

    /// With --peer: bisync's --compare.
    #[arg(long, value_name = "HOW", value_enum, default_value_t = CompareArg::Mtime)]
    pub compare: CompareArg,

    /// With --peer: bisync's --renames.
    #[arg(long, value_name = "HOW", value_enum, default_value_t = RenamesArg::Mtime)]
    pub renames: RenamesArg,

    /// With --peer: bisync's --conflict.
    #[arg(long, value_name = "WINNER", value_enum, default_value_t = ConflictArg::Newer)]
    pub conflict: ConflictArg,

    /// With --peer: bisync's --max-delete.
    #[arg(
        long = "peer-max-delete",
        id = "bisync_max_delete",
        value_name = "N|N%",
        default_value = "50%"
    )]
    pub max_delete: DeleteCap,

    /// With --peer: bisync's --no-backup.
    #[arg(long = "peer-no-backup", id = "bisync_no_backup")]
    pub no_backup: bool,

    /// With --peer: bisync's --include (repeatable).
    #[arg(long = "peer-include", id = "bisync_include", value_name = "GLOB")]
    pub include: Vec<String>,

    /// With --peer: bisync's --exclude (repeatable).
    #[arg(long = "peer-exclude", id = "bisync_exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
}

impl From<CompareArg> for crate::libsync::Compare {
    fn from(arg: CompareArg) -> Self {
        match arg {
            CompareArg::Size => Self::Size,
            CompareArg::Mtime => Self::Mtime,
            CompareArg::Hash => Self::Hash,
        }
    }
}

impl From<RenamesArg> for crate::libsync::Renames {
    fn from(arg: RenamesArg) -> Self {
        match arg {
            RenamesArg::None => Self::None,
            RenamesArg::Size => Self::Size,
            RenamesArg::Mtime => Self::Mtime,
            RenamesArg::Hash => Self::Hash,
        }
    }
}

impl From<ConflictArg> for crate::libsync::ConflictMode {
    fn from(arg: ConflictArg) -> Self {
        match arg {
            ConflictArg::Library => Self::Library,
            ConflictArg::Peer => Self::Peer,
            ConflictArg::Newer => Self::Newer,
            ConflictArg::Older => Self::Older,
            ConflictArg::KeepBoth => Self::KeepBoth,
        }
    }
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// The remote whose backups to prune.
    #[arg(long, value_name = "REMOTE")]
    pub remote: String,

    /// Age of the backups to delete: a number with min, h, d, w, mo (30 days) or y (365 days),
    /// e.g. 30d or 6mo. A bare m is refused as ambiguous.
    #[arg(long, value_name = "AGE")]
    pub older_than: String,

    /// Print what would be deleted and delete nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

/// Where to read and write, and how to report; shared by every stage.
#[derive(Args, Debug)]
pub struct Common {
    /// The music library (read only, never written to).
    #[arg(long, value_name = "DIR")]
    pub library: PathBuf,

    /// Where the MP3 mirror is built (musync keeps its manifest in DIR/.musync).
    #[arg(long, value_name = "DIR")]
    pub staging: PathBuf,

    /// Files worked on at once [default: the number of cores].
    #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Print what would be done, one line per action, and change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Print one JSON object with the results on stdout.
    #[arg(long)]
    pub json: bool,

    /// When another musync run is changing the staging folder, wait for it to end instead of
    /// refusing (exit code 3).
    #[arg(long)]
    pub wait: bool,
}

/// The genre rules. Each one given is remembered for later runs of every stage.
#[derive(Args, Debug)]
pub struct GenreArgs {
    /// Which folder names the genre: top (first folder under the library), parent (the
    /// file's folder, disc folders skipped), path (the whole folder path) or level:N
    /// [default: top].
    #[arg(long, value_name = "RULE")]
    pub genre_from: Option<GenreFrom>,

    /// always: the folder is the truth; if-missing: keep a genre the file already has
    /// [default: always].
    #[arg(long, value_name = "POLICY", value_enum)]
    pub genre_policy: Option<PolicyArg>,

    /// FOLDER-GLOB=GENRE, wins over the rule (repeatable; matched against the folder path,
    /// e.g. 'Soundtracks/**=Soundtrack'). Given once with an empty value ("") clears the table.
    #[arg(long, value_name = "GLOB=GENRE")]
    pub genre_map: Vec<String>,

    /// Regex of disc folders the parent rule skips [default: (?i)^(cd|dis[ck])[ _.-]*\d+\b].
    #[arg(long, value_name = "REGEX")]
    pub disc_pattern: Option<String>,
}

/// Which part of the library to mirror.
#[derive(Args, Debug)]
pub struct SelectArgs {
    /// Mirror only what matches GLOB, a path relative to the library or one of its folders
    /// (repeatable; e.g. 'Jazz' or 'Classical/**/*.flac').
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Leave out what matches GLOB, matched like --include (repeatable; wins over --include).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Lossy formats copied into the mirror as they are: mp3, or none to mirror only converted
    /// files [default: mp3].
    #[arg(long, value_name = "FORMATS", value_delimiter = ',', value_enum)]
    pub pass_through: Vec<PassThrough>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassThrough {
    Mp3,
    None,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PolicyArg {
    Always,
    IfMissing,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub common: Common,

    #[command(flatten)]
    pub encode: EncodeArgs,

    #[command(flatten)]
    pub genre: GenreArgs,

    #[command(flatten)]
    pub select: SelectArgs,
}

/// How the mirror is encoded; shared by `convert`, `sync` and `status`.
#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// LAME preset: V0 (best) … V9, CBR320, CBR256, CBR192, CBR128, or ABR<kbps>
    /// [default: V2, or what the last run used].
    #[arg(long, value_name = "PRESET")]
    pub quality: Option<Quality>,

    /// Write ID3v2.3 tags (for old players) from now on.
    #[arg(long, conflicts_with = "id3v24")]
    pub id3v23: bool,

    /// Write ID3v2.4 tags from now on (the default).
    #[arg(long)]
    pub id3v24: bool,

    /// Downscale covers larger than PX pixels on a side (once per image, as JPEG), from now on;
    /// 0 embeds the original bytes [default: 1200, or what the last run used].
    #[arg(long, value_name = "PX")]
    pub art_max_size: Option<u32>,

    /// Put one cover.jpg (cover.png for a PNG kept as it is) in each album folder of the mirror,
    /// from the folder's image (a multi-disc album's beside its disc folders), from now on
    /// [default: on, or what the last run used].
    #[arg(long, conflicts_with = "no_folder_art")]
    pub folder_art: bool,

    /// Keep no folder cover files in the mirror (covers stay embedded in the MP3s), from now on.
    #[arg(long)]
    pub no_folder_art: bool,

    /// Remove staged files even when the library seems to have lost most of its music.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    #[command(flatten)]
    pub common: Common,

    #[command(flatten)]
    pub genre: GenreArgs,

    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The music library (not read: verify checks the staging folder and the remote only).
    #[arg(long, value_name = "DIR")]
    pub library: Option<PathBuf>,

    /// The staging folder to check (with its manifest in DIR/.musync).
    #[arg(long, value_name = "DIR")]
    pub staging: PathBuf,

    /// Also check this remote against what musync pushed there (one listing; sizes, and content
    /// with --checksum); with no value, the remote of the config file (which is checked anyway
    /// unless --offline).
    #[arg(long, value_name = "REMOTE", num_args = 0..=1)]
    pub remote: Option<Option<String>>,

    /// Leave the remote out, even one from the config file.
    #[arg(long, conflicts_with = "remote")]
    pub offline: bool,

    /// Files hashed at once [default: the number of cores].
    #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Also compare the remote's content hashes (MD5) with the staged files', where the
    /// remote's backend has them (a local folder, sftp with md5sum); elsewhere says so and
    /// compares sizes only. The remote reads every file.
    #[arg(long, conflicts_with = "offline")]
    pub checksum: bool,

    /// Print one JSON object with the results on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `status` takes the flags of `sync` that change a plan, so that it shows what `sync` with the
/// same flags (or config file) would do.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The music library (read only, never written to).
    #[arg(long, value_name = "DIR")]
    pub library: PathBuf,

    /// Where the MP3 mirror is built (musync keeps its manifest in DIR/.musync).
    #[arg(long, value_name = "DIR")]
    pub staging: PathBuf,

    /// Also show what a push to this remote would do (one listing); with no value, the remote
    /// of the config file (which is shown anyway unless --offline).
    #[arg(long, value_name = "REMOTE", num_args = 0..=1)]
    pub remote: Option<Option<String>>,

    /// Leave the remote out, even one from the config file.
    #[arg(long, conflicts_with = "remote")]
    pub offline: bool,

    /// Files read at once [default: the number of cores].
    #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Print one JSON object with a key per stage on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten, next_help_heading = "Planned as convert and sync would with")]
    pub encode: EncodeArgs,

    #[command(flatten)]
    pub genre: GenreArgs,

    #[command(flatten)]
    pub select: SelectArgs,

    #[command(flatten, next_help_heading = "Planned as push and sync would with")]
    pub policy: PushPolicy,
}

/// How bisync judges a file changed, or equal on both sides.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareArg {
    /// Size alone: free, but misses an edit that keeps the size (a tag fix often does).
    Size,
    /// Size and modification time: free (the listings carry both).
    Mtime,
    /// Size and MD5: reads each new or changed file once on both sides (a remote computes it,
    /// or has none: then mtime); unchanged files reuse the last run's hash.
    Hash,
}

/// How bisync recognises a rename, to replay it as a move (no bytes sent).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenamesArg {
    /// Never: a renamed file is deleted and sent again.
    None,
    /// A new file with the size of exactly one vanished file: free, can be fooled.
    Size,
    /// Size and modification time: free.
    Mtime,
    /// Size and MD5: as costly as --compare hash.
    Hash,
}

/// Which version wins when a file changed on both sides.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictArg {
    Library,
    Peer,
    /// The later modification time (on a tie: the library).
    Newer,
    Older,
    /// Both stay on both sides, renamed `<name> (library DATE).ext` and `<name> (peer DATE).ext`.
    KeepBoth,
}

#[derive(Args, Debug)]
pub struct BisyncArgs {
    /// The music library (a local folder).
    #[arg(long, value_name = "DIR")]
    pub library: PathBuf,

    /// The other copy, anything rclone reaches: `nas:Music`, `/mnt/nas/Music`, an sftp, smb or
    /// webdav remote. Times closer than 1 ns (a local folder) or 1 s (any other peer) are one.
    #[arg(long, value_name = "REMOTE")]
    pub peer: String,

    /// How a file is judged changed since the last run, or equal on both sides.
    #[arg(long, value_name = "HOW", value_enum, default_value_t = CompareArg::Mtime)]
    pub compare: CompareArg,

    /// How a rename on one side is recognised, to become a move on the other (no bytes sent).
    #[arg(long, value_name = "HOW", value_enum, default_value_t = RenamesArg::Mtime)]
    pub renames: RenamesArg,

    /// Which version wins when a file changed on both sides since the last run.
    #[arg(long, value_name = "WINNER", value_enum, default_value_t = ConflictArg::Newer)]
    pub conflict: ConflictArg,

    /// Refuse a run that would delete more than N files, or N% of the files, on either side.
    #[arg(
        long,
        id = "bisync_max_delete",
        value_name = "N|N%",
        default_value = "50%"
    )]
    pub max_delete: DeleteCap,

    /// Overwrite and delete without moving the old files into .musync-backups/ first.
    #[arg(long, id = "bisync_no_backup")]
    pub no_backup: bool,

    /// Sync only what matches GLOB, a path relative to the library or one of its folders
    /// (repeatable).
    #[arg(long, id = "bisync_include", value_name = "GLOB")]
    pub include: Vec<String>,

    /// Leave out what matches GLOB, matched like --include (repeatable; wins over --include).
    #[arg(long, id = "bisync_exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Print what would be done, one line per action, and change nothing (not even the state).
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Print one JSON object with the results on stdout.
    #[arg(long)]
    pub json: bool,

    /// When another bisync or pull runs on the library, wait for it to end instead of refusing
    /// (exit code 3).
    #[arg(long)]
    pub wait: bool,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// The music library (a local folder): the copy that follows the share.
    #[arg(long, value_name = "DIR")]
    pub library: PathBuf,

    /// The share, anything rclone reaches: `nas:Music`, `/mnt/nas/Music`, an smb remote.
    /// Compared by MD5 where it gives one (each changed file read once), else by size and time.
    #[arg(long, value_name = "REMOTE")]
    pub from: String,

    /// Pull only what matches GLOB, a path relative to the share or one of its folders
    /// (repeatable; e.g. 'Jazz').
    #[arg(long, id = "pull_include", value_name = "GLOB")]
    pub include: Vec<String>,

    /// Leave out what matches GLOB, matched like --include (repeatable; wins over --include).
    #[arg(long, id = "pull_exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Also remove local files the share never had (into the backups).
    #[arg(long)]
    pub delete_extras: bool,

    /// Refuse a pull that would delete more than N local files, or N% of them.
    #[arg(
        long,
        id = "pull_max_delete",
        value_name = "N|N%",
        default_value = "50%"
    )]
    pub max_delete: DeleteCap,

    /// Overwrite and delete local files without moving them into .musync-backups/ first.
    #[arg(long, id = "pull_no_backup")]
    pub no_backup: bool,

    /// Print what would be done, one line per action, and change nothing (not even the state).
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Print one JSON object with the results on stdout.
    #[arg(long)]
    pub json: bool,

    /// When another bisync or pull runs on the library, wait for it to end instead of refusing
    /// (exit code 3).
    #[arg(long)]
    pub wait: bool,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL", value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write musync.1 and musync-SUBCOMMAND.1 into DIR (made if missing) instead of printing
    /// musync.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
