//! The facts a convert or tag run plans from: the library scan, the manifest, what staging
//! holds, and each source's fingerprint; then the pure planner's plan for them. The library
//! walk, the staging walk and the manifest load run side by side; a stage that follows another
//! in one `sync` plans from what the first one saw (`Seen`), without walking or loading again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::plan::{self, Plan, Staging, Wanted};
use super::{ConvertSettings, Resolved, cover_output, encoder_key, folder_cover, tag_key};
use crate::audio;
use crate::digest::Digest;
use crate::fsutil::{self, Stamp};
use crate::genre::{FolderGenre, GenreRules};
use crate::interrupt;
use crate::manifest::{self, Manifest, Record};
use crate::metadata;
use crate::report::Failure;
use crate::scan::{self, Scan, SourceKind};
use crate::settings::MirrorSettings;

/// What a run looked at: the library scan, the manifest (as the run left it), the settings in
/// force, each source's fingerprint, the failures met while looking, and staging.
pub struct Seen {
    pub scan: Scan,
    pub manifest: Manifest,
    pub resolved: Resolved,
    pub wanted: Vec<Wanted>,
    /// Scan errors and sources that could not be fingerprinted.
    pub failures: Vec<Failure>,
    pub staging: Staging,
    /// Temporary files a killed run left in the mirror part of staging.
    pub temps: Vec<PathBuf>,
    /// The convert plan of what was seen, with its failures, while it still holds (the run
    /// carried none of it out): the next run plans from the same facts, so it needs not plan
    /// again.
    pub(super) planned: Option<(Plan, Vec<Failure>)>,
    /// The failures of the plan a stage before this one in the same `sync` printed already
    /// (tag meets convert's again): not printed twice.
    pub(super) reported: Vec<Failure>,
}

impl Seen {
    /// The manifest, the rest let go.
    pub fn into_manifest(self) -> Manifest {
        self.manifest
    }

    /// After a run changed the staged files at `touched` (and no other: it held the lock), what
    /// staging holds there now; the rest of staging is as it was seen.
    pub(super) fn refresh(&mut self, staging_dir: &Path, touched: &BTreeSet<String>) {
        let staging = &mut self.staging;
        let records: BTreeMap<&str, &Record> = (self.manifest.records.values())
            .filter(|r| touched.contains(&r.output))
            .map(|r| (r.output.as_str(), r))
            .collect();
        for output in touched {
            staging.present.remove(output);
            staging.missing.remove(output);
            staging.changed.remove(output);
            staging.stale.remove(output);
            let record = records.get(output.as_str());
            // As the walk sees it: a regular file, not through a symbolic link.
            let meta = std::fs::symlink_metadata(staging_dir.join(output));
            let Some(meta) = meta.ok().filter(std::fs::Metadata::is_file) else {
                if record.is_some() {
                    staging.missing.insert(output.clone());
                }
                continue;
            };
            staging.present.insert(output.clone());
            let Some(r) = record else {
                continue;
            };
            match check_output(staging_dir, r, Some(Stamp::of_metadata(&meta))) {
                Some((output, Check::Stale)) => staging.stale.insert(output),
                Some((output, _)) => staging.changed.insert(output),
                None => false,
            };
        }
    }

    /// The plan for what was seen (staging must be known).
    pub(super) fn plan(&self) -> (Plan, Vec<Failure>) {
        let unreadable: Vec<String> = self.failures.iter().map(|f| f.path.clone()).collect();
        let mut plan = plan::plan(&self.wanted, &unreadable, &self.manifest, &self.staging);
        let mut failures = self.failures.clone();
        failures.append(&mut plan.failures);
        (plan, failures)
    }
}

/// Everything a run plans from, and the plan.
pub struct Facts {
    pub seen: Seen,
    /// The seen failures and the planner's.
    pub failures: Vec<Failure>,
    pub plan: Plan,
}

impl Facts {
    fn of(mut seen: Seen) -> Facts {
        let (plan, failures) = seen.planned.take().unwrap_or_else(|| seen.plan());
        Facts {
            seen,
            failures,
            plan,
        }
    }
}

pub fn gather(settings: &ConvertSettings) -> anyhow::Result<Facts> {
    look(settings).map(Facts::of)
}

