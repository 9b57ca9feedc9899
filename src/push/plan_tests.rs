//! Push planner tests: the cases by name, then a property test that runs random histories of
//! library edits and server drift through the planner and a model of the remote.

use proptest::prelude::*;

use super::*;

fn local(size: u64, hash: &str) -> Local {
    Local {
        size,
        hash: hash.into(),
    }
}

/// The remote as a model: path → (size, hash); plus the backups and the push state.
#[derive(Clone, Debug, Default)]
struct World {
    remote: BTreeMap<String, (u64, String)>,
    backups: Vec<(String, (u64, String))>,
    pushed: BTreeMap<String, Pushed>,
    pending: BTreeMap<String, Pushed>,
}

impl World {
    fn plan(&self, mirror: &BTreeMap<String, Local>, opts: Options) -> Plan {
        let listing = self
            .remote
            .iter()
            .map(|(p, (s, _))| (p.clone(), *s))
            .collect();
        plan(mirror, &listing, &self.pushed, &self.pending, opts)
    }

    /// Carry out a plan as the executor does, state included.
    fn execute(&mut self, mirror: &BTreeMap<String, Local>, plan: &Plan) {
        for p in &plan.backups {
            let file = self.remote.remove(p).expect("backed-up file exists");
            self.backups.push((p.clone(), file));
            self.pushed.remove(p);
            self.pending.remove(p);
        }
        for (from, to) in &plan.moves {
            let file = self.remote.remove(from).expect("moved file exists");
            self.remote.insert(to.clone(), file);
            let state = self.pushed.remove(from).expect("moved file was pushed");
            self.pending.remove(to);
            self.pushed.insert(to.clone(), state);
        }
        for p in plan.uploads.iter().chain(&plan.adopted) {
            let l = &mirror[p];
            self.remote.insert(p.clone(), (l.size, l.hash.clone()));
            self.pending.remove(p);
            self.pushed.insert(
                p.clone(),
                Pushed {
                    size: l.size,
                    hash: l.hash.clone(),
                },
            );
        }
        for p in plan.deletes.iter().chain(&plan.forgotten) {
            self.remote.remove(p);
            self.pushed.remove(p);
            self.pending.remove(p);
        }
    }
}

const BACKUP: Options = Options {
    backup: true,
    delete_foreign: false,
    case_insensitive: false,
};

fn mirror(files: &[(&str, u64, &str)]) -> BTreeMap<String, Local> {
    files
        .iter()
        .map(|(p, s, h)| ((*p).to_string(), local(*s, h)))
        .collect()
}

fn pushed(files: &[(&str, u64, &str)]) -> World {
    let mut w = World::default();
    let m = mirror(files);
    let p = w.plan(&m, BACKUP);
    w.execute(&m, &p);
    w
}

#[test]
fn first_push_uploads_everything() {
    let p = World::default().plan(&mirror(&[("a.mp3", 10, "a"), ("b.mp3", 5, "b")]), BACKUP);
    assert_eq!(p.uploads, ["a.mp3", "b.mp3"]);
    assert_eq!(p.bytes, 15);
}

#[test]
fn unchanged_remote_plans_nothing() {
    let files = [("a.mp3", 10, "a")];
    let p = pushed(&files).plan(&mirror(&files), BACKUP);
    assert!(p.is_empty());
    assert_eq!(p.unchanged, 1);
}

#[test]
fn renamed_album_is_moved_server_side() {
    let w = pushed(&[("Old/1.mp3", 10, "a"), ("Old/2.mp3", 11, "b")]);
    let p = w.plan(
        &mirror(&[("New/1.mp3", 10, "a"), ("New/2.mp3", 11, "b")]),
        BACKUP,
    );
    assert_eq!(
        p.moves,
        [
            ("Old/1.mp3".into(), "New/1.mp3".into()),
            ("Old/2.mp3".into(), "New/2.mp3".into())
        ]
    );
    assert!(p.uploads.is_empty() && p.removed.is_empty());
}

#[test]
fn retag_of_the_same_size_is_uploaded_with_a_backup() {
    let w = pushed(&[("a.mp3", 10, "a")]);
    let p = w.plan(&mirror(&[("a.mp3", 10, "a2")]), BACKUP);
    assert_eq!(
        (p.backups.clone(), p.uploads.clone()),
        (vec!["a.mp3".into()], vec!["a.mp3".into()])
    );
    assert!(p.restored.is_empty());
}

