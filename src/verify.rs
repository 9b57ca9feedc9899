//! The verify command: check that the staged mirror holds what the manifest says musync made
//! (every staged file hashed again) and, with a remote, that the remote holds what the push state
//! says musync put there (one listing: sizes, and with `--checksum` the MD5s rclone gives). It
//! reports; it writes and repairs nothing (`convert` and `push` do that).

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
    /// Also compare the remote's MD5s (where its backend has them) with the staged files'.
    pub checksum: bool,
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
    /// With `--checksum`: the remote's content hashes against the staged files'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

/// The remote's MD5s compared with those of the staged files musync pushed there (the ones
/// still as pushed: a staged file changed since is the next push's business).
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Content {
    /// Files whose MD5 the remote gave and compared.
    pub checked: usize,
    /// The remote's bytes are not the pushed ones (expected and found MD5).
    pub differs: Vec<Changed<String>>,
    /// Files the remote listed without a hash: compared by size only.
    pub unhashed: usize,
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
        self.staged.is_clean()
            && self.remote.as_ref().is_none_or(Check::is_clean)
            && self.content.as_ref().is_none_or(|c| c.differs.is_empty())
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
        if let Some(content) = &self.content {
            out.extend(content.differs.iter().map(|c| {
                let (want, got) = (short(&c.expected), short(&c.found));
                let why =
                    format!("content differs on the remote (expected md5 {want}, found {got})");
                Failure::new(&c.path, why)
            }));
            out.sort_by(|a, b| a.path.cmp(&b.path));
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
        if let (Some(content), Some(name)) = (&self.content, remote) {
            let (n, differ) = (content.checked, content.differs.len());
            lines.push(format!(
                "Compared the content of {n} pushed files on {name} by MD5: {differ} differ."
            ));
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
        let checksum = settings.checksum;
        let listing = remote_side.map(|(name, rclone)| {
            s.spawn(move || {
                if checksum {
                    let hashed = rclone.list_md5(name)?;
                    let md5s = (hashed.iter()).map(|(p, h)| (p.clone(), h.md5.clone()));
                    let md5s = md5s.collect();
                    let files = hashed.into_iter().map(|(p, h)| (p, h.file)).collect();
                    Ok((files, Some(md5s)))
                } else {
                    rclone.list(name).map(|files| (files, None))
                }
            })
        });
        let loaded = manifest::fingerprint(staging);
        let manifest = manifest::load(staging)?;
        let expected = outputs(&manifest);
        let (present, unreadable) = staged_files(staging);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(settings.jobs)
            .build()
            .context("starting the hashing threads")?;
        // With --checksum, each staged file's (sha256, md5), from the one read that checks it.
        let both = std::sync::Mutex::new(BTreeMap::new());
        let hash = |rel: &str| {
            // After Ctrl-C the remaining files are skipped, and the report is not printed.
            if interrupt::interrupted() {
                return Err(String::new());
            }
            let path = staging.join(rel);
            if !settings.checksum {
                return (fsutil::sha256_file(&path).map(|d| d.to_string()))
                    .map_err(|e| format!("{e:#}"));
            }
            let (sha256, md5) = sha256_md5_file(&path).map_err(|e| format!("{e:#}"))?;
            let mut both = both.lock().expect("no hashing thread panics holding it");
            both.insert(rel.to_owned(), (sha256.clone(), md5));
            Ok(sha256)
        };
        let mut staged = pool.install(|| compare_staged(&expected, &present, hash));
        pool.install(|| settle(staging, &mut staged, loaded, hash))?;
        if interrupt::interrupted() {
            return Err(interrupt::Interrupted.into());
        }
        staged.unreadable.extend(unreadable);
        let (mut remote, mut remote_error, mut content) = (None, None, None);
        if let (Some(listing), Some((name, _))) = (listing, remote_side) {
            match listing.join().expect("the listing thread does not panic") {
                Ok((listing, md5s)) => {
                    let state = push::state::State::load(staging, name)?;
                    if let Some(md5s) = md5s {
                        let both = both.lock().expect("no hashing thread panics holding it");
                        let pushed = (state.files.iter()).map(|(p, f)| (p.clone(), f.hash.clone()));
                        content = Some(compare_content(&pushed.collect(), &both, &md5s));
                    }
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
            content,
        })
    })
}

/// A file's sha256 and MD5, from one read.
fn sha256_md5_file(path: &Path) -> anyhow::Result<(String, String)> {
    use md5::Digest as _;
    use std::io::Read as _;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (mut sha256, mut md5) = (sha2::Sha256::new(), md5::Md5::new());
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = (file.read(&mut buf)).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        sha256.update(&buf[..n]);
        md5.update(&buf[..n]);
    }
    Ok((
        fsutil::hex(&sha256.finalize()),
        fsutil::hex(&md5.finalize()),
    ))
}

