//! `musync bisync` between a local library and a peer on a local folder, `rclone serve sftp` and
//! smbd, with Debian's rclone 1.60 and the current release: the first run merges, conflicts
//! settle as asked, renames are moves, every overwritten or deleted version is kept in the
//! backups of the side that lost it, guards refuse before anything changes, a killed run
//! converges on the next one, and a dry run shows what the real run then does.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::peers::*;
use crate::remotes::{self, Kind};
use crate::util::*;

/// The backends where bytes move (copies, moves, backups): each behaves differently
/// (mtime precision, rename support, how a partial file looks).
const BACKENDS: [Kind; 3] = [Kind::Local, Kind::Sftp, Kind::Smb];

/// The JSON counts of a run that changed nothing.
fn assert_nothing_to_do(json: &serde_json::Value, what: &str) {
    for key in [
        "to_library",
        "to_peer",
        "moved_library",
        "moved_peer",
        "deleted_library",
        "deleted_peer",
        "conflicts",
        "backed_up",
        "failed",
    ] {
        assert_eq!(count(json, key), 0, "{what}: {key} in {json}");
    }
}

/// Today's UTC date as `YYYY-MM-DD`, as keep-both names carry it.
fn utc_date() -> String {
    let out = run(Command::new("date").args(["-u", "+%F"])).stdout;
    String::from_utf8(out).unwrap().trim().to_owned()
}

/// The first run merges: a file on one side only is copied to the other, a file that differs
/// is a conflict (settled by the default, `newer`, the loser kept in its side's backups), and
/// nothing is deleted; the run after it has nothing to do.
#[test]
fn the_first_run_merges_both_sides_and_deletes_nothing() {
    for rclone in remotes::rclones() {
        for kind in BACKENDS {
            let pair = Pair::new(kind, &rclone);
            let what = pair.what.clone();
            pair.write(Lib, "Ripped/Laptop CD/01.flac", &track(1, 3000), ago(100));
            pair.write(Peer, "Nas/Old Album/01.flac", &track(2, 3000), ago(100));
            pair.write(Peer, "Nas/Old Album/02.flac", &track(3, 3100), ago(100));
            pair.both("Same/01.flac", &track(4, 2000), ago(500));
            pair.write(Lib, "Both/01.flac", &track(5, 2500), ago(3000));
            pair.write(Peer, "Both/01.flac", &track(6, 2600), ago(60));
            let before = pair.versions();

            let json = pair.bisync_json(&[], 0);
            assert_eq!(count(&json, "to_peer"), 1, "{what}: {json}");
            assert_eq!(count(&json, "to_library"), 3, "{what}: {json}");
            assert_eq!(count(&json, "conflicts"), 1, "{what}: {json}");
            assert_eq!(count(&json, "deleted_library"), 0, "{what}: {json}");
            assert_eq!(count(&json, "deleted_peer"), 0, "{what}: {json}");
            assert_eq!(json["dry_run"], false, "{what}: {json}");
            pair.assert_in_step("after the first run");
            let lib = pair.tree(Lib);
            assert_eq!(lib.len(), 5, "{what}: {:?}", lib.keys());
            assert_eq!(lib["Both/01.flac"], track(6, 2600), "{what}: newer lost");
            assert_eq!(
                pair.backups(Lib),
                [("Both/01.flac".to_owned(), track(5, 2500))],
                "{what}: the library's losing version is not in its backups"
            );
            assert!(pair.backups(Peer).is_empty(), "{what}");
            assert_eq!(pair.versions(), before, "{what}: a version was lost");
            assert!(pair.temporaries(Lib).is_empty(), "{what}");
            assert!(pair.temporaries(Peer).is_empty(), "{what}");

            let again = pair.bisync_json(&[], 0);
            assert_nothing_to_do(&again, &format!("{what}: second run"));
            assert_eq!(count(&again, "unchanged"), 5, "{what}: {again}");
        }
    }
}