#[test]
fn foreign_files_are_left_alone_unless_asked() {
    let mut w = pushed(&[("a.mp3", 10, "a")]);
    w.remote.insert("playlist.m3u".into(), (3, "x".into()));
    let p = w.plan(&mirror(&[("a.mp3", 10, "a")]), BACKUP);
    assert!(p.is_empty());
    let p = w.plan(
        &mirror(&[("a.mp3", 10, "a")]),
        Options {
            backup: false,
            delete_foreign: true,
            case_insensitive: false,
        },
    );
    assert_eq!(p.deletes, ["playlist.m3u"]);
}

#[test]
fn removed_source_is_backed_up_or_deleted() {
    let w = pushed(&[("a.mp3", 10, "a"), ("b.mp3", 5, "b")]);
    let m = mirror(&[("b.mp3", 5, "b")]);
    assert_eq!(w.plan(&m, BACKUP).backups, ["a.mp3"]);
    let p = w.plan(
        &m,
        Options {
            backup: false,
            delete_foreign: false,
            case_insensitive: false,
        },
    );
    assert_eq!(
        (p.deletes.clone(), p.removed.clone()),
        (vec!["a.mp3".into()], vec!["a.mp3".into()])
    );
}

#[test]
fn drift_on_the_server_is_restored() {
    let mut w = pushed(&[("a.mp3", 10, "a"), ("b.mp3", 5, "b")]);
    w.remote.remove("a.mp3");
    w.remote.insert("b.mp3".into(), (3, "truncated".into()));
    let p = w.plan(&mirror(&[("a.mp3", 10, "a"), ("b.mp3", 5, "b")]), BACKUP);
    assert_eq!(p.restored, ["a.mp3", "b.mp3"]);
    assert_eq!(p.uploads, ["a.mp3", "b.mp3"]);
}

#[test]
fn a_complete_upload_missing_from_the_state_is_adopted() {
    let mut w = World::default();
    w.remote.insert("a.mp3".into(), (10, "a".into()));
    let p = w.plan(&mirror(&[("a.mp3", 10, "a")]), BACKUP);
    assert_eq!(p.adopted, ["a.mp3"]);
    assert!(p.uploads.is_empty());
}

/// Regression: a file an interrupted upload left on the remote was adopted by its size alone,
/// though the staged file had been retagged since (same size, new tags): the remote kept the
/// old tags for good.
#[test]
fn a_pending_upload_is_adopted_only_with_the_staged_content() {
    let mut w = World::default();
    w.remote.insert("a.mp3".into(), (10, "a1".into()));
    w.pending.insert(
        "a.mp3".into(),
        Pushed {
            size: 10,
            hash: "a1".into(),
        },
    );
    assert_eq!(
        w.plan(&mirror(&[("a.mp3", 10, "a1")]), BACKUP).adopted,
        ["a.mp3"]
    );
    let p = w.plan(&mirror(&[("a.mp3", 10, "a2")]), BACKUP);
    assert!(p.adopted.is_empty());
    assert_eq!(
        (p.backups, p.uploads),
        (vec!["a.mp3".into()], vec!["a.mp3".into()])
    );
    assert!(p.restored.is_empty(), "nobody changed the server");
}

/// An upload over a file musync pushed (without backups) that never reported back: a file of
/// the old size may be the old one still, so only a size of the new one is adopted.
#[test]
fn a_pending_overwrite_is_adopted_only_when_the_size_tells() {
    let mut w = pushed(&[("a.mp3", 10, "a1")]);
    w.pending.insert(
        "a.mp3".into(),
        Pushed {
            size: 10,
            hash: "a2".into(),
        },
    );
    let p = w.plan(&mirror(&[("a.mp3", 10, "a2")]), BACKUP);
    assert_eq!((p.adopted.len(), p.uploads.len(), p.unchanged), (0, 1, 0));
    w.pending.get_mut("a.mp3").unwrap().size = 12;
    w.remote.insert("a.mp3".into(), (12, "a2".into()));
    assert_eq!(
        w.plan(&mirror(&[("a.mp3", 12, "a2")]), BACKUP).adopted,
        ["a.mp3"]
    );
}

