//! The push stage: make the remote equal the staged mirror with the real rclone. It lists the
//! remote once (symbolic links included, so nothing is written through one; and, only when two
//! names differ in case alone, asks whether the remote ignores case), plans from the manifest,
//! the listing and the push state (pure, in `plan`), checks the guards, then runs a handful of
//! rclone calls (the executor, in `execute`), saving the state after each so it never claims
//! more than happened. Files musync did not push are never deleted (unless asked).

mod backups;
mod execute;
pub mod plan;
pub mod state;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use backups::{
    BACKUP_DIR, fresh_dir as fresh_backup_dir, parse_age as backups_age, prune, random_tag,
};
use plan::{DeleteCap, Local, Options};
use state::State;

use crate::fsutil::Stamp;
use crate::manifest;
use crate::rclone::{self, Rclone};
use crate::relpath;
use crate::report::{self, Failure, escape_controls};

/// Where uploads wait on the remote, whole or in part, until they are renamed into place; never
/// a mirror file. Each staging (on each machine) has a folder of its own in it, which the push
/// lock of that staging guards, so a push may empty it without touching another's.
pub const UPLOAD_DIR: &str = ".musync-tmp";

/// `.musync-tmp/<16 hex digits>`: this machine's and this staging folder's upload folder.
fn upload_dir(staging: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut host = [0u8; 256];
    // SAFETY: gethostname writes at most `host.len()` bytes into the buffer.
    let got = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) };
    let host = if got == 0 {
        let end = host.iter().position(|&b| b == 0).unwrap_or(host.len());
        &host[..end]
    } else {
        &[]
    };
    let staging = std::fs::canonicalize(staging).unwrap_or_else(|_| staging.to_owned());
    let mut hash = Sha256::new();
    hash.update(host);
    hash.update(b"\n");
    hash.update(staging.as_os_str().as_encoded_bytes());
    let key = crate::fsutil::hex(&hash.finalize());
    format!("{UPLOAD_DIR}/{}", &key[..16])
}

pub struct PushSettings {
    pub staging: PathBuf,
    pub remote: String,
    pub dry_run: bool,
    pub backup: bool,
    pub delete_foreign: bool,
    pub max_delete: DeleteCap,
    /// A dry run's mirror as the convert plan will leave it (`sync --dry-run`), instead of
    /// staging's: files not made yet are planned as uploads, with estimated sizes.
    pub predicted: Option<BTreeMap<String, Local>>,
}

/// What a push did. A refused push did nothing: its counts are 0 and what it would have done is
/// under `refused.planned`. A dry run's counts are its plan. In a push that ran,
/// uploaded + moved + adopted + unchanged (+ the staged files that failed) = the files in the
/// mirror.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub uploaded: usize,
    pub moved: usize,
    pub deleted: usize,
    pub backed_up: usize,
    pub bytes_uploaded: u64,
    /// Files deleted or changed on the server since the last push, and put back.
    pub restored: usize,
    /// Found on the remote as staged though not recorded as pushed (e.g. uploaded by a push that
    /// was killed): recorded, not sent again.
    pub adopted: usize,
    /// On the remote and recorded already: nothing to do.
    pub unchanged: usize,
    pub failed: Vec<Failure>,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refused>,
    #[serde(skip)]
    pub plan_lines: Vec<String>,
    /// An rclone call failed (as opposed to a staged file).
    #[serde(skip)]
    pub remote_failed: bool,
    /// musync refused to hand rclone a staged path (a symlink, not a regular file): a guard.
    #[serde(skip)]
    pub guard_refused: bool,
    /// Ctrl-C stopped the push between rclone calls; the push state holds what was done.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// Why a push refused to act, and what it would have done.
#[derive(Debug, Serialize)]
pub struct Refused {
    pub reason: String,
    /// `None` when it was refused before it could plan (another push runs, nothing is staged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<Planned>,
}

impl Refused {
    fn unplanned(reason: String) -> Refused {
        Refused {
            reason,
            planned: None,
        }
    }
}

