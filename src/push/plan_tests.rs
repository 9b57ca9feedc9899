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
                    mtime: None,
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
            mtime: None,
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
            mtime: None,
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
            mtime: None,
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

const CI: Options = Options {
    backup: true,
    delete_foreign: false,
    case_insensitive: true,
};

const CI_NO_BACKUP: Options = Options {
    backup: false,
    ..CI
};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// Regression: a user's `jazz/a/01.mp3` on an SMB share was overwritten by musync's
// `Jazz/A/01.mp3` with no backup (the listing was matched by exact names).
#[test]
fn a_users_file_differing_only_in_case_is_backed_up() {
    let mut w = World::default();
    w.remote.insert("jazz/a/01.mp3".into(), (7, "user".into()));
    let m = mirror(&[("Jazz/A/01.mp3", 10, "a")]);
    let p = w.plan(&m, CI);
    assert_eq!(p.backups, ["jazz/a/01.mp3"]);
    assert_eq!(p.uploads, ["Jazz/A/01.mp3"]);
    assert!(p.deletes.is_empty() && p.removed.is_empty());
    // Without backups the upload replaces it, as it would a file of the very same name.
    let p = w.plan(&m, CI_NO_BACKUP);
    assert!(p.backups.is_empty() && p.deletes.is_empty());
    // Once uploaded, the file keeps the server's case and is musync's: nothing more to do.
    w.remote.insert("jazz/a/01.mp3".into(), (10, "a".into()));
    w.pushed.insert(
        "Jazz/A/01.mp3".into(),
        Pushed {
            size: 10,
            hash: "a".into(),
            mtime: None,
        },
    );
    assert!(w.plan(&m, CI).is_empty());
}

// Regression: a case-only album rename was one folder move onto itself, refused by rclone as
// overlapping, and every later push failed.
#[test]
fn a_case_only_album_rename_moves_through_a_temporary_folder() {
    let w = pushed(&[("G/Album/1.mp3", 10, "a"), ("G/Album/2.mp3", 11, "b")]);
    let m = mirror(&[("G/album/1.mp3", 10, "a"), ("G/album/2.mp3", 11, "b")]);
    let p = w.plan(&m, CI);
    assert!(p.uploads.is_empty() && p.backups.is_empty() && p.deletes.is_empty());
    let folder = |from: &str, to: &str| MoveStep::Folder {
        from_dir: from.into(),
        to_dir: to.into(),
        files: strings(&["1.mp3", "2.mp3"]),
        prune: true,
    };
    assert_eq!(
        move_steps(&p.moves, true, "t"),
        [
            folder("G/Album", "G/.musync-rename-t-0"),
            folder("G/.musync-rename-t-0", "G/album"),
        ]
    );
    // On a case-sensitive remote it is one ordinary folder move.
    assert_eq!(move_steps(&p.moves, false, "t").len(), 1);
}

// Regression: a case-only file rename with --no-backup uploaded `One.mp3`, then deleted
// `one.mp3`, the same file.
#[test]
fn a_case_only_file_rename_never_deletes_what_it_wrote() {
    let w = pushed(&[("G/A/one.mp3", 10, "a")]);
    // Same content: a rename through a temporary name.
    let p = w.plan(&mirror(&[("G/A/One.mp3", 10, "a")]), CI_NO_BACKUP);
    let file = |from: &str, to: &str| MoveStep::File {
        from: from.into(),
        to: to.into(),
    };
    assert_eq!(
        move_steps(&p.moves, true, "t"),
        [
            file("G/A/one.mp3", "G/A/.musync-rename-t-0"),
            file("G/A/.musync-rename-t-0", "G/A/One.mp3"),
        ]
    );
    // New content: uploaded over it, and the old name is forgotten, not deleted.
    let p = w.plan(&mirror(&[("G/A/One.mp3", 12, "b")]), CI_NO_BACKUP);
    assert_eq!(p.uploads, ["G/A/One.mp3"]);
    assert!(p.deletes.is_empty() && p.removed.is_empty());
    assert_eq!(p.forgotten, ["G/A/one.mp3"]);
    // With backups the old one is moved away first.
    let p = w.plan(&mirror(&[("G/A/One.mp3", 12, "b")]), CI);
    assert_eq!(
        (p.backups, p.uploads),
        (strings(&["G/A/one.mp3"]), strings(&["G/A/One.mp3"]))
    );
}

