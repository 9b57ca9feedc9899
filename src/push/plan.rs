//! The push planner: a pure function from (the mirror, the remote's listing, what musync pushed
//! before) to the steps that make the remote equal the mirror. It may only delete files musync
//! itself pushed and that are no longer in the mirror; that is asserted, not just intended.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rclone::RemoteFile;

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
    /// The modification time the remote listed for the file after musync put it there, as
    /// rclone prints it; `None` until a listing shows it (the push after the upload adopts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<String>,
}

/// A file of the remote's listing, as the planner sees it: its size. The push plans from
/// rclone's listing as it is, with no copy; the tests from sizes alone.
pub trait Listed {
    fn size(&self) -> u64;
}

impl Listed for u64 {
    fn size(&self) -> u64 {
        *self
    }
}

impl Listed for RemoteFile {
    fn size(&self) -> u64 {
        self.size
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub backup: bool,
    /// Also delete remote files musync did not put there.
    pub delete_foreign: bool,
    /// The remote takes `a.mp3` and `A.mp3` for one file (SMB, FAT and exFAT disks).
    pub case_insensitive: bool,
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
///
/// On a case-insensitive remote a listed file whose name differs only in case from one musync
/// pushed (or was pushing) is that file: the server kept the case it had. A file that differs
/// only in case from one about to be written is in its way: it is backed up first like any
/// file replaced, and deleted by nothing that runs after the write.
pub fn plan(
    mirror: &BTreeMap<String, Local>,
    remote: &BTreeMap<String, impl Listed>,
    pushed: &BTreeMap<String, Pushed>,
    pending: &BTreeMap<String, Pushed>,
    opts: Options,
) -> Plan {
    plan_with_changes(mirror, remote, pushed, pending, &BTreeSet::new(), opts)
}

/// `plan`, with `changed` the files musync pushed whose server copy changed at the same size
/// (`changed_on_server`): each is treated as not what musync pushed (restored, or backed up
/// and deleted), never as unchanged nor moved.
pub fn plan_with_changes(
    mirror: &BTreeMap<String, Local>,
    remote: &BTreeMap<String, impl Listed>,
    pushed: &BTreeMap<String, Pushed>,
    pending: &BTreeMap<String, Pushed>,
    changed: &BTreeSet<String>,
    opts: Options,
) -> Plan {
    if !opts.case_insensitive {
        return plan_exact(mirror, remote, pushed, pending, changed, opts);
    }
    let remote = &as_recorded(mirror, remote, pushed, pending);
    let mut plan = plan_exact(mirror, remote, pushed, pending, changed, opts);
    let mut listed: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for path in remote.keys() {
        listed.entry(fold(path)).or_default().push(path);
    }
    let sources: BTreeSet<&String> = plan.moves.iter().map(|(from, _)| from).collect();
    let backed_up: BTreeSet<&String> = plan.backups.iter().collect();
    let written = plan
        .uploads
        .iter()
        .chain(plan.moves.iter().map(|(_, to)| to));
    let mut in_the_way = Vec::new();
    for path in written {
        for other in listed.get(&fold(path)).into_iter().flatten() {
            let moving_away = sources.contains(other) || backed_up.contains(other);
            if *other != path && !moving_away && opts.backup {
                in_the_way.push((*other).clone());
            }
        }
    }
    drop(backed_up);
    plan.backups.extend(in_the_way);
    plan.backups.sort();
    plan.backups.dedup();
    // Deletions run after the uploads: one of a name the mirror has in another case would
    // delete the file just written. The write replaced it; it is only forgotten.
    let wanted: BTreeSet<String> = mirror.keys().map(|p| fold(p)).collect();
    let (replaced, deletes): (Vec<String>, Vec<String>) = std::mem::take(&mut plan.deletes)
        .into_iter()
        .partition(|p| wanted.contains(&fold(p)));
    plan.deletes = deletes;
    let replaced_set: BTreeSet<&String> = replaced.iter().collect();
    plan.removed.retain(|p| !replaced_set.contains(p));
    drop(replaced_set);
    plan.forgotten.extend(replaced);
    for path in &plan.deletes {
        assert!(
            !wanted.contains(&fold(path)),
            "the push plan would delete {path}, which is in the mirror in another case"
        );
    }
    plan
}

/// Whether two different names among the mirror, the listing and the push state differ only
/// in case. If none do, a case-insensitive remote gets the very plan a case-sensitive one gets,
/// and the push needs not ask which one it has.
pub fn case_matters(
    mirror: &BTreeMap<String, Local>,
    remote: &BTreeMap<String, impl Listed>,
    pushed: &BTreeMap<String, Pushed>,
    pending: &BTreeMap<String, Pushed>,
) -> bool {
    let none = BTreeSet::new();
    let rows = rows(mirror, remote, pushed, pending, &none);
    let mut seen = HashSet::with_capacity(rows.len());
    // The rows are distinct paths: two with one folded name differ in case alone.
    rows.iter().any(|row| !seen.insert(fold(row.path)))
}

/// A name as a case-insensitive remote compares it.
pub fn fold(path: &str) -> String {
    path.to_lowercase()
}

/// The listing of a case-insensitive remote with each file that differs only in case from one
/// musync pushed, or was pushing, and that is not listed itself, under the recorded name.
fn as_recorded(
    mirror: &BTreeMap<String, Local>,
    remote: &BTreeMap<String, impl Listed>,
    pushed: &BTreeMap<String, Pushed>,
    pending: &BTreeMap<String, Pushed>,
) -> BTreeMap<String, u64> {
    let mut ours: HashMap<String, &String> = HashMap::new();
    for path in unlisted(pushed, remote).chain(unlisted(pending, remote)) {
        ours.entry(fold(path)).or_insert(path);
    }
    if ours.is_empty() {
        return (remote.iter())
            .map(|(p, f)| (p.clone(), f.size()))
            .collect();
    }
    let none = BTreeSet::new();
    let rows = rows(mirror, remote, pushed, pending, &none);
    let recorded = rows.iter().filter_map(|row| {
        let size = row.remote?;
        let known = row.local.is_some() || row.pushed.is_some() || row.pending.is_some();
        let name = match ours.get(&fold(row.path)) {
            Some(ours) if !known => (*ours).clone(),
            _ => row.path.clone(),
        };
        Some((name, size))
    });
    recorded.collect()
}

/// The keys of `map` that are not keys of `listing`, in order, by one walk of both.
fn unlisted<'a, V, W>(
    map: &'a BTreeMap<String, V>,
    listing: &'a BTreeMap<String, W>,
) -> impl Iterator<Item = &'a String> {
    let mut listed = listing.keys().peekable();
    map.keys()
        .filter(move |path| seek(&mut listed, |l| l.as_str().cmp(path)).is_none())
}

