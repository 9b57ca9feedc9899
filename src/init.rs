//! `musync init`: write a commented config file from the flags given, then check what the
//! settings point at (the library, rclone, the remote) and say what was found, and which
//! problem is the worst (for the exit code). It asks nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::fsutil;
use crate::rclone::{self, Rclone};

pub struct InitSettings {
    pub config: PathBuf,
    pub library: Option<PathBuf>,
    pub staging: Option<PathBuf>,
    pub remote: Option<String>,
    pub force: bool,
}

/// What `init` found: a line per check, and the worst problem among them.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub problem: Option<Problem>,
}

/// A problem a check found; the config file is written all the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// rclone is missing or too old, or the remote does not answer (exit 4).
    Remote,
    /// A setting names something that is not there or cannot work, e.g. the library is not
    /// found (exit 2); it is the one to fix first.
    Config,
}

impl Report {
    fn line(&mut self, line: String) {
        self.lines.push(line);
    }

    fn problem(&mut self, line: String, problem: Problem) {
        self.lines.push(line);
        self.problem = self.problem.max(Some(problem));
    }
}

/// Writes the config and checks what it names; `Ok` even when a check fails (the report says
/// so, and which), `Err` only when the file cannot be written.
pub fn run(settings: &InitSettings) -> anyhow::Result<Report> {
    let config = &settings.config;
    crate::overlap::check(
        settings.library.as_deref(),
        settings.staging.as_deref(),
        settings.remote.as_deref(),
    )
    .map_err(crate::report::usage)?;
    if config.exists() && !settings.force {
        return Err(crate::report::usage(anyhow::anyhow!(
            "{} exists; edit it, or run again with --force to replace it",
            config.display()
        )));
    }
    if let Some(dir) = config.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fsutil::write_atomic(config, template(settings).as_bytes())?;
    let mut report = Report::default();
    report.line(format!("wrote {}", config.display()));
    match &settings.library {
        Some(dir) if dir.is_dir() => report.line(format!("library {}: found", dir.display())),
        Some(dir) => report.problem(
            format!(
                "library {}: NOT FOUND (is the disk mounted?)",
                dir.display()
            ),
            Problem::Config,
        ),
        None => report.line("library: not set; add it to the file".to_owned()),
    }
    let rclone = Rclone::find(None, false);
    match &rclone {
        Ok(rc) => report.line(format!("rclone {}: found", rc.version())),
        Err(e) if settings.remote.is_some() => {
            report.problem(format!("rclone: {e}"), Problem::Remote);
        }
        Err(e) => report.line(format!("rclone: {e}")),
    }
    match (&settings.remote, &rclone) {
        (Some(remote), Ok(rc)) => {
            let shown = rclone::redact(remote);
            match rc.folder(remote) {
                Ok(Some(dirs)) => {
                    report.line(format!("remote {shown}: reachable ({dirs} folders in it)"))
                }
                Ok(None) => report.line(format!(
                    "remote {shown}: reachable; the folder does not exist yet and will be \
                     created by the first push"
                )),
                Err(e) => {
                    report.problem(
                        format!("remote {shown}: NOT REACHABLE: {e}"),
                        Problem::Remote,
                    );
                }
            }
        }
        (Some(remote), Err(_)) => report.line(format!(
            "remote {}: not checked without rclone",
            rclone::redact(remote)
        )),
        (None, _) => report.line("remote: not set; add it to the file to push".to_owned()),
    }
    Ok(report)
}

/// The config file: the given settings as keys, every other one commented out at its default.
fn template(s: &InitSettings) -> String {
    let path = |p: &Option<PathBuf>, key: &str, example: &str| match p {
        Some(p) => format!("{key} = {:?}\n", absolute(p)),
        None => format!("# {key} = \"{example}\"\n"),
    };
    let mut text = String::from(
        "# musync's settings: every key is also a flag (--library, --genre-from...), and a flag\n\
         # wins. `musync --profile NAME ...` uses [profile.NAME]'s keys over these.\n\n\
         # The lossless library (never written to) and where the MP3 mirror is built.\n",
    );
    text += &path(&s.library, "library", "~/Music");
    text += &path(&s.staging, "staging", "~/.cache/musync/mirror");
    text += "\n# Where `musync push` and `musync sync` send the mirror: an rclone remote or a folder.\n";
    match &s.remote {
        Some(remote) => {
            // A folder given relative to where init ran is written absolute, as library is.
            let plain_path =
                crate::overlap::local_remote(remote).as_deref() == Some(Path::new(remote));
            let remote = if plain_path {
                absolute(Path::new(remote))
            } else {
                remote.clone()
            };
            let _ = writeln!(text, "remote = {remote:?}");
        }
        None => text += "# remote = \"nas:music\"\n",
    }
    text += "\n\
        # LAME preset (V0 best ... V9, CBR320, ABR192...) and ID3 version (\"2.4\", or \"2.3\" for old players).\n\
        # quality = \"V2\"\n\
        # id3 = \"2.4\"\n\
        # jobs = 4\n\
        \n\
        # Cover art: larger covers are downscaled to this many pixels (0 keeps them as they are),\n\
        # and each album folder of the mirror gets its cover as a file (cover.jpg) for servers.\n\
        # art-max-size = 1200\n\
        # folder-art = true\n\
        \n\
        # Genre from the folders: top, parent, path or level:N; always or if-missing; GLOB=GENRE maps.\n\
        # genre-from = \"top\"\n\
        # genre-policy = \"always\"\n\
        # genre-map = [\"Soundtracks/**=Soundtrack\"]\n\
        # disc-pattern = '(?i)^(cd|dis[ck])[ _.-]*\\d+\\b'\n\
        \n\
        # Which part of the library to mirror (globs on paths relative to it; exclude wins),\n\
        # and whether the library's own MP3s are copied as they are ([] to leave them out).\n\
        # include = [\"Jazz\", \"Rock\"]\n\
        # exclude = [\"**/Podcasts\"]\n\
        # pass-through = [\"mp3\"]\n\
        \n\
        # Push safety: backups of overwritten or deleted remote files, the delete cap, and\n\
        # whether files musync did not put on the remote may be deleted.\n\
        # backup = true\n\
        # max-delete = \"50%\"\n\
        # delete-foreign = false\n\
        \n\
        # Ask a Subsonic server (Navidrome...) to rescan after a push. The password comes from\n\
        # MUSYNC_SUBSONIC_PASSWORD or the first line of password-file, never from here.\n\
        # [subsonic]\n\
        # url = \"http://nas:4533\"\n\
        # user = \"admin\"\n\
        # password-file = \"~/.config/musync/subsonic-password\"\n\
        \n\
        # A second mirror of the same library, e.g. smaller files for a phone:\n\
        # [profile.phone]\n\
        # staging = \"~/.cache/musync/phone\"\n\
        # remote = \"phone:Music\"\n\
        # quality = \"V6\"\n";
    text
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}