/// The facts of a run that follows another in one `sync`, from what that run saw and left: the
/// library is not walked again, nor staging, nor the manifest loaded. Settings that resolve
/// differently (a dry run or a refused convert did not record the new ones) change what every
/// source wants: then it looks afresh.
pub fn again(settings: &ConvertSettings, seen: Seen) -> anyhow::Result<Facts> {
    let mirror =
        MirrorSettings::resolve(seen.manifest.settings.as_ref(), settings.overrides.clone());
    if mirror != seen.resolved.mirror {
        return gather(settings);
    }
    Ok(Facts::of(seen))
}

/// Walk the library and staging and load the manifest, side by side; then fingerprint.
fn look(settings: &ConvertSettings) -> anyhow::Result<Seen> {
    let pool = scan::walk_pool().context("starting the walk of the library and staging")?;
    let ((scan, walked), manifest) = pool.install(|| {
        rayon::join(
            || {
                rayon::join(
                    || scan::scan(&settings.library, &settings.selection, &pool),
                    || walk_staging(&settings.staging, &pool),
                )
            },
            || manifest::load(&settings.staging),
        )
    });
    let mut scan = scan?;
    let manifest = manifest?;
    tracing::debug!(
        "scanned the library ({} sources) and loaded the manifest ({} records)",
        scan.sources.len(),
        manifest.records.len()
    );
    let mirror = MirrorSettings::resolve(manifest.settings.as_ref(), settings.overrides.clone());
    let resolved = Resolved {
        rules: mirror.rules()?,
        mirror,
    };
    let (present, temps) = walked;
    let staging = check_staging(&settings.staging, &manifest, present);
    let (mut wanted, mut failures) = fingerprint(settings, &resolved, &mut scan, &manifest);
    if resolved.mirror.folder_art {
        let (covers, bad) = folder_covers(settings, &resolved, &scan, &manifest, &wanted);
        wanted.reserve_exact(covers.len());
        wanted.extend(covers);
        failures.extend(bad);
    }
    if interrupt::interrupted() {
        // The fingerprints stopped half-way: no plan can be made from them.
        return Err(interrupt::Interrupted.into());
    }
    failures.extend(scan.errors.iter().cloned());
    Ok(Seen {
        scan,
        manifest,
        resolved,
        wanted,
        failures,
        staging,
        temps,
        planned: None,
        reported: Vec::new(),
    })
}

/// Staged files (relative path → stamp, `None` when it could not be read).
type Present = FxHashMap<String, Option<Stamp>>;

/// The files under staging (musync's own folder left out), relative, with their stamps (taken
/// in the walk, so that checking them needs no second pass), and the temporary files. Run on
/// `pool` (a `scan::walk_pool`: its stacks hold the deepest tree); symbolic links are not
/// followed (a staged file is a regular file).
fn walk_staging(staging: &Path, pool: &rayon::ThreadPool) -> (Present, Vec<PathBuf>) {
    let found = pool.install(|| walk_staged(staging, staging));
    let mut present = FxHashMap::default();
    present.reserve(found.len());
    let mut temps = Vec::new();
    for staged in found {
        match staged {
            Staged::File(rel, stamp) => {
                present.insert(rel, stamp);
            }
            Staged::Temp(path) => temps.push(path),
        }
    }
    (present, temps)
}

/// A file of staging, as the walk finds it.
enum Staged {
    /// Relative path and stamp (`None` when it could not be read).
    File(String, Option<Stamp>),
    /// A temporary file a killed run left.
    Temp(PathBuf),
}

/// The files under `dir`, on this thread (the library is walked in parallel beside it: more
/// threads only added switches between them). An unreadable folder only hides
/// files: the executor checks each target again before it writes, so a hidden user file is
/// never overwritten.
fn walk_staged(root: &Path, dir: &Path) -> Vec<Staged> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut folders = Vec::new();
    for entry in listing.flatten() {
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        if dir == root && name == manifest::STATE_DIR {
            continue;
        }
        let path = entry.path();
        if file_type.is_dir() {
            folders.push(path);
            continue;
        }
        if !file_type.is_file() {
            continue;
        }
        if name.to_string_lossy().starts_with(fsutil::TEMP_PREFIX) {
            found.push(Staged::Temp(path));
        } else if let Some(rel) = scan::relative_utf8(root, &path) {
            // Read beside the folder's listing (fstatat), not by the whole path again.
            let stamp = entry.metadata().ok().map(|m| Stamp::of_metadata(&m));
            found.push(Staged::File(rel, stamp));
        }
    }
    let inside: Vec<Vec<Staged>> = folders
        .iter()
        .map(|folder| walk_staged(root, folder))
        .collect();
    found.extend(inside.into_iter().flatten());
    found
}