#[test]
fn case_matters_only_when_two_names_differ_in_case_alone() {
    let w = pushed(&[("G/Album/1.mp3", 10, "a")]);
    let listing = |w: &World| -> BTreeMap<String, u64> {
        w.remote.iter().map(|(p, (s, _))| (p.clone(), *s)).collect()
    };
    let matters = |w: &World, m: &BTreeMap<String, Local>| {
        case_matters(m, &listing(w), &w.pushed, &w.pending)
    };
    assert!(!matters(&w, &mirror(&[("G/Album/1.mp3", 10, "a")])));
    assert!(!matters(&w, &mirror(&[("G/Album (Live)/1.mp3", 10, "a")])));
    assert!(matters(&w, &mirror(&[("G/album/1.mp3", 10, "a")])));
    let mut w = World::default();
    w.remote.insert("g/a/1.mp3".into(), (3, "user".into()));
    assert!(matters(&w, &mirror(&[("G/A/1.mp3", 10, "a")])));
}

#[test]
fn links_block_the_paths_under_them() {
    let links: BTreeSet<String> = ["Jazz/A".to_owned(), "Pop/x.mp3".to_owned()].into();
    assert_eq!(
        link_at("Jazz/A/1.mp3", &links).map(String::as_str),
        Some("Jazz/A")
    );
    assert_eq!(
        link_at("Pop/x.mp3", &links).map(String::as_str),
        Some("Pop/x.mp3")
    );
    assert_eq!(link_at("Jazz/AB/1.mp3", &links), None);
    assert_eq!(link_at("Pop/x.mp3.bak", &links), None);
}

#[test]
fn the_case_probe_asks_only_when_the_listing_cannot_tell() {
    let list = |paths: &[&str]| strings(paths);
    assert_eq!(
        case_probe(&list(&["Jazz/A/1.mp3"])),
        CaseProbe::Ask {
            dir: "jAZZ/a".into(),
            name: "1.mp3".into()
        }
    );
    // Both cases listed: the remote keeps them apart.
    assert_eq!(
        case_probe(&list(&["Jazz/1.mp3", "jazz/1.mp3"])),
        CaseProbe::Sensitive
    );
    // No folder name has a case to flip.
    assert_eq!(
        case_probe(&list(&["top.mp3", "1/2.mp3"])),
        CaseProbe::Sensitive
    );
    // A flipped folder that is listed itself proves nothing.
    assert_eq!(
        case_probe(&list(&["ab/1.mp3", "AB/2.mp3", "X/1.mp3"])),
        CaseProbe::Ask {
            dir: "x".into(),
            name: "1.mp3".into()
        }
    );
}

/// A case-insensitive remote as a model: folded path → (the name the server keeps, size,
/// hash). An upload over a file keeps its name; a move gives the new one.
#[derive(Clone, Debug, Default)]
struct CiWorld {
    remote: BTreeMap<String, (String, u64, String)>,
    backups: Vec<(String, u64, String)>,
    pushed: BTreeMap<String, Pushed>,
    pending: BTreeMap<String, Pushed>,
}

impl CiWorld {
    fn plan(&self, mirror: &BTreeMap<String, Local>, opts: Options) -> Plan {
        let listing = self
            .remote
            .values()
            .map(|(p, s, _)| (p.clone(), *s))
            .collect();
        plan(mirror, &listing, &self.pushed, &self.pending, opts)
    }

    fn execute(&mut self, mirror: &BTreeMap<String, Local>, plan: &Plan) {
        for p in &plan.backups {
            let file = self.remote.remove(&fold(p)).expect("backed-up file exists");
            self.backups.push(file);
            self.pushed.remove(p);
            self.pending.remove(p);
        }
        let mut moves = Vec::new();
        for step in move_steps(&plan.moves, true, "t") {
            match step {
                MoveStep::Folder {
                    from_dir,
                    to_dir,
                    files,
                    ..
                } => moves.extend(
                    files
                        .iter()
                        .map(|f| (format!("{from_dir}/{f}"), format!("{to_dir}/{f}"))),
                ),
                MoveStep::File { from, to } => moves.push((from, to)),
            }
        }
        for (from, to) in moves {
            let (_, size, hash) = self.remote.remove(&fold(&from)).expect("moved file exists");
            self.remote.insert(fold(&to), (to.clone(), size, hash));
            let state = self.pushed.remove(&from).expect("moved file was pushed");
            self.pending.remove(&to);
            self.pushed.insert(to, state);
        }
        for p in plan.uploads.iter().chain(&plan.adopted) {
            let l = &mirror[p];
            let name = self.remote.get(&fold(p)).map_or(p.clone(), |f| f.0.clone());
            self.remote.insert(fold(p), (name, l.size, l.hash.clone()));
            self.pending.remove(p);
            self.pushed.insert(
                p.clone(),
                Pushed {
                    size: l.size,
                    hash: l.hash.clone(),
                    mtime: None,
                },
            );
        }
        for p in &plan.deletes {
            self.remote.remove(&fold(p));
        }
        for p in plan.deletes.iter().chain(&plan.forgotten) {
            self.pushed.remove(p);
            self.pending.remove(p);
        }
    }
}