/// The steps of a plan, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub upload: usize,
    pub bytes: u64,
    #[serde(rename = "move")]
    pub moves: usize,
    pub delete: usize,
    pub back_up: usize,
    pub adopt: usize,
}

impl Planned {
    fn of(plan: &plan::Plan) -> Planned {
        Planned {
            upload: plan.uploads.len(),
            bytes: plan.bytes,
            moves: plan.moves.len(),
            delete: plan.removed.len(),
            back_up: plan.backups.len(),
            adopt: plan.adopted.len(),
        }
    }
}

impl Summary {
    /// `uploaded 3 files (1024 bytes), moved 1, …; 5 unchanged`, in the future tense (`would
    /// upload …`) for a dry run, and for a refused push `refused, nothing was changed` with
    /// what it would have done.
    pub fn counts(&self) -> String {
        if let Some(refused_plan) = &self.refused {
            let refused = if self.dry_run {
                "would be refused"
            } else {
                "refused, nothing was changed"
            };
            let Some(p) = &refused_plan.planned else {
                return refused.to_owned();
            };
            let mut line = format!(
                "{refused}; it would upload {} files ({} bytes), move {}, delete {}, back up {}; \
                 {} unchanged",
                p.upload, p.bytes, p.moves, p.delete, p.back_up, self.unchanged
            );
            if p.adopt > 0 {
                line += &format!(", {} to adopt", p.adopt);
            }
            return line;
        }
        let [upload, moved, deleted, backed_up, restored, adopted] = if self.dry_run {
            [
                "would upload",
                "move",
                "delete",
                "back up",
                "to restore",
                "to adopt",
            ]
        } else {
            [
                "uploaded",
                "moved",
                "deleted",
                "backed up",
                "restored",
                "adopted",
            ]
        };
        let mut line = format!(
            "{upload} {} files ({} bytes), {moved} {}, {deleted} {}, {backed_up} {}; {} unchanged",
            self.uploaded,
            self.bytes_uploaded,
            self.moved,
            self.deleted,
            self.backed_up,
            self.unchanged
        );
        if self.adopted > 0 {
            line += &format!(
                ", {} {adopted} (already on the remote; recorded, not sent again)",
                self.adopted
            );
        }
        if self.restored > 0 {
            line += &format!("; {} {restored} after changes on the server", self.restored);
        }
        line
    }
}

/// What the staging folder says: the mirror, the stamp each staged file had when musync made
/// it (`None` when the mirror came from the push state), and the push state.
struct LocalSide {
    manifest_empty: bool,
    mirror: BTreeMap<String, Local>,
    stamps: Option<BTreeMap<String, Stamp>>,
    fingerprint: String,
    state: State,
}

/// `preloaded`: the manifest as the caller has it already (a `sync` or `status` that planned the
/// convert from it), so it is not loaded again; one handed over (owned) may be let go.
fn local_side(
    staging: &Path,
    remote: &str,
    preloaded: &mut Option<Cow<'_, manifest::Manifest>>,
) -> anyhow::Result<LocalSide> {
    let state = State::load(staging, remote)?;
    let fingerprint = manifest::fingerprint(staging);
    // The manifest has not changed since a push made the remote equal to it: the push state
    // holds the mirror, and the manifest (the larger file by far) need not be read.
    if state.complete_for.as_ref() == Some(&fingerprint) && !state.files.is_empty() {
        let_go(preloaded);
        let mirror = state.files.iter().map(|(p, f)| {
            (
                p.clone(),
                Local {
                    size: f.size,
                    hash: f.hash.clone(),
                },
            )
        });
        return Ok(LocalSide {
            manifest_empty: false,
            mirror: mirror.collect(),
            stamps: None,
            fingerprint,
            state,
        });
    }
    let loaded;
    let manifest = match preloaded.as_deref() {
        Some(m) => m,
        None => {
            loaded = load_manifest(staging)?;
            &loaded
        }
    };
    let mirror = manifest.records.values().map(|r| {
        (
            r.output.clone(),
            Local {
                size: r.output_stamp.size,
                hash: r.output_hash.to_string(),
            },
        )
    });
    Ok(LocalSide {
        manifest_empty: manifest.records.is_empty(),
        mirror: mirror.collect(),
        stamps: Some(output_stamps(manifest)),
        fingerprint,
        state,
    })
}

