//! Property tests of both planners against a model: random histories of edits on both sides
//! (create, copy, modify, touch, delete, rename a file or a folder, the same edit on both
//! sides), with runs in between, some killed after a random prefix of their actions. A tiny
//! in-memory executor applies the actions; every file a copy or a move replaces, and every file
//! deleted, goes to the backups.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::plan::{bisync, settle, touched};
use super::pull::{self, PullOptions, pull};
use super::*;

/// One version of a file: its content (which fixes its size and hash) and its mtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct File {
    content: u32,
    mtime: i64,
}

/// Few sizes, so that renames by size meet collisions and same-size edits; or one size per
/// content, where renames must all be found.
fn size(content: u32, unique: bool) -> u64 {
    if unique {
        1_000 + u64::from(content)
    } else {
        100 + u64::from(content % 4)
    }
}

type Tree = BTreeMap<String, File>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Save {
    /// A killed run keeps `settle` of the listings after it.
    Settle,
    /// A killed run leaves the old state.
    Keep,
}

#[derive(Clone, Debug)]
enum Edit {
    Create { dir: u8, name: u8 },
    Duplicate { pick: u8, dir: u8, name: u8 },
    Modify { pick: u8 },
    Touch { pick: u8 },
    Delete { pick: u8 },
    Rename { pick: u8, dir: u8, name: u8 },
    RenameFolder { pick: u8, dir: u8 },
}

#[derive(Clone, Debug)]
enum Step {
    /// An edit on one side.
    On(Side, Edit),
    /// The same edit on both sides (resolved on the library, replayed on the peer).
    Both(Edit),
    /// A run, killed after `kill` actions (modulo the plan's length + 1; the full length is a
    /// complete run), action `i` failing when bit `i % 16` of `fail` is set.
    Run {
        kill: Option<u8>,
        fail: u16,
        save: Save,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..3u8, 0..5u8).prop_map(|(dir, name)| Edit::Create { dir, name }),
        (any::<u8>(), 0..3u8, 0..5u8).prop_map(|(pick, dir, name)| Edit::Duplicate {
            pick,
            dir,
            name
        }),
        any::<u8>().prop_map(|pick| Edit::Modify { pick }),
        any::<u8>().prop_map(|pick| Edit::Touch { pick }),
        any::<u8>().prop_map(|pick| Edit::Delete { pick }),
        (any::<u8>(), 0..3u8, 0..5u8).prop_map(|(pick, dir, name)| Edit::Rename {
            pick,
            dir,
            name
        }),
        (any::<u8>(), 0..4u8).prop_map(|(pick, dir)| Edit::RenameFolder { pick, dir }),
    ]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Library), Just(Side::Peer)]
}

/// Mostly none: the files an executor could not carry out (it reports them and goes on).
fn failures() -> impl Strategy<Value = u16> {
    prop_oneof![3 => Just(0u16), 1 => any::<u16>()]
}

fn save() -> impl Strategy<Value = Save> {
    prop_oneof![Just(Save::Settle), Just(Save::Keep)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (side(), edit()).prop_map(|(s, e)| Step::On(s, e)),
        2 => edit().prop_map(Step::Both),
        2 => (proptest::option::of(any::<u8>()), failures(), save())
            .prop_map(|(kill, fail, save)| Step::Run { kill, fail, save }),
    ]
}

/// A user's change, resolved to paths.
#[derive(Clone, Debug)]
enum Op {
    Put(String, File),
    Remove(String),
    Move(String, String),
    MoveDir(String, String),
}

#[derive(Clone, Debug, Default)]
struct World {
    sides: [Tree; 2],
    backups: Vec<File>,
    state: Option<State>,
    clock: i64,
    next_content: u32,
    /// Every content on a side when a run started.
    seen: BTreeSet<u32>,
    /// Contents whose last copy a user removed.
    gone: BTreeSet<u32>,
    /// Each side's files as they were when both sides last agreed on them (or as a run wrote
    /// them): a deletion must not hit a file a user changed since.
    base: [Tree; 2],
    /// Each side's files as they were when both sides last agreed on them and the state said
    /// so (what the planner's previous state stands for).
    agreed: [Tree; 2],
    /// The paths the running plan calls conflicts: only there may a copy replace a file a user
    /// changed.
    conflicts: BTreeSet<String>,
    /// An mtime-only change is a modification (it is under `Compare::Mtime`).
    touch_counts: bool,
    unique_sizes: bool,
    /// Pull: the local copy may lose a file edited there (into the backups).
    pull: bool,
    /// Pull: every path the share ever had.
    share_ever: BTreeSet<String>,
}