#[derive(Clone, Debug)]
enum CaseEdit {
    Add(u8, u8),
    Delete(u8),
    FlipAlbum(u8),
    FlipFile(u8),
    Retag(u8),
    UserFileInTheWay(u8),
}

fn case_edit() -> impl Strategy<Value = CaseEdit> {
    prop_oneof![
        (0..12u8, 1..5u8).prop_map(|(n, s)| CaseEdit::Add(n, s)),
        (0..12u8).prop_map(CaseEdit::Delete),
        (0..3u8).prop_map(CaseEdit::FlipAlbum),
        (0..12u8).prop_map(CaseEdit::FlipFile),
        (0..12u8).prop_map(CaseEdit::Retag),
        (0..12u8).prop_map(CaseEdit::UserFileInTheWay),
    ]
}

fn flip(s: &str) -> String {
    s.chars().map(flip_case).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// On a case-insensitive remote, after any history of case-only renames and users' files
    /// in the way, one push makes the remote hold the mirror (by folded name), the state is
    /// the mirror, nothing is lost with backups on, and the next push does nothing.
    #[test]
    fn any_case_history_converges(
        history in proptest::collection::vec(proptest::collection::vec(case_edit(), 1..5), 1..6),
        backup in any::<bool>(),
    ) {
        let opts = Options { backup, ..CI };
        // Track n: (album, name, size, hash).
        let mut lib: BTreeMap<u8, (String, String, u64, String)> = BTreeMap::new();
        let mut albums = ["Album0".to_owned(), "Album1".to_owned(), "Album2".to_owned()];
        let mut world = CiWorld::default();
        let mut tick = 0u32;
        for step in &history {
            for e in step {
                tick += 1;
                let nth = |lib: &BTreeMap<u8, _>, n: u8| lib.keys().nth(usize::from(n) % lib.len().max(1)).copied();
                match *e {
                    CaseEdit::Add(n, s) => {
                        let album = albums[usize::from(n % 3)].clone();
                        lib.entry(n).or_insert((album, format!("t{n:02}.mp3"), u64::from(s), format!("h{tick}")));
                    }
                    CaseEdit::Delete(n) => {
                        if let Some(k) = nth(&lib, n) {
                            lib.remove(&k);
                        }
                    }
                    CaseEdit::FlipAlbum(a) => {
                        let old = albums[usize::from(a)].clone();
                        albums[usize::from(a)] = flip(&old);
                        lib.values_mut().filter(|v| v.0 == old).for_each(|v| v.0 = flip(&old));
                    }
                    CaseEdit::FlipFile(n) => {
                        if let Some(k) = nth(&lib, n) {
                            let v = lib.get_mut(&k).unwrap();
                            v.1 = flip(&v.1);
                        }
                    }
                    CaseEdit::Retag(n) => {
                        if let Some(k) = nth(&lib, n) {
                            lib.get_mut(&k).unwrap().3 = format!("h{tick}");
                        }
                    }
                    CaseEdit::UserFileInTheWay(n) => {
                        if let Some((album, name, _, _)) = nth(&lib, n).map(|k| &lib[&k]) {
                            let path = flip(&format!("{album}/{name}"));
                            world.remote.entry(fold(&path)).or_insert((path, 1, format!("f{tick}")));
                        }
                    }
                }
            }
            let mirror: BTreeMap<String, Local> = lib
                .values()
                .map(|(album, name, size, hash)| (format!("{album}/{name}"), local(*size, hash)))
                .collect();
            let before = world.remote.clone();
            let plan = world.plan(&mirror, opts);
            world.execute(&mirror, &plan);
            for (path, l) in &mirror {
                let got = world.remote.get(&fold(path)).map(|f| (f.1, f.2.clone()));
                prop_assert_eq!(got, Some((l.size, l.hash.clone())), "{}", path);
            }
            let wanted: BTreeSet<String> = mirror.keys().map(|p| fold(p)).collect();
            for (key, (name, _, hash)) in &world.remote {
                prop_assert!(wanted.contains(key) || hash.starts_with('f'), "stray {}", name);
            }
            let state: BTreeSet<&String> = world.pushed.keys().collect();
            prop_assert_eq!(state, mirror.keys().collect::<BTreeSet<_>>());
            if backup {
                for (name, size, hash) in before.values() {
                    let kept = world.remote.values().any(|f| f.1 == *size && f.2 == *hash);
                    let backed_up = world.backups.iter().any(|f| f.1 == *size && f.2 == *hash);
                    prop_assert!(kept || backed_up, "lost {}", name);
                }
            }
            let again = world.plan(&mirror, opts);
            prop_assert!(again.is_empty(), "{:?}", again);
        }
    }
}