/// Compare the remote's MD5s (path → MD5 if it gave one) with the staged files' (path →
/// (sha256, md5)) for each file musync pushed (path → sha256 pushed). A staged file no longer
/// the one pushed, or one not on the remote (`compare_remote` reports that), is not compared.
fn compare_content(
    pushed: &BTreeMap<String, String>,
    staged: &BTreeMap<String, (String, String)>,
    remote: &BTreeMap<String, Option<String>>,
) -> Content {
    let mut content = Content::default();
    for (path, pushed_sha256) in pushed {
        let Some(listed) = remote.get(path) else {
            continue;
        };
        let Some(found) = listed else {
            content.unhashed += 1;
            continue;
        };
        match staged.get(path) {
            Some((sha256, md5)) if sha256 == pushed_sha256 => {
                content.checked += 1;
                if md5 != found {
                    content.differs.push(Changed {
                        path: path.clone(),
                        expected: md5.clone(),
                        found: found.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    content
}

/// Each staged output's path and sha256.
fn outputs(manifest: &manifest::Manifest) -> BTreeMap<&str, String> {
    (manifest.records.values())
        .map(|r| (r.output.as_str(), r.output_hash.to_string()))
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
        let expected: BTreeMap<&str, String> = outputs(&manifest)
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
fn compare_staged<S: AsRef<str> + Sync>(
    expected: &BTreeMap<&str, S>,
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
        .map(|(path, want)| (*path, want.as_ref(), hash(path)))
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
            content: None,
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

    fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
        (pairs.iter())
            .map(|(p, v)| ((*p).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn content_compares_md5_of_files_still_as_pushed() {
        let pushed = map(&[
            ("same.mp3", "s1".to_owned()),
            ("damaged.mp3", "d1".to_owned()),
            ("restaged.mp3", "r1".to_owned()),
            ("hashless.mp3", "h1".to_owned()),
            ("gone.mp3", "g1".to_owned()),
        ]);
        let staged = map(&[
            ("same.mp3", ("s1".to_owned(), "m-same".to_owned())),
            ("damaged.mp3", ("d1".to_owned(), "m-damaged".to_owned())),
            // Converted again since the push: the next push uploads it, nothing to compare.
            ("restaged.mp3", ("r2".to_owned(), "m-new".to_owned())),
            ("hashless.mp3", ("h1".to_owned(), "m-h".to_owned())),
            ("gone.mp3", ("g1".to_owned(), "m-g".to_owned())),
        ]);
        let remote = map(&[
            ("same.mp3", Some("m-same".to_owned())),
            ("damaged.mp3", Some("m-other".to_owned())),
            ("restaged.mp3", Some("m-old".to_owned())),
            ("hashless.mp3", None),
            ("foreign.mp3", None),
        ]);
        let content = compare_content(&pushed, &staged, &remote);
        assert_eq!(
            content,
            Content {
                checked: 2,
                differs: vec![Changed {
                    path: "damaged.mp3".into(),
                    expected: "m-damaged".into(),
                    found: "m-other".into(),
                }],
                unhashed: 1,
            }
        );
        let report = Report {
            staged: Check::default(),
            remote: Some(Check::default()),
            remote_error: None,
            content: Some(content),
        };
        assert!(!report.is_clean());
        let lines: Vec<String> = (report.failures().iter())
            .map(|f| format!("{}: {}", f.path, f.error))
            .collect();
        assert_eq!(
            lines,
            ["damaged.mp3: content differs on the remote (expected md5 m-damaged, found m-other)"]
        );
    }

    #[test]
    fn one_read_gives_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"hi\n").unwrap();
        let (sha256, md5) = sha256_md5_file(&path).unwrap();
        assert_eq!(sha256, fsutil::sha256_file(&path).unwrap().to_string());
        assert_eq!(md5, "764efa883dda1e11db47671c4a3bbd9e");
    }
}
