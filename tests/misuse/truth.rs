//! Summaries that tell the truth and commands that do what the README says: a refused push
//! claims nothing, counts add up, `--remote` without a value, a remote that is down, `init`'s
//! exit codes, `--older-than`'s units, and progress on a terminal.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util::*;

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}\n{}", text(&out.stdout), stderr(out)))
}

/// A converted demo library, a local-folder remote, and a config file naming all three.
fn configured() -> (Env, PathBuf, PathBuf) {
    let env = Env::demo();
    assert_eq!(env.convert_json(&[]).1, 0);
    let remote = env.dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let config = env.dir.path().join("config.toml");
    write_config(&config, &env, remote.to_str().unwrap());
    (env, remote, config)
}

fn write_config(config: &Path, env: &Env, remote: &str) {
    fs::write(
        config,
        format!(
            "library = {:?}\nstaging = {:?}\nremote = {remote:?}\n",
            env.library, env.staging
        ),
    )
    .unwrap();
}

/// `musync --config CONFIG ARGS`, the folders and remote from the config file.
fn with_config(config: &Path, args: &[&str]) -> Output {
    musync()
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn push(env: &Env, remote: &Path, args: &[&str]) -> Output {
    env.command("push")
        .arg("--remote")
        .arg(remote)
        .args(args)
        .output()
        .unwrap()
}

// Regression: a push refused by the delete cap printed `Uploaded …, deleted 5, backed up 5`
// (and the same in --json) as if it had done them.
#[test]
fn a_refused_push_claims_nothing_done_in_text_and_json() {
    let (env, remote, _) = configured();
    assert!(push(&env, &remote, &[]).status.success());
    fs::remove_dir_all(env.lib("Jazz")).unwrap();
    fs::remove_dir_all(env.lib("Rock")).unwrap();
    assert_eq!(env.convert_json(&["--force"]).1, 0);
    let before = tree_hashes(&remote);

    let out = push(&env, &remote, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let shown = text(&out.stdout);
    assert_eq!(
        shown,
        "Refused, nothing was changed; it would upload 0 files (0 bytes), move 0, delete 5, \
         back up 5; 3 unchanged.\n"
    );
    assert!(
        !shown.contains("deleted") && !shown.contains("backed up"),
        "{shown}"
    );
    assert!(stderr(&out).contains("refused: the push would delete 5 of the 8 files"));

    let out = push(&env, &remote, &["--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let j = json(&out);
    for key in [
        "uploaded",
        "moved",
        "deleted",
        "backed_up",
        "bytes_uploaded",
        "adopted",
    ] {
        assert_eq!(j[key], 0, "{key}: {j}");
    }
    assert_eq!(j["unchanged"], 3, "{j}");
    let refused = &j["refused"];
    assert!(
        refused["reason"].as_str().unwrap().contains("over the cap"),
        "{j}"
    );
    assert_eq!(refused["planned"]["delete"], 5, "{j}");
    assert_eq!(refused["planned"]["back_up"], 5, "{j}");
    assert_eq!(refused["planned"]["upload"], 0, "{j}");

    // sync --json says the same under its push key.
    let out = env
        .command("sync")
        .args(["--json", "--force", "--remote"])
        .arg(&remote)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(j["push"]["deleted"], 0, "{j}");
    assert_eq!(j["push"]["refused"]["planned"]["delete"], 5, "{j}");
    assert_eq!(
        tree_hashes(&remote),
        before,
        "a refused push changed the remote"
    );
}

// Regression: a resumed push printed `Uploaded 3 files; 0 unchanged` for an 8-file mirror:
// the files an interrupted push had already uploaded were counted nowhere.
#[test]
fn a_resumed_push_counts_add_up_to_the_mirror() {
    let (env, remote, _) = configured();
    assert!(push(&env, &remote, &[]).status.success());
    // As after a push killed before it recorded its upload: files on the remote, none recorded;
    // and three files it had not sent yet.
    fs::remove_dir_all(env.staging.join(".musync/push")).unwrap();
    let gone = [
        "Jazz/Miles Quartet/Blue Session/01 - Opening.mp3",
        "Jazz/Miles Quartet/Blue Session/02 - Second Take.mp3",
        "Rock/Some Band/Live Album/CD2/01 - Encore.mp3",
    ];
    for f in gone {
        fs::remove_file(remote.join(f)).unwrap();
    }
    let out = push(&env, &remote, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let j = json(&out);
    let n = |k: &str| j[k].as_u64().unwrap();
    assert_eq!(
        (n("uploaded"), n("adopted"), n("unchanged")),
        (3, 5, 0),
        "{j}"
    );
    let mirror = env.staged_files().len() as u64;
    assert_eq!(
        n("uploaded") + n("moved") + n("adopted") + n("unchanged"),
        mirror,
        "{j}"
    );
    // The text says where the other five went; the next push finds all eight unchanged.
    fs::remove_dir_all(env.staging.join(".musync/push")).unwrap();
    let out = push(&env, &remote, &[]);
    assert_eq!(
        text(&out.stdout),
        "Uploaded 0 files (0 bytes), moved 0, deleted 0, backed up 0; 0 unchanged, 8 adopted \
         (already on the remote; recorded, not sent again).\n"
    );
    let again = json(&push(&env, &remote, &["--json"]));
    assert_eq!(
        (again["unchanged"].as_u64(), again["adopted"].as_u64()),
        (Some(8), Some(0))
    );
}

// Regression: `status --remote` and `verify --remote` without a value (the README's own
// commands) exited 2.
#[test]
fn status_and_verify_take_a_bare_remote_meaning_the_configured_one() {
    let (env, remote, config) = configured();
    assert!(with_config(&config, &["push"]).status.success());
    let shown = remote.display().to_string();
    let out = with_config(&config, &["status", "--remote"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text(&out.stdout).contains(&format!("push to {shown}: would upload 0 files")),
        "{}",
        text(&out.stdout)
    );
    let out = with_config(&config, &["verify", "--remote"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text(&out.stdout).contains(&format!("Verified 8 pushed files on {shown}: 0 missing")),
        "{}",
        text(&out.stdout)
    );
    // Without a configured remote, a bare --remote says what is missing.
    let out = env.command("status").arg("--remote").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("none is set"), "{}", stderr(&out));
}

// Regression: with a remote configured, `status` and `verify` printed nothing local when the
// remote was down.
#[test]
fn a_remote_that_is_down_leaves_the_local_part_printed_and_exits_4() {
    let (env, _, config) = configured();
    write_config(&config, &env, "nosuchremote:music");
    let out = with_config(&config, &["status"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let shown = text(&out.stdout);
    assert!(shown.starts_with("convert: would convert 0,"), "{shown}");
    assert!(shown.contains("tag: would tag 0; 8 unchanged."), "{shown}");
    assert!(shown.contains("push to nosuchremote:music: not planned: the remote failed"));
    let errors: Vec<String> = stderr(&out).lines().map(str::to_owned).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("musync: push to nosuchremote:music: rclone lsjson failed"));

    let out = with_config(&config, &["verify"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        text(&out.stdout).starts_with("Verified 8 staged files: 0 missing, 0 changed, 0 unknown."),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = with_config(&config, &["verify", "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let j = json(&out);
    assert_eq!(j["staged"]["checked"], 8, "{j}");
    assert!(
        j["remote_error"].as_str().unwrap().contains("nosuchremote"),
        "{j}"
    );
}

#[test]
fn offline_leaves_the_configured_remote_out() {
    let (env, _, config) = configured();
    write_config(&config, &env, "nosuchremote:music");
    for command in ["status", "verify"] {
        let out = with_config(&config, &[command, "--offline"]);
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        assert!(!text(&out.stdout).contains("nosuchremote"), "{command}");
        assert_eq!(stderr(&out), "", "{command}");
    }
}

fn init(env: &Env, library: &Path, remote: &str) -> Output {
    musync()
        .arg("--config")
        .arg(env.dir.path().join("written.toml"))
        .args(["init", "--force", "--library"])
        .arg(library)
        .arg("--staging")
        .arg(&env.staging)
        .args(["--remote", remote])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

// Regression: `init` exited 0 with the library NOT FOUND or the remote NOT REACHABLE, and called
// a remote folder that does not exist "reachable".
#[test]
fn init_exits_with_the_problem_it_finds() {
    let env = Env::demo();
    let remote = env.dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let out = init(&env, &env.library, remote.to_str().unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(text(&out.stdout).contains(": reachable (0 folders in it)"));

    let missing = env.dir.path().join("unmounted");
    let out = init(&env, &missing, remote.to_str().unwrap());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        text(&out.stdout).contains("NOT FOUND"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        env.dir.path().join("written.toml").is_file(),
        "the file is written anyway"
    );

    let out = init(&env, &env.library, "nosuchremote:music");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(text(&out.stdout).contains("remote nosuchremote:music: NOT REACHABLE"));

    let later = remote.join("not/made/yet");
    let out = init(&env, &env.library, later.to_str().unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text(&out.stdout)
            .contains("the folder does not exist yet and will be created by the first push"),
        "{}",
        text(&out.stdout)
    );
    assert!(!later.exists(), "init made the remote folder");
}

fn prune(remote: &Path, age: &str) -> Output {
    musync()
        .args(["prune-backups", "--older-than", age, "--remote"])
        .arg(remote)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

// Regression: `--older-than 1m` meant one minute, and a huge age wrapped around: either way
// someone lost every backup.
#[test]
fn older_than_needs_a_clear_unit_and_a_sane_size() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote");
    let old = remote.join(".musync-backups/2020-01-01T00-00-00");
    let fresh = remote.join(".musync-backups/2099-01-01T00-00-00");
    for backup in [&old, &fresh] {
        fs::create_dir_all(backup).unwrap();
        fs::write(backup.join("a.mp3"), "x").unwrap();
    }
    let out = prune(&remote, "1m");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`1min` for minutes or `1mo` for months"),
        "{}",
        stderr(&out)
    );
    for huge in ["18446744073709551615d", "99999999999999999999w", "1000y"] {
        let out = prune(&remote, huge);
        assert_eq!(out.status.code(), Some(2), "{huge}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("out of range"),
            "{huge}: {}",
            stderr(&out)
        );
    }
    assert!(
        old.is_dir() && fresh.is_dir(),
        "a refused age deleted a backup"
    );
    let out = prune(&remote, "6mo");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!old.exists() && fresh.is_dir());
}

#[test]
fn convert_json_says_unchanged_and_keeps_skipped_for_now() {
    let (env, _, _) = configured();
    let (j, code) = env.convert_json(&[]);
    assert_eq!(code, 0);
    assert_eq!(
        (j["unchanged"].as_u64(), j["skipped"].as_u64()),
        (Some(8), Some(8)),
        "{j}"
    );
}

/// `musync ARGS` on a pseudo-terminal (util-linux `script`), with `envs`: what the terminal got.
fn on_a_terminal(args: &[&str], envs: &[(&str, &str)]) -> String {
    let installed = Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "util-linux `script` is needed (scripts/test installs it)"
    );
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_musync"))
        .chain(args.iter().copied())
        .map(quote)
        .collect();
    let out = isolate(&mut Command::new("script"))
        .args(["--quiet", "--return", "--command"])
        .arg(command.join(" "))
        .arg("/dev/null")
        .env("SHELL", "/bin/sh")
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "120")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "script: {}", stderr(&out));
    text(&out.stdout)
}

// Regression: during the push part of `sync` a terminal showed nothing, and convert's summary
// came only after the push.
#[test]
fn sync_on_a_terminal_shows_convert_before_the_push_and_the_push_progress() {
    let env = Env::demo();
    let remote = env.dir.path().join("remote");
    let (library, staging) = (env.library.to_str().unwrap(), env.staging.to_str().unwrap());
    let args = [
        "sync",
        "--library",
        library,
        "--staging",
        staging,
        "--remote",
        remote.to_str().unwrap(),
    ];
    // Slow enough (190 KB at 60 KB/s) for rclone to report its stats a few times.
    let screen = on_a_terminal(&args, &[("MUSYNC_RCLONE_FLAGS", "--bwlimit 60k")]);
    let shown = screen.escape_debug().to_string();
    let converted = screen.find("Converted 7, copied 1, ").expect(&shown);
    let progress = screen.find("/8 files, ETA").expect(&shown);
    let pushed = screen.find("Uploaded 8 files").expect(&shown);
    assert!(converted < progress && progress < pushed, "{shown}");
    // rclone's own figures: the mirror's 193,755 bytes as the total.
    assert!(screen.contains(" KiB/189.21 KiB, "), "{shown}");
    assert_eq!(files(&remote).len(), 8);
}

#[test]
fn no_push_progress_off_a_terminal_or_with_quiet() {
    let env = Env::demo();
    let remote = env.dir.path().join("remote");
    let out = env
        .command("sync")
        .arg("--remote")
        .arg(&remote)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("files, ETA") && !stderr(&out).contains('\r'));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert!(
        lines[0].starts_with("Converted 7, copied 1, ") && lines[1].starts_with("Uploaded 8 files")
    );
    let screen = on_a_terminal(
        &[
            "-q",
            "push",
            "--library",
            env.library.to_str().unwrap(),
            "--staging",
            env.staging.to_str().unwrap(),
            "--remote",
            remote.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!screen.contains("ETA"), "{}", screen.escape_debug());
}

// Regression: a push whose upload failed still counted the restores it had planned; only what
// rclone did may be counted, and the summary says the rest was not done.
#[test]
fn a_failed_upload_counts_only_what_was_done() {
    let (env, remote, _) = configured();
    assert!(push(&env, &remote, &[]).status.success());
    let song = "Jazz/Miles Quartet/Blue Session/01 - Opening.mp3";
    // Changed on the server: the push backs it up, then fails to upload it again.
    fs::write(remote.join(song), "changed").unwrap();
    let failing = stand_in_rclone(
        "#!/bin/sh\nif [ \"$1\" = copy ]; then echo 'ERROR : quota exceeded' >&2; exit 7; fi\n\
         exec REAL \"$@\"\n",
    );
    let run = |args: &[&str]| {
        env.command("push")
            .arg("--remote")
            .arg(&remote)
            .args(args)
            .env("MUSYNC_RCLONE", failing.path().join("rclone"))
            .output()
            .unwrap()
    };
    let out = run(&["--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let j = json(&out);
    let n = |k: &str| j[k].as_u64().unwrap();
    assert_eq!(
        (
            n("uploaded"),
            n("bytes_uploaded"),
            n("restored"),
            n("backed_up")
        ),
        (0, 0, 0, 1),
        "{j}"
    );
    fs::write(remote.join(song), "changed again").unwrap();
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert!(
        lines[0].starts_with("Uploaded 0 files (0 bytes)"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("rclone or the remote failed"),
        "{lines:?}"
    );
    assert!(stderr(&out).contains("quota exceeded"), "{}", stderr(&out));
}

// Regression: `sync` printed a file's failure twice, once for convert and once for tag, which
// plans from the same facts and meets the same failure.
#[test]
fn a_sync_tells_a_failing_file_once() {
    let env = Env::empty();
    make_flac(&env.lib("Jazz/A/01 - Song.flac"), 1.0, &["TITLE=One"]);
    fs::copy(
        env.lib("Jazz/A/01 - Song.flac"),
        env.lib("Jazz/A/01 - SONG.flac"),
    )
    .unwrap();
    let remote = env.dir.path().join("remote");
    let out = env.run("sync").arg("--remote").arg(&remote).output();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("differ only in letter case").count(),
        1,
        "{err}"
    );
    // The JSON keeps each stage's own list.
    let (j, _) = env.run("sync").arg("--remote").arg(&remote).json().parsed();
    assert_eq!(j["convert"]["failed"].as_array().unwrap().len(), 1, "{j}");
}