#[test]
fn emptied_dirs_are_the_topmost_folders_left_with_no_file() {
    let gone = [
        "Rock/Band/Old Album/01.mp3",
        "Rock/Band/Old Album/CD1/02.mp3",
        "Jazz/A/x.mp3",
    ];
    let remaining = ["Rock/Band/New Album/01.mp3", "Jazz/A/notes.txt"];
    assert_eq!(
        emptied_dirs(gone, remaining, false),
        ["Rock/Band/Old Album"]
    );
    let gone = ["Jazz/A/x.mp3", "Jazz/B/y.mp3", "Pop/C/z.mp3"];
    assert_eq!(emptied_dirs(gone, ["Pop/d.mp3"], false), ["Jazz", "Pop/C"]);
}

#[test]
fn emptied_dirs_never_name_the_root_or_musyncs_own_folders() {
    let gone = [
        "top.mp3",
        ".musync-backups/2026-01-01T00-00-00Z/a/b.mp3",
        ".musync-tmp/0123456789abcdef/c/d.mp3",
    ];
    assert!(emptied_dirs(gone, [], false).is_empty());
}

#[test]
fn emptied_dirs_keep_a_folder_renamed_in_case_only_on_a_case_insensitive_remote() {
    let gone = ["Rock/Album/01.mp3"];
    let remaining = ["Rock/album/01.mp3"];
    assert_eq!(emptied_dirs(gone, remaining, false), ["Rock/Album"]);
    assert!(emptied_dirs(gone, remaining, true).is_empty());
}

fn listed(files: &[(&str, u64, Option<&str>)]) -> BTreeMap<String, RemoteFile> {
    (files.iter())
        .map(|(p, size, t)| {
            let file = RemoteFile {
                size: *size,
                mtime: t.map(str::to_owned),
            };
            ((*p).to_owned(), file)
        })
        .collect()
}

const T1: &str = "2026-11-30T04:00:00.5Z";
const T2: &str = "2026-11-30T05:00:00.5Z";

// Regression: a file overwritten in place on the server at its old size was never noticed.
#[test]
fn a_same_size_file_with_a_new_time_is_restored_after_a_backup() {
    let mut w = pushed(&[("a.mp3", 10, "a"), ("b.mp3", 5, "b")]);
    assert!(adopt_times(
        &mut w.pushed,
        &listed(&[("a.mp3", 10, Some(T1)), ("b.mp3", 5, Some(T1))])
    ));
    let now = listed(&[("a.mp3", 10, Some(T2)), ("b.mp3", 5, Some(T1))]);
    let changed = changed_on_server(&w.pushed, &now);
    assert_eq!(changed, BTreeSet::from(["a.mp3".to_owned()]));
    let m = mirror(&[("a.mp3", 10, "a"), ("b.mp3", 5, "b")]);
    let listing = BTreeMap::from([("a.mp3".to_owned(), 10), ("b.mp3".to_owned(), 5)]);
    let p = plan_with_changes(&m, &listing, &w.pushed, &w.pending, &changed, BACKUP);
    assert_eq!(p.restored, ["a.mp3"]);
    assert_eq!(p.backups, ["a.mp3"]);
    assert_eq!(p.uploads, ["a.mp3"]);
    assert_eq!(p.unchanged, 1);
    // Nor is a changed file moved as musync's own to a new path of the same content.
    let renamed = mirror(&[("c.mp3", 10, "a"), ("b.mp3", 5, "b")]);
    let p = plan_with_changes(&renamed, &listing, &w.pushed, &w.pending, &changed, BACKUP);
    assert!(p.moves.is_empty(), "{p:?}");
    assert_eq!(p.uploads, ["c.mp3"]);
}