/// A file changed on both sides since the last run settles by `--conflict`: `library`,
/// `peer`, `newer` and `older` keep one version on both sides and the other in the backups of
/// the side that lost it; `keep-both` keeps both on both sides, each named with its side and
/// the date. The next run has nothing left to do.
#[test]
fn each_conflict_mode_settles_as_asked() {
    let rclone = &remotes::rclones()[0];
    let date = utc_date();
    // a.flac: the library's edit is the newer; b.flac: the peer's is.
    let (a_lib, a_peer, b_lib, b_peer) = (
        track(11, 900),
        track(12, 901),
        track(13, 902),
        track(14, 903),
    );
    for (mode, a_wins, b_wins) in [
        ("library", Lib, Lib),
        ("peer", Peer, Peer),
        ("newer", Lib, Peer),
        ("older", Peer, Lib),
    ] {
        let pair = Pair::new(Kind::Local, rclone);
        let what = format!("{} --conflict {mode}", pair.what);
        pair.both("A/a.flac", &track(1, 800), ago(5000));
        pair.both("A/b.flac", &track(2, 800), ago(5000));
        pair.bisync_json(&[], 0);
        pair.write(Lib, "A/a.flac", &a_lib, ago(60));
        pair.write(Peer, "A/a.flac", &a_peer, ago(600));
        pair.write(Lib, "A/b.flac", &b_lib, ago(600));
        pair.write(Peer, "A/b.flac", &b_peer, ago(60));

        let json = pair.bisync_json(&["--conflict", mode], 0);
        assert_eq!(count(&json, "conflicts"), 2, "{what}: {json}");
        pair.assert_in_step(&what);
        let pick = |side, lib: &Vec<u8>, peer: &Vec<u8>| match side {
            Lib => (lib.clone(), peer.clone()),
            Peer => (peer.clone(), lib.clone()),
        };
        let (a_kept, a_lost) = pick(a_wins, &a_lib, &a_peer);
        let (b_kept, b_lost) = pick(b_wins, &b_lib, &b_peer);
        assert_eq!(pair.read(Lib, "A/a.flac"), a_kept, "{what}: a.flac");
        assert_eq!(pair.read(Lib, "A/b.flac"), b_kept, "{what}: b.flac");
        for (rel, winner, version) in [("A/a.flac", a_wins, a_lost), ("A/b.flac", b_wins, b_lost)] {
            let loser = winner.other();
            assert!(
                pair.backups(loser).contains(&(rel.to_owned(), version)),
                "{what}: the {} version of {rel} is not in the {} backups: {:?}",
                loser.word(),
                loser.word(),
                pair.backups(loser)
            );
        }
        assert_nothing_to_do(&pair.bisync_json(&["--conflict", mode], 0), &what);
    }

    let pair = Pair::new(Kind::Local, rclone);
    let what = format!("{} --conflict keep-both", pair.what);
    pair.both("A/a.flac", &track(1, 800), ago(5000));
    pair.bisync_json(&[], 0);
    pair.write(Lib, "A/a.flac", &a_lib, ago(60));
    pair.write(Peer, "A/a.flac", &a_peer, ago(600));
    let json = pair.bisync_json(&["--conflict", "keep-both"], 0);
    assert_eq!(count(&json, "conflicts"), 1, "{what}: {json}");
    pair.assert_in_step(&what);
    let tree = pair.tree(Lib);
    assert_eq!(tree.len(), 2, "{what}: {:?}", tree.keys());
    for (side, version) in [(Lib, &a_lib), (Peer, &a_peer)] {
        let named: Vec<&String> = (tree.keys())
            .filter(|p| p.starts_with("A/a") && p.ends_with(".flac"))
            .filter(|p| p.contains(side.word()) && p.contains(&date))
            .collect();
        assert_eq!(
            named.len(),
            1,
            "{what}: no one copy named with {} and {date}: {:?}",
            side.word(),
            tree.keys()
        );
        assert_eq!(&tree[named[0]], version, "{what}: {}", named[0]);
    }
    assert_nothing_to_do(&pair.bisync_json(&[], 0), &what);
}

