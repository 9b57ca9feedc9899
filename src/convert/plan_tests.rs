//! Planner tests: one per case of the convert issue, and a property test that runs random
//! library histories through the planner and a model of the executor.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::convert::outputs::output_path;
use crate::manifest::Change;

fn wanted(rel: &str, audio: &str, tags: &str) -> Wanted {
    Wanted {
        rel: rel.into(),
        kind: if rel.ends_with(".mp3") {
            SourceKind::Mp3
        } else {
            SourceKind::Lossless
        },
        stamp: Stamp {
            size: audio.len() as u64 + tags.len() as u64,
            mtime_ns: 1,
        },
        audio_hash: audio.into(),
        tag_hash: tags.into(),
        tag_key: tags.into(),
        encoder: "V2".into(),
        own_genre: vec![],
        genre: vec![],
    }
}

/// A model of the staging tree: path → content ("audio|tags"), plus the user's own files.
#[derive(Clone, Debug, Default)]
struct World {
    manifest: Manifest,
    files: BTreeMap<String, String>,
}

impl World {
    fn staging(&self) -> Staging {
        Staging {
            present: self.files.keys().cloned().collect(),
            changed: self
                .manifest
                .records
                .values()
                .filter(|r| {
                    self.files
                        .get(&r.output)
                        .is_some_and(|c| *c != r.output_hash)
                })
                .map(|r| r.output.clone())
                .collect(),
            stale: BTreeSet::new(),
        }
    }

    fn plan(&self, lib: &[Wanted]) -> Plan {
        plan(lib, &[], &self.manifest, &self.staging())
    }

    fn put(&mut self, w: &Wanted, output: &str, audio: &str, encoder: &str) {
        let content = format!("{audio}|{}", w.tag_key);
        self.files.insert(output.into(), content.clone());
        self.manifest.apply(Change::Put(Record {
            source: w.rel.clone(),
            kind: w.kind,
            stamp: w.stamp,
            audio_hash: audio.into(),
            tag_hash: w.tag_hash.clone(),
            encoder: encoder.into(),
            tag_key: w.tag_key.clone(),
            output: output.into(),
            output_stamp: Stamp {
                size: 0,
                mtime_ns: 0,
            },
            output_hash: content,
            retag_from: None,
            own_genre: vec![],
            genre: vec![],
        }));
    }

    /// Carry out a plan the way the executor does.
    fn execute(&mut self, lib: &[Wanted], plan: &Plan) {
        let by_rel: BTreeMap<&str, &Wanted> = lib.iter().map(|w| (w.rel.as_str(), w)).collect();
        for action in &plan.actions {
            match action {
                Action::Convert { source, output, .. } => {
                    let w = by_rel[source.as_str()];
                    self.put(w, output, &w.audio_hash, &w.encoder);
                }
                Action::Retag { source, output } => {
                    let w = by_rel[source.as_str()];
                    let r = self.manifest.records[source].clone();
                    self.put(w, output, &r.audio_hash, &r.encoder);
                }
                Action::Move {
                    old_source,
                    old_output,
                    source,
                    output,
                    retag,
                } => {
                    let w = by_rel[source.as_str()];
                    let old = self.manifest.records[old_source].clone();
                    let content = self.files.remove(old_output).expect("move source exists");
                    self.files.insert(output.clone(), content);
                    self.manifest.apply(Change::Remove(old_source.clone()));
                    self.manifest.apply(Change::Put(Record {
                        source: source.clone(),
                        stamp: w.stamp,
                        output: output.clone(),
                        ..old.clone()
                    }));
                    if *retag {
                        self.put(w, output, &old.audio_hash, &old.encoder);
                    }
                }
                Action::Remove {
                    source,
                    output,
                    delete,
                } => {
                    if *delete {
                        self.files.remove(output);
                    }
                    match source {
                        Some(s) => {
                            self.manifest.apply(Change::Remove(s.clone()));
                            if !delete && self.files.contains_key(output) {
                                self.manifest.apply(Change::Orphan(output.clone()));
                            }
                        }
                        None => self.manifest.apply(Change::Forget(output.clone())),
                    }
                }
                Action::Refresh { source } => {
                    let mut r = self.manifest.records[source].clone();
                    r.stamp = by_rel[source.as_str()].stamp;
                    self.manifest.apply(Change::Put(r));
                }
            }
        }
    }
}