/// Regression: files an interrupted upload left under an album's old name stayed on the
/// remote for good once the album was renamed: musync did not know they were its own.
#[test]
fn a_pending_file_no_longer_wanted_is_removed_and_one_that_never_landed_forgotten() {
    let mut w = World::default();
    w.remote.insert("Old/1.mp3".into(), (4, "partial".into()));
    for path in ["Old/1.mp3", "Old/2.mp3"] {
        let file = Pushed {
            size: 10,
            hash: "x".into(),
        };
        w.pending.insert(path.into(), file);
    }
    let p = w.plan(&mirror(&[("New/1.mp3", 10, "x")]), BACKUP);
    assert_eq!(p.backups, ["Old/1.mp3"]);
    assert_eq!(p.removed, ["Old/1.mp3"]);
    assert_eq!(p.forgotten, ["Old/2.mp3"]);
    assert_eq!(p.uploads, ["New/1.mp3"]);
    assert!(
        p.moves.is_empty(),
        "a pending file's content is not known: it is not moved"
    );
}

#[test]
fn delete_caps() {
    assert!(DeleteCap::Percent(50).allows(5, 10));
    assert!(!DeleteCap::Percent(50).allows(6, 10));
    assert!(DeleteCap::Count(3).allows(3, 1000) && !DeleteCap::Count(3).allows(4, 1000));
    assert_eq!("25%".parse(), Ok(DeleteCap::Percent(25)));
    assert_eq!("7".parse(), Ok(DeleteCap::Count(7)));
    assert!("150%".parse::<DeleteCap>().is_err() && "x".parse::<DeleteCap>().is_err());
}

#[test]
fn moves_are_grouped_by_folder_rename() {
    let moves = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect()
    };
    let folder = |from: &str, to: &str, files: &[&str]| MoveStep::Folder {
        from_dir: from.into(),
        to_dir: to.into(),
        files: files.iter().map(|f| (*f).into()).collect(),
        prune: false,
    };
    let file = |from: &str, to: &str| MoveStep::File {
        from: from.into(),
        to: to.into(),
    };
    // A genre renamed: one step for all its albums.
    let genre = moves(&[
        ("Jazz/A/B/1.mp3", "Blues/A/B/1.mp3"),
        ("Jazz/C/D/2.mp3", "Blues/C/D/2.mp3"),
    ]);
    assert_eq!(
        move_steps(&genre, false, "t"),
        [folder("Jazz", "Blues", &["A/B/1.mp3", "C/D/2.mp3"])]
    );
    // An album renamed, a file renamed, folders that nest, a move to or from the root.
    let mixed = moves(&[
        ("G/Album/1.mp3", "G/Album (Live)/1.mp3"),
        ("G/Album/2.mp3", "G/Album (Live)/2.mp3"),
        ("G/X/old.mp3", "G/X/new.mp3"),
        ("G/A/1.mp3", "G/A/CD1/1.mp3"),
        ("top.mp3", "G/top.mp3"),
    ]);
    assert_eq!(
        move_steps(&mixed, false, "t"),
        [
            folder("G/Album", "G/Album (Live)", &["1.mp3", "2.mp3"]),
            file("G/X/old.mp3", "G/X/new.mp3"),
            file("G/A/1.mp3", "G/A/CD1/1.mp3"),
            file("top.mp3", "G/top.mp3"),
        ]
    );
}

#[derive(Clone, Debug)]
enum Edit {
    Add(u8, u8),
    Delete(u8),
    Rename(u8, u8),
    RenameAlbum(u8),
    Retag(u8),
    ReRip(u8, u8),
    ServerDelete(u8),
    ServerDamage(u8),
    Foreign(u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..16u8, 1..5u8).prop_map(|(n, s)| Edit::Add(n, s)),
        (0..16u8).prop_map(Edit::Delete),
        (0..16u8, 0..16u8).prop_map(|(a, b)| Edit::Rename(a, b)),
        (0..3u8).prop_map(Edit::RenameAlbum),
        (0..16u8).prop_map(Edit::Retag),
        (0..16u8, 1..5u8).prop_map(|(n, s)| Edit::ReRip(n, s)),
        (0..16u8).prop_map(Edit::ServerDelete),
        (0..16u8).prop_map(Edit::ServerDamage),
        (0..16u8).prop_map(Edit::Foreign),
    ]
}