/// Frees a manifest handed over (`sync`'s) when the push state holds the mirror: not kept
/// while the listing comes in and the push plans, which made a no-op sync's peak memory at
/// 100,000 tracks. (Kept otherwise: a push with work plans again from a new listing. The rare
/// push that finds work after all reads the staged files' stamps from the file.)
fn let_go(preloaded: &mut Option<Cow<'_, manifest::Manifest>>) {
    if let Some(Cow::Owned(manifest)) = preloaded.take_if(|m| matches!(m, Cow::Owned(_))) {
        crate::fsutil::free_and_return(manifest);
    }
}

fn load_manifest(staging: &Path) -> anyhow::Result<manifest::Manifest> {
    let manifest = manifest::load(staging)?;
    tracing::debug!(
        "push: loaded the manifest ({} records)",
        manifest.records.len()
    );
    Ok(manifest)
}

fn output_stamps(manifest: &manifest::Manifest) -> BTreeMap<String, Stamp> {
    manifest
        .records
        .values()
        .map(|r| (r.output.clone(), r.output_stamp))
        .collect()
}

/// A value freed on a thread of its own when it goes out of scope, not on the thread that
/// waits for it: freeing the maps of a no-op push (the listing, the push state and the mirror,
/// 100,000 paths each) took some 40 ms, paid after the work was done.
pub struct FreedAside<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> FreedAside<T> {
    pub fn new(value: T) -> FreedAside<T> {
        FreedAside(Some(value))
    }
}

impl<T: Send + 'static> std::ops::Deref for FreedAside<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_ref().expect("only taken on drop")
    }
}

impl<T: Send + 'static> std::ops::DerefMut for FreedAside<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("only taken on drop")
    }
}

impl<T: Send + 'static> Drop for FreedAside<T> {
    fn drop(&mut self) {
        crate::fsutil::free_in_background(self.0.take());
    }
}

/// The paths of `map` that start with `prefix`, found by where they sort, not by a look at
/// every path.
fn under<'a, V>(map: &'a BTreeMap<String, V>, prefix: &'a str) -> impl Iterator<Item = &'a str> {
    use std::ops::Bound;
    (map.range::<str, _>((Bound::Included(prefix), Bound::Unbounded)))
        .map(|(p, _)| p.as_str())
        .take_while(move |p| p.starts_with(prefix))
}

/// `relpath::check_line`'s test for a line break, without the char searcher: it is asked of
/// every listed and every staged path.
fn one_line(path: &str) -> bool {
    !path.bytes().any(|b| matches!(b, b'\n' | b'\r'))
}

/// Unless it is a dry run, the caller holds the staging folder's lock (`crate::lock`).
pub fn run(settings: &PushSettings, rclone: &Rclone) -> anyhow::Result<Summary> {
    run_with(settings, rclone, None)
}

/// `run`, with the manifest the caller loaded already (`None`: loaded if needed).
pub fn run_with(
    settings: &PushSettings,
    rclone: &Rclone,
    manifest: Option<&manifest::Manifest>,
) -> anyhow::Result<Summary> {
    run_listed(settings, rclone, manifest.map(Cow::Borrowed), None)
}

/// The remote's listing, started before the push (by `sync`, so that rclone lists while convert
/// and tag scan; the remote is written by the push alone), for the push to use. Its outcome,
/// an error too, is the push's to report: dropped unused, it is never reported.
pub struct EarlyListing(std::thread::JoinHandle<Result<rclone::Listing, rclone::RcloneError>>);

