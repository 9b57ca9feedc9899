//! The convert planner: a pure function from (what the library holds now, what the manifest says
//! musync made, what staging holds) to the list of actions that brings staging in line. No I/O,
//! so every case is a unit or property test.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashSet;

use super::outputs::assign_outputs;
use crate::digest::Digest;
use crate::fsutil::Stamp;
use crate::manifest::{Manifest, Record};
use crate::report::Failure;
use crate::scan::SourceKind;

/// A library file as the planner sees it: identity and fingerprints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub rel: String,
    pub kind: SourceKind,
    pub stamp: Stamp,
    pub audio_hash: Digest,
    pub tag_hash: Digest,
    /// What the staged tags must be derived from now (source tags, cover, settings).
    pub tag_key: Digest,
    /// The encoder settings its output must have now.
    pub encoder: Arc<str>,
    /// The source's own genre values, and the genre its staged file must have.
    pub own_genre: Vec<String>,
    pub genre: Vec<String>,
    /// A fixed staged path (a folder cover's); `None`: derived from the source's path.
    pub output: Option<String>,
}

/// What is in staging, as far as the planner needs to know.
#[derive(Debug, Default)]
pub struct Staging {
    /// Staging-relative paths of the files there (musync's own folder excluded).
    pub present: FxHashSet<String>,
    /// Recorded outputs that are not there. (Found while the recorded outputs are checked: the
    /// planner then asks `present` only about paths no record has, not 100,000 times.)
    pub missing: FxHashSet<String>,
    /// Recorded outputs whose bytes no longer match the manifest.
    pub changed: FxHashSet<String>,
    /// Recorded outputs that still hold what they held before a tag rewrite that a killed run
    /// journaled but did not finish: the audio is right, only the tags need writing again.
    pub stale: FxHashSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    New,
    AudioChanged,
    SettingsChanged,
    OutputMissing,
    OutputChanged,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make `output` from `source` (transcode, or copy a native MP3 when `copy`), tags included.
    Convert {
        source: String,
        output: String,
        reason: Reason,
        copy: bool,
    },
    /// Rewrite only the tags of `output`.
    Retag { source: String, output: String },
    /// The source was moved or renamed: rename its output instead of converting again.
    Move {
        old_source: String,
        old_output: String,
        source: String,
        output: String,
        retag: bool,
    },
    /// The source is gone: drop its record and delete its output when nothing reuses the path.
    Remove {
        source: Option<String>,
        output: String,
        delete: bool,
    },
    /// Unchanged but touched (new mtime): remember the new stamp so its hash is not redone.
    Refresh { source: String },
}

#[derive(Debug, Default)]
pub struct Plan {
    /// Moves first, then removals, then the rest: the order the executor must keep.
    pub actions: Vec<Action>,
    /// Sources whose staged file is already right.
    pub unchanged: usize,
    pub failures: Vec<Failure>,
}

/// How many actions of each kind: the figures of a run's summary, planned or done. Its JSON
/// form is in `summary`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub converted: usize,
    /// Native MP3s copied into the mirror (not encoded, so not among `converted`).
    pub copied: usize,
    pub retagged: usize,
    pub renamed: usize,
    pub removed: usize,
    pub skipped: usize,
    /// Folder cover files made, renamed or removed (counted apart from the MP3s).
    pub covers: usize,
}

impl Counts {
    pub fn add(&mut self, action: &Action) {
        match action {
            Action::Convert { output, .. }
            | Action::Move {
                old_output: output, ..
            }
            | Action::Remove { output, .. }
                if is_cover(output) =>
            {
                if !matches!(action, Action::Remove { delete: false, .. }) {
                    self.covers += 1;
                }
            }
            Action::Convert { copy: true, .. } => self.copied += 1,
            Action::Convert { .. } => self.converted += 1,
            Action::Retag { .. } => self.retagged += 1,
            Action::Move {
                old_output, output, ..
            } if old_output != output => self.renamed += 1,
            Action::Move { retag: true, .. } => self.retagged += 1,
            Action::Remove { delete: true, .. } => self.removed += 1,
            Action::Move { .. } | Action::Refresh { .. } => self.skipped += 1,
            Action::Remove { .. } => {}
        }
    }
}

