//! The verify command: check that the staged mirror holds what the manifest says musync made
//! (every staged file hashed again) and, with a remote, that the remote holds what the push state
//! says musync put there (one listing, sizes only). It reports; it writes and repairs nothing
//! (`convert` and `push` do that).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;

use crate::fsutil;
use crate::interrupt;
use crate::lock;
use crate::manifest;
use crate::push::{self, BACKUP_DIR, UPLOAD_DIR};
use crate::rclone::Rclone;
use crate::report::Failure;

pub struct VerifySettings {
    pub staging: PathBuf,
    pub remote: Option<String>,
    pub jobs: usize,
}

/// How one side (staging or the remote) differs from musync's records of it.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Check<T> {
    /// Files musync's records expect there.
    pub checked: usize,
    /// Expected, not there.
    pub missing: Vec<String>,
    /// There, with other bytes (staging: sha256) or another size (the remote).
    pub changed: Vec<Changed<T>>,
    /// There, not made (staging) or not pushed (the remote) by musync.
    pub unknown: Vec<String>,
    /// Could not be read at all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Failure>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Changed<T> {
    pub path: String,
    pub expected: T,
    pub found: T,
}

/// What `verify --json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub staged: Check<String>,
    pub remote: Option<Check<u64>>,
    /// rclone or the remote failed, so the remote was not checked (named on stderr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_error: Option<String>,
}

impl<T> Check<T> {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.changed.is_empty()
            && self.unknown.is_empty()
            && self.unreadable.is_empty()
    }

    /// One line per problem; `place` says where, e.g. " on the remote"; `show` tells an expected
    /// value from the one found.
    fn failures(&self, place: &str, show: impl Fn(&T, &T) -> String) -> Vec<Failure> {
        let mut out: Vec<Failure> = self.unreadable.clone();
        out.extend((self.missing.iter()).map(|p| Failure::new(p, format!("missing{place}"))));
        out.extend(self.changed.iter().map(|c| {
            let difference = show(&c.expected, &c.found);
            Failure::new(&c.path, format!("changed{place} ({difference})"))
        }));
        let why = if place.is_empty() {
            "unknown (not made by musync)".to_owned()
        } else {
            format!("unknown{place} (not pushed by musync)")
        };
        out.extend(self.unknown.iter().map(|p| Failure::new(p, why.clone())));
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// `M missing, C changed, U unknown`.
    fn counts(&self) -> String {
        let mut text = format!(
            "{} missing, {} changed, {} unknown",
            self.missing.len(),
            self.changed.len(),
            self.unknown.len()
        );
        if !self.unreadable.is_empty() {
            text += &format!(", {} unreadable", self.unreadable.len());
        }
        text
    }
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.staged.is_clean() && self.remote.as_ref().is_none_or(Check::is_clean)
    }

    /// Every problem, as the lines printed to stderr: staging first, then the remote.
    pub fn failures(&self) -> Vec<Failure> {
        let mut out = (self.staged).failures("", |want, got| {
            format!("expected sha256 {}, found {}", short(want), short(got))
        });
        if let Some(remote) = &self.remote {
            out.extend(remote.failures(" on the remote", |want, got| {
                format!("expected {want} bytes, found {got} bytes")
            }));
        }
        out
    }

    /// The summary printed to stdout.
    pub fn summary(&self, remote: Option<&str>) -> Vec<String> {
        let staged = &self.staged;
        let mut lines = vec![format!(
            "Verified {} staged files: {}.",
            staged.checked,
            staged.counts()
        )];
        if let (Some(check), Some(name)) = (&self.remote, remote) {
            let (n, counts) = (check.checked, check.counts());
            lines.push(format!("Verified {n} pushed files on {name}: {counts}."));
        }
        if let (Some(_), Some(name)) = (&self.remote_error, remote) {
            lines.push(format!(
                "Did not verify {name}: the remote failed (the error is on stderr)."
            ));
        }
        lines
    }
}

/// The first 12 hex digits of a hash, enough to tell two apart.
fn short(hash: &str) -> String {
    match hash.get(..12) {
        Some(head) if head.len() < hash.len() => format!("{head}…"),
        _ => hash.to_owned(),
    }
}

