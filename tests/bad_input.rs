//! Bad input: each broken or odd file gets one clear line naming it, the rest is converted,
//! no partial output is left, and the exit code says something failed.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn broken_files_fail_one_by_one_and_the_rest_converts() {
    let env = Env::empty();
    let good = fixtures().join("Jazz/Miles Quartet/Blue Session/01 - Opening.flac");
    let bytes = fs::read(&good).unwrap();
    fs::copy(&good, env.lib("good.flac")).unwrap();
    fs::write(env.lib("zero.flac"), b"").unwrap();
    fs::write(env.lib("truncated.flac"), &bytes[..bytes.len() / 2]).unwrap();
    fs::write(env.lib("text.flac"), b"this is not a FLAC file\n").unwrap();
    let mut flipped = bytes.clone();
    let at = flipped.len() * 3 / 4;
    flipped[at..at + 64].iter_mut().for_each(|b| *b ^= 0x5a);
    fs::write(env.lib("corrupt.flac"), flipped).unwrap();
    run(Command::new("mkfifo").arg(env.lib("fifo.flac")));
    symlink(".", env.lib("loop")).unwrap();
    let outside = env.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::copy(&good, outside.join("o.flac")).unwrap();
    symlink(&outside, env.lib("outside")).unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"bad \xff name.flac");
    fs::copy(&good, env.library.join(odd)).unwrap();
    fs::write(env.lib("garbage.mp3"), b"not an MP3 either\n".repeat(100)).unwrap();
    let long = format!("{}.flac", "x".repeat(250));
    fs::copy(&good, env.lib(&long)).unwrap();

    let mut child = env
        .command("convert")
        .arg("--json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "musync hung");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = json["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for name in [
        "zero.flac",
        "truncated.flac",
        "text.flac",
        "corrupt.flac",
        "fifo.flac",
        "loop",
        "outside",
        "bad \u{fffd} name.flac",
        "garbage.mp3",
    ] {
        assert!(failed.contains(&name), "{name} not reported: {failed:?}");
        let lines = err
            .lines()
            .filter(|l| l.starts_with(&format!("musync: {name}: ")))
            .count();
        assert_eq!(
            lines, 1,
            "{name} should get exactly one line on stderr:\n{err}"
        );
    }
    assert_eq!(failed.len(), 9, "{failed:?}");
    assert_eq!(json["converted"].as_u64(), Some(2), "{json}");
    assert_eq!(
        env.staged_files(),
        ["good.mp3".to_string(), format!("{}.mp3", "x".repeat(250))]
    );
}
