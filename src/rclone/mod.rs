//! The one place musync runs the real `rclone` binary: list, upload, server-side move and rename,
//! delete and purge on a remote. Nothing else in musync starts rclone or talks to a remote.
//!
//! rclone runs through `std::process::Command` with an argument vector, never a shell. Lists of
//! files go through a temp file (`--files-from-raw`); the one file or folder of a rename is a
//! positional argument, and every positional argument starts with the remote and follows `--`,
//! so no file name can be read as a flag.
//! The user's rclone config and `RCLONE_*` environment pass through untouched; extra global flags
//! come from `MUSYNC_RCLONE_FLAGS`. Secrets in connection strings reach rclone through its
//! environment, not its command line, and are redacted from logs and errors.
//!
//! Every wait is bounded: musync sets rclone's timeouts and retries (`BOUNDED`, which the user's
//! flags override), and stops a transfer that has moved no byte for twice `--timeout`; the first
//! Ctrl-C or SIGTERM stops a running rclone within a few seconds. An upload goes to a hidden
//! folder on the remote first and is then renamed into place, so no final name ever holds part
//! of a file.
//!
//! This file holds the API (what to run and with which arguments); `process` runs the child,
//! `stderr` reads what it logs, `secrets` keeps passwords off command lines and out of messages.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde::Deserialize;

mod process;
mod secrets;
mod stderr;

use process::{flag_duration, output};
pub use secrets::redact;
use secrets::{is_secret_key, secrets_to_env};
pub use stderr::parse_stats;
use stderr::{exit_text, tail_text};

const MIN_VERSION: (u32, u32) = (1, 60);
/// rclone's documented exit code for "directory not found".
const EXIT_DIR_NOT_FOUND: i32 = 3;
const TAIL_MAX_LINES: usize = 3;
const TAIL_MAX_CHARS: usize = 300;
/// Put before the user's `MUSYNC_RCLONE_FLAGS`, which override them: a server that stops
/// answering fails a request after `--timeout` (rclone's default is 5 minutes, and 10 low-level
/// retries, then 3 whole retries: a dead-but-connected server hung a push for good).
const BOUNDED: [&str; 8] = [
    "--contimeout",
    "10s",
    "--timeout",
    "30s",
    "--retries",
    "1",
    "--low-level-retries",
    "3",
];
/// rclone's `--timeout` as musync sets it, when the user's flags do not change it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a transfer reports its bytes, for the stall watchdog.
const STATS: [&str; 5] = [
    "--stats",
    "1s",
    "--stats-one-line",
    "--stats-log-level",
    "NOTICE",
];
/// How long rclone gets to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// How often a listing's output is read while rclone writes it.
const POLL_OUTPUT: Duration = Duration::from_millis(5);

/// A checked rclone binary: found, version ≥ 1.60, plus the user's extra global flags.
#[derive(Clone, Debug)]
pub struct Rclone {
    bin: PathBuf,
    version: String,
    extra_flags: Vec<String>,
    /// Told rclone's transfer figures while an upload runs (see `with_progress`).
    progress: Option<Progress>,
    /// A transfer that moves no byte for this long is stopped: twice `--timeout`.
    stall: Duration,
}

/// rclone's own transfer figures, from the stats lines it logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub bytes: u64,
    pub total_bytes: u64,
    pub transfers: u64,
    pub total_transfers: u64,
}

/// What an upload tells its stats to.
#[derive(Clone)]
struct Progress(std::sync::Arc<dyn Fn(Stats) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// How often rclone logs its stats during an upload that reports progress.
const STATS_EVERY: &str = "500ms";

#[derive(Debug, thiserror::Error)]
pub enum RcloneError {
    #[error("rclone is not installed (or not on PATH): install it, e.g. apt-get install rclone")]
    NotFound,
    #[error("rclone {found} is too old: musync needs 1.60 or newer")]
    TooOld { found: String },
    #[error("rclone {op} failed ({}){}", exit_text(.code), tail_text(.stderr_tail))]
    Failed {
        op: String,
        code: Option<i32>,
        stderr_tail: String,
    },
    /// The watchdog stopped a transfer that made no progress.
    #[error(
        "the server did not answer for {} s, so rclone {op} was stopped (a slow server needs a \
         longer --timeout in MUSYNC_RCLONE_FLAGS)",
        .secs
    )]
    Stalled { op: String, secs: u64 },
    /// The first Ctrl-C or SIGTERM stopped rclone.
    #[error("rclone {op} stopped by an interruption")]
    Interrupted { op: String },
    /// Not a `#[source]`: the message already holds the cause, which a chain would repeat.
    #[error("running rclone: {0}")]
    Io(io::Error),
}