/// A file and a whole album folder renamed on one side are moved on the other, no bytes sent
/// (on a local folder the file keeps its inode), in both directions.
#[test]
fn renames_are_replayed_as_moves_without_sending_bytes() {
    for rclone in remotes::rclones() {
        for kind in BACKENDS {
            let pair = Pair::new(kind, &rclone);
            let what = pair.what.clone();
            for n in 1..=3 {
                let rel = format!("Artist/Album/0{n}.flac");
                pair.write(Lib, &rel, &track(n, 5000 + n as usize), ago(1000));
            }
            pair.write(Lib, "Loose.flac", &track(9, 4000), ago(1000));
            pair.bisync_json(&[], 0);
            pair.assert_in_step("after the first run");
            let inode = pair.inode(Peer, "Artist/Album/01.flac");

            pair.rename(Lib, "Artist/Album", "Artist/Album (2020 Remaster)");
            pair.rename(Lib, "Loose.flac", "Singles/Loose.flac");
            let json = pair.bisync_json(&[], 0);
            assert_eq!(count(&json, "moved_peer"), 4, "{what}: {json}");
            assert_eq!(count(&json, "to_peer"), 0, "{what}: bytes sent: {json}");
            assert_eq!(count(&json, "to_library"), 0, "{what}: {json}");
            assert_eq!(count(&json, "deleted_peer"), 0, "{what}: {json}");
            pair.assert_in_step("after renames on the library");
            if kind == Kind::Local {
                let moved = pair.inode(Peer, "Artist/Album (2020 Remaster)/01.flac");
                assert_eq!(moved, inode, "{what}: copied, not moved");
            }

            let inode = pair.inode(Lib, "Singles/Loose.flac");
            pair.rename(Peer, "Singles/Loose.flac", "Singles/Loose (Live).flac");
            let json = pair.bisync_json(&[], 0);
            assert_eq!(count(&json, "moved_library"), 1, "{what}: {json}");
            assert_eq!(count(&json, "to_library"), 0, "{what}: bytes sent: {json}");
            assert_eq!(count(&json, "deleted_library"), 0, "{what}: {json}");
            pair.assert_in_step("after a rename on the peer");
            let moved = pair.inode(Lib, "Singles/Loose (Live).flac");
            assert_eq!(moved, inode, "{what}: copied into the library, not moved");
            assert!(
                pair.backups(Lib).is_empty(),
                "{what}: {:?}",
                pair.backups(Lib)
            );
        }
    }
}

/// Every version a run overwrites or deletes is first put into the backups of the side that
/// loses it: edits and deletions on each side, on every backend.
#[test]
fn backups_on_both_sides_hold_every_overwritten_or_deleted_version() {
    for rclone in remotes::rclones() {
        for kind in BACKENDS {
            let pair = Pair::new(kind, &rclone);
            let what = pair.what.clone();
            let names = ["A/lib-edit.flac", "A/lib-gone.flac", "B/peer-edit.flac"];
            let names = [
                names[0],
                names[1],
                names[2],
                "B/peer-gone.flac",
                "C/kept.flac",
            ];
            for (i, rel) in (0..).zip(names) {
                pair.both(rel, &track(100 + i, 1500), ago(5000));
            }
            pair.bisync_json(&[], 0);
            pair.write(Lib, names[0], &track(200, 1600), ago(30));
            pair.remove(Lib, names[1]);
            pair.write(Peer, names[2], &track(202, 1700), ago(30));
            pair.remove(Peer, names[3]);

            let json = pair.bisync_json(&[], 0);
            let counts = [
                ("to_peer", 1),
                ("to_library", 1),
                ("deleted_peer", 1),
                ("deleted_library", 1),
                ("backed_up", 4),
                ("conflicts", 0),
            ];
            for (key, n) in counts {
                assert_eq!(count(&json, key), n, "{what}: {key}: {json}");
            }
            pair.assert_in_step("after edits and deletions on both sides");
            assert_eq!(
                pair.tree(Peer).into_keys().collect::<Vec<_>>(),
                [names[0], names[2], names[4]],
                "{what}"
            );
            assert_eq!(
                pair.backups(Peer),
                [
                    (names[0].to_owned(), track(100, 1500)),
                    (names[1].to_owned(), track(101, 1500))
                ],
                "{what}: the peer's backups"
            );
            assert_eq!(
                pair.backups(Lib),
                [
                    (names[2].to_owned(), track(102, 1500)),
                    (names[3].to_owned(), track(103, 1500))
                ],
                "{what}: the library's backups"
            );
            assert_nothing_to_do(&pair.bisync_json(&[], 0), &what);
        }
    }
}

