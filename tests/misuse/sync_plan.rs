//! `sync --dry-run` shows the whole plan, the push predicted from the convert plan, and the real
//! run then does exactly that plan (issue 14, item 6).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{Env, make_flac, stderr};

fn remote(env: &Env) -> PathBuf {
    let remote = env.dir.path().join("remote");
    fs::create_dir_all(&remote).unwrap();
    remote
}

fn sync(env: &Env, remote: &Path, dry_run: bool) -> Value {
    let mut cmd = env.command("sync");
    cmd.arg("--remote").arg(remote).arg("--json");
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The figures a plan and its run must share.
fn counts(json: &Value) -> Vec<(String, Value)> {
    let convert = ["converted", "renamed", "removed"].map(|k| ("convert", k));
    let push = ["uploaded", "moved", "deleted", "backed_up"].map(|k| ("push", k));
    (convert.iter().chain(&push))
        .map(|(stage, k)| (format!("{stage}.{k}"), json[stage][k].clone()))
        .collect()
}

/// The dry run's plan, then the real run's figures: equal, and the plan not empty.
fn plan_equals_run(env: &Env, remote: &Path) -> Vec<(String, Value)> {
    let planned = sync(env, remote, true);
    assert!(planned["push"].is_object(), "no push planned: {planned}");
    let done = sync(env, remote, false);
    assert_eq!(counts(&planned), counts(&done), "{planned}\n{done}");
    counts(&done)
}

fn figure(counts: &[(String, Value)], key: &str) -> u64 {
    let (_, v) = counts.iter().find(|(k, _)| k == key).unwrap();
    v.as_u64().unwrap()
}

// Regression: after ripping a CD, `sync --dry-run` showed no push at all.
#[test]
fn dry_run_sync_after_ripping_a_cd_plans_the_uploads() {
    let env = Env::demo();
    let remote = remote(&env);
    let first = plan_equals_run(&env, &remote);
    assert!(figure(&first, "push.uploaded") > 0);
    for i in 1..=3 {
        let tags = [format!("TITLE=Track {i}"), "ALBUM=New CD".to_owned()];
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        make_flac(
            &env.lib(&format!("New Artist/New CD/0{i}.flac")),
            1.0,
            &tags,
        );
    }
    let ripped = plan_equals_run(&env, &remote);
    assert_eq!(figure(&ripped, "convert.converted"), 3);
    assert_eq!(figure(&ripped, "push.uploaded"), 3);
}

#[test]
fn dry_run_sync_after_renaming_an_album_plans_the_moves() {
    let env = Env::demo();
    let remote = remote(&env);
    sync(&env, &remote, false);
    fs::rename(
        env.lib("Jazz/Miles Quartet/Blue Session"),
        env.lib("Jazz/Miles Quartet/Blue Session (Remaster)"),
    )
    .unwrap();
    let renamed = plan_equals_run(&env, &remote);
    // Two FLACs and a native MP3.
    assert_eq!(figure(&renamed, "convert.renamed"), 3);
    assert_eq!(figure(&renamed, "push.moved"), 3);
}

#[test]
fn dry_run_sync_after_deleting_a_track_plans_the_deletion_and_backup() {
    let env = Env::demo();
    let remote = remote(&env);
    sync(&env, &remote, false);
    fs::remove_file(env.lib("Jazz/Miles Quartet/Blue Session/02 - Second Take.flac")).unwrap();
    let deleted = plan_equals_run(&env, &remote);
    assert_eq!(figure(&deleted, "convert.removed"), 1);
    assert_eq!(figure(&deleted, "push.deleted"), 1);
    assert_eq!(figure(&deleted, "push.backed_up"), 1);
}
