//! The scan stage: walk the library once (read-only, metadata only) and sort what is there into
//! lossless sources to convert, native MP3s that pass through, folder images that can serve as
//! covers, and clutter. Reads no file contents; decides nothing about what to do with them.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::fsutil::Stamp;
use crate::report::Failure;

/// Extensions (lowercase) of the lossless files musync transcodes.
const LOSSLESS: &[&str] = &["flac", "wav", "aif", "aiff", "aifc", "m4a"];
/// Extensions of native lossy files that pass through unchanged.
const PASS_THROUGH: &[&str] = &["mp3"];
/// Folder images that may serve as a cover, best first (any case): the names beets, Picard and
/// Navidrome look for.
const COVER_STEMS: &[&str] = &["cover", "folder", "front"];
const COVER_EXTS: &[&str] = &["jpg", "jpeg", "png"];
/// Linux's errno for "too many levels of symbolic links" (std has no stable `ErrorKind` for it).
const ELOOP: i32 = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceKind {
    Lossless,
    Mp3,
    /// A folder image the mirror gets as its album's cover file (`--folder-art`); never
    /// produced by the scan, only by the convert stage.
    Cover,
}

/// One audio file in the library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Path relative to the library root, `/`-separated, valid UTF-8.
    pub rel: String,
    pub stamp: Stamp,
    pub kind: SourceKind,
}

#[derive(Debug, Default)]
pub struct Scan {
    /// Sorted by `rel`.
    pub sources: Vec<Source>,
    /// Folder (relative, "" for the root) → the image to embed when a track has no cover.
    pub covers: BTreeMap<String, (String, Stamp)>,
    /// Files that are neither audio nor covers (text, playlists, hidden files).
    pub ignored: usize,
    pub errors: Vec<Failure>,
}

impl Scan {
    /// The cover image for a source's folder, as (path relative to the library, stamp).
    pub fn folder_cover(&self, source_rel: &str) -> Option<&(String, Stamp)> {
        self.covers.get(parent_of(source_rel))
    }
}

/// The folder part of a relative path ("" at the root).
pub fn parent_of(rel: &str) -> &str {
    rel.rfind('/').map_or("", |i| &rel[..i])
}

/// Which part of the library is mirrored: `--include` and `--exclude` globs (matched against a
/// path relative to the library and each of its folders, so `Jazz` and `Jazz/**` both select
/// everything under Jazz; exclude wins), and whether native MP3s pass through.
#[derive(Clone, Debug)]
pub struct Selection {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    pub native_mp3: bool,
}

impl Default for Selection {
    fn default() -> Selection {
        Selection {
            include: None,
            exclude: None,
            native_mp3: true,
        }
    }
}

impl Selection {
    pub fn new(
        include: &[String],
        exclude: &[String],
        native_mp3: bool,
    ) -> anyhow::Result<Selection> {
        let set = |globs: &[String]| -> anyhow::Result<Option<GlobSet>> {
            if globs.is_empty() {
                return Ok(None);
            }
            let mut set = GlobSetBuilder::new();
            for g in globs {
                set.add(Glob::new(g).with_context(|| format!("`{g}` is not a glob"))?);
            }
            Ok(Some(set.build()?))
        };
        Ok(Selection {
            include: set(include)?,
            exclude: set(exclude)?,
            native_mp3,
        })
    }

    /// A folder whose whole content is left out, so the walk need not enter it.
    fn skips_folder(&self, rel: &str) -> bool {
        self.exclude.as_ref().is_some_and(|set| matches(set, rel))
    }

    fn selects(&self, rel: &str, kind: SourceKind) -> bool {
        (kind == SourceKind::Lossless || self.native_mp3)
            && self.include.as_ref().is_none_or(|set| matches(set, rel))
            && !self.skips_folder(rel)
    }
}

/// `rel` or one of its folders matches.
fn matches(set: &GlobSet, rel: &str) -> bool {
    set.is_match(rel) || rel.match_indices('/').any(|(i, _)| set.is_match(&rel[..i]))
}

/// Walk `library`. Fails as a whole only when the library itself cannot be read.
pub fn scan(library: &Path, selection: &Selection) -> anyhow::Result<Scan> {
    let root = fs::canonicalize(library)
        .with_context(|| format!("library {} cannot be opened", library.display()))?;
    if !root.is_dir() {
        bail!("library {} is not a folder", library.display());
    }
    let mut scan = Scan::default();
    let mut cover_rank: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut walk = walkdir::WalkDir::new(&root).follow_links(true).into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map_or_else(|| root.clone(), Path::to_path_buf);
                let cause = if e.loop_ancestor().is_some() {
                    "symlink loop".to_string()
                } else {
                    e.io_error()
                        .map_or_else(|| e.to_string(), |io| cause_of(&path, io))
                };
                scan.errors
                    .push(Failure::new(display_rel(&root, &path), cause));
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.starts_with('.') {
            // Hidden files and folders (.musync, .DS_Store, .git) are never music.
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            scan.ignored += usize::from(!entry.file_type().is_dir());
            continue;
        }
        let path = entry.path();
        if entry.path_is_symlink() && !inside(&root, path) {
            scan.errors.push(Failure::new(
                display_rel(&root, path),
                "symlink points outside the library; skipped",
            ));
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            continue;
        }
        if entry.file_type().is_dir() {
            if relative_utf8(&root, path).is_some_and(|rel| selection.skips_folder(&rel)) {
                walk.skip_current_dir();
            }
            continue;
        }
        let Some(rel) = relative_utf8(&root, path) else {
            scan.errors.push(Failure::new(
                display_rel(&root, path),
                "name is not valid UTF-8; rename it to include it in the mirror",
            ));
            continue;
        };
        let ext = extension(&rel);
        let audio = LOSSLESS.contains(&ext.as_str()) || PASS_THROUGH.contains(&ext.as_str());
        if !entry.file_type().is_file() {
            if audio {
                scan.errors.push(Failure::new(
                    rel,
                    "not a regular file (FIFO, socket or device)",
                ));
            } else {
                scan.ignored += 1;
            }
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                let cause = e
                    .io_error()
                    .map_or_else(|| e.to_string(), |io| cause_of(path, io));
                scan.errors.push(Failure::new(rel, cause));
                continue;
            }
        };
        let stamp = Stamp::of_metadata(&meta);
        if audio {
            let kind = if PASS_THROUGH.contains(&ext.as_str()) {
                SourceKind::Mp3
            } else {
                SourceKind::Lossless
            };
            if selection.selects(&rel, kind) {
                scan.sources.push(Source { rel, stamp, kind });
            } else {
                scan.ignored += 1;
            }
        } else if let Some(rank) = cover_rank_of(&rel) {
            let dir = parent_of(&rel).to_string();
            // The exact name breaks ties (Cover.jpg, cover.jpg) so the choice does not depend
            // on the order the folder is listed in.
            let rank = (rank, rel.clone());
            if cover_rank.get(&dir).is_none_or(|best| rank < *best) {
                cover_rank.insert(dir.clone(), rank);
                scan.covers.insert(dir, (rel, stamp));
            }
        } else {
            scan.ignored += 1;
        }
    }
    scan.sources.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(scan)
}

