//! One writer per staging folder. Every command that changes staging holds a kernel file lock
//! (`flock`, through `File::try_lock`) on `STAGING/.musync/lock` for its whole run; the kernel
//! drops it when the process ends, however it ends, so no lock is ever stale and nothing guesses
//! from pids. The holder writes who it is into the file, for the refusal message only.
//!
//! Read-only commands never take that lock. They ask whether a writer runs through a second
//! file, `lock.busy`, which the writer holds as well: a reader's question holds `lock.busy` for
//! an instant and the writer waits that instant for it, so asking never makes a writer fail.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::interrupt;
use crate::manifest;
use crate::report::escape_controls;

/// The writers' lock, in the staging folder's state folder.
pub const LOCK: &str = "lock";
/// Held by the writer too; what readers ask.
pub const BUSY: &str = "lock.busy";

/// How often a waiting writer tries again (and looks for Ctrl-C).
const RETRY: Duration = Duration::from_millis(100);

/// Who holds the lock, as the holder wrote it: information only, never trusted for locking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    /// The subcommand, e.g. `sync`.
    pub command: Option<String>,
    /// Seconds since the epoch.
    pub started: Option<u64>,
}

impl Holder {
    fn me(command: &str) -> Holder {
        Holder {
            pid: Some(std::process::id()),
            command: Some(command.to_owned()),
            started: Some(now()),
        }
    }

    /// The file's text: `pid N`, `command C`, `started S`, a line each.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        if let Some(pid) = self.pid {
            text += &format!("pid {pid}\n");
        }
        if let Some(command) = &self.command {
            text += &format!("command {command}\n");
        }
        if let Some(started) = self.started {
            text += &format!("started {started}\n");
        }
        text
    }

    /// Whatever of the file's text can be read; anything else is ignored.
    pub fn parse(text: &str) -> Holder {
        let mut holder = Holder::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("pid", v)) => holder.pid = v.trim().parse().ok(),
                Some(("command", v)) => holder.command = Some(v.trim().to_owned()),
                Some(("started", v)) => holder.started = v.trim().parse().ok(),
                _ => {}
            }
        }
        holder
    }

    /// `musync sync (pid 42, started 3 min ago)`, as far as it is known at `now`.
    pub fn describe(&self, now: u64) -> String {
        let command = match &self.command {
            Some(c) => format!("musync {}", escape_controls(c)),
            None => "another musync run".to_owned(),
        };
        let mut about = Vec::new();
        if let Some(pid) = self.pid {
            about.push(format!("pid {pid}"));
        }
        if let Some(started) = self.started {
            about.push(format!("started {}", ago(now.saturating_sub(started))));
        }
        if about.is_empty() {
            command
        } else {
            format!("{command} ({})", about.join(", "))
        }
    }
}

/// `12 s ago`, `4 min ago`, `3 h ago`, `2 days ago`.
fn ago(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s ago"),
        120..7200 => format!("{} min ago", secs / 60),
        7200..172_800 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Another run holds the staging folder's lock: a guard's refusal (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error(
    "refused: staging {staging} is in use by {holder}; run again when it ends, or with --wait \
     to wait for it. Nothing was changed"
)]
pub struct Busy {
    pub staging: String,
    pub holder: String,
}

/// The staging folder's lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct Lock {
    _writers: File,
    _busy: File,
}

/// The lock's two files in the folder `dir` that keeps them.
fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join(LOCK), dir.join(BUSY))
}

fn open_rw(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        // The holder's note must survive a refused run's open.
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening the lock {}", path.display()))
}

fn holder_of(path: &Path) -> Holder {
    fs::read_to_string(path)
        .map(|text| Holder::parse(&text))
        .unwrap_or_default()
}

/// Take the lock of `staging` for `command`. Held by another run: refused with [`Busy`], or with
/// `wait`, one line on stderr and a wait until it ends (Ctrl-C stops the wait).
pub fn take(staging: &Path, command: &str, wait: bool) -> anyhow::Result<Lock> {
    take_in(
        &manifest::state_dir(staging),
        "staging",
        staging,
        command,
        wait,
    )
}

/// [`take`] with the lock's files in `dir`, for the folder `shown` (called `what` in the
/// waiting line): library sync keeps its library's lock outside the library.
pub fn take_in(
    dir: &Path,
    what: &str,
    shown: &Path,
    command: &str,
    wait: bool,
) -> anyhow::Result<Lock> {
    let staging = shown;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (lock_path, busy_path) = paths(dir);
    let mut writers = open_rw(&lock_path)?;
    let mut said = false;
    loop {
        match writers.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let holder = holder_of(&lock_path).describe(now());
                if !wait {
                    return Err(Busy {
                        staging: staging.display().to_string(),
                        holder,
                    }
                    .into());
                }
                if !said {
                    eprintln!(
                        "musync: {what} {} is in use by {holder}; waiting for it to end",
                        staging.display()
                    );
                    said = true;
                }
                if interrupt::interrupted() {
                    return Err(interrupt::Interrupted.into());
                }
                std::thread::sleep(RETRY);
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
    }
    let note = Holder::me(command).to_text();
    writers
        .set_len(0)
        .and_then(|()| writers.write_all(note.as_bytes()))
        .with_context(|| format!("writing {}", lock_path.display()))?;
    let busy = open_rw(&busy_path)?;
    // Only a reader's question can hold it now, for an instant.
    busy.lock()
        .with_context(|| format!("locking {}", busy_path.display()))?;
    Ok(Lock {
        _writers: writers,
        _busy: busy,
    })
}

