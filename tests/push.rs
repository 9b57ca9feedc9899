//! `musync push` and `musync sync` against real remotes on loopback, with the real rclone.

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::remotes::{self, FAIL_FAST, Kind, Remote};
use crate::util::*;

fn push(env: &Env, remote: &Remote, args: &[&str]) -> (Value, Output) {
    env.run("push")
        .json()
        .remote(remote)
        .args(args)
        .env("MUSYNC_RCLONE_FLAGS", FAIL_FAST)
        .parsed()
}

fn pushed(env: &Env, remote: &Remote, args: &[&str]) -> Value {
    let (json, out) = push(env, remote, args);
    assert!(
        out.status.success(),
        "push {args:?} failed: {}\n{json}",
        stderr(&out)
    );
    json
}

fn counts(json: &Value) -> [u64; 4] {
    ["uploaded", "moved", "deleted", "backed_up"].map(|k| json[k].as_u64().unwrap_or(u64::MAX))
}

fn converted() -> Env {
    let env = Env::demo();
    assert_eq!(env.convert_json(&[]).1, 0);
    env
}

/// The life of a mirror on each kind of remote: first push, no-op, album rename, dry run, cap.
#[test]
fn push_cycle_on_every_remote() {
    for kind in remotes::all() {
        let remote = Remote::start(kind);
        let env = converted();
        let first = pushed(&env, &remote, &[]);
        assert_eq!(counts(&first), [8, 0, 0, 0], "{kind:?}: {first}");
        assert_eq!(remote_tree(&remote), mirror_tree(&env), "{kind:?}");

        let noop = pushed(&env, &remote, &[]);
        assert_eq!(
            (counts(&noop), noop["unchanged"].as_u64()),
            ([0, 0, 0, 0], Some(8)),
            "{kind:?}: {noop}"
        );

        fs::rename(
            env.lib("Jazz/Miles Quartet/Blue Session"),
            env.lib("Jazz/Miles Quartet/Blue Session (Live)"),
        )
        .unwrap();
        assert_eq!(env.convert_json(&[]).0["renamed"], 3);
        let renamed = pushed(&env, &remote, &[]);
        assert_eq!(counts(&renamed), [0, 3, 0, 0], "{kind:?}: {renamed}");
        assert_eq!(remote_tree(&remote), mirror_tree(&env), "{kind:?}");

        // Dry run, then the real run: the same plan.
        fs::remove_file(env.lib("Classical/Orchestra/Symphony/01 - Mono Movement.flac")).unwrap();
        run(Command::new("metaflac")
            .arg("--set-tag=COMMENT=x")
            .arg(env.lib("Rock/Some Band/Live Album/CD1/01 - Intro.flac")));
        env.convert_json(&[]);
        let before = remote_tree(&remote);
        let (dry, out) = push(&env, &remote, &["--dry-run"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            remote_tree(&remote),
            before,
            "{kind:?}: dry run changed the remote"
        );
        let real = pushed(&env, &remote, &[]);
        for key in [
            "uploaded",
            "moved",
            "deleted",
            "backed_up",
            "bytes_uploaded",
        ] {
            assert_eq!(dry[key], real[key], "{kind:?}: {key}");
        }
        assert_eq!(counts(&real), [1, 0, 1, 2], "{kind:?}: {real}");
        assert_eq!(remote_tree(&remote), mirror_tree(&env), "{kind:?}");
        let backups = files(&remote.dir)
            .into_iter()
            .filter(|p| p.starts_with(".musync-backups/"))
            .count();
        assert_eq!(
            backups, 2,
            "{kind:?}: the old Intro and the deleted Mono Movement are kept"
        );

        // Most of the library gone: convert needs --force, push refuses over its cap.
        fs::remove_dir_all(env.lib("Jazz")).unwrap();
        fs::remove_dir_all(env.lib("Rock")).unwrap();
        assert_eq!(env.convert_json(&["--force"]).1, 0);
        let before = remote_tree(&remote);
        let (refused, out) = push(&env, &remote, &[]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{kind:?}: {refused} {}",
            stderr(&out)
        );
        assert_eq!(
            remote_tree(&remote),
            before,
            "{kind:?}: a refused push changed the remote"
        );
        assert_eq!(
            counts(&pushed(&env, &remote, &["--max-delete", "100%"])),
            [0, 0, 5, 5]
        );
    }
}

/// The origin of musync: library MP3s next to converted ones, many pushes with edits between
/// them; a converted MP3 must never disappear from the server while its source exists.
#[test]
fn derived_mp3s_survive_every_push_cycle() {
    let remote = Remote::start(Kind::Local);
    let env = converted();
    let album = "Jazz/Miles Quartet/Blue Session";
    let derived = |env: &Env| -> Vec<String> {
        files(&env.library)
            .into_iter()
            .filter(|f| f.ends_with(".flac"))
            .map(|f| f.replace(".flac", ".mp3"))
            .collect()
    };
    for cycle in 0..6 {
        match cycle {
            1 => {
                run(Command::new("lame")
                    .args(["--quiet", "-V5"])
                    .arg(env.lib(&format!("{album}/03 - Bonus.mp3")))
                    .arg(env.lib(&format!("{album}/04 - Extra.mp3"))));
            }
            2 => fs::remove_file(env.lib(&format!("{album}/03 - Bonus.mp3"))).unwrap(),
            3 => {
                run(Command::new("metaflac")
                    .arg("--set-tag=COMMENT=c3")
                    .arg(env.lib(&format!("{album}/01 - Opening.flac"))));
            }
            4 => fs::rename(env.lib(album), env.lib("Jazz/Miles Quartet/Blue")).unwrap(),
            5 => make_flac(
                &env.lib("Jazz/Miles Quartet/Blue/05 - New.flac"),
                1.0,
                &["TITLE=New"],
            ),
            _ => {}
        }
        assert_eq!(env.convert_json(&[]).1, 0);
        pushed(&env, &remote, &[]);
        let on_server = files(&remote.dir);
        for d in derived(&env) {
            assert!(
                on_server.contains(&d),
                "cycle {cycle}: {d} is missing from the server"
            );
        }
        assert_eq!(remote_tree(&remote), mirror_tree(&env), "cycle {cycle}");
    }
}

#[test]
fn foreign_files_and_drift() {
    let remote = Remote::start(Kind::Local);
    let env = converted();
    pushed(&env, &remote, &[]);
    fs::write(remote.dir.join("Jazz/playlist.m3u"), "mine").unwrap();
    fs::remove_file(
        remote
            .dir
            .join("Jazz/Miles Quartet/Blue Session/01 - Opening.mp3"),
    )
    .unwrap();
    fs::write(
        remote
            .dir
            .join("Rock/Some Band/Live Album/CD2/01 - Encore.mp3"),
        "damaged",
    )
    .unwrap();
    let json = pushed(&env, &remote, &[]);
    assert_eq!(
        (json["restored"].as_u64(), json["uploaded"].as_u64()),
        (Some(2), Some(2)),
        "{json}"
    );
    assert_eq!(
        fs::read(remote.dir.join("Jazz/playlist.m3u")).unwrap(),
        b"mine"
    );
    assert_eq!(remote_tree(&remote).len(), 9);

    // A staged file that is no longer what musync made is not pushed, and its remote copy stays;
    // one whose remote copy is current needs no upload, so it is no failure.
    let (intro, encore) = (
        "Rock/Some Band/Live Album/CD1/01 - Intro.mp3",
        "Rock/Some Band/Live Album/CD2/01 - Encore.mp3",
    );
    fs::write(env.staged(intro), "not what musync made").unwrap();
    fs::write(remote.dir.join(intro), "changed on the server").unwrap();
    fs::remove_file(env.staged(encore)).unwrap();
    let (json, out) = push(&env, &remote, &[]);
    assert_eq!(out.status.code(), Some(1), "{json} {}", stderr(&out));
    assert_eq!(json["failed"][0]["path"], intro, "{json}");
    assert_eq!(json["failed"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(
        fs::read(remote.dir.join(intro)).unwrap(),
        b"changed on the server"
    );
    assert!(remote.dir.join(encore).is_file());
}

/// A server that is down fails the push with a one-line rclone error and exit 4; once it is
/// back, the next push does everything.
#[test]
fn server_down_then_back() {
    for kind in [Kind::Sftp, Kind::Webdav, Kind::Smb] {
        let mut remote = Remote::start(kind);
        let env = converted();
        remote.stop();
        let (json, out) = push(&env, &remote, &[]);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{kind:?}: {json} {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(
            err.lines()
                .any(|l| l.starts_with("musync: ") && l.contains("rclone")),
            "{kind:?}: {err}"
        );
        remote.restart();
        assert_eq!(
            counts(&pushed(&env, &remote, &[])),
            [8, 0, 0, 0],
            "{kind:?}"
        );
        assert_eq!(remote_tree(&remote), mirror_tree(&env), "{kind:?}");
    }
}

/// kill -9 in the middle of a push, then push again: the remote ends equal to the mirror.
#[test]
fn killed_push_is_finished_by_the_next() {
    let env = Env::empty();
    for i in 0..8 {
        make_flac(&env.lib(&format!("Album/{i:02}.flac")), 30.0, &[]);
    }
    assert_eq!(env.convert_json(&[]).1, 0);
    for kind in remotes::all() {
        let remote = Remote::start(kind);
        // Its own process group, so the kill takes rclone down with musync, as a closed terminal would.
        let mut child = env
            .command("push")
            .args(["--remote", &remote.spec])
            .envs(remote.envs())
            .env("MUSYNC_RCLONE_FLAGS", "--bwlimit 200k")
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while files(&remote.dir).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{kind:?}: the push never started uploading"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        run(Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", child.id())]));
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "{kind:?}: the push ended before the kill: {status}"
        );
        assert!(
            files(&remote.dir).len() < 8,
            "{kind:?}: the push had uploaded everything before the kill"
        );
        let json = pushed(&env, &remote, &[]);
        assert_eq!(json["failed"], json!([]), "{kind:?}");
        assert_eq!(remote_tree(&remote), mirror_tree(&env), "{kind:?}");
    }
}