/// Plan the convert stage. `unreadable` names library files and folders that exist but could
/// not be read: their records stay as they are, since failing is never a reason to delete.
pub fn plan(
    wanted: &[Wanted],
    unreadable: &[String],
    manifest: &Manifest,
    staging: &Staging,
) -> Plan {
    let mut plan = Plan::default();
    let sources = (wanted.iter())
        .filter(|w| w.output.is_none())
        .map(|w| (w.rel.as_str(), w.kind));
    let fixed = (wanted.iter()).filter_map(|w| Some((w.rel.as_str(), w.output.as_deref()?)));
    let outputs = assign_outputs(sources, &mut plan.failures).with_fixed(fixed);
    // A source that lost its output name to another is as good as gone: a fresh convert would
    // give it no file either. A source under an unreadable folder is kept as it is. (Records
    // and outputs are both sorted by source: each found by a merge.)
    let unread = |source: &str| unreadable.iter().any(|u| within(source, u));
    let mut found = outputs.in_order();
    let gone: Vec<&Record> = (manifest.records.values())
        .filter(|r| found.get(&r.source).is_none() && !unread(&r.source))
        .collect();
    let state = |r: &Record| {
        if staging.missing.contains(&r.output) {
            Some(Reason::OutputMissing)
        } else if staging.changed.contains(&r.output) {
            Some(Reason::OutputChanged)
        } else {
            None
        }
    };

    // Each source's record, by a merge: the sources come sorted (a scan's, then its covers).
    let mut records = manifest.in_order();
    let mut found = outputs.in_order();
    let mut claimed: BTreeMap<&str, &Wanted> = BTreeMap::new(); // gone record source → mover
    // Records whose source's staged name is no longer theirs.
    let mut renamed: Vec<&Record> = Vec::new();
    let mut work = Vec::new();
    for (w, output) in wanted
        .iter()
        .filter_map(|w| found.get(&w.rel).map(|o| (w, o)))
    {
        if let Some(r) = records.get(w.rel.as_str()) {
            let same_name = output.is(&r.output);
            if !same_name {
                renamed.push(r);
            }
            let reason = if r.audio_hash != w.audio_hash {
                Some(Reason::AudioChanged)
            } else if r.encoder != w.encoder || !same_name {
                Some(Reason::SettingsChanged)
            } else {
                state(r)
            };
            work.push(match reason {
                Some(reason) => convert(w, output.path(), reason),
                None if r.tag_key != w.tag_key || staging.stale.contains(&r.output) => {
                    Action::Retag {
                        source: w.rel.clone(),
                        output: output.path(),
                    }
                }
                None if r.stamp != w.stamp => Action::Refresh {
                    source: w.rel.clone(),
                },
                None => {
                    // A folder cover is not a track: the summary's figures count tracks.
                    plan.unchanged += usize::from(w.kind != SourceKind::Cover);
                    continue;
                }
            });
            continue;
        }
        let mover = gone.iter().find(|r| {
            !claimed.contains_key(r.source.as_str())
                && r.audio_hash == w.audio_hash
                && r.encoder == w.encoder
                && state(r).is_none()
                && !staging.stale.contains(&r.output)
        });
        match mover {
            Some(r) => {
                claimed.insert(&r.source, w);
                work.push(Action::Move {
                    old_source: r.source.clone(),
                    old_output: r.output.clone(),
                    source: w.rel.clone(),
                    output: output.path(),
                    retag: r.tag_key != w.tag_key,
                });
            }
            None => work.push(convert(w, output.path(), Reason::New)),
        }
    }

    // A move may not land on a file another move still has to carry away: convert instead
    // (converts run after every move, when the path is free).
    let move_sources: BTreeSet<String> = work
        .iter()
        .filter_map(|a| match a {
            Action::Move {
                old_output, output, ..
            } if old_output != output => Some(old_output.clone()),
            _ => None,
        })
        .collect();
    // Only needed when a move turns into a convert; building it for every run cost a no-op
    // run over a large library more than the rest of the plan.
    let by_rel: BTreeMap<&str, &Wanted> = if move_sources.is_empty() {
        BTreeMap::new()
    } else {
        wanted.iter().map(|w| (w.rel.as_str(), w)).collect()
    };
    for action in &mut work {
        if let Action::Move {
            old_source,
            old_output,
            source,
            output,
            ..
        } = action
            && old_output != output
            && move_sources.contains(output.as_str())
        {
            claimed.remove(old_source.as_str());
            *action = convert(by_rel[source.as_str()], output.clone(), Reason::New);
        }
    }

    // A source whose staged name changes (a folder cover that stops or starts being a PNG) is
    // made again under the new name; its old file goes, as a fresh convert would not make it.
    renamed.sort_by(|a, b| a.source.cmp(&b.source));
    let mut relocations: Vec<(String, String)> = (renamed.iter())
        .filter(|r| !blocked_source(&work, &r.source) && staging.present.contains(&r.output))
        .map(|r| (r.source.clone(), r.output.clone()))
        .collect();

    // Paths another source's file holds once the moves are done. A path only a convert will
    // claim is not among them: the old file is deleted first (removals run before converts),
    // so a convert that fails leaves no stale file under the new source's name, as a fresh
    // convert would not.
    // Only a removal asks (gone records, relocations, orphans); a run with none skips it.
    let removals = !gone.is_empty() || !relocations.is_empty() || !manifest.orphans.is_empty();
    let mut found = outputs.in_order();
    let reused: BTreeSet<String> = work
        .iter()
        .filter(|_| removals)
        .filter_map(|a| match a {
            Action::Retag { output, .. } | Action::Move { output, .. } => Some(output.clone()),
            Action::Convert { .. } | Action::Refresh { .. } | Action::Remove { .. } => None,
        })
        .chain(
            manifest
                .records
                .values()
                .filter(|_| removals)
                .filter(|r| {
                    let output = found.get(&r.source);
                    let live = output.is_some() || unread(&r.source);
                    let relocated = output.is_some_and(|o| !o.is(&r.output))
                        && !blocked_source(&work, &r.source);
                    live && !relocated
                })
                .map(|r| r.output.clone()),
        )
        .collect();

    // Writing over a file musync did not make would lose it.
    let mut blocked = BTreeSet::new();
    for action in &work {
        if let Action::Convert { source, output, .. } | Action::Move { source, output, .. } = action
            && manifest
                .records
                .get(source)
                .is_none_or(|r| r.output != *output)
            && staging.present.contains(output)
            && !manifest.owns(output)
        {
            plan.failures.push(Failure::new(
                source.clone(),
                format!("staging already has {output}, which musync did not create; move it away"),
            ));
            blocked.insert(source.clone());
        }
    }
    work.retain(|a| match a {
        Action::Convert { source, .. } | Action::Move { source, .. } => !blocked.contains(source),
        _ => true,
    });
    relocations.retain(|(source, _)| !blocked.contains(source));

    let mut moves = Vec::new();
    let mut rest = Vec::new();
    for action in work {
        if matches!(action, Action::Move { .. }) {
            moves.push(action);
        } else {
            rest.push(action);
        }
    }
    plan.actions = moves;
    for r in gone
        .iter()
        .filter(|r| !claimed.contains_key(r.source.as_str()))
    {
        plan.actions.push(Action::Remove {
            source: Some(r.source.clone()),
            output: r.output.clone(),
            delete: staging.present.contains(&r.output) && !reused.contains(&r.output),
        });
    }
    for (_, output) in relocations {
        plan.actions.push(Action::Remove {
            source: None,
            delete: !reused.contains(&output),
            output,
        });
    }
    for orphan in &manifest.orphans {
        plan.actions.push(Action::Remove {
            source: None,
            output: orphan.clone(),
            delete: staging.present.contains(orphan) && !reused.contains(orphan),
        });
    }
    plan.actions.extend(rest);
    plan
}

