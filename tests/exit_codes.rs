//! Every exit code in `--help`'s table, each triggered for real by the binary.

use std::fs;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Env, make_flac, stderr};

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// One `musync:` line for the run's error, not two.
fn one_error_line(out: &Output) {
    let err = stderr(out);
    let lines = err.lines().filter(|l| l.starts_with("musync: ")).count();
    assert_eq!(lines, 1, "{err}");
}

#[test]
fn exit_0_when_everything_is_done() {
    let env = Env::demo();
    let out = env.convert(&[]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
}

#[test]
fn exit_1_when_some_files_failed() {
    let env = Env::demo();
    fs::create_dir(env.lib("Broken")).unwrap();
    fs::write(env.lib("Broken/01 - Noise.flac"), b"fLaC not really").unwrap();
    let out = env.convert(&[]);
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("01 - Noise.flac"), "{}", stderr(&out));
    assert!(!env.staged_files().is_empty());
}

#[test]
fn exit_2_for_a_bad_argument_or_setting() {
    let env = Env::demo();
    let out = env.convert(&["--quality", "V11"]);
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    let out = env.convert(&["--genre-map", "no arrow here"]);
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    one_error_line(&out);
}

#[test]
fn exit_3_when_the_library_is_not_mounted() {
    let env = Env::empty();
    fs::remove_dir(&env.library).unwrap();
    let out = env.convert(&[]);
    assert_eq!(code(&out), Some(3), "{}", stderr(&out));
    one_error_line(&out);
    assert!(!env.staging.exists());
}

#[test]
fn exit_3_when_another_run_holds_the_lock() {
    let env = Env::demo();
    fs::create_dir_all(&env.staging).unwrap();
    let _held = musync::lock::take(&env.staging, "test", false).unwrap();
    let out = env.convert(&[]);
    assert_eq!(code(&out), Some(3), "{}", stderr(&out));
    one_error_line(&out);
    assert!(env.staged_files().is_empty());
}

#[test]
fn exit_4_when_the_remote_fails() {
    let env = Env::demo();
    assert_eq!(code(&env.convert(&[])), Some(0));
    let out = env
        .command("push")
        .args(["--remote", "musync-no-such-remote:music"])
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(4), "{}", stderr(&out));
    one_error_line(&out);
}

// Regression: an I/O failure (staging not writable) exited 2, "bad arguments".
#[test]
fn exit_5_when_staging_cannot_be_written() {
    let env = Env::demo();
    let out = crate::util::musync()
        .arg("convert")
        .arg("--library")
        .arg(&env.library)
        .args(["--staging", "/proc/nope"])
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(5), "{}", stderr(&out));
    one_error_line(&out);
}

fn spawn_convert(env: &Env) -> Child {
    env.command("convert")
        .args(["--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn exit_130_after_ctrl_c() {
    let env = Env::empty();
    for i in 0..6 {
        make_flac(&env.lib(&format!("A/{i:02}.flac")), 4.0, &[]);
    }
    let child = spawn_convert(&env);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !env.staged_files().iter().any(|f| f.ends_with(".mp3")) {
        assert!(Instant::now() < deadline, "no file was ever finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = std::process::Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), Some(130), "{}", stderr(&out));
}

// Regression: musync's own refusal inside the rclone wrapper (a staged file that is a symlink)
// exited 4, "rclone or the remote failed".
#[test]
fn exit_3_when_a_staged_file_is_a_symlink() {
    let env = Env::demo();
    assert_eq!(code(&env.convert(&[])), Some(0));
    let remote = env.dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let staged = env.staged_files();
    let mp3 = staged.iter().find(|f| f.ends_with(".mp3")).unwrap();
    let outside = env.dir.path().join("outside.mp3");
    fs::rename(env.staged(mp3), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, env.staged(mp3)).unwrap();
    let out = env
        .command("push")
        .arg("--remote")
        .arg(&remote)
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(3), "{}", stderr(&out));
    one_error_line(&out);
    assert!(!remote.join(mp3).exists());
}