#[test]
fn sync_runs_every_stage_into_a_local_folder() {
    let remote = Remote::start(Kind::Local);
    let env = Env::demo();
    let out = env
        .command("sync")
        .args(["--json", "--genre-from", "parent", "--remote", &remote.spec])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["convert"]["converted"], 7, "{json}");
    assert_eq!(json["convert"]["copied"], 1, "{json}");
    assert_eq!(json["tag"]["tagged"], 0, "{json}");
    assert_eq!(json["push"]["uploaded"], 8, "{json}");
    assert_eq!(remote_tree(&remote), mirror_tree(&env));
    assert!(
        !remote.dir.join(".musync").exists(),
        "musync's bookkeeping was uploaded"
    );

    // On a current mirror, a dry run plans the push too: here, putting back a deleted file.
    fs::remove_file(remote.dir.join(OPENING)).unwrap();
    let sync = |args: &[&str]| -> Value {
        let out = env
            .command("sync")
            .args(["--json", "--remote", &remote.spec])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let dry = sync(&["--dry-run"]);
    assert_eq!(
        (
            dry["push"]["uploaded"].as_u64(),
            dry["push"]["dry_run"].as_bool()
        ),
        (Some(1), Some(true)),
        "{dry}"
    );
    assert!(!remote.dir.join(OPENING).exists());
    assert_eq!(sync(&[])["push"]["uploaded"], 1);
    assert_eq!(remote_tree(&remote), mirror_tree(&env));
}