impl From<io::Error> for RcloneError {
    fn from(e: io::Error) -> RcloneError {
        RcloneError::Io(e)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    pub size: u64,
    /// The modification time as rclone lists it (RFC 3339); `None` where not listed.
    pub mtime: Option<String>,
}

/// One entry of `rclone lsjson` output; the other fields are not needed.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    path: String,
    name: String,
    size: i64,
    #[serde(default)]
    mod_time: Option<String>,
    /// With `--hash`: hash name (`md5`, `sha1`) → hex; absent or empty where the backend has none.
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

impl Rclone {
    /// `MUSYNC_RCLONE` if set, else `rclone` on PATH, checked to be 1.60 or newer by running
    /// `rclone version`. With `cache` (a file), the version of a binary seen before (same path,
    /// size and mtime) is read from there instead: rclone takes about 0.1 s to start, as long
    /// as musync's whole no-op push otherwise. `write_cache` allows saving a fresh check there.
    pub fn find(cache: Option<&Path>, write_cache: bool) -> Result<Rclone, RcloneError> {
        let bin = match std::env::var_os("MUSYNC_RCLONE") {
            Some(bin) if !bin.is_empty() => PathBuf::from(bin),
            _ => on_path("rclone").ok_or(RcloneError::NotFound)?,
        };
        let flags = std::env::var("MUSYNC_RCLONE_FLAGS").unwrap_or_default();
        let key = identity(&bin);
        let cached = cache
            .zip(key.as_deref())
            .and_then(|(cache, key)| cached_version(cache, key));
        let version = match cached {
            Some(version) => version,
            None => {
                tracing::debug!("running {} version", bin.display());
                let mut cmd = Command::new(&bin);
                let output = output("version", cmd.arg("version"), &[], None, None, None)?;
                let version = supported_version(&String::from_utf8_lossy(&output.stdout))?;
                if let (Some(cache), Some(key), true) = (cache, &key, write_cache) {
                    // Only a shortcut: a failure to save it costs the next run 0.1 s.
                    let _ = crate::fsutil::write_atomic(
                        cache,
                        format!("{key}\n{version}\n").as_bytes(),
                    );
                }
                version
            }
        };
        let extra_flags: Vec<String> = flags.split_whitespace().map(str::to_owned).collect();
        let timeout = flag_duration(&extra_flags, "--timeout").unwrap_or(DEFAULT_TIMEOUT);
        Ok(Rclone {
            version,
            bin,
            extra_flags,
            // rclone's own timeout comes first; at least a few seconds for a stats line to arrive.
            stall: (timeout * 2).max(Duration::from_secs(5)),
            progress: None,
        })
    }

    /// How long a transfer may go without progress before musync stops it.
    pub fn stall_limit(&self) -> Duration {
        self.stall
    }

    /// This rclone, telling `on_stats` its transfer figures (about twice a second) while it
    /// uploads: rclone then logs in JSON (`--use-json-log`) with stats lines, which musync reads
    /// as they come rather than at the end. Without it rclone is run as before.
    #[must_use]
    pub fn with_progress(mut self, on_stats: impl Fn(Stats) + Send + Sync + 'static) -> Rclone {
        self.progress = Some(Progress(std::sync::Arc::new(on_stats)));
        self
    }

    /// As rclone prints it, e.g. `v1.60.1-DEV`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every file under `remote`, recursively: path relative to `remote` ('/'-separated) → size.
    /// A folder that does not exist yet lists as empty. An unknown size (rclone's -1) reads as 0,
    /// which never matches a real file, so the caller re-uploads rather than trusts it.
    /// Symbolic links are not in it (see `listing`).
    pub fn list(&self, remote: &str) -> Result<BTreeMap<String, RemoteFile>, RcloneError> {
        Ok(self.listing(remote)?.files)
    }

    /// `list`, and the symbolic links under `remote`. Without `--links` rclone's local backend
    /// skips a link with a mere NOTICE, and a later write to its path goes through it, outside
    /// the remote; with it (1.60 and later) each link lists as a file `<path>.rclonelink`.
    /// Other backends list what their server shows (an sftp server follows links itself).
    pub fn listing(&self, remote: &str) -> Result<Listing, RcloneError> {
        let flags = ["-R", "--files-only", "--links", "--no-mimetype"];
        let mut streamed = Streamed::default();
        match self.lsjson_with(&flags, remote, |more| streamed.feed(more))? {
            Some(output) => streamed.finish(|| {
                let mut json = Vec::new();
                read_more(&output, &mut json).map(|_| json)
            }),
            None => Ok(Listing::default()),
        }
    }

