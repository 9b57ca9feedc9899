//! The facts a convert or tag run plans from: the library scan, the manifest, what staging
//! holds, and each source's fingerprint; then the pure planner's plan for them.

use std::collections::BTreeSet;
use std::path::Path;

use rayon::prelude::*;

use super::plan::{self, Plan, Staging, Wanted};
use super::{ConvertSettings, Resolved, cover_output, encoder_key, folder_cover, tag_key};
use crate::audio;
use crate::fsutil::{self, Stamp};
use crate::interrupt;
use crate::manifest::{self, Manifest};
use crate::metadata;
use crate::report::Failure;
use crate::scan::{self, Scan};
use crate::settings::MirrorSettings;

/// Everything a run plans from: the library scan, the manifest, the settings in force, each
/// source's fingerprint, and the plan.
pub struct Facts {
    pub scan: Scan,
    pub manifest: Manifest,
    pub resolved: Resolved,
    pub wanted: Vec<Wanted>,
    pub failures: Vec<Failure>,
    pub plan: Plan,
}

pub fn gather(settings: &ConvertSettings) -> anyhow::Result<Facts> {
    let scan = scan::scan(&settings.library, &settings.selection)?;
    let manifest = manifest::load(&settings.staging)?;
    let mirror = MirrorSettings::resolve(manifest.settings.as_ref(), settings.overrides.clone());
    let resolved = Resolved {
        rules: mirror.rules()?,
        mirror,
    };
    let staging = staging_state(&settings.staging, &manifest);
    let (mut wanted, mut failures) = fingerprint(settings, &resolved, &scan, &manifest);
    if resolved.mirror.folder_art {
        let (covers, bad) = folder_covers(settings, &resolved, &scan, &manifest, &wanted);
        wanted.extend(covers);
        failures.extend(bad);
    }
    if interrupt::interrupted() {
        // The fingerprints stopped half-way: no plan can be made from them.
        return Err(interrupt::Interrupted.into());
    }
    failures.extend(scan.errors.iter().cloned());

    let unreadable: Vec<String> = failures.iter().map(|f| f.path.clone()).collect();
    let mut plan = plan::plan(&wanted, &unreadable, &manifest, &staging);
    failures.append(&mut plan.failures);
    Ok(Facts {
        scan,
        manifest,
        resolved,
        wanted,
        failures,
        plan,
    })
}

/// Files under staging, and which recorded outputs no longer hold what musync wrote. An output
/// whose size and mtime match its record is trusted without being read.
fn staging_state(staging: &Path, manifest: &Manifest) -> Staging {
    let mut present = BTreeSet::new();
    let mut walk = walkdir::WalkDir::new(staging).into_iter();
    // An unreadable folder only hides files; the executor checks each target again before it
    // writes, so a hidden user file is never overwritten.
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy();
        if entry.depth() == 1 && name == manifest::STATE_DIR {
            walk.skip_current_dir();
        } else if entry.file_type().is_file()
            && !name.starts_with(fsutil::TEMP_PREFIX)
            && let Ok(rel) = entry.path().strip_prefix(staging)
            && let Some(rel) = rel.to_str()
        {
            present.insert(rel.replace(std::path::MAIN_SEPARATOR, "/"));
        }
    }
    let checked: Vec<(String, bool)> = manifest
        .records
        .par_iter()
        .filter(|(_, r)| present.contains(&r.output))
        .filter_map(|(_, r)| {
            let path = staging.join(&r.output);
            if Stamp::of(&path) == Some(r.output_stamp) {
                return None;
            }
            let hash = fsutil::sha256_file(&path).ok();
            if hash.as_ref() == Some(&r.output_hash) {
                None
            } else {
                Some((r.output.clone(), hash.is_some() && hash == r.retag_from))
            }
        })
        .collect();
    let (stale, changed) = checked
        .into_iter()
        .partition::<Vec<_>, _>(|(_, stale)| *stale);
    Staging {
        present,
        changed: changed.into_iter().map(|(o, _)| o).collect(),
        stale: stale.into_iter().map(|(o, _)| o).collect(),
    }
}

/// Fingerprint every source: reused from the manifest when path, size and mtime are unchanged,
/// otherwise read (audio packets and tags, never decoded), in parallel.
fn fingerprint(
    settings: &ConvertSettings,
    resolved: &Resolved,
    scan: &Scan,
    manifest: &Manifest,
) -> (Vec<Wanted>, Vec<Failure>) {
    let results: Vec<Result<Wanted, Failure>> = scan
        .sources
        .par_iter()
        .map(|s| {
            let (audio_hash, tag_hash, own_genre) = match manifest.records.get(&s.rel) {
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
            let genre = resolved.rules.genre(&s.rel, &own_genre);
            Ok(Wanted {
                tag_key: tag_key(
                    &tag_hash,
                    &genre,
                    folder_cover(scan, &resolved.rules, &s.rel),
                    &resolved.mirror,
                ),
                encoder: encoder_key(s.kind, resolved.mirror.quality),
                rel: s.rel.clone(),
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
    let mut wanted = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(w) => wanted.push(w),
            Err(f) => failures.push(f),
        }
    }
    (wanted, failures)
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
                Ok(got) => got,
                Err(e) => {
                    failures.push(Failure::from_error(rel, &e));
                    continue;
                }
            },
        };
        let max = resolved.mirror.art_max_size;
        wanted.push(Wanted {
            output: Some(cover_output(rel, &facts, max)),
            rel: rel.to_string(),
            kind: scan::SourceKind::Cover,
            stamp,
            audio_hash: hash,
            tag_hash: facts,
            tag_key: String::new(),
            // The bytes depend on the size limit: a new limit remakes the file.
            encoder: format!(
                "{}; max {max}",
                encoder_key(scan::SourceKind::Cover, resolved.mirror.quality)
            ),
            own_genre: Vec::new(),
            genre: Vec::new(),
        });
    }
    (wanted, failures)
}

/// An image's fingerprint (`image ` + the sha256 of its bytes) and what its staged name depends
/// on: `<mime> <width>x<height>` (the size only read from the header).
fn cover_facts(path: &Path) -> anyhow::Result<(String, String)> {
    use anyhow::Context;
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