const OPENING: &str = "Jazz/Miles Quartet/Blue Session/01 - Opening.mp3";

#[test]
fn missing_rclone_is_a_clear_error() {
    let env = converted();
    let out = env
        .command("push")
        .args(["--remote", "/tmp/nowhere"])
        .env("MUSYNC_RCLONE", "/nonexistent/rclone")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rclone is not installed"),
        "{}",
        stderr(&out)
    );
}

/// The rclone calls a push makes: one listing when nothing changed, and a fixed number for a
/// renamed genre folder, however many albums it holds.
#[test]
fn rclone_calls_stay_constant() {
    let remote = Remote::start(Kind::Local);
    let env = Env::empty();
    for album in 0..6 {
        for track in 0..2 {
            make_flac(
                &env.lib(&format!("Jazz/Artist {album}/Album/{track:02}.flac")),
                0.2,
                &[],
            );
        }
    }
    // Genres from the album folder, so renaming the top folder changes no tag.
    assert_eq!(env.convert_json(&["--genre-from", "parent"]).1, 0);
    let calls = |args: &[&str]| -> Vec<String> {
        let out = env
            .command("push")
            .args(["-vv", "--remote", &remote.spec])
            .args(args)
            .envs(remote.envs())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
            .lines()
            .filter_map(|l| {
                l.split_once("running ")
                    .map(|(_, cmd)| cmd.split(' ').nth(1).unwrap_or("").to_owned())
            })
            .collect()
    };
    assert_eq!(calls(&[]), ["version", "lsjson", "copy", "move", "rmdirs"]);
    assert_eq!(
        calls(&[]),
        ["lsjson"],
        "a no-op push lists the remote and nothing else"
    );
    fs::rename(env.lib("Jazz"), env.lib("Jazz & Blues")).unwrap();
    assert_eq!(env.convert_json(&[]).0["renamed"], 12);
    assert_eq!(
        calls(&[]),
        ["lsjson", "move"],
        "12 files in 6 albums moved in one call"
    );
    assert_eq!(remote_tree(&remote), mirror_tree(&env));
}