fn ix(side: Side) -> usize {
    match side {
        Side::Library => 0,
        Side::Peer => 1,
    }
}

fn path(dir: u8, name: u8) -> String {
    format!("d{dir}/f{name}.flac")
}

impl World {
    fn tree(&mut self, side: Side) -> &mut Tree {
        &mut self.sides[ix(side)]
    }

    fn tick(&mut self) -> i64 {
        self.clock += 10;
        self.clock
    }

    fn fresh(&mut self) -> File {
        self.next_content += 1;
        File {
            content: self.next_content,
            mtime: self.tick(),
        }
    }

    fn nth(&self, side: Side, pick: u8) -> Option<String> {
        let tree = &self.sides[ix(side)];
        tree.keys()
            .nth(usize::from(pick) % tree.len().max(1))
            .cloned()
    }

    /// The user's edit on `side` as paths, or `None` when it does not apply there.
    fn resolve(&mut self, side: Side, edit: &Edit) -> Option<Op> {
        let tree = &self.sides[ix(side)];
        Some(match *edit {
            Edit::Create { dir, name } => {
                let p = path(dir, name);
                if tree.contains_key(&p) {
                    return None;
                }
                Op::Put(p, self.fresh())
            }
            Edit::Duplicate { pick, dir, name } => {
                let from = self.nth(side, pick)?;
                let p = path(dir, name);
                if tree.contains_key(&p) {
                    return None;
                }
                Op::Put(p, tree[&from])
            }
            Edit::Modify { pick } => {
                let p = self.nth(side, pick)?;
                Op::Put(p, self.fresh())
            }
            Edit::Touch { pick } => {
                let p = self.nth(side, pick)?;
                let content = tree[&p].content;
                let mtime = self.tick();
                Op::Put(p, File { content, mtime })
            }
            Edit::Delete { pick } => Op::Remove(self.nth(side, pick)?),
            Edit::Rename { pick, dir, name } => {
                let from = self.nth(side, pick)?;
                let to = path(dir, name);
                if tree.contains_key(&to) {
                    return None;
                }
                Op::Move(from, to)
            }
            Edit::RenameFolder { pick, dir } => {
                let from = self.nth(side, pick)?;
                let from = from.split('/').next()?.to_owned();
                let to = format!("d{dir}");
                if from == to || tree.keys().any(|p| p.starts_with(&format!("{to}/"))) {
                    return None;
                }
                Op::MoveDir(from, to)
            }
        })
    }

    fn somewhere(&self, content: u32) -> bool {
        self.sides
            .iter()
            .any(|t| t.values().any(|f| f.content == content))
            || self.backups.iter().any(|f| f.content == content)
    }

    fn user_removed(&mut self, file: File) {
        if !self.somewhere(file.content) {
            self.gone.insert(file.content);
        }
    }

    /// Applies a user's op on `side`.
    fn user(&mut self, side: Side, op: &Op) {
        let i = ix(side);
        match op {
            Op::Put(p, file) => {
                if let Some(old) = self.sides[i].insert(p.clone(), *file) {
                    self.user_removed(old);
                }
            }
            Op::Remove(p) => {
                if let Some(old) = self.sides[i].remove(p) {
                    self.user_removed(old);
                }
            }
            Op::Move(from, to) => {
                if self.sides[i].contains_key(to) {
                    return;
                }
                if let Some(f) = self.sides[i].remove(from) {
                    self.sides[i].insert(to.clone(), f);
                }
            }
            Op::MoveDir(from, to) => {
                let (from, to) = (format!("{from}/"), format!("{to}/"));
                if self.sides[i].keys().any(|p| p.starts_with(&to)) {
                    return;
                }
                let moving: Vec<String> = (self.sides[i].keys())
                    .filter(|p| p.starts_with(&from))
                    .cloned()
                    .collect();
                for p in moving {
                    let f = self.sides[i].remove(&p).unwrap();
                    self.sides[i].insert(format!("{to}{}", &p[from.len()..]), f);
                }
            }
        }
    }

    fn listing(&self, side: Side, hashes: bool) -> Listing {
        self.sides[ix(side)]
            .iter()
            .map(|(p, f)| {
                let entry = Entry {
                    size: size(f.content, self.unique_sizes),
                    mtime: f.mtime,
                    hash: hashes.then(|| format!("{:08x}", f.content)),
                };
                (p.clone(), entry)
            })
            .collect()
    }

