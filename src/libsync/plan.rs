//! The bisync planner: a pure function from (the previous state, the library's listing, the
//! peer's listing) to the ordered actions that bring both sides in step, after syncrclone's
//! algorithm. It must not touch a file; the effects carry out its plan.
//!
//! - Each side's files are judged new, modified, unchanged or deleted against that side's own
//!   entry in the previous state, by [`Compare::same`].
//! - First run (no previous state): a merge. A file on one side only is copied to the other,
//!   a file that differs is a conflict, nothing is deleted.
//! - Later runs: a new or modified file goes across; a deletion goes across only if the other
//!   side's file is unchanged since the previous run (modified wins over deleted: the modified
//!   file is copied back); the same change on both sides (equal files, or both deleted) is no
//!   action; a file changed on both sides is a conflict, settled by [`ConflictMode`].
//! - Renames: a vanished and a new file on one side with the same key (by [`Renames`]: size;
//!   size and exact mtime; size and hash) and equal by [`Compare::same`] are a rename when the
//!   key is unique among that side's vanished and new files (ambiguous matches are not renames).
//!   It is replayed as a move on the other side when the other side's file at the old path is
//!   unchanged since the previous run and equal to the renamed file, and the new path is free
//!   there. Otherwise it is a deletion plus a new file. A folder rename is many file renames.
//! - Keep-both: each version is renamed on its own side to `<stem> (<side> <date>).<ext>`
//!   (e.g. `01 Song (library 2026-11-30).flac` and `01 Song (peer 2026-11-30).flac`), then copied
//!   to the other side; the original name is gone from both. A name already in either listing or
//!   chosen earlier in the plan gets a counter: `01 Song (peer 2026-11-30 2).flac`.
//! - Order: moves first (they only go to free paths and free the paths copies then write), then
//!   copies, then deletions last (a run killed early leaves extra files, never missing ones). No
//!   two actions touch one path of one side.
//! - Paths in musync's own folders at a side's root ([`RESERVED`]: backups, temporary files)
//!   are left out of every listing, whatever the caller passes.
//! - [`settle`] is the next previous state, from listings taken after a run (complete or not):
//!   a path both sides agree on takes the current entries, any other keeps its old entries, so
//!   the next run redoes what did not happen. Any subset of a plan's actions, done in order,
//!   then settled (or not), leaves sides from which the next plan converges without losing a
//!   version (the property tests in `model_tests` check it).
//! - [`guard`] refuses a side that is empty while it had files at the last run, and more
//!   deletions on a side than the delete cap allows out of its files (deletions only: a copy
//!   over a file backs the old one up too, but replaces it with a version of the same file).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use super::{
    Action, Compare, Conflict, ConflictMode, Entry, Listing, Options, RESERVED, Renames, Side,
    State,
};

/// The delete cap (`N` or `N%`), applied to each side on its own.
pub type Cap = crate::push::plan::DeleteCap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Applied in order, one at a time.
    pub actions: Vec<Action>,
    pub conflicts: Vec<Conflict>,
    /// Paths already equal on both sides.
    pub unchanged: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            conflicts: self.conflicts.len(),
            unchanged: self.unchanged,
            ..Counts::default()
        };
        for action in &self.actions {
            let library = action.target() == Side::Library;
            let n = match action {
                Action::Copy { .. } if library => &mut c.to_library,
                Action::Copy { .. } => &mut c.to_peer,
                Action::Move { .. } if library => &mut c.moved_library,
                Action::Move { .. } => &mut c.moved_peer,
                Action::Delete { .. } if library => &mut c.deleted_library,
                Action::Delete { .. } => &mut c.deleted_peer,
            };
            *n += 1;
        }
        c
    }
}

/// A plan's size, by kind and by the side written to (the names of bisync's `--json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub to_library: usize,
    pub to_peer: usize,
    pub moved_library: usize,
    pub moved_peer: usize,
    pub deleted_library: usize,
    pub deleted_peer: usize,
    pub conflicts: usize,
    pub unchanged: usize,
}

impl Counts {
    pub fn deleted(&self, side: Side) -> usize {
        match side {
            Side::Library => self.deleted_library,
            Side::Peer => self.deleted_peer,
        }
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to library, {} to peer, {} moved on library, {} moved on peer, \
             {} deleted on library, {} deleted on peer, {} conflicts",
            self.to_library,
            self.to_peer,
            self.moved_library,
            self.moved_peer,
            self.deleted_library,
            self.deleted_peer,
            self.conflicts
        )
    }
}

