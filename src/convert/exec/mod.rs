//! The convert executor: carries out a plan, in the planner's order. Moves and removals run one
//! by one; converts and retags run in parallel, largest source first. Every staged file is
//! written under a temporary name and renamed into place, and its manifest change is journaled
//! before the rename, so whatever moment a run is killed at, the next run finishes the job.
//! After Ctrl-C it starts nothing new: what is in flight finishes and is saved.

mod files;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, anyhow};
use rayon::prelude::*;

use super::plan::{Action, Counts, Plan, Wanted};
use super::{ConvertSettings, Resolved};
use crate::fsutil;
use crate::interrupt;
use crate::manifest::{self, Change, Journal, Manifest, Record};
use crate::metadata;
use crate::report::{self, Failure};
use crate::scan::Scan;

#[derive(Default)]
pub struct Done {
    pub counts: Counts,
    pub audio_seconds: f64,
    pub failures: Vec<Failure>,
    /// Ctrl-C stopped the run before every action had started.
    pub interrupted: bool,
}

/// The manifest and its journal, updated together.
struct Ledger {
    manifest: Manifest,
    journal: Journal,
}

impl Ledger {
    fn record(&mut self, changes: Vec<Change>) -> anyhow::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.journal.append(&changes)?;
        changes.into_iter().for_each(|c| self.manifest.apply(c));
        Ok(())
    }
}

struct Ctx<'a> {
    settings: &'a ConvertSettings,
    resolved: &'a Resolved,
    scan: &'a Scan,
    sources: &'a FxHashMap<&'a str, &'a Wanted>,
    ledger: Mutex<Ledger>,
    /// Downscaled covers by the sha256 of the original: each distinct image is resized once.
    fitted: Mutex<BTreeMap<Vec<u8>, metadata::Cover>>,
}

/// Carry out `plan`, after removing `temps` (the temporary files a killed run left in the
/// mirror, found by the staging walk) and any in musync's own folder. Returns the manifest as
/// the run leaves it.
pub fn execute(
    settings: &ConvertSettings,
    resolved: &Resolved,
    scan: &Scan,
    sources: &FxHashMap<&str, &Wanted>,
    manifest: Manifest,
    temps: &[PathBuf],
    plan: &Plan,
) -> anyhow::Result<(Done, Manifest)> {
    fs::create_dir_all(&settings.staging)
        .with_context(|| format!("creating staging folder {}", settings.staging.display()))?;
    let stale = (temps.iter())
        .filter(|t| fs::remove_file(t).is_ok())
        .count()
        + fsutil::remove_stale_temps(&manifest::state_dir(&settings.staging));
    if stale > 0 {
        tracing::info!("removed {stale} temporary files left by an interrupted run");
    }
    let new_settings = manifest.settings.as_ref() != Some(&resolved.mirror);
    if plan.actions.is_empty() && !new_settings {
        // Nothing to do writes nothing, not even the manifest.
        return Ok((Done::default(), manifest));
    }
    let ctx = Ctx {
        settings,
        resolved,
        scan,
        sources,
        ledger: Mutex::new(Ledger {
            manifest,
            journal: Journal::open(&settings.staging)?,
        }),
        fitted: Mutex::default(),
    };
    if new_settings {
        ctx.record(vec![Change::Settings(resolved.mirror.clone())])?;
    }
    let mut done = Done::default();
    let (serial, parallel): (Vec<&Action>, Vec<&Action>) = plan.actions.iter().partition(|a| {
        matches!(
            a,
            Action::Move { .. } | Action::Remove { .. } | Action::Refresh { .. }
        )
    });
    for action in serial {
        if interrupt::interrupted() {
            done.interrupted = true;
            break;
        }
        match ctx.serial(action) {
            Ok(()) => {
                log_done(action);
                done.counts.add(action);
            }
            Err(e) => {
                let f = Failure::from_error(subject(action), &e);
                f.print();
                done.failures.push(f);
            }
        }
    }
    if !done.interrupted {
        ctx.parallel(&parallel, &mut done)?;
    }
    let ledger = ctx
        .ledger
        .into_inner()
        .map_err(|_| anyhow!("a worker panicked"))?;
    // The journal already holds every change; the snapshot only compacts it. A snapshot that
    // cannot be written (full disk) loses nothing, so the run's results still stand.
    if let Err(e) = manifest::save(&settings.staging, &ledger.manifest) {
        let f = Failure::from_error(manifest::SNAPSHOT, &e);
        f.print();
        done.failures.push(f);
    }
    Ok((done, ledger.manifest))
}