/// Advances a sorted walk past every item before the one sought and takes it if it is there:
/// `cmp` orders an item against the one sought. Walking a sorted map this way for each key of
/// another, in order, visits each of its items once (a lookup each would cost log n).
fn seek<I: Iterator>(
    walk: &mut std::iter::Peekable<I>,
    cmp: impl Fn(&I::Item) -> std::cmp::Ordering,
) -> Option<I::Item> {
    while walk.next_if(|item| cmp(item).is_lt()).is_some() {}
    walk.next_if(|item| cmp(item).is_eq())
}

fn plan_exact(
    mirror: &BTreeMap<String, Local>,
    remote: &BTreeMap<String, impl Listed>,
    pushed: &BTreeMap<String, Pushed>,
    pending: &BTreeMap<String, Pushed>,
    changed: &BTreeSet<String>,
    opts: Options,
) -> Plan {
    let mut plan = Plan::default();
    let rows = rows(mirror, remote, pushed, pending, changed);
    // Files musync pushed that the mirror no longer has at their path, by content: each may be
    // moved, server-side, to one new path of the same content instead of uploaded again.
    let mut movable: HashMap<(&str, u64), Vec<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate().rev() {
        if let (None, Some(size), Some(p)) = (row.local, row.remote, row.pushed)
            && p.size == size
            && !row.changed
            && row.pending.is_none()
        {
            movable.entry((&p.hash, size)).or_default().push(i);
        }
    }
    let mut claimed = vec![false; rows.len()];
    for row in &rows {
        let (path, ours, pending) = (row.path, row.pushed, row.pending);
        let Some(local) = row.local else { continue };
        let drifted = pending.is_none() && row.changed;
        match row.remote {
            Some(size) if pending.is_none() && !drifted && same(size, ours, local) => {
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
                if drifted || (pending.is_none() && ours.is_some_and(|p| p.size != size)) {
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
                    claimed[from] = true;
                    plan.moves.push((rows[from].path.clone(), path.clone()));
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
    // A pending file that did not land is forgotten (and uploaded again if still wanted),
    // after the pushed files that are gone.
    let mut never_landed = Vec::new();
    for (row, claimed) in rows.iter().zip(claimed) {
        let path = row.path;
        let ours = row.pushed.is_some() || row.pending.is_some();
        match (row.local, row.remote, row.pushed) {
            (None, Some(_), _) if !claimed && (ours || opts.delete_foreign) => {
                plan.removed.push(path.clone());
                if opts.backup {
                    plan.backups.push(path.clone());
                } else {
                    plan.deletes.push(path.clone());
                }
            }
            (None, None, Some(_)) => plan.forgotten.push(path.clone()),
            (_, None, _) if row.pending.is_some() => never_landed.push(path.clone()),
            _ => {}
        }
    }
    plan.forgotten.extend(never_landed);
    // The whole point of musync: a file of the mirror is never deleted from the remote.
    let mut staged = mirror.keys().peekable();
    for path in &plan.removed {
        assert!(
            seek(&mut staged, |p| p.as_str().cmp(path)).is_none(),
            "the push plan would delete {path}, which is in the mirror"
        );
    }
    plan.backups.sort();
    plan
}

/// The files musync pushed whose listed modification time is not the one recorded: changed on
/// the server, whatever their size. A file with no recorded time (pushed since the last listing,
/// or by an older musync) or none listed is judged by its size alone.
pub fn changed_on_server(
    pushed: &BTreeMap<String, Pushed>,
    listed: &BTreeMap<String, RemoteFile>,
) -> BTreeSet<String> {
    let mut listed = listed.iter().peekable();
    (pushed.iter())
        .filter(|(path, p)| {
            let now = seek(&mut listed, |l| l.0.cmp(path));
            let (Some(was), Some((_, now))) = (p.mtime.as_deref(), now) else {
                return false;
            };
            now.mtime.as_deref().is_some_and(|now| !same_time(was, now))
        })
        .map(|(path, _)| path.clone())
        .collect()
}

/// Records the listed time of each pushed file that has none yet and is listed at the size
/// musync pushed (the first listing after its upload, or a state written before times were
/// kept). Whether any was recorded: the state then needs saving.
pub fn adopt_times(
    pushed: &mut BTreeMap<String, Pushed>,
    listed: &BTreeMap<String, RemoteFile>,
) -> bool {
    let mut adopted = false;
    let mut listed = listed.iter().peekable();
    for (path, p) in pushed.iter_mut() {
        let now = seek(&mut listed, |l| l.0.cmp(path));
        if p.mtime.is_none()
            && let Some((
                _,
                RemoteFile {
                    size,
                    mtime: Some(t),
                },
            )) = now
            && *size == p.size
        {
            p.mtime = Some(t.clone());
            adopted = true;
        }
    }
    adopted
}

/// Whether two times as rclone lists them (RFC 3339) are one instant: the same time prints
/// with another offset when the machine's time zone or daylight saving time changes.
pub fn same_time(a: &str, b: &str) -> bool {
    // The common case by far, and a no-op push asks it of every file.
    if a == b {
        return true;
    }
    match (instant(a), instant(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// An RFC 3339 time as (seconds since 1970 UTC, nanoseconds).
fn instant(time: &str) -> Option<(i64, u32)> {
    let num = |s: &str| -> Option<i64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (date, rest) = time.split_once(['T', 't'])?;
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (num(ymd.next()?)?, num(ymd.next()?)?, num(ymd.next()?)?);
    let split = rest.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = rest.split_at(split);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.splitn(3, ':');
    let (h, mi, s) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        u32::try_from(num(&digits)?).ok()?
    };
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let (oh, om) = zone[1..].split_once(':')?;
            let minutes = num(oh)? * 60 + num(om)?;
            if zone.starts_with('-') {
                -minutes
            } else {
                minutes
            }
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + s - offset * 60, nanos))
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
    pending: Option<&'a Pushed>,
    /// Pushed by musync and changed on the server since (`changed_on_server`).
    changed: bool,
}

/// Every path of the maps, in order, in one merging pass (no lookups: a no-op push of a large
/// mirror spends its time here otherwise, and a lookup each would make it n log n).
fn rows<'a>(
    mirror: &'a BTreeMap<String, Local>,
    remote: &'a BTreeMap<String, impl Listed>,
    pushed: &'a BTreeMap<String, Pushed>,
    pending: &'a BTreeMap<String, Pushed>,
    changed: &'a BTreeSet<String>,
) -> Vec<Row<'a>> {
    let (mut m, mut r, mut p, mut q, mut c) = (
        mirror.iter().peekable(),
        remote.iter().peekable(),
        pushed.iter().peekable(),
        pending.iter().peekable(),
        changed.iter().peekable(),
    );
    let mut rows = Vec::with_capacity(mirror.len().max(remote.len()).max(pushed.len()));
    loop {
        let next = [
            m.peek().map(|e| e.0),
            r.peek().map(|e| e.0),
            p.peek().map(|e| e.0),
            q.peek().map(|e| e.0),
            c.peek().copied(),
        ];
        let Some(path) = next.into_iter().flatten().min() else {
            return rows;
        };
        rows.push(Row {
            path,
            local: m.next_if(|e| e.0 == path).map(|e| e.1),
            remote: r.next_if(|e| e.0 == path).map(|e| e.1.size()),
            pushed: p.next_if(|e| e.0 == path).map(|e| e.1),
            pending: q.next_if(|e| e.0 == path).map(|e| e.1),
            changed: c.next_if(|e| *e == path).is_some(),
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
        /// Then remove `from_dir` and its folders if emptied: a case-insensitive remote keeps
        /// an existing folder's case, so the old folder must be gone before the new one is made.
        prune: bool,
    },
    /// One file, renamed on its own.
    File { from: String, to: String },
}

/// Groups moves by the folder rename they share: `Jazz/A/x.mp3 -> Blues/A/x.mp3` is the
/// rename `Jazz -> Blues` applied to `A/x.mp3` (the longest common trailing part). A move whose
/// file name changes, or whose folders nest (`A -> A/B`), is a `File` step.
///
/// The folders a push leaves with no file, each named once by its topmost such folder (rclone's
/// `rmdirs` then removes it and the empty folders under it): every folder above a file that
/// leaves it (`gone`: moved away, deleted, backed up) under which no file of `remaining` (the
/// remote's files after the push, musync's or not) lies. Never the remote root, nor musync's
/// own folders (backups, uploads). On a case-insensitive remote a folder differing only in case
/// from one that keeps a file is that folder.
pub fn emptied_dirs<'a>(
    gone: impl IntoIterator<Item = &'a str>,
    remaining: impl IntoIterator<Item = &'a str>,
    case_insensitive: bool,
) -> Vec<String> {
    fn parents(path: &str) -> impl Iterator<Item = &str> {
        path.match_indices('/').map(|(i, _)| &path[..i])
    }
    let own = |dir: &str| {
        let top = dir.split('/').next().unwrap_or(dir);
        top == super::BACKUP_DIR || top == super::UPLOAD_DIR
    };
    // The folders of the few files that leave, then struck off by one walk of the files that
    // stay: a push that removes nothing walks nothing.
    let mut emptied: BTreeSet<&str> = (gone.into_iter().flat_map(parents))
        .filter(|d| !d.is_empty() && !own(d))
        .collect();
    if emptied.is_empty() {
        return Vec::new();
    }
    if case_insensitive {
        let mut by_key: HashMap<String, Vec<&str>> = HashMap::new();
        for dir in &emptied {
            by_key.entry(dir.to_lowercase()).or_default().push(dir);
        }
        for dir in remaining.into_iter().flat_map(parents) {
            if by_key.is_empty() {
                break;
            }
            for kept in by_key.remove(&dir.to_lowercase()).into_iter().flatten() {
                emptied.remove(kept);
            }
        }
    } else {
        for dir in remaining.into_iter().flat_map(parents) {
            if emptied.is_empty() {
                break;
            }
            emptied.remove(dir);
        }
    }
    (emptied.iter())
        .filter(|d| !parents(d).any(|p| emptied.contains(p)))
        .map(|d| (*d).to_owned())
        .collect()
}

/// On a case-insensitive remote a rename that changes only case is a move onto itself (rclone
/// refuses it for a folder, as overlapping): it runs as two, through a hidden temporary name
/// made with `tag`, unique to the push.
pub fn move_steps(moves: &[(String, String)], case_insensitive: bool, tag: &str) -> Vec<MoveStep> {
    let same = |a: &str, b: &str| {
        if case_insensitive {
            fold(a) == fold(b)
        } else {
            a == b
        }
    };
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
        let nested = |a: &str, b: &str| {
            let (a, b) = if case_insensitive {
                (fold(a), fold(b))
            } else {
                (a.to_owned(), b.to_owned())
            };
            b.strip_prefix(&a).is_some_and(|rest| rest.starts_with('/'))
        };
        if common == 0
            || from_dir.is_empty()
            || to_dir.is_empty()
            || nested(&from_dir, &to_dir)
            || nested(&to_dir, &from_dir)
        {
            if same(from, to) {
                let temp = temp_name(from, tag, steps.len());
                steps.push(MoveStep::File {
                    from: from.clone(),
                    to: temp.clone(),
                });
                steps.push(MoveStep::File {
                    from: temp,
                    to: to.clone(),
                });
            } else {
                steps.push(MoveStep::File {
                    from: from.clone(),
                    to: to.clone(),
                });
            }
        } else {
            folders
                .entry((from_dir, to_dir))
                .or_default()
                .push(f[f.len() - common..].join("/"));
        }
    }
    let mut folder_steps = Vec::new();
    for (n, ((from_dir, to_dir), files)) in folders.into_iter().enumerate() {
        if same(&from_dir, &to_dir) {
            let temp = temp_name(&from_dir, tag, n);
            folder_steps.push(MoveStep::Folder {
                from_dir,
                to_dir: temp.clone(),
                files: files.clone(),
                prune: true,
            });
            folder_steps.push(MoveStep::Folder {
                from_dir: temp,
                to_dir,
                files,
                prune: true,
            });
        } else {
            folder_steps.push(MoveStep::Folder {
                from_dir,
                to_dir,
                files,
                prune: false,
            });
        }
    }
    folder_steps.extend(steps);
    folder_steps
}

/// A hidden name beside `path` for the middle of a case-only rename: `G/.musync-rename-<tag>-<n>`.
fn temp_name(path: &str, tag: &str, n: usize) -> String {
    let name = format!(".musync-rename-{tag}-{n}");
    match path.rsplit_once('/') {
        Some((parent, _)) => format!("{parent}/{name}"),
        None => name,
    }
}

/// The symbolic link on the remote at `path` or at one of its folders, if any: writing there
/// would write through it, outside the remote.
pub fn link_at<'a>(path: &str, links: &'a BTreeSet<String>) -> Option<&'a String> {
    // Asked of every staged file; remotes with a link are rare.
    if links.is_empty() {
        return None;
    }
    let folders = path.match_indices('/').map(|(i, _)| &path[..i]);
    folders.chain([path]).find_map(|p| links.get(p))
}

