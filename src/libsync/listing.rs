//! Listing a side of a library sync: the library by walking it (size and modification time in
//! nanoseconds), the peer through `rclone lsjson`. Both leave out musync's reserved folders and
//! what the `--include`/`--exclude` globs leave out (`Filter`, pure). Hashes, when the compare
//! or rename mode needs them, come from the previous listing where a file's path, size and time
//! are unchanged, and are computed only for the rest (`reuse_hashes`, pure).

use std::path::Path;

use anyhow::Context;
use globset::GlobSet;
use rayon::prelude::*;

use super::{Entry, Listing, RESERVED};
use crate::rclone::{self, Rclone, RcloneError};
use crate::report::escape_controls;
use crate::scan::{glob_set, matches};

/// Which files of a side take part: not in a reserved folder, selected by `--include` (a path
/// or one of its folders matches; all when none is given), and not left out by `--exclude`
/// (which wins).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> anyhow::Result<Filter> {
        Ok(Filter {
            include: glob_set(include)?,
            exclude: glob_set(exclude)?,
        })
    }

    /// Whether the file at `rel` (relative to the side's root, `/`-separated) takes part.
    pub fn keeps(&self, rel: &str) -> bool {
        !reserved(rel)
            && self.include.as_ref().is_none_or(|set| matches(set, rel))
            && !self.exclude.as_ref().is_some_and(|set| matches(set, rel))
    }

    /// Whether the whole folder `rel` is left out, so a walk need not enter it.
    fn skips_folder(&self, rel: &str) -> bool {
        reserved(rel) || self.exclude.as_ref().is_some_and(|set| matches(set, rel))
    }
}

/// `rel` is in one of musync's folders at the side's root.
fn reserved(rel: &str) -> bool {
    let top = rel.split('/').next().unwrap_or(rel);
    RESERVED.contains(&top)
}

/// Every regular file of the library that `filter` keeps. Symbolic links, names that are not
/// UTF-8 and names with a line break (which rclone's file lists cannot carry) are left out with
/// a warning each. Fails as a whole only when the library itself cannot be read.
pub fn local(root: &Path, filter: &Filter) -> anyhow::Result<Listing> {
    std::fs::read_dir(root).with_context(|| format!("reading the library {}", root.display()))?;
    let mut listing = Listing::new();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !e.file_type().is_dir()
                || rel_of(root, e.path()).is_none_or(|rel| !filter.skips_folder(&rel))
        });
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!("library sync leaves out what it cannot read: {e}");
                continue;
            }
        };
        if entry.file_type().is_dir() {
            continue;
        }
        let Some(rel) = rel_of(root, entry.path()) else {
            tracing::warn!(
                "{}: not UTF-8; library sync leaves it alone",
                entry.path().display()
            );
            continue;
        };
        if !entry.file_type().is_file() {
            tracing::warn!(
                "{}: not a regular file (a symbolic link?); library sync leaves it alone",
                escape_controls(&rel)
            );
            continue;
        }
        if !filter.keeps(&rel) {
            continue;
        }
        if crate::relpath::check_line(&rel).is_err() {
            tracing::warn!(
                "{}: a line break in the name, which rclone's file lists cannot carry; \
                 library sync leaves it alone",
                escape_controls(&rel)
            );
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                tracing::warn!(
                    "{}: {e}; library sync leaves it alone",
                    escape_controls(&rel)
                );
                continue;
            }
        };
        let stamp = crate::fsutil::Stamp::of_metadata(&meta);
        listing.insert(
            rel,
            Entry {
                size: stamp.size,
                mtime: stamp.mtime_ns,
                hash: None,
            },
        );
    }
    Ok(listing)
}

fn rel_of(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?.to_str()?;
    Some(rel.replace(std::path::MAIN_SEPARATOR, "/"))
}