/// A file deleted on one side and changed on the other comes back with its change: a deletion
/// never wins over an edit.
#[test]
fn a_file_deleted_on_one_side_and_changed_on_the_other_comes_back() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    pair.both("A/01.flac", &track(1, 700), ago(5000));
    pair.both("A/02.flac", &track(2, 700), ago(5000));
    pair.bisync_json(&[], 0);
    pair.remove(Lib, "A/01.flac");
    pair.write(Peer, "A/01.flac", &track(3, 701), ago(10));
    pair.write(Lib, "A/02.flac", &track(4, 702), ago(10));
    pair.remove(Peer, "A/02.flac");

    let json = pair.bisync_json(&[], 0);
    assert_eq!(count(&json, "deleted_library"), 0, "{json}");
    assert_eq!(count(&json, "deleted_peer"), 0, "{json}");
    pair.assert_in_step("after delete-versus-edit");
    assert_eq!(pair.read(Lib, "A/01.flac"), track(3, 701));
    assert_eq!(pair.read(Peer, "A/02.flac"), track(4, 702));
}

/// A peer folder that is gone or emptied (an unmounted disk, a share not mounted), or a
/// library whose music was deleted, while the last run saw files there: refused with exit 3,
/// nothing changed on either side; once the side is back the next run has nothing to do.
#[test]
fn a_missing_or_emptied_side_refuses_and_changes_nothing() {
    let rclone = &remotes::rclones()[0];
    for kind in [Kind::Local, Kind::Sftp] {
        let pair = Pair::new(kind, rclone);
        let what = pair.what.clone();
        for n in 1..=3 {
            pair.both(&format!("A/0{n}.flac"), &track(n, 600), ago(1000));
        }
        pair.bisync_json(&[], 0);
        let lib = pair.snapshot(Lib);
        let peer_root = pair.root(Peer);
        let aside = peer_root.with_file_name("Music (unmounted)");

        std::fs::rename(&peer_root, &aside).unwrap();
        refused(&pair, &what, "peer folder gone");
        assert_eq!(pair.snapshot(Lib), lib, "{what}: peer gone");
        assert!(!peer_root.exists(), "{what}: the missing peer was made");

        std::fs::create_dir(&peer_root).unwrap();
        refused(&pair, &what, "peer folder empty");
        assert_eq!(pair.snapshot(Lib), lib, "{what}: peer empty");
        assert_eq!(files(&peer_root), Vec::<String>::new(), "{what}");

        std::fs::remove_dir(&peer_root).unwrap();
        std::fs::rename(&aside, &peer_root).unwrap();
        let peer = pair.snapshot(Peer);
        // `rm -r ~/Music/*`: the music gone, musync's records (a dot folder) still there.
        let lib_aside = pair.env.dir.path().join("music (deleted)");
        std::fs::rename(pair.path(Lib, "A"), &lib_aside).unwrap();
        refused(&pair, &what, "library emptied");
        assert_eq!(pair.snapshot(Peer), peer, "{what}: library emptied");
        std::fs::rename(&lib_aside, pair.path(Lib, "A")).unwrap();

        // An unmounted library disk: an empty mount point, without musync's records either
        // (they live in the user's state folder), is refused too.
        let lib_aside = pair.env.dir.path().join("library (unmounted)");
        std::fs::rename(pair.root(Lib), &lib_aside).unwrap();
        std::fs::create_dir(pair.root(Lib)).unwrap();
        refused(&pair, &what, "library unmounted");
        assert_eq!(pair.snapshot(Peer), peer, "{what}: library unmounted");
        assert_eq!(files(&pair.root(Lib)), Vec::<String>::new(), "{what}");
        std::fs::remove_dir_all(pair.root(Lib)).unwrap();
        std::fs::rename(&lib_aside, pair.root(Lib)).unwrap();
        assert_nothing_to_do(&pair.bisync_json(&[], 0), &what);
    }
}

