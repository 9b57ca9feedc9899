//! Bisync planner tests: one per rule, then (in `model_tests`) random histories.

use super::*;
use crate::libsync::{Compare, Renames};

pub(crate) fn e(size: u64, mtime: i64) -> Entry {
    Entry {
        size,
        mtime,
        hash: None,
    }
}

pub(crate) fn listing(files: &[(&str, Entry)]) -> Listing {
    files
        .iter()
        .map(|(p, e)| ((*p).to_owned(), e.clone()))
        .collect()
}

fn opts(conflict: ConflictMode) -> Options {
    Options {
        compare: Compare::Mtime,
        renames: Renames::Mtime,
        conflict,
        modify_window_ns: 1,
        date: "2026-11-30".into(),
    }
}

fn newer() -> Options {
    opts(ConflictMode::Newer)
}

fn state(library: &[(&str, Entry)], peer: &[(&str, Entry)]) -> State {
    State {
        library: listing(library),
        peer: listing(peer),
    }
}

/// Both sides held `files` at the last run.
fn synced(files: &[(&str, Entry)]) -> State {
    state(files, files)
}

fn copy(from: Side, path: &str) -> Action {
    Action::Copy {
        from,
        from_path: path.into(),
        to_path: path.into(),
    }
}

fn mv(side: Side, from: &str, to: &str) -> Action {
    Action::Move {
        side,
        from: from.into(),
        to: to.into(),
    }
}

fn del(side: Side, path: &str) -> Action {
    Action::Delete {
        side,
        path: path.into(),
    }
}

use Side::{Library as L, Peer as P};

#[test]
fn compare_size_ignores_mtime() {
    assert!(Compare::Size.same(&e(1, 1), &e(1, 99), 1));
    assert!(!Compare::Size.same(&e(1, 1), &e(2, 1), 1));
}

#[test]
fn compare_mtime_within_window() {
    assert!(Compare::Mtime.same(&e(1, 1_000), &e(1, 1_999), 1_000));
    assert!(!Compare::Mtime.same(&e(1, 1_000), &e(1, 2_000), 1_000));
    assert!(!Compare::Mtime.same(&e(1, 1), &e(1, 2), 1));
    assert!(Compare::Mtime.same(&e(1, 1), &e(1, 1), 0));
}

#[test]
fn compare_hash_falls_back_to_mtime_without_a_hash() {
    let h = |mtime, hash: &str| Entry {
        size: 1,
        mtime,
        hash: Some(hash.into()),
    };
    assert!(Compare::Hash.same(&h(1, "aa"), &h(2, "aa"), 1));
    assert!(!Compare::Hash.same(&h(1, "aa"), &h(1, "bb"), 1));
    assert!(Compare::Hash.same(&h(1, "aa"), &e(1, 1), 1));
    assert!(!Compare::Hash.same(&h(1, "aa"), &e(1, 2), 1));
}

#[test]
fn first_run_merges_one_side_files() {
    let lib = listing(&[("a", e(1, 1)), ("same", e(3, 3))]);
    let peer = listing(&[("b", e(2, 2)), ("same", e(3, 3))]);
    let plan = bisync(None, &lib, &peer, &newer());
    assert_eq!(plan.actions, vec![copy(L, "a"), copy(P, "b")]);
    assert_eq!(plan.unchanged, 1);
    assert!(plan.conflicts.is_empty());
}

#[test]
fn first_run_differing_file_is_a_conflict_and_nothing_is_deleted() {
    let lib = listing(&[("a", e(1, 5))]);
    let peer = listing(&[("a", e(2, 9))]);
    let plan = bisync(None, &lib, &peer, &newer());
    assert_eq!(plan.actions, vec![copy(P, "a")]);
    assert_eq!(
        plan.conflicts,
        vec![Conflict {
            path: "a".into(),
            winner: Some(P)
        }]
    );
}

#[test]
fn new_file_goes_across() {
    let prev = synced(&[]);
    let lib = listing(&[("new", e(1, 1))]);
    let plan = bisync(Some(&prev), &lib, &Listing::new(), &newer());
    assert_eq!(plan.actions, vec![copy(L, "new")]);
}

