//! The push planner: a pure function from (the mirror, the remote's listing, what musync pushed
//! before) to the steps that make the remote equal the mirror. It may only delete files musync
//! itself pushed and that are no longer in the mirror; that is asserted, not just intended.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// A staged file to be on the remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    pub size: u64,
    pub hash: String,
}

/// What musync put on the remote earlier (the push state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    pub size: u64,
    pub hash: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub backup: bool,
    /// Also delete remote files musync did not put there.
    pub delete_foreign: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Remote files moved into the backup folder first: those about to be overwritten or deleted.
    pub backups: Vec<String>,
    /// Server-side renames (from, to): a file musync pushed, now wanted under another path.
    pub moves: Vec<(String, String)>,
    pub uploads: Vec<String>,
    pub bytes: u64,
    /// Deleted outright (only without backups; with backups a deletion is a backup).
    pub deletes: Vec<String>,
    /// Files deleted from the remote in all (through `deletes` or `backups`).
    pub removed: Vec<String>,
    /// Already on the remote with the right size though not in the push state (a push killed
    /// after its upload): recorded without a transfer. A pending file only if it holds what is
    /// staged now.
    pub adopted: Vec<String>,
    /// Files musync pushed, or was putting there, that are gone from the remote: only forgotten.
    pub forgotten: Vec<String>,
    /// Uploads that put back what someone deleted or changed on the server.
    pub restored: Vec<String>,
    pub unchanged: usize,
}

/// `pending` is what calls that never reported back may have put on the remote (the push
/// state's `pending`): musync's own files, but of uncertain content.
pub fn plan(
    mirror: &BTreeMap<String, Local>,
    remote: &BTreeMap<String, u64>,
    pushed: &BTreeMap<String, Pushed>,
    pending: &BTreeMap<String, Pushed>,
    opts: Options,
) -> Plan {
    let mut plan = Plan::default();
    let rows = rows(mirror, remote, pushed);
    // Files musync pushed that the mirror no longer has at their path, by content: each may be
    // moved, server-side, to one new path of the same content instead of uploaded again.
    let mut movable: BTreeMap<(&str, u64), Vec<&String>> = BTreeMap::new();
    for row in rows.iter().rev() {
        if let (None, Some(size), Some(p)) = (row.local, row.remote, row.pushed)
            && p.size == size
            && !pending.contains_key(row.path)
        {
            movable.entry((&p.hash, size)).or_default().push(row.path);
        }
    }
    let mut claimed = BTreeSet::new();
    for row in &rows {
        let (path, ours) = (row.path, row.pushed);
        let Some(local) = row.local else { continue };
        let pending = pending.get(path);
        match row.remote {
            Some(size) if pending.is_none() && same(size, ours, local) => {
                if ours.is_some() {
                    plan.unchanged += 1;
                } else {
                    plan.adopted.push(path.clone());
                }
            }
            // The file is what the unfinished call was putting there, and cannot be the one it
            // replaced, which may still be there: the size tells them apart.
            Some(size)
                if pending.is_some_and(|p| same(size, Some(p), local))
                    && ours.is_none_or(|p| p.size != size || p.hash == local.hash) =>
            {
                plan.adopted.push(path.clone());
            }
            Some(size) => {
                if pending.is_none() && ours.is_some_and(|p| p.size != size) {
                    plan.restored.push(path.clone());
                }
                if opts.backup {
                    plan.backups.push(path.clone());
                }
                plan.uploads.push(path.clone());
                plan.bytes += local.size;
            }
            None => {
                let from = movable
                    .get_mut(&(local.hash.as_str(), local.size))
                    .and_then(Vec::pop);
                if let Some(from) = from {
                    claimed.insert(from);
                    plan.moves.push((from.clone(), path.clone()));
                } else {
                    if ours.is_some() && pending.is_none() {
                        plan.restored.push(path.clone());
                    }
                    plan.uploads.push(path.clone());
                    plan.bytes += local.size;
                }
            }
        }
    }
    for row in &rows {
        let path = row.path;
        let ours = row.pushed.is_some() || pending.contains_key(path);
        match (row.local, row.remote, row.pushed) {
            (None, Some(_), _) if !claimed.contains(path) && (ours || opts.delete_foreign) => {
                plan.removed.push(path.clone());
                if opts.backup {
                    plan.backups.push(path.clone());
                } else {
                    plan.deletes.push(path.clone());
                }
            }
            (None, None, Some(_)) => plan.forgotten.push(path.clone()),
            _ => {}
        }
    }
    // A pending file that did not land is forgotten (and uploaded again if still wanted).
    for path in pending.keys() {
        if !remote.contains_key(path) && !plan.forgotten.contains(path) {
            plan.forgotten.push(path.clone());
        }
    }
    // The whole point of musync: a file of the mirror is never deleted from the remote.
    for path in &plan.removed {
        assert!(
            !mirror.contains_key(path),
            "the push plan would delete {path}, which is in the mirror"
        );
    }
    plan.backups.sort();
    plan
}

/// Whether a remote file of `size`, known to hold `ours` if anything, is the staged `local`.
fn same(size: u64, ours: Option<&Pushed>, local: &Local) -> bool {
    size == local.size && ours.is_none_or(|p| p.size == size && p.hash == local.hash)
}

