//! What the server's side of the mirror looks like after the library changes under it: folders
//! that musync's deletions and moves emptied are removed; a folder that holds a file musync did
//! not put there stays, with that file.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

use crate::remotes::{Kind, Remote};
use crate::util::*;

/// Push staging to the local folder `remote`; exit 0 expected.
fn push(env: &Env, remote: &Path) {
    let out = run(env
        .command("push")
        .arg("--remote")
        .arg(remote)
        .env("MUSYNC_RCLONE_FLAGS", "--retries 1 --low-level-retries 1"));
    assert_eq!(out.status.code(), Some(0), "push: {}", stderr(&out));
}

/// The demo library pushed to a local folder, a file of the user's put in the Classical album
/// there, then the Rock and Classical genres deleted from the library and converted away.
fn albums_deleted_after_a_push() -> (Env, std::path::PathBuf) {
    let env = Env::demo();
    let remote = env.dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "convert: {}", stderr(&out));
    push(&env, &remote);
    assert!(remote.join("Rock/Some Band/Live Album/CD2").is_dir());
    fs::write(
        remote.join("Classical/Orchestra/Symphony/booklet.pdf"),
        b"user's",
    )
    .unwrap();
    fs::remove_dir_all(env.lib("Rock")).unwrap();
    fs::remove_dir_all(env.lib("Classical")).unwrap();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "convert: {}", stderr(&out));
    (env, remote)
}

// Regression: deleted albums left empty album, artist and genre folders on the remote.
#[test]
fn folders_emptied_by_deletions_are_removed_but_one_with_a_foreign_file_stays() {
    let (env, remote) = albums_deleted_after_a_push();
    push(&env, &remote);

    assert!(!remote.join("Rock").exists(), "{:?}", files(&remote));
    let kept = remote.join("Classical/Orchestra/Symphony");
    assert_eq!(fs::read(kept.join("booklet.pdf")).unwrap(), b"user's");
    assert!(!files(&kept).iter().any(|f| f.ends_with(".mp3")));
    assert!(remote.join(".musync-backups").is_dir(), "the backups stay");
    assert!(remote.join("Jazz/Miles Quartet/Blue Session").is_dir());
}

/// Every folder under `root`, as paths relative to it.
fn dirs(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy();
                found.push(rel.replace('\\', "/"));
                todo.push(path);
            }
        }
    }
    found.sort();
    found
}

// Regression: `push --dry-run` did not show the emptied folders the real run then removed.
#[test]
fn dry_run_lists_the_emptied_folders_the_real_run_removes() {
    let (env, remote) = albums_deleted_after_a_push();

    let out = run(env
        .command("push")
        .arg("--dry-run")
        .arg("--remote")
        .arg(&remote));
    assert_eq!(
        out.status.code(),
        Some(0),
        "push --dry-run: {}",
        stderr(&out)
    );
    let planned: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("rmdir  "))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        planned,
        ["Rock"],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let before = dirs(&remote);
    push(&env, &remote);
    let after = dirs(&remote);
    let gone = |d: &String| !after.contains(d);
    // Named by the topmost removed folder, as the plan names them.
    let removed: Vec<&String> = (before.iter().filter(|d| gone(d)))
        .filter(|d| {
            !before
                .iter()
                .any(|p| d.starts_with(&format!("{p}/")) && gone(p))
        })
        .collect();
    assert_eq!(removed, planned.iter().collect::<Vec<_>>());
    assert!(
        remote
            .join("Classical/Orchestra/Symphony/booklet.pdf")
            .is_file()
    );
}