/// Which recorded outputs are missing, and which no longer hold what musync wrote. An output
/// whose size and mtime match its record is trusted without being read.
fn check_staging(staging: &Path, manifest: &Manifest, present: Present) -> Staging {
    let checked: Vec<(String, Check)> = manifest
        .records
        .par_iter()
        .filter_map(|(_, r)| match present.get(&r.output) {
            None => Some((r.output.clone(), Check::Missing)),
            Some(&stamp) => check_output(staging, r, stamp),
        })
        .collect();
    let mut found = Staging {
        present: present.into_keys().collect(),
        ..Staging::default()
    };
    for (output, check) in checked {
        match check {
            Check::Missing => found.missing.insert(output),
            Check::Changed => found.changed.insert(output),
            Check::Stale => found.stale.insert(output),
        };
    }
    found
}

/// What is wrong with a recorded output.
enum Check {
    Missing,
    /// Its bytes are not what musync wrote.
    Changed,
    /// It holds what it held before an unfinished retag.
    Stale,
}

/// A present staged file whose stamp is not its record's: `None` when its bytes still are what
/// musync wrote, else its path and how it differs.
fn check_output(staging: &Path, r: &Record, stamp: Option<Stamp>) -> Option<(String, Check)> {
    if stamp == Some(r.output_stamp) {
        return None;
    }
    let hash = fsutil::sha256_file(&staging.join(&r.output)).ok();
    if hash.as_ref() == Some(&r.output_hash) {
        None
    } else if hash.is_some() && hash == r.retag_from {
        Some((r.output.clone(), Check::Stale))
    } else {
        Some((r.output.clone(), Check::Changed))
    }
}

/// Fingerprint every source: reused from the manifest when path, size and mtime are unchanged,
/// otherwise read (audio packets and tags, never decoded), in parallel. The sources move into
/// their fingerprints (the scan keeps its covers).
fn fingerprint(
    settings: &ConvertSettings,
    resolved: &Resolved,
    scan: &mut Scan,
    manifest: &Manifest,
) -> (Vec<Wanted>, Vec<Failure>) {
    let sources = std::mem::take(&mut scan.sources);
    let scan = &*scan;
    // Each source's record, by a merge: both are sorted by source.
    let mut records = manifest.in_order();
    let known: Vec<Option<&Record>> = (sources.iter()).map(|s| records.get(&s.rel)).collect();
    let quality = resolved.mirror.quality;
    let encoders: [Arc<str>; 2] =
        [SourceKind::Lossless, SourceKind::Mp3].map(|k| encoder_key(k, quality).into());
    let results: Vec<Result<Wanted, Failure>> = (sources.into_par_iter().zip(known))
        .map_init(Folder::default, |folder, (s, known)| {
            let (audio_hash, tag_hash, own_genre) = match known {
                Some(r) if r.stamp == s.stamp && r.kind == s.kind => (
                    r.audio_hash.clone(),
                    r.tag_hash.clone(),
                    r.own_genre.clone(),
                ),
                // Reading every new file can take minutes; Ctrl-C should not wait for it.
                _ if interrupt::interrupted() => {
                    return Err(Failure::new(s.rel.clone(), "interrupted"));
                }
                _ => {
                    let path = settings.library.join(&s.rel);
                    let audio = audio::audio_hash(&path)
                        .map_err(|e| Failure::from_error(s.rel.clone(), &e))?;
                    let tags = metadata::read_tags(&path)
                        .map_err(|e| Failure::from_error(s.rel.clone(), &e))?;
                    let own = tags.get("genre").unwrap_or_default().to_vec();
                    (audio, metadata::tag_hash(&tags), own)
                }
            };
            let (folder_genre, cover) = folder.of(scan, &resolved.rules, &s.rel);
            let genre = folder_genre.with_own(&own_genre);
            Ok(Wanted {
                tag_key: tag_key(&tag_hash, &genre, cover, &resolved.mirror),
                encoder: match s.kind {
                    SourceKind::Lossless => encoders[0].clone(),
                    SourceKind::Mp3 => encoders[1].clone(),
                    SourceKind::Cover => encoder_key(s.kind, quality).into(),
                },
                rel: s.rel,
                kind: s.kind,
                stamp: s.stamp,
                audio_hash,
                tag_hash,
                own_genre,
                genre,
                output: None,
            })
        })
        .collect();
    // Into the results' own memory (collected in place): no second copy of 100,000 sources.
    let mut failures = Vec::new();
    let wanted = (results.into_iter())
        .filter_map(|r| r.map_err(|f| failures.push(f)).ok())
        .collect();
    (wanted, failures)
}

