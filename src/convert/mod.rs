//! The convert stage: bring the staging tree in line with the library. It gathers facts (scan,
//! manifest, staging, fingerprints of changed sources), asks the pure planner what to do, checks
//! the guard, and hands the plan to the executor. The library is only ever read.

mod exec;
mod facts;
mod outputs;
pub mod plan;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::audio::Quality;
use crate::digest::Digest;
use crate::fsutil::{self, Stamp};
use crate::genre::GenreRules;
use crate::manifest::Manifest;
use crate::report::{self, Failure};
use crate::scan::{self, SourceKind};
use crate::settings::{MirrorSettings, Overrides};
pub use facts::Seen;
use facts::{Facts, again, gather};
pub use plan::Counts;
use plan::{Action, Plan, Reason, Wanted};

/// Bumped when a change to the decode/encode pipeline should re-encode existing outputs.
const PIPELINE_REVISION: u32 = 1;

/// What a run is asked to do.
pub struct ConvertSettings {
    pub library: PathBuf,
    pub staging: PathBuf,
    /// Changes to the remembered mirror settings.
    pub overrides: Overrides,
    pub mode: Mode,
    pub jobs: usize,
    pub dry_run: bool,
    pub force: bool,
    pub quiet: bool,
    /// Which part of the library is mirrored.
    pub selection: scan::Selection,
}

/// `convert` does everything; `tag` only rewrites tags of staged files that are otherwise right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Convert,
    TagOnly,
}

/// The settings in force for this run, after the manifest's memory and the flags.
pub struct Resolved {
    pub mirror: MirrorSettings,
    pub rules: GenreRules,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub counts: Counts,
    /// With `tag`: sources whose staged file needs `convert` first (new, changed audio, moved).
    #[serde(skip)]
    pub pending: usize,
    pub failed: Vec<Failure>,
    pub dry_run: bool,
    /// Minutes of audio encoded.
    pub audio_minutes: f64,
    pub seconds: f64,
    /// Set when the guard refused to act.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    #[serde(skip)]
    pub plan_lines: Vec<String>,
    /// Ctrl-C stopped the run before all the work had started; what was done is saved.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// The encoder settings an output of `kind` must have.
pub fn encoder_key(kind: SourceKind, quality: Quality) -> String {
    match kind {
        SourceKind::Lossless => format!("lame {quality}; pipeline {PIPELINE_REVISION}"),
        SourceKind::Mp3 => "copy".to_string(),
        // The folder file's bytes depend on the size limit, not on the encoder.
        SourceKind::Cover => "cover".to_string(),
    }
}

/// The staged name of a folder cover made from the library image `image`: `cover.jpg` in the
/// image's folder, `cover.png` when the bytes stay a PNG (kept as they are: `--art-max-size 0`,
/// or an image within the limit). `facts` is what `cover_facts` read from the image.
pub fn cover_output(image: &str, facts: &str, max: u32) -> String {
    let folder = scan::parent_of(image);
    let png = facts.strip_prefix("image/png ").is_some_and(|size| {
        let (w, h) = size.split_once('x').unwrap_or(("0", "0"));
        let fits = |n: &str| n.parse::<u32>().is_ok_and(|n| n <= max);
        max == 0 || (fits(w) && fits(h))
    });
    let name = if png { "cover.png" } else { "cover.jpg" };
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

/// Bumped when the way tags are mapped or pictures are chosen changes: every staged file is
/// retagged once (never re-encoded). 2: picture types kept, disc folders take the album's cover.
const TAG_REVISION: u32 = 2;

/// The folder image a source's staged file falls back on: its own folder's, else, when that
/// folder is a disc folder (`Album/CD1/`), the album folder's.
pub fn folder_cover<'s>(
    scan: &'s scan::Scan,
    rules: &GenreRules,
    rel: &str,
) -> Option<&'s (String, Stamp)> {
    let folder = scan::parent_of(rel);
    scan.covers.get(folder).or_else(|| {
        let name = folder.rsplit('/').next().unwrap_or(folder);
        let album = scan::parent_of(folder);
        (album != folder && rules.is_disc_folder(name))
            .then(|| scan.covers.get(album))
            .flatten()
    })
}