pub fn run(settings: &VerifySettings, rclone: Option<&Rclone>) -> anyhow::Result<Report> {
    let staging = &settings.staging;
    anyhow::ensure!(
        staging.is_dir(),
        "staging {} is missing or not a folder; nothing to verify",
        staging.display()
    );
    let remote_side = settings.remote.as_deref().zip(rclone);
    // The listing (rclone's time) and the hashing (ours) overlap.
    std::thread::scope(|s| {
        let listing = remote_side.map(|(name, rclone)| s.spawn(move || rclone.list(name)));
        let loaded = manifest::fingerprint(staging);
        let manifest = manifest::load(staging)?;
        let expected = outputs(&manifest);
        let (present, unreadable) = staged_files(staging);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(settings.jobs)
            .build()
            .context("starting the hashing threads")?;
        let hash = |rel: &str| {
            // After Ctrl-C the remaining files are skipped, and the report is not printed.
            if interrupt::interrupted() {
                return Err(String::new());
            }
            fsutil::sha256_file(&staging.join(rel)).map_err(|e| format!("{e:#}"))
        };
        let mut staged = pool.install(|| compare_staged(&expected, &present, hash));
        pool.install(|| settle(staging, &mut staged, loaded, hash))?;
        if interrupt::interrupted() {
            return Err(interrupt::Interrupted.into());
        }
        staged.unreadable.extend(unreadable);
        let (mut remote, mut remote_error) = (None, None);
        if let (Some(listing), Some((name, _))) = (listing, remote_side) {
            match listing.join().expect("the listing thread does not panic") {
                Ok(listing) => {
                    let state = push::state::State::load(staging, name)?;
                    let sizes = listing.into_iter().map(|(p, f)| (p, f.size)).collect();
                    let pushed = state.files.iter().map(|(p, f)| (p.clone(), f.size));
                    remote = Some(compare_remote(&pushed.collect(), &sizes));
                }
                // The staged files' check stands; the remote's failure is reported beside it.
                Err(e) if !interrupt::interrupted() => remote_error = Some(e.to_string()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Report {
            staged,
            remote,
            remote_error,
        })
    })
}

/// Each staged output's path and sha256.
fn outputs(manifest: &manifest::Manifest) -> BTreeMap<&str, &str> {
    (manifest.records.values())
        .map(|r| (r.output.as_str(), r.output_hash.as_str()))
        .collect()
}

/// While another run changes staging (it holds `crate::lock`), or after it changed the
/// manifest during the check, a mismatch may be a file that run was just then writing: each is
/// looked at again against the manifest as it is now, until none is left, or no run changes
/// staging. What is left is reported.
fn settle(
    staging: &Path,
    staged: &mut Check<String>,
    mut loaded: String,
    hash: impl Fn(&str) -> Result<String, String> + Sync,
) -> anyhow::Result<()> {
    for round in 0..20 {
        let writing = lock::writer(staging).is_some();
        if staged.is_clean()
            || interrupt::interrupted()
            || (!writing && manifest::fingerprint(staging) == loaded)
        {
            break;
        }
        if writing && round > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        loaded = manifest::fingerprint(staging);
        let manifest = manifest::load(staging)?;
        let suspects: BTreeSet<String> = (staged.missing.iter().cloned())
            .chain(staged.changed.drain(..).map(|c| c.path))
            .chain(staged.unknown.iter().cloned())
            // A file moved or removed between the listing and its hashing.
            .chain(staged.unreadable.drain(..).map(|f| f.path))
            .collect();
        let expected: BTreeMap<&str, &str> = outputs(&manifest)
            .into_iter()
            .filter(|(p, _)| suspects.contains(*p))
            .collect();
        let present = (suspects.into_iter())
            .filter(|p| {
                staging
                    .join(p)
                    .symlink_metadata()
                    .is_ok_and(|m| !m.is_dir())
            })
            .collect();
        let again = compare_staged(&expected, &present, &hash);
        staged.missing = again.missing;
        staged.changed = again.changed;
        staged.unknown = again.unknown;
        staged.unreadable = again.unreadable;
    }
    Ok(())
}

/// Staging-relative paths of everything under `staging` but folders, musync's own folder and
/// its temporary files; and the folders that could not be read.
fn staged_files(staging: &Path) -> (BTreeSet<String>, Vec<Failure>) {
    let mut present = BTreeSet::new();
    let mut unreadable = Vec::new();
    let mut walk = walkdir::WalkDir::new(staging).into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().unwrap_or(staging);
                let rel = path.strip_prefix(staging).unwrap_or(path);
                unreadable.push(Failure::new(rel.to_string_lossy(), e.to_string()));
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy();
        if entry.depth() == 1 && name == manifest::STATE_DIR {
            walk.skip_current_dir();
        } else if !entry.file_type().is_dir()
            && !name.starts_with(fsutil::TEMP_PREFIX)
            && let Ok(rel) = entry.path().strip_prefix(staging)
        {
            let rel = rel.to_string_lossy();
            present.insert(rel.replace(std::path::MAIN_SEPARATOR, "/"));
        }
    }
    (present, unreadable)
}

/// Compare the staged files with the manifest's outputs (path → sha256), hashing each output
/// present with `hash`, in parallel on the current rayon pool.
fn compare_staged(
    expected: &BTreeMap<&str, &str>,
    present: &BTreeSet<String>,
    hash: impl Fn(&str) -> Result<String, String> + Sync,
) -> Check<String> {
    let mut check = Check {
        checked: expected.len(),
        unknown: (present.iter())
            .filter(|p| !expected.contains_key(p.as_str()))
            .cloned()
            .collect(),
        ..Check::default()
    };
    let found: Vec<(&str, &str, Result<String, String>)> = expected
        .par_iter()
        .filter(|(path, _)| present.contains(**path))
        .map(|(path, want)| (*path, *want, hash(path)))
        .collect();
    check.missing = (expected.keys())
        .filter(|p| !present.contains(**p))
        .map(|p| (*p).to_owned())
        .collect();
    for (path, want, got) in found {
        match got {
            Ok(got) if got == want => {}
            Ok(got) => check.changed.push(Changed {
                path: path.to_owned(),
                expected: want.to_owned(),
                found: got,
            }),
            Err(e) => check.unreadable.push(Failure::new(path, e)),
        }
    }
    check
}

/// Compare the remote's listing (path → size) with what musync pushed there (path → size). The
/// backup and upload folders are musync's own and not compared.
fn compare_remote(pushed: &BTreeMap<String, u64>, listing: &BTreeMap<String, u64>) -> Check<u64> {
    let (backups, uploads) = (format!("{BACKUP_DIR}/"), format!("{UPLOAD_DIR}/"));
    let mut check = Check {
        checked: pushed.len(),
        ..Check::default()
    };
    for (path, &want) in pushed {
        match listing.get(path) {
            None => check.missing.push(path.clone()),
            Some(&got) if got != want => check.changed.push(Changed {
                path: path.clone(),
                expected: want,
                found: got,
            }),
            Some(_) => {}
        }
    }
    check.unknown = (listing.keys())
        .filter(|p| !pushed.contains_key(*p) && !p.starts_with(&backups))
        .filter(|p| !p.starts_with(&uploads))
        .cloned()
        .collect();
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn staged_files_missing_changed_unknown_and_unreadable() {
        let expected = BTreeMap::from([
            ("a.mp3", "aaaa"),
            ("b.mp3", "bbbb"),
            ("c.mp3", "cccc"),
            ("d.mp3", "dddd"),
        ]);
        let present = set(&["a.mp3", "b.mp3", "d.mp3", "mine.m3u"]);
        let check = compare_staged(&expected, &present, |p| match p {
            "b.mp3" => Ok("b0b0".into()),
            "d.mp3" => Err("permission denied".into()),
            other => Ok(expected[other].to_owned()),
        });
        assert_eq!(check.checked, 4);
        assert_eq!(check.missing, ["c.mp3"]);
        assert_eq!(
            check.changed,
            [Changed {
                path: "b.mp3".into(),
                expected: "bbbb".into(),
                found: "b0b0".into()
            }]
        );
        assert_eq!(check.unknown, ["mine.m3u"]);
        assert_eq!(
            check.unreadable,
            [Failure::new("d.mp3", "permission denied")]
        );
        assert!(!check.is_clean());
    }

    #[test]
    fn remote_ignores_backups_and_compares_sizes() {
        let pushed = BTreeMap::from([
            ("a.mp3".to_owned(), 10),
            ("b.mp3".to_owned(), 20),
            ("c.mp3".to_owned(), 30),
        ]);
        let listing = BTreeMap::from([
            ("a.mp3".to_owned(), 10),
            ("b.mp3".to_owned(), 21),
            ("playlist.m3u".to_owned(), 5),
            (format!("{BACKUP_DIR}/2026-01-01T00-00-00/x.mp3"), 7),
        ]);
        let check = compare_remote(&pushed, &listing);
        assert_eq!(check.checked, 3);
        assert_eq!(check.missing, ["c.mp3"]);
        assert_eq!(check.changed.len(), 1);
        assert_eq!(
            (check.changed[0].expected, check.changed[0].found),
            (20, 21)
        );
        assert_eq!(check.unknown, ["playlist.m3u"]);
    }

    #[test]
    fn lines_name_each_problem_and_the_summary_counts_them() {
        let staged = Check {
            checked: 3,
            missing: vec!["z.mp3".into()],
            changed: vec![Changed {
                path: "a.mp3".into(),
                expected: "0123456789abcdef".into(),
                found: "fedcba9876543210".into(),
            }],
            ..Check::default()
        };
        let remote = Check {
            checked: 2,
            unknown: vec!["x.m3u".into()],
            ..Check::default()
        };
        let report = Report {
            staged,
            remote: Some(remote),
            remote_error: None,
        };
        let lines: Vec<String> = (report.failures().iter())
            .map(|f| format!("{}: {}", f.path, f.error))
            .collect();
        assert_eq!(
            lines,
            [
                "a.mp3: changed (expected sha256 0123456789ab…, found fedcba987654…)",
                "z.mp3: missing",
                "x.m3u: unknown on the remote (not pushed by musync)",
            ]
        );
        assert_eq!(
            report.summary(Some("nas:music")),
            [
                "Verified 3 staged files: 1 missing, 1 changed, 0 unknown.",
                "Verified 2 pushed files on nas:music: 0 missing, 0 changed, 1 unknown.",
            ]
        );
        assert!(!report.is_clean());
    }
}