fn kinds(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| {
            format!("{a:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn synced(lib: &[Wanted]) -> World {
    let mut world = World::default();
    let plan = world.plan(lib);
    world.execute(lib, &plan);
    world
}

#[test]
fn new_source_is_converted_to_mirrored_path() {
    let plan = World::default().plan(&[wanted("A/B/Song.flac", "1", "t")]);
    assert_eq!(
        plan.actions,
        [Action::Convert {
            source: "A/B/Song.flac".into(),
            output: "A/B/Song.mp3".into(),
            reason: Reason::New
        }]
    );
}

#[test]
fn unchanged_library_plans_nothing() {
    let lib = [wanted("a.flac", "1", "t"), wanted("b.mp3", "2", "t")];
    let plan = synced(&lib).plan(&lib);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.unchanged, 2);
}

#[test]
fn touched_source_only_refreshes_its_stamp() {
    let lib = [wanted("a.flac", "1", "t")];
    let world = synced(&lib);
    let mut touched = lib.clone();
    touched[0].stamp.mtime_ns = 99;
    assert_eq!(kinds(&world.plan(&touched)), ["Refresh"]);
}

#[test]
fn changed_audio_or_settings_reconvert() {
    let world = synced(&[wanted("a.flac", "1", "t")]);
    let plan = world.plan(&[wanted("a.flac", "2", "t")]);
    assert!(matches!(
        plan.actions[..],
        [Action::Convert {
            reason: Reason::AudioChanged,
            ..
        }]
    ));
    let mut v0 = wanted("a.flac", "1", "t");
    v0.encoder = "V0".into();
    assert!(matches!(
        world.plan(&[v0]).actions[..],
        [Action::Convert {
            reason: Reason::SettingsChanged,
            ..
        }]
    ));
}

#[test]
fn changed_tags_only_retag() {
    let world = synced(&[wanted("a.flac", "1", "t")]);
    assert_eq!(kinds(&world.plan(&[wanted("a.flac", "1", "u")])), ["Retag"]);
}

#[test]
fn moved_source_renames_its_output() {
    let world = synced(&[wanted("Old/a.flac", "1", "t")]);
    let plan = world.plan(&[wanted("New/b.flac", "1", "t")]);
    assert_eq!(
        plan.actions,
        [Action::Move {
            old_source: "Old/a.flac".into(),
            old_output: "Old/a.mp3".into(),
            source: "New/b.flac".into(),
            output: "New/b.mp3".into(),
            retag: false,
        }]
    );
    assert!(matches!(
        world.plan(&[wanted("New/b.flac", "1", "u")]).actions[..],
        [Action::Move { retag: true, .. }]
    ));
}

#[test]
fn removed_source_deletes_only_its_output() {
    let mut world = synced(&[wanted("a.flac", "1", "t"), wanted("b.flac", "2", "t")]);
    world.files.insert("user.mp3".into(), "mine".into());
    let plan = world.plan(&[wanted("b.flac", "2", "t")]);
    assert_eq!(
        plan.actions,
        [Action::Remove {
            source: Some("a.flac".into()),
            output: "a.mp3".into(),
            delete: true
        }]
    );
}

#[test]
fn missing_or_changed_output_is_reconverted() {
    let lib = [wanted("a.flac", "1", "t"), wanted("b.flac", "2", "t")];
    let mut world = synced(&lib);
    world.files.remove("a.mp3");
    world.files.insert("b.mp3".into(), "garbage".into());
    let plan = world.plan(&lib);
    assert!(matches!(
        plan.actions[..],
        [
            Action::Convert {
                reason: Reason::OutputMissing,
                ..
            },
            Action::Convert {
                reason: Reason::OutputChanged,
                ..
            }
        ]
    ));
}

#[test]
fn output_left_stale_by_a_killed_retag_is_retagged_not_reconverted() {
    let lib = [wanted("a.flac", "1", "t")];
    let world = synced(&lib);
    let mut staging = world.staging();
    staging.stale.insert("a.mp3".into());
    assert_eq!(
        kinds(&plan(&lib, &[], &world.manifest, &staging)),
        ["Retag"]
    );
}

#[test]
fn identical_audio_gives_two_outputs() {
    let plan = World::default().plan(&[wanted("a.flac", "1", "t"), wanted("b.flac", "1", "t")]);
    assert_eq!(kinds(&plan), ["Convert", "Convert"]);
}

#[test]
fn a_duplicate_of_a_moved_source_is_converted_not_moved_twice() {
    let world = synced(&[wanted("a.flac", "1", "t")]);
    let plan = world.plan(&[wanted("b.flac", "1", "t"), wanted("c.flac", "1", "t")]);
    assert_eq!(kinds(&plan), ["Move", "Convert"]);
}

#[test]
fn user_file_in_the_way_is_never_overwritten() {
    let mut world = World::default();
    world.files.insert("a.mp3".into(), "mine".into());
    let plan = world.plan(&[wanted("a.flac", "1", "t")]);
    assert!(plan.actions.is_empty());
    assert!(
        plan.failures[0].error.contains("musync did not create"),
        "{:?}",
        plan.failures
    );
}

#[test]
fn lossless_wins_a_name_collision_with_a_native_mp3() {
    let plan =
        World::default().plan(&[wanted("Song.flac", "1", "t"), wanted("Song.mp3", "2", "t")]);
    assert_eq!(kinds(&plan), ["Convert"]);
    assert_eq!(plan.failures[0].path, "Song.mp3");
}

#[test]
fn names_one_remote_file_apart_fail_all_but_one() {
    let nfc = "Caf\u{e9}/x.flac";
    let nfd = "Cafe\u{301}/x.flac";
    let plan = World::default().plan(&[
        wanted("Song.flac", "1", "t"),
        wanted("song.flac", "2", "t"),
        wanted("SONG.mp3", "3", "t"),
        wanted(nfc, "4", "t"),
        wanted(nfd, "5", "t"),
        wanted("\u{c9}t\u{e9}.flac", "6", "t"),
        wanted("\u{e9}t\u{e9}.flac", "7", "t"),
    ]);
    let failed: Vec<&str> = plan.failures.iter().map(|f| f.path.as_str()).collect();
    // Lossless first, then by name: byte order puts NFD before NFC.
    assert_eq!(failed, [nfc, "song.flac", "\u{e9}t\u{e9}.flac", "SONG.mp3"]);
    let song = &plan.failures[1].error;
    assert!(
        song.contains("Song.mp3") && song.contains("letter case"),
        "{song}"
    );
    assert!(plan.failures[0].error.contains("Unicode forms"));
    assert_eq!(kinds(&plan), ["Convert"; 3]);
}

#[test]
fn a_file_where_a_folder_must_be_fails() {
    let plan = World::default().plan(&[
        wanted("x.flac", "1", "t"),
        wanted("X.mp3/y.flac", "2", "t"),
        wanted("z.flac", "3", "t"),
    ]);
    assert_eq!(plan.failures.len(), 1, "{:?}", plan.failures);
    assert_eq!(plan.failures[0].path, "x.flac");
    assert!(
        plan.failures[0]
            .error
            .contains("X.mp3/y.mp3 needs a folder")
    );
    assert_eq!(kinds(&plan), ["Convert"; 2]);
}

#[test]
fn unreadable_sources_keep_their_outputs() {
    let world = synced(&[wanted("A/a.flac", "1", "t"), wanted("B/b.flac", "2", "t")]);
    let unreadable = ["A/a.flac".to_string(), "B".to_string()];
    let plan = plan(
        &[wanted("c.flac", "1", "t")],
        &unreadable,
        &world.manifest,
        &world.staging(),
    );
    assert_eq!(
        kinds(&plan),
        ["Convert"],
        "no move may take an unreadable source's output"
    );
}

#[test]
fn extension_change_relinks_without_touching_the_file() {
    let world = synced(&[wanted("a.wav", "1", "t")]);
    let plan = world.plan(&[wanted("a.flac", "1", "t")]);
    assert!(
        matches!(&plan.actions[..], [Action::Move { old_output, output, .. }] if old_output == output)
    );
    assert_eq!(plan.actions.iter().filter_map(describe).count(), 0);
}

#[test]
fn swapped_names_through_moves_fall_back_to_converts() {
    let world = synced(&[wanted("x.wav", "1", "t"), wanted("y.wav", "2", "t")]);
    // x.wav → y.flac and y.wav → x.flac: each move would land on the other's source.
    let lib = [wanted("y.flac", "1", "t"), wanted("x.flac", "2", "t")];
    let mut world2 = world.clone();
    let plan = world2.plan(&lib);
    world2.execute(&lib, &plan);
    assert_eq!(world2.files["y.mp3"], "1|t");
    assert_eq!(world2.files["x.mp3"], "2|t");
}

#[test]
fn orphans_are_deleted_unless_reused() {
    let mut world = synced(&[wanted("a.flac", "1", "t")]);
    world.manifest.apply(Change::Orphan("old.mp3".into()));
    world.manifest.apply(Change::Orphan("a.mp3".into()));
    world.files.insert("old.mp3".into(), "x".into());
    let plan = world.plan(&[wanted("a.flac", "1", "t")]);
    assert_eq!(
        plan.actions,
        [
            Action::Remove {
                source: None,
                output: "a.mp3".into(),
                delete: false
            },
            Action::Remove {
                source: None,
                output: "old.mp3".into(),
                delete: true
            },
        ]
    );
}

#[test]
fn output_path_keeps_dots_in_folders_and_names() {
    assert_eq!(output_path("A.B/Song.flac"), "A.B/Song.mp3");
    assert_eq!(output_path("A/1. Intro.v2.FLAC"), "A/1. Intro.v2.mp3");
    assert_eq!(output_path("A.B/noext"), "A.B/noext.mp3");
}

#[derive(Clone, Debug)]
enum Edit {
    Add(u8, u8, u8),
    Delete(u8),
    Rename(u8, u8),
    RenameAlbum(u8, u8),
    Retag(u8, u8),
    ReRip(u8, u8),
    DropStaged(u8),
    DamageStaged(u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..12u8, 0..4u8, 0..3u8).prop_map(|(n, a, t)| Edit::Add(n, a, t)),
        (0..12u8).prop_map(Edit::Delete),
        (0..12u8, 0..12u8).prop_map(|(a, b)| Edit::Rename(a, b)),
        (0..3u8, 0..3u8).prop_map(|(a, b)| Edit::RenameAlbum(a, b)),
        (0..12u8, 0..3u8).prop_map(|(n, t)| Edit::Retag(n, t)),
        (0..12u8, 0..4u8).prop_map(|(n, a)| Edit::ReRip(n, a)),
        (0..12u8).prop_map(Edit::DropStaged),
        (0..12u8).prop_map(Edit::DamageStaged),
    ]
}

