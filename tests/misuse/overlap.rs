//! Folders inside one another: the library, staging and a remote that is a local folder may
//! not be the same or hold one another, however the remote is written. Every command refuses
//! with one line naming both folders (exit code 2) before it touches anything.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use crate::util::*;

/// Every path under `dir`, folders too: nothing may be created.
fn everything(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().path().display().to_string())
        .collect()
}

/// One misuse: the folders as given (relative to the test's folder), and the two that the
/// message must name.
struct Case {
    name: &'static str,
    library: &'static str,
    staging: &'static str,
    remote: Option<String>,
    named: [String; 2],
}

fn cases(root: &Path) -> Vec<Case> {
    let abs = |p: &str| root.join(p).display().to_string();
    let case = |name, library, staging, remote: Option<String>, named: [&str; 2]| Case {
        name,
        library,
        staging,
        remote,
        named: named.map(str::to_owned),
    };
    vec![
        // Regression: this sync, run twice, grew Lib/mp3/mp3/… inside the library.
        case(
            "remote inside the library",
            "Lib",
            "st",
            Some("Lib/mp3".into()),
            ["the remote Lib/mp3", "the library Lib"],
        ),
        case(
            "remote is the library",
            "Lib",
            "st",
            Some(abs("Lib")),
            [&format!("the remote {}", abs("Lib")), "the library Lib"],
        ),
        case(
            "remote inside staging",
            "Lib",
            "st",
            Some("st/out".into()),
            ["staging st", "the remote st/out"],
        ),
        case(
            "staging inside the remote",
            "Lib",
            "out/st",
            Some("out".into()),
            ["staging out/st", "the remote out"],
        ),
        case(
            "remote inside the library through a symlink",
            "Lib",
            "st",
            Some("link/mp3".into()),
            ["the remote link/mp3 (", "the library Lib"],
        ),
        case(
            "a :local: remote inside the library",
            "Lib",
            "st",
            Some(format!(":local:{}", abs("Lib/mp3"))),
            ["the remote :local:", "the library Lib"],
        ),
        case(
            "a local: remote that is staging",
            "Lib",
            "st",
            Some("local:st".into()),
            ["staging st", "the remote local:st"],
        ),
        case(
            "library inside staging",
            "all/Lib",
            "all",
            Some("remote".into()),
            ["the library all/Lib", "staging all"],
        ),
    ]
}

fn refused(out: &Output, case: &Case, command: &str) {
    let err = stderr(out);
    let context = format!("{} ({command})", case.name);
    assert_eq!(out.status.code(), Some(2), "{context}: {err}");
    assert_eq!(err.lines().count(), 1, "{context}: one line: {err}");
    assert!(
        err.starts_with("musync: ") && err.contains("may not overlap"),
        "{context}: {err}"
    );
    for folder in &case.named {
        assert!(
            err.contains(folder.as_str()),
            "{context}: {folder:?} not named: {err}"
        );
    }
}

#[test]
fn overlapping_folders_are_refused_before_anything_is_touched() {
    for index in 0..cases(Path::new("/")).len() {
        let env = Env::empty();
        let root = env.dir.path();
        let case = &cases(root)[index];
        let library = root.join(case.library);
        copy_tree(&fixtures(), &library);
        std::os::unix::fs::symlink(root.join("Lib"), root.join("link")).unwrap();
        let library_before = tree_hashes(&library);
        let before = everything(root);
        let folders = |cmd: &mut std::process::Command| {
            cmd.current_dir(root)
                .args(["--library", case.library, "--staging", case.staging]);
        };
        let involves_remote = case.named.iter().any(|n| n.starts_with("the remote"));
        for command in ["sync", "push", "status", "verify", "convert", "tag"] {
            let takes_remote = matches!(command, "sync" | "push" | "status" | "verify");
            if involves_remote && !takes_remote {
                continue;
            }
            let mut cmd = musync();
            cmd.arg(command);
            folders(&mut cmd);
            if let (true, Some(remote)) = (takes_remote, &case.remote) {
                cmd.args(["--remote", remote]);
            }
            let out = cmd.output().unwrap();
            refused(&out, case, command);
        }
        let config = root.join("config.toml");
        let mut init = musync();
        init.arg("--config").arg(&config).arg("init");
        folders(&mut init);
        if let Some(remote) = &case.remote {
            init.args(["--remote", remote]);
        }
        refused(&init.output().unwrap(), case, "init");
        assert_eq!(
            tree_hashes(&library),
            library_before,
            "{}: library",
            case.name
        );
        assert_eq!(
            everything(root),
            before,
            "{}: something was created",
            case.name
        );
    }
}

/// Folders side by side, or merely sharing a prefix of their names, are fine.
#[test]
fn folders_side_by_side_are_accepted() {
    let env = Env::demo();
    let remote = env.dir.path().join("library-mp3");
    let out = env
        .command("sync")
        .arg("--remote")
        .arg(&remote)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = (env.command("sync").arg("--remote"))
        .arg(format!(":local:{}", remote.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