/// Whether `work` no longer converts `source` (nothing to make it again under its new name).
fn blocked_source(work: &[Action], source: &str) -> bool {
    !work
        .iter()
        .any(|a| matches!(a, Action::Convert { source: s, .. } if s == source))
}

/// Whether a staged path is a folder cover file (every track's output ends in `.mp3`).
pub fn is_cover(output: &str) -> bool {
    !output.ends_with(".mp3")
}

/// Whether `path` is `dir` or lies under it.
fn within(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn convert(w: &Wanted, output: String, reason: Reason) -> Action {
    Action::Convert {
        source: w.rel.clone(),
        output,
        reason,
        copy: w.kind == SourceKind::Mp3,
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::New => "new",
            Reason::AudioChanged => "audio changed",
            Reason::SettingsChanged => "encoder settings changed",
            Reason::OutputMissing => "staged file missing",
            Reason::OutputChanged => "staged file changed",
        })
    }
}

/// One line per action, as `--dry-run` prints it (`None` for bookkeeping-only actions).
pub fn describe(action: &Action) -> Option<String> {
    Some(match action {
        Action::Convert { source, output, .. } if is_cover(output) => {
            format!("cover   {source} -> {output}")
        }
        Action::Move {
            old_output, output, ..
        } if is_cover(output) && old_output != output => {
            format!("cover   {old_output} -> {output} (renamed)")
        }
        Action::Remove {
            output,
            delete: true,
            ..
        } if is_cover(output) => format!("cover   {output} (removed)"),
        Action::Convert {
            source,
            output,
            reason,
            copy: false,
        } => format!("convert {source} -> {output} ({reason})"),
        Action::Convert {
            source,
            output,
            reason,
            copy: true,
        } => format!("copy    {source} -> {output} ({reason})"),
        Action::Retag { source, output } => format!("retag   {output} (tags of {source} changed)"),
        Action::Move {
            old_output,
            output,
            retag,
            ..
        } if old_output == output => {
            if !retag {
                return None;
            }
            format!("retag   {output}")
        }
        Action::Move {
            old_output,
            output,
            retag,
            ..
        } => {
            format!(
                "rename  {old_output} -> {output}{}",
                if *retag { " (and retag)" } else { "" }
            )
        }
        Action::Remove {
            output,
            delete: true,
            ..
        } => format!("remove  {output}"),
        Action::Remove { .. } | Action::Refresh { .. } => return None,
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
