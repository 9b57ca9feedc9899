//! One bisync or pull run, from settings to summary: the guards (library present, no overlap,
//! one run per library), the listings (both sides at once), the plan and its guard, then (not
//! in a dry run) the executor and the next state. The state is saved only after the actions,
//! from the sides listed again (`settle`: a path takes its new entries only where both sides
//! agree), so it never claims more than happened; a run killed before that saves nothing, and
//! the next one plans against the old state and converges.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::execute::{self, Outcome, Target};
use super::listing::{self, Filter};
use super::plan::{self, Cap, Counts, Plan};
use super::pull::{self, PullOptions};
use super::state::{self, Kind};
use super::{Action, Compare, ConflictMode, Listing, Options, Renames, Side, State};
use crate::lock;
use crate::rclone::{self, Rclone};
use crate::report::{Exit, Failure, escape_controls, stop, usage};

pub struct BisyncSettings {
    pub library: PathBuf,
    pub peer: String,
    pub compare: Compare,
    pub renames: Renames,
    pub conflict: ConflictMode,
    pub max_delete: Cap,
    pub backup: bool,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub dry_run: bool,
    /// Wait for another run holding the library's lock instead of refusing.
    pub wait: bool,
}

pub struct PullSettings {
    pub library: PathBuf,
    pub from: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub delete_extras: bool,
    pub max_delete: Cap,
    pub backup: bool,
    pub dry_run: bool,
    pub wait: bool,
}

/// What a bisync did (a dry run: would do). A refused run did nothing: its counts are 0 and
/// what it would have done is under `refused.planned`.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub to_library: usize,
    pub to_peer: usize,
    pub moved_library: usize,
    pub moved_peer: usize,
    pub deleted_library: usize,
    pub deleted_peer: usize,
    pub conflicts: usize,
    pub backed_up: usize,
    pub unchanged: usize,
    pub failed: Vec<Failure>,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refused<Planned>>,
    /// One line per action (and conflict), in plan order.
    #[serde(skip)]
    pub plan_lines: Vec<String>,
    /// An rclone call failed as a whole (the peer, not a file): exit 4.
    #[serde(skip)]
    pub remote_failed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// How the conflicts were settled: the library's version kept, the peer's, both.
    #[serde(skip)]
    pub conflict_winners: [usize; 3],
}

/// What a pull did (a dry run: would do).
#[derive(Debug, Default, Serialize)]
pub struct PullSummary {
    pub downloaded: usize,
    pub moved: usize,
    pub deleted: usize,
    pub backed_up: usize,
    pub unchanged: usize,
    pub failed: Vec<Failure>,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refused<PullPlanned>>,
    #[serde(skip)]
    pub plan_lines: Vec<String>,
    #[serde(skip)]
    pub remote_failed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// Why a guard stopped the run before anything changed, and what it would have done.
#[derive(Debug, Serialize)]
pub struct Refused<P> {
    pub reason: String,
    pub planned: P,
}

/// A bisync plan's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub to_library: usize,
    pub to_peer: usize,
    pub moved_library: usize,
    pub moved_peer: usize,
    pub deleted_library: usize,
    pub deleted_peer: usize,
    pub conflicts: usize,
}

impl From<Counts> for Planned {
    fn from(c: Counts) -> Planned {
        Planned {
            to_library: c.to_library,
            to_peer: c.to_peer,
            moved_library: c.moved_library,
            moved_peer: c.moved_peer,
            deleted_library: c.deleted_library,
            deleted_peer: c.deleted_peer,
            conflicts: c.conflicts,
        }
    }
}

/// A pull plan's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PullPlanned {
    pub downloaded: usize,
    pub moved: usize,
    pub deleted: usize,
}

impl From<Counts> for PullPlanned {
    fn from(c: Counts) -> PullPlanned {
        PullPlanned {
            downloaded: c.to_library,
            moved: c.moved_library,
            deleted: c.deleted_library,
        }
    }
}

