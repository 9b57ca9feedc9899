//! One look per run: a `sync` walks the library and loads the manifest once for all its stages
//! (`status` too, with its push), and a run with nothing to do reads no file's contents.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::remotes::{Kind, Remote};
use crate::util::*;

/// How many times a run at -vv said it walked the library, and loaded the manifest.
fn looks(out: &Output) -> (usize, usize) {
    let err = stderr(out);
    (
        err.matches("scanned the library").count(),
        err.matches("loaded the manifest").count(),
    )
}

// Regression: each stage of a sync walked the library and loaded the manifest again (convert,
// tag and push: three of each; a dry run four walks).
#[test]
fn a_sync_walks_the_library_and_loads_the_manifest_once() {
    let env = Env::demo();
    let remote = Remote::start(Kind::Local);
    let sync = |round: &str, args: &[&str]| {
        let out = env.run("sync").remote(&remote).arg("-vv").args(args).ok();
        assert_eq!(looks(&out), (1, 1), "{round}: {}", stderr(&out));
    };
    sync("a dry run", &["--dry-run"]);
    sync("the first sync", &[]);
    sync("a sync with nothing to do", &[]);
    let new = env.lib("Jazz/Miles Quartet/Blue Session/04 - Copy.flac");
    fs::copy(
        env.lib("Jazz/Miles Quartet/Blue Session/01 - Opening.flac"),
        &new,
    )
    .unwrap();
    sync("a sync after a new track", &[]);
    assert!(
        remote
            .dir
            .join("Jazz/Miles Quartet/Blue Session/04 - Copy.mp3")
            .is_file(),
        "the new track was pushed"
    );
}

// Regression: `status` loaded the manifest again to plan the push.
#[test]
fn status_walks_the_library_and_loads_the_manifest_once() {
    let env = Env::demo();
    let remote = Remote::start(Kind::Local);
    env.run("convert").ok();
    let out = env.run("status").remote(&remote).arg("-vv").ok();
    assert_eq!(looks(&out), (1, 1), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("upload"),
        "the push was planned: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Overwrite `path` with bytes that are no audio, keeping its size and modification time.
fn garble(path: &Path) {
    let meta = fs::metadata(path).unwrap();
    let len = usize::try_from(meta.len()).unwrap();
    fs::write(path, vec![b'x'; len]).unwrap();
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(meta.modified().unwrap()).unwrap();
}

/// A convert with nothing to do trusts each file's size and modification time: were it to read
/// one, the garbled bytes would fail to decode or differ from the recorded hash.
#[test]
fn a_no_op_convert_tag_and_sync_read_no_audio_file() {
    let env = Env::demo();
    let remote = Remote::start(Kind::Local);
    env.run("sync").remote(&remote).ok();
    let audio = |dir: &Path| -> Vec<String> {
        files(dir)
            .into_iter()
            .filter(|f| [".flac", ".mp3"].iter().any(|e| f.ends_with(e)))
            .collect()
    };
    let (sources, staged) = (audio(&env.library), audio(&env.staging));
    assert!(sources.len() >= 8 && staged.len() == sources.len());
    sources.iter().for_each(|f| garble(&env.lib(f)));
    staged.iter().for_each(|f| garble(&env.staged(f)));
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["unchanged"], sources.len(), "{json}");
    for key in ["converted", "copied", "retagged", "renamed", "removed"] {
        assert_eq!(json[key], 0, "{key}: {json}");
    }
    let (json, out) = env.run("tag").json().parsed_strict();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["tagged"], 0, "{json}");
    let (json, out) = env.run("sync").json().remote(&remote).parsed_strict();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["convert"]["converted"], 0, "{json}");
    assert_eq!(json["push"]["uploaded"], 0, "{json}");
    assert_eq!(json["push"]["unchanged"], sources.len(), "{json}");
}

/// In a sync, the tag stage plans from what the convert stage made, renamed, retagged and
/// removed, not from a second look at staging: it finds each of those files in place.
#[test]
fn a_sync_tag_stage_sees_what_its_convert_stage_changed() {
    let env = Env::demo();
    let remote = Remote::start(Kind::Local);
    env.run("sync").remote(&remote).ok();
    let album = "Jazz/Miles Quartet/Blue Session";
    fs::copy(
        env.lib(&format!("{album}/01 - Opening.flac")),
        env.lib(&format!("{album}/04 - New.flac")),
    )
    .unwrap();
    fs::rename(
        env.lib(&format!("{album}/02 - Second Take.flac")),
        env.lib(&format!("{album}/05 - Renamed.flac")),
    )
    .unwrap();
    fs::remove_file(env.lib("Classical/Orchestra/Symphony/02 - HiRes.flac")).unwrap();
    run(std::process::Command::new("metaflac")
        .arg("--set-tag=TITLE=Edited")
        .arg(env.lib(&format!("{album}/01 - Opening.flac"))));
    let (json, out) = env.run("sync").json().remote(&remote).parsed_strict();
    assert!(out.status.success(), "{}", stderr(&out));
    let convert = &json["convert"];
    assert_eq!(
        [
            &convert["converted"],
            &convert["retagged"],
            &convert["renamed"],
            &convert["removed"]
        ],
        [1, 1, 1, 1],
        "{json}"
    );
    let tag = &json["tag"];
    assert_eq!(tag["tagged"], 0, "{json}");
    assert_eq!(tag["pending_convert"], 0, "{json}");
    assert_eq!(tag["failed"].as_array().unwrap().len(), 0, "{json}");
    assert_eq!(
        tag["unchanged"],
        convert["unchanged"].as_u64().unwrap() + 3,
        "{json}"
    );
    assert_eq!(
        json["push"]["failed"].as_array().unwrap().len(),
        0,
        "{json}"
    );
    let (again, _) = env.run("sync").json().remote(&remote).parsed_strict();
    assert_eq!(again["push"]["uploaded"], 0, "{again}");
    assert_eq!(
        mirror_tree(&env),
        remote_tree(&remote),
        "the remote is the mirror"
    );
}
