//! `musync pull` from a share (Samba's smbd and a local folder, Debian's rclone 1.60 and the
//! current release): the share is the truth; new and changed files are fetched, renames on the
//! share replayed as local moves, files gone from the share removed locally into the backups,
//! local extras kept unless `--delete-extras`, include and exclude lists obeyed.

use super::peers::*;
use crate::remotes::{self, Kind};
use crate::util::*;

/// The pull's JSON counts `(downloaded, moved, deleted, backed_up)`.
fn counts(json: &serde_json::Value) -> [u64; 4] {
    ["downloaded", "moved", "deleted", "backed_up"].map(|k| count(json, k))
}

/// A share of two genres and podcasts pulled without the podcasts; then an album renamed, a
/// track changed and one deleted on the share: the next pull moves the album locally (same
/// inodes, nothing fetched), fetches the change, removes the deleted track into the backups
/// and keeps the local extra, which only `--delete-extras` removes.
#[test]
fn pull_fetches_changes_replays_moves_and_removes_what_the_share_lost() {
    for rclone in remotes::rclones() {
        for kind in [Kind::Smb, Kind::Local] {
            let pair = Pair::new(kind, &rclone);
            let what = pair.what.clone();
            pair.write(Peer, "Rock/A/01.flac", &track(1, 3000), ago(1000));
            pair.write(Peer, "Rock/A/02.flac", &track(2, 3001), ago(1000));
            pair.write(Peer, "Jazz/B/01.flac", &track(3, 3002), ago(1000));
            pair.write(Peer, "Jazz/B/02.flac", &track(4, 3003), ago(1000));
            pair.write(Peer, "Podcasts/Show/1.mp3", &track(5, 3004), ago(1000));
            pair.write(Lib, "Mine/extra.flac", &track(6, 3005), ago(1000));
            let exclude = ["--exclude", "Podcasts"];

            let json = pair.pull_json(&exclude, 0);
            assert_eq!(counts(&json), [4, 0, 0, 0], "{what}: {json}");
            assert_eq!(json["dry_run"], false, "{what}: {json}");
            let lib = pair.tree(Lib);
            assert_eq!(
                lib.keys().collect::<Vec<_>>(),
                [
                    "Jazz/B/01.flac",
                    "Jazz/B/02.flac",
                    "Mine/extra.flac",
                    "Rock/A/01.flac",
                    "Rock/A/02.flac"
                ],
                "{what}: the first pull"
            );
            assert_eq!(lib["Rock/A/02.flac"], track(2, 3001), "{what}");
            let inode = pair.inode(Lib, "Rock/A/01.flac");

            pair.rename(Peer, "Rock/A", "Rock/A (Remaster)");
            pair.write(Peer, "Jazz/B/01.flac", &track(7, 3010), ago(10));
            pair.remove(Peer, "Jazz/B/02.flac");
            let share = pair.tree(Peer);
            let json = pair.pull_json(&exclude, 0);
            assert_eq!(counts(&json), [1, 2, 1, 2], "{what}: {json}");
            let lib = pair.tree(Lib);
            for (rel, bytes) in share.iter().filter(|(p, _)| !p.starts_with("Podcasts/")) {
                assert_eq!(lib.get(rel), Some(bytes), "{what}: {rel} after the changes");
            }
            assert_eq!(lib.len(), 4, "{what}: {:?}", lib.keys());
            assert!(
                lib.contains_key("Mine/extra.flac"),
                "{what}: the extra went"
            );
            let moved = pair.inode(Lib, "Rock/A (Remaster)/01.flac");
            assert_eq!(moved, inode, "{what}: fetched again, not moved");
            assert_eq!(
                pair.backups(Lib),
                [
                    ("Jazz/B/01.flac".to_owned(), track(3, 3002)),
                    ("Jazz/B/02.flac".to_owned(), track(4, 3003))
                ],
                "{what}: the backups"
            );

            let json = pair.pull_json(&exclude, 0);
            assert_eq!(counts(&json), [0, 0, 0, 0], "{what}: a rerun: {json}");

            let mut args = exclude.to_vec();
            args.push("--delete-extras");
            let json = pair.pull_json(&args, 0);
            assert_eq!(
                counts(&json),
                [0, 0, 1, 1],
                "{what}: --delete-extras: {json}"
            );
            assert!(!pair.path(Lib, "Mine/extra.flac").exists(), "{what}");
            let backups = pair.backups(Lib);
            let extra = ("Mine/extra.flac".to_owned(), track(6, 3005));
            assert!(backups.contains(&extra), "{what}: {backups:?}");
            assert!(pair.temporaries(Lib).is_empty(), "{what}");
            assert!(
                pair.backups(Peer).is_empty(),
                "{what}: the share was written"
            );
        }
    }
}

/// `--include` fetches only the folders it names, and a dry run fetches nothing and counts
/// what the real pull then fetches.
#[test]
fn pull_with_include_fetches_only_those_folders() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    pair.write(Peer, "Rock/A/01.flac", &track(1, 900), ago(1000));
    pair.write(Peer, "Jazz/B/01.flac", &track(2, 900), ago(1000));
    pair.write(Peer, "Jazz/C/01.flac", &track(3, 900), ago(1000));
    let include = ["--include", "Jazz/**"];

    let mut planned = pair.pull_json(&[include[0], include[1], "--dry-run"], 0);
    assert_eq!(planned["dry_run"], true, "{planned}");
    assert!(pair.tree(Lib).is_empty(), "the dry run fetched files");
    let mut done = pair.pull_json(&include, 0);
    assert_eq!(count(&done, "downloaded"), 2, "{done}");
    planned["dry_run"] = false.into();
    done["dry_run"] = false.into();
    assert_eq!(
        planned, done,
        "the dry run's counts differ from the real pull's"
    );
    assert_eq!(
        pair.tree(Lib).into_keys().collect::<Vec<_>>(),
        ["Jazz/B/01.flac", "Jazz/C/01.flac"]
    );
}

/// A share emptied (not mounted on the NAS) after a pull fetched from it: refused with exit 3,
/// nothing removed locally.
#[test]
fn pull_from_an_emptied_share_refuses_and_removes_nothing() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    pair.write(Peer, "Rock/A/01.flac", &track(1, 900), ago(1000));
    pair.write(Peer, "Rock/A/02.flac", &track(2, 900), ago(1000));
    pair.pull_json(&[], 0);
    let lib = pair.snapshot(Lib);
    pair.remove(Peer, "Rock");
    let (json, out) = pair.pull().json().parsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(json.is_null() || !json["refused"].is_null(), "{json}");
    assert_eq!(pair.snapshot(Lib), lib, "the library changed");
}
