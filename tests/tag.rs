//! `musync tag`: genres from folder names on the staged mirror, never on the library.

use std::fs;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::*;

const OPENING: &str = "Jazz/Miles Quartet/Blue Session/01 - Opening.mp3";
const INTRO: &str = "Rock/Some Band/Live Album/CD1/01 - Intro.mp3";
const ENCORE: &str = "Rock/Some Band/Live Album/CD2/01 - Encore.mp3";
const BONUS: &str = "Jazz/Miles Quartet/Blue Session/03 - Bonus.mp3";

fn tag(env: &Env, args: &[&str]) -> (Value, Output) {
    env.run("tag").json().args(args).parsed_strict()
}

fn genre(env: &Env, rel: &str) -> Value {
    mutagen(&env.staged(rel))
        .get("TCON")
        .cloned()
        .unwrap_or(Value::Null)
}

fn converted() -> Env {
    let env = Env::demo();
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    env
}

#[test]
fn convert_sets_the_top_folder_genre_on_every_file_including_native_mp3s() {
    let env = converted();
    assert_eq!(genre(&env, OPENING), json!(["Jazz"]));
    assert_eq!(
        genre(&env, BONUS),
        json!(["Jazz"]),
        "the copied MP3 is tagged too"
    );
    assert_eq!(genre(&env, INTRO), json!(["Rock"]));
    let (json, out) = tag(&env, &[]);
    assert!(out.status.success());
    assert_eq!(
        json,
        json!({"tagged": 0, "unchanged": 8, "pending_convert": 0, "failed": [], "dry_run": false})
    );
}