    /// `list`, with each file's MD5 where the remote's backend gives one (`None` where not):
    /// rclone computes it for a local folder, asks an sftp server's `md5sum`, and reads it
    /// from a WebDAV server only if that server offers it. Slower: the remote reads every file.
    pub fn list_md5(&self, remote: &str) -> Result<BTreeMap<String, Hashed>, RcloneError> {
        let flags = [
            "-R",
            "--files-only",
            "--no-mimetype",
            "--hash",
            "--hash-type",
            "md5",
        ];
        match self.lsjson(&flags, remote)? {
            Some(json) => parse_md5_listing(&json),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Whether `remote` ignores the case of names, as SMB shares and FAT or exFAT disks do,
    /// asked of the server itself (rclone's `CaseInsensitive` feature is false for a FAT disk
    /// on Linux): `flipped_dir` is a listed folder holding `name` with its case flipped, and
    /// not listed itself; a case-insensitive remote lists `name` in it.
    pub fn ignores_case(
        &self,
        remote: &str,
        flipped_dir: &str,
        name: &str,
    ) -> Result<bool, RcloneError> {
        let flags = ["--files-only", "--no-mimetype", "--no-modtime"];
        let target = join(remote, checked_rel(flipped_dir)?);
        Ok(match self.lsjson(&flags, &target)? {
            Some(json) => entries(&json)?.iter().any(|e| e.name == name),
            None => false,
        })
    }

    /// Uploads `files` (relative to `local_root`) to the same relative paths under `remote`,
    /// overwriting what is there, without ever leaving part of a file under a final name: one
    /// call copies them into `remote`/`tmp_dir` (a hidden folder no listing of mirror files
    /// shows), then they are renamed into place server-side. An error may leave some files in
    /// `tmp_dir` and some in place, each whole. Each must be a regular file (not a symlink).
    pub fn upload(
        &self,
        local_root: &Path,
        remote: &str,
        tmp_dir: &str,
        files: &[String],
    ) -> Result<(), RcloneError> {
        if files.is_empty() {
            return Ok(());
        }
        self.stage_upload(local_root, remote, tmp_dir, files)?;
        self.move_into_place(remote, tmp_dir, files)
    }

    /// The first half of `upload`: copies `files` (relative to `local_root`, each a regular
    /// file inside it) into `remote`/`tmp_dir`, for `place` to rename into place once what they
    /// replace is backed up. Nothing under a final name changes.
    pub fn stage_upload(
        &self,
        local_root: &Path,
        remote: &str,
        tmp_dir: &str,
        files: &[String],
    ) -> Result<(), RcloneError> {
        if files.is_empty() {
            return Ok(());
        }
        // Absolute, so rclone can never read it as a flag or as "remote:path".
        let local_root = std::path::absolute(local_root)?;
        for file in files {
            let path = local_root.join(file);
            // A symlinked folder in staging would send what lies outside it.
            crate::fsutil::check_confined(&local_root, &path)
                .map_err(|e| invalid(format!("{e:#}")))?;
            // rclone skips symlinks and missing files with a mere NOTICE and exits 0.
            if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                return Err(invalid(format!(
                    "{}: not a regular file, cannot upload",
                    path.display()
                )));
            }
        }
        let tmp = join(remote, checked_rel(tmp_dir)?);
        let flags = ["--ignore-times", "--no-traverse"];
        let args = [local_root.as_os_str(), tmp.as_ref()];
        self.run("copy", &flags, Some(files), &args, &[], None)?;
        Ok(())
    }

    /// The second half of `upload`: renames `files` from `remote`/`tmp_dir` to the same
    /// relative paths under `remote`, server-side, each replacing what is there.
    pub fn place(&self, remote: &str, tmp_dir: &str, files: &[String]) -> Result<(), RcloneError> {
        if files.is_empty() {
            return Ok(());
        }
        self.move_into_place(remote, tmp_dir, files)
    }

    /// Copies `files` (relative to `remote`) into the local folder `local_dir`, keeping their
    /// relative paths and the times rclone sets, in one call. `local_dir` is a temporary folder:
    /// the caller renames each file into its place. A file that could not be fetched is
    /// missing from `local_dir` (or has the wrong size), and the call fails.
    pub fn download(
        &self,
        remote: &str,
        files: &[String],
        local_dir: &Path,
    ) -> Result<(), RcloneError> {
        if files.is_empty() {
            return Ok(());
        }
        let local_dir = std::path::absolute(local_dir)?;
        let flags = ["--ignore-times", "--no-traverse"];
        let args = [remote.as_ref(), local_dir.as_os_str()];
        self.run("copy", &flags, Some(files), &args, &[], None)?;
        Ok(())
    }

    /// The MD5 of each of `files` (relative to `remote`) that the remote's backend gives, in one
    /// call (`rclone hashsum md5`): a local folder and sftp with `md5sum` compute it, other
    /// backends read it from the server or fail (no MD5 there).
    pub fn md5sums(
        &self,
        remote: &str,
        files: &[String],
    ) -> Result<BTreeMap<String, String>, RcloneError> {
        if files.is_empty() {
            return Ok(BTreeMap::new());
        }
        let args = [OsStr::new("md5"), remote.as_ref()];
        let output = self.run("hashsum", &[], Some(files), &args, &[], None)?;
        Ok(parse_hashsum(&output.stdout))
    }

    /// Renames `files` from `remote`/`tmp_dir` to the same relative paths under `remote`, each
    /// replacing what is there. rclone newer than 1.60 does it in one call; 1.60 refuses to move
    /// from a folder into one that holds it ("overlapping remotes"), so there it takes one call per
    /// top-level folder, one per file at the top, and one to remove the emptied folders.
    fn move_into_place(
        &self,
        remote: &str,
        tmp_dir: &str,
        files: &[String],
    ) -> Result<(), RcloneError> {
        let tmp = join(remote, checked_rel(tmp_dir)?);
        // --ignore-times: a file of the same size and time in place is still replaced.
        let flags = ["--ignore-times", "--no-traverse", "--delete-empty-src-dirs"];
        if !self.refuses_nested_move() {
            let args = [tmp.as_ref(), remote.as_ref()];
            match self.run("move", &flags, Some(files), &args, &[], None) {
                Err(RcloneError::Failed { stderr_tail, .. })
                    if stderr_tail.contains("overlapping remotes") => {}
                result => return result.map(drop),
            }
        }
        let mut tops: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for file in files {
            match file.split_once('/') {
                Some((top, rest)) => tops.entry(top).or_default().push(rest.to_owned()),
                None => self.rename(remote, &join(tmp_dir, file), file)?,
            }
        }
        for (top, files) in tops {
            let from = join(&tmp, checked_rel(top)?);
            let to = join(remote, checked_rel(top)?);
            let args = [from.as_ref(), to.as_ref()];
            self.run("move", &flags, Some(&files), &args, &[], None)?;
        }
        // Each move leaves its (empty) source folder. The files are in place even if this
        // fails, but a failed call is reported like any other (the next push adopts them).
        let ok = [EXIT_DIR_NOT_FOUND];
        self.run("rmdirs", &[], None, &[tmp.as_ref()], &ok, None)?;
        Ok(())
    }

    /// rclone 1.60 refuses any move between nested folders; later ones allow it when the
    /// file list leaves the inner folder out.
    fn refuses_nested_move(&self) -> bool {
        parse_version(&format!("rclone {}", self.version))
            .is_some_and(|(_, major, minor)| (major, minor) <= (1, 60))
    }

    /// Moves `files` (relative to `remote`) into `remote`/`dest_dir`, keeping their relative
    /// paths, in one call. Same remote on both sides, so rclone moves server-side where the
    /// backend can. Missing files are skipped; emptied source folders stay.
    ///
    /// A file already in `dest_dir` is never replaced nor taken for the one moved (rclone
    /// deletes the source of a move when the destination has its size and time): it is renamed
    /// with `-<tag>` before its name (`01-<tag>.mp3`) and the move goes ahead.
    pub fn move_into(
        &self,
        remote: &str,
        dest_dir: &str,
        files: &[String],
        tag: &str,
    ) -> Result<(), RcloneError> {
        if files.is_empty() {
            return Ok(());
        }
        let to = join(remote, checked_rel(dest_dir)?);
        let suffix = format!("--suffix=-{tag}");
        let flags = [
            "--no-traverse",
            "--ignore-times",
            &suffix,
            "--suffix-keep-extension",
        ];
        let args = [remote.as_ref(), to.as_ref()];
        self.run("move", &flags, Some(files), &args, &[], None)?;
        Ok(())
    }

    /// Removes `remote`/`dir` and the folders under it if they hold no file; a folder that
    /// holds one stays, and so does a missing `dir`.
    pub fn rmdirs(&self, remote: &str, dir: &str) -> Result<(), RcloneError> {
        let target = join(remote, checked_rel(dir)?);
        let ok = [EXIT_DIR_NOT_FOUND];
        self.run("rmdirs", &[], None, &[target.as_ref()], &ok, None)?;
        Ok(())
    }

    /// Moves `files` (relative to `remote`/`from_dir`; "" is the remote itself) to the same
    /// relative paths under `remote`/`to_dir`, in one call, server-side where the backend can.
    pub fn move_between(
        &self,
        remote: &str,
        from_dir: &str,
        to_dir: &str,
        files: &[String],
    ) -> Result<(), RcloneError> {
        if files.is_empty() {
            return Ok(());
        }
        let from = match from_dir {
            "" => remote.to_owned(),
            dir => join(remote, checked_rel(dir)?),
        };
        let to = join(remote, checked_rel(to_dir)?);
        let args = [from.as_ref(), to.as_ref()];
        self.run("move", &["--no-traverse"], Some(files), &args, &[], None)?;
        Ok(())
    }

    /// Server-side rename of one file, overwriting `to` if it exists.
    pub fn rename(&self, remote: &str, from: &str, to: &str) -> Result<(), RcloneError> {
        let from = join(remote, checked_rel(from)?);
        let to = join(remote, checked_rel(to)?);
        self.run(
            "moveto",
            &[],
            None,
            &[from.as_ref(), to.as_ref()],
            &[],
            None,
        )?;
        Ok(())
    }

    /// Deletes `files` (relative to `remote`) in one call; missing files, or a missing `remote`,
    /// count as deleted.
    pub fn delete(&self, remote: &str, files: &[String]) -> Result<(), RcloneError> {
        if files.is_empty() {
            return Ok(());
        }
        let ok = [EXIT_DIR_NOT_FOUND];
        self.run("delete", &[], Some(files), &[remote.as_ref()], &ok, None)?;
        Ok(())
    }

    /// Sorted names of the immediate sub-folders of `remote`/`dir` (`dir` may be ""); missing → empty.
    pub fn list_dirs(&self, remote: &str, dir: &str) -> Result<Vec<String>, RcloneError> {
        let flags = ["--dirs-only", "--no-mimetype", "--no-modtime"];
        let entries = match self.lsjson(&flags, &join(remote, dir))? {
            Some(json) => entries(&json)?,
            None => Vec::new(),
        };
        let mut names: Vec<String> = entries.into_iter().map(|e| e.name).collect();
        names.sort();
        Ok(names)
    }

    /// How many sub-folders the folder `remote` holds, or `None` when it does not exist (rclone's
    /// "directory not found"): a remote that is down is an error, a folder not made yet is not.
    pub fn folder(&self, remote: &str) -> Result<Option<usize>, RcloneError> {
        let flags = [
            "--dirs-only",
            "--max-depth",
            "1",
            "--no-mimetype",
            "--no-modtime",
        ];
        match self.lsjson(&flags, remote)? {
            Some(json) => Ok(Some(entries(&json)?.len())),
            None => Ok(None),
        }
    }

    /// Removes `remote`/`dir` and everything in it. `dir` must name a sub-folder: purging the
    /// remote itself is refused. A missing `dir` is an error (rclone exits 3 or 1 by version).
    pub fn purge(&self, remote: &str, dir: &str) -> Result<(), RcloneError> {
        let target = join(remote, checked_rel(dir)?);
        self.run("purge", &[], None, &[target.as_ref()], &[], None)?;
        Ok(())
    }

    /// The JSON `lsjson` prints for `target`; `None` when it does not exist.
    fn lsjson(&self, flags: &[&str], target: &str) -> Result<Option<Vec<u8>>, RcloneError> {
        let mut json = Vec::new();
        let output = self.lsjson_with(flags, target, |more| json.extend_from_slice(more))?;
        Ok(output.map(|_| json))
    }

    /// `lsjson`, handing `more` what rclone wrote since the last call: every few milliseconds
    /// while it runs (so that it is parsed while rclone lists, and not held whole), then the
    /// rest. `None` when `target` does not exist, else the file that holds the whole output.
    fn lsjson_with(
        &self,
        flags: &[&str],
        target: &str,
        mut more: impl FnMut(&[u8]),
    ) -> Result<Option<std::fs::File>, RcloneError> {
        let ok = [EXIT_DIR_NOT_FOUND];
        // Into a file, not a pipe: rclone writes each entry with a syscall of its own, and a
        // pipe would wake musync for every one (about 15% of a no-op push).
        let listing = tempfile::tempfile()?;
        let stdout = listing.try_clone()?;
        let (mut read, mut chunk) = (0, Vec::new());
        let output = std::thread::scope(|s| {
            let rclone =
                s.spawn(|| self.run("lsjson", flags, None, &[target.as_ref()], &ok, Some(stdout)));
            while !rclone.is_finished() {
                match read_at(&listing, read, &mut chunk) {
                    Ok(0) | Err(_) => std::thread::sleep(POLL_OUTPUT),
                    Ok(n) => {
                        read += n;
                        more(&chunk);
                    }
                }
            }
            rclone.join().expect("the rclone thread does not panic")
        })?;
        if output.status.code() == Some(EXIT_DIR_NOT_FOUND) {
            return Ok(None);
        }
        if read_at(&listing, read, &mut chunk)? > 0 {
            more(&chunk);
        }
        Ok(Some(listing))
    }

    /// Runs `rclone OP FLAGS [--files-from-raw=LIST] EXTRA_FLAGS -- ARGS`, where LIST is a temp
    /// file naming `files`; exit codes in `ok` count as success. Its stdout goes to `stdout`
    /// if given, else into the `Output`.
    fn run(
        &self,
        op: &str,
        flags: &[&str],
        files: Option<&[String]>,
        args: &[&OsStr],
        ok: &[i32],
        stdout: Option<std::fs::File>,
    ) -> Result<Output, RcloneError> {
        if let Some(arg) = args.iter().find(|a| a.to_string_lossy().starts_with('-')) {
            let arg = redact(&arg.to_string_lossy());
            return Err(invalid(format!(
                "refusing to pass {arg:?}: rclone would read it as a flag"
            )));
        }
        let list = files.map(list_file).transpose()?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg(op).args(flags);
        if let Some(list) = &list {
            let mut flag = OsString::from("--files-from-raw=");
            flag.push(list.path());
            cmd.arg(flag);
        }
        // A transfer reports its bytes each second, for the stall watchdog; the upload also
        // for the progress bar, in rclone's JSON log, which carries the byte and file counts.
        let transfer = matches!(op, "copy" | "move");
        let progress = self.progress.as_ref().filter(|_| op == "copy");
        if progress.is_some() {
            cmd.args(["--stats", STATS_EVERY, "--stats-log-level", "NOTICE"])
                .arg("--use-json-log");
        } else if transfer {
            cmd.args(STATS);
        }
        cmd.args(BOUNDED).args(&self.extra_flags).arg("--");
        let mut env = BTreeMap::new();
        for arg in args {
            let Some(text) = arg.to_str() else {
                cmd.arg(arg);
                continue;
            };
            let (arg, secrets) = secrets_to_env(text);
            // Two remotes with one variable but different secrets: the argument keeps its own.
            if secrets
                .iter()
                .any(|(k, v)| env.get(k).is_some_and(|e| e != v))
            {
                cmd.arg(text);
            } else {
                cmd.arg(arg);
                env.extend(secrets);
            }
        }
        cmd.envs(env);
        let mut shown = format!("running {}", self.bin.display());
        let mut hide_next = false;
        for arg in cmd.get_args().map(|a| a.to_string_lossy()) {
            shown.push(' ');
            shown.push_str(&if hide_next {
                "***".to_owned()
            } else {
                redact(&arg)
            });
            // `--sftp-pass VALUE` as two words, e.g. from MUSYNC_RCLONE_FLAGS.
            hide_next = arg.starts_with("--") && !arg.contains('=') && is_secret_key(&arg);
        }
        tracing::debug!("{shown}");
        let stall = transfer.then_some(self.stall);
        output(op, &mut cmd, ok, stdout, stall, progress)
    }
}

/// The files of an `lsjson -R --files-only` listing: path relative to the listed folder → size.
/// A path that could leave the remote (see `relpath`) is left out with a warning, so musync never
/// moves or deletes by it; nor does it overwrite it, as no staged file has such a path.
pub fn parse_listing(json: &[u8]) -> Result<BTreeMap<String, RemoteFile>, RcloneError> {
    Ok(parse_links_listing(json)?.files)
}

/// A remote's files, and its symbolic links (listed with `--links`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub files: BTreeMap<String, RemoteFile>,
    /// Paths (without `.rclonelink`) of the links: nothing may be written through them.
    pub links: std::collections::BTreeSet<String>,
}

/// What rclone's `--links` appends to the name of a symbolic link.
const LINK_SUFFIX: &str = ".rclonelink";

/// One entry of a listing, as little as the push needs, its strings borrowed from the JSON
/// where they hold no escape: a listing of 100,000 files is parsed without a `Value` or a
/// copy of the fields it ignores.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed<'a> {
    #[serde(borrow)]
    path: Cow<'a, str>,
    size: i64,
    #[serde(default, borrow)]
    mod_time: Option<Cow<'a, str>>,
}