#[test]
fn modified_file_goes_across() {
    let prev = synced(&[("a", e(1, 1))]);
    let peer = listing(&[("a", e(2, 2))]);
    let lib = listing(&[("a", e(1, 1))]);
    let plan = bisync(Some(&prev), &lib, &peer, &newer());
    assert_eq!(plan.actions, vec![copy(P, "a")]);
    assert!(plan.conflicts.is_empty());
}

#[test]
fn deletion_goes_across_when_the_other_side_is_unchanged() {
    let prev = synced(&[("a", e(1, 1)), ("b", e(2, 2))]);
    let lib = listing(&[("b", e(2, 2))]);
    let peer = listing(&[("a", e(1, 1)), ("b", e(2, 2))]);
    let plan = bisync(Some(&prev), &lib, &peer, &newer());
    assert_eq!(plan.actions, vec![del(P, "a")]);
}

#[test]
fn deletion_compares_against_the_other_sides_own_previous_entry() {
    // The peer's previous entry differs from the library's (a coarser clock): unchanged there.
    let prev = state(&[("a", e(1, 1_000_000_123))], &[("a", e(1, 1_000_000_000))]);
    let peer = listing(&[("a", e(1, 1_000_000_000))]);
    let plan = bisync(Some(&prev), &Listing::new(), &peer, &newer());
    assert_eq!(plan.actions, vec![del(P, "a")]);
}

#[test]
fn modified_wins_over_deleted() {
    let prev = synced(&[("a", e(1, 1))]);
    let peer = listing(&[("a", e(1, 7))]);
    let plan = bisync(Some(&prev), &Listing::new(), &peer, &newer());
    assert_eq!(plan.actions, vec![copy(P, "a")]);
    let lib = listing(&[("a", e(4, 1))]);
    let plan = bisync(Some(&prev), &lib, &Listing::new(), &newer());
    assert_eq!(plan.actions, vec![copy(L, "a")]);
}

#[test]
fn same_change_on_both_sides_is_no_action() {
    let prev = synced(&[("edited", e(1, 1)), ("gone", e(2, 2))]);
    let now = listing(&[("edited", e(5, 5)), ("made", e(6, 6))]);
    let plan = bisync(Some(&prev), &now, &now, &newer());
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(plan.unchanged, 2);
}

#[test]
fn rename_on_one_side_is_a_move_on_the_other() {
    let prev = synced(&[("old/a", e(1, 1)), ("keep", e(2, 2))]);
    let lib = listing(&[("new/a", e(1, 1)), ("keep", e(2, 2))]);
    let peer = listing(&[("old/a", e(1, 1)), ("keep", e(2, 2))]);
    let plan = bisync(Some(&prev), &lib, &peer, &newer());
    assert_eq!(plan.actions, vec![mv(P, "old/a", "new/a")]);
    let plan = bisync(Some(&prev), &peer, &lib, &newer());
    assert_eq!(plan.actions, vec![mv(L, "old/a", "new/a")]);
}

#[test]
fn folder_rename_is_many_moves() {
    let prev = synced(&[("A/1", e(1, 1)), ("A/2", e(2, 2)), ("A/3", e(3, 3))]);
    let peer = listing(&[("B/1", e(1, 1)), ("B/2", e(2, 2)), ("B/3", e(3, 3))]);
    let plan = bisync(Some(&prev), &prev.library, &peer, &newer());
    assert_eq!(
        plan.actions,
        vec![
            mv(L, "A/1", "B/1"),
            mv(L, "A/2", "B/2"),
            mv(L, "A/3", "B/3")
        ]
    );
}

#[test]
fn ambiguous_rename_is_a_copy_and_a_deletion() {
    // Two vanished files with one key: no way to tell which went where.
    let prev = synced(&[("A/1", e(1, 1)), ("A/2", e(1, 1))]);
    let lib = listing(&[("B/1", e(1, 1)), ("B/2", e(1, 1))]);
    let plan = bisync(Some(&prev), &lib, &prev.peer, &newer());
    assert_eq!(
        plan.actions,
        vec![copy(L, "B/1"), copy(L, "B/2"), del(P, "A/1"), del(P, "A/2")]
    );
}

#[test]
fn rename_is_not_replayed_over_a_modified_file() {
    let prev = synced(&[("a", e(1, 1))]);
    let lib = listing(&[("b", e(1, 1))]);
    let peer = listing(&[("a", e(1, 9))]);
    let plan = bisync(Some(&prev), &lib, &peer, &newer());
    // The peer's edit comes back under the old name, the renamed file goes across.
    assert_eq!(plan.actions, vec![copy(P, "a"), copy(L, "b")]);
}

