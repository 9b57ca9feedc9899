//! `musync verify` and `musync status`: the checks a user runs between syncs. Both must write
//! nothing, in staging or on the remote.

use std::fs;
use std::process::Output;

use serde_json::Value;

use crate::remotes::{Kind, Remote};
use crate::util::*;

/// Run `musync SUBCOMMAND --json ARGS` (against `remote` if given): its JSON and output.
fn musync(env: &Env, subcommand: &str, remote: Option<&Remote>, args: &[&str]) -> (Value, Output) {
    let mut run = env.run(subcommand).json().args(args);
    if let Some(remote) = remote {
        run = run.remote(remote);
    }
    run.parsed_strict()
}

fn converted() -> Env {
    let env = Env::demo();
    assert_eq!(env.convert_json(&[]).1, 0);
    env
}

fn pushed(env: &Env, remote: &Remote) {
    let out = env
        .command("push")
        .args(["--remote", &remote.spec])
        .envs(remote.envs())
        .output()
        .unwrap();
    assert!(out.status.success(), "push failed: {}", stderr(&out));
}

fn strings(json: &Value) -> Vec<&str> {
    json.as_array()
        .unwrap_or_else(|| panic!("not a list: {json}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

const OPENING: &str = "Jazz/Miles Quartet/Blue Session/01 - Opening.mp3";
const ENCORE: &str = "Rock/Some Band/Live Album/CD2/01 - Encore.mp3";

#[test]
fn verify_passes_a_clean_mirror() {
    let env = converted();
    let (json, out) = musync(&env, "verify", None, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["staged"]["checked"], 8, "{json}");
    for key in ["missing", "changed", "unknown"] {
        assert_eq!(json["staged"][key], Value::Array(vec![]), "{json}");
    }
    assert!(json["remote"].is_null());
    let out = env.command("verify").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Verified 8 staged files: 0 missing, 0 changed, 0 unknown.\n"
    );
}

#[test]
fn verify_names_a_corrupted_a_deleted_and_an_unknown_staged_file() {
    let env = converted();
    // One flipped byte, same size and mtime: only a hash can tell.
    let path = env.staged(OPENING);
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    fs::remove_file(env.staged(ENCORE)).unwrap();
    fs::write(env.staged("Jazz/mine.m3u"), "#EXTM3U\n").unwrap();
    // A temporary file of a killed run is musync's own, not unknown.
    fs::write(env.staged("Jazz/.musync-tmp-abc.mp3"), "x").unwrap();
    let before = tree_hashes(&env.staging);

    let (json, out) = musync(&env, "verify", None, &[]);
    assert_eq!(out.status.code(), Some(1), "{json}");
    let staged = &json["staged"];
    assert_eq!(staged["checked"], 8);
    assert_eq!(strings(&staged["missing"]), [ENCORE]);
    assert_eq!(strings(&staged["unknown"]), ["Jazz/mine.m3u"]);
    let changed = staged["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{json}");
    assert_eq!(changed[0]["path"], OPENING);
    assert_ne!(changed[0]["expected"], changed[0]["found"]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("musync: {ENCORE}: missing\n")),
        "{err}"
    );
    assert!(
        err.contains(&format!("musync: {OPENING}: changed (expected sha256 ")),
        "{err}"
    );
    assert!(
        err.contains("musync: Jazz/mine.m3u: unknown (not made by musync)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 3, "{err}");
    assert_eq!(tree_hashes(&env.staging), before, "verify wrote something");

    let out = env.command("verify").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Verified 8 staged files: 1 missing, 1 changed, 1 unknown.\n"
    );
}

#[test]
fn verify_remote_catches_a_changed_and_a_missing_remote_file() {
    let remote = Remote::start(Kind::Local);
    let env = converted();
    pushed(&env, &remote);
    let (json, out) = musync(&env, "verify", Some(&remote), &[]);
    assert_eq!(out.status.code(), Some(0), "{json}\n{}", stderr(&out));
    assert_eq!(json["remote"]["checked"], 8, "{json}");

    let size = fs::metadata(remote.dir.join(OPENING)).unwrap().len();
    fs::write(remote.dir.join(OPENING), b"replaced by someone else").unwrap();
    fs::remove_file(remote.dir.join(ENCORE)).unwrap();
    fs::write(remote.dir.join("party.m3u"), "#EXTM3U\n").unwrap();
    // Backups are musync's own.
    fs::create_dir_all(remote.dir.join(".musync-backups/2026-01-01T00-00-00")).unwrap();
    fs::write(
        remote
            .dir
            .join(".musync-backups/2026-01-01T00-00-00/old.mp3"),
        "x",
    )
    .unwrap();
    let (before, remote_before) = (tree_hashes(&env.staging), tree_hashes(&remote.dir));

    let (json, out) = musync(&env, "verify", Some(&remote), &[]);
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert_eq!(json["staged"]["checked"], 8);
    let found = &json["remote"];
    assert_eq!(strings(&found["missing"]), [ENCORE], "{json}");
    assert_eq!(strings(&found["unknown"]), ["party.m3u"], "{json}");
    assert_eq!(
        found["changed"],
        serde_json::json!([{"path": OPENING, "expected": size, "found": 24}])
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "musync: {OPENING}: changed on the remote (expected {size} bytes, found 24 bytes)"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("musync: {ENCORE}: missing on the remote")),
        "{err}"
    );
    assert_eq!(tree_hashes(&env.staging), before, "verify wrote in staging");
    assert_eq!(
        tree_hashes(&remote.dir),
        remote_before,
        "verify wrote on the remote"
    );

    let out = env
        .command("verify")
        .args(["--remote", &remote.spec])
        .envs(remote.envs())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with(&format!(
            "Verified 8 pushed files on {}: 1 missing, 1 changed, 1 unknown.\n",
            remote.spec
        )),
        "{text}"
    );
}