#[test]
fn times_are_adopted_only_when_missing_and_at_the_pushed_size() {
    let mut w = pushed(&[("a.mp3", 10, "a"), ("b.mp3", 5, "b"), ("c.mp3", 1, "c")]);
    w.pushed.get_mut("c.mp3").unwrap().mtime = Some(T1.into());
    let now = listed(&[
        ("a.mp3", 10, Some(T2)),
        ("b.mp3", 6, Some(T2)),
        ("c.mp3", 1, Some(T2)),
    ]);
    assert!(changed_on_server(&w.pushed, &now).contains("c.mp3"));
    assert!(adopt_times(&mut w.pushed, &now));
    assert_eq!(w.pushed["a.mp3"].mtime.as_deref(), Some(T2));
    assert_eq!(
        w.pushed["b.mp3"].mtime, None,
        "a new size is drift, not a time"
    );
    assert_eq!(w.pushed["c.mp3"].mtime.as_deref(), Some(T1));
    assert!(!adopt_times(&mut w.pushed, &listed(&[("b.mp3", 5, None)])));
}

/// The same instant prints with another offset after a time zone or daylight saving change.
#[test]
fn times_compare_as_instants() {
    assert!(same_time(
        "2026-11-30T05:00:00.5+01:00",
        "2026-11-30T04:00:00.500Z"
    ));
    assert!(same_time(
        "2024-02-29T23:30:00-01:00",
        "2024-03-01T00:30:00Z"
    ));
    assert!(!same_time(
        "2026-11-30T04:00:00.5Z",
        "2026-11-30T04:00:00.6Z"
    ));
    assert!(!same_time("2026-11-30T04:00:00Z", "2026-11-30T04:00:01Z"));
    assert!(same_time("garbled", "garbled"));
    assert!(!same_time("garbled", T1));
    assert_eq!(instant("1970-01-01T00:00:00Z"), Some((0, 0)));
    assert_eq!(
        instant("2000-03-01T00:00:00.000000001Z"),
        Some((951_868_800, 1))
    );
}

fn any_path() -> impl Strategy<Value = String> {
    let dirs = vec!["", "A/", "a/", "B/", "A/b/", "A/B/"];
    let files = vec!["x.mp3", "X.mp3", "y.mp3"];
    (prop::sample::select(dirs), prop::sample::select(files)).prop_map(|(d, f)| format!("{d}{f}"))
}

fn any_pushed() -> impl Strategy<Value = Pushed> {
    let times = vec![None, Some(T1), Some(T2)];
    (
        1u64..3,
        prop::sample::select(vec!["h1", "h2"]),
        prop::sample::select(times),
    )
        .prop_map(|(size, hash, mtime)| Pushed {
            size,
            hash: hash.into(),
            mtime: mtime.map(str::to_owned),
        })
}