/// The `-v` and `--log-file` line of a finished action, one line whatever the names hold.
fn log_done(action: &Action) {
    let e = report::escape_controls;
    match action {
        Action::Convert {
            source,
            output,
            copy,
            ..
        } => {
            let verb = if *copy { "copied" } else { "converted" };
            tracing::info!("{verb} {} -> {}", e(source), e(output));
        }
        Action::Retag { output, .. } => tracing::info!("retagged {}", e(output)),
        Action::Move {
            old_output,
            output,
            retag,
            ..
        } if old_output != output => tracing::info!(
            "renamed {} -> {}{}",
            e(old_output),
            e(output),
            if *retag { " (and retagged)" } else { "" }
        ),
        Action::Move {
            output,
            retag: true,
            ..
        } => tracing::info!("retagged {}", e(output)),
        Action::Remove {
            output,
            delete: true,
            ..
        } => tracing::info!("removed {}", e(output)),
        Action::Remove { output, .. } => tracing::info!("forgot {} (left in place)", e(output)),
        Action::Move { source, .. } | Action::Refresh { source } => {
            tracing::debug!("recorded the new path or time of {}", e(source));
        }
    }
}

fn subject(action: &Action) -> String {
    match action {
        Action::Convert { source, .. }
        | Action::Retag { source, .. }
        | Action::Move { source, .. }
        | Action::Refresh { source } => source.clone(),
        Action::Remove { output, .. } => output.clone(),
    }
}