impl EarlyListing {
    pub fn start(rclone: &Rclone, remote: &str) -> EarlyListing {
        let (rclone, remote) = (rclone.clone(), remote.to_owned());
        EarlyListing(std::thread::spawn(move || rclone.listing(&remote)))
    }

    fn wait(self) -> Result<rclone::Listing, rclone::RcloneError> {
        self.0.join().expect("the listing thread does not panic")
    }
}

/// `run_with`, with the remote's listing started already (`None`: listed now); a manifest
/// handed over (owned) may be freed before the push plans (`let_go`).
pub fn run_listed(
    settings: &PushSettings,
    rclone: &Rclone,
    manifest: Option<Cow<'_, manifest::Manifest>>,
    listing: Option<EarlyListing>,
) -> anyhow::Result<Summary> {
    let started = std::time::Instant::now();
    let s = push(settings, rclone, manifest, listing)?;
    tracing::info!(
        target: report::LOG_ONLY,
        "push: uploaded {} ({} bytes), moved {}, deleted {}, backed up {}, restored {}, \
         adopted {}, unchanged {}, failed {}{}{}{} in {:.1} s",
        s.uploaded,
        s.bytes_uploaded,
        s.moved,
        s.deleted,
        s.backed_up,
        s.restored,
        s.adopted,
        s.unchanged,
        s.failed.len(),
        if s.dry_run { " (dry run: nothing was done)" } else { "" },
        s.refused.as_ref().map_or(String::new(), |r| format!(" (refused: {})", r.reason)),
        if s.interrupted { " (interrupted)" } else { "" },
        started.elapsed().as_secs_f64()
    );
    Ok(s)
}