/// Source n lives in album n % 3 unless an album rename moved it; names never collide.
fn name(n: u8, album: u8) -> String {
    let ext = if n % 4 == 3 { "mp3" } else { "flac" };
    format!("Album{album}/{n:02}.{ext}")
}

fn apply(lib: &mut BTreeMap<u8, (u8, String, String)>, world: &mut World, e: &Edit) {
    let nth = |lib: &BTreeMap<u8, (u8, String, String)>, n: u8| {
        lib.keys().nth(usize::from(n) % lib.len().max(1)).copied()
    };
    match *e {
        Edit::Add(n, a, t) => {
            lib.entry(n)
                .or_insert((n % 3, format!("audio{a}"), format!("tags{t}")));
        }
        Edit::Delete(n) => {
            if let Some(k) = nth(lib, n) {
                lib.remove(&k);
            }
        }
        Edit::Rename(n, to) => {
            if let Some(k) = nth(lib, n)
                && !lib.contains_key(&to)
            {
                let v = lib.remove(&k).unwrap();
                lib.insert(to, v);
            }
        }
        Edit::RenameAlbum(from, to) => lib
            .values_mut()
            .filter(|v| v.0 == from)
            .for_each(|v| v.0 = to + 10),
        Edit::Retag(n, t) => {
            if let Some(k) = nth(lib, n) {
                lib.get_mut(&k).unwrap().2 = format!("tags{t}");
            }
        }
        Edit::ReRip(n, a) => {
            if let Some(k) = nth(lib, n) {
                lib.get_mut(&k).unwrap().1 = format!("audio{a}");
            }
        }
        Edit::DropStaged(n) => {
            if let Some(k) = world
                .files
                .keys()
                .nth(usize::from(n) % world.files.len().max(1))
                .cloned()
                && k != "Album0/playlist.m3u"
            {
                world.files.remove(&k);
            }
        }
        Edit::DamageStaged(n) => {
            if let Some(k) = world
                .files
                .keys()
                .nth(usize::from(n) % world.files.len().max(1))
                .cloned()
                && k != "Album0/playlist.m3u"
            {
                world.files.insert(k, "damaged".into());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// After any history of edits, one plan brings staging exactly to the library, the user's
    /// file survives, no live source's output is ever deleted, and a second plan does nothing.
    #[test]
    fn any_history_converges(history in proptest::collection::vec(proptest::collection::vec(edit(), 1..6), 1..6)) {
        let mut lib: BTreeMap<u8, (u8, String, String)> = BTreeMap::new();
        let mut world = World::default();
        world.files.insert("Album0/playlist.m3u".into(), "user".into());
        for step in &history {
            for e in step {
                apply(&mut lib, &mut world, e);
            }
            let wanted: Vec<Wanted> = lib.iter().map(|(n, (album, a, t))| wanted(&name(*n, *album), a, t)).collect();
            let plan = world.plan(&wanted);
            prop_assert!(plan.failures.is_empty(), "{:?}", plan.failures);
            let live: Vec<String> = wanted.iter().map(|w| output_path(&w.rel)).collect();
            for a in &plan.actions {
                if let Action::Remove { output, delete: true, .. } = a {
                    prop_assert!(!live.contains(output), "deletes live output {output}");
                }
            }
            world.execute(&wanted, &plan);
            prop_assert_eq!(world.files.get("Album0/playlist.m3u").map(String::as_str), Some("user"));
            let mut expected: BTreeMap<String, String> = wanted
                .iter()
                .map(|w| (output_path(&w.rel), format!("{}|{}", w.audio_hash, w.tag_key)))
                .collect();
            expected.insert("Album0/playlist.m3u".into(), "user".into());
            prop_assert_eq!(&world.files, &expected);
            let again = world.plan(&wanted);
            prop_assert!(again.actions.iter().all(|a| matches!(a, Action::Remove { source: None, delete: false, .. })), "{:?}", again.actions);
            prop_assert_eq!(again.unchanged, wanted.len());
        }
    }
}
