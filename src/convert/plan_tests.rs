//! Planner tests: one per case of the convert issue, and two property tests that run random
//! library histories through the planner and a model of the executor: one where every run
//! finishes, and one where steps fail and runs are killed part-way, which must still end as a
//! fresh convert of the same library would.

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
        output: None,
    }
}

/// A model of the staging tree: path → content ("audio|tags"), plus the user's own files.
#[derive(Clone, Debug, Default)]
struct World {
    manifest: Manifest,
    files: BTreeMap<String, String>,
}

impl World {
    /// The recorded outputs not among the files.
    fn missing(&self) -> rustc_hash::FxHashSet<String> {
        (self.manifest.records.values())
            .filter(|r| !self.files.contains_key(&r.output))
            .map(|r| r.output.clone())
            .collect()
    }

    fn staging(&self) -> Staging {
        Staging {
            present: self.files.keys().cloned().collect(),
            missing: self.missing(),
            changed: self
                .manifest
                .records
                .values()
                .filter(|r| {
                    self.files
                        .get(&r.output)
                        .is_some_and(|c| r.output_hash != **c)
                })
                .map(|r| r.output.clone())
                .collect(),
            stale: Default::default(),
        }
    }

    fn plan(&self, lib: &[Wanted]) -> Plan {
        plan(lib, &[], &self.manifest, &self.staging())
    }