#[test]
fn status_shows_each_stage_and_writes_nothing() {
    let remote = Remote::start(Kind::Local);
    let env = converted();

    // A current mirror never pushed: the push is planned, and not even rclone's version check
    // is saved.
    let before = tree_hashes(&env.staging);
    let (json, out) = musync(&env, "status", Some(&remote), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["convert"]["converted"], 0, "{json}");
    assert_eq!(json["convert"]["skipped"], 8, "{json}");
    assert_eq!(json["tag"]["tagged"], 0, "{json}");
    assert_eq!(json["push"]["pending_convert"], false, "{json}");
    assert_eq!(json["push"]["uploaded"], 8, "{json}");
    assert_eq!(json["push"]["plan"].as_array().unwrap().len(), 8, "{json}");
    assert_eq!(tree_hashes(&env.staging), before, "status wrote in staging");
    assert!(files(&remote.dir).is_empty());

    pushed(&env, &remote);
    make_flac(
        &env.lib("Jazz/New Trio/First/01 - Fresh.flac"),
        0.5,
        &["TITLE=Fresh"],
    );
    fs::remove_file(env.lib("Classical/Orchestra/Symphony/01 - Mono Movement.flac")).unwrap();
    let (before, remote_before) = (tree_hashes(&env.staging), tree_hashes(&remote.dir));
    let (json, out) = musync(&env, "status", Some(&remote), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let convert = &json["convert"];
    assert_eq!(
        [
            &convert["converted"],
            &convert["retagged"],
            &convert["renamed"],
            &convert["removed"],
            &convert["skipped"]
        ],
        [1, 0, 0, 1, 7],
        "{json}"
    );
    assert_eq!(
        strings(&convert["plan"]),
        [
            "remove  Classical/Orchestra/Symphony/01 - Mono Movement.mp3",
            "convert Jazz/New Trio/First/01 - Fresh.flac -> Jazz/New Trio/First/01 - Fresh.mp3 (new)",
        ]
    );
    assert_eq!(json["tag"]["pending_convert"], 2, "{json}");
    assert_eq!(json["push"]["pending_convert"], true, "{json}");
    assert!(json["push"]["uploaded"].is_null(), "{json}");
    let out = env
        .command("status")
        .args(["--remote", &remote.spec])
        .envs(remote.envs())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "convert: would convert 1, copy 0, retag 0, rename 0, remove 1; 7 unchanged.",
        "{text}"
    );
    assert_eq!(
        lines[3], "tag: would tag 0; 7 unchanged; 2 need `musync convert` first.",
        "{text}"
    );
    assert!(lines[4].starts_with("push to "), "{text}");
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(tree_hashes(&env.staging), before, "status wrote in staging");
    assert_eq!(
        tree_hashes(&remote.dir),
        remote_before,
        "status wrote on the remote"
    );

    // Once converted, the push is planned: the new file up, the removed one backed up.
    assert_eq!(env.convert_json(&[]).1, 0);
    let (json, out) = musync(&env, "status", Some(&remote), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let push = &json["push"];
    assert_eq!(
        [
            &push["uploaded"],
            &push["deleted"],
            &push["backed_up"],
            &push["unchanged"]
        ],
        [1, 1, 1, 7],
        "{json}"
    );
}