#[test]
fn each_rule_names_the_right_folder() {
    let env = converted();
    let library = tree_hashes(&env.library);
    let cases: [(&[&str], &str, &str); 5] = [
        (&["--genre-from", "parent"], INTRO, "Live Album"),
        (&["--genre-from", "parent"], ENCORE, "Live Album"),
        (
            &["--genre-from", "path"],
            INTRO,
            "Rock/Some Band/Live Album/CD1",
        ),
        (&["--genre-from", "level:2"], OPENING, "Miles Quartet"),
        (
            &["--genre-from", "top", "--genre-map", "Rock/**=Live Rock"],
            ENCORE,
            "Live Rock",
        ),
    ];
    for (args, rel, want) in cases {
        let (json, out) = tag(&env, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(json["failed"], json!([]));
        assert_eq!(genre(&env, rel), json!([want]), "{args:?}");
    }
    assert_eq!(
        tree_hashes(&env.library),
        library,
        "tag wrote to the library"
    );
}

#[test]
fn if_missing_keeps_a_genre_the_file_has() {
    let env = converted();
    tag(
        &env,
        &["--genre-from", "parent", "--genre-policy", "if-missing"],
    );
    // 01 - Opening.flac says GENRE=Jazz; 02 - Second Take has none and gets its album folder.
    assert_eq!(genre(&env, OPENING), json!(["Jazz"]));
    assert_eq!(
        genre(&env, "Jazz/Miles Quartet/Blue Session/02 - Second Take.mp3"),
        json!(["Blue Session"])
    );
}

#[test]
fn second_tag_run_writes_nothing() {
    let env = converted();
    let (first, _) = tag(&env, &["--genre-from", "parent"]);
    assert_eq!(first["tagged"], 8, "{first}");
    let before = mtimes(&env.staging);
    let (again, _) = tag(&env, &[]);
    assert_eq!(
        (again["tagged"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(8)),
        "{again}"
    );
    assert_eq!(
        mtimes(&env.staging),
        before,
        "a no-op tag run touched files"
    );
}

#[test]
fn convert_after_tag_keeps_the_genre_and_a_flac_edit_gets_the_same_genre() {
    let env = converted();
    tag(&env, &["--genre-from", "parent"]);
    let (json, _) = env.convert_json(&[]);
    assert_eq!(json["retagged"], 0, "convert undid the tag stage: {json}");
    assert_eq!(genre(&env, INTRO), json!(["Live Album"]));
    let flac = env.lib("Rock/Some Band/Live Album/CD1/01 - Intro.flac");
    run(Command::new("metaflac")
        .arg("--set-tag=COMMENT=edited")
        .arg(&flac));
    let (json, _) = env.convert_json(&[]);
    assert_eq!(
        (json["converted"].as_u64(), json["retagged"].as_u64()),
        (Some(0), Some(1)),
        "{json}"
    );
    assert_eq!(genre(&env, INTRO), json!(["Live Album"]));
}

#[test]
fn dry_run_lists_genre_changes_and_writes_nothing() {
    let env = converted();
    let before = tree_hashes(&env.staging);
    let out = env
        .command("tag")
        .args(["--dry-run", "--genre-from", "parent"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("{INTRO}: Rock → Live Album")),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(" → ")).count(),
        8,
        "{text}"
    );
    assert_eq!(tree_hashes(&env.staging), before, "dry run changed staging");
    let (json, _) = tag(&env, &["--dry-run", "--genre-from", "parent"]);
    assert_eq!(
        (json["tagged"].as_u64(), json["dry_run"].as_bool()),
        (Some(8), Some(true))
    );
    // A dry run does not remember its flags either.
    assert_eq!(tag(&env, &["--dry-run"]).0["tagged"], 0);
}

#[test]
fn missing_staged_file_is_reported_and_the_rest_is_tagged() {
    let env = converted();
    fs::remove_file(env.staged(OPENING)).unwrap();
    let (json, out) = tag(&env, &["--genre-from", "parent"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json["failed"][0]["path"],
        "Jazz/Miles Quartet/Blue Session/01 - Opening.flac"
    );
    assert!(
        stderr(&out).contains("staged file missing"),
        "{}",
        stderr(&out)
    );
    assert_eq!(json["tagged"], 7, "{json}");
}

#[test]
fn new_files_wait_for_convert() {
    let env = converted();
    make_flac(&env.lib("Jazz/New/01.flac"), 1.0, &["TITLE=New"]);
    let (json, out) = tag(&env, &[]);
    assert!(out.status.success());
    assert_eq!(json["pending_convert"], 1, "{json}");
    assert!(!env.staged("Jazz/New/01.mp3").exists());
}

/// kill -9 while tags are being rewritten, then run again: every MP3 plays and is tagged.
#[test]
fn killed_tag_run_is_finished_by_the_next() {
    let env = Env::empty();
    for i in 0..12 {
        make_flac(
            &env.lib(&format!("Pop/Album {}/{i:02}.flac", i % 3)),
            20.0,
            &[&format!("TITLE={i}")],
        );
    }
    assert_eq!(env.convert_json(&[]).1, 0);
    let mut child = env
        .command("tag")
        .args(["--genre-from", "parent", "--jobs", "1"])
        .spawn()
        .unwrap();
    let journal = env.staged(".musync/journal.jsonl");
    let lines = || fs::read_to_string(&journal).map_or(0, |j| j.lines().count());
    let deadline = Instant::now() + Duration::from_secs(60);
    // The first line records the settings, each later one a finished file.
    while lines() < 2 {
        assert!(Instant::now() < deadline, "tag never finished a file");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines() < 13, "the kill came too late to test anything");
    let (json, out) = tag(&env, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["failed"], json!([]));
    let expected = decoded(&env.lib("Pop/Album 0/00.flac")).0;
    for f in env.staged_files() {
        assert!(!f.contains(".musync-tmp-"), "temporary left: {f}");
        assert_eq!(decoded(&env.staged(&f)).0, expected, "{f}");
        let album = f.split('/').nth(1).unwrap();
        assert_eq!(genre(&env, &f), json!([album]), "{f}");
    }
}
