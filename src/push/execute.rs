//! The push's executor: carries out a checked `plan::Plan` with a handful of rclone calls
//! (backups, moves, the upload, deletions), saving the push state after each so it never
//! claims more than happened. It decides nothing: what to do was planned and guarded in `mod.rs`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;

use super::plan::{self, Local, MoveStep, Plan};
use super::state::State;
use super::{PushSettings, Summary, backups};
use crate::interrupt;
use crate::rclone::{self, Rclone, RcloneError};
use crate::report::{Failure, escape_controls};

/// What the executor needs besides the state: the plan and where its files go.
pub(super) struct Steps<'a> {
    pub plan: &'a Plan,
    pub mirror: &'a BTreeMap<String, Local>,
    pub case_insensitive: bool,
    /// This push's folder under `BACKUP_DIR`.
    pub backup_dir: &'a str,
    /// This staging folder's upload folder (`upload_dir`).
    pub tmp: &'a str,
    /// Whether the listing showed files left in `tmp` by a stopped push.
    pub leftovers: bool,
    /// The topmost folders the plan leaves with no file (`plan::emptied_dirs`).
    pub emptied: &'a [String],
}

/// Runs `steps`, recording each rclone call that succeeded in `state` and its figures (or its
/// failure) in `summary`. After Ctrl-C no further rclone call starts.
pub(super) fn execute(
    settings: &PushSettings,
    rclone: &Rclone,
    steps: &Steps,
    state: &mut State,
    fingerprint: String,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let Steps {
        plan,
        mirror,
        case_insensitive,
        backup_dir,
        tmp,
        leftovers,
        emptied,
    } = *steps;
    let staging = &settings.staging;
    // Until every step has succeeded, the state's files are not the mirror.
    state.complete_for = None;
    for p in &plan.forgotten {
        state.files.remove(p);
        state.pending.remove(p);
    }

    let remote = &settings.remote;
    let (mut moved, mut uploaded, mut deleted, mut backed_up) = (0, 0, 0, 0);
    // After Ctrl-C no further rclone call starts; the state records only the calls that succeeded.
    'steps: {
        if !plan.backups.is_empty() {
            if stop(summary) {
                break 'steps;
            }
            let dir = &backup_dir;
            match rclone.move_into(remote, dir, &plan.backups, &backups::random_tag()) {
                Ok(()) => {
                    for p in &plan.backups {
                        state.files.remove(p);
                        state.pending.remove(p);
                        tracing::info!("backed up {} into {dir}", escape_controls(p));
                    }
                    backed_up = plan.backups.len();
                    deleted = plan.removed.len() - plan.deletes.len();
                }
                Err(e) => {
                    // Nothing that was to be backed up may be overwritten or deleted now.
                    step_failed(summary, remote, "backup", e.into());
                    break 'steps;
                }
            }
            state.save(staging)?;
        }
        let tag = backups::random_tag();
        // A rename through a temporary name is one file moved, in two steps.
        let destinations: BTreeSet<&String> = plan.moves.iter().map(|(_, to)| to).collect();
        // Folders a folder move emptied and removed with everything empty under them.
        let mut pruned: Vec<String> = Vec::new();
        for step in plan::move_steps(&plan.moves, case_insensitive, &tag) {
            if stop(summary) {
                break 'steps;
            }
            let done: Vec<(String, String)> = match &step {
                MoveStep::Folder {
                    from_dir,
                    to_dir,
                    files,
                    ..
                } => files
                    .iter()
                    .map(|f| (rclone::join(from_dir, f), rclone::join(to_dir, f)))
                    .collect(),
                MoveStep::File { from, to } => vec![(from.clone(), to.clone())],
            };
            // Until rclone reports back, a destination may or may not hold its file.
            for (from, to) in &done {
                if let Some(file) = state.files.get(from) {
                    state.pending.insert(to.clone(), file.clone());
                }
            }
            state.save(staging)?;
            let result = match &step {
                MoveStep::Folder {
                    from_dir,
                    to_dir,
                    files,
                    prune,
                } => rclone
                    .move_between(remote, from_dir, to_dir, files)
                    .inspect(|()| {
                        // Left behind, the old folder keeps its case on a case-insensitive
                        // remote (the push still converges: it then holds the mirror's files).
                        if !*prune {
                            return;
                        }
                        match rclone.rmdirs(remote, from_dir) {
                            Ok(()) => pruned.push(from_dir.clone()),
                            Err(e) => tracing::warn!(
                                "emptied folder {} stays: {e}",
                                escape_controls(from_dir)
                            ),
                        }
                    }),
                MoveStep::File { from, to } => rclone.rename(remote, from, to),
            };
            match result {
                Ok(()) => {
                    for (from, to) in done {
                        let pushed = state
                            .files
                            .remove(&from)
                            .context("a moved file was not in the push state")?;
                        tracing::info!(
                            "moved {} -> {}",
                            escape_controls(&from),
                            escape_controls(&to)
                        );
                        state.pending.remove(&to);
                        moved += usize::from(destinations.contains(&to));
                        // A backend that cannot keep a time gives the moved copy a new one: the
                        // next listing records it.
                        let pushed = plan::Pushed {
                            mtime: None,
                            ..pushed
                        };
                        state.files.insert(to, pushed);
                    }
                    state.save(staging)?;
                }
                Err(e) => step_failed(summary, remote, "move", e.into()),
            }
        }
        if stop(summary) {
            break 'steps;
        }
        // Until rclone reports back, an upload may or may not have landed, whole or in part.
        for p in &plan.uploads {
            let l = &mirror[p];
            let file = plan::Pushed {
                size: l.size,
                hash: l.hash.clone(),
                mtime: None,
            };
            state.pending.insert(p.clone(), file);
        }
        if !plan.uploads.is_empty() {
            state.save(staging)?;
            if leftovers {
                // A tidy-up: the upload below overwrites what it needs anyway, so it goes on.
                if let Err(e) = rclone.purge(remote, tmp) {
                    step_failed(summary, remote, "upload", e.into());
                }
            }
        }
        let mut stalled = false;
        match rclone.upload(staging, remote, tmp, &plan.uploads) {
            Ok(()) => {
                uploaded = plan.uploads.len();
                plan.uploads
                    .iter()
                    .for_each(|p| tracing::info!("uploaded {}", escape_controls(p)));
            }
            Err(e) => {
                // A server that stopped answering would only make the next call wait too.
                stalled = matches!(e, RcloneError::Stalled { .. });
                step_failed(summary, remote, "upload", e.into());
            }
        }
        let done = if uploaded > 0 { &plan.uploads[..] } else { &[] };
        for p in done.iter().chain(&plan.adopted) {
            let l = &mirror[p];
            state.pending.remove(p);
            state.files.insert(
                p.clone(),
                plan::Pushed {
                    size: l.size,
                    hash: l.hash.clone(),
                    mtime: None,
                },
            );
        }
        state.save(staging)?;
        if stalled || stop(summary) {
            break 'steps;
        }
        match rclone.delete(remote, &plan.deletes) {
            Ok(()) => {
                for p in &plan.deletes {
                    state.files.remove(p);
                    state.pending.remove(p);
                    tracing::info!("deleted {}", escape_controls(p));
                }
                deleted += plan.deletes.len();
            }
            Err(e) => step_failed(summary, remote, "delete", e.into()),
        }
        // Only once every move and deletion is done may a folder be empty; rclone removes none
        // that holds a file, so a folder with a file musync did not put there stays.
        if summary.remote_failed || stop(summary) {
            break 'steps;
        }
        let under = |dir: &str, top: &str| dir == top || dir.starts_with(&format!("{top}/"));
        for dir in emptied
            .iter()
            .filter(|d| !pruned.iter().any(|p| under(d, p)))
        {
            match rclone.rmdirs(remote, dir) {
                Ok(()) => tracing::info!("removed emptied folder {}", escape_controls(dir)),
                // No file is under it: a failure is the remote's, like any other call's.
                Err(e) => step_failed(summary, remote, "rmdirs", e.into()),
            }
        }
    }
    if summary.failed.is_empty() && !summary.interrupted {
        state.complete_for = Some(fingerprint);
    }
    state.save(staging)?;
    summary.uploaded = uploaded;
    summary.bytes_uploaded = if uploaded > 0 { plan.bytes } else { 0 };
    // Each file put back is one of the uploads.
    summary.restored = if uploaded > 0 { plan.restored.len() } else { 0 };
    summary.moved = moved;
    summary.deleted = deleted;
    summary.backed_up = backed_up;
    // Adopted files count once recorded: a push stopped before that recorded none.
    summary.adopted = (plan.adopted.iter())
        .filter(|p| state.files.contains_key(*p))
        .count();
    Ok(())
}

/// Whether Ctrl-C asks the push to stop before its next rclone call.
fn stop(summary: &mut Summary) -> bool {
    summary.interrupted |= interrupt::interrupted();
    summary.interrupted
}

/// Record a failed rclone call; after Ctrl-C, rclone (which got it too) failing is the
/// interruption, not an error. Either way the call's work is not recorded as done.
fn step_failed(summary: &mut Summary, remote: &str, op: &str, e: anyhow::Error) {
    let remote = rclone::redact(remote);
    if interrupt::interrupted() {
        tracing::info!("{remote} ({op}) stopped by Ctrl-C: {e:#}");
        summary.interrupted = true;
    } else {
        // The wrapper's own refusal (InvalidInput) is a guard, not rclone failing.
        let guard = matches!(e.downcast_ref::<rclone::RcloneError>(),
            Some(rclone::RcloneError::Io(io)) if io.kind() == std::io::ErrorKind::InvalidInput);
        summary.guard_refused |= guard;
        summary.remote_failed |= !guard;
        summary
            .failed
            .push(Failure::from_error(format!("{remote} ({op})"), &e));
    }
}
