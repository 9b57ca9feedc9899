//! Crash consistency: `musync sync` killed with SIGKILL at random moments of convert, tag and
//! push, the library edited between rounds. After each kill, a rerun must finish the job: every
//! staged and remote MP3 whole and of the right length, the remote equal to the mirror, the
//! manifest equal to the disk, the library untouched, no temporary file left anywhere.
//! The seed is printed first; replay a failure with `REPLAY_CRASH_SEED=<seed>`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::remotes::{Kind, Remote};
use crate::util::*;

/// `musync sync` as a user would run it, into `remote`.
fn sync_command(env: &Env, remote: &Remote, quality: &str, slow: bool) -> Command {
    let mut cmd = env.command("sync");
    cmd.args(["--json", "--quality", quality, "--max-delete", "100%"])
        .args(["--remote", &remote.spec])
        .envs(remote.envs());
    if slow {
        // A narrow pipe widens the push's window for the kill.
        cmd.env("MUSYNC_RCLONE_FLAGS", "--bwlimit 300k");
    }
    cmd
}

fn sync_ok(env: &Env, remote: &Remote, quality: &str, slow: bool, context: &str) -> Value {
    let out = sync_command(env, remote, quality, slow).output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "{context}: sync failed: {}\n{json}",
        stderr(&out)
    );
    for stage in ["convert", "tag", "push"] {
        assert_eq!(
            json[stage]["failed"],
            serde_json::json!([]),
            "{context}: {json}"
        );
    }
    json
}

/// The rclone operation a running musync is waiting for, if any.
fn rclone_op(musync: u32) -> Option<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-P", &musync.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().next()?;
    let op = line.split_whitespace().nth(2).unwrap_or("?");
    Some(
        if op == "<defunct>" {
            "between rclone calls"
        } else {
            op
        }
        .to_owned(),
    )
}

/// An rclone that outlived musync would race the next push, which finds the lock's process
/// gone: its late writes truncated files the next push had just uploaded. The kernel kills it
/// with musync, so only a moment is allowed.
fn assert_group_ends(pgid: u32, context: &str) {
    let deadline = Instant::now() + Duration::from_millis(250);
    while group_alive(pgid) {
        assert!(
            Instant::now() < deadline,
            "{context}: rclone runs on after musync was killed"
        );
        sleep(Duration::from_millis(10));
    }
}

/// Whether a live process (not a zombie awaiting its reaper) is left in the process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