    fn backup(&mut self, side: Side, p: &str) {
        if let Some(old) = self.tree(side).remove(p) {
            self.backups.push(old);
        }
    }

    /// Whether `file` at `path` differs from its version in `base` (or is not in it).
    fn changed(&self, base: &Tree, path: &str, file: File) -> bool {
        base.get(path).is_none_or(|b| {
            b.content != file.content || (self.touch_counts && b.mtime != file.mtime)
        })
    }

    /// Carries out a plan as far as `kill` lets it, skipping the actions `fail` names and
    /// those whose file is missing (a failed action before them); whether all were done.
    fn carry_out(
        &mut self,
        actions: &[Action],
        kill: Option<u8>,
        fail: u16,
    ) -> Result<bool, String> {
        let done = match kill {
            Some(k) => usize::from(k) % (actions.len() + 1),
            None => actions.len(),
        };
        let mut all = done == actions.len();
        for (i, action) in actions[..done].iter().enumerate() {
            if fail & (1 << (i % 16)) != 0 {
                all = false;
                continue;
            }
            match self.apply(action)? {
                Some(()) => {}
                None if fail != 0 => all = false,
                None => return Err(format!("{action:?}: its file is missing")),
            }
        }
        Ok(all)
    }

    /// Carries out one action, as the executor would: `None` when its file is missing, Err
    /// when it breaks a promise.
    fn apply(&mut self, action: &Action) -> Result<Option<()>, String> {
        match action {
            Action::Copy {
                from,
                from_path,
                to_path,
            } => {
                let Some(&file) = self.sides[ix(*from)].get(from_path) else {
                    return Ok(None);
                };
                let to = from.other();
                let replaced = self.sides[ix(to)].get(to_path).copied();
                if !self.pull
                    && replaced.is_some_and(|f| self.changed(&self.agreed[ix(to)], to_path, f))
                    && !self.conflicts.contains(to_path)
                {
                    return Err(format!(
                        "copy over {to}:{to_path}, changed there, no conflict"
                    ));
                }
                self.backup(to, to_path);
                self.tree(to).insert(to_path.clone(), file);
                self.base[ix(to)].insert(to_path.clone(), file);
            }
            Action::Move { side, from, to } => {
                let Some(file) = self.tree(*side).remove(from) else {
                    return Ok(None);
                };
                self.backup(*side, to);
                self.tree(*side).insert(to.clone(), file);
                self.base[ix(*side)].remove(from);
                self.base[ix(*side)].insert(to.clone(), file);
            }
            Action::Delete { side, path } => {
                let i = ix(*side);
                let Some(&file) = self.sides[i].get(path) else {
                    return Ok(None);
                };
                // Changed since a run wrote it and since the state last recorded it: a user's
                // edit (a file put back as it was recorded is not one).
                let edited = self.changed(&self.base[i], path, file)
                    && self.changed(&self.agreed[i], path, file);
                if !self.pull && edited {
                    return Err(format!("deleted {side}:{path}, modified there"));
                }
                self.backup(*side, path);
                self.base[i].remove(path);
            }
        }
        Ok(Some(()))
    }

    fn note_run_start(&mut self) {
        for tree in &self.sides {
            self.seen.extend(tree.values().map(|f| f.content));
        }
    }

    fn check_nothing_lost(&self) -> Result<(), String> {
        for &c in &self.seen {
            if !self.gone.contains(&c) && !self.somewhere(c) {
                return Err(format!("version {c} lost"));
            }
        }
        Ok(())
    }

    /// After a complete run: both sides hold the same contents under the same names.
    fn check_equal(&self) -> Result<(), String> {
        let contents = |t: &Tree| -> BTreeMap<String, u32> {
            t.iter().map(|(p, f)| (p.clone(), f.content)).collect()
        };
        if contents(&self.sides[0]) != contents(&self.sides[1]) {
            return Err(format!(
                "sides differ: {:?} vs {:?}",
                self.sides[0], self.sides[1]
            ));
        }
        Ok(())
    }
}

fn check_touches_each_path_once(actions: &[Action]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for (side, p) in touched(actions) {
        if !seen.insert((side, p)) {
            return Err(format!("two actions touch {side}:{p}: {actions:?}"));
        }
    }
    Ok(())
}