#[test]
fn prune_backups_deletes_only_old_backup_folders() {
    let remote = Remote::start(Kind::Local);
    let old = remote.dir.join(".musync-backups/2020-01-01T00-00-00/Jazz");
    let recent = remote.dir.join(".musync-backups/2099-01-01T00-00-00");
    let other = remote.dir.join(".musync-backups/notes");
    for dir in [&old, &recent, &other] {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("a.mp3"), "x").unwrap();
    }
    let prune = |args: &[&str]| {
        let out = crate::util::musync()
            .args([
                "prune-backups",
                "--remote",
                &remote.spec,
                "--older-than",
                "30d",
            ])
            .args(args)
            .envs(remote.envs())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        prune(&["--dry-run"]),
        "would delete .musync-backups/2020-01-01T00-00-00\n"
    );
    assert!(old.exists());
    assert_eq!(prune(&[]), "deleted .musync-backups/2020-01-01T00-00-00\n");
    assert!(!old.exists() && recent.join("a.mp3").exists() && other.join("a.mp3").exists());
}

/// A second push while one runs is refused, naming the first (exit code 3), and `--break-lock`
/// (kept for old scripts) does not change that; the lock is free the moment its holder dies.
/// Regression: the lock was a pid file, taken over whenever `/proc` did not show the pid (pids
/// are reused, and there is no `/proc` everywhere), and `--break-lock` took it from a live push.
#[test]
fn a_push_lock_keeps_pushes_apart() {
    let remote = Remote::start(Kind::Local);
    let env = converted();
    let slow = slow_rclone(5);
    let mut first = env
        .command("push")
        .args(["--remote", &remote.spec])
        .envs(remote.envs())
        .env("MUSYNC_RCLONE", slow.path().join("rclone"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lock(&env.staging, &mut first);
    for args in [&[][..], &["--break-lock"]] {
        let (json, out) = push(&env, &remote, args);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {json} {}",
            stderr(&out)
        );
        let holder = format!("in use by musync push (pid {}, started ", first.id());
        assert!(stderr(&out).contains(&holder), "{args:?}: {}", stderr(&out));
    }
    assert!(remote.ls().is_empty(), "a refused push changed the remote");
    first.kill().unwrap();
    first.wait().unwrap();
    pushed(&env, &remote, &[]);
    assert_eq!(remote_tree(&remote), mirror_tree(&env));
}