/// What the mirror, the remote and the push state each say about one path.
struct Row<'a> {
    path: &'a String,
    local: Option<&'a Local>,
    remote: Option<u64>,
    pushed: Option<&'a Pushed>,
}

/// Every path of the three maps, in order, in one merging pass (no lookups: a no-op push of a
/// large mirror spends its time here otherwise).
fn rows<'a>(
    mirror: &'a BTreeMap<String, Local>,
    remote: &'a BTreeMap<String, u64>,
    pushed: &'a BTreeMap<String, Pushed>,
) -> Vec<Row<'a>> {
    let (mut m, mut r, mut p) = (
        mirror.iter().peekable(),
        remote.iter().peekable(),
        pushed.iter().peekable(),
    );
    let mut rows = Vec::with_capacity(mirror.len().max(remote.len()));
    loop {
        let next = [
            m.peek().map(|e| e.0),
            r.peek().map(|e| e.0),
            p.peek().map(|e| e.0),
        ];
        let Some(path) = next.into_iter().flatten().min() else {
            return rows;
        };
        rows.push(Row {
            path,
            local: m.next_if(|e| e.0 == path).map(|e| e.1),
            remote: r.next_if(|e| e.0 == path).map(|e| *e.1),
            pushed: p.next_if(|e| e.0 == path).map(|e| e.1),
        });
    }
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.backups.is_empty()
            && self.moves.is_empty()
            && self.uploads.is_empty()
            && self.deletes.is_empty()
            && self.adopted.is_empty()
            && self.forgotten.is_empty()
    }

    /// One line per step, in the order they run.
    pub fn lines(&self, mirror: &BTreeMap<String, Local>) -> Vec<String> {
        let mut lines: Vec<String> = self.backups.iter().map(|p| format!("backup {p}")).collect();
        lines.extend(
            self.moves
                .iter()
                .map(|(from, to)| format!("move   {from} -> {to}")),
        );
        lines.extend(self.uploads.iter().map(|p| {
            let size = mirror.get(p).map_or(0, |l| l.size);
            format!("upload {p} ({size} bytes)")
        }));
        lines.extend(self.deletes.iter().map(|p| format!("delete {p}")));
        lines
    }
}

/// How the planned moves run: as few rclone calls as the renames allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MoveStep {
    /// `files` (paths relative to `from_dir`) move to the same paths under `to_dir`: a renamed
    /// album, artist or genre folder is one call, however many files it holds.
    Folder {
        from_dir: String,
        to_dir: String,
        files: Vec<String>,
    },
    /// One file, renamed on its own.
    File { from: String, to: String },
}

/// Groups moves by the folder rename they share: `Jazz/A/x.mp3 -> Blues/A/x.mp3` is the
/// rename `Jazz -> Blues` applied to `A/x.mp3` (the longest common trailing part). A move whose
/// file name changes, or whose folders nest (`A -> A/B`), is a `File` step.
pub fn move_steps(moves: &[(String, String)]) -> Vec<MoveStep> {
    let mut folders: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut steps = Vec::new();
    for (from, to) in moves {
        let (f, t): (Vec<&str>, Vec<&str>) = (from.split('/').collect(), to.split('/').collect());
        let common = f
            .iter()
            .rev()
            .zip(t.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let (from_dir, to_dir) = (
            f[..f.len() - common].join("/"),
            t[..t.len() - common].join("/"),
        );
        let nested = |a: &str, b: &str| b.strip_prefix(a).is_some_and(|rest| rest.starts_with('/'));
        if common == 0
            || from_dir.is_empty()
            || to_dir.is_empty()
            || nested(&from_dir, &to_dir)
            || nested(&to_dir, &from_dir)
        {
            steps.push(MoveStep::File {
                from: from.clone(),
                to: to.clone(),
            });
        } else {
            folders
                .entry((from_dir, to_dir))
                .or_default()
                .push(f[f.len() - common..].join("/"));
        }
    }
    let folder_steps = folders
        .into_iter()
        .map(|((from_dir, to_dir), files)| MoveStep::Folder {
            from_dir,
            to_dir,
            files,
        });
    folder_steps.chain(steps).collect()
}

/// How many deletions a push may make before it refuses: a number or a percentage of the files
/// musync manages on that remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteCap {
    Count(usize),
    Percent(u8),
}

impl DeleteCap {
    pub fn allows(self, deletions: usize, managed: usize) -> bool {
        match self {
            DeleteCap::Count(n) => deletions <= n,
            DeleteCap::Percent(p) => deletions * 100 <= managed * usize::from(p),
        }
    }
}

impl std::str::FromStr for DeleteCap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{s}` is not a delete cap: use a number (e.g. 100) or a percentage (e.g. 50%)")
        };
        match s.strip_suffix('%') {
            Some(p) => p
                .parse()
                .ok()
                .filter(|&p| p <= 100)
                .map(DeleteCap::Percent)
                .ok_or_else(bad),
            None => s.parse().map(DeleteCap::Count).map_err(|_| bad()),
        }
    }
}

impl fmt::Display for DeleteCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeleteCap::Count(n) => write!(f, "{n}"),
            DeleteCap::Percent(p) => write!(f, "{p}%"),
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