fn bisync_options() -> impl Strategy<Value = Options> {
    (
        prop_oneof![Just(Compare::Mtime), Just(Compare::Hash)],
        prop_oneof![
            Just(Renames::None),
            Just(Renames::Size),
            Just(Renames::Mtime),
            Just(Renames::Hash)
        ],
        prop_oneof![
            Just(ConflictMode::Library),
            Just(ConflictMode::Peer),
            Just(ConflictMode::Newer),
            Just(ConflictMode::Older),
            Just(ConflictMode::KeepBoth)
        ],
    )
        .prop_map(|(compare, renames, conflict)| Options {
            compare,
            renames,
            conflict,
            modify_window_ns: 1,
            date: "2026-11-30".into(),
        })
}

impl World {
    fn bisync_run(
        &mut self,
        opts: &Options,
        kill: Option<u8>,
        fail: u16,
        save: Save,
    ) -> Result<(), String> {
        let hashes = opts.compare == Compare::Hash || opts.renames == Renames::Hash;
        self.note_run_start();
        let (lib, peer) = (
            self.listing(Side::Library, hashes),
            self.listing(Side::Peer, hashes),
        );
        let plan = bisync(self.state.as_ref(), &lib, &peer, opts);
        check_touches_each_path_once(&plan.actions)?;
        self.conflicts = plan.conflicts.iter().map(|c| c.path.clone()).collect();
        for p in &self.conflicts {
            let one_side = (0..2).any(|i| {
                let file = self.sides[i].get(p).copied();
                file.is_some_and(|f| !self.changed(&self.agreed[i], p, f))
            });
            if one_side {
                return Err(format!("{p} is a conflict, changed on one side only"));
            }
        }
        let complete = self.carry_out(&plan.actions, kill, fail)?;
        let (lib, peer) = (
            self.listing(Side::Library, hashes),
            self.listing(Side::Peer, hashes),
        );
        if complete || save == Save::Settle {
            let next = settle(self.state.as_ref(), &lib, &peer, opts);
            for (i, kept) in [&next.library, &next.peer].into_iter().enumerate() {
                self.agreed[i].retain(|p, _| kept.contains_key(p));
            }
            self.state = Some(next);
            for (p, l) in &lib {
                if peer.get(p).is_some_and(|r| opts.compare.same(l, r, 1)) {
                    for i in 0..2 {
                        self.base[i].insert(p.clone(), self.sides[i][p]);
                        self.agreed[i].insert(p.clone(), self.sides[i][p]);
                    }
                }
            }
        }
        self.check_nothing_lost()?;
        if complete {
            self.check_equal()?;
            let again = bisync(self.state.as_ref(), &lib, &peer, opts);
            if !again.actions.is_empty() {
                return Err(format!("a second run plans {:?}", again.actions));
            }
            self.base = self.sides.clone();
            self.agreed = self.sides.clone();
        }
        Ok(())
    }
}

fn run_bisync_history(opts: &Options, steps: &[Step]) -> Result<(), String> {
    let mut w = World {
        touch_counts: opts.compare == Compare::Mtime,
        ..World::default()
    };
    for step in steps {
        match step {
            Step::On(side, edit) => {
                if let Some(op) = w.resolve(*side, edit) {
                    w.user(*side, &op);
                }
            }
            Step::Both(edit) => {
                if let Some(op) = w.resolve(Side::Library, edit) {
                    w.user(Side::Library, &op);
                    w.user(Side::Peer, &op);
                }
            }
            Step::Run { kill, fail, save } => w.bisync_run(opts, *kill, *fail, *save)?,
        }
    }
    w.bisync_run(opts, None, 0, Save::Settle)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After any history, a complete run leaves both sides equal and a second run with nothing
    /// to do; no run loses a version or deletes a file modified on its side.
    #[test]
    fn any_bisync_history_converges_without_loss(
        opts in bisync_options(),
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        run_bisync_history(&opts, &steps).map_err(TestCaseError::fail)?;
    }
}

/// Renames only, each file on one side at most, to names never used before.
#[derive(Clone, Debug)]
enum RenameStep {
    File(Side, u8),
    Folder(Side, u8),
}

fn rename_step() -> impl Strategy<Value = RenameStep> {
    prop_oneof![
        (side(), any::<u8>()).prop_map(|(s, p)| RenameStep::File(s, p)),
        (side(), any::<u8>()).prop_map(|(s, p)| RenameStep::Folder(s, p)),
    ]
}

