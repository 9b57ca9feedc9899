//! `musync bisync` and `musync pull` as the user runs them, between a library and a local
//! folder as the peer (the real rclone): the first run merges, changes and deletions go across
//! (into the backups), a rename is a move, a dry run changes nothing and is what the real run
//! does, a second run does nothing, the config file's keys work, and one run at a time.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::util::*;

/// A library and a peer folder, side by side in a temporary folder.
struct Pair {
    dir: tempfile::TempDir,
    library: PathBuf,
    peer: PathBuf,
}

impl Pair {
    fn new() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let (library, peer) = (dir.path().join("library"), dir.path().join("peer"));
        fs::create_dir(&library).unwrap();
        fs::create_dir(&peer).unwrap();
        Pair { dir, library, peer }
    }

    fn bisync(&self) -> Run {
        Run::bare()
            .arg("bisync")
            .arg("--library")
            .arg(&self.library)
            .arg("--peer")
            .arg(&self.peer)
    }

    fn pull(&self) -> Run {
        Run::bare()
            .arg("pull")
            .arg("--library")
            .arg(&self.library)
            .arg("--from")
            .arg(&self.peer)
    }

    /// The files of both sides, musync's own folders left out.
    fn music(&self) -> (Vec<String>, Vec<String>) {
        let music = |dir: &Path| {
            (files(dir).into_iter())
                .filter(|f| !f.starts_with(".musync"))
                .collect::<Vec<_>>()
        };
        (music(&self.library), music(&self.peer))
    }
}

/// Writes `bytes` at `path` (folders made), with a modification time `age` seconds ago.
fn put(path: &Path, bytes: &[u8], age: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(age))
        .unwrap();
}

/// The files under `side`'s backup folders, as `<path>` (the dated folder left out).
fn backups(side: &Path) -> Vec<String> {
    let root = side.join(".musync-backups");
    if !root.exists() {
        return Vec::new();
    }
    let mut out: Vec<String> = (files(&root).into_iter())
        .map(|f| f.split_once('/').unwrap().1.to_owned())
        .collect();
    out.sort();
    out
}

fn json_ok(run: Run) -> Value {
    let (json, out) = run.json().parsed_strict();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json
}

/// The counts of a bisync summary, for comparing a dry run with the real one.
fn counts(json: &Value) -> Vec<(String, Value)> {
    let keys = [
        "to_library",
        "to_peer",
        "moved_library",
        "moved_peer",
        "deleted_library",
        "deleted_peer",
        "conflicts",
        "unchanged",
    ];
    keys.iter()
        .map(|k| ((*k).to_owned(), json[*k].clone()))
        .collect()
}

/// A library and a peer merged by a first run: `A/1.flac` and `B/2.flac` on both.
fn merged() -> Pair {
    let pair = Pair::new();
    put(&pair.library.join("A/1.flac"), b"one", 100);
    put(&pair.peer.join("B/2.flac"), b"two", 100);
    json_ok(pair.bisync());
    pair
}