/// Lowercase extension of a relative path ("" when none).
pub fn extension(rel: &str) -> String {
    let name = &rel[rel.rfind('/').map_or(0, |i| i + 1)..];
    name.rfind('.')
        .filter(|&i| i > 0)
        .map_or_else(String::new, |i| name[i + 1..].to_ascii_lowercase())
}

/// How good a folder image is as a cover (lower is better), or `None` when it is not one.
fn cover_rank_of(rel: &str) -> Option<usize> {
    let name = &rel[rel.rfind('/').map_or(0, |i| i + 1)..];
    let (stem, ext) = name.rsplit_once('.')?;
    let ext = COVER_EXTS
        .iter()
        .position(|e| e.eq_ignore_ascii_case(ext))?;
    let stem = COVER_STEMS
        .iter()
        .position(|s| s.eq_ignore_ascii_case(stem))?;
    Some(stem * COVER_EXTS.len() + ext)
}

/// Why `path` could not be read, in words for the errors a library's own shape causes.
fn cause_of(path: &Path, error: &io::Error) -> String {
    let dangling = || fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match error.kind() {
        _ if error.raw_os_error() == Some(ELOOP) => {
            "symlink loop (or a chain of more than 40 symlinks)".to_string()
        }
        io::ErrorKind::InvalidFilename => {
            "path too long for the system (over 4096 bytes); shorten the folder names".to_string()
        }
        io::ErrorKind::NotFound if dangling() => {
            "broken symlink: what it points to does not exist".to_string()
        }
        _ => error.to_string(),
    }
}

fn inside(root: &Path, path: &Path) -> bool {
    fs::canonicalize(path).is_ok_and(|p| p.starts_with(root))
}

fn relative_utf8(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

fn display_rel(root: &Path, path: &Path) -> String {
    let rel: PathBuf = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    rel.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_lowercased() {
        assert_eq!(extension("A/B/Song.FLAC"), "flac");
        assert_eq!(extension("A.dir/noext"), "");
        assert_eq!(extension(".hidden"), "");
    }

    #[test]
    fn cover_names_are_ranked() {
        assert!(cover_rank_of("a/cover.jpg") < cover_rank_of("a/Folder.JPG"));
        assert!(cover_rank_of("a/folder.png") < cover_rank_of("a/front.jpeg"));
        assert_eq!(cover_rank_of("a/back.jpg"), None);
        assert_eq!(cover_rank_of("a/cover.gif"), None);
    }

    #[test]
    fn parent_of_root_file_is_empty() {
        assert_eq!(parent_of("song.flac"), "");
        assert_eq!(parent_of("a/b/song.flac"), "a/b");
    }

    #[test]
    fn broken_symlinks_are_named_for_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path();
        std::os::unix::fs::symlink("self.flac", lib.join("self.flac")).unwrap();
        std::os::unix::fs::symlink("gone.flac", lib.join("dangling.flac")).unwrap();
        let scan = scan(lib, &Selection::default()).unwrap();
        let errors: BTreeMap<&str, &str> = scan
            .errors
            .iter()
            .map(|f| (f.path.as_str(), f.error.as_str()))
            .collect();
        assert!(
            errors["self.flac"].starts_with("symlink loop"),
            "{errors:?}"
        );
        assert!(
            errors["dangling.flac"].starts_with("broken symlink"),
            "{errors:?}"
        );
    }

    #[test]
    fn scan_sorts_sources_and_picks_covers() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path();
        for f in [
            "b/2.flac",
            "b/1.FLAC",
            "b/x.mp3",
            "b/front.jpg",
            "b/Cover.jpg",
            "b/notes.txt",
            ".hid/3.flac",
        ] {
            let p = lib.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, b"x").unwrap();
        }
        let scan = scan(lib, &Selection::default()).unwrap();
        let rels: Vec<_> = scan.sources.iter().map(|s| s.rel.as_str()).collect();
        assert_eq!(rels, ["b/1.FLAC", "b/2.flac", "b/x.mp3"]);
        assert_eq!(scan.sources[2].kind, SourceKind::Mp3);
        assert_eq!(scan.folder_cover("b/1.FLAC").unwrap().0, "b/Cover.jpg");
        assert_eq!(scan.ignored, 1);
        assert!(scan.errors.is_empty());
    }
}