fn any_options() -> impl Strategy<Value = Options> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(backup, delete_foreign, ci)| Options {
        backup,
        delete_foreign,
        case_insensitive: ci,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The planner walks its inputs together instead of looking each path up (issue 16): it
    /// plans exactly what the planner of lookups did, for any mirror, listing and push state,
    /// case-insensitive remotes and pending calls included.
    #[test]
    fn the_merging_planner_plans_what_the_lookups_did(
        mirror in prop::collection::btree_map(any_path(), any_pushed(), 0..8),
        listed in prop::collection::btree_map(any_path(), any_pushed(), 0..8),
        pushed in prop::collection::btree_map(any_path(), any_pushed(), 0..8),
        pending in prop::collection::btree_map(any_path(), any_pushed(), 0..3),
        opts in any_options(),
    ) {
        let mirror: BTreeMap<String, Local> = (mirror.into_iter())
            .map(|(p, f)| (p, local(f.size, &f.hash)))
            .collect();
        let listed: BTreeMap<String, RemoteFile> = (listed.into_iter())
            .map(|(p, f)| (p, RemoteFile { size: f.size, mtime: f.mtime }))
            .collect();
        let remote: BTreeMap<String, u64> = listed.iter().map(|(p, f)| (p.clone(), f.size)).collect();
        let changed = changed_on_server(&pushed, &listed);
        prop_assert_eq!(&changed, &reference::changed_on_server(&pushed, &listed));
        let (mut adopted, mut adopted_before) = (pushed.clone(), pushed.clone());
        prop_assert_eq!(
            adopt_times(&mut adopted, &listed),
            reference::adopt_times(&mut adopted_before, &listed)
        );
        prop_assert_eq!(&adopted, &adopted_before);
        prop_assert_eq!(
            case_matters(&mirror, &remote, &pushed, &pending),
            reference::case_matters(&mirror, &remote, &pushed, &pending)
        );
        prop_assert_eq!(
            plan_with_changes(&mirror, &remote, &pushed, &pending, &changed, opts),
            reference::plan_with_changes(&mirror, &remote, &pushed, &pending, &changed, opts)
        );
    }

    /// The folders a push empties, worked out from the few files that leave, are those the
    /// walk of every remaining file's folders found.
    #[test]
    fn emptied_dirs_are_what_they_were(
        gone in prop::collection::vec(any_path(), 0..5),
        remaining in prop::collection::vec(any_path(), 0..8),
        case_insensitive in any::<bool>(),
    ) {
        let (gone, remaining) = (gone.iter().map(String::as_str), remaining.iter().map(String::as_str));
        prop_assert_eq!(
            emptied_dirs(gone.clone(), remaining.clone(), case_insensitive),
            reference::emptied_dirs(gone, remaining, case_insensitive)
        );
    }
}

/// The planner as it was before its lookups became merges (main at becc6f5), kept as the
/// oracle the property tests hold the linear one to: same inputs, same plan.
#[allow(clippy::pedantic)]
mod reference {
    use std::collections::{BTreeMap, BTreeSet};

    use super::super::{Local, Options, Plan, Pushed, fold, same, same_time};
    use crate::rclone::RemoteFile;

    pub fn plan_with_changes(
        mirror: &BTreeMap<String, Local>,
        remote: &BTreeMap<String, u64>,
        pushed: &BTreeMap<String, Pushed>,
        pending: &BTreeMap<String, Pushed>,
        changed: &BTreeSet<String>,
        opts: Options,
    ) -> Plan {
        if !opts.case_insensitive {
            return plan_exact(mirror, remote, pushed, pending, changed, opts);
        }
        let remote = &as_recorded(mirror, remote, pushed, pending);
        let mut plan = plan_exact(mirror, remote, pushed, pending, changed, opts);
        let mut listed: BTreeMap<String, Vec<&String>> = BTreeMap::new();
        for path in remote.keys() {
            listed.entry(fold(path)).or_default().push(path);
        }
        let sources: BTreeSet<&String> = plan.moves.iter().map(|(from, _)| from).collect();
        let written = plan
            .uploads
            .iter()
            .chain(plan.moves.iter().map(|(_, to)| to));
        let mut in_the_way = Vec::new();
        for path in written {
            for other in listed.get(&fold(path)).into_iter().flatten() {
                let moving_away = sources.contains(other) || plan.backups.contains(other);
                if *other != path && !moving_away && opts.backup {
                    in_the_way.push((*other).clone());
                }
            }
        }
        plan.backups.extend(in_the_way);
        plan.backups.sort();
        plan.backups.dedup();
        // Deletions run after the uploads: one of a name the mirror has in another case would
        // delete the file just written. The write replaced it; it is only forgotten.
        let wanted: BTreeSet<String> = mirror.keys().map(|p| fold(p)).collect();
        let (replaced, deletes): (Vec<String>, Vec<String>) = std::mem::take(&mut plan.deletes)
            .into_iter()
            .partition(|p| wanted.contains(&fold(p)));
        plan.deletes = deletes;
        plan.removed.retain(|p| !replaced.contains(p));
        plan.forgotten.extend(replaced);
        for path in &plan.deletes {
            assert!(
                !wanted.contains(&fold(path)),
                "the push plan would delete {path}, which is in the mirror in another case"
            );
        }
        plan
    }