impl Summary {
    /// What happened, only what did: `copied 2 to the peer; 1 conflict (the peer's version
    /// kept); 5 unchanged`, `nothing to do: 7 files unchanged`, `would copy …` for a dry run,
    /// or the refusal with what it would have done.
    pub fn counts(&self) -> String {
        if let Some(r) = &self.refused {
            let p = r.planned;
            let would = deeds(
                &[
                    (
                        COPY,
                        counted(&[(p.to_library, TO_LIB), (p.to_peer, TO_PEER)]),
                    ),
                    (
                        MOVE,
                        counted(&[(p.moved_library, ON_LIB), (p.moved_peer, ON_PEER)]),
                    ),
                    (
                        DELETE,
                        counted(&[(p.deleted_library, ON_LIB), (p.deleted_peer, ON_PEER)]),
                    ),
                ],
                true,
            );
            return refused_sentence(self.dry_run, would, p.conflicts);
        }
        let did = deeds(
            &[
                (
                    COPY,
                    counted(&[(self.to_library, TO_LIB), (self.to_peer, TO_PEER)]),
                ),
                (
                    MOVE,
                    counted(&[(self.moved_library, ON_LIB), (self.moved_peer, ON_PEER)]),
                ),
                (
                    DELETE,
                    counted(&[(self.deleted_library, ON_LIB), (self.deleted_peer, ON_PEER)]),
                ),
                (BACK_UP, counted(&[(self.backed_up, "")])),
            ],
            self.dry_run,
        );
        let conflicts = (self.conflicts > 0).then(|| {
            let [library, peer, both] = self.conflict_winners;
            format!(
                "{} ({})",
                plural(self.conflicts, "conflict"),
                kept(library, peer, both)
            )
        });
        let clean = self.failed.is_empty() && !self.remote_failed && !self.interrupted;
        sentence(did, conflicts, self.unchanged, clean)
    }

    fn count(&mut self, actions: &[Action]) {
        let c = Plan {
            actions: actions.to_vec(),
            ..Plan::default()
        }
        .counts();
        self.to_library = c.to_library;
        self.to_peer = c.to_peer;
        self.moved_library = c.moved_library;
        self.moved_peer = c.moved_peer;
        self.deleted_library = c.deleted_library;
        self.deleted_peer = c.deleted_peer;
    }
}

impl PullSummary {
    /// What happened, only what did: `downloaded 2, deleted 1, backed up 1; 5 unchanged`,
    /// `nothing to do: 7 files unchanged`, `would download …` for a dry run, or the refusal.
    pub fn counts(&self) -> String {
        if let Some(r) = &self.refused {
            let p = r.planned;
            let would = deeds(
                &[
                    (DOWNLOAD, counted(&[(p.downloaded, "")])),
                    (MOVE, counted(&[(p.moved, "")])),
                    (DELETE, counted(&[(p.deleted, "")])),
                ],
                true,
            );
            return refused_sentence(self.dry_run, would, 0);
        }
        let did = deeds(
            &[
                (DOWNLOAD, counted(&[(self.downloaded, "")])),
                (MOVE, counted(&[(self.moved, "")])),
                (DELETE, counted(&[(self.deleted, "")])),
                (BACK_UP, counted(&[(self.backed_up, "")])),
            ],
            self.dry_run,
        );
        let clean = self.failed.is_empty() && !self.remote_failed && !self.interrupted;
        sentence(did, None, self.unchanged, clean)
    }
}

