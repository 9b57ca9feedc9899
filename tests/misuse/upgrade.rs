//! A staging folder from before `manifest.bin`: its `manifest.json` (format 1) and journal are
//! read as they are by `status` and `verify`, and rewritten in the new format by the first run
//! that takes the writer's lock, with nothing re-encoded. A manifest this musync cannot read (a
//! newer format, a failed checksum) is one line naming the file, and exit 5.

use std::fs;

use musync::manifest::{self, Change, Journal, Manifest};

use crate::util::*;

/// A converted demo library whose manifest is put back as musync wrote it before format 2: a
/// `manifest.json` holding all records but one, and a journal line putting that one back.
/// Returns the manifest it stands for.
fn old_format() -> (Env, Manifest) {
    let env = Env::demo();
    assert_eq!(env.convert_json(&[]).1, 0);
    let m = manifest::load(&env.staging).unwrap();
    assert!(m.records.len() >= 2, "{m:?}");
    let mut older = m.clone();
    let (_, last) = older.records.pop_last().unwrap();
    let json = manifest::to_json(&older).unwrap();
    fs::write(env.staged(manifest::JSON_SNAPSHOT), json).unwrap();
    fs::remove_file(env.staged(manifest::SNAPSHOT)).unwrap();
    let _ = fs::remove_file(env.staged(".musync/journal.jsonl"));
    let mut journal = Journal::open(&env.staging).unwrap();
    journal.append(&[Change::Put(last)]).unwrap();
    (env, m)
}

fn exists(env: &Env, rel: &str) -> bool {
    env.staged(rel).exists()
}

#[test]
fn a_json_manifest_is_read_by_readers_and_upgraded_by_the_first_writer() {
    let (env, m) = old_format();
    let before = tree_hashes(&env.staging);
    let times = mtimes(&env.staging);

    let (json, out) = env.run("status").json().parsed_strict();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["convert"]["converted"], 0, "{json}");
    assert_eq!(json["tag"]["tagged"], 0, "{json}");
    env.run("verify").ok();
    assert_eq!(
        tree_hashes(&env.staging),
        before,
        "a reader wrote in staging"
    );

    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["converted"], 0, "{json}");
    assert_eq!(json["retagged"], 0, "{json}");
    assert!(exists(&env, manifest::SNAPSHOT));
    assert!(!exists(&env, manifest::JSON_SNAPSHOT));
    assert!(!exists(&env, ".musync/journal.jsonl"));
    assert_eq!(manifest::load(&env.staging).unwrap(), m);
    let staged = |t: &std::collections::BTreeMap<String, _>| {
        let mine = |f: &String| !f.starts_with(".musync/");
        t.iter()
            .filter(|(f, _)| mine(f))
            .map(|(f, v)| (f.clone(), *v))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        staged(&mtimes(&env.staging)),
        staged(&times),
        "a file was rewritten"
    );

    // The next run with nothing to do leaves the manifest alone.
    let snapshot = env.staged(manifest::SNAPSHOT);
    let (bytes, time) = (fs::read(&snapshot).unwrap(), mtimes(&env.staging));
    assert_eq!(env.convert_json(&[]).1, 0);
    env.run("verify").ok();
    assert_eq!(fs::read(&snapshot).unwrap(), bytes);
    assert_eq!(
        mtimes(&env.staging)[manifest::SNAPSHOT],
        time[manifest::SNAPSHOT]
    );
    assert!(!exists(&env, ".musync/journal.jsonl"));
}

#[test]
fn a_manifest_musync_cannot_read_is_one_line_and_exit_5() {
    let env = Env::demo();
    assert_eq!(env.convert_json(&[]).1, 0);
    let path = env.staged(manifest::SNAPSHOT);
    let good = fs::read(&path).unwrap();
    let mut newer = good.clone();
    newer[manifest::MAGIC.len()] = 3;
    let mut damaged = good.clone();
    *damaged.last_mut().unwrap() ^= 0x10;
    let cases = [
        (newer, "has format 3, this musync reads 2"),
        (damaged, "is damaged: its checksum does not match"),
    ];
    for (bytes, says) in cases {
        fs::write(&path, &bytes).unwrap();
        for command in ["status", "convert"] {
            let out = env.run(command).output();
            assert_eq!(out.status.code(), Some(5), "{command}: {}", stderr(&out));
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{command}: {err}");
            assert!(
                err.starts_with(&format!("musync: manifest {}", path.display()))
                    && err.contains(says),
                "{command}: {err}"
            );
            assert_eq!(fs::read(&path).unwrap(), bytes, "{command} rewrote it");
        }
    }
}