impl Compare {
    /// Whether two entries hold the same file: `Size` compares sizes; `Mtime` sizes and
    /// modification times (differing by less than `window_ns`, at least 1 ns); `Hash` sizes and
    /// hashes, falling back to modification times when either entry has no hash.
    pub fn same(self, a: &Entry, b: &Entry, window_ns: i64) -> bool {
        if a.size != b.size {
            return false;
        }
        let window = u64::try_from(window_ns.max(1)).unwrap_or(1);
        let mtime = || a.mtime.abs_diff(b.mtime) < window;
        match self {
            Compare::Size => true,
            Compare::Mtime => mtime(),
            Compare::Hash => match (&a.hash, &b.hash) {
                (Some(x), Some(y)) => x == y,
                _ => mtime(),
            },
        }
    }
}

/// How one side's file at a path changed since the previous state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Absent,
    Unchanged,
    New,
    Modified,
    Deleted,
}

pub(crate) fn change(
    prev: Option<&Entry>,
    now: Option<&Entry>,
    same: impl Fn(&Entry, &Entry) -> bool,
) -> Change {
    match (prev, now) {
        (None, None) => Change::Absent,
        (None, Some(_)) => Change::New,
        (Some(_), None) => Change::Deleted,
        (Some(p), Some(n)) if same(p, n) => Change::Unchanged,
        (Some(_), Some(_)) => Change::Modified,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key<'a> {
    Size(u64),
    Mtime(u64, i64),
    Hash(u64, &'a str),
}

fn key(entry: &Entry, renames: Renames) -> Option<Key<'_>> {
    match renames {
        Renames::None => None,
        Renames::Size => Some(Key::Size(entry.size)),
        Renames::Mtime => Some(Key::Mtime(entry.size, entry.mtime)),
        Renames::Hash => entry.hash.as_deref().map(|h| Key::Hash(entry.size, h)),
    }
}

/// The renames on one side since `prev`, as (old path, new path), sorted: a vanished and a new
/// file whose key no other vanished or new file of the side shares, and that are the same file.
pub(crate) fn renames<'a>(
    prev: &'a Listing,
    now: &'a Listing,
    renames: Renames,
    same: impl Fn(&Entry, &Entry) -> bool,
) -> Vec<(&'a str, &'a str)> {
    if renames == Renames::None {
        return Vec::new();
    }
    // Per key: how many vanished and new files have it, and the last of each.
    let mut by_key: HashMap<Key<'a>, (usize, &'a str, usize, &'a str)> = HashMap::new();
    let mut new = Vec::new();
    for (path, was, is) in zip(prev, now) {
        match (was, is) {
            (Some(was), None) => {
                if let Some(k) = key(was, renames) {
                    let slot = by_key.entry(k).or_insert((0, "", 0, ""));
                    slot.0 += 1;
                    slot.1 = path;
                }
            }
            (None, Some(is)) => new.push((path, is)),
            _ => {}
        }
    }
    for (path, entry) in new {
        if let Some(k) = key(entry, renames)
            && let Some(slot) = by_key.get_mut(&k)
        {
            slot.2 += 1;
            slot.3 = path;
        }
    }
    let mut found: Vec<(&str, &str)> = by_key
        .into_values()
        .filter(|&(gone, from, new, to)| gone == 1 && new == 1 && same(&prev[from], &now[to]))
        .map(|(_, from, _, to)| (from, to))
        .collect();
    found.sort_unstable();
    found
}

/// Whether a path lies in one of musync's own folders at the root ([`RESERVED`]).
pub fn reserved(path: &str) -> bool {
    RESERVED.contains(&path.split('/').next().unwrap_or(path))
}

/// A listing without musync's own folders: the planners never sync nor record them, whatever
/// the listing holds. Borrowed when there is none.
pub(crate) fn music(listing: &Listing) -> Cow<'_, Listing> {
    if listing.keys().any(|p| reserved(p)) {
        let kept = listing.iter().filter(|(p, _)| !reserved(p));
        Cow::Owned(kept.map(|(p, e)| (p.clone(), e.clone())).collect())
    } else {
        Cow::Borrowed(listing)
    }
}

/// The paths of two listings in order, each once, with its entry in each: one merge of the
/// two sorted listings, no lookups.
pub(crate) fn zip<'a>(
    a: &'a Listing,
    b: &'a Listing,
) -> impl Iterator<Item = (&'a str, Option<&'a Entry>, Option<&'a Entry>)> {
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    std::iter::from_fn(move || {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((x, _)), Some((y, _))) => x.cmp(y),
        };
        Some(match order {
            Ordering::Less => a.next().map(|(p, x)| (p.as_str(), Some(x), None))?,
            Ordering::Greater => b.next().map(|(p, y)| (p.as_str(), None, Some(y)))?,
            Ordering::Equal => {
                let (p, x) = a.next()?;
                (p.as_str(), Some(x), b.next().map(|(_, y)| y))
            }
        })
    })
}