/// A run refused by a guard: exit 3, one line saying why, and (with `--json`) `refused`.
fn refused(pair: &Pair, what: &str, case: &str) {
    let (json, out) = pair.bisync().json().parsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{what}: {case}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("musync:")).collect();
    assert_eq!(lines.len(), 1, "{what}: {case}: {err}");
    if !json.is_null() {
        assert!(!json["refused"].is_null(), "{what}: {case}: {json}");
    }
}

/// `--max-delete` caps the deletions of the whole plan on each side: over it the run is
/// refused with exit 3 and changes nothing; at it the run goes ahead.
#[test]
fn max_delete_refuses_a_plan_over_the_cap() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    for n in 0..10 {
        pair.both(&format!("A/{n:02}.flac"), &track(n, 500), ago(1000));
    }
    pair.bisync_json(&[], 0);
    for n in 0..4 {
        pair.remove(Lib, &format!("A/{n:02}.flac"));
    }
    let (lib, peer) = (pair.snapshot(Lib), pair.snapshot(Peer));
    for cap in ["3", "30%"] {
        let json = pair.bisync_json(&["--max-delete", cap], 3);
        assert!(
            json.is_null() || !json["refused"].is_null(),
            "{cap}: {json}"
        );
        assert_eq!(pair.snapshot(Lib), lib, "--max-delete {cap}");
        assert_eq!(pair.snapshot(Peer), peer, "--max-delete {cap}");
    }
    let json = pair.bisync_json(&["--max-delete", "4"], 0);
    assert_eq!(count(&json, "deleted_peer"), 4, "{json}");
    assert_eq!(pair.backups(Peer).len(), 4);
    pair.assert_in_step("at the cap");
}

/// kill -9 of a bisync mid-transfer (both ways, a few MB each, slowed down), then a rerun:
/// no file under a final name on either side is partial, the rerun converges, and every
/// version that existed before is on a side or in a backup.
#[test]
fn a_bisync_killed_mid_transfer_converges_on_the_next_run() {
    for rclone in remotes::rclones() {
        for kind in [Kind::Local, Kind::Sftp] {
            let pair = Pair::new(kind, &rclone);
            let what = pair.what.clone();
            pair.both("Old/01.flac", &track(1, 1_000_000), ago(5000));
            pair.bisync_json(&[], 0);
            for n in 1..=3 {
                let rel = format!("Rip/0{n}.flac");
                pair.write(Lib, &rel, &track(10 + n, 2_000_000), ago(60));
            }
            pair.write(Peer, "Old/01.flac", &track(2, 1_100_000), ago(60));
            let before = pair.versions();
            let peer_bytes = tree_size(&pair, Peer);

            let mut child = pair
                .bisync()
                .env(
                    "MUSYNC_RCLONE_FLAGS",
                    format!("{} --bwlimit 200k", remotes::FAIL_FAST),
                )
                .command()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while tree_size(&pair, Peer) <= peer_bytes {
                assert!(child.try_wait().unwrap().is_none(), "{what}: ended early");
                assert!(Instant::now() < deadline, "{what}: no transfer started");
                sleep(Duration::from_millis(5));
            }
            child.kill().unwrap();
            let status = child.wait().unwrap();
            assert_eq!(status.signal(), Some(9), "{what}: ended before the kill");
            // rclone dies with musync (PR_SET_PDEATHSIG); give the server a moment to close.
            sleep(Duration::from_millis(300));
            for side in [Lib, Peer] {
                for (rel, bytes) in pair.tree(side) {
                    assert!(
                        before.contains(&bytes),
                        "{what}: {rel} on the {} is no whole version ({} bytes)",
                        side.word(),
                        bytes.len()
                    );
                }
            }

            let json = pair.bisync_json(&[], 0);
            assert_eq!(count(&json, "failed"), 0, "{what}: {json}");
            pair.assert_in_step("after the rerun");
            assert_eq!(pair.read(Lib, "Old/01.flac"), track(2, 1_100_000), "{what}");
            assert_eq!(pair.tree(Lib).len(), 4, "{what}");
            let after = pair.versions();
            let lost: Vec<usize> = before.difference(&after).map(Vec::len).collect();
            assert!(lost.is_empty(), "{what}: versions lost (sizes {lost:?})");
            assert!(pair.temporaries(Lib).is_empty(), "{what}");
            assert!(pair.temporaries(Peer).is_empty(), "{what}");
            assert_nothing_to_do(&pair.bisync_json(&[], 0), &what);
        }
    }
}