fn push(
    settings: &PushSettings,
    rclone: &Rclone,
    mut preloaded: Option<Cow<'_, manifest::Manifest>>,
    early: Option<EarlyListing>,
) -> anyhow::Result<Summary> {
    let staging = &settings.staging;
    let listed_early = early.is_some();
    // The listing (rclone's time) and the local bookkeeping (ours) overlap.
    let (listing, local) = std::thread::scope(|s| {
        let listing = s.spawn(|| match early {
            Some(early) => early.wait(),
            None => rclone.listing(&settings.remote),
        });
        let local = local_side(staging, &settings.remote, &mut preloaded);
        (
            listing.join().expect("the listing thread does not panic"),
            local,
        )
    });
    let LocalSide {
        mut manifest_empty,
        mirror,
        stamps,
        fingerprint,
        state,
    } = local?;
    let (mut mirror, mut state) = (FreedAside::new(mirror), FreedAside::new(state));
    if let Some(predicted) = settings.predicted.as_ref().filter(|_| settings.dry_run) {
        mirror.clone_from(predicted);
        manifest_empty = mirror.is_empty();
    }
    let mut summary = Summary {
        dry_run: settings.dry_run,
        ..Summary::default()
    };
    if manifest_empty {
        summary.refused = Some(Refused::unplanned(format!(
            "staging {} holds no converted music; run musync convert first. Nothing was pushed",
            staging.display()
        )));
        return Ok(summary);
    }
    let rclone::Listing { files, links } = listing?;
    let files = FreedAside::new(files);
    if settings.backup && links.contains(BACKUP_DIR) {
        summary.refused = Some(Refused::unplanned(format!(
            "{BACKUP_DIR} on {} is a symbolic link: musync backs up nothing through it, and \
             replaces nothing without a backup (remove the link, or push with --no-backup). \
             Nothing was changed",
            rclone::redact(&settings.remote)
        )));
        return Ok(summary);
    }
    let (backups_prefix, uploads_prefix) = (format!("{BACKUP_DIR}/"), format!("{UPLOAD_DIR}/"));
    // Backup folders already there, so that this push's own is a new one.
    let backup_dirs: BTreeSet<&str> = under(&files, &backups_prefix)
        .filter_map(|p| {
            p[backups_prefix.len()..]
                .split_once('/')
                .map(|(dir, _)| dir)
        })
        .collect();
    let backup_dir = backups::fresh_dir(std::time::SystemTime::now(), |dir| {
        backup_dirs.contains(&dir[BACKUP_DIR.len() + 1..])
    });
    let tmp = upload_dir(staging);
    // Left by a push that was stopped between its upload and its renames.
    let tmp_prefix = format!("{tmp}/");
    let leftovers = under(&files, &tmp_prefix).next().is_some();
    // rclone's file lists hold one name a line: a line break cannot be moved or deleted. (The
    // listing's paths are checked otherwise as it is parsed.)
    let not_mirror =
        |p: &str| p.starts_with(&backups_prefix) || p.starts_with(&uploads_prefix) || !one_line(p);
    // Planned from as listed, unless it lists what is no mirror file (rare): a copy of 100,000
    // paths costs as much as the plan.
    let ours = under(&files, &backups_prefix).next().is_some()
        || under(&files, &uploads_prefix).next().is_some();
    let mut listing: Cow<BTreeMap<_, _>> = if ours || !files.keys().all(|p| one_line(p)) {
        Cow::Owned(
            (files.iter())
                .filter(|(p, _)| !not_mirror(p))
                .map(|(p, f)| (p.clone(), f.clone()))
                .collect(),
        )
    } else {
        Cow::Borrowed(&*files)
    };
    // Nor uploaded: such a file is left out, alone, rather than fail the whole upload call.
    if !mirror
        .keys()
        .all(|p| one_line(p) && relpath::check(p).is_ok())
    {
        mirror.retain(|p, _| {
            let listable = relpath::check_line(p).is_ok();
            if !listable {
                let why =
                    "a line break in the name, which rclone's file lists cannot carry; rename it";
                summary.failed.push(Failure::new(p.as_str(), why));
            }
            listable
        });
    }
    // Nor written through a symbolic link on the remote: rclone would write to its target,
    // outside the remote. (Most remotes list no link: then the mirror is not walked.)
    if !links.is_empty() {
        mirror.retain(|p, _| {
            let Some(link) = plan::link_at(p, &links) else {
                return true;
            };
            let why = format!(
                "the remote has a symbolic link at {}; musync writes nothing through it \
                 (remove it, or replace it with a real file or folder)",
                escape_controls(link)
            );
            summary.failed.push(Failure::new(p.as_str(), &why));
            false
        });
    }
    let mut opts = Options {
        backup: settings.backup,
        delete_foreign: settings.delete_foreign,
        case_insensitive: false,
    };
    // Drift by content: a server copy whose listed time is not the one recorded changed there.
    // Times are recorded from the listing after the upload (this one), not asked for apart.
    let changed = plan::changed_on_server(&state.files, &files);
    let adopted_times = plan::adopt_times(&mut state.files, &files);
    // Copied only if a staged file is left out below.
    let (mut pushed, mut pending) = (Cow::Borrowed(&state.files), Cow::Borrowed(&state.pending));
    let mut plan = plan::plan_with_changes(&mirror, &listing, &pushed, &pending, &changed, opts);
    // A push with nothing to do, or whose names differ in more than case, needs not know
    // (and spends no rclone call on it).
    if !plan.is_empty()
        && plan::case_matters(&mirror, &listing, &pushed, &pending)
        && let plan::CaseProbe::Ask { dir, name } = plan::case_probe(files.keys())
        && rclone.ignores_case(&settings.remote, &dir, &name)?
    {
        tracing::debug!("{} ignores case", rclone::redact(&settings.remote));
        opts.case_insensitive = true;
        plan = plan::plan_with_changes(&mirror, &listing, &pushed, &pending, &changed, opts);
    }
    // A staged file to upload must be what musync made. One that is not is left out of the
    // push, here and on the remote (neither uploaded nor deleted), and the push planned again.
    // A predicted mirror's uploads are not made yet: nothing in staging to check.
    let stamps = FreedAside::new(match stamps {
        _ if settings.predicted.is_some() => BTreeMap::new(),
        None if !plan.uploads.is_empty() => match preloaded.as_deref() {
            Some(m) => output_stamps(m),
            None => output_stamps(&load_manifest(staging)?),
        },
        stamps => stamps.unwrap_or_default(),
    });
    let bad: Vec<&String> = (plan.uploads.iter())
        .filter(|_| settings.predicted.is_none())
        .filter(|p| Stamp::of(&staging.join(p)) != stamps.get(*p).copied())
        .collect();
    if !bad.is_empty() {
        for p in bad {
            let why = "staged file missing or changed; run musync convert";
            summary.failed.push(Failure::new(p, why));
            mirror.remove(p);
            listing.to_mut().remove(p);
            pushed.to_mut().remove(p);
            pending.to_mut().remove(p);
        }
        plan = plan::plan_with_changes(&mirror, &listing, &pushed, &pending, &changed, opts);
    }
    // A listing taken before convert and tag ran may be stale by now (another staging may push
    // to the remote too): a plan that would change the remote is made again from a fresh one,
    // so that nothing is written on the word of an old listing. A no-op needs none.
    if listed_early && !plan.is_empty() {
        tracing::debug!("push: the plan is not empty; listing the remote again");
        return push(settings, rclone, preloaded, None);
    }
    // Folders left with no file are removed last, after the moves and deletions that empty them;
    // worked out here so that a dry run lists them as the real run removes them.
    let gone: BTreeSet<&str> = (plan.moves.iter().map(|(from, _)| from.as_str()))
        .chain(plan.deletes.iter().map(String::as_str))
        .chain(plan.backups.iter().map(String::as_str))
        .collect();
    let remaining = (files.keys().chain(&links).map(String::as_str))
        .filter(|p| !gone.contains(p))
        .chain(mirror.keys().map(String::as_str));
    let emptied = plan::emptied_dirs(gone.iter().copied(), remaining, opts.case_insensitive);
    summary.plan_lines = plan.lines(&mirror);
    summary
        .plan_lines
        .extend(emptied.iter().map(|d| format!("rmdir  {d}")));
    summary.unchanged = plan.unchanged;
    summary.restored = plan.restored.len();
    let managed = state.files.len()
        + (state.pending.keys())
            .filter(|p| !state.files.contains_key(*p))
            .count();
    if !settings.max_delete.allows(plan.removed.len(), managed) {
        summary.refused = Some(Refused {
            reason: format!(
                "the push would delete {} of the {managed} files musync manages on {}, over the \
                 cap of {}; nothing was changed (raise it with --max-delete)",
                plan.removed.len(),
                rclone::redact(&settings.remote),
                settings.max_delete
            ),
            planned: Some(Planned::of(&plan)),
        });
        // Nothing was done: the plan's figures are under `refused`; `unchanged` stays, a fact.
        summary.restored = 0;
        return Ok(summary);
    }
    if settings.dry_run || plan.is_empty() {
        summary.uploaded = plan.uploads.len();
        summary.moved = plan.moves.len();
        summary.deleted = plan.removed.len();
        summary.backed_up = plan.backups.len();
        summary.bytes_uploaded = plan.bytes;
        summary.adopted = plan.adopted.len();
        let complete = plan.is_empty() && summary.failed.is_empty();
        if !settings.dry_run && complete && state.complete_for.as_ref() != Some(&fingerprint) {
            state.complete_for = Some(fingerprint);
            state.save(staging)?;
        } else if !settings.dry_run
            && (adopted_times || State::saved_as_json(staging, &settings.remote))
        {
            state.save(staging)?;
        }
        return Ok(summary);
    }
    execute::execute(
        settings,
        rclone,
        &execute::Steps {
            plan: &plan,
            mirror: &mirror,
            case_insensitive: opts.case_insensitive,
            backup_dir: &backup_dir,
            tmp: &tmp,
            leftovers,
            emptied: &emptied,
        },
        &mut state,
        fingerprint,
        &mut summary,
    )?;
    Ok(summary)
}