/// `parse_listing`, with each `<path>.rclonelink` entry read as a link at `<path>`.
pub fn parse_links_listing(json: &[u8]) -> Result<Listing, RcloneError> {
    let entries: Vec<Listed> = serde_json::from_slice(json)
        .map_err(|e| invalid(format!("reading rclone lsjson output: {e}")))?;
    let mut found = Found::default();
    entries.into_iter().for_each(|e| found.add(e));
    Ok(found.into_listing())
}

/// `parse_links_listing` as `listing` parses rclone's output: read as it grows, `cut` bytes
/// more each time (for the fuzz target, which checks that the two agree).
#[doc(hidden)]
pub fn parse_links_listing_in_pieces(json: &[u8], cut: usize) -> Result<Listing, RcloneError> {
    let mut streamed = Streamed::default();
    json.chunks(cut.max(1)).for_each(|more| streamed.feed(more));
    streamed.finish(|| Ok(json.to_vec()))
}

/// The entries of a listing read so far.
#[derive(Default)]
struct Found {
    files: Vec<(String, RemoteFile)>,
    links: Vec<String>,
}

impl Found {
    fn add(&mut self, e: Listed) {
        match crate::relpath::check(&e.path) {
            Ok(_) => match e.path.strip_suffix(LINK_SUFFIX) {
                Some(link) if !link.is_empty() && !link.ends_with('/') => {
                    self.links.push(link.to_owned());
                }
                _ => {
                    let size = e.size.try_into().unwrap_or(0);
                    let mtime = e.mod_time.map(Cow::into_owned);
                    self.files
                        .push((e.path.into_owned(), RemoteFile { size, mtime }));
                }
            },
            Err(why) => tracing::warn!("rclone listed an {why}; musync leaves it alone"),
        }
    }