#[test]
fn rename_is_not_replayed_onto_a_taken_path() {
    let prev = synced(&[("a", e(1, 1))]);
    let lib = listing(&[("b", e(1, 1))]);
    let peer = listing(&[("a", e(1, 1)), ("b", e(7, 7))]);
    let plan = bisync(Some(&prev), &lib, &peer, &newer());
    assert_eq!(plan.actions, vec![copy(P, "b"), del(P, "a")]);
    assert_eq!(plan.conflicts.len(), 1);
}

#[test]
fn rename_onto_an_equal_file_only_deletes_the_old_name() {
    // The peer already has the renamed file (copied there by hand): nothing to move or send.
    let prev = synced(&[("a", e(1, 1))]);
    let lib = listing(&[("b", e(1, 1))]);
    let peer = listing(&[("a", e(1, 1)), ("b", e(1, 1))]);
    let plan = bisync(Some(&prev), &lib, &peer, &newer());
    assert_eq!(plan.actions, vec![del(P, "a")]);
    assert_eq!(plan.unchanged, 1);
}

#[test]
fn renames_none_sends_the_bytes_again() {
    let prev = synced(&[("a", e(1, 1))]);
    let lib = listing(&[("b", e(1, 1))]);
    let o = Options {
        renames: Renames::None,
        ..newer()
    };
    let plan = bisync(Some(&prev), &lib, &prev.peer, &o);
    assert_eq!(plan.actions, vec![copy(L, "b"), del(P, "a")]);
}

#[test]
fn renames_by_hash_need_a_hash() {
    let h = |hash: Option<&str>, mtime| Entry {
        size: 1,
        mtime,
        hash: hash.map(Into::into),
    };
    let o = Options {
        renames: Renames::Hash,
        compare: Compare::Hash,
        ..newer()
    };
    let prev = state(&[("a", h(Some("x"), 1))], &[("a", h(Some("x"), 1))]);
    let lib = listing(&[("b", h(Some("x"), 5))]);
    let plan = bisync(Some(&prev), &lib, &prev.peer, &o);
    assert_eq!(plan.actions, vec![mv(P, "a", "b")]);
    let lib = listing(&[("b", h(None, 1))]);
    let plan = bisync(Some(&prev), &lib, &prev.peer, &o);
    assert_eq!(plan.actions, vec![copy(L, "b"), del(P, "a")]);
}

fn conflict_case(mode: ConflictMode) -> Plan {
    let prev = synced(&[("d/01 Song.flac", e(1, 1))]);
    let lib = listing(&[("d/01 Song.flac", e(2, 20))]);
    let peer = listing(&[("d/01 Song.flac", e(3, 30))]);
    bisync(Some(&prev), &lib, &peer, &opts(mode))
}

#[test]
fn conflict_library_wins() {
    let plan = conflict_case(ConflictMode::Library);
    assert_eq!(plan.actions, vec![copy(L, "d/01 Song.flac")]);
    assert_eq!(plan.conflicts[0].winner, Some(L));
}

#[test]
fn conflict_peer_wins() {
    let plan = conflict_case(ConflictMode::Peer);
    assert_eq!(plan.actions, vec![copy(P, "d/01 Song.flac")]);
}

#[test]
fn conflict_newer_wins() {
    assert_eq!(
        conflict_case(ConflictMode::Newer).actions,
        vec![copy(P, "d/01 Song.flac")]
    );
}

#[test]
fn conflict_older_wins() {
    assert_eq!(
        conflict_case(ConflictMode::Older).actions,
        vec![copy(L, "d/01 Song.flac")]
    );
}

#[test]
fn conflict_tie_goes_to_the_library() {
    let prev = synced(&[("a", e(1, 1))]);
    let lib = listing(&[("a", e(2, 5))]);
    let peer = listing(&[("a", e(3, 5))]);
    for mode in [ConflictMode::Newer, ConflictMode::Older] {
        let plan = bisync(Some(&prev), &lib, &peer, &opts(mode));
        assert_eq!(plan.actions, vec![copy(L, "a")]);
    }
}