    fn put(&mut self, w: &Wanted, output: &str, audio: &Digest, encoder: &str) {
        let content = format!("{audio}|{}", w.tag_key);
        self.files.insert(output.into(), content.clone());
        self.manifest.apply(Change::Put(Record {
            source: w.rel.clone(),
            kind: w.kind,
            stamp: w.stamp,
            audio_hash: audio.clone(),
            tag_hash: w.tag_hash.clone(),
            encoder: encoder.into(),
            tag_key: w.tag_key.clone(),
            output: output.into(),
            output_stamp: Stamp {
                size: 0,
                mtime_ns: 0,
            },
            output_hash: content.into(),
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
            reason: Reason::New,
            copy: false,
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

// Incremental == fresh: a model of the library with stamps and a fingerprint cache, of the
// executor with its journal writes and file steps one by one, so that a step can fail and a run
// can be killed between any two of them. After any history, running until nothing is left to
// do must give the staging a fresh convert of the same library gives.

/// A library file: its audio, its tags, and an mtime every content edit changes. A broken one
/// (an empty `.wav`) reads but never converts.
#[derive(Clone, Debug)]
struct Src {
    audio: String,
    tags: String,
    mtime: i64,
    broken: bool,
}

type Lib = BTreeMap<String, Src>;

fn stamp_of(s: &Src) -> Stamp {
    Stamp {
        size: (s.audio.len() + s.tags.len()) as u64,
        mtime_ns: s.mtime,
    }
}

fn kind_of(rel: &str) -> SourceKind {
    if rel.ends_with(".mp3") {
        SourceKind::Mp3
    } else if rel.ends_with(".jpg") || rel.ends_with(".png") {
        SourceKind::Cover
    } else {
        SourceKind::Lossless
    }
}

/// The folder cover a library image becomes, as `convert::cover_output` names it: a PNG kept as
/// it is (here: one with the facts `tags0`) is `cover.png`, any other image `cover.jpg`.
fn cover_of(rel: &str, facts: &str) -> String {
    let (dir, _) = rel.rsplit_once('/').unwrap();
    let png = rel.ends_with(".png") && facts == "tags0";
    format!("{dir}/cover.{}", if png { "png" } else { "jpg" })
}

/// What `facts::fingerprint` gives: the record's hashes while the stamp is unchanged, else the
/// file's own.
fn fingerprinted(lib: &Lib, manifest: &Manifest) -> Vec<Wanted> {
    // As `facts::folder_covers`: one image per folder (the scan keeps the first), and only in a
    // folder with a track.
    let mut covered = BTreeSet::new();
    let tracks: BTreeSet<&str> = (lib.keys())
        .filter(|rel| kind_of(rel) != SourceKind::Cover)
        .filter_map(|rel| rel.rsplit_once('/').map(|(dir, _)| dir))
        .collect();
    lib.iter()
        .filter(|(rel, _)| {
            kind_of(rel) != SourceKind::Cover || {
                let dir = rel.rsplit_once('/').unwrap().0;
                tracks.contains(dir) && covered.insert(dir.to_string())
            }
        })
        .map(|(rel, s)| {
            let (stamp, kind) = (stamp_of(s), kind_of(rel));
            let (audio, tags) = match manifest.records.get(rel) {
                Some(r) if r.stamp == stamp && r.kind == kind => {
                    (r.audio_hash.clone(), r.tag_hash.clone())
                }
                _ => (s.audio.as_str().into(), s.tags.as_str().into()),
            };
            Wanted {
                rel: rel.clone(),
                kind,
                stamp,
                audio_hash: audio,
                tag_hash: tags.clone(),
                tag_key: tags.clone(),
                encoder: match kind {
                    SourceKind::Mp3 => "copy",
                    SourceKind::Cover => "cover; max 1200",
                    SourceKind::Lossless => "V2",
                }
                .into(),
                own_genre: vec![],
                genre: vec![],
                output: (kind == SourceKind::Cover).then(|| cover_of(rel, &tags.to_string())),
            }
        })
        .collect()
}

/// A run's faults: the actions (by index in the plan) whose fallible step fails, and how many
/// steps (journal writes and file operations) it gets before it is killed.
#[derive(Clone, Debug, Default)]
struct Faults {
    failing: u32,
    kill_after: Option<usize>,
}

struct Killed;

/// One journal write or file operation, unless the run is killed first.
fn step(steps: &mut usize) -> Result<(), Killed> {
    if *steps == 0 {
        return Err(Killed);
    }
    *steps -= 1;
    Ok(())
}

impl World {
    /// The staging state `facts::staging_state` reports, from the files' contents.
    fn observed(&self) -> Staging {
        let mut staging = Staging {
            present: self.files.keys().cloned().collect(),
            missing: self.missing(),
            ..Staging::default()
        };
        for r in self.manifest.records.values() {
            match self.files.get(&r.output) {
                Some(c) if r.output_hash == **c => {}
                Some(c) if r.retag_from.as_ref().is_some_and(|h| *h == **c) => {
                    staging.stale.insert(r.output.clone());
                }
                Some(_) => {
                    staging.changed.insert(r.output.clone());
                }
                None => {}
            }
        }
        staging
    }

    /// One `musync convert`: fingerprint, plan, execute with `faults`. Returns the plan.
    fn run(&mut self, lib: &Lib, faults: &Faults) -> Plan {
        let wanted = fingerprinted(lib, &self.manifest);
        let plan = plan(&wanted, &[], &self.manifest, &self.observed());
        let by_rel: BTreeMap<&str, &Wanted> = wanted.iter().map(|w| (w.rel.as_str(), w)).collect();
        let mut steps = faults.kill_after.unwrap_or(usize::MAX);
        let (serial, parallel): (Vec<_>, Vec<_>) =
            plan.actions.iter().enumerate().partition(|(_, a)| {
                matches!(
                    a,
                    Action::Move { .. } | Action::Remove { .. } | Action::Refresh { .. }
                )
            });
        for (i, action) in serial.into_iter().chain(parallel) {
            let fails = i < 32 && faults.failing & (1 << i) != 0;
            if self.act(lib, &by_rel, action, fails, &mut steps).is_err() {
                break;
            }
        }
        plan
    }

    /// One action as the executor does it; `Ok(false)` when it failed (the run goes on).
    fn act(
        &mut self,
        lib: &Lib,
        by_rel: &BTreeMap<&str, &Wanted>,
        action: &Action,
        fails: bool,
        steps: &mut usize,
    ) -> Result<bool, Killed> {
        match action {
            Action::Convert { source, output, .. } => {
                let w = by_rel[source.as_str()];
                let src = &lib[source];
                let ours = self
                    .manifest
                    .records
                    .get(source)
                    .is_some_and(|r| r.output == *output)
                    || self.manifest.owns(output);
                if fails || src.broken || (self.files.contains_key(output) && !ours) {
                    return Ok(false);
                }
                let content = format!("{}|{}", w.audio_hash, src.tags);
                let left = (self.manifest.records.get(source))
                    .filter(|r| r.output != *output && self.files.contains_key(&r.output))
                    .map(|r| r.output.clone());
                step(steps)?;
                self.manifest
                    .apply(Change::Put(model_record(w, &src.tags, output, &content)));
                if let Some(left) = left {
                    self.manifest.apply(Change::Orphan(left));
                }
                step(steps)?;
                self.files.insert(output.clone(), content);
            }
            Action::Retag { source, output } => {
                return self.retag(lib, by_rel[source.as_str()], output, fails, steps);
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
                let record = Record {
                    source: source.clone(),
                    kind: w.kind,
                    stamp: w.stamp,
                    tag_hash: w.tag_hash.clone(),
                    output: output.clone(),
                    ..old
                };
                let mut changes = vec![Change::Remove(old_source.clone()), Change::Put(record)];
                if old_output != output {
                    changes.push(Change::Orphan(old_output.clone()));
                }
                step(steps)?;
                changes.into_iter().for_each(|c| self.manifest.apply(c));
                if old_output != output {
                    if fails && !retag {
                        return Ok(false);
                    }
                    step(steps)?;
                    let content = self.files.remove(old_output).expect("planned from staging");
                    self.files.insert(output.clone(), content);
                    step(steps)?;
                    self.manifest.apply(Change::Forget(old_output.clone()));
                }
                if *retag {
                    return self.retag(lib, w, output, fails, steps);
                }
            }
            Action::Remove {
                source,
                output,
                delete,
            } => {
                if *delete {
                    if fails {
                        return Ok(false);
                    }
                    step(steps)?;
                    self.files.remove(output);
                }
                let present = self.files.contains_key(output);
                let recorded = self.manifest.records.values().any(|r| r.output == *output);
                step(steps)?;
                match source {
                    Some(s) => {
                        self.manifest.apply(Change::Remove(s.clone()));
                        if !delete && present {
                            self.manifest.apply(Change::Orphan(output.clone()));
                        }
                    }
                    None if !delete && present && !recorded => {}
                    None => self.manifest.apply(Change::Forget(output.clone())),
                }
            }
            Action::Refresh { source } => {
                let mut r = self.manifest.records[source].clone();
                r.stamp = by_rel[source.as_str()].stamp;
                step(steps)?;
                self.manifest.apply(Change::Put(r));
            }
        }
        Ok(true)
    }

    /// `files::retag`: the staged audio, the source's tags as they are now.
    fn retag(
        &mut self,
        lib: &Lib,
        w: &Wanted,
        output: &str,
        fails: bool,
        steps: &mut usize,
    ) -> Result<bool, Killed> {
        if fails {
            return Ok(false);
        }
        let old = self.manifest.records[&w.rel].clone();
        let tags = &lib[&w.rel].tags;
        let content = format!("{}|{tags}", old.audio_hash);
        let mut record = model_record(w, tags, output, &content);
        (record.audio_hash, record.encoder) = (old.audio_hash, old.encoder);
        record.retag_from = Some(old.output_hash);
        step(steps)?;
        self.manifest.apply(Change::Put(record));
        step(steps)?;
        self.files.insert(output.to_string(), content);
        Ok(true)
    }

    /// Run without faults until only what always fails is left; `None` if that never happens.
    fn converge(&mut self, lib: &Lib) -> Option<usize> {
        for runs in 1..=6 {
            let plan = self.run(lib, &Faults::default());
            let idle = plan
                .actions
                .iter()
                .all(|a| matches!(a, Action::Convert { source, .. } if lib[source].broken));
            if idle {
                return Some(runs);
            }
        }
        None
    }
}

fn model_record(w: &Wanted, tags: &str, output: &str, content: &str) -> Record {
    Record {
        source: w.rel.clone(),
        kind: w.kind,
        stamp: w.stamp,
        audio_hash: w.audio_hash.clone(),
        tag_hash: tags.into(),
        encoder: w.encoder.clone(),
        tag_key: tags.into(),
        output: output.into(),
        output_stamp: Stamp {
            size: 0,
            mtime_ns: 0,
        },
        output_hash: content.into(),
        retag_from: None,
        own_genre: vec![],
        genre: vec![],
    }
}

const USER_FILE: &str = "Album0/playlist.m3u";

fn src(audio: &str, tags: &str, mtime: i64) -> Src {
    Src {
        audio: audio.into(),
        tags: tags.into(),
        mtime,
        broken: false,
    }
}

/// A world with the user's own file in staging.
fn with_user_file() -> World {
    let mut world = World::default();
    world.files.insert(USER_FILE.into(), "user".into());
    world
}

/// What a fresh convert of `lib` gives.
fn fresh(lib: &Lib) -> World {
    let mut world = with_user_file();
    assert!(world.converge(lib).is_some_and(|runs| runs <= 2));
    world
}

/// Output → content, and source → output of each record.
fn mirror(world: &World) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let records = world
        .manifest
        .records
        .values()
        .map(|r| (r.source.clone(), r.output.clone()))
        .collect();
    (world.files.clone(), records)
}

// Regression: a rename whose retag failed (or was killed) recorded the new source's stamp with
// the old tag key, so every later run called the stale tags clean.
#[test]
fn a_rename_whose_retag_failed_or_was_killed_is_retagged_later() {
    for faults in [
        Faults {
            failing: 1,
            kill_after: None,
        },
        Faults {
            failing: 0,
            kill_after: Some(3),
        },
    ] {
        let mut lib = Lib::from([("Album0/01.flac".to_string(), src("a", "t0", 1))]);
        let mut world = with_user_file();
        world.converge(&lib).unwrap();
        lib.clear();
        lib.insert("Album1/01.flac".into(), src("a", "t1", 2));
        let plan = world.run(&lib, &faults);
        assert!(
            matches!(plan.actions[..], [Action::Move { retag: true, .. }]),
            "{:?}",
            plan.actions
        );
        world.converge(&lib).unwrap();
        assert_eq!(world.files["Album1/01.mp3"], "a|t1", "{faults:?}");
        assert_eq!(mirror(&world), mirror(&fresh(&lib)));
    }
}

// Regression: a deleted source's MP3, whose name a file that fails to convert took, became "not
// made by musync" and blocked the source's return on every run.
#[test]
fn a_stale_mp3_claimed_by_a_broken_file_stays_musyncs() {
    let good = src("b", "t", 1);
    let mut lib = Lib::from([
        ("Album0/01.flac".to_string(), src("a", "t", 1)),
        ("Album0/02.flac".to_string(), good.clone()),
    ]);
    let mut world = with_user_file();
    world.converge(&lib).unwrap();
    lib.remove("Album0/02.flac");
    let broken = Src {
        broken: true,
        ..src("none", "", 2)
    };
    lib.insert("Album0/02.wav".into(), broken);
    world.converge(&lib).unwrap();
    assert_eq!(mirror(&world), mirror(&fresh(&lib)));
    lib.insert("Album0/02.flac".into(), good);
    let plan = world.run(&lib, &Faults::default());
    assert_eq!(plan.failures.len(), 1, "{:?}", plan.failures);
    assert_eq!(plan.failures[0].path, "Album0/02.wav");
    assert_eq!(world.files["Album0/02.mp3"], "b|t");
}

// Regression: `Song.mp3` mirrored first kept its name when `Song.flac` came beside it, where a
// fresh convert gives the name to the FLAC.
#[test]
fn the_flac_gets_the_name_whatever_was_mirrored_first() {
    let mut lib = Lib::from([("Song.mp3".to_string(), src("m", "t", 1))]);
    let mut world = with_user_file();
    world.converge(&lib).unwrap();
    lib.insert("Song.flac".into(), src("f", "t", 2));
    let plan = world.run(&lib, &Faults::default());
    assert_eq!(plan.failures.len(), 1);
    assert_eq!(plan.failures[0].path, "Song.mp3");
    world.converge(&lib).unwrap();
    assert_eq!(world.files["Song.mp3"], "f|t");
    assert_eq!(mirror(&world), mirror(&fresh(&lib)));
}

#[derive(Clone, Debug)]
enum LibEdit {
    Add(u8, u8, u8, u8, u8),
    AddBroken(u8, u8),
    Delete(u8),
    Rename(u8, u8),
    RenameAlbum(u8, u8),
    Retag(u8, u8),
    ReRip(u8, u8),
    Touch(u8),
    DropStaged(u8),
    DamageStaged(u8),
}

fn lib_edit() -> impl Strategy<Value = LibEdit> {
    prop_oneof![
        3 => (0..8u8, 0..3u8, 0..5u8, 0..4u8, 0..3u8)
            .prop_map(|(n, album, ext, a, t)| LibEdit::Add(n, album, ext, a, t)),
        1 => (0..8u8, 0..3u8).prop_map(|(n, album)| LibEdit::AddBroken(n, album)),
        1 => (0..16u8).prop_map(LibEdit::Delete),
        1 => (0..16u8, 0..8u8).prop_map(|(i, n)| LibEdit::Rename(i, n)),
        1 => (0..3u8, 0..3u8).prop_map(|(a, b)| LibEdit::RenameAlbum(a, b)),
        2 => (0..16u8, 0..3u8).prop_map(|(i, t)| LibEdit::Retag(i, t)),
        1 => (0..16u8, 0..4u8).prop_map(|(i, a)| LibEdit::ReRip(i, a)),
        1 => (0..16u8).prop_map(LibEdit::Touch),
        1 => (0..16u8).prop_map(LibEdit::DropStaged),
        1 => (0..16u8).prop_map(LibEdit::DamageStaged),
    ]
}

/// Apply one edit; `clock` gives every changed file a new mtime, as a real edit does.
fn edit_lib(lib: &mut Lib, world: &mut World, clock: &mut i64, e: &LibEdit) {
    const EXTS: [&str; 5] = ["flac", "mp3", "wav", "jpg", "png"];
    *clock += 1;
    let now = *clock;
    let before = lib.clone();
    let nth = |lib: &Lib, i: u8| lib.keys().nth(usize::from(i) % lib.len().max(1)).cloned();
    let staged = |world: &World, i: u8| {
        world
            .files
            .keys()
            .filter(|k| *k != USER_FILE)
            .nth(usize::from(i) % world.files.len().max(1))
            .cloned()
    };
    match *e {
        LibEdit::Add(n, album, ext, a, t) => {
            let rel = format!("Album{album}/{n:02}.{}", EXTS[usize::from(ext)]);
            lib.entry(rel)
                .or_insert_with(|| src(&format!("audio{a}"), &format!("tags{t}"), now));
        }
        LibEdit::AddBroken(n, album) => {
            lib.entry(format!("Album{album}/{n:02}.wav"))
                .or_insert_with(|| Src {
                    broken: true,
                    ..src("none", "", now)
                });
        }
        LibEdit::Delete(i) => {
            if let Some(k) = nth(lib, i) {
                lib.remove(&k);
            }
        }
        LibEdit::Rename(i, n) => {
            if let Some(k) = nth(lib, i) {
                let (dir, file) = k.rsplit_once('/').unwrap();
                let ext = file.rsplit_once('.').unwrap().1;
                let to = format!("{dir}/{n:02}.{ext}");
                if !lib.contains_key(&to) {
                    let v = lib.remove(&k).unwrap();
                    lib.insert(to, v);
                }
            }
        }
        LibEdit::RenameAlbum(a, b) => {
            let from = format!("Album{a}/");
            let moving: Vec<String> = lib
                .keys()
                .filter(|k| k.starts_with(&from))
                .cloned()
                .collect();
            for k in moving {
                let to = format!("Album{b}/{}", &k[from.len()..]);
                if !lib.contains_key(&to) {
                    let v = lib.remove(&k).unwrap();
                    lib.insert(to, v);
                }
            }
        }
        LibEdit::Retag(i, t) => {
            if let Some(k) = nth(lib, i) {
                let s = lib.get_mut(&k).unwrap();
                if !s.broken {
                    (s.tags, s.mtime) = (format!("tags{t}"), now);
                }
            }
        }
        LibEdit::ReRip(i, a) => {
            if let Some(k) = nth(lib, i) {
                let s = lib.get_mut(&k).unwrap();
                *s = src(&format!("audio{a}"), &s.tags.clone(), now);
            }
        }
        LibEdit::Touch(i) => {
            if let Some(k) = nth(lib, i) {
                lib.get_mut(&k).unwrap().mtime = now;
            }
        }
        LibEdit::DropStaged(i) => {
            if let Some(k) = staged(world, i) {
                world.files.remove(&k);
            }
        }
        LibEdit::DamageStaged(i) => {
            if let Some(k) = staged(world, i) {
                world.files.insert(k, "damaged".into());
            }
        }
    }
    // A source that is still there but fails keeps its last good MP3 (failing is never a reason
    // to delete), where a fresh convert has none: so a broken file may only appear at a path
    // musync holds no record of.
    if lib
        .iter()
        .any(|(rel, s)| s.broken && world.manifest.records.contains_key(rel))
    {
        *lib = before;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// After any history of edits and runs in which steps fail and runs are killed, running
    /// until nothing is left to do gives the files and records of a fresh convert, and the
    /// user's file survives.
    #[test]
    fn incremental_runs_with_failures_and_kills_end_as_a_fresh_convert(
        history in proptest::collection::vec(
            (
                proptest::collection::vec(lib_edit(), 1..5),
                (any::<u32>(), any::<u32>()).prop_map(|(a, b)| a & b),
                proptest::option::of(0..24usize),
            ),
            1..7,
        )
    ) {
        let mut lib = Lib::new();
        let mut world = with_user_file();
        let mut clock = 0;
        for (edits, failing, kill_after) in &history {
            for e in edits {
                edit_lib(&mut lib, &mut world, &mut clock, e);
            }
            world.run(&lib, &Faults { failing: *failing, kill_after: *kill_after });
        }
        let runs = world.converge(&lib);
        prop_assert!(runs.is_some(), "never converged: {:?}", world.run(&lib, &Faults::default()).actions);
        prop_assert_eq!(mirror(&world), mirror(&fresh(&lib)));
        prop_assert!(world.manifest.orphans.is_empty(), "{:?}", world.manifest.orphans);
    }
}

// Regression: a native MP3 was planned and counted as a conversion.
#[test]
fn native_mp3_is_a_copy_with_its_own_count() {
    let plan = plan(
        &[wanted("a.flac", "1", "t"), wanted("b.mp3", "2", "t")],
        &[],
        &Manifest::default(),
        &Staging::default(),
    );
    let lines: Vec<String> = plan.actions.iter().filter_map(describe).collect();
    assert_eq!(
        lines,
        [
            "convert a.flac -> a.mp3 (new)",
            "copy    b.mp3 -> b.mp3 (new)"
        ]
    );
    let mut counts = Counts::default();
    plan.actions.iter().for_each(|a| counts.add(a));
    assert_eq!((counts.converted, counts.copied), (1, 1));
}

fn cover(rel: &str, image: &str, output: &str) -> Wanted {
    Wanted {
        kind: SourceKind::Cover,
        encoder: "cover; max 1200".into(),
        tag_key: Digest::default(),
        output: Some(output.into()),
        ..wanted(rel, image, "")
    }
}

#[test]
fn a_folder_cover_is_planned_counted_apart_and_moves_with_its_album() {
    let lib = [
        wanted("A/CD1/1.flac", "1", "t"),
        cover("A/cover.png", "img", "A/cover.jpg"),
    ];
    let plan = World::default().plan(&lib);
    let lines: Vec<String> = plan.actions.iter().filter_map(describe).collect();
    assert!(
        lines.contains(&"cover   A/cover.png -> A/cover.jpg".to_string()),
        "{lines:?}"
    );
    let mut counts = Counts::default();
    plan.actions.iter().for_each(|a| counts.add(a));
    assert_eq!((counts.converted, counts.covers), (1, 1));

    let world = synced(&lib);
    let moved = [
        wanted("B/CD1/1.flac", "1", "t"),
        cover("B/cover.png", "img", "B/cover.jpg"),
    ];
    let plan = world.plan(&moved);
    assert_eq!(kinds(&plan), ["Move", "Move"]);
    assert_eq!(plan.unchanged, 0);
    // Unchanged, it is no track: the figures count tracks only.
    assert_eq!(world.plan(&lib).unchanged, 1);
}

#[test]
fn a_folder_cover_whose_name_changes_is_made_again_and_the_old_file_goes() {
    let world = synced(&[
        wanted("A/1.flac", "1", "t"),
        cover("A/cover.png", "img", "A/cover.jpg"),
    ]);
    let plan = world.plan(&[
        wanted("A/1.flac", "1", "t"),
        cover("A/cover.png", "img", "A/cover.png"),
    ]);
    assert_eq!(
        plan.actions,
        [
            Action::Remove {
                source: None,
                output: "A/cover.jpg".into(),
                delete: true,
            },
            Action::Convert {
                source: "A/cover.png".into(),
                output: "A/cover.png".into(),
                reason: Reason::SettingsChanged,
                copy: false,
            },
        ]
    );
}