    fn into_listing(self) -> Listing {
        // Built from the whole list at once, sorted first (rclone lists folder by folder,
        // nearly in order already): far cheaper than one insertion each. A path listed twice
        // keeps its last entry, as insertion did.
        Listing {
            files: self.files.into_iter().collect(),
            links: self.links.into_iter().collect(),
        }
    }
}

/// A listing parsed as rclone writes it: `[`, one entry a line, each but the last followed by
/// a comma, then `]`. Read a line at a time while rclone lists, the listing is ready about when
/// rclone exits, not the 0.15 s (100,000 files) a parse of the whole output takes after it.
/// Output of any other shape, or a line that does not parse, is parsed whole at the end, as
/// `parse_links_listing`: what this accepts, that reads the same.
#[derive(Default)]
struct Streamed {
    found: Found,
    /// The start of a line, the rest of which rclone has not written yet.
    partial: Vec<u8>,
    next: Expect,
}

/// What the next line of a listing may be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Expect {
    #[default]
    Open,
    /// After `[`: an entry or `]`.
    First,
    /// After an entry and its comma.
    Entry,
    /// After an entry with no comma.
    Close,
    /// After `]`: blank lines only.
    End,
    /// Not the shape above: parsed whole at the end.
    Other,
}

impl Streamed {
    /// Reads the lines `more` (what rclone wrote next) ends, and keeps the start of the next.
    fn feed(&mut self, more: &[u8]) {
        if self.next == Expect::Other {
            return;
        }
        self.partial.extend_from_slice(more);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let text = std::mem::take(&mut self.partial);
        for line in text[..end].split(|&b| b == b'\n') {
            if self.next == Expect::Other {
                return;
            }
            self.line(line);
        }
        self.partial = text[end + 1..].to_vec();
    }