/// The library's derived MP3s: path → (size, hash). Track n sits in album n % 3 until renamed.
type Library = BTreeMap<u8, (String, u64, String)>;

fn apply(lib: &mut Library, world: &mut World, e: &Edit, tick: &mut u32) {
    *tick += 1;
    let nth = |lib: &Library, n: u8| lib.keys().nth(usize::from(n) % lib.len().max(1)).copied();
    match *e {
        Edit::Add(n, s) => {
            lib.entry(n)
                .or_insert((format!("Album{}", n % 3), u64::from(s), format!("h{tick}")));
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
        Edit::RenameAlbum(a) => lib
            .values_mut()
            .filter(|v| v.0 == format!("Album{a}"))
            .for_each(|v| v.0 = format!("Album{a} (Remaster {tick})")),
        Edit::Retag(n) => {
            if let Some(k) = nth(lib, n) {
                lib.get_mut(&k).unwrap().2 = format!("h{tick}");
            }
        }
        Edit::ReRip(n, s) => {
            if let Some(k) = nth(lib, n) {
                let v = lib.get_mut(&k).unwrap();
                (v.1, v.2) = (u64::from(s) + 10, format!("h{tick}"));
            }
        }
        Edit::ServerDelete(n) | Edit::ServerDamage(n) => {
            let key = world
                .remote
                .keys()
                .filter(|k| !k.starts_with("foreign"))
                .nth(usize::from(n))
                .cloned();
            if let Some(k) = key {
                if matches!(e, Edit::ServerDelete(_)) {
                    world.remote.remove(&k);
                } else {
                    world.remote.insert(k, (99, "damaged".into()));
                }
            }
        }
        Edit::Foreign(n) => {
            world
                .remote
                .insert(format!("foreign/{n}.m3u"), (1, format!("f{n}")));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// After any history, one push makes the remote equal the mirror plus the foreign files,
    /// deletes nothing of the mirror, loses nothing (every removed file is in the backups), and
    /// a second push does nothing.
    #[test]
    fn any_history_converges(history in proptest::collection::vec(proptest::collection::vec(edit(), 1..6), 1..6)) {
        let mut lib = Library::new();
        let mut world = World::default();
        let mut tick = 0;
        for step in &history {
            for e in step {
                apply(&mut lib, &mut world, e, &mut tick);
            }
            let mirror: BTreeMap<String, Local> = lib
                .iter()
                .map(|(n, (album, size, hash))| (format!("{album}/{n:02}.mp3"), local(*size, hash)))
                .collect();
            let before = world.remote.clone();
            let foreign: BTreeMap<_, _> = before.iter().filter(|(k, _)| k.starts_with("foreign/")).map(|(k, v)| (k.clone(), v.clone())).collect();
            let plan = world.plan(&mirror, BACKUP);
            // The grouped move steps are exactly the planned moves.
            let mut expanded: Vec<(String, String)> = move_steps(&plan.moves, false, "t")
                .into_iter()
                .flat_map(|step| match step {
                    MoveStep::Folder { from_dir, to_dir, files, .. } => {
                        files.iter().map(|f| (format!("{from_dir}/{f}"), format!("{to_dir}/{f}"))).collect()
                    }
                    MoveStep::File { from, to } => vec![(from, to)],
                })
                .collect();
            let mut moves = plan.moves.clone();
            expanded.sort();
            moves.sort();
            prop_assert_eq!(expanded, moves);
            world.execute(&mirror, &plan);
            let mut expected: BTreeMap<String, (u64, String)> = mirror.iter().map(|(p, l)| (p.clone(), (l.size, l.hash.clone()))).collect();
            expected.extend(foreign);
            prop_assert_eq!(&world.remote, &expected);
            // The push state then describes exactly the mirror (what a later push may plan from).
            let state: BTreeMap<String, Local> = world.pushed.iter().map(|(p, f)| (p.clone(), local(f.size, &f.hash))).collect();
            prop_assert_eq!(&state, &mirror);
            for (path, file) in &before {
                let kept = world.remote.get(path) == Some(file) || world.remote.values().any(|f| f == file);
                let backed_up = world.backups.iter().any(|(p, f)| p == path && f == file);
                prop_assert!(kept || backed_up, "lost {path}");
            }
            let again = world.plan(&mirror, BACKUP);
            prop_assert!(again.is_empty(), "{:?}", again);
        }
    }
}