/// What the staged tags are derived from: the source's tags, the genre the rules give it, the
/// folder cover, the ID3 version and the cover size limit. The one definition both `convert` and
/// `tag` use.
pub fn tag_key(
    tag_hash: &Digest,
    genre: &[String],
    cover: Option<&(String, Stamp)>,
    mirror: &MirrorSettings,
) -> Digest {
    use std::fmt::Write as _;
    /// Formats straight into the hash: this runs for every source on every run.
    struct Hashing(Sha256);
    impl std::fmt::Write for Hashing {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let id3 = mirror.id3;
    let mut h = Hashing(Sha256::new());
    // As text: the key of every staged file stays what it was when hashes were held as text.
    let _ = write!(h, "{tag_hash}");
    let _ = write!(h, "\0tags {TAG_REVISION}\0art {}", mirror.art_max_size);
    let _ = write!(h, "\0{id3:?}\0{genre:?}\0");
    if let Some((path, stamp)) = cover {
        let _ = write!(h, "{path}\0{}\0{}", stamp.size, stamp.mtime_ns);
    }
    Digest::sha256(h.0.finalize().into())
}

pub fn run(settings: &ConvertSettings) -> anyhow::Result<Summary> {
    run_after(settings, None).map(|(summary, seen)| {
        fsutil::free_in_background(seen);
        summary
    })
}

/// `run`, planned from what the stage before it in the same `sync` saw (`None`: looked at
/// afresh); returns also what this run saw and left, for the stage after it.
pub fn run_after(
    settings: &ConvertSettings,
    before: Option<Seen>,
) -> anyhow::Result<(Summary, Seen)> {
    let started = std::time::Instant::now();
    let (
        Facts {
            mut seen,
            mut failures,
            plan,
        },
        mut summary,
    ) = planned(settings, before)?;
    summary.dry_run = settings.dry_run;
    summary.refused = guard(&plan, &seen.manifest, &seen.wanted, settings.force);
    (failures.iter())
        .filter(|f| !seen.reported.contains(f))
        .for_each(Failure::print);
    seen.reported.clone_from(&failures);
    if settings.dry_run || summary.refused.is_some() {
        if settings.mode == Mode::Convert {
            seen.planned = Some((plan, failures.clone()));
        }
        summary.failed = failures;
        log_summary(settings.mode, &summary, started.elapsed());
        return Ok((summary, seen));
    }
    let sources: FxHashMap<&str, &Wanted> =
        (seen.wanted.iter()).map(|w| (w.rel.as_str(), w)).collect();
    let touched = touched(&plan.actions, &seen.manifest);
    let manifest = std::mem::take(&mut seen.manifest);
    let temps = std::mem::take(&mut seen.temps);
    let (done, manifest) = exec::execute(
        settings,
        &seen.resolved,
        &seen.scan,
        &sources,
        manifest,
        &temps,
        &plan,
    )?;
    drop(sources);
    seen.manifest = manifest;
    seen.refresh(&settings.staging, &touched);
    summary.counts = done.counts;
    summary.counts.skipped += plan.unchanged;
    if settings.mode == Mode::Convert && plan.actions.is_empty() {
        seen.planned = Some((plan, failures.clone()));
    }
    summary.audio_minutes = done.audio_seconds / 60.0;
    summary.interrupted = done.interrupted;
    failures.extend(done.failures);
    summary.failed = failures;
    summary.seconds = started.elapsed().as_secs_f64();
    log_summary(settings.mode, &summary, started.elapsed());
    Ok((summary, seen))
}

/// The staged paths `actions` may change: the ones they name, and the ones their sources' records
/// name before they run.
fn touched(actions: &[Action], manifest: &Manifest) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for action in actions {
        let (source, outputs): (Option<&String>, Vec<&String>) = match action {
            Action::Convert { source, output, .. } | Action::Retag { source, output } => {
                (Some(source), vec![output])
            }
            Action::Move {
                old_source,
                old_output,
                output,
                ..
            } => (Some(old_source), vec![old_output, output]),
            Action::Remove { source, output, .. } => (source.as_ref(), vec![output]),
            Action::Refresh { source } => (Some(source), vec![]),
        };
        paths.extend(outputs.into_iter().cloned());
        if let Some(r) = source.and_then(|s| manifest.records.get(s)) {
            paths.insert(r.output.clone());
        }
    }
    paths
}