/// Applies rename-only steps; `owner` keeps each file (by content) to the side that first
/// renamed it.
fn apply_renames(w: &mut World, steps: &[RenameStep], one_side: Option<Side>) {
    let mut owner: BTreeMap<u32, Side> = BTreeMap::new();
    for (n, step) in steps.iter().enumerate() {
        let (side, pick, folder) = match *step {
            RenameStep::File(s, p) => (one_side.unwrap_or(s), p, false),
            RenameStep::Folder(s, p) => (one_side.unwrap_or(s), p, true),
        };
        let Some(picked) = w.nth(side, pick) else {
            continue;
        };
        let tree = &w.sides[ix(side)];
        let dir = picked.split('/').next().unwrap().to_owned();
        let moving: Vec<String> = if folder {
            tree.keys()
                .filter(|p| p.starts_with(&format!("{dir}/")))
                .cloned()
                .collect()
        } else {
            vec![picked.clone()]
        };
        let theirs = moving
            .iter()
            .any(|p| owner.get(&tree[p].content).is_some_and(|&o| o != side));
        if theirs {
            continue;
        }
        for p in &moving {
            owner.insert(tree[p].content, side);
        }
        let op = if folder {
            Op::MoveDir(dir, format!("r{n}"))
        } else {
            Op::Move(picked, format!("{dir}/r{n}.flac"))
        };
        w.user(side, &op);
    }
}

fn seeded(files: u8, unique_sizes: bool) -> World {
    let mut w = World {
        unique_sizes,
        ..World::default()
    };
    for i in 0..files {
        let f = w.fresh();
        w.sides[0].insert(path(i % 3, i), f);
    }
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Renames alone, on either side (each file on one side), become moves: no byte is sent
    /// again and nothing is deleted.
    #[test]
    fn bisync_renames_alone_are_moves(
        renames in prop_oneof![Just(Renames::Size), Just(Renames::Mtime), Just(Renames::Hash)],
        compare in prop_oneof![Just(Compare::Mtime), Just(Compare::Hash)],
        files in 1..10u8,
        steps in proptest::collection::vec(rename_step(), 1..8),
    ) {
        let opts = Options {
            compare,
            renames,
            conflict: ConflictMode::Newer,
            modify_window_ns: 1,
            date: "2026-11-30".into(),
        };
        let mut w = seeded(files, true);
        w.bisync_run(&opts, None, 0, Save::Settle).map_err(TestCaseError::fail)?;
        apply_renames(&mut w, &steps, None);
        let lib = w.listing(Side::Library, true);
        let peer = w.listing(Side::Peer, true);
        let plan = bisync(w.state.as_ref(), &lib, &peer, &opts);
        prop_assert!(
            plan.actions.iter().all(|a| matches!(a, Action::Move { .. })),
            "{:?}", plan.actions
        );
        w.bisync_run(&opts, None, 0, Save::Settle).map_err(TestCaseError::fail)?;
    }
}

#[derive(Clone, Debug)]
enum PullStep {
    Share(Edit),
    Local(Edit),
    Run {
        kill: Option<u8>,
        fail: u16,
        save: Save,
    },
}

fn pull_step() -> impl Strategy<Value = PullStep> {
    prop_oneof![
        5 => edit().prop_map(PullStep::Share),
        2 => edit().prop_map(PullStep::Local),
        2 => (proptest::option::of(any::<u8>()), failures(), save())
            .prop_map(|(kill, fail, save)| PullStep::Run { kill, fail, save }),
    ]
}

fn pull_options() -> impl Strategy<Value = PullOptions> {
    (
        prop_oneof![Just(Compare::Mtime), Just(Compare::Hash)],
        prop_oneof![
            Just(Renames::None),
            Just(Renames::Size),
            Just(Renames::Mtime),
            Just(Renames::Hash)
        ],
        any::<bool>(),
    )
        .prop_map(|(compare, renames, delete_extras)| PullOptions {
            compare,
            renames,
            delete_extras,
            modify_window_ns: 1,
        })
}

impl World {
    fn note_share(&mut self) {
        self.share_ever.extend(self.sides[1].keys().cloned());
    }