/// A verb of the summary, in the past and in the future (after "would").
type Verb = [&'static str; 2];
const COPY: Verb = ["copied", "copy"];
const MOVE: Verb = ["moved", "move"];
const DELETE: Verb = ["deleted", "delete"];
const BACK_UP: Verb = ["backed up", "back up"];
const DOWNLOAD: Verb = ["downloaded", "download"];
const TO_LIB: &str = "to the library";
const TO_PEER: &str = "to the peer";
const ON_LIB: &str = "on the library";
const ON_PEER: &str = "on the peer";

/// `2 to the library and 1 to the peer` of the counts that are not 0; `None` if all are.
fn counted(counts: &[(usize, &str)]) -> Option<String> {
    let parts: Vec<String> = (counts.iter().filter(|(n, _)| *n > 0))
        .map(|(n, place)| format!("{n} {place}").trim_end().to_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// `copied 2 to the peer, deleted 1 on the library` (in the future: `would copy …, delete …`)
/// of the clauses that counted something; `None` if none did.
fn deeds(clauses: &[(Verb, Option<String>)], future: bool) -> Option<String> {
    let done: Vec<String> = (clauses.iter())
        .filter_map(|(verb, what)| {
            let what = what.as_ref()?;
            Some(format!("{} {what}", verb[usize::from(future)]))
        })
        .collect();
    let joined = (!done.is_empty()).then(|| done.join(", "))?;
    Some(if future {
        format!("would {joined}")
    } else {
        joined
    })
}

/// `1 conflict`, `2 conflicts`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Which versions the conflicts kept: `the peer's version kept`, `both versions kept`, or
/// for a mix `the library's version kept for 2, the peer's for 1, both for 1`.
fn kept(library: usize, peer: usize, both: usize) -> String {
    let versions = |n: usize| if n == 1 { "version" } else { "versions" };
    match (library, peer, both) {
        (n, 0, 0) => format!("the library's {} kept", versions(n)),
        (0, n, 0) => format!("the peer's {} kept", versions(n)),
        (0, 0, _) => "both versions kept".to_owned(),
        _ => {
            let mut parts = Vec::new();
            for (n, whose, first) in [
                (library, "the library's", "the library's version"),
                (peer, "the peer's", "the peer's version"),
                (both, "both", "both versions"),
            ] {
                if n > 0 {
                    parts.push(if parts.is_empty() {
                        format!("{first} kept for {n}")
                    } else {
                        format!("{whose} for {n}")
                    });
                }
            }
            parts.join(", ")
        }
    }
}

/// The summary sentence: what was done, the conflicts, what was unchanged; `nothing to do: N
/// files unchanged` when nothing was done and nothing went wrong (`clean`).
fn sentence(
    did: Option<String>,
    conflicts: Option<String>,
    unchanged: usize,
    clean: bool,
) -> String {
    let mut parts: Vec<String> = did.into_iter().chain(conflicts).collect();
    if parts.is_empty() {
        return if clean {
            format!("nothing to do: {} unchanged", plural(unchanged, "file"))
        } else {
            format!("nothing was changed; {unchanged} unchanged")
        };
    }
    if unchanged > 0 {
        parts.push(format!("{unchanged} unchanged"));
    }
    parts.join("; ")
}

/// A refused run's sentence, with what it would have done.
fn refused_sentence(dry_run: bool, would: Option<String>, conflicts: usize) -> String {
    let mut what: Vec<String> = would.into_iter().collect();
    if conflicts > 0 {
        what.push(plural(conflicts, "conflict"));
    }
    let head = if dry_run {
        "would be refused"
    } else {
        "refused, nothing was changed"
    };
    if what.is_empty() {
        head.to_owned()
    } else {
        format!("{head} (it {})", what.join("; "))
    }
}

/// The exit code a finished bisync or pull ends with.
pub fn exit_of(refused: bool, remote_failed: bool, failed: usize) -> Exit {
    if refused {
        Exit::Refused
    } else if remote_failed {
        Exit::Remote
    } else {
        Exit::files(failed)
    }
}

/// The line of one action, as `--dry-run` and `-v` show it.
pub fn action_line(action: &Action, backup: bool) -> String {
    let e = |s: &str| escape_controls(s).into_owned();
    match action {
        Action::Copy {
            from,
            from_path,
            to_path,
        } if from_path == to_path => {
            format!("copy {from} → {}: {}", from.other(), e(from_path))
        }
        Action::Copy {
            from,
            from_path,
            to_path,
        } => format!(
            "copy {from} → {}: {} → {}",
            from.other(),
            e(from_path),
            e(to_path)
        ),
        Action::Move { side, from, to } => format!("move {side}: {} → {}", e(from), e(to)),
        Action::Delete { side, path } => format!(
            "delete {side}: {}{}",
            e(path),
            if backup { " (backed up)" } else { "" }
        ),
    }
}

fn plan_lines(plan: &Plan, backup: bool) -> Vec<String> {
    let conflicts = plan.conflicts.iter().map(|c| match c.winner {
        Some(side) => format!("conflict: {} ({side} wins)", escape_controls(&c.path)),
        None => format!("conflict: {} (both kept)", escape_controls(&c.path)),
    });
    conflicts
        .chain(plan.actions.iter().map(|a| action_line(a, backup)))
        .collect()
}

/// How many of the plan's conflicts keep the library's version, the peer's, both.
fn winners(plan: &Plan) -> [usize; 3] {
    let mut winners = [0; 3];
    for conflict in &plan.conflicts {
        winners[match conflict.winner {
            Some(Side::Library) => 0,
            Some(Side::Peer) => 1,
            None => 2,
        }] += 1;
    }
    winners
}

/// The run's UTC date, `YYYY-MM-DD`, for keep-both names.
fn today() -> String {
    // `.musync-backups/YYYY-MM-DDT…`: the backup folder's name starts with the date.
    let dir = crate::push::fresh_backup_dir(std::time::SystemTime::now(), |_| false);
    dir[crate::push::BACKUP_DIR.len() + 1..][..10].to_owned()
}

/// The guard that needs no listing: the peer (`role`) neither is the library nor lies inside
/// or around it (exit 2).
fn check_folders(library: &Path, peer: &str, role: crate::overlap::Role) -> anyhow::Result<()> {
    crate::overlap::check_side(library, peer, role).map_err(usage)
}

/// The library's lock, kept in its folder of the user's state `dir` so that nothing is written
/// to the library before the guards ran. A dry run, which writes nothing, takes none; it says
/// so if another run is writing, as its plan is then of the sides part-way through that run.
fn take_lock(
    dir: &Path,
    library: &Path,
    command: &str,
    dry_run: bool,
    wait: bool,
) -> anyhow::Result<Option<lock::Lock>> {
    if dry_run {
        lock::note_writer_in(dir, "the library", library);
        return Ok(None);
    }
    lock::take_in(dir, "library", library, command, wait)
        .map(Some)
        .map_err(|e| {
            // The lock's message speaks of staging, which this is not.
            match e.downcast::<lock::Busy>() {
                Ok(busy) => stop(
                    Exit::Refused,
                    anyhow::anyhow!(
                        "refused: library {} is in use by {}; run again when it ends, or with \
                         --wait to wait for it. Nothing was changed",
                        busy.staging,
                        busy.holder
                    ),
                ),
                Err(e) => e,
            }
        })
}

/// The library is a folder. If not: a refusal (exit 3) when it held files at the last run (an
/// unmounted disk), else a usage error (exit 2).
fn library_present(library: &Path, before: usize, kind: Kind) -> anyhow::Result<Option<String>> {
    if library.is_dir() {
        Ok(None)
    } else if before > 0 {
        Ok(Some(format!(
            "refused: the library {} is missing but held {} at the last {}; is its disk \
             mounted? Nothing was changed",
            library.display(),
            plural(before, "file"),
            kind.name()
        )))
    } else {
        Err(usage(anyhow::anyhow!(
            "library {} is missing or not a folder; is the disk mounted? Nothing was changed",
            library.display()
        )))
    }
}

/// Whether the peer's folder does not exist (asked only when it lists no file). On a first
/// run (no file of it in the state) that is a usage error (exit 2): a typo must not become a
/// new folder holding a copy of the library.
fn peer_missing(
    rclone: &Rclone,
    peer: &str,
    role: &str,
    listed: &Listing,
    before: usize,
) -> anyhow::Result<bool> {
    if !listed.is_empty() || rclone.folder(peer)?.is_some() {
        return Ok(false);
    }
    if before == 0 {
        let shown = rclone::redact(peer);
        let make = if crate::overlap::local_remote(peer).is_some() {
            "mkdir"
        } else {
            "rclone mkdir"
        };
        return Err(usage(anyhow::anyhow!(
            "the {role} {shown} does not exist; create it first (`{make} {shown}`) if it is a \
             new copy. Nothing was changed"
        )));
    }
    Ok(true)
}

/// A guard's refusal in words: an empty side is named with its path and asks whether it is
/// mounted.
fn refusal_reason(
    refusal: &plan::Refusal,
    library: &Path,
    peer: &str,
    peer_missing: bool,
    kind: Kind,
) -> String {
    let plan::Reason::Empty { before } = refusal.reason else {
        return refusal.to_string();
    };
    match refusal.side {
        Side::Library => format!(
            "refused: the library {} is empty but held {} at the last {}; is its disk \
             mounted? Nothing was changed",
            library.display(),
            plural(before, "file"),
            kind.name()
        ),
        Side::Peer => format!(
            "refused: the {} {} is {} but held {} at the last {}; is it mounted? Nothing was \
             changed",
            refusal.role,
            rclone::redact(peer),
            if peer_missing { "missing" } else { "empty" },
            plural(before, "file"),
            kind.name()
        ),
    }
}

/// Removes what a killed run left in the library's fetch folder: only library sync writes
/// there, under the lock the caller holds.
fn remove_leftovers(library: &Path, dry_run: bool) -> anyhow::Result<()> {
    let tmp = library.join(super::RESERVED[2]);
    if dry_run || !tmp.exists() {
        return Ok(());
    }
    std::fs::remove_dir_all(&tmp).map_err(|e| {
        stop(
            Exit::Local,
            anyhow::anyhow!("removing {}: {e}", tmp.display()),
        )
    })
}

/// The peer's upload folder for this library: stable, so a killed run's leftovers are reused.
fn peer_tmp(library: &Path) -> String {
    use sha2::{Digest, Sha256};
    let real = std::fs::canonicalize(library).unwrap_or_else(|_| library.to_owned());
    let mut hash = Sha256::new();
    hash.update(b"libsync\n");
    hash.update(real.as_os_str().as_encoded_bytes());
    let key = crate::fsutil::hex(&hash.finalize());
    format!("{}/{}", super::RESERVED[2], &key[..16])
}

/// Both sides as listed.
struct Sides {
    library: Listing,
    peer: Listing,
    /// Whether the peer gave hashes (else the caller compares by time).
    peer_hashes: bool,
    /// Whether the peer's upload folder holds files left by a killed run.
    leftovers: bool,
}

/// Both sides listed at once (the library walk and rclone overlap), with hashes when `hashes`.
fn list_sides(
    rclone: &Rclone,
    library: &Path,
    peer: &str,
    filter: &Filter,
    prev: Option<&State>,
    hashes: bool,
) -> anyhow::Result<Sides> {
    let tmp = peer_tmp(library);
    let (lib, remote) = std::thread::scope(|s| {
        let remote = s.spawn(|| listing::peer(rclone, peer, filter, &tmp));
        let lib = listing::local(library, filter);
        (
            lib,
            remote.join().expect("the listing thread does not panic"),
        )
    });
    let (mut lib, (mut remote, leftovers)) = (lib?, remote?);
    let mut peer_hashes = true;
    if hashes {
        let missing = listing::reuse_hashes(&mut remote, prev.map(|s| &s.peer));
        peer_hashes = listing::hash_peer(rclone, peer, &mut remote, &missing)?;
        if peer_hashes {
            let missing = listing::reuse_hashes(&mut lib, prev.map(|s| &s.library));
            listing::hash_local(library, &mut lib, &missing);
        } else {
            remote.values_mut().for_each(|e| e.hash = None);
        }
    }
    Ok(Sides {
        library: lib,
        peer: remote,
        peer_hashes,
        leftovers,
    })
}

/// After the actions: both sides listed again, hashes carried over from the listings before
/// (with the actions applied) where a file's path, size and time match.
fn list_after(
    rclone: &Rclone,
    library: &Path,
    peer: &str,
    filter: &Filter,
    before: (&Listing, &Listing),
    done: &[Action],
    hashes: bool,
) -> anyhow::Result<(Listing, Listing)> {
    let (mut lib_was, mut peer_was) = (before.0.clone(), before.1.clone());
    execute::apply(done, &mut lib_was, &mut peer_was);
    let was = State {
        library: lib_was,
        peer: peer_was,
    };
    let sides = list_sides(rclone, library, peer, filter, Some(&was), hashes)?;
    Ok((sides.library, sides.peer))
}

/// What bisync and pull do first, in this order: refuse overlapping folders and bad globs,
/// take the library's lock, load the pair's previous listings, refuse an emptied or missing
/// library that held files, and remove a killed run's leftovers.
struct Start {
    root: std::path::PathBuf,
    filter: Filter,
    prev: Option<State>,
    _lock: Option<lock::Lock>,
}

impl Start {
    /// Files the previous run saw on the peer (or share).
    fn peer_before(&self) -> usize {
        self.prev.as_ref().map_or(0, |s| s.peer.len())
    }
}

/// `Ok(Err(reason))`: the library guard refused the run.
fn start(
    kind: Kind,
    library: &Path,
    other: &str,
    role: crate::overlap::Role,
    (include, exclude): (&[String], &[String]),
    dry_run: bool,
    wait: bool,
) -> anyhow::Result<Result<Start, String>> {
    check_folders(library, other, role)?;
    let filter = Filter::new(include, exclude).map_err(usage)?;
    let root = state::root()?;
    let dir = state::library_dir(&root, library);
    let lock = take_lock(&dir, library, kind.name(), dry_run, wait)?;
    let prev = state::load(&root, library, kind, other)?;
    let before = prev.as_ref().map_or(0, |s| s.library.len());
    if let Some(reason) = library_present(library, before, kind)? {
        return Ok(Err(reason));
    }
    remove_leftovers(library, dry_run)?;
    Ok(Ok(Start {
        root,
        filter,
        prev,
        _lock: lock,
    }))
}

/// `musync bisync`: unless it is a dry run, takes the library's lock for the run.
pub fn bisync(settings: &BisyncSettings, rclone: &Rclone) -> anyhow::Result<Summary> {
    let (library, peer) = (&settings.library, settings.peer.as_str());
    let globs = (&settings.include[..], &settings.exclude[..]);
    let role = crate::overlap::Role::Peer;
    let start = match start(
        Kind::Bisync,
        library,
        peer,
        role,
        globs,
        settings.dry_run,
        settings.wait,
    )? {
        Ok(start) => start,
        Err(reason) => {
            return Ok(Summary {
                dry_run: settings.dry_run,
                refused: Some(Refused {
                    reason,
                    planned: Planned::default(),
                }),
                ..Summary::default()
            });
        }
    };
    let (root, filter, prev) = (&start.root, &start.filter, &start.prev);
    let want_hashes = settings.compare == Compare::Hash || settings.renames == Renames::Hash;
    let sides = list_sides(rclone, library, peer, filter, prev.as_ref(), want_hashes)?;
    let missing = peer_missing(rclone, peer, "peer", &sides.peer, start.peer_before())?;
    let (lib, remote, peer_hashes) = (&sides.library, &sides.peer, sides.peer_hashes);
    let mut opts = Options {
        compare: settings.compare,
        renames: settings.renames,
        conflict: settings.conflict,
        modify_window_ns: listing::modify_window_ns(peer),
        date: today(),
    };
    if want_hashes && !peer_hashes {
        eprintln!(
            "musync: note: {} gives no MD5 hashes; comparing by size and modification time \
             instead",
            rclone::redact(peer)
        );
        if opts.compare == Compare::Hash {
            opts.compare = Compare::Mtime;
        }
        if opts.renames == Renames::Hash {
            opts.renames = Renames::Mtime;
        }
    }
    let plan = plan::bisync(prev.as_ref(), lib, remote, &opts);
    let mut summary = Summary {
        dry_run: settings.dry_run,
        unchanged: plan.unchanged,
        conflicts: plan.conflicts.len(),
        conflict_winners: winners(&plan),
        plan_lines: plan_lines(&plan, settings.backup),
        ..Summary::default()
    };
    if let Err(refusal) = plan::guard(prev.as_ref(), lib, remote, &plan, settings.max_delete) {
        summary.conflicts = 0;
        summary.refused = Some(Refused {
            reason: refusal_reason(&refusal, library, peer, missing, Kind::Bisync),
            planned: refusal.counts.into(),
        });
        return Ok(summary);
    }
    if settings.dry_run {
        summary.count(&plan.actions);
        summary.backed_up = planned_backups(settings.backup, &plan.actions, lib, remote);
        return Ok(summary);
    }
    if plan.is_empty() {
        // Nothing to do: the listings are the sides as they are.
        let next = plan::settle(prev.as_ref(), lib, remote, &opts);
        if prev.as_ref() != Some(&next) {
            state::save(root, library, Kind::Bisync, peer, &next)?;
        }
        return Ok(summary);
    }
    let outcome = carry_out(rclone, library, peer, settings.backup, &plan, &sides)?;
    summary.count(&outcome.done);
    summary.backed_up = outcome.backed_up;
    summary.remote_failed = outcome.remote_failed;
    summary.interrupted = outcome.interrupted;
    summary.failed = outcome.failed;
    if !summary.interrupted {
        let (lib_after, peer_after) = list_after(
            rclone,
            library,
            peer,
            filter,
            (lib, remote),
            &outcome.done,
            want_hashes && peer_hashes,
        )?;
        let next = plan::settle(prev.as_ref(), &lib_after, &peer_after, &opts);
        state::save(root, library, Kind::Bisync, peer, &next)?;
    }
    Ok(summary)
}

/// The files a dry run's plan would move into the backups (as the executor counts them):
/// each one a copy replaces, a move lands on, or a deletion removes.
fn planned_backups(backup: bool, actions: &[Action], library: &Listing, peer: &Listing) -> usize {
    if !backup {
        return 0;
    }
    let (mut library, mut peer) = (library.clone(), peer.clone());
    let mut backed_up = 0;
    for action in actions {
        let path = match action {
            Action::Copy { to_path, .. } => to_path,
            Action::Move { to, .. } => to,
            Action::Delete { path, .. } => path,
        };
        let side = match action.target() {
            Side::Library => &library,
            Side::Peer => &peer,
        };
        backed_up += usize::from(side.contains_key(path));
        execute::apply(std::slice::from_ref(action), &mut library, &mut peer);
    }
    backed_up
}

/// Runs the executor with this run's backup and upload folders.
fn carry_out(
    rclone: &Rclone,
    library: &Path,
    peer: &str,
    backup: bool,
    plan: &Plan,
    sides: &Sides,
) -> anyhow::Result<Outcome> {
    let backup_dir =
        crate::push::fresh_backup_dir(std::time::SystemTime::now(), |d| library.join(d).exists());
    let peer_tmp = peer_tmp(library);
    let target = Target {
        library,
        peer,
        backup,
        backup_dir: &backup_dir,
        peer_tmp: &peer_tmp,
        leftovers: sides.leftovers,
    };
    execute::execute(rclone, &target, &plan.actions, &sides.peer)
}

/// `musync pull`: unless it is a dry run, takes the library's lock for the run. The share is
/// compared by hash where it gives MD5s (else by size and time), and renames found by hash.
pub fn pull(settings: &PullSettings, rclone: &Rclone) -> anyhow::Result<PullSummary> {
    let (library, from) = (&settings.library, settings.from.as_str());
    let globs = (&settings.include[..], &settings.exclude[..]);
    let role = crate::overlap::Role::Share;
    let start = match start(
        Kind::Pull,
        library,
        from,
        role,
        globs,
        settings.dry_run,
        settings.wait,
    )? {
        Ok(start) => start,
        Err(reason) => {
            return Ok(PullSummary {
                dry_run: settings.dry_run,
                refused: Some(Refused {
                    reason,
                    planned: PullPlanned::default(),
                }),
                ..PullSummary::default()
            });
        }
    };
    let (root, filter, prev) = (&start.root, &start.filter, &start.prev);
    let sides = list_sides(rclone, library, from, filter, prev.as_ref(), true)?;
    let missing = peer_missing(rclone, from, "share", &sides.peer, start.peer_before())?;
    let (local, share, hashed) = (&sides.library, &sides.peer, sides.peer_hashes);
    if !hashed {
        eprintln!(
            "musync: note: {} gives no MD5 hashes; comparing by size and modification time \
             instead",
            rclone::redact(from)
        );
    }
    let (compare, renames) = if hashed {
        (Compare::Hash, Renames::Hash)
    } else {
        (Compare::Mtime, Renames::Mtime)
    };
    let opts = PullOptions {
        compare,
        renames,
        delete_extras: settings.delete_extras,
        modify_window_ns: listing::modify_window_ns(from),
    };
    let plan = pull::pull(prev.as_ref(), local, share, &opts);
    let mut summary = PullSummary {
        dry_run: settings.dry_run,
        unchanged: plan.unchanged,
        plan_lines: plan_lines(&plan, settings.backup),
        ..PullSummary::default()
    };
    if let Err(refusal) = pull::guard(prev.as_ref(), local, share, &plan, settings.max_delete) {
        summary.refused = Some(Refused {
            reason: refusal_reason(&refusal, library, from, missing, Kind::Pull),
            planned: refusal.counts.into(),
        });
        return Ok(summary);
    }
    let count = |s: &mut PullSummary, actions: &[Action]| {
        for a in actions {
            match a {
                Action::Copy { .. } => s.downloaded += 1,
                Action::Move { .. } => s.moved += 1,
                Action::Delete { .. } => s.deleted += 1,
            }
        }
    };
    debug_assert!(plan.actions.iter().all(|a| a.target() == Side::Library));
    if settings.dry_run {
        count(&mut summary, &plan.actions);
        summary.backed_up = planned_backups(settings.backup, &plan.actions, local, share);
        return Ok(summary);
    }
    if plan.is_empty() {
        let next = pull::settle(prev.as_ref(), local, share, &opts);
        if prev.as_ref() != Some(&next) {
            state::save(root, library, Kind::Pull, from, &next)?;
        }
        return Ok(summary);
    }
    let outcome = carry_out(rclone, library, from, settings.backup, &plan, &sides)?;
    count(&mut summary, &outcome.done);
    summary.backed_up = outcome.backed_up;
    summary.remote_failed = outcome.remote_failed;
    summary.interrupted = outcome.interrupted;
    summary.failed = outcome.failed;
    if !summary.interrupted {
        let (local_after, share_after) = list_after(
            rclone,
            library,
            from,
            filter,
            (local, share),
            &outcome.done,
            hashed,
        )?;
        let next = pull::settle(prev.as_ref(), &local_after, &share_after, &opts);
        state::save(root, library, Kind::Pull, from, &next)?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_held_before_is_one_file() {
        let missing = Path::new("/nonexistent/musync-library");
        let said = library_present(missing, 1, Kind::Bisync).unwrap().unwrap();
        assert!(
            said.contains("is missing but held 1 file at the last bisync"),
            "{said}"
        );
        let said = library_present(missing, 2, Kind::Pull).unwrap().unwrap();
        assert!(
            said.contains("is missing but held 2 files at the last pull"),
            "{said}"
        );
    }

    #[test]
    fn each_action_has_one_line_as_the_issue_words_it() {
        let copy = Action::Copy {
            from: Side::Library,
            from_path: "Artist/Album/01.flac".into(),
            to_path: "Artist/Album/01.flac".into(),
        };
        assert_eq!(
            action_line(&copy, true),
            "copy library → peer: Artist/Album/01.flac"
        );
        let moved = Action::Move {
            side: Side::Peer,
            from: "a".into(),
            to: "b".into(),
        };
        assert_eq!(action_line(&moved, true), "move peer: a → b");
        let delete = Action::Delete {
            side: Side::Library,
            path: "x\ny".into(),
        };
        assert_eq!(
            action_line(&delete, true),
            r"delete library: x\ny (backed up)"
        );
        assert_eq!(action_line(&delete, false), r"delete library: x\ny");
    }

    // Regression: the summary listed every zero ("moved 0 on the library and 0 on the peer, …")
    // and said "1 conflicts".
    #[test]
    fn the_summary_says_only_what_happened() {
        let s = Summary {
            to_peer: 2,
            conflicts: 1,
            conflict_winners: [0, 1, 0],
            unchanged: 5,
            ..Summary::default()
        };
        assert_eq!(
            s.counts(),
            "copied 2 to the peer; 1 conflict (the peer's version kept); 5 unchanged"
        );
        let nothing = Summary {
            unchanged: 7,
            ..Summary::default()
        };
        assert_eq!(nothing.counts(), "nothing to do: 7 files unchanged");
        let dry = Summary {
            to_library: 1,
            to_peer: 2,
            deleted_library: 1,
            backed_up: 1,
            conflicts: 3,
            conflict_winners: [2, 0, 1],
            dry_run: true,
            ..Summary::default()
        };
        assert_eq!(
            dry.counts(),
            "would copy 1 to the library and 2 to the peer, delete 1 on the library, back up 1; \
             3 conflicts (the library's version kept for 2, both for 1)"
        );
        let failed = Summary {
            unchanged: 1,
            failed: vec![Failure::new("a", "no")],
            ..Summary::default()
        };
        assert_eq!(failed.counts(), "nothing was changed; 1 unchanged");
        let refused = Summary {
            refused: Some(Refused {
                reason: String::new(),
                planned: Planned {
                    deleted_library: 2,
                    ..Planned::default()
                },
            }),
            ..Summary::default()
        };
        assert_eq!(
            refused.counts(),
            "refused, nothing was changed (it would delete 2 on the library)"
        );
        let pull = PullSummary {
            downloaded: 2,
            deleted: 1,
            backed_up: 1,
            unchanged: 5,
            ..PullSummary::default()
        };
        assert_eq!(
            pull.counts(),
            "downloaded 2, deleted 1, backed up 1; 5 unchanged"
        );
        let pull = PullSummary {
            unchanged: 1,
            dry_run: true,
            ..PullSummary::default()
        };
        assert_eq!(pull.counts(), "nothing to do: 1 file unchanged");
    }

    #[test]
    fn a_refusal_wins_over_failures_and_the_remote_over_files() {
        assert_eq!(exit_of(true, true, 3), Exit::Refused);
        assert_eq!(exit_of(false, true, 3), Exit::Remote);
        assert_eq!(exit_of(false, false, 3), Exit::SomeFailed);
        assert_eq!(exit_of(false, false, 0), Exit::Ok);
    }

    #[test]
    fn the_json_has_exactly_the_issues_fields() {
        let keys = |v: serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        let bisync = serde_json::to_value(Summary::default()).unwrap();
        let mut want = [
            "to_library",
            "to_peer",
            "moved_library",
            "moved_peer",
            "deleted_library",
            "deleted_peer",
            "conflicts",
            "backed_up",
            "unchanged",
            "failed",
            "dry_run",
        ];
        want.sort_unstable();
        assert_eq!(keys(bisync), want);
        let pull = serde_json::to_value(PullSummary::default()).unwrap();
        let mut want = [
            "downloaded",
            "moved",
            "deleted",
            "backed_up",
            "unchanged",
            "failed",
            "dry_run",
        ];
        want.sort_unstable();
        assert_eq!(keys(pull), want);
    }
}