fn side_of<'a>(side: Side, library: &'a Listing, peer: &'a Listing) -> &'a Listing {
    match side {
        Side::Library => library,
        Side::Peer => peer,
    }
}

/// The keep-both name of `path`'s version from `side`: ` (<side> <date>)` before the extension,
/// with ` <n>` after the date from the second try on, until `free` accepts it.
pub fn keep_both_name(path: &str, side: Side, date: &str, free: impl Fn(&str) -> bool) -> String {
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    let (stem, ext) = match path[name_start..].rfind('.') {
        Some(dot) if dot > 0 => path.split_at(name_start + dot),
        _ => (path, ""),
    };
    let mut n = 1u32;
    loop {
        let candidate = if n == 1 {
            format!("{stem} ({side} {date}){ext}")
        } else {
            format!("{stem} ({side} {date} {n}){ext}")
        };
        if free(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

/// The plan that brings `library` and `peer` in step, `prev` being the state after the last run
/// (`None` on the first run: a merge).
pub fn bisync(prev: Option<&State>, library: &Listing, peer: &Listing, opts: &Options) -> Plan {
    let (library, peer) = (&*music(library), &*music(peer));
    let same = |a: &Entry, b: &Entry| opts.compare.same(a, b, opts.modify_window_ns);
    let empty = Listing::new();
    let (prev_library, prev_peer) = prev.map_or((&empty, &empty), |s| (&s.library, &s.peer));
    let prev_of = |side| side_of(side, prev_library, prev_peer);
    let now_of = |side| side_of(side, library, peer);

    let mut moves = Vec::new();
    let mut copies = Vec::new();
    let mut deletes = Vec::new();
    let mut plan = Plan::default();
    // Paths a replayed rename settles on both sides.
    let mut settled: HashSet<&str> = HashSet::new();
    if prev.is_some() {
        for side in [Side::Library, Side::Peer] {
            let (other, other_prev) = (now_of(side.other()), prev_of(side.other()));
            for (from, to) in renames(prev_of(side), now_of(side), opts.renames, same) {
                let replayable = match (other_prev.get(from), other.get(from)) {
                    (Some(was), Some(is)) => same(was, is) && same(is, &now_of(side)[to]),
                    _ => false,
                };
                if replayable
                    && !other.contains_key(to)
                    && !settled.contains(from)
                    && !settled.contains(to)
                {
                    settled.insert(from);
                    settled.insert(to);
                    moves.push(Action::Move {
                        side: side.other(),
                        from: from.to_owned(),
                        to: to.to_owned(),
                    });
                }
            }
        }
    }

    let mut taken: BTreeSet<String> = BTreeSet::new();
    for (path, l, r) in zip(library, peer) {
        if settled.contains(path) {
            continue;
        }
        let changed = |side: Side| {
            let c = change(prev_of(side).get(path), now_of(side).get(path), same);
            c != Change::Unchanged
        };
        let copy = |from: Side| Action::Copy {
            from,
            from_path: path.to_owned(),
            to_path: path.to_owned(),
        };
        match (l, r) {
            (None, None) => {}
            (Some(a), Some(b)) if same(a, b) => plan.unchanged += 1,
            (Some(_), None) | (None, Some(_)) => {
                let has = if l.is_some() {
                    Side::Library
                } else {
                    Side::Peer
                };
                let deleted_there = prev.is_some() && prev_of(has.other()).contains_key(path);
                if deleted_there && !changed(has) {
                    deletes.push(Action::Delete {
                        side: has,
                        path: path.to_owned(),
                    });
                } else {
                    copies.push(copy(has));
                }
            }
            (Some(a), Some(b)) => {
                let (cl, cr) = (changed(Side::Library), changed(Side::Peer));
                if prev.is_some() && cl && !cr {
                    copies.push(copy(Side::Library));
                    continue;
                }
                if prev.is_some() && cr && !cl {
                    copies.push(copy(Side::Peer));
                    continue;
                }
                let winner = match opts.conflict {
                    ConflictMode::Library => Some(Side::Library),
                    ConflictMode::Peer => Some(Side::Peer),
                    ConflictMode::Newer if b.mtime > a.mtime => Some(Side::Peer),
                    ConflictMode::Older if b.mtime < a.mtime => Some(Side::Peer),
                    ConflictMode::Newer | ConflictMode::Older => Some(Side::Library),
                    ConflictMode::KeepBoth => None,
                };
                plan.conflicts.push(Conflict {
                    path: path.to_owned(),
                    winner,
                });
                if let Some(winner) = winner {
                    copies.push(copy(winner));
                    continue;
                }
                for side in [Side::Library, Side::Peer] {
                    let name = keep_both_name(path, side, &opts.date, |p| {
                        !library.contains_key(p) && !peer.contains_key(p) && !taken.contains(p)
                    });
                    taken.insert(name.clone());
                    moves.push(Action::Move {
                        side,
                        from: path.to_owned(),
                        to: name.clone(),
                    });
                    copies.push(Action::Copy {
                        from: side,
                        from_path: name.clone(),
                        to_path: name,
                    });
                }
            }
        }
    }
    plan.actions = moves;
    plan.actions.append(&mut copies);
    plan.actions.append(&mut deletes);
    plan
}

/// The state to keep after a run, from listings taken after it (complete, failed or killed):
/// where both sides agree the current entries, elsewhere the previous entries (or none).
pub fn settle(prev: Option<&State>, library: &Listing, peer: &Listing, opts: &Options) -> State {
    settle_by(prev, library, peer, |a, b| {
        opts.compare.same(a, b, opts.modify_window_ns)
    })
}

pub(crate) fn settle_by(
    prev: Option<&State>,
    library: &Listing,
    peer: &Listing,
    same: impl Fn(&Entry, &Entry) -> bool,
) -> State {
    let (library, peer) = (&*music(library), &*music(peer));
    let mut next = State::default();
    for (path, l, r) in zip(library, peer) {
        match (l, r) {
            (Some(a), Some(b)) if same(a, b) => {
                next.library.insert(path.to_owned(), a.clone());
                next.peer.insert(path.to_owned(), b.clone());
            }
            _ => {
                if let Some(prev) = prev {
                    if let Some(e) = prev.library.get(path) {
                        next.library.insert(path.to_owned(), e.clone());
                    }
                    if let Some(e) = prev.peer.get(path) {
                        next.peer.insert(path.to_owned(), e.clone());
                    }
                }
            }
        }
    }
    next
}

/// Why a guard stopped a run before anything changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The side lists no file while it had `before` at the last run: a disk not mounted, a share
    /// not reachable, a wrong path.
    Empty { before: usize },
    /// More deletions planned on the side than the cap allows, out of `files` there now.
    TooManyDeletes {
        deletions: usize,
        files: usize,
        cap: Cap,
    },
}

/// A guard's refusal: which side, why, and what the plan would have done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub side: Side,
    /// The side's name in the message ("library", "peer", "share").
    pub role: &'static str,
    pub reason: Reason,
    pub counts: Counts,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = self.role;
        match &self.reason {
            Reason::Empty { before } => write!(
                f,
                "refused: the {role} is empty or missing but had {before} files at the last run \
                 (not mounted?); nothing changed (planned: {})",
                self.counts
            ),
            Reason::TooManyDeletes {
                deletions,
                files,
                cap,
            } => write!(
                f,
                "refused: {deletions} deletions on the {role} (of {files} files) exceed \
                 --max-delete {cap}; nothing changed (planned: {})",
                self.counts
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Checks a bisync plan before anything changes: a side that is empty while it had files at the
/// last run refuses (it would otherwise become "delete everything on the other side"), and so
/// do more deletions on one side than `cap` allows out of that side's files. Only deletions
/// count: a copy over a file backs the old version up like a deletion does, but it replaces it.
pub fn guard(
    prev: Option<&State>,
    library: &Listing,
    peer: &Listing,
    plan: &Plan,
    cap: Cap,
) -> Result<(), Refusal> {
    let counts = plan.counts();
    let refuse = |side: Side, reason| Refusal {
        side,
        role: side.name(),
        reason,
        counts,
    };
    // An empty side speaks first: the deletions it causes on the other are its consequence.
    for side in [Side::Library, Side::Peer] {
        let before = prev.map_or(0, |s| side_of(side, &s.library, &s.peer).len());
        if side_of(side, library, peer).is_empty() && before > 0 {
            return Err(refuse(side, Reason::Empty { before }));
        }
    }
    for side in [Side::Library, Side::Peer] {
        let files = side_of(side, library, peer).len();
        let refuse = |reason| refuse(side, reason);
        let deletions = counts.deleted(side);
        if deletions > 0 && !cap.allows(deletions, files) {
            return Err(refuse(Reason::TooManyDeletes {
                deletions,
                files,
                cap,
            }));
        }
    }
    Ok(())
}

/// The (side, path) each action writes or removes, in plan order: a plan touches each at most
/// once.
pub fn touched(actions: &[Action]) -> Vec<(Side, &str)> {
    let mut out = Vec::new();
    for action in actions {
        match action {
            Action::Copy { from, to_path, .. } => out.push((from.other(), to_path.as_str())),
            Action::Move { side, from, to } => {
                out.push((*side, from.as_str()));
                out.push((*side, to.as_str()));
            }
            Action::Delete { side, path } => out.push((*side, path.as_str())),
        }
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
pub(crate) mod tests;