#[test]
fn conflict_keep_both_renames_both_on_both_sides() {
    let plan = conflict_case(ConflictMode::KeepBoth);
    let lib_name = "d/01 Song (library 2026-11-30).flac";
    let peer_name = "d/01 Song (peer 2026-11-30).flac";
    assert_eq!(
        plan.actions,
        vec![
            mv(L, "d/01 Song.flac", lib_name),
            mv(P, "d/01 Song.flac", peer_name),
            copy(L, lib_name),
            copy(P, peer_name),
        ]
    );
    assert_eq!(plan.conflicts[0].winner, None);
}

#[test]
fn keep_both_names_avoid_both_listings() {
    let taken = "a (library 2026-11-30).flac";
    let prev = synced(&[("a.flac", e(1, 1)), (taken, e(9, 9))]);
    let lib = listing(&[("a.flac", e(2, 2)), (taken, e(9, 9))]);
    let peer = listing(&[("a.flac", e(3, 3)), (taken, e(9, 9))]);
    let plan = bisync(Some(&prev), &lib, &peer, &opts(ConflictMode::KeepBoth));
    assert_eq!(
        plan.actions[0],
        mv(L, "a.flac", "a (library 2026-11-30 2).flac")
    );
}

#[test]
fn keep_both_name_without_extension() {
    let name = keep_both_name("d.x/README", L, "2026-11-30", |_| true);
    assert_eq!(name, "d.x/README (library 2026-11-30)");
    assert_eq!(
        keep_both_name(".hidden", P, "2026-11-30", |_| true),
        ".hidden (peer 2026-11-30)"
    );
}

#[test]
fn moves_come_before_copies_and_deletions_last() {
    let prev = synced(&[("a", e(1, 1)), ("gone", e(2, 2))]);
    let lib = listing(&[("b", e(1, 1)), ("new", e(3, 3))]);
    let plan = bisync(Some(&prev), &lib, &prev.peer, &newer());
    assert_eq!(
        plan.actions,
        vec![mv(P, "a", "b"), copy(L, "new"), del(P, "gone")]
    );
}

#[test]
fn settle_takes_agreeing_paths_and_keeps_the_rest() {
    let prev = synced(&[("a", e(1, 1)), ("b", e(2, 2))]);
    // "a" was copied; "b" still differs; "c" is new on one side; "gone" is gone on both.
    let lib = listing(&[("a", e(5, 5)), ("b", e(6, 6)), ("c", e(7, 7))]);
    let peer = listing(&[("a", e(5, 5)), ("b", e(2, 2))]);
    let next = settle(Some(&prev), &lib, &peer, &newer());
    assert_eq!(next.library, listing(&[("a", e(5, 5)), ("b", e(2, 2))]));
    assert_eq!(next.peer, listing(&[("a", e(5, 5)), ("b", e(2, 2))]));
    let first = settle(None, &lib, &peer, &newer());
    assert_eq!(first, synced(&[("a", e(5, 5))]));
}

#[test]
fn guard_refuses_an_empty_side_that_had_files() {
    let prev = synced(&[("a", e(1, 1)), ("b", e(2, 2))]);
    let plan = bisync(Some(&prev), &prev.library, &Listing::new(), &newer());
    let err = guard(
        Some(&prev),
        &prev.library,
        &Listing::new(),
        &plan,
        Cap::Percent(100),
    )
    .unwrap_err();
    assert_eq!(err.side, P);
    assert_eq!(err.reason, Reason::Empty { before: 2 });
    let line = err.to_string();
    assert!(
        line.contains("peer is empty") && line.contains("2 deleted on library"),
        "{line}"
    );
    assert!(!line.contains('\n'));
}

// Regression: an emptied peer was refused in the delete cap's words (the library's deletions
// it causes), not as the empty side it is.
#[test]
fn guard_names_an_empty_side_before_the_deletions_it_causes() {
    let prev = synced(&[("a", e(1, 1)), ("b", e(2, 2))]);
    let plan = bisync(Some(&prev), &prev.library, &Listing::new(), &newer());
    assert_eq!(plan.counts().deleted_library, 2);
    let err = guard(
        Some(&prev),
        &prev.library,
        &Listing::new(),
        &plan,
        Cap::Percent(50),
    )
    .unwrap_err();
    assert_eq!((err.side, err.reason), (P, Reason::Empty { before: 2 }));
}