/// Every file under `peer` that `filter` keeps (symbolic links, which rclone lists apart, left
/// out with a warning). A folder that does not exist lists as empty. Also whether the peer's
/// folder `tmp` holds files (left by a run that was killed).
pub fn peer(
    rclone: &Rclone,
    peer: &str,
    filter: &Filter,
    tmp: &str,
) -> Result<(Listing, bool), RcloneError> {
    let listed = rclone.listing(peer)?;
    let leftovers = listed
        .files
        .keys()
        .any(|p| p.starts_with(&format!("{tmp}/")));
    for link in listed.links.iter().filter(|l| filter.keeps(l)) {
        tracing::warn!(
            "{}: a symbolic link on {}; library sync leaves it alone",
            escape_controls(link),
            rclone::redact(peer)
        );
    }
    let mut listing = Listing::new();
    for (path, file) in listed.files {
        if !filter.keeps(&path) || crate::relpath::check_line(&path).is_err() {
            continue;
        }
        let Some(mtime) = file.mtime.as_deref().and_then(parse_rfc3339) else {
            tracing::warn!(
                "{}: {} gives no usable modification time; library sync leaves it alone",
                escape_controls(&path),
                rclone::redact(peer)
            );
            continue;
        };
        listing.insert(
            path,
            Entry {
                size: file.size,
                mtime,
                hash: None,
            },
        );
    }
    Ok((listing, leftovers))
}

/// Gives each entry of `listing` the hash `previous` recorded for it, where its path, size and
/// time are unchanged; returns the paths still without a hash, to be computed.
pub fn reuse_hashes(listing: &mut Listing, previous: Option<&Listing>) -> Vec<String> {
    let mut missing = Vec::new();
    for (path, entry) in listing.iter_mut() {
        if entry.hash.is_some() {
            continue;
        }
        let known = previous
            .and_then(|p| p.get(path))
            .filter(|p| p.size == entry.size && p.mtime == entry.mtime)
            .and_then(|p| p.hash.clone());
        match known {
            Some(hash) => entry.hash = Some(hash),
            None => missing.push(path.clone()),
        }
    }
    missing
}

/// The MD5 of each library file of `paths`, read in parallel. A file that cannot be read keeps
/// no hash, with a warning (it then compares by time).
pub fn hash_local(root: &Path, listing: &mut Listing, paths: &[String]) {
    let hashes: Vec<(String, Option<String>)> = paths
        .par_iter()
        .map(|p| match md5_file(&root.join(p)) {
            Ok(hash) => (p.clone(), Some(hash)),
            Err(e) => {
                tracing::warn!("{}: {e:#}; compared without a hash", escape_controls(p));
                (p.clone(), None)
            }
        })
        .collect();
    for (path, hash) in hashes {
        if let Some(entry) = listing.get_mut(&path) {
            entry.hash = hash;
        }
    }
}

