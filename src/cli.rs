//! The command line, with clap derive: the doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::audio::Quality;
use crate::push::plan::DeleteCap;
use crate::tag::rules::GenreFrom;

const EXIT_CODES: &str = "\
Exit codes:
  0  everything done
  1  some files failed (each named on stderr); the rest were done
  2  bad arguments, settings or manifest
  3  refused by a safety guard (e.g. the library looks unmounted); nothing was changed
  4  rclone or the remote failed (rclone missing or too old, host unreachable, auth, disk full)";

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
    /// Delete the remote's backup folders older than an age.
    #[command(after_help = EXIT_CODES)]
    PruneBackups(PruneArgs),
}

/// Where and how to push.
#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// The remote, as rclone names it: `nas:music` (from your rclone config), `/mnt/usb/music`,
    /// an sftp/smb/webdav remote.
    #[arg(long, value_name = "REMOTE")]
    pub remote: String,

    /// Refuse a push that would delete more than N files, or N% of the files musync manages on
    /// the remote [default: 50%].
    #[arg(long, value_name = "N|N%", default_value = "50%")]
    pub max_delete: DeleteCap,

    /// Overwrite and delete without moving the old files into the remote's .musync-backups/.
    #[arg(long)]
    pub no_backup: bool,

    /// Also delete remote files musync did not put there (playlists, other people's files).
    #[arg(long)]
    pub delete_foreign: bool,

    /// Take over the push lock even if another musync seems to hold it.
    #[arg(long)]
    pub break_lock: bool,

    #[command(flatten)]
    pub subsonic: SubsonicArgs,
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
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// The remote whose backups to prune.
    #[arg(long, value_name = "REMOTE")]
    pub remote: String,

    /// Age of the backups to delete: a number with m, h, d or w (e.g. 30d).
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

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PolicyArg {
    Always,
    IfMissing,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub common: Common,

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

    /// Remove staged files even when the library seems to have lost most of its music.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub genre: GenreArgs,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    #[command(flatten)]
    pub common: Common,

    #[command(flatten)]
    pub genre: GenreArgs,
}
