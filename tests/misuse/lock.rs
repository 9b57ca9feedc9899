//! Two runs on one staging folder: one writer at a time (a kernel lock, gone with its holder),
//! the second refused with exit code 3 naming the first, or waiting with `--wait`; readers
//! (status, verify, dry runs) neither wait nor fail while a writer runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// The demo library and three long tracks, so that a conversion lasts a few seconds.
fn slow_library() -> Env {
    let env = Env::demo();
    for n in 1..=3 {
        make_flac(
            &env.lib(&format!("Slow/Long/0{n}.flac")),
            90.0,
            &[&format!("TITLE=Long {n}"), "ARTIST=Slow"],
        );
    }
    env
}

fn remote(env: &Env) -> PathBuf {
    env.dir.path().join("remote")
}

fn sync(env: &Env, args: &[&str]) -> Command {
    let mut cmd = env.command("sync");
    cmd.args(["--jobs", "1", "--json", "--remote"])
        .arg(remote(env))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A `sync` seen holding the staging lock, which it holds for its conversion and then for
/// a push whose rclone calls take 3 s each (the stand-in is dropped with the run).
fn writer(env: &Env) -> (Child, tempfile::TempDir) {
    let slow = slow_rclone(3);
    let mut child = (sync(env, &[]).env("MUSYNC_RCLONE", slow.path().join("rclone")))
        .spawn()
        .unwrap();
    wait_for_lock(&env.staging, &mut child);
    (child, slow)
}

fn finished(child: Child, context: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{context}: {}", stderr(&out));
    out
}

/// `musync verify` finds every staged file made by musync, none missing or changed.
fn verify_clean(env: &Env, context: &str) {
    let out = env.command("verify").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{context}: verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

/// A sync finishes the job, after which another has nothing left to do and the remote is the
/// mirror.
fn converged(env: &Env, context: &str) {
    let out = sync(env, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{context}: {}", stderr(&out));
    let out = sync(env, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{context}: {}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["convert"]["converted"], 0, "{context}: {json}");
    assert_eq!(json["push"]["uploaded"], 0, "{context}: {json}");
    let mirror: Vec<String> = env.staged_files();
    assert_eq!(files(&remote(env)), mirror, "{context}: remote != mirror");
    assert_eq!(mirror.len(), 11, "{context}: {mirror:?}");
}

fn lock_note(staging: &Path) -> String {
    fs::read_to_string(staging.join(".musync/lock")).unwrap()
}

/// Regression: two `sync`s at once on one staging folder both converted into it; afterwards
/// every run failed with "staging already has X.mp3, which musync did not create", verify
/// called those files unknown, and a later sync planned to delete them from the server.
#[test]
fn a_second_sync_on_a_busy_staging_folder_is_refused() {
    let env = slow_library();
    let (first, _slow) = writer(&env);
    let out = sync(&env, &[]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let holder = format!("is in use by musync sync (pid {}, started ", first.id());
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("musync: refused: staging ") && err.contains(&holder),
        "{err}"
    );
    assert!(
        err.contains("--wait") && err.contains("Nothing was changed"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "a refused run printed a summary");
    assert!(
        lock_held(&env.staging),
        "the refused run took the lock away"
    );
    finished(first, "the first sync");
    verify_clean(&env, "after two syncs at once");
    converged(&env, "after two syncs at once");
}

#[test]
fn with_wait_the_second_sync_runs_after_the_first() {
    let env = slow_library();
    let (first, _slow) = writer(&env);
    let second = sync(&env, &["--wait"]).spawn().unwrap();
    let first = finished(first, "the first sync");
    let second = finished(second, "the waiting sync");
    let err = stderr(&second);
    let waiting: Vec<&str> = err.lines().filter(|l| l.contains("waiting")).collect();
    assert_eq!(waiting.len(), 1, "{err}");
    assert!(
        waiting[0].contains("in use by musync sync (pid ") && waiting[0].ends_with("to end"),
        "{err}"
    );
    // The second saw all of the first's work, and had none left to do.
    let json: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(json["convert"]["converted"], 0, "{json}");
    let json: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(json["convert"]["converted"].as_u64() >= Some(3), "{json}");
    verify_clean(&env, "after a waiting sync");
    converged(&env, "after a waiting sync");
}

#[test]
fn a_killed_writer_frees_the_lock_at_once() {
    let env = slow_library();
    // Killed mid-convert, then mid-push (the mirror is converted by then) with its rclone, a
    // shell and its `sleep`, outliving it.
    let slow = slow_rclone(10);
    for (stage, rclone) in [
        ("convert", None),
        ("push", Some(slow.path().join("rclone"))),
    ] {
        let mut cmd = sync(&env, &[]);
        if let Some(rclone) = &rclone {
            cmd.env("MUSYNC_RCLONE", rclone);
        }
        let mut child = cmd.spawn().unwrap();
        wait_for_lock(&env.staging, &mut child);
        if rclone.is_some() {
            std::thread::sleep(Duration::from_secs(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let start = Instant::now();
        let out = env.command("convert").output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "killed in {stage}: {}",
            stderr(&out)
        );
        assert!(start.elapsed() < Duration::from_secs(20), "it waited");
    }
    verify_clean(&env, "after the kills");
    converged(&env, "after the kills");
}

/// Run `cmd`, failing the test if it takes more than `limit`.
fn within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = std::thread::spawn(move || child.wait_with_output().unwrap());
    let start = Instant::now();
    while !done.is_finished() {
        if start.elapsed() > limit {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("{cmd:?} blocked for {limit:?} while a writer ran");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done.join().unwrap()
}

/// The commands that only read staging, with their arguments.
fn readers(env: &Env) -> [(&'static str, Vec<String>); 5] {
    let remote = remote(env).display().to_string();
    let dry_run = |more: &[&str]| {
        let mut args = vec!["--dry-run".to_owned()];
        args.extend(more.iter().map(|a| (*a).to_owned()));
        args
    };
    [
        ("status", vec!["--remote".to_owned(), remote.clone()]),
        ("verify", vec![]),
        ("convert", dry_run(&[])),
        ("tag", dry_run(&[])),
        ("sync", dry_run(&["--remote", &remote])),
    ]
}

#[test]
fn readers_neither_wait_for_nor_fail_beside_a_writer() {
    let env = slow_library();
    let (first, _slow) = writer(&env);
    let note_before = lock_note(&env.staging);
    let mut saw_the_writer = 0;
    for (command, args) in readers(&env) {
        let out = within(env.command(command).args(&args), Duration::from_secs(30));
        let err = stderr(&out);
        let context = format!("{command} {args:?} beside a sync");
        assert_eq!(out.status.code(), Some(0), "{context}: {err}");
        // One line says that a run is changing staging, for as long as it does.
        let note = format!("musync: note: musync sync (pid {}, started ", first.id());
        if err.contains(&note) {
            saw_the_writer += 1;
        } else {
            assert!(!lock_held(&env.staging), "{context}: no note: {err}");
        }
        assert!(!err.contains("did not create"), "{context}: {err}");
    }
    assert!(saw_the_writer > 0, "no reader ran while the writer did");
    assert_eq!(
        lock_note(&env.staging),
        note_before,
        "a reader wrote the lock"
    );
    finished(first, "the writer beside readers");
    verify_clean(&env, "after the readers");
    converged(&env, "after the readers");
}

#[test]
fn readers_make_no_lock_files() {
    let env = Env::demo();
    assert_eq!(env.convert_json(&[]).1, 0);
    let state = env.staging.join(".musync");
    for file in ["lock", "lock.busy"] {
        fs::remove_file(state.join(file)).unwrap();
    }
    for (command, args) in readers(&env) {
        let out = env.command(command).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        assert!(
            !state.join("lock").exists() && !state.join("lock.busy").exists(),
            "{command}"
        );
    }
}

#[test]
fn ctrl_c_stops_a_waiting_run_and_leaves_the_holder_alone() {
    use std::io::BufRead;
    let env = slow_library();
    let (first, _slow) = writer(&env);
    let mut second = sync(&env, &["--wait"]).spawn().unwrap();
    // Its stderr is read to the end, so that its last words have somewhere to go.
    let (tx, rx) = std::sync::mpsc::channel();
    let err = std::io::BufReader::new(second.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in err.lines() {
            tx.send(line.unwrap()).unwrap();
        }
    });
    let waiting = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(waiting.ends_with("waiting for it to end"), "{waiting}");
    let start = Instant::now();
    let sent = Command::new("kill")
        .args(["-INT", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = second.wait().unwrap();
    reader.join().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(130), "{status}: {rest:?}");
    assert!(start.elapsed() < Duration::from_secs(5), "Ctrl-C took long");
    assert!(lock_held(&env.staging), "the holder lost its lock");
    finished(first, "the holder");
    verify_clean(&env, "after a stopped wait");
}