#[test]
fn sync_survives_kill_9_anywhere() {
    let (mut rng, seed) = Rng::from_env("REPLAY_CRASH_SEED");
    eprintln!("crash: seed {seed} (replay with REPLAY_CRASH_SEED={seed})");
    let started = Instant::now();
    let env = Env::empty();
    let mut library = Library::generate(&env, &mut rng);
    let remote = Remote::start(Kind::Local);
    let mut lengths = Lengths::default();

    // Calibration: a first sync, then a full re-encode (a new quality) through a narrow pipe.
    let timed = |quality, slow| {
        let t = Instant::now();
        sync_ok(
            &env,
            &remote,
            quality,
            slow,
            &format!("seed {seed}: calibration"),
        );
        t.elapsed()
    };
    let full = timed("V2", false);
    let full_slow = timed("V4", true);
    lengths.check(&env, "calibration");
    assert_settled(&env, &remote, "calibration");
    eprintln!("crash: a full sync takes {full:.2?}, {full_slow:.2?} with --bwlimit");

    let mut quality = "V4";
    let (mut rounds, mut killed, mut missed, mut group_only) = (0, 0, 0, 0);
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    while killed < 24 && rounds < 80 {
        rounds += 1;
        let edits: Vec<String> = (0..rng.below(3))
            .map(|_| library.edit(&env, &mut rng))
            .collect();
        let before = quality;
        if rng.chance(0.4) {
            quality = *rng.pick(&["V2", "V4", "V6"]);
        }
        let slow = rng.chance(0.3);
        let window = if slow { full_slow } else { full };
        // Another quality re-encodes and re-uploads everything, as the calibration run did; a
        // few edits take a fraction of that (the start-up, scan and listing stay).
        let work = if quality == before { 0.4 } else { 1.0 };
        let delay = window.mul_f64(work * rng.unit());
        let target = rng.unit();
        let mut context = format!(
            "seed {seed} round {rounds}: edits {edits:?}, {quality}{}, kill after {delay:.2?}",
            if slow { " slow" } else { "" },
        );
        let library_before = tree_hashes(&env.library);

        let mut child = sync_command(&env, &remote, quality, slow)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        sleep(delay);
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "{context}: sync failed on its own: {status}"
            );
            missed += 1;
        } else {
            let phase = rclone_op(pid).unwrap_or_else(|| "convert/tag".into());
            // Killing musync alone matters most while it waits for rclone.
            let whole_group = target < if phase == "convert/tag" { 0.8 } else { 0.5 };
            context.push_str(if whole_group {
                " (the group)"
            } else {
                " (musync alone)"
            });
            if whole_group {
                // What closing the terminal does: musync and its rclone die together.
                run(Command::new("kill").args(["-s", "KILL", "--", &format!("-{pid}")]));
            } else {
                // What the OOM killer or `kill -9 <pid>` does: only musync.
                child.kill().unwrap();
                group_only += 1;
            }
            let status = child.wait().unwrap();
            if status.signal() == Some(9) {
                killed += 1;
                *phases.entry(phase).or_default() += 1;
            } else {
                assert!(
                    status.success(),
                    "{context}: sync failed on its own: {status}"
                );
                missed += 1;
            }
            assert_group_ends(pid, &context);
        }
        assert_eq!(
            tree_hashes(&env.library),
            library_before,
            "{context}: the killed run changed the library"
        );

        // Often the user changes the library before the next run: it must cope with half-done
        // work and new changes at once (an album renamed under an unfinished upload, a file
        // retagged after its upload landed unrecorded).
        let later: Vec<String> = match rng.below(6) {
            0 => vec![library.retag_all(&env, &mut rng)],
            1 | 2 => (0..=rng.below(2))
                .map(|_| library.edit(&env, &mut rng))
                .collect(),
            _ => vec![],
        };
        let context = format!("{context}, then {later:?}");
        let library_before = tree_hashes(&env.library);
        sync_ok(&env, &remote, quality, false, &context);
        assert_eq!(
            tree_hashes(&env.library),
            library_before,
            "{context}: the library changed"
        );
        lengths.check(&env, &context);
        assert_settled(&env, &remote, &context);
    }
    eprintln!(
        "crash: seed {seed}: {killed} kills survived ({group_only} of musync alone; by phase \
         {phases:?}), {missed} runs finished before their kill, {rounds} rounds in {:.1?}",
        started.elapsed()
    );
    assert!(killed >= 20, "seed {seed}: only {killed} kills landed");
}

/// Regression: `kill -9` of musync alone (the OOM killer, a service manager) left its rclone
/// uploading, and the next push, taking over the stale lock, uploaded beside it: the orphan's
/// late writes left empty files on the remote where the mirror had music.
#[test]
fn rclone_dies_with_musync() {
    let env = Env::empty();
    for i in 0..3 {
        make_flac(&env.lib(&format!("Album/{i:02}.flac")), 8.0, &[]);
    }
    assert_eq!(env.convert_json(&[]).1, 0);
    let remote = Remote::start(Kind::Local);
    let mut child = env
        .command("push")
        .args(["--remote", &remote.spec])
        .envs(remote.envs())
        .env("MUSYNC_RCLONE_FLAGS", "--bwlimit 20k")
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rclone_op(child.id()).as_deref() != Some("copy") {
        assert!(
            Instant::now() < deadline,
            "the push never started its upload"
        );
        sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_group_ends(child.id(), "killed during the upload");
}