impl Ctx<'_> {
    fn record(&self, changes: Vec<Change>) -> anyhow::Result<()> {
        self.ledger
            .lock()
            .map_err(|_| anyhow!("a worker panicked"))?
            .record(changes)
    }

    fn existing(&self, source: &str) -> anyhow::Result<Record> {
        let ledger = self
            .ledger
            .lock()
            .map_err(|_| anyhow!("a worker panicked"))?;
        ledger
            .manifest
            .records
            .get(source)
            .cloned()
            .with_context(|| format!("no manifest record for {source}"))
    }

    /// Whether the staged file at `output` is musync's (its source's, or any other it made).
    fn owns(&self, source: &str, output: &str) -> anyhow::Result<bool> {
        let ledger = self
            .ledger
            .lock()
            .map_err(|_| anyhow!("a worker panicked"))?;
        let manifest = &ledger.manifest;
        Ok(manifest
            .records
            .get(source)
            .is_some_and(|r| r.output == output)
            || manifest.owns(output))
    }

    /// Whether a record (not only an orphan entry) names `output`.
    fn recorded(&self, output: &str) -> anyhow::Result<bool> {
        let ledger = self
            .ledger
            .lock()
            .map_err(|_| anyhow!("a worker panicked"))?;
        Ok(ledger.manifest.records.values().any(|r| r.output == output))
    }

    fn wanted(&self, source: &str) -> anyhow::Result<&Wanted> {
        self.sources
            .get(source)
            .copied()
            .with_context(|| format!("{source} was not scanned"))
    }

    fn serial(&self, action: &Action) -> anyhow::Result<()> {
        let staging = &self.settings.staging;
        match action {
            Action::Move {
                old_source,
                old_output,
                source,
                output,
                retag,
            } => {
                let w = self.wanted(source)?;
                let mut record = self.existing(old_source)?;
                // The source fields describe the new source as fingerprinted at its stamp; the
                // output fields (tag key, genre, hash) what the staged file holds until the
                // retag below is done. A retag that fails or is killed thus leaves a record whose
                // tag key differs from the source's, and the next run retags.
                record.source = w.rel.clone();
                record.kind = w.kind;
                record.stamp = w.stamp;
                record.tag_hash.clone_from(&w.tag_hash);
                record.own_genre.clone_from(&w.own_genre);
                record.output = output.clone();
                let mut changes = vec![Change::Remove(old_source.clone()), Change::Put(record)];
                if old_output != output {
                    // Until the rename is done, the old file is still musync's to clean up.
                    changes.push(Change::Orphan(old_output.clone()));
                    let (from, to) = (staging.join(old_output), staging.join(output));
                    fsutil::check_confined(staging, &from)?;
                    fsutil::check_confined(staging, &to)?;
                    self.record(changes)?;
                    fs::create_dir_all(to.parent().expect("output has a folder"))?;
                    fs::rename(&from, &to)
                        .with_context(|| format!("renaming {old_output} to {output}"))?;
                    fsutil::sync_parent(&to);
                    fsutil::remove_empty_dirs(from.parent().expect("output has a folder"), staging);
                    self.record(vec![Change::Forget(old_output.clone())])?;
                } else {
                    self.record(changes)?;
                }
                if *retag {
                    self.retag(source, output)?;
                }
                Ok(())
            }
            Action::Remove {
                source,
                output,
                delete,
            } => {
                let path = staging.join(output);
                fsutil::check_confined(staging, &path)?;
                if *delete {
                    match fs::remove_file(&path) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => {
                            return Err(e).with_context(|| format!("deleting {output}"));
                        }
                        _ => fsutil::remove_empty_dirs(
                            path.parent().expect("output has a folder"),
                            staging,
                        ),
                    }
                }
                self.record(match source {
                    Some(source) if !delete && path.exists() => {
                        vec![
                            Change::Remove(source.clone()),
                            Change::Orphan(output.clone()),
                        ]
                    }
                    Some(source) => vec![Change::Remove(source.clone())],
                    // A file kept for a record that has not claimed it (its move failed) stays
                    // musync's: forgotten, it would block its path as a file of the user's.
                    None if !delete && path.exists() && !self.recorded(output)? => Vec::new(),
                    None => vec![Change::Forget(output.clone())],
                })
            }
            Action::Refresh { source } => {
                let mut record = self.existing(source)?;
                record.stamp = self.wanted(source)?.stamp;
                self.record(vec![Change::Put(record)])
            }
            Action::Convert { .. } | Action::Retag { .. } => unreachable!("run in parallel"),
        }
    }

    fn parallel(&self, actions: &[&Action], done: &mut Done) -> anyhow::Result<()> {
        let size = |a: &&Action| match a {
            Action::Convert { source, .. } => self
                .sources
                .get(source.as_str())
                .map_or(0, |w| w.stamp.size),
            _ => 0,
        };
        let mut actions = actions.to_vec();
        // Largest first, so no core sits idle at the end waiting for one long track.
        actions.sort_by_key(|a| std::cmp::Reverse(size(a)));
        let bar = report::progress(actions.iter().map(size).sum(), self.settings.quiet);
        let finished = AtomicUsize::new(0);
        let audio_ms = AtomicUsize::new(0);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.settings.jobs)
            .build()
            .context("starting worker threads")?;
        // `None`: not started, because of Ctrl-C.
        let results: Vec<(&Action, Option<Result<(), Failure>>)> = pool.install(|| {
            actions
                .par_iter()
                .map(|action| {
                    if interrupt::interrupted() {
                        return (*action, None);
                    }
                    let result = match action {
                        Action::Convert { source, output, .. } => {
                            self.convert(source, output).map(|secs| {
                                audio_ms.fetch_add((secs * 1000.0) as usize, Ordering::Relaxed);
                            })
                        }
                        Action::Retag { source, output } => self.retag(source, output),
                        _ => unreachable!("run one by one"),
                    };
                    let n = finished.fetch_add(1, Ordering::Relaxed) + 1;
                    bar.inc(size(action));
                    bar.set_message(format!(
                        "{n}/{} files, {:.1} audio-min",
                        actions.len(),
                        audio_ms.load(Ordering::Relaxed) as f64 / 60_000.0
                    ));
                    match result {
                        Ok(()) => {
                            bar.suspend(|| log_done(action));
                            (*action, Some(Ok(())))
                        }
                        Err(e) => {
                            let f = Failure::from_error(subject(action), &e);
                            bar.suspend(|| f.print());
                            (*action, Some(Err(f)))
                        }
                    }
                })
                .collect()
        });
        bar.finish_and_clear();
        for (action, result) in results {
            match result {
                Some(Ok(())) => done.counts.add(action),
                Some(Err(f)) => done.failures.push(f),
                None => done.interrupted = true,
            }
        }
        done.audio_seconds = audio_ms.into_inner() as f64 / 1000.0;
        Ok(())
    }
}
