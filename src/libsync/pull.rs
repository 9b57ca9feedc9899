//! The pull planner: a pure function from (the previous state, the local copy's listing, the
//! share's listing) to the ordered actions that make the local copy follow the share. The
//! share is [`Side::Peer`] and is never written: every action writes to [`Side::Library`].
//!
//! - The share is the truth: a share file missing locally, or differing from the local file
//!   (by [`Compare::same`]), is fetched. A local file edited since it was fetched is
//!   overwritten too, whether or not the share changed it: its local version goes to the
//!   backups (the executor backs up every file a copy replaces).
//! - A rename on the share (found as for bisync, see [`super::plan`]) is replayed as a local
//!   move when the local file at the old path is still what musync fetched (equal to its entry
//!   in the previous state) and the new path is free locally; otherwise it is a fetch plus a
//!   deletion.
//! - A local file that musync fetched before (the share had it at the last pull) and that is
//!   gone from the share is deleted (into the backups). A local file the share never had stays,
//!   unless `delete_extras`.
//! - Order: moves, then fetches, then deletions. The next previous state is [`settle`]'s, the
//!   same rule as bisync's: a path where the local copy and the share agree takes the current
//!   entries, any other keeps its old entries.

use std::collections::HashSet;

use super::plan::{Cap, Plan, Reason, Refusal, music, renames, settle_by, zip};
use super::{Action, Compare, Entry, Listing, Renames, Side, State};

/// What a pull plan is made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullOptions {
    pub compare: Compare,
    pub renames: Renames,
    /// Also delete local files the share never had.
    pub delete_extras: bool,
    /// Two times closer than this are the same time.
    pub modify_window_ns: i64,
}

/// The plan that makes `local` follow `share`; `prev` is the state after the last pull, its
/// `library` the local entries and its `peer` the share's.
pub fn pull(prev: Option<&State>, local: &Listing, share: &Listing, opts: &PullOptions) -> Plan {
    let (local, share) = (&*music(local), &*music(share));
    let same = |a: &Entry, b: &Entry| opts.compare.same(a, b, opts.modify_window_ns);
    let empty = Listing::new();
    let (prev_local, prev_share) = prev.map_or((&empty, &empty), |s| (&s.library, &s.peer));

    let mut plan = Plan::default();
    let mut moves = Vec::new();
    let mut fetches = Vec::new();
    let mut deletes = Vec::new();
    let mut settled: HashSet<&str> = HashSet::new();
    for (from, to) in renames(prev_share, share, opts.renames, same) {
        let fetched = match (prev_local.get(from), local.get(from)) {
            (Some(was), Some(is)) => same(was, is) && same(is, &share[to]),
            _ => false,
        };
        if fetched && !local.contains_key(to) {
            settled.insert(from);
            settled.insert(to);
            moves.push(Action::Move {
                side: Side::Library,
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
    }
    for (path, l, s) in zip(local, share) {
        if settled.contains(path) {
            continue;
        }
        match (l, s) {
            (Some(l), Some(s)) if same(l, s) => plan.unchanged += 1,
            (_, Some(_)) => fetches.push(Action::Copy {
                from: Side::Peer,
                from_path: path.to_owned(),
                to_path: path.to_owned(),
            }),
            (Some(_), None) => {
                if prev_share.contains_key(path) || opts.delete_extras {
                    deletes.push(Action::Delete {
                        side: Side::Library,
                        path: path.to_owned(),
                    });
                }
            }
            (None, None) => {}
        }
    }
    plan.actions = moves;
    plan.actions.append(&mut fetches);
    plan.actions.append(&mut deletes);
    plan
}

/// The state to keep after a pull, from listings taken after it (complete, failed or killed).
pub fn settle(prev: Option<&State>, local: &Listing, share: &Listing, opts: &PullOptions) -> State {
    settle_by(prev, local, share, |a, b| {
        opts.compare.same(a, b, opts.modify_window_ns)
    })
}

/// Checks a pull plan before anything changes: an empty local copy or share while it had files
/// at the last pull refuses, and so do more local deletions than `cap` allows out of the local
/// files.
pub fn guard(
    prev: Option<&State>,
    local: &Listing,
    share: &Listing,
    plan: &Plan,
    cap: Cap,
) -> Result<(), Refusal> {
    let counts = plan.counts();
    let before = prev.map_or(0, |s| s.library.len());
    if local.is_empty() && before > 0 {
        // An unmounted library disk: the share must not be fetched into its mount point.
        return Err(Refusal {
            side: Side::Library,
            role: "library",
            reason: Reason::Empty { before },
            counts,
        });
    }
    let before = prev.map_or(0, |s| s.peer.len());
    if share.is_empty() && before > 0 {
        return Err(Refusal {
            side: Side::Peer,
            role: "share",
            reason: Reason::Empty { before },
            counts,
        });
    }
    let deletions = counts.deleted_library;
    if deletions > 0 && !cap.allows(deletions, local.len()) {
        return Err(Refusal {
            side: Side::Library,
            role: "local copy",
            reason: Reason::TooManyDeletes {
                deletions,
                files: local.len(),
                cap,
            },
            counts,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "pull_tests.rs"]
mod tests;