    fn line(&mut self, line: &[u8]) {
        // JSON's whitespace, which is not all of ASCII's (a form feed is not).
        let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
        let start = line.iter().position(|b| !blank(b)).unwrap_or(line.len());
        let end = line
            .iter()
            .rposition(|b| !blank(b))
            .map_or(start, |i| i + 1);
        let line = &line[start..end];
        self.next = match (self.next, line) {
            (next, b"") => next,
            (Expect::Open, b"[") => Expect::First,
            (Expect::Open, b"[]") | (Expect::First | Expect::Close, b"]") => Expect::End,
            (Expect::First | Expect::Entry, line) => {
                let (entry, more) = match line.strip_suffix(b",") {
                    Some(entry) => (entry, Expect::Entry),
                    None => (line, Expect::Close),
                };
                match serde_json::from_slice::<Listed>(entry) {
                    Ok(e) => {
                        self.found.add(e);
                        more
                    }
                    Err(_) => Expect::Other,
                }
            }
            _ => Expect::Other,
        };
    }

    /// The listing, once all of the output was fed; `whole` reads all of it again, for a parse
    /// of the whole when it is not of rclone's shape.
    fn finish(
        mut self,
        whole: impl FnOnce() -> io::Result<Vec<u8>>,
    ) -> Result<Listing, RcloneError> {
        if self.next != Expect::Other {
            let last = std::mem::take(&mut self.partial);
            self.line(&last);
        }
        if self.next == Expect::End {
            Ok(self.found.into_listing())
        } else {
            parse_links_listing(&whole()?)
        }
    }
}