#[test]
fn the_first_bisync_merges_both_ways_and_a_second_does_nothing() {
    let pair = Pair::new();
    put(&pair.library.join("A/1.flac"), b"one", 100);
    put(&pair.peer.join("B/2.flac"), b"two", 100);
    put(&pair.library.join("C/3.flac"), b"same", 100);
    fs::create_dir_all(pair.peer.join("C")).unwrap();
    fs::copy(pair.library.join("C/3.flac"), pair.peer.join("C/3.flac")).unwrap();
    let mtime = fs::metadata(pair.library.join("C/3.flac"))
        .unwrap()
        .modified()
        .unwrap();
    let file = fs::File::options()
        .write(true)
        .open(pair.peer.join("C/3.flac"))
        .unwrap();
    file.set_modified(mtime).unwrap();
    let first = json_ok(pair.bisync());
    assert_eq!(
        (first["to_library"].as_u64(), first["to_peer"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(first["unchanged"], 1, "{first}");
    let (library, peer) = pair.music();
    assert_eq!(library, ["A/1.flac", "B/2.flac", "C/3.flac"]);
    assert_eq!(library, peer);
    assert_eq!(fs::read(pair.peer.join("A/1.flac")).unwrap(), b"one");
    assert_eq!(fs::read(pair.library.join("B/2.flac")).unwrap(), b"two");
    // The first run that finds the library's state folder caches rclone's version there.
    let music = |dir: &Path| {
        let mut tree = tree_hashes(dir);
        tree.remove(".musync/rclone-version");
        tree
    };
    let before = (music(&pair.library), music(&pair.peer));
    let second = json_ok(pair.bisync());
    let idle: Vec<(String, Value)> = counts(&second)
        .into_iter()
        .filter(|(k, _)| k != "unchanged")
        .collect();
    assert!(idle.iter().all(|(_, v)| v == 0), "{second}");
    assert_eq!(second["unchanged"], 3, "{second}");
    assert_eq!(before, (music(&pair.library), music(&pair.peer)));
}

#[test]
fn a_modification_goes_across_and_the_old_version_into_the_backups() {
    let pair = merged();
    put(&pair.peer.join("A/1.flac"), b"one, retagged", 10);
    let json = json_ok(pair.bisync());
    assert_eq!(json["to_library"], 1, "{json}");
    assert_eq!(json["backed_up"], 1, "{json}");
    assert_eq!(
        fs::read(pair.library.join("A/1.flac")).unwrap(),
        b"one, retagged"
    );
    assert_eq!(backups(&pair.library), ["A/1.flac"]);
    let old = fs::read_dir(pair.library.join(".musync-backups")).unwrap();
    let old = old
        .map(|e| e.unwrap().path().join("A/1.flac"))
        .next()
        .unwrap();
    assert_eq!(fs::read(old).unwrap(), b"one");
    assert!(
        !pair.library.join(".musync-tmp").exists(),
        "the fetch folder stayed"
    );
}

#[test]
fn a_deletion_goes_across_into_the_peers_backups() {
    let pair = merged();
    fs::remove_file(pair.library.join("B/2.flac")).unwrap();
    let json = json_ok(pair.bisync());
    assert_eq!(
        (json["deleted_peer"].as_u64(), json["backed_up"].as_u64()),
        (Some(1), Some(1))
    );
    let (library, peer) = pair.music();
    assert_eq!(library, ["A/1.flac"]);
    assert_eq!(peer, ["A/1.flac"]);
    assert_eq!(backups(&pair.peer), ["B/2.flac"]);
    assert!(
        !pair.peer.join("B").exists(),
        "the emptied folder stayed on the peer"
    );
}

#[test]
fn a_dry_run_changes_nothing_and_is_what_the_real_run_does() {
    let pair = merged();
    put(&pair.peer.join("A/1.flac"), b"one, retagged", 10);
    fs::remove_file(pair.peer.join("B/2.flac")).unwrap();
    put(&pair.library.join("New/3.flac"), b"three", 10);
    fs::rename(pair.library.join("A"), pair.library.join("A2")).ok();
    let before = (tree_hashes(&pair.library), tree_hashes(&pair.peer));
    let (dry, out) = pair.bisync().arg("--dry-run").json().parsed_strict();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        before,
        (tree_hashes(&pair.library), tree_hashes(&pair.peer))
    );
    let lines = pair.bisync().arg("--dry-run").ok();
    let lines = String::from_utf8(lines.stdout).unwrap();
    assert!(lines.contains("copy library → peer: New/3.flac"), "{lines}");
    let real = json_ok(pair.bisync());
    assert_eq!(counts(&dry), counts(&real), "dry {dry}\nreal {real}");
    let (library, peer) = pair.music();
    assert_eq!(library, peer);
    let third = json_ok(pair.bisync());
    assert_eq!(
        third["unchanged"].as_u64(),
        Some(library.len() as u64),
        "{third}"
    );
}

#[test]
fn a_rename_is_a_move_and_sends_no_bytes() {
    let pair = merged();
    let inode = fs::metadata(pair.peer.join("A/1.flac")).unwrap().ino();
    fs::create_dir(pair.library.join("Renamed")).unwrap();
    fs::rename(
        pair.library.join("A/1.flac"),
        pair.library.join("Renamed/1.flac"),
    )
    .unwrap();
    let json = json_ok(pair.bisync());
    assert_eq!(
        (json["moved_peer"].as_u64(), json["to_peer"].as_u64()),
        (Some(1), Some(0))
    );
    let moved = fs::metadata(pair.peer.join("Renamed/1.flac")).unwrap();
    assert_eq!(
        moved.ino(),
        inode,
        "the peer's file was sent again, not moved"
    );
    assert!(!pair.peer.join("A").exists());
}

#[test]
fn a_second_bisync_on_the_library_exits_3_naming_the_first() {
    let pair = merged();
    put(&pair.library.join("C/3.flac"), b"three", 10);
    let slow = slow_rclone(3);
    let mut first = (pair
        .bisync()
        .env("MUSYNC_RCLONE", slow.path().join("rclone")))
    .command()
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    super::libsync_fixes::wait_for_library_lock(&pair.library, &mut first);
    let second = pair.bisync().output();
    assert_eq!(second.status.code(), Some(3), "{}", stderr(&second));
    let said = stderr(&second);
    let library = pair.library.display().to_string();
    assert!(
        said.contains(&format!(
            "library {library} is in use by musync bisync (pid"
        )),
        "{said}"
    );
    let pull = pair.pull().output();
    assert_eq!(pull.status.code(), Some(3), "{}", stderr(&pull));
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(fs::read(pair.peer.join("C/3.flac")).unwrap(), b"three");
}

#[test]
fn the_config_files_peer_and_bisync_table_are_the_flags_defaults() {
    let pair = Pair::new();
    put(&pair.library.join("Keep/1.flac"), b"one", 100);
    put(&pair.library.join("Keep/3.flac"), b"three", 100);
    put(&pair.library.join("Skip/2.flac"), b"two", 100);
    let config = pair.dir.path().join("config.toml");
    let text = format!(
        "library = {:?}\npeer = {:?}\n\n[bisync]\nexclude = [\"Skip\"]\nbackup = false\n",
        pair.library, pair.peer
    );
    fs::write(&config, text).unwrap();
    let json = json_ok(Run::bare().arg("--config").arg(&config).arg("bisync"));
    assert_eq!(json["to_peer"], 2, "{json}");
    assert_eq!(files(&pair.peer), ["Keep/1.flac", "Keep/3.flac"]);
    fs::remove_file(pair.library.join("Keep/1.flac")).unwrap();
    let json = json_ok(Run::bare().arg("--config").arg(&config).arg("bisync"));
    assert_eq!(
        (json["deleted_peer"].as_u64(), json["backed_up"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(backups(&pair.peer).is_empty(), "backup = false backed up");
    // A bad value is named with its key and line, exit 2.
    fs::write(&config, "peer = \"/x\"\n[bisync]\ncompare = \"md5\"\n").unwrap();
    let out = Run::bare()
        .arg("--config")
        .arg(&config)
        .arg("bisync")
        .output();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 3: bisync.compare"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_library_or_a_peer_inside_it_exits_2_and_an_emptied_peer_exits_3() {
    let pair = merged();
    let out = Run::bare()
        .args(["bisync", "--peer"])
        .arg(&pair.peer)
        .arg("--library")
        .arg(pair.dir.path().join("nowhere"))
        .output();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = Run::bare()
        .arg("bisync")
        .arg("--library")
        .arg(&pair.library)
        .arg("--peer")
        .arg(pair.library.join("A"))
        .output();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("inside"), "{}", stderr(&out));
    // An unmounted peer must not become "delete everything in the library".
    fs::remove_dir_all(&pair.peer).unwrap();
    let (json, out) = pair.bisync().json().parsed_strict();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        json["refused"]["reason"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{json}"
    );
    assert_eq!(json["refused"]["planned"]["deleted_library"], 2, "{json}");
    assert_eq!(pair.music().0, ["A/1.flac", "B/2.flac"]);
}

#[test]
fn pull_fetches_replays_a_move_and_removes_what_the_share_lost() {
    let pair = Pair::new();
    put(&pair.peer.join("A/1.flac"), b"one", 100);
    put(&pair.peer.join("B/2.flac"), b"two", 100);
    put(&pair.library.join("Mine/x.flac"), b"mine", 100);
    let json = json_ok(pair.pull());
    assert_eq!(json["downloaded"], 2, "{json}");
    let inode = fs::metadata(pair.library.join("A/1.flac")).unwrap().ino();
    fs::create_dir(pair.peer.join("Moved")).unwrap();
    fs::rename(pair.peer.join("A/1.flac"), pair.peer.join("Moved/1.flac")).unwrap();
    fs::remove_file(pair.peer.join("B/2.flac")).unwrap();
    let json = json_ok(pair.pull());
    assert_eq!(
        (json["moved"].as_u64(), json["deleted"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        fs::metadata(pair.library.join("Moved/1.flac"))
            .unwrap()
            .ino(),
        inode
    );
    assert_eq!(pair.music().0, ["Mine/x.flac", "Moved/1.flac"]);
    assert_eq!(backups(&pair.library), ["B/2.flac"]);
    assert_eq!(pair.music().1, ["Moved/1.flac"], "pull wrote to the share");
}

#[test]
fn a_bisync_killed_mid_run_saves_nothing_and_the_next_run_converges() {
    let pair = merged();
    let saved = super::libsync_fixes::state_files(&pair.library);
    assert_eq!(saved.len(), 1, "{saved:?}");
    put(&pair.library.join("A/1.flac"), b"one, retagged", 10);
    put(&pair.library.join("C/3.flac"), b"three", 10);
    put(&pair.peer.join("D/4.flac"), b"four", 10);
    // kill -9 of musync when it first moves on the peer: after the fetch into the library and
    // the upload into the peer's temporary folder, before the backup and the renames there.
    let killer = stand_in_rclone(
        "#!/bin/sh\nif [ \"$1\" = move ]; then kill -9 $PPID; exit 1; fi\nexec REAL \"$@\"\n",
    );
    let out = pair
        .bisync()
        .env("MUSYNC_RCLONE", killer.path().join("rclone"))
        .output();
    assert_eq!(out.status.code(), None, "not killed: {}", stderr(&out));
    assert_eq!(
        super::libsync_fixes::state_files(&pair.library),
        saved,
        "the state moved"
    );
    let json = json_ok(pair.bisync());
    assert_eq!(json["conflicts"], 0, "{json}");
    let (library, peer) = pair.music();
    assert_eq!(library, ["A/1.flac", "B/2.flac", "C/3.flac", "D/4.flac"]);
    assert_eq!(library, peer);
    for side in [&pair.library, &pair.peer] {
        assert_eq!(fs::read(side.join("A/1.flac")).unwrap(), b"one, retagged");
        assert_eq!(fs::read(side.join("D/4.flac")).unwrap(), b"four");
    }
    // The version the run replaced is kept, and what the killed run left behind is gone.
    assert_eq!(backups(&pair.peer), ["A/1.flac"]);
    for side in [&pair.library, &pair.peer] {
        assert_eq!(files(&side.join(".musync-tmp")), Vec::<String>::new());
    }
    let again = json_ok(pair.bisync());
    assert_eq!(again["unchanged"], 4, "{again}");
    assert_eq!(again["to_peer"], 0, "{again}");
}

#[test]
fn a_file_that_fails_to_copy_is_named_and_the_others_go_across() {
    let pair = merged();
    put(&pair.library.join("C/3.flac"), b"three", 10);
    put(&pair.library.join("E/5.flac"), b"five", 10);
    // rclone copies both into the peer's upload folder, but C/3.flac does not arrive.
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = copy ]; then REAL \"$@\"; rm -f {:?}/.musync-tmp/*/C/3.flac; \
         echo 'ERROR : C/3.flac: source file vanished' >&2; exit 1; fi\nexec REAL \"$@\"\n",
        pair.peer
    );
    let flaky = stand_in_rclone(&script);
    let (json, out) = (pair
        .bisync()
        .env("MUSYNC_RCLONE", flaky.path().join("rclone")))
    .json()
    .parsed_strict();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = (err.lines())
        .filter(|l| l.contains("C/3.flac"))
        .map(str::trim)
        .collect();
    assert_eq!(lines.len(), 1, "{}", stderr(&out));
    assert!(lines[0].starts_with("musync: C/3.flac: "), "{}", lines[0]);
    assert_eq!(json["to_peer"], 1, "{json}");
    assert_eq!(fs::read(pair.peer.join("E/5.flac")).unwrap(), b"five");
    assert!(!pair.peer.join("C/3.flac").exists());
    let json = json_ok(pair.bisync());
    assert_eq!(json["to_peer"], 1, "{json}");
    assert_eq!(pair.music().0, pair.music().1);
}

#[test]
fn a_bisync_stopped_by_sigterm_exits_130_and_the_next_run_converges() {
    let pair = merged();
    put(&pair.library.join("C/3.flac"), b"three", 10);
    put(&pair.peer.join("D/4.flac"), b"four", 10);
    // SIGTERM reaches musync while rclone fetches D/4.flac into the library.
    let term = stand_in_rclone(
        "#!/bin/sh\nif [ \"$1\" = copy ]; then kill -TERM $PPID; sleep 1; fi\nexec REAL \"$@\"\n",
    );
    let out = pair
        .bisync()
        .env("MUSYNC_RCLONE", term.path().join("rclone"))
        .output();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    // Nothing was uploaded after the interruption.
    assert!(!pair.peer.join("C/3.flac").exists());
    let json = json_ok(pair.bisync());
    assert_eq!(json["conflicts"], 0, "{json}");
    let (library, peer) = pair.music();
    assert_eq!(library, ["A/1.flac", "B/2.flac", "C/3.flac", "D/4.flac"]);
    assert_eq!(library, peer);
}