/// The facts and the summary of their plan. A dry run beside a run that changes staging (see
/// `crate::lock`) may catch one of its files between its record and its rename: it plans again
/// while the manifest changed meanwhile, or a file failed while that run goes on (a few tries).
/// A run after another in one `sync` plans from what that one saw.
fn planned(settings: &ConvertSettings, seen: Option<Seen>) -> anyhow::Result<(Facts, Summary)> {
    if let Some(seen) = seen {
        let mut facts = again(settings, seen)?;
        let summary = summary_of(settings.mode, &mut facts);
        return Ok((facts, summary));
    }
    let staging = &settings.staging;
    let mut tries = 0;
    loop {
        let before = crate::manifest::fingerprint(staging);
        let mut facts = gather(settings)?;
        let summary = summary_of(settings.mode, &mut facts);
        tries += 1;
        let settled = || {
            crate::manifest::fingerprint(staging) == before
                && (facts.failures.is_empty() || crate::lock::writer(staging).is_none())
        };
        if !settings.dry_run || tries == 10 || settled() {
            return Ok((facts, summary));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The summary of the facts' plan, cut down to what `mode` does.
fn summary_of(mode: Mode, facts: &mut Facts) -> Summary {
    let sources: FxHashMap<&str, &Wanted> = (facts.seen.wanted.iter())
        .map(|w| (w.rel.as_str(), w))
        .collect();
    summarise(
        mode,
        &mut facts.plan,
        &mut facts.failures,
        &facts.seen.manifest,
        &sources,
    )
}

/// The run's summary as one line of `--log-file`.
fn log_summary(mode: Mode, s: &Summary, elapsed: std::time::Duration) {
    let c = &s.counts;
    let mut line = match mode {
        Mode::Convert => format!(
            "convert: converted {}, copied {}, retagged {}, renamed {}, removed {}, unchanged {}, \
             failed {}",
            c.converted,
            c.copied,
            c.retagged,
            c.renamed,
            c.removed,
            c.skipped,
            s.failed.len()
        ),
        Mode::TagOnly => format!(
            "tag: tagged {}, unchanged {}, pending convert {}, failed {}",
            c.retagged,
            c.skipped,
            s.pending,
            s.failed.len()
        ),
    };
    if s.dry_run {
        line.push_str(" (dry run: nothing was done)");
    }
    if let Some(why) = &s.refused {
        line.push_str(&format!(" (refused: {why})"));
    }
    if s.interrupted {
        line.push_str(" (interrupted)");
    }
    tracing::info!(
        target: report::LOG_ONLY,
        "{line}; {:.1} min of audio in {:.1} s",
        s.audio_minutes,
        elapsed.as_secs_f64()
    );
}

/// What `convert --dry-run` and `tag --dry-run` would report, from one scan and one plan: what
/// `status` shows; with the manifest it planned from. Writes and prints nothing (the caller
/// prints the failures, in `convert`).
pub fn preview(settings: &ConvertSettings) -> anyhow::Result<(Summary, Summary, Manifest)> {
    let Facts {
        seen: Seen {
            manifest, wanted, ..
        },
        mut failures,
        mut plan,
    } = gather(settings)?;
    let sources: FxHashMap<&str, &Wanted> = wanted.iter().map(|w| (w.rel.as_str(), w)).collect();
    let mut tag_plan = Plan {
        actions: plan.actions.clone(),
        unchanged: plan.unchanged,
        failures: Vec::new(),
    };
    let mut tag_failures = failures.clone();
    let mut convert = summarise(Mode::Convert, &mut plan, &mut failures, &manifest, &sources);
    convert.refused = guard(&plan, &manifest, &wanted, settings.force);
    // The tag stage's own failures are staged files that `convert` remakes: in its plan already.
    let mut tag = summarise(
        Mode::TagOnly,
        &mut tag_plan,
        &mut tag_failures,
        &manifest,
        &sources,
    );
    (convert.dry_run, tag.dry_run) = (true, true);
    convert.failed = failures;
    tag.failed = tag_failures;
    drop(sources);
    Ok((convert, tag, manifest))
}

/// The counts and plan lines of `mode`, its plan cut down to what that stage does.
fn summarise(
    mode: Mode,
    plan: &mut Plan,
    failures: &mut Vec<Failure>,
    manifest: &Manifest,
    sources: &FxHashMap<&str, &Wanted>,
) -> Summary {
    let mut summary = Summary::default();
    if mode == Mode::TagOnly {
        summary.pending = only_tags(plan, failures);
        summary.plan_lines = plan
            .actions
            .iter()
            .filter_map(|a| genre_change(a, manifest, sources))
            .collect();
    } else {
        summary.plan_lines = plan.actions.iter().filter_map(plan::describe).collect();
    }
    // One line per action, whatever the names hold.
    for line in &mut summary.plan_lines {
        if let Cow::Owned(escaped) = report::escape_controls(line) {
            *line = escaped;
        }
    }
    summary.counts.skipped = plan.unchanged;
    plan.actions.iter().for_each(|a| summary.counts.add(a));
    summary
}

/// Keep only what `tag` may do: rewrite tags. A staged file that is missing or damaged is an
/// error (only `convert` can remake it); other work waits for `convert`. Returns how much waits.
fn only_tags(plan: &mut Plan, failures: &mut Vec<Failure>) -> usize {
    let mut pending = 0;
    plan.actions.retain(|a| match a {
        Action::Retag { .. } | Action::Refresh { .. } => true,
        Action::Convert {
            source,
            output,
            reason: reason @ (Reason::OutputMissing | Reason::OutputChanged),
            ..
        } => {
            failures.push(Failure::new(
                source.clone(),
                format!("{reason} ({output}); run musync convert"),
            ));
            false
        }
        Action::Remove { source: None, .. } => false,
        _ => {
            pending += 1;
            false
        }
    });
    pending
}

/// `path: old genre → new genre`, as `tag --dry-run` prints it.
fn genre_change(
    action: &Action,
    manifest: &Manifest,
    sources: &FxHashMap<&str, &Wanted>,
) -> Option<String> {
    let Action::Retag { source, output } = action else {
        return None;
    };
    let show = |g: &[String]| {
        if g.is_empty() {
            "(none)".to_string()
        } else {
            g.join("; ")
        }
    };
    let old = manifest
        .records
        .get(source)
        .map(|r| show(&r.genre))
        .unwrap_or_default();
    let new = sources
        .get(source.as_str())
        .map(|w| show(&w.genre))
        .unwrap_or_default();
    Some(if old == new {
        format!("{output}: {old} (other tags changed)")
    } else {
        format!("{output}: {old} → {new}")
    })
}

/// Refuse to delete when the library looks unmounted or has lost most of its files.
fn guard(plan: &Plan, manifest: &Manifest, wanted: &[Wanted], force: bool) -> Option<String> {
    // Folder covers are not music: turning `--folder-art` off removes them all, rightly.
    let music = |r: &&crate::manifest::Record| r.kind != SourceKind::Cover;
    let removed: Vec<&crate::manifest::Record> = (plan.actions.iter())
        .filter_map(|a| match a {
            Action::Remove {
                source: Some(source),
                ..
            } => manifest.records.get(source).filter(music),
            _ => None,
        })
        .collect();
    if force || removed.is_empty() {
        return None;
    }
    // A source whose audio is still in the library was moved, not lost: with a new quality its
    // output cannot just be renamed, so the plan removes and converts it again.
    let audio: BTreeSet<&Digest> = wanted.iter().map(|w| &w.audio_hash).collect();
    let removals = (removed.iter())
        .filter(|r| !audio.contains(&r.audio_hash))
        .count();
    let records = manifest.records.values().filter(music).count();
    if force || removals == 0 {
        return None;
    }
    if wanted.is_empty() {
        return Some(format!(
            "the library holds no music but {records} staged files were made from it; is the disk \
             mounted? Nothing was changed (use --force to remove them all)"
        ));
    }
    (records >= 4 && removals * 2 > records).then(|| {
        format!(
            "{removals} of the {records} sources converted before are gone from the library; is \
             it complete? Nothing was changed (use --force if this is intended)"
        )
    })
}

/// A staged file as the convert plan will leave it: what `sync --dry-run` feeds the push planner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub size: u64,
    /// The output's hash, or a stand-in for bytes not made yet (never equal to a real hash).
    pub hash: String,
    /// The size is a guess: the file is not converted yet.
    pub estimated: bool,
}

/// The mirror (staging-relative path → output) once the convert plan of what a dry run `seen`
/// is carried out; reads, writes nothing.
pub fn predicted_outputs(seen: &Seen) -> BTreeMap<String, Output> {
    let fresh;
    let plan = match &seen.planned {
        Some((plan, _)) => plan,
        None => {
            fresh = seen.plan().0;
            &fresh
        }
    };
    let sources: BTreeMap<&str, (SourceKind, u64)> = (seen.wanted.iter())
        .map(|w| (w.rel.as_str(), (w.kind, w.stamp.size)))
        .collect();
    predict(&seen.manifest, &plan.actions, |s| sources.get(s).copied())
}

/// A new MP3 is about a fifth of its FLAC (V2 against lossless); a native MP3 is copied.
fn estimate(kind: SourceKind, source_size: u64) -> u64 {
    match kind {
        SourceKind::Mp3 | SourceKind::Cover => source_size,
        SourceKind::Lossless => source_size / 5,
    }
}

/// `manifest`'s outputs with `actions` applied (pure).
fn predict(
    manifest: &Manifest,
    actions: &[Action],
    source: impl Fn(&str) -> Option<(SourceKind, u64)>,
) -> BTreeMap<String, Output> {
    let mut mirror: BTreeMap<String, Output> = (manifest.records.values())
        .map(|r| {
            let output = Output {
                size: r.output_stamp.size,
                hash: r.output_hash.to_string(),
                estimated: false,
            };
            (r.output.clone(), output)
        })
        .collect();
    let remade = |path: &str, size: u64| Output {
        size,
        hash: format!("to be made: {path}"),
        estimated: true,
    };
    for action in actions {
        match action {
            Action::Convert {
                source: s, output, ..
            } => {
                let size = source(s).map_or(0, |(kind, size)| estimate(kind, size));
                mirror.insert(output.clone(), remade(output, size));
            }
            Action::Retag { output, .. } => {
                let size = mirror.get(output).map_or(0, |o| o.size);
                mirror.insert(output.clone(), remade(output, size));
            }
            Action::Move {
                old_output,
                output,
                retag,
                ..
            } => {
                if let Some(old) = mirror.remove(old_output) {
                    let new = if *retag {
                        remade(output, old.size)
                    } else {
                        old
                    };
                    mirror.insert(output.clone(), new);
                }
            }
            Action::Remove {
                output,
                delete: true,
                ..
            } => {
                mirror.remove(output);
            }
            Action::Remove { .. } | Action::Refresh { .. } => {}
        }
    }
    mirror
}

#[cfg(test)]
mod predict_tests {
    use super::*;
    use crate::manifest::Record;

    fn record(source: &str, output: &str, size: u64) -> Record {
        Record {
            source: source.into(),
            kind: SourceKind::Lossless,
            stamp: Stamp {
                size: 1000,
                mtime_ns: 0,
            },
            audio_hash: Digest::default(),
            tag_hash: Digest::default(),
            encoder: "".into(),
            tag_key: Digest::default(),
            output: output.into(),
            output_stamp: Stamp { size, mtime_ns: 0 },
            output_hash: format!("hash of {output}").into(),
            retag_from: None,
            own_genre: vec![],
            genre: vec![],
        }
    }

    fn manifest(records: &[Record]) -> Manifest {
        Manifest {
            records: (records.iter())
                .map(|r| (r.source.clone(), r.clone()))
                .collect(),
            ..Manifest::default()
        }
    }

    #[test]
    fn the_mirror_after_the_plan_keeps_hashes_of_moves_and_estimates_new_files() {
        let m = manifest(&[
            record("A/1.flac", "A/1.mp3", 10),
            record("A/2.flac", "A/2.mp3", 20),
            record("A/3.flac", "A/3.mp3", 30),
        ]);
        let actions = [
            Action::Move {
                old_source: "A/1.flac".into(),
                old_output: "A/1.mp3".into(),
                source: "B/1.flac".into(),
                output: "B/1.mp3".into(),
                retag: false,
            },
            Action::Remove {
                source: Some("A/2.flac".into()),
                output: "A/2.mp3".into(),
                delete: true,
            },
            Action::Retag {
                source: "A/3.flac".into(),
                output: "A/3.mp3".into(),
            },
            Action::Convert {
                source: "N/1.flac".into(),
                output: "N/1.mp3".into(),
                reason: Reason::New,
                copy: false,
            },
        ];
        let got = predict(&m, &actions, |_| Some((SourceKind::Lossless, 5000)));
        let paths: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(paths, ["A/3.mp3", "B/1.mp3", "N/1.mp3"]);
        let moved = &got["B/1.mp3"];
        assert_eq!(
            (moved.hash.as_str(), moved.estimated),
            ("hash of A/1.mp3", false)
        );
        assert!(got["A/3.mp3"].estimated && got["A/3.mp3"].hash != "hash of A/3.mp3");
        assert_eq!(
            (got["N/1.mp3"].size, got["N/1.mp3"].estimated),
            (1000, true)
        );
    }

    #[test]
    fn an_empty_plan_predicts_the_manifest() {
        let m = manifest(&[record("A/1.flac", "A/1.mp3", 10)]);
        let got = predict(&m, &[], |_| None);
        let one = &got["A/1.mp3"];
        assert_eq!(
            (one.size, one.hash.as_str(), one.estimated),
            (10, "hash of A/1.mp3", false)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genre::{DISC_PATTERN, GenreFrom, Policy};

    /// The tag key is the sha256 of the same text it was when hashes were held as text (values
    /// worked out apart, with Python's hashlib): a changed key would retag every staged file.
    #[test]
    fn the_tag_key_is_what_it_was_when_hashes_were_text() {
        let mirror = MirrorSettings::default();
        let cover = (
            "Jazz/A/cover.jpg".to_string(),
            Stamp {
                size: 1234,
                mtime_ns: -5,
            },
        );
        let genre = ["Jazz".to_string(), "Bebop".to_string()];
        let key = tag_key(&"ab".repeat(32).into(), &genre, Some(&cover), &mirror);
        assert_eq!(
            key.to_string(),
            "31aa84d099b560064b43a7cd7d1359044a19e3ec4bd876eb54bd208fda3544aa"
        );
        let key = tag_key(&"image 00ff".into(), &[], None, &mirror);
        assert_eq!(
            key.to_string(),
            "0eac03d35a9a211d6489c0355c95f3981e37c572915745f5fc8a61ca3c6f644b"
        );
    }

    #[test]
    fn a_folder_cover_is_a_png_only_when_its_bytes_stay_a_png() {
        assert_eq!(
            cover_output("A/folder.png", "image/png 600x600", 1200),
            "A/cover.png"
        );
        assert_eq!(
            cover_output("A/folder.png", "image/png 3000x600", 1200),
            "A/cover.jpg"
        );
        assert_eq!(
            cover_output("A/folder.png", "image/png 3000x3000", 0),
            "A/cover.png"
        );
        assert_eq!(
            cover_output("A/front.jpeg", "image/jpeg 3000x3000", 0),
            "A/cover.jpg"
        );
        assert_eq!(
            cover_output("cover.jpg", "image/jpeg 10x10", 1200),
            "cover.jpg"
        );
    }

    #[test]
    fn disc_folders_fall_back_on_the_album_folder_cover() {
        let stamp = Stamp {
            size: 1,
            mtime_ns: 1,
        };
        let mut scan = scan::Scan::default();
        for image in [
            "A/cover.jpg",
            "B/CD1/folder.jpg",
            "B/cover.jpg",
            "cover.jpg",
        ] {
            scan.covers
                .insert(scan::parent_of(image).to_owned(), (image.to_owned(), stamp));
        }
        let rules = GenreRules::new(GenreFrom::Parent, Policy::Always, &[], DISC_PATTERN).unwrap();
        let cover = |rel: &str| folder_cover(&scan, &rules, rel).map(|(p, _)| p.as_str());
        assert_eq!(cover("A/CD1/1.flac"), Some("A/cover.jpg"));
        assert_eq!(cover("A/Disc 2 - Live/1.flac"), Some("A/cover.jpg"));
        assert_eq!(cover("B/CD1/1.flac"), Some("B/CD1/folder.jpg"));
        assert_eq!(cover("B/CD2/1.flac"), Some("B/cover.jpg"));
        assert_eq!(cover("A/Extras/1.flac"), None);
        assert_eq!(cover("CD1/1.flac"), Some("cover.jpg"));
        assert_eq!(cover("C/1.flac"), None);
    }
}