/// `rclone hashsum` output (`<hex>  <path>` a line) as path → lowercase hex; lines without a
/// hash (rclone prints spaces where the backend has none) are left out.
pub fn parse_hashsum(stdout: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| line.split_once("  "))
        .filter(|(hash, _)| !hash.trim().is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(hash, path)| (path.to_owned(), hash.to_ascii_lowercase()))
        .collect()
}

/// A listed file and its MD5, if the remote gave one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    pub file: RemoteFile,
    pub md5: Option<String>,
}

/// The files of an `lsjson -R --files-only --hash --hash-type md5` listing, paths checked as
/// `parse_links_listing` checks them.
pub fn parse_md5_listing(json: &[u8]) -> Result<BTreeMap<String, Hashed>, RcloneError> {
    let mut files = BTreeMap::new();
    for mut e in entries(json)? {
        match crate::relpath::check(&e.path) {
            Ok(_) => {
                let md5 = (e.hashes.remove("md5"))
                    .filter(|h| !h.is_empty())
                    .map(|h| h.to_ascii_lowercase());
                let size = e.size.try_into().unwrap_or(0);
                let file = RemoteFile {
                    size,
                    mtime: e.mod_time,
                };
                files.insert(e.path, Hashed { file, md5 });
            }
            Err(why) => tracing::warn!("rclone listed an {why}; musync leaves it alone"),
        }
    }
    Ok(files)
}

