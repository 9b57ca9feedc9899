//! Mistakes of a new user's setup: the library's disk goes away in the middle of a run, staging
//! sits on another filesystem than the system's temp folder, and musync runs as a user who cannot
//! read every file of a library that root owns. Each: one clear line per file, the right exit
//! code, nothing lost, and the next normal run converges.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::resources::Tmpfs;
use crate::util::*;

/// A library of `n` short FLACs under `Jazz/Album/`.
fn library(env: &Env, n: usize, seconds: f64) {
    for i in 1..=n {
        let title = format!("TITLE=Track {i}");
        make_flac(
            &env.lib(&format!("Jazz/Album/{i:02}.flac")),
            seconds,
            &[&title],
        );
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}); stderr: {}", stderr(out)))
}

/// Every staged MP3 that the manifest lists is whole: it decodes to its full length.
fn assert_converged(env: &Env, n: usize) {
    let out = env.command("convert").arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(j["converted"], 0, "not converged: {j}");
    let mp3s: Vec<String> = mirror_tree(env).into_keys().collect();
    assert_eq!(mp3s.len(), n, "{mp3s:?}");
    assert!(
        leftovers(&env.staging).is_empty(),
        "{:?}",
        leftovers(&env.staging)
    );
    let out = musync()
        .arg("verify")
        .arg("--staging")
        .arg(&env.staging)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "verify: {}", stderr(&out));
}