/// Bytes of every file under a side's folder, musync's own folders included: grows as soon
/// as a transfer writes anything.
fn tree_size(pair: &Pair, side: At) -> u64 {
    let root = pair.root(side);
    files(&root)
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).map_or(0, |m| m.len()))
        .sum()
}

/// `--dry-run` changes nothing on either side (nor musync's records), and its plan is what
/// the real run then does: the same counts in `--json`, the same action lines.
#[test]
fn a_dry_run_shows_exactly_what_the_real_run_then_does() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    for n in 1..=6 {
        pair.both(&format!("A/0{n}.flac"), &track(n, 700), ago(5000));
    }
    pair.bisync_json(&[], 0);
    pair.write(Lib, "New/lib.flac", &track(20, 800), ago(30));
    pair.write(Peer, "New/peer.flac", &track(21, 800), ago(30));
    pair.write(Lib, "A/01.flac", &track(22, 801), ago(30));
    pair.remove(Peer, "A/02.flac");
    pair.rename(Lib, "A/03.flac", "B/03.flac");
    pair.write(Lib, "A/04.flac", &track(23, 802), ago(30));
    pair.write(Peer, "A/04.flac", &track(24, 803), ago(90));
    let whole = |side| pair.snapshot(side);
    let (lib, peer) = (whole(Lib), whole(Peer));

    let mut planned = pair.bisync_json(&["--dry-run"], 0);
    assert_eq!(planned["dry_run"], true, "{planned}");
    let text = pair.bisync().arg("--dry-run").ok();
    assert_eq!(whole(Lib), lib, "the dry run changed the library");
    assert_eq!(whole(Peer), peer, "the dry run changed the peer");

    let out = pair.bisync().args(["-v", "--json"]).ok();
    let done = strict_json(&out);
    assert_eq!(done["dry_run"], false, "{done}");
    planned["dry_run"] = serde_json::Value::Bool(false);
    assert_eq!(
        planned, done,
        "the dry run's counts differ from the real run's"
    );
    assert_ne!(
        count(&done, "to_peer") + count(&done, "moved_peer"),
        0,
        "{done}"
    );
    let plan = action_lines(&String::from_utf8_lossy(&text.stdout));
    let real = action_lines(&(String::from_utf8_lossy(&out.stdout) + stderr(&out).as_str()));
    assert!(plan.len() >= 6, "too few action lines: {plan:?}");
    assert_eq!(
        plan, real,
        "the dry run's actions differ from the real run's"
    );
    pair.assert_in_step("after the real run");
}

/// The actions a run's output names, one line each in a canonical form: a dry run's
/// `copy library → peer: A/01.flac` and `-v`'s `INFO copied library → peer: A/01.flac` alike
/// (conflict lines left out: the JSON counts them).
fn action_lines(out: &str) -> Vec<String> {
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| l.trim().trim_start_matches("INFO").trim_start())
        .filter_map(|l| {
            let (verb, rest) = l.split_once(' ')?;
            let verb = match verb {
                "copy" | "copied" => "copy",
                "move" | "moved" => "move",
                "delete" | "deleted" => "delete",
                _ => return None,
            };
            let rest = rest.trim_end_matches(" (backed up)");
            Some(format!("{verb} {rest}"))
        })
        .collect();
    lines.sort();
    lines
}