    pub fn case_matters(
        mirror: &BTreeMap<String, Local>,
        remote: &BTreeMap<String, u64>,
        pushed: &BTreeMap<String, Pushed>,
        pending: &BTreeMap<String, Pushed>,
    ) -> bool {
        let mut seen: BTreeMap<String, &String> = BTreeMap::new();
        let paths = (mirror.keys())
            .chain(remote.keys())
            .chain(pushed.keys())
            .chain(pending.keys());
        for path in paths {
            match seen.entry(fold(path)) {
                std::collections::btree_map::Entry::Occupied(e) if *e.get() != path => return true,
                std::collections::btree_map::Entry::Occupied(_) => {}
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(path);
                }
            }
        }
        false
    }

    fn as_recorded(
        mirror: &BTreeMap<String, Local>,
        remote: &BTreeMap<String, u64>,
        pushed: &BTreeMap<String, Pushed>,
        pending: &BTreeMap<String, Pushed>,
    ) -> BTreeMap<String, u64> {
        let mut ours: BTreeMap<String, &String> = BTreeMap::new();
        for path in pushed.keys().chain(pending.keys()) {
            if !remote.contains_key(path) {
                ours.entry(fold(path)).or_insert(path);
            }
        }
        let known = |p: &String| {
            mirror.contains_key(p) || pushed.contains_key(p) || pending.contains_key(p)
        };
        let mut recorded = BTreeMap::new();
        for (path, &size) in remote {
            let name = match ours.get(&fold(path)) {
                Some(ours) if !known(path) => (*ours).clone(),
                _ => path.clone(),
            };
            recorded.insert(name, size);
        }
        recorded
    }

    fn plan_exact(
        mirror: &BTreeMap<String, Local>,
        remote: &BTreeMap<String, u64>,
        pushed: &BTreeMap<String, Pushed>,
        pending: &BTreeMap<String, Pushed>,
        changed: &BTreeSet<String>,
        opts: Options,
    ) -> Plan {
        let mut plan = Plan::default();
        let rows = rows(mirror, remote, pushed);
        // Files musync pushed that the mirror no longer has at their path, by content: each may be
        // moved, server-side, to one new path of the same content instead of uploaded again.
        let mut movable: BTreeMap<(&str, u64), Vec<&String>> = BTreeMap::new();
        for row in rows.iter().rev() {
            if let (None, Some(size), Some(p)) = (row.local, row.remote, row.pushed)
                && p.size == size
                && !changed.contains(row.path)
                && !pending.contains_key(row.path)
            {
                movable.entry((&p.hash, size)).or_default().push(row.path);
            }
        }
        let mut claimed = BTreeSet::new();
        for row in &rows {
            let (path, ours) = (row.path, row.pushed);
            let Some(local) = row.local else { continue };
            let pending = pending.get(path);
            let drifted = pending.is_none() && changed.contains(path);
            match row.remote {
                Some(size) if pending.is_none() && !drifted && same(size, ours, local) => {
                    if ours.is_some() {
                        plan.unchanged += 1;
                    } else {
                        plan.adopted.push(path.clone());
                    }
                }
                // The file is what the unfinished call was putting there, and cannot be the one it
                // replaced, which may still be there: the size tells them apart.
                Some(size)
                    if pending.is_some_and(|p| same(size, Some(p), local))
                        && ours.is_none_or(|p| p.size != size || p.hash == local.hash) =>
                {
                    plan.adopted.push(path.clone());
                }
                Some(size) => {
                    if drifted || (pending.is_none() && ours.is_some_and(|p| p.size != size)) {
                        plan.restored.push(path.clone());
                    }
                    if opts.backup {
                        plan.backups.push(path.clone());
                    }
                    plan.uploads.push(path.clone());
                    plan.bytes += local.size;
                }
                None => {
                    let from = movable
                        .get_mut(&(local.hash.as_str(), local.size))
                        .and_then(Vec::pop);
                    if let Some(from) = from {
                        claimed.insert(from);
                        plan.moves.push((from.clone(), path.clone()));
                    } else {
                        if ours.is_some() && pending.is_none() {
                            plan.restored.push(path.clone());
                        }
                        plan.uploads.push(path.clone());
                        plan.bytes += local.size;
                    }
                }
            }
        }
        for row in &rows {
            let path = row.path;
            let ours = row.pushed.is_some() || pending.contains_key(path);
            match (row.local, row.remote, row.pushed) {
                (None, Some(_), _) if !claimed.contains(path) && (ours || opts.delete_foreign) => {
                    plan.removed.push(path.clone());
                    if opts.backup {
                        plan.backups.push(path.clone());
                    } else {
                        plan.deletes.push(path.clone());
                    }
                }
                (None, None, Some(_)) => plan.forgotten.push(path.clone()),
                _ => {}
            }
        }
        // A pending file that did not land is forgotten (and uploaded again if still wanted).
        for path in pending.keys() {
            if !remote.contains_key(path) && !plan.forgotten.contains(path) {
                plan.forgotten.push(path.clone());
            }
        }
        // The whole point of musync: a file of the mirror is never deleted from the remote.
        for path in &plan.removed {
            assert!(
                !mirror.contains_key(path),
                "the push plan would delete {path}, which is in the mirror"
            );
        }
        plan.backups.sort();
        plan
    }

    pub fn changed_on_server(
        pushed: &BTreeMap<String, Pushed>,
        listed: &BTreeMap<String, RemoteFile>,
    ) -> BTreeSet<String> {
        (pushed.iter())
            .filter(|(path, p)| {
                let (Some(was), Some(now)) = (p.mtime.as_deref(), listed.get(*path)) else {
                    return false;
                };
                now.mtime.as_deref().is_some_and(|now| !same_time(was, now))
            })
            .map(|(path, _)| path.clone())
            .collect()
    }

    pub fn adopt_times(
        pushed: &mut BTreeMap<String, Pushed>,
        listed: &BTreeMap<String, RemoteFile>,
    ) -> bool {
        let mut adopted = false;
        for (path, p) in pushed.iter_mut().filter(|(_, p)| p.mtime.is_none()) {
            if let Some(RemoteFile {
                size,
                mtime: Some(t),
            }) = listed.get(path)
                && *size == p.size
            {
                p.mtime = Some(t.clone());
                adopted = true;
            }
        }
        adopted
    }

    struct Row<'a> {
        path: &'a String,
        local: Option<&'a Local>,
        remote: Option<u64>,
        pushed: Option<&'a Pushed>,
    }

    fn rows<'a>(
        mirror: &'a BTreeMap<String, Local>,
        remote: &'a BTreeMap<String, u64>,
        pushed: &'a BTreeMap<String, Pushed>,
    ) -> Vec<Row<'a>> {
        let (mut m, mut r, mut p) = (
            mirror.iter().peekable(),
            remote.iter().peekable(),
            pushed.iter().peekable(),
        );
        let mut rows = Vec::with_capacity(mirror.len().max(remote.len()));
        loop {
            let next = [
                m.peek().map(|e| e.0),
                r.peek().map(|e| e.0),
                p.peek().map(|e| e.0),
            ];
            let Some(path) = next.into_iter().flatten().min() else {
                return rows;
            };
            rows.push(Row {
                path,
                local: m.next_if(|e| e.0 == path).map(|e| e.1),
                remote: r.next_if(|e| e.0 == path).map(|e| *e.1),
                pushed: p.next_if(|e| e.0 == path).map(|e| e.1),
            });
        }
    }

    pub fn emptied_dirs<'a>(
        gone: impl IntoIterator<Item = &'a str>,
        remaining: impl IntoIterator<Item = &'a str>,
        case_insensitive: bool,
    ) -> Vec<String> {
        fn parents(path: &str) -> impl Iterator<Item = &str> {
            path.match_indices('/').map(|(i, _)| &path[..i])
        }
        let key = |dir: &str| {
            if case_insensitive {
                dir.to_lowercase()
            } else {
                dir.to_owned()
            }
        };
        let kept: BTreeSet<String> = remaining.into_iter().flat_map(parents).map(key).collect();
        let own = |dir: &str| {
            let top = dir.split('/').next().unwrap_or(dir);
            top == crate::push::BACKUP_DIR || top == crate::push::UPLOAD_DIR
        };
        let emptied: BTreeSet<&str> = (gone.into_iter().flat_map(parents))
            .filter(|d| !d.is_empty() && !kept.contains(&key(d)) && !own(d))
            .collect();
        (emptied.iter())
            .filter(|d| !parents(d).any(|p| emptied.contains(p)))
            .map(|d| (*d).to_owned())
            .collect()
    }
}
