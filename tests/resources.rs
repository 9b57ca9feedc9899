//! Resource faults: a staging disk that fills up, a staging folder that is read-only, and a
//! library file that changes or vanishes while it is being converted. Each run must fail with a
//! one-line cause per file, leave no MP3 that is not whole under a final name and no temporary
//! file, keep the manifest loadable, and a later run with the fault gone must finish the job.
//! Full and read-only disks are small tmpfs mounts, so those tests need root (or the right to
//! mount); without it they fail under `CI=true` and elsewhere print why they did not run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A tmpfs mounted over a folder for the length of a test.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. `100k`) on `dir`; `Err` says why it cannot be done here.
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", stderr(&out).trim()));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Remount with other options: `ro`, `rw`, `size=8m`.
    fn remount(&self, options: &str) {
        run(Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.dir));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The tmpfs, or `None` after saying why the test cannot run (a failure under `CI=true`).
fn tmpfs_or_skip(test: &str, dir: &Path, size: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(dir, size) {
        Ok(mount) => Some(mount),
        Err(why) => {
            let what = format!("{test}: a tmpfs mount (run the tests as root)");
            require(false, &what, &why);
            None
        }
    }
}

/// Every line of stderr is one `musync: FILE: CAUSE` line whose cause contains `cause`.
fn assert_failures_say(out: &Output, cause: &str, context: &str) {
    let err = stderr(out);
    assert!(!err.is_empty(), "{context}: no error was printed");
    for line in err.lines() {
        // `musync: ` then what failed (a file, a folder) and only then the cause.
        let per_file = line.strip_prefix("musync: ").is_some_and(|rest| {
            let rest = rest.to_lowercase();
            rest.find(cause).is_some_and(|at| rest[..at].contains(": "))
        });
        let summary = line.contains("failed (listed above");
        assert!(
            per_file || summary,
            "{context}: unclear line {line:?} in:\n{err}"
        );
    }
}

fn status_loads(env: &Env, context: &str) {
    let out = env.command("status").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{context}: status cannot read the manifest: {}",
        stderr(&out)
    );
}