/// Who is changing `staging` now, if anyone; `None` too when it cannot be told (no lock file:
/// no writer ever ran). Creates and writes nothing, and never makes a writer wait more than an
/// instant.
pub fn writer(staging: &Path) -> Option<Holder> {
    writer_in(&manifest::state_dir(staging))
}

/// [`writer`] of the lock whose files are in `dir` (see [`take_in`]).
pub fn writer_in(dir: &Path) -> Option<Holder> {
    let (lock_path, busy_path) = paths(dir);
    let busy = File::open(busy_path).ok()?;
    match busy.try_lock_shared() {
        Ok(()) => {
            drop(busy.unlock());
            None
        }
        Err(TryLockError::WouldBlock) => Some(holder_of(&lock_path)),
        Err(TryLockError::Error(e)) => {
            tracing::debug!("cannot tell whether a run is changing staging: {e}");
            None
        }
    }
}

/// The note a read-only command prints when a writer runs: what it shows is part-way through.
pub fn note_writer(staging: &Path) -> Option<Holder> {
    note_writer_in(&manifest::state_dir(staging), "staging", staging)
}

/// [`note_writer`] of the lock whose files are in `dir`, for the folder `what` `shown`.
pub fn note_writer_in(dir: &Path, what: &str, shown: &Path) -> Option<Holder> {
    let staging = shown;
    let holder = writer_in(dir)?;
    eprintln!(
        "musync: note: {} is changing {what} {} now; this shows it part-way through that run",
        holder.describe(now()),
        staging.display()
    );
    Some(holder)
}

/// Whether `e` is a refusal because another run holds the lock.
pub fn is_busy(e: &anyhow::Error) -> bool {
    e.is::<Busy>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holders_note_round_trips_and_tolerates_damage() {
        let me = Holder {
            pid: Some(42),
            command: Some("sync".into()),
            started: Some(1000),
        };
        assert_eq!(Holder::parse(&me.to_text()), me);
        assert_eq!(
            me.describe(1000 + 185),
            "musync sync (pid 42, started 3 min ago)"
        );
        let torn = Holder::parse("pid 4x\ncommand con\0vert\nstar");
        assert_eq!(torn.describe(0), r"musync con\u{0}vert");
        assert_eq!(Holder::parse("").describe(5), "another musync run");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(0), "0 s ago");
        assert_eq!(ago(119), "119 s ago");
        assert_eq!(ago(7199), "119 min ago");
        assert_eq!(ago(7200), "2 h ago");
        assert_eq!(ago(200_000), "2 days ago");
    }

    #[test]
    fn one_writer_at_a_time_and_readers_see_it() {
        let staging = tempfile::tempdir().unwrap();
        assert_eq!(writer(staging.path()), None);
        assert!(
            !manifest::state_dir(staging.path()).exists(),
            "asking created the state folder"
        );
        let held = take(staging.path(), "convert", false).unwrap();
        let holder = writer(staging.path()).expect("the writer is seen");
        assert_eq!(holder.pid, Some(std::process::id()));
        assert_eq!(holder.command.as_deref(), Some("convert"));
        // Asking did not take the writers' lock from under the holder.
        let err = take(staging.path(), "tag", false).unwrap_err();
        assert!(is_busy(&err), "{err:#}");
        let text = format!("{err:#}");
        assert!(
            text.contains("in use by musync convert (pid ") && text.contains("--wait"),
            "{text}"
        );
        drop(held);
        assert_eq!(writer(staging.path()), None);
        let again = take(staging.path(), "tag", false).unwrap();
        let note = fs::read_to_string(manifest::state_dir(staging.path()).join(LOCK)).unwrap();
        assert_eq!(Holder::parse(&note).command.as_deref(), Some("tag"));
        drop(again);
    }

    #[test]
    fn a_waiting_writer_gets_the_lock_when_it_is_freed() {
        let staging = tempfile::tempdir().unwrap();
        let held = take(staging.path(), "sync", false).unwrap();
        let path = staging.path().to_path_buf();
        let waiter = std::thread::spawn(move || take(&path, "push", true).map(drop));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!waiter.is_finished(), "the waiter did not wait");
        drop(held);
        waiter.join().unwrap().unwrap();
    }
}