    fn pull_run(
        &mut self,
        opts: &PullOptions,
        kill: Option<u8>,
        fail: u16,
        save: Save,
    ) -> Result<(), String> {
        let hashes = opts.compare == Compare::Hash || opts.renames == Renames::Hash;
        self.note_run_start();
        let (local, share) = (
            self.listing(Side::Library, hashes),
            self.listing(Side::Peer, hashes),
        );
        let extras: Vec<String> = (local.keys())
            .filter(|p| !self.share_ever.contains(*p))
            .cloned()
            .collect();
        let plan = pull(self.state.as_ref(), &local, &share, opts);
        check_touches_each_path_once(&plan.actions)?;
        if let Some(a) = plan.actions.iter().find(|a| a.target() != Side::Library) {
            return Err(format!("pull writes to the share: {a:?}"));
        }
        let complete = self.carry_out(&plan.actions, kill, fail)?;
        let (local, share) = (
            self.listing(Side::Library, hashes),
            self.listing(Side::Peer, hashes),
        );
        if complete || save == Save::Settle {
            self.state = Some(pull::settle(self.state.as_ref(), &local, &share, opts));
        }
        self.check_nothing_lost()?;
        if complete {
            for (p, f) in &self.sides[1] {
                if self.sides[0].get(p).map(|l| l.content) != Some(f.content) {
                    return Err(format!("{p} not fetched"));
                }
            }
            for p in &extras {
                let kept = self.sides[0].contains_key(p);
                if kept == opts.delete_extras {
                    return Err(format!("local extra {p}: kept {kept}"));
                }
            }
            if !opts.delete_extras {
                for p in self.sides[0].keys() {
                    if !self.sides[1].contains_key(p) && self.share_ever.contains(p) {
                        // A file fetched before and gone from the share, left behind.
                        let prev = self.state.as_ref().map(|s| s.peer.contains_key(p));
                        if prev == Some(true) {
                            return Err(format!("{p} gone from the share, kept locally"));
                        }
                    }
                }
            } else if self.sides[0].len() != self.sides[1].len() {
                return Err("--delete-extras left extras".into());
            }
            let again = pull(self.state.as_ref(), &local, &share, opts);
            if !again.actions.is_empty() {
                return Err(format!("a second pull plans {:?}", again.actions));
            }
        }
        Ok(())
    }
}

fn run_pull_history(opts: &PullOptions, steps: &[PullStep]) -> Result<(), String> {
    let mut w = World {
        pull: true,
        ..World::default()
    };
    for step in steps {
        match step {
            PullStep::Share(edit) => {
                if let Some(op) = w.resolve(Side::Peer, edit) {
                    w.user(Side::Peer, &op);
                    w.note_share();
                }
            }
            PullStep::Local(edit) => {
                if let Some(op) = w.resolve(Side::Library, edit) {
                    w.user(Side::Library, &op);
                }
            }
            PullStep::Run { kill, fail, save } => w.pull_run(opts, *kill, *fail, *save)?,
        }
    }
    w.pull_run(opts, None, 0, Save::Settle)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After any history of share and local edits, a complete pull makes every share file local,
    /// keeps the local extras (or deletes them with `delete_extras`), loses no version (a local
    /// edit it replaces is in the backups), never writes to the share, and a second pull has
    /// nothing to do.
    #[test]
    fn any_pull_history_converges_without_loss(
        opts in pull_options(),
        steps in proptest::collection::vec(pull_step(), 1..40),
    ) {
        run_pull_history(&opts, &steps).map_err(TestCaseError::fail)?;
    }

    /// Renames alone on the share become local moves.
    #[test]
    fn pull_share_renames_alone_are_moves(
        renames in prop_oneof![Just(Renames::Size), Just(Renames::Mtime), Just(Renames::Hash)],
        files in 1..10u8,
        steps in proptest::collection::vec(rename_step(), 1..8),
    ) {
        let opts = PullOptions {
            compare: Compare::Mtime,
            renames,
            delete_extras: false,
            modify_window_ns: 1,
        };
        let mut w = seeded(files, true);
        w.pull = true;
        w.sides.swap(0, 1);
        w.note_share();
        w.pull_run(&opts, None, 0, Save::Settle).map_err(TestCaseError::fail)?;
        apply_renames(&mut w, &steps, Some(Side::Peer));
        w.note_share();
        let local = w.listing(Side::Library, true);
        let share = w.listing(Side::Peer, true);
        let plan = pull(w.state.as_ref(), &local, &share, &opts);
        prop_assert!(
            plan.actions.iter().all(|a| matches!(a, Action::Move { .. })),
            "{:?}", plan.actions
        );
        w.pull_run(&opts, None, 0, Save::Settle).map_err(TestCaseError::fail)?;
    }
}