fn verify_clean(env: &Env, context: &str) {
    let out = env.command("verify").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{context}: the manifest does not match staging: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

#[test]
fn full_staging_disk_fails_per_file_and_the_next_run_finishes() {
    // The demo library in a roomy staging folder: the bytes every staged MP3 must have.
    let reference = Env::demo();
    let out = reference.convert(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    Lengths::default().check(&reference, "reference");
    let want = mirror_tree(&reference);
    let library = tree_hashes(&reference.library);

    // From a disk too small for one MP3 to one with room for all but the manifest's snapshot:
    // at these sizes the encoder, the tag writer, the copy of a native MP3 and the snapshot each
    // meet the full disk (seen in their own error texts before the per-file wording).
    let sizes = ["24k", "48k", "100k", "160k", "220k"];
    let mut failures = 0;
    for size in sizes {
        let context = format!("staging on a {size} tmpfs");
        let env = Env::demo();
        let Some(disk) = tmpfs_or_skip("full_staging_disk", &env.staging, size) else {
            return;
        };
        let out = env.convert(&[]);
        match out.status.code() {
            Some(0) => assert!(stderr(&out).is_empty(), "{context}: {}", stderr(&out)),
            Some(1) => {
                assert_failures_say(&out, "no space left on the device", &context);
                failures += stderr(&out)
                    .lines()
                    .filter(|l| l.contains("no space"))
                    .count();
            }
            other => panic!("{context}: exit {other:?}: {}", stderr(&out)),
        }
        assert_eq!(leftovers(&env.staging), Vec::<String>::new(), "{context}");
        for (path, hash) in mirror_tree(&env) {
            assert_eq!(
                Some(&hash),
                want.get(&path),
                "{context}: {path} is not the whole MP3"
            );
        }
        status_loads(&env, &context);

        disk.remount("size=8m");
        let out = env.convert(&[]);
        assert_eq!(out.status.code(), Some(0), "{context}: {}", stderr(&out));
        assert_eq!(mirror_tree(&env), want, "{context}: after the rerun");
        verify_clean(&env, &context);
        assert_eq!(tree_hashes(&env.library), library, "{context}: library");
    }
    eprintln!(
        "resources: staging on {} full disks: {failures} \"no space\" failures, each one line \
         naming its file; nothing left half-written; every rerun finished the job",
        sizes.len()
    );
}

#[test]
fn a_retag_on_a_full_disk_keeps_the_old_mp3s_whole() {
    let env = Env::demo();
    let Some(_disk) = tmpfs_or_skip("retag_on_a_full_disk", &env.staging, "2m") else {
        return;
    };
    assert!(env.convert(&[]).status.success());
    let before = mirror_tree(&env);
    // The disk has no room left for a single copy.
    let filler = env.staging.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut file, &[0; 65536]).is_ok() {}
    drop(file);
    // A new genre rule must be written down before anything else: the whole run stops (a local
    // failure, 5).
    let out = (env.command("tag").args(["--genre-from", "parent"]).output()).unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_failures_say(&out, "no space left on", "new settings on a full disk");
    // New tags in the library: each retag fails on its own.
    for flac in files(&env.library).iter().filter(|f| f.ends_with(".flac")) {
        run(Command::new("metaflac")
            .arg("--set-tag=COMMENT=edited")
            .arg(env.lib(flac)));
    }
    let out = env.command("tag").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_failures_say(&out, "no space left on the device", "retag on a full disk");
    let mut now = mirror_tree(&env);
    now.remove("filler");
    assert_eq!(now, before, "a staged MP3 changed");
    assert_eq!(leftovers(&env.staging), Vec::<String>::new());
    status_loads(&env, "retag on a full disk");

    fs::remove_file(&filler).unwrap();
    let (json, code) = env.convert_json(&["--genre-from", "parent"]);
    assert_eq!((code, json["retagged"].as_u64()), (0, Some(8)), "{json}");
    Lengths::default().check(&env, "after the retag");
    verify_clean(&env, "after the retag");
}

#[test]
fn read_only_staging_is_left_alone_with_a_clear_error() {
    let env = Env::demo();
    let Some(disk) = tmpfs_or_skip("read_only_staging", &env.staging, "8m") else {
        return;
    };
    assert!(env.convert(&[]).status.success());
    // Work for every stage: a tag edit, a new album, and a push to a fresh remote.
    run(Command::new("metaflac")
        .arg("--set-tag=COMMENT=edited")
        .arg(env.lib("Rock/Some Band/Live Album/CD1/01 - Intro.flac")));
    copy_tree(&env.lib("Jazz"), &env.lib("Blues"));
    let remote = env.dir.path().join("remote");
    let before = tree_hashes(&env.staging);

    disk.remount("ro");
    for stage in ["convert", "tag", "push", "sync"] {
        let context = format!("{stage} on a read-only staging folder");
        let mut cmd = env.command(stage);
        if stage == "push" || stage == "sync" {
            cmd.arg("--remote").arg(&remote);
        }
        let out = cmd.output().unwrap();
        // Staging not writable stops the run: a local failure (5), or per file (1).
        assert!(
            matches!(out.status.code(), Some(1 | 5)),
            "{context}: {out:?}"
        );
        assert_failures_say(&out, "read-only", &context);
        assert_eq!(
            tree_hashes(&env.staging),
            before,
            "{context}: staging changed"
        );
        assert!(!remote.exists(), "{context}: the remote was written");
    }
    status_loads(&env, "status on a read-only staging folder");

    disk.remount("rw");
    let out = env
        .command("sync")
        .arg("--remote")
        .arg(&remote)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    Lengths::default().check(&env, "after the read-only run");
    verify_clean(&env, "after the read-only run");
    assert_eq!(tree_hashes(&remote), mirror_tree(&env));
}

/// Start converting `long.flac` (10 minutes), do `meddle` to it as soon as its temporary MP3
/// exists, and return how the run ended.
fn meddle_mid_convert(env: &Env, meddle: impl FnOnce(&Path)) -> Output {
    let long = env.lib("A/long.flac");
    make_flac(&long, 600.0, &["TITLE=long"]);
    let child = env
        .command("convert")
        .args(["--jobs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let album = env.staged("A");
    let deadline = Instant::now() + Duration::from_secs(60);
    let in_flight = || {
        fs::read_dir(&album).is_ok_and(|mut d| {
            d.any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".musync-tmp-")
            })
        })
    };
    while !in_flight() {
        assert!(Instant::now() < deadline, "the conversion never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    meddle(&long);
    child.wait_with_output().unwrap()
}

#[test]
fn a_source_that_changes_mid_convert_is_not_recorded_as_converted() {
    let env = Env::empty();
    let short = env.dir.path().join("short.flac");
    make_flac(&short, 3.0, &["TITLE=short"]);
    let out = meddle_mid_convert(&env, |long| {
        // Replaced the way editors save: a new file renamed over the old one.
        let new = long.with_extension("new");
        fs::copy(&short, &new).unwrap();
        fs::rename(&new, long).unwrap();
    });
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_failures_say(
        &out,
        "changed while it was being converted",
        "changed source",
    );
    assert!(!env.staged("A/long.mp3").exists(), "a stale MP3 was staged");
    assert_eq!(leftovers(&env.staging), Vec::<String>::new());

    // The next run converts what the file is now: 3 seconds, not 10 minutes.
    let (json, code) = env.convert_json(&[]);
    assert_eq!((code, json["converted"].as_u64()), (0, Some(1)), "{json}");
    let frames = decode_frames(&env.staged("A/long.mp3"), "rerun");
    assert_eq!(frames, 3 * 44_100);
    verify_clean(&env, "after a changed source");
}

#[test]
fn a_source_that_vanishes_mid_convert_leaves_nothing_behind() {
    let env = Env::empty();
    let out = meddle_mid_convert(&env, |long| fs::remove_file(long).unwrap());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_failures_say(&out, "disappeared while it was being converted", "vanished");
    assert_eq!(env.staged_files(), Vec::<String>::new());
    let (json, code) = env.convert_json(&[]);
    assert_eq!((code, json["converted"].as_u64()), (0, Some(0)), "{json}");
    verify_clean(&env, "after a vanished source");
}
