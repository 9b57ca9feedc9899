//! Pull planner tests: one per rule, then (in `model_tests`) random histories.

use super::*;
use crate::libsync::plan::tests::{e, listing};

fn opts() -> PullOptions {
    PullOptions {
        compare: Compare::Mtime,
        renames: Renames::Mtime,
        delete_extras: false,
        modify_window_ns: 1,
    }
}

fn fetch(path: &str) -> Action {
    Action::Copy {
        from: Side::Peer,
        from_path: path.into(),
        to_path: path.into(),
    }
}

fn del(path: &str) -> Action {
    Action::Delete {
        side: Side::Library,
        path: path.into(),
    }
}

fn fetched(files: &[(&str, Entry)]) -> State {
    State {
        library: listing(files),
        peer: listing(files),
    }
}

#[test]
fn pull_fetches_new_and_changed_files() {
    let prev = fetched(&[("a", e(1, 1)), ("b", e(2, 2))]);
    let local = prev.library.clone();
    let share = listing(&[("a", e(1, 1)), ("b", e(3, 3)), ("c", e(4, 4))]);
    let plan = pull(Some(&prev), &local, &share, &opts());
    assert_eq!(plan.actions, vec![fetch("b"), fetch("c")]);
    assert_eq!(plan.unchanged, 1);
}

#[test]
fn pull_first_run_fetches_and_deletes_nothing() {
    let local = listing(&[("mine", e(1, 1)), ("a", e(2, 2))]);
    let share = listing(&[("a", e(2, 2)), ("b", e(3, 3))]);
    let plan = pull(None, &local, &share, &opts());
    assert_eq!(plan.actions, vec![fetch("b")]);
}

#[test]
fn pull_replays_share_renames_as_local_moves() {
    let prev = fetched(&[("A/1", e(1, 1)), ("A/2", e(2, 2))]);
    let share = listing(&[("B/1", e(1, 1)), ("B/2", e(2, 2))]);
    let plan = pull(Some(&prev), &prev.library, &share, &opts());
    let mv = |from: &str, to: &str| Action::Move {
        side: Side::Library,
        from: from.into(),
        to: to.into(),
    };
    assert_eq!(plan.actions, vec![mv("A/1", "B/1"), mv("A/2", "B/2")]);
}

#[test]
fn pull_rename_over_a_locally_edited_file_fetches_and_deletes() {
    let prev = fetched(&[("A/1", e(1, 1))]);
    let local = listing(&[("A/1", e(1, 5))]);
    let share = listing(&[("B/1", e(1, 1))]);
    let plan = pull(Some(&prev), &local, &share, &opts());
    assert_eq!(plan.actions, vec![fetch("B/1"), del("A/1")]);
}

#[test]
fn pull_deletes_what_it_fetched_and_the_share_lost() {
    let prev = fetched(&[("a", e(1, 1))]);
    let local = listing(&[("a", e(1, 1)), ("mine", e(2, 2))]);
    let plan = pull(Some(&prev), &local, &listing(&[("z", e(3, 3))]), &opts());
    assert_eq!(plan.actions, vec![fetch("z"), del("a")]);
}

#[test]
fn pull_keeps_local_extras_unless_delete_extras() {
    let local = listing(&[("mine", e(2, 2))]);
    let share = listing(&[("a", e(1, 1))]);
    let plan = pull(Some(&fetched(&[])), &local, &share, &opts());
    assert_eq!(plan.actions, vec![fetch("a")]);
    let o = PullOptions {
        delete_extras: true,
        ..opts()
    };
    let plan = pull(Some(&fetched(&[])), &local, &share, &o);
    assert_eq!(plan.actions, vec![fetch("a"), del("mine")]);
}

#[test]
fn pull_share_wins_over_a_local_edit() {
    // Edited locally and on the share: the share's version is fetched over it (the executor
    // backs the local one up). Edited only locally: the share is the truth all the same.
    let prev = fetched(&[("a", e(1, 1)), ("b", e(2, 2))]);
    let local = listing(&[("a", e(5, 5)), ("b", e(6, 6))]);
    let share = listing(&[("a", e(7, 7)), ("b", e(2, 2))]);
    let plan = pull(Some(&prev), &local, &share, &opts());
    assert_eq!(plan.actions, vec![fetch("a"), fetch("b")]);
}

#[test]
fn pull_guard_refuses_an_empty_share() {
    let prev = fetched(&[("a", e(1, 1))]);
    let share = Listing::new();
    let plan = pull(Some(&prev), &prev.library, &share, &opts());
    let err = guard(Some(&prev), &prev.library, &share, &plan, Cap::Percent(100)).unwrap_err();
    assert_eq!(err.reason, Reason::Empty { before: 1 });
    assert!(err.to_string().contains("share is empty"), "{err}");
}

// Regression: an unmounted library disk (an empty mount point) was a pull like any other, the
// whole share fetched into the mount point.
#[test]
fn pull_guard_refuses_an_emptied_library() {
    let prev = fetched(&[("a", e(1, 1)), ("b", e(2, 2))]);
    let local = Listing::new();
    let plan = pull(Some(&prev), &local, &prev.peer, &opts());
    let err = guard(Some(&prev), &local, &prev.peer, &plan, Cap::Percent(100)).unwrap_err();
    assert_eq!(err.side, Side::Library);
    assert_eq!(err.reason, Reason::Empty { before: 2 });
}

#[test]
fn pull_guard_caps_local_deletions() {
    let prev = fetched(&[("a", e(1, 1)), ("b", e(2, 2))]);
    let share = listing(&[("b", e(2, 2))]);
    let plan = pull(Some(&prev), &prev.library, &share, &opts());
    assert!(guard(Some(&prev), &prev.library, &share, &plan, Cap::Count(1)).is_ok());
    let err = guard(Some(&prev), &prev.library, &share, &plan, Cap::Count(0)).unwrap_err();
    assert_eq!(err.side, Side::Library);
}

#[test]
fn pull_never_fetches_nor_deletes_reserved_folders() {
    let local = listing(&[(".musync-backups/t/a", e(1, 1))]);
    let share = listing(&[(".musync-tmp/b", e(2, 2)), ("c", e(3, 3))]);
    let o = PullOptions {
        delete_extras: true,
        ..opts()
    };
    let plan = pull(Some(&fetched(&[])), &local, &share, &o);
    assert_eq!(plan.actions, vec![fetch("c")]);
}

#[test]
fn pull_settle_keeps_a_deletion_not_done_for_the_next_pull() {
    // The share lost "a"; the pull was killed before deleting the local copy.
    let prev = fetched(&[("a", e(1, 1)), ("b", e(2, 2))]);
    let share = listing(&[("b", e(2, 2))]);
    let next = settle(Some(&prev), &prev.library, &share, &opts());
    assert_eq!(next, prev);
    let plan = pull(Some(&next), &prev.library, &share, &opts());
    assert_eq!(plan.actions, vec![del("a")]);
}