fn entries(json: &[u8]) -> Result<Vec<Entry>, RcloneError> {
    serde_json::from_slice(json).map_err(|e| invalid(format!("reading rclone lsjson output: {e}")))
}

/// Joins a remote (`nas:music`, `nas:`, `/mnt/usb/music`, `:sftp,host=h:path`) and a relative
/// path with exactly one '/' between them, and none after a bare `name:`.
pub fn join(remote: &str, rel: &str) -> String {
    let rel = rel.trim_matches('/');
    if rel.is_empty() {
        remote.to_owned()
    } else if remote.is_empty() || remote.ends_with('/') || remote.ends_with(':') {
        format!("{remote}{rel}")
    } else {
        format!("{remote}/{rel}")
    }
}

/// A relative path that stays inside the remote, on one line (as `--files-from-raw` lists them).
fn checked_rel(rel: &str) -> Result<&str, RcloneError> {
    crate::relpath::check_line(rel)
        .map_err(|_| invalid(format!("{rel:?} is not a usable relative path on a remote")))
}

/// The temp file for `--files-from-raw`: one name a line, read verbatim by rclone.
fn list_file(files: &[String]) -> Result<tempfile::NamedTempFile, RcloneError> {
    let mut list = tempfile::Builder::new()
        .prefix("musync-rclone-")
        .tempfile()?;
    for file in files {
        writeln!(list, "{}", checked_rel(file)?)?;
    }
    list.flush()?;
    Ok(list)
}

/// What `file` holds past `at`, into `chunk` (emptied first); how many bytes.
fn read_at(file: &std::fs::File, at: usize, chunk: &mut Vec<u8>) -> io::Result<usize> {
    chunk.clear();
    read_more_from(file, at, chunk)
}

/// Appends to `into` what `file` holds past `into.len()`, read at that offset (the file's own
/// offset is where rclone writes); how many bytes.
fn read_more(file: &std::fs::File, into: &mut Vec<u8>) -> io::Result<usize> {
    read_more_from(file, 0, into)
}

/// `read_more`, with `into` holding what lies past `skipped` bytes of the file.
fn read_more_from(file: &std::fs::File, skipped: usize, into: &mut Vec<u8>) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 1 << 18;
    let mut total = 0;
    loop {
        let start = into.len();
        into.resize(start + CHUNK, 0);
        let read = file.read_at(&mut into[start..], (skipped + start) as u64);
        into.truncate(start + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn invalid(msg: String) -> RcloneError {
    io::Error::new(io::ErrorKind::InvalidInput, msg).into()
}

/// The first executable file called `name` in a folder of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|bin| {
            std::fs::metadata(bin).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What identifies a binary for the version cache: its real path, size and mtime.
fn identity(bin: &Path) -> Option<String> {
    let real = std::fs::canonicalize(bin).ok()?;
    let stamp = crate::fsutil::Stamp::of(&real)?;
    Some(format!(
        "{}\t{}\t{}",
        real.display(),
        stamp.size,
        stamp.mtime_ns
    ))
}

/// The version saved in `cache` for the binary `key`, if it still qualifies.
fn cached_version(cache: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(cache).ok()?;
    let (saved, version) = text.trim_end().split_once('\n')?;
    (saved == key).then(|| supported_version(&format!("rclone {version}")).ok())?
}

/// The version from `rclone version` output if it is one musync supports.
fn supported_version(stdout: &str) -> Result<String, RcloneError> {
    match parse_version(stdout) {
        Some((version, major, minor)) if (major, minor) >= MIN_VERSION => Ok(version),
        Some((found, ..)) => Err(RcloneError::TooOld { found }),
        None => Err(RcloneError::Failed {
            op: "version".to_owned(),
            code: Some(0),
            stderr_tail: format!(
                "unrecognised output {:?}",
                stdout.lines().next().unwrap_or("")
            ),
        }),
    }
}

/// `rclone v1.60.1-DEV` → ("v1.60.1-DEV", 1, 60), from the first line of `rclone version`.
fn parse_version(stdout: &str) -> Option<(String, u32, u32)> {
    let line = stdout.lines().next()?.trim().strip_prefix("rclone ")?;
    let token = line.split_whitespace().next()?;
    let mut parts = token.strip_prefix('v').unwrap_or(token).split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((token.to_owned(), major, minor))
}

#[cfg(test)]
mod tests;
