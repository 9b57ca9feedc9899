//! The faults a user's trial of `musync bisync` and `musync pull` found (issue 15's follow-up),
//! each a regression test between a library and a local folder (the real rclone): an unmounted
//! library disk, an empty or missing peer, a mistyped peer, the words of the summary and of the
//! refusals, and a dry run while another run writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use crate::util::*;

/// The isolated HOME's folder of `library`'s library-sync state and lock, as musync keys it.
pub fn state_dir(library: &Path) -> PathBuf {
    let root = isolated_home().join(".local/state/musync/libsync");
    musync::libsync::state::library_dir(&root, library)
}

/// The state files of `library`'s pairs (the lock's files left out), by name, with their hashes.
pub fn state_files(library: &Path) -> std::collections::BTreeMap<String, String> {
    let mut files = tree_hashes(&state_dir(library));
    files.retain(|name, _| name.ends_with(".json"));
    files
}

/// Wait until `child`, a bisync or pull of `library`, holds the library's lock.
pub fn wait_for_library_lock(library: &Path, child: &mut std::process::Child) {
    let busy = state_dir(library).join("lock.busy");
    let start = Instant::now();
    loop {
        let held = busy.exists()
            && !std::process::Command::new("flock")
                .args(["-n", "-s"])
                .arg(&busy)
                .arg("true")
                .status()
                .expect("flock runs")
                .success();
        if held {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it was seen holding the library's lock");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no lock within a minute"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A library and a peer folder, side by side in a temporary folder.
struct Pair {
    dir: tempfile::TempDir,
    library: PathBuf,
    peer: PathBuf,
}

impl Pair {
    /// `A/1.flac` in the library, `B/2.flac` on the peer, not yet synced.
    fn new() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let (library, peer) = (dir.path().join("library"), dir.path().join("peer"));
        put(&library.join("A/1.flac"), b"one");
        put(&peer.join("B/2.flac"), b"two");
        Pair { dir, library, peer }
    }

    /// [`Pair::new`] after a first bisync: both files on both sides.
    fn merged() -> Pair {
        let pair = Pair::new();
        let out = pair.bisync().output();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        pair
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

    /// Moves `side`'s folder aside (an unmounted disk); returns where it went.
    fn unmount(&self, side: &Path) -> PathBuf {
        let aside = self.dir.path().join("unmounted");
        fs::rename(side, &aside).unwrap();
        aside
    }

    fn remount(&self, side: &Path) {
        if side.exists() {
            fs::remove_dir(side).unwrap();
        }
        fs::rename(self.dir.path().join("unmounted"), side).unwrap();
    }
}

fn put(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(100))
        .unwrap();
}

/// `run` exits with `code`; its stderr.
fn fails(run: Run, code: i32) -> String {
    let out = run.output();
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{said}");
    said
}

// Regression: the state lived in LIBRARY/.musync, so an unmounted library disk (an empty mount
// point) looked like a first run and the whole peer was copied into the mount point.
#[test]
fn an_unmounted_library_disk_is_refused_not_filled_with_the_peer() {
    let pair = Pair::merged();
    assert!(
        !pair.library.join(".musync").exists(),
        "bisync wrote its state into the library"
    );
    assert!(
        state_dir(&pair.library).is_dir(),
        "no state in XDG_STATE_HOME"
    );
    let peer = files(&pair.peer);
    let library = pair.library.display().to_string();
    for command in ["bisync", "pull"] {
        let run = || match command {
            "bisync" => pair.bisync(),
            _ => pair.pull(),
        };
        if command == "pull" {
            let out = run().output();
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        }
        pair.unmount(&pair.library);
        fs::create_dir(&pair.library).unwrap();
        let said = fails(run(), 3);
        assert!(
            said.contains(&format!(
                "the library {library} is empty but held 2 files at the last {command}; is its \
                 disk mounted? Nothing was changed"
            )),
            "{command}: {said}"
        );
        assert_eq!(files(&pair.library), Vec::<String>::new(), "{command}");
        fs::remove_dir(&pair.library).unwrap();
        let said = fails(run(), 3);
        assert!(
            said.contains(&format!(
                "the library {library} is missing but held 2 files at the last {command}"
            )),
            "{command}: {said}"
        );
        assert!(!pair.library.exists(), "{command}: the library was made");
        assert_eq!(files(&pair.peer), peer, "{command}: the peer changed");
        pair.remount(&pair.library);
        let out = run().json().output();
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
    }
}

// Regression: an emptied peer after earlier syncs was refused in the delete cap's words ("2
// deletions on the library (of 2 files) exceed --max-delete 50%"), not as an empty side.
#[test]
fn an_empty_or_missing_peer_is_refused_as_such_not_by_the_delete_cap() {
    let pair = Pair::merged();
    let out = pair.pull().output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let peer = pair.peer.display().to_string();
    let library = files(&pair.library);
    pair.unmount(&pair.peer);
    for (state, run) in [("missing", pair.bisync()), ("missing", pair.pull())] {
        let said = fails(run, 3);
        assert!(
            said.contains(&format!("{peer} is {state} but held 2 files at the last")),
            "{said}"
        );
        assert!(
            said.contains("is it mounted? Nothing was changed"),
            "{said}"
        );
        assert!(!said.contains("--max-delete"), "{said}");
        assert!(!pair.peer.exists(), "the missing peer was made");
    }
    fs::create_dir(&pair.peer).unwrap();
    let said = fails(pair.bisync(), 3);
    assert!(
        said.contains(&format!(
            "the peer {peer} is empty but held 2 files at the last bisync; is it mounted? \
             Nothing was changed"
        )),
        "{said}"
    );
    assert!(!said.contains("--max-delete"), "{said}");
    assert_eq!(files(&pair.library), library);
    assert_eq!(files(&pair.peer), Vec::<String>::new());
    pair.remount(&pair.peer);
    let out = pair.bisync().output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

// Regression: a mistyped peer (or pull's --from) on a first run was created and the whole
// library copied into it, exit 0.
#[test]
fn a_peer_that_does_not_exist_on_a_first_run_is_a_usage_error() {
    let pair = Pair::new();
    fs::remove_dir_all(&pair.peer).unwrap();
    let peer = pair.peer.display().to_string();
    for (role, run) in [("peer", pair.bisync()), ("share", pair.pull())] {
        let said = fails(run.json(), 2);
        assert!(
            said.contains(&format!(
                "the {role} {peer} does not exist; create it first (`mkdir {peer}`) if it is a \
                 new copy"
            )),
            "{said}"
        );
        assert!(!pair.peer.exists(), "{role}: the mistyped folder was made");
    }
    assert_eq!(files(&pair.library), ["A/1.flac"]);
}

// Regression: a peer inside the library was refused as "the remote", and the message spoke of
// staging, which bisync and pull do not use.
#[test]
fn a_peer_or_share_inside_the_library_is_named_in_its_role() {
    let pair = Pair::new();
    let inside = pair.library.join("copy");
    fs::create_dir(&inside).unwrap();
    let (library, peer) = (pair.library.display(), inside.display());
    for (role, command) in [("peer", "--peer"), ("share", "--from")] {
        let subcommand = if role == "peer" { "bisync" } else { "pull" };
        let run = Run::bare()
            .args([subcommand, "--library"])
            .arg(&pair.library)
            .arg(command)
            .arg(&inside);
        let said = fails(run, 2);
        assert!(
            said.contains(&format!(
                "the {role} {peer} is inside the library {library}; the library and the {role} \
                 may not overlap. Nothing was changed"
            )),
            "{said}"
        );
        assert!(
            !said.contains("remote") && !said.contains("staging"),
            "{said}"
        );
    }
    assert_eq!(files(&pair.library), ["A/1.flac"]);
}

/// The summary line of `run` (its last line on stdout), exit 0.
fn summary(run: Run) -> String {
    let out = run.output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap_or_default().to_owned()
}

// Regression: the summary listed every zero ("Copied 0 to the library and 2 to the peer, moved 0
// on the library and 0 on the peer, …; 0 conflicts; 0 unchanged") and said "1 conflicts".
#[test]
fn the_summary_line_says_only_what_happened() {
    let pair = Pair::new();
    assert_eq!(
        summary(pair.bisync().arg("--dry-run")),
        "Would copy 1 to the library and 1 to the peer."
    );
    assert_eq!(
        summary(pair.bisync()),
        "Copied 1 to the library and 1 to the peer."
    );
    assert_eq!(summary(pair.bisync()), "Nothing to do: 2 files unchanged.");
    put(&pair.library.join("A/1.flac"), b"one, retagged here");
    put(&pair.peer.join("A/1.flac"), b"one, retagged there");
    assert_eq!(
        summary(pair.bisync().args(["--conflict", "peer"])),
        "Copied 1 to the library, backed up 1; 1 conflict (the peer's version kept); 1 unchanged."
    );
    assert_eq!(summary(pair.pull()), "Nothing to do: 2 files unchanged.");
    fs::remove_file(pair.peer.join("B/2.flac")).unwrap();
    assert_eq!(
        summary(pair.pull().arg("--dry-run")),
        "Would delete 1, back up 1; 1 unchanged."
    );
}

// Regression: a dry run while a bisync wrote the same library planned from sides part-way
// through that run and said nothing of it.
#[test]
fn a_dry_run_while_a_bisync_runs_notes_the_other_run() {
    let pair = Pair::merged();
    put(&pair.library.join("C/3.flac"), b"three");
    let slow = slow_rclone(3);
    let mut first = (pair.bisync())
        .env("MUSYNC_RCLONE", slow.path().join("rclone"))
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_library_lock(&pair.library, &mut first);
    let library = pair.library.display();
    for dry_run in [pair.bisync(), pair.pull()] {
        let out = dry_run.arg("--dry-run").output();
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{said}");
        let notes: Vec<&str> = (said.lines())
            .filter(|l| l.contains("is changing the library"))
            .collect();
        assert_eq!(notes.len(), 1, "{said}");
        assert!(
            notes[0].starts_with("musync: note: musync bisync (pid ")
                && notes[0].ends_with(&format!(
                    "is changing the library {library} now; this shows it part-way through \
                     that run"
                )),
            "{said}"
        );
    }
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let out = pair.bisync().arg("--dry-run").output();
    assert!(!stderr(&out).contains("is changing"), "{}", stderr(&out));
}