/// What a folder gives each of its files (genre and cover), kept from its last file: sorted
/// sources come an album at a time, so the rules are matched once a folder, not once a file.
#[derive(Default)]
struct Folder<'s> {
    last: Option<FolderFacts<'s>>,
}

/// A folder, its genre and its cover.
type FolderFacts<'s> = (String, FolderGenre, Option<&'s (String, Stamp)>);

impl<'s> Folder<'s> {
    fn of(
        &mut self,
        scan: &'s Scan,
        rules: &GenreRules,
        rel: &str,
    ) -> (&FolderGenre, Option<&'s (String, Stamp)>) {
        let folder = scan::parent_of(rel);
        if self.last.as_ref().is_none_or(|(last, ..)| last != folder) {
            let cover = folder_cover(scan, rules, rel);
            self.last = Some((folder.to_string(), rules.of_folder(folder), cover));
        }
        let (_, genre, cover) = self.last.as_ref().expect("set above");
        (genre, *cover)
    }
}

/// The folder covers the mirror gets: each library image some track falls back on (its folder's,
/// or its album folder's from a disc folder), once, as a `cover.jpg` (or `.png`) beside it. A
/// disc folder's own image only goes into its tracks: the mirror's cover files are per album.
/// Fingerprinted like the tracks: reused from the manifest while the image's stamp holds.
fn folder_covers(
    settings: &ConvertSettings,
    resolved: &Resolved,
    scan: &Scan,
    manifest: &Manifest,
    tracks: &[Wanted],
) -> (Vec<Wanted>, Vec<Failure>) {
    // An album's folder, never a disc folder: a multi-disc album's cover lies beside its discs.
    let in_disc_folder = |image: &str| {
        let folder = scan::parent_of(image);
        let name = folder.rsplit('/').next().unwrap_or(folder);
        !folder.is_empty() && resolved.rules.is_disc_folder(name)
    };
    let images: std::collections::BTreeMap<&str, Stamp> = (tracks.iter())
        .filter_map(|w| folder_cover(scan, &resolved.rules, &w.rel))
        .filter(|(rel, _)| !in_disc_folder(rel))
        .map(|(rel, stamp)| (rel.as_str(), *stamp))
        .collect();
    let mut wanted = Vec::new();
    let mut failures = Vec::new();
    for (rel, stamp) in images {
        let known = (manifest.records.get(rel))
            .filter(|r| r.stamp == stamp && r.kind == scan::SourceKind::Cover);
        let (hash, facts) = match known {
            Some(r) => (r.audio_hash.clone(), r.tag_hash.clone()),
            None => match cover_facts(&settings.library.join(rel)) {
                Ok((hash, facts)) => (hash.into(), facts.into()),
                Err(e) => {
                    failures.push(Failure::from_error(rel, &e));
                    continue;
                }
            },
        };
        let max = resolved.mirror.art_max_size;
        wanted.push(Wanted {
            output: Some(cover_output(rel, &facts.to_string(), max)),
            rel: rel.to_string(),
            kind: scan::SourceKind::Cover,
            stamp,
            audio_hash: hash,
            tag_hash: facts,
            tag_key: Digest::default(),
            // The bytes depend on the size limit: a new limit remakes the file.
            encoder: format!(
                "{}; max {max}",
                encoder_key(scan::SourceKind::Cover, resolved.mirror.quality)
            )
            .into(),
            own_genre: Vec::new(),
            genre: Vec::new(),
        });
    }
    (wanted, failures)
}

/// An image's fingerprint (`image ` + the sha256 of its bytes) and what its staged name depends
/// on: `<mime> <width>x<height>` (the size only read from the header).
fn cover_facts(path: &Path) -> anyhow::Result<(String, String)> {
    use sha2::{Digest, Sha256};
    let cover = metadata::load_cover(path)?;
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(&cover.data))
        .with_guessed_format()
        .context("reading the cover image")?
        .into_dimensions()
        .context("reading the cover image's size")?;
    let hash = format!("image {}", fsutil::hex(&Sha256::digest(&cover.data)));
    Ok((hash, format!("{} {w}x{h}", cover.mime)))
}