/// Regression check for the "library on a disk that goes away" mistake: the library vanishes
/// (unmounted, here moved away) while convert runs. The files in flight fail with one line each,
/// a run while it is gone refuses to touch the mirror, and once it is back one run finishes.
#[test]
fn library_disk_gone_mid_run() {
    let env = Env::empty();
    library(&env, 8, 20.0);
    let away = env.dir.path().join("unmounted");
    let child = env
        .command("convert")
        .args(["--json", "--jobs", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Pull the disk once two MP3s are in place.
    let deadline = Instant::now() + Duration::from_secs(60);
    let finished = |env: &Env| {
        let tree = mirror_tree(env);
        tree.keys()
            .filter(|p| p.ends_with(".mp3") && !p.contains(".musync-tmp-"))
            .count()
    };
    while finished(&env) < 2 {
        assert!(Instant::now() < deadline, "convert made nothing in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::rename(&env.library, &away).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    let done = finished(&env);
    if done < 8 {
        assert_eq!(out.status.code(), Some(1), "{err}");
        for line in err.lines().filter(|l| l.contains(".flac")) {
            assert!(
                line.starts_with("musync: Jazz/Album/"),
                "unclear line {line:?}"
            );
        }
    }
    assert!(
        leftovers(&env.staging).is_empty(),
        "{:?}",
        leftovers(&env.staging)
    );

    // While the disk is away: the mount point is an empty folder. Nothing may be deleted.
    fs::create_dir(&env.library).unwrap();
    let before = mirror_tree(&env);
    let out = env
        .command("sync")
        .arg("--remote")
        .arg(env.dir.path().join("remote"))
        .output();
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("mounted"), "{}", stderr(&out));
    assert_eq!(
        mirror_tree(&env),
        before,
        "an empty library changed the mirror"
    );
    assert!(
        !env.dir.path().join("remote").exists(),
        "pushed from an empty library"
    );

    // The disk is back: one run finishes the job.
    fs::remove_dir(&env.library).unwrap();
    fs::rename(&away, &env.library).unwrap();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_converged(&env, 8);
}

/// Staging on another filesystem than the system temp folder (and the remote on a third): every
/// temporary file is made beside its final name, so no rename crosses a filesystem.
#[test]
fn staging_on_another_filesystem_than_temp_files() {
    let env = Env::empty();
    library(&env, 3, 2.0);
    let staging_disk = tmpfs(&env.dir.path().join("disk"), "64m");
    let remote_disk = tmpfs(&env.dir.path().join("usb"), "64m");
    let staging = staging_disk.dir.join("mirror");
    let remote = remote_disk.dir.join("music");
    let tmp = env.dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let out = musync()
        .args(["sync", "--json", "--library"])
        .arg(&env.library)
        .arg("--staging")
        .arg(&staging)
        .arg("--remote")
        .arg(&remote)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["push"]["uploaded"], 3);
    assert_eq!(files(&remote).len(), 3, "{:?}", files(&remote));
    assert!(leftovers(&staging).is_empty() && leftovers(&remote).is_empty());
}

/// musync run by a user who cannot read one of root's files: that file gets one line naming
/// it and the cause (permission denied), the rest are converted, exit 1; a run by root, who can
/// read it, then finishes the job.
#[test]
fn another_user_cannot_read_one_of_roots_files() {
    let env = Env::empty();
    if !require(is_root(), "root", "to make files another user cannot read") {
        return;
    }
    library(&env, 3, 2.0);
    let secret = env.lib("Jazz/Album/02.flac");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    // Everything else is readable by anyone, and the staging folder belongs to the user.
    for dir in [env.dir.path(), &env.library] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::create_dir(&env.staging).unwrap();
    run(Command::new("chown").arg("nobody").arg(&env.staging));
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        isolate(&mut cmd)
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_musync"))
            .args(args)
            .arg("--library")
            .arg(&env.library)
            .arg("--staging")
            .arg(&env.staging)
            .output()
            .unwrap()
    };
    let out = as_nobody(&["convert", "--json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("02.flac")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("musync: Jazz/Album/02.flac: ")
            && lines[0].to_lowercase().contains("permission denied"),
        "{err}"
    );
    assert_eq!(json(&out)["converted"], 2);
    assert!(!Path::new(&env.staged("Jazz/Album/02.mp3")).exists());
    // The same user again: the same one line, nothing else changes.
    let out = as_nobody(&["convert", "--json"]);
    assert_eq!(
        (out.status.code(), &json(&out)["converted"]),
        (Some(1), &Value::from(0))
    );
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_converged(&env, 3);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs on `dir`, failing the test where it cannot be mounted.
fn tmpfs(dir: &Path, size: &str) -> Tmpfs {
    Tmpfs::mount(dir, size).unwrap_or_else(|why| panic!("needs a tmpfs mount (root): {why}"))
}

/// Regression: `musync init --remote remote` (a folder, relative to where init ran) wrote
/// `remote = "remote"`, which a later `musync sync` run from another folder took as a folder
/// there. init writes it absolute, and a relative folder in the file is relative to the file,
/// as `library` and `staging` are; `nas:music` stays as it is.
#[test]
fn a_relative_remote_folder_means_the_same_folder_from_anywhere() {
    let env = Env::demo();
    let config = env.dir.path().join("conf/config.toml");
    let out = musync()
        .current_dir(env.dir.path())
        .arg("--config")
        .arg(&config)
        .args([
            "init",
            "--library",
            "library",
            "--staging",
            "staging",
            "--remote",
            "remote",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs::read_to_string(&config).unwrap();
    let want = format!(
        "remote = {:?}",
        env.dir.path().join("remote").display().to_string()
    );
    assert!(text.contains(&want), "{want} not in:\n{text}");
    // Run from elsewhere: the mirror lands in that same folder.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = musync()
        .current_dir(elsewhere.path())
        .arg("--config")
        .arg(&config)
        .args(["sync", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(files(elsewhere.path()).is_empty());
    assert_eq!(files(&env.dir.path().join("remote")).len(), 8);
    // A relative folder written by hand is relative to the config file.
    fs::write(
        &config,
        "library = \"../library\"\nstaging = \"../staging\"\nremote = \"out\"\n",
    )
    .unwrap();
    let out = musync()
        .current_dir(elsewhere.path())
        .arg("--config")
        .arg(&config)
        .args(["push", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(files(&env.dir.path().join("conf/out")).len(), 8);
    assert!(files(elsewhere.path()).is_empty());
}