/// Asks the peer for the MD5 of `paths` (one rclone call). `Ok(false)` when it gives none
/// (its backend has no MD5): the caller compares by time instead.
pub fn hash_peer(
    rclone: &Rclone,
    peer: &str,
    listing: &mut Listing,
    paths: &[String],
) -> Result<bool, RcloneError> {
    if paths.is_empty() {
        return Ok(true);
    }
    let sums = match rclone.md5sums(peer, paths) {
        Ok(sums) => sums,
        Err(RcloneError::Failed { stderr_tail, .. })
            if stderr_tail.to_ascii_lowercase().contains("hash") =>
        {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    if sums.is_empty() {
        return Ok(false);
    }
    for (path, hash) in sums {
        if let Some(entry) = listing.get_mut(&path) {
            entry.hash = Some(hash);
        }
    }
    Ok(true)
}

fn md5_file(path: &Path) -> anyhow::Result<String> {
    use md5::{Digest, Md5};
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hash = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(crate::fsutil::hex(&hash.finalize()))
}

/// Two times closer than this are one time: 1 ns between the library and a local folder
/// (both keep nanoseconds), 1 s with any other peer (sftp keeps seconds; a conservative bound
/// for the rest).
pub fn modify_window_ns(peer: &str) -> i64 {
    if crate::overlap::local_remote(peer).is_some() {
        1
    } else {
        1_000_000_000
    }
}

/// Nanoseconds since the epoch of an RFC 3339 time as rclone lists it
/// (`2026-11-30T06:05:26.123456789+01:00`, or with `Z`); `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, min, s) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut padded = frac[..digits.min(9)].to_owned();
        while padded.len() < 9 {
            padded.push('0');
        }
        nanos = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    let secs = days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60 + s - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Howard Hinnant's days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, mtime: i64, hash: Option<&str>) -> Entry {
        Entry {
            size,
            mtime,
            hash: hash.map(str::to_owned),
        }
    }

    #[test]
    fn the_filter_leaves_out_reserved_folders_and_applies_globs() {
        let all = Filter::new(&[], &[]).unwrap();
        assert!(all.keeps("Artist/Album/01.flac"));
        assert!(all.keeps(".musync-notes/x"));
        for reserved in [
            ".musync/bisync/x.json",
            ".musync-backups/t/a",
            ".musync-tmp/a",
        ] {
            assert!(!all.keeps(reserved), "{reserved}");
        }
        let some = Filter::new(&["Jazz".into()], &["Jazz/Live/**".into(), "*.cue".into()]).unwrap();
        assert!(some.keeps("Jazz/Kind of Blue/01.flac"));
        assert!(!some.keeps("Rock/x.flac"));
        assert!(!some.keeps("Jazz/Live/01.flac"));
        assert!(!some.keeps("Jazz/album.cue"));
        assert!(some.skips_folder("Jazz/Live/CD1"));
        assert!(!some.skips_folder("Jazz"));
    }

    #[test]
    fn hashes_are_reused_only_for_an_unchanged_path_size_and_time() {
        let previous: Listing = [
            ("same".to_owned(), entry(1, 10, Some("aa"))),
            ("touched".to_owned(), entry(1, 10, Some("bb"))),
            ("resized".to_owned(), entry(1, 10, Some("cc"))),
            ("unhashed".to_owned(), entry(1, 10, None)),
        ]
        .into();
        let mut now: Listing = [
            ("same".to_owned(), entry(1, 10, None)),
            ("touched".to_owned(), entry(1, 11, None)),
            ("resized".to_owned(), entry(2, 10, None)),
            ("unhashed".to_owned(), entry(1, 10, None)),
            ("new".to_owned(), entry(1, 10, None)),
        ]
        .into();
        let missing = reuse_hashes(&mut now, Some(&previous));
        assert_eq!(missing, ["new", "resized", "touched", "unhashed"]);
        assert_eq!(now["same"].hash.as_deref(), Some("aa"));
        assert_eq!(now["touched"].hash, None);
        let mut first = now.clone();
        first.values_mut().for_each(|e| e.hash = None);
        assert_eq!(reuse_hashes(&mut first, None).len(), 5);
    }

    #[test]
    fn local_files_are_hashed_in_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"abc").unwrap();
        let mut listing: Listing = [("a".to_owned(), entry(3, 0, None))].into();
        hash_local(dir.path(), &mut listing, &["a".to_owned()]);
        assert_eq!(
            listing["a"].hash.as_deref(),
            Some("900150983cd24fb0d6963f7d28e17f72")
        );
    }

    #[test]
    fn the_walk_skips_reserved_folders_links_and_excluded_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "A/1.flac",
            ".musync/bisync/s.json",
            ".musync-backups/t/A/1.flac",
            "B/2.flac",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), b"x").unwrap();
        }
        std::os::unix::fs::symlink(root.join("A/1.flac"), root.join("A/link.flac")).unwrap();
        let listing = local(root, &Filter::new(&[], &["B".into()]).unwrap()).unwrap();
        assert_eq!(listing.keys().collect::<Vec<_>>(), ["A/1.flac"]);
        let stamp = crate::fsutil::Stamp::of(&root.join("A/1.flac")).unwrap();
        assert_eq!(listing["A/1.flac"].mtime, stamp.mtime_ns);
    }

    #[test]
    fn rclone_times_parse_to_nanoseconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-11-22T10:00:00.5Z"),
            Some(1_795_341_600_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T11:00:00.000000001+01:00"),
            Some(1_795_341_600_000_000_001)
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T09:30:00-00:30"),
            Some(1_795_341_600_000_000_000)
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22T10:00:00",
            "2026-13-22T10:00:00Z",
            "x026-11-22T10:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn hashsum_output_parses() {
        let out = b"900150983cd24fb0d6963f7d28e17f72  A/1.flac\n                                  B/no hash\n";
        let sums = rclone::parse_hashsum(out);
        assert_eq!(sums.len(), 1);
        assert_eq!(sums["A/1.flac"], "900150983cd24fb0d6963f7d28e17f72");
    }
}