/// Every file under `dir` whose path contains `part`, with its bytes.
fn found(dir: &Path, part: &str) -> Vec<(String, Vec<u8>)> {
    (files(dir).into_iter())
        .filter(|f| f.contains(part))
        .map(|f| {
            let bytes = fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

// Regression: a track overwritten in place on the server at its old size was never noticed
// (drift was by size only).
#[test]
fn a_same_size_file_damaged_on_the_server_is_backed_up_and_restored() {
    let env = Env::demo();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "convert: {}", stderr(&out));
    let track = files(&env.staging)
        .into_iter()
        .find(|f| f.ends_with(".mp3"))
        .unwrap();
    let name = track.rsplit('/').next().unwrap().to_owned();
    let good = fs::read(env.staged(&track)).unwrap();
    for rclone in crate::remotes::rclones() {
        for kind in [Kind::Local, Kind::Sftp, Kind::Webdav] {
            let what = format!("{kind:?} with {}", rclone.display());
            let remote = Remote::start(kind);
            let push = || {
                let (json, out) = env
                    .run("push")
                    .json()
                    .remote(&remote)
                    .env("MUSYNC_RCLONE", &rclone)
                    .parsed_strict();
                assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
                json
            };
            push();
            // The push after an upload records the times the server lists.
            assert_eq!(push()["restored"], 0, "{what}");
            let on_server = remote.dir.join(&track);
            let mut bad = good.clone();
            let middle = bad.len() / 2;
            bad[middle..middle + 64].fill(0x55);
            // Through the server, which may cache what it lists (rclone serve does), at another
            // time than the upload's whatever the clock's resolution there. A WebDAV server sets
            // its own time (rclone cannot set one there): a second later than the upload's.
            std::thread::sleep(Duration::from_millis(1100));
            let damaged = env.dir.path().join("damaged.mp3");
            fs::write(&damaged, &bad).unwrap();
            let file = fs::File::options().write(true).open(&damaged).unwrap();
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
                .unwrap();
            drop(file);
            let damaged = damaged.display().to_string();
            let out = run(remote.rclone().args([
                "copyto",
                "--ignore-times",
                &damaged,
                &remote.path(&track),
            ]));
            assert!(out.status.success(), "{what}: {}", stderr(&out));

            let json = push();
            assert_eq!(json["restored"], 1, "{what}: {json}");
            assert_eq!(fs::read(&on_server).unwrap(), good, "{what}: not restored");
            let backed_up = found(&remote.dir.join(".musync-backups"), &name);
            assert_eq!(backed_up.len(), 1, "{what}: {backed_up:?}");
            assert_eq!(backed_up[0].1, bad, "{what}: the damaged copy is kept");
            // The restored copy's time is recorded in turn: nothing more to do.
            let json = push();
            assert_eq!(
                (json["restored"].clone(), json["uploaded"].clone()),
                (0.into(), 0.into()),
                "{what}: {json}"
            );
        }
    }
}

/// Runs `musync verify --remote --checksum` (or without `--checksum`) with `rclone`.
fn verify(env: &Env, remote: &Remote, rclone: &Path, checksum: bool) -> Output {
    let run = env
        .run("verify")
        .remote(remote)
        .env("MUSYNC_RCLONE", rclone);
    if checksum {
        run.arg("--checksum").output()
    } else {
        run.output()
    }
}

/// `bad` written over `track` on `remote` through its server, at another time than the upload's.
fn overwrite(env: &Env, remote: &Remote, track: &str, bad: &[u8]) {
    let damaged = env.dir.path().join("damaged.mp3");
    fs::write(&damaged, bad).unwrap();
    let file = fs::File::options().write(true).open(&damaged).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .unwrap();
    drop(file);
    let damaged = damaged.display().to_string();
    let out =
        run(remote
            .rclone()
            .args(["copyto", "--ignore-times", &damaged, &remote.path(track)]));
    assert!(out.status.success(), "{}", stderr(&out));
}

// Regression: `verify --remote` compared sizes only, so a track overwritten on the server at its
// old size passed.
#[test]
fn verify_checksum_catches_a_same_size_change_on_the_server() {
    let env = Env::demo();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "convert: {}", stderr(&out));
    let track = files(&env.staging)
        .into_iter()
        .find(|f| f.ends_with(".mp3"))
        .unwrap();
    let mut bad = fs::read(env.staged(&track)).unwrap();
    let middle = bad.len() / 2;
    bad[middle..middle + 64].fill(0x55);
    for rclone in crate::remotes::rclones() {
        for kind in [Kind::Local, Kind::Sftp] {
            let what = format!("{kind:?} with {}", rclone.display());
            let remote = Remote::start(kind);
            let out = env
                .run("push")
                .remote(&remote)
                .env("MUSYNC_RCLONE", &rclone)
                .output();
            assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
            let out = verify(&env, &remote, &rclone, true);
            assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains(": 0 differ."), "{what}: {stdout}");
            assert!(
                !stderr(&out).contains("no hashes"),
                "{what}: {}",
                stderr(&out)
            );

            overwrite(&env, &remote, &track, &bad);
            // Sizes alone do not tell.
            let out = verify(&env, &remote, &rclone, false);
            assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
            let out = verify(&env, &remote, &rclone, true);
            assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
            let lines: Vec<String> = (stderr(&out).lines())
                .filter(|l| l.contains("content differs on the remote"))
                .map(str::to_owned)
                .collect();
            assert_eq!(lines.len(), 1, "{what}: {}", stderr(&out));
            assert!(lines[0].contains(&track), "{what}: {lines:?}");
        }
    }
}

#[test]
fn verify_checksum_on_a_remote_without_hashes_says_it_compared_sizes_only() {
    let env = Env::demo();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "convert: {}", stderr(&out));
    let rclone = crate::remotes::rclones().remove(0);
    // rclone's WebDAV client reads hashes only from ownCloud and Nextcloud servers.
    let remote = Remote::start(Kind::Webdav);
    let out = env
        .run("push")
        .remote(&remote)
        .env("MUSYNC_RCLONE", &rclone)
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = verify(&env, &remote, &rclone, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let notes = (stderr(&out).lines())
        .filter(|l| l.contains("gives no hashes"))
        .count();
    assert_eq!(notes, 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("compared by size only"),
        "{}",
        stderr(&out)
    );
}