/// How to learn whether a remote ignores case from what its listing shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseProbe {
    /// Two names differing only in case are both listed, or no name could tell.
    Sensitive,
    /// List folder `dir` (a listed folder with its case flipped): a case-insensitive remote
    /// shows `name` in it, a case-sensitive one has no such folder.
    Ask { dir: String, name: String },
}

pub fn case_probe<'a>(listing: impl IntoIterator<Item = &'a String> + Clone) -> CaseProbe {
    let mut seen = BTreeSet::new();
    for path in listing.clone() {
        if !seen.insert(fold(path)) {
            return CaseProbe::Sensitive;
        }
    }
    let dirs: BTreeSet<&str> = (listing.clone().into_iter())
        .filter_map(|p| p.rsplit_once('/').map(|(dir, _)| dir))
        .collect();
    for path in listing {
        let Some((dir, name)) = path.rsplit_once('/') else {
            continue;
        };
        let flipped: String = dir.chars().map(flip_case).collect();
        if flipped != dir && !dirs.contains(flipped.as_str()) {
            return CaseProbe::Ask {
                dir: flipped,
                name: name.to_owned(),
            };
        }
    }
    CaseProbe::Sensitive
}

/// `a` ↔ `A`; a character without a single other case stays.
fn flip_case(c: char) -> char {
    let other: String = if c.is_lowercase() {
        c.to_uppercase().collect()
    } else {
        c.to_lowercase().collect()
    };
    let mut chars = other.chars();
    match (chars.next(), chars.next()) {
        (Some(o), None) => o,
        _ => c,
    }
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