#[test]
fn guard_allows_a_first_run_into_an_empty_side() {
    let lib = listing(&[("a", e(1, 1))]);
    let plan = bisync(None, &lib, &Listing::new(), &newer());
    assert!(guard(None, &lib, &Listing::new(), &plan, Cap::Count(0)).is_ok());
}

#[test]
fn guard_caps_deletions_per_side() {
    let files: Vec<(String, Entry)> = (0..10).map(|i| (format!("f{i}"), e(i, i as i64))).collect();
    let all: Listing = files.iter().cloned().collect();
    let prev = State {
        library: all.clone(),
        peer: all.clone(),
    };
    let mut lib = all.clone();
    for i in 0..3 {
        lib.remove(&format!("f{i}"));
    }
    let plan = bisync(Some(&prev), &lib, &all, &newer());
    assert_eq!(plan.counts().deleted_peer, 3);
    assert!(guard(Some(&prev), &lib, &all, &plan, Cap::Count(3)).is_ok());
    assert!(guard(Some(&prev), &lib, &all, &plan, Cap::Percent(30)).is_ok());
    let err = guard(Some(&prev), &lib, &all, &plan, Cap::Percent(20)).unwrap_err();
    assert_eq!(err.side, P);
    assert!(matches!(
        err.reason,
        Reason::TooManyDeletes {
            deletions: 3,
            files: 10,
            ..
        }
    ));
    assert!(guard(Some(&prev), &lib, &all, &plan, Cap::Count(2)).is_err());
}

/// `n` files a side in albums of ten, with `n / 100` of each change.
fn big(n: usize) -> (State, Listing, Listing) {
    let name = |i: usize| {
        format!(
            "Artist {}/Album {}/{:02} Track.flac",
            i / 1000,
            i / 10,
            i % 10
        )
    };
    let all: Listing = (0..n)
        .map(|i| {
            (
                name(i),
                e(10_000 + i as u64, 1_600_000_000_000_000_000 + i as i64),
            )
        })
        .collect();
    let prev = State {
        library: all.clone(),
        peer: all.clone(),
    };
    let (mut lib, mut peer) = (all.clone(), all);
    for i in (0..n).step_by(100) {
        // A renamed album on the library, an edited track on the peer, a deleted one on the
        // library, a new one on the peer.
        let renamed = lib.remove(&name(i)).unwrap();
        lib.insert(format!("Renamed/{}", name(i)), renamed);
        peer.get_mut(&name(i + 1)).unwrap().mtime += 1;
        lib.remove(&name(i + 2));
        peer.insert(format!("New/{}", name(i)), e(7, 7));
    }
    (prev, lib, peer)
}

/// Regression guard on the planner's cost: 100,000 files a side in release (`cargo test
/// --release --lib plans_many`), 20,000 in debug; the time is printed, the plan checked.
#[test]
fn plans_many_files_a_side_quickly() {
    let n = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    let (prev, lib, peer) = big(n);
    let started = std::time::Instant::now();
    let plan = bisync(Some(&prev), &lib, &peer, &newer());
    let took = started.elapsed();
    let c = plan.counts();
    let k = n / 100;
    assert_eq!(
        (c.moved_peer, c.to_library, c.deleted_peer, c.to_peer),
        (k, 2 * k, k, 0)
    );
    assert_eq!(c.unchanged, n - 3 * k);
    let next = settle(Some(&prev), &lib, &peer, &newer());
    // Nothing was done yet: every path keeps its previous entries, none is added.
    assert_eq!(next, prev);
    eprintln!("bisync of {n} files a side: {took:?}");
}

#[test]
fn reserved_folders_are_never_synced_nor_recorded() {
    let lib = listing(&[
        (".musync-backups/2026-11-30T00:00:00Z/a", e(1, 1)),
        (".musync-tmp/x", e(2, 2)),
        (".musync/state.json", e(3, 3)),
        (".musyncish/a", e(4, 4)),
    ]);
    let plan = bisync(None, &lib, &Listing::new(), &newer());
    assert_eq!(plan.actions, vec![copy(L, ".musyncish/a")]);
    let next = settle(None, &lib, &lib, &newer());
    assert_eq!(next.library.keys().collect::<Vec<_>>(), [".musyncish/a"]);
}
