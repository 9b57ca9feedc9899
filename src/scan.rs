//! The scan stage: walk the library once (read-only, metadata only) and sort what is there into
//! lossless sources to convert, native MP3s that pass through, folder images that can serve as
//! covers, and clutter. Reads no file contents; decides nothing about what to do with them.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

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
/// The stack of each thread of the library walk (reserved, not used, until a library nests that
/// deep).
const WALK_STACK: usize = 64 << 20;
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
    /// Sorted by `rel`. Convert moves them into its fingerprints (`Wanted`), leaving this empty.
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
        Ok(Selection {
            include: glob_set(include)?,
            exclude: glob_set(exclude)?,
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

/// The `--include`/`--exclude` globs as one set, `None` when there are none.
pub fn glob_set(globs: &[String]) -> anyhow::Result<Option<GlobSet>> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for g in globs {
        set.add(Glob::new(g).with_context(|| format!("`{g}` is not a glob"))?);
    }
    Ok(Some(set.build()?))
}

/// `rel` or one of its folders matches.
pub fn matches(set: &GlobSet, rel: &str) -> bool {
    set.is_match(rel) || rel.match_indices('/').any(|(i, _)| set.is_match(&rel[..i]))
}

/// Walk `library`. Fails as a whole only when the library itself cannot be read. The folders
/// are read in parallel; what is found is put in the order a depth-first walk meets it, so the
/// errors are listed as a sequential walk lists them.
pub fn scan(library: &Path, selection: &Selection) -> anyhow::Result<Scan> {
    let root = fs::canonicalize(library)
        .with_context(|| format!("library {} cannot be opened", library.display()))?;
    let meta = fs::metadata(&root)
        .with_context(|| format!("library {} cannot be opened", library.display()))?;
    if !meta.is_dir() {
        bail!("library {} is not a folder", library.display());
    }
    let walker = Walker {
        root: &root,
        selection,
    };
    let top = Ancestor {
        id: (meta.dev(), meta.ino()),
        parent: None,
    };
    // The walk recurses once per folder level: a path of 4096 bytes can nest 2,000 folders.
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(WALK_STACK)
        .build()
        .context("starting the library walk")?;
    let found = pool.install(|| walker.folder(&root, &top));
    let mut scan = Scan::default();
    let mut cover_rank: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for found in found {
        match found {
            Found::Source(source) => scan.sources.push(source),
            Found::Image(rel, stamp, rank) => {
                let dir = parent_of(&rel).to_string();
                // The exact name breaks ties (Cover.jpg, cover.jpg) so the choice does not
                // depend on the order the folder is listed in.
                let rank = (rank, rel.clone());
                if cover_rank.get(&dir).is_none_or(|best| rank < *best) {
                    cover_rank.insert(dir.clone(), rank);
                    scan.covers.insert(dir, (rel, stamp));
                }
            }
            Found::Ignored => scan.ignored += 1,
            Found::Error(failure) => scan.errors.push(failure),
        }
    }
    scan.sources.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(scan)
}

/// What the walk finds, entry by entry.
enum Found {
    Source(Source),
    /// A folder image that may serve as a cover, with its rank (lower is better).
    Image(String, Stamp, usize),
    Ignored,
    Error(Failure),
}

/// The folders above one being read (device, inode), to tell a symlink that leads back up.
struct Ancestor<'a> {
    id: (u64, u64),
    parent: Option<&'a Ancestor<'a>>,
}

impl Ancestor<'_> {
    fn contains(&self, id: (u64, u64)) -> bool {
        self.id == id || self.parent.is_some_and(|p| p.contains(id))
    }
}

struct Walker<'a> {
    root: &'a Path,
    selection: &'a Selection,
}

/// An entry of a folder, as read: found, or a folder to read in turn.
enum Entry {
    Found(Found),
    Folder(PathBuf, (u64, u64)),
}

impl Walker<'_> {
    /// Everything under `dir` (whose folders from the root are `above`), depth first in the
    /// order the folders list their entries; the subfolders are read in parallel.
    fn folder(&self, dir: &Path, above: &Ancestor<'_>) -> Vec<Found> {
        let error = |path: &Path, e: &io::Error| {
            Found::Error(Failure::new(
                display_rel(self.root, path),
                cause_of(path, e),
            ))
        };
        let listing = match fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(e) => return vec![error(dir, &e)],
        };
        let mut entries = Vec::new();
        for entry in listing {
            match entry {
                Ok(entry) => entries.extend(self.entry(&entry, above)),
                Err(e) => entries.push(Entry::Found(error(dir, &e))),
            }
        }
        let inside: Vec<Vec<Found>> = entries
            .par_iter()
            .map(|e| match e {
                Entry::Folder(path, id) => {
                    let here = Ancestor {
                        id: *id,
                        parent: Some(above),
                    };
                    self.folder(path, &here)
                }
                Entry::Found(_) => Vec::new(),
            })
            .collect();
        let mut found = Vec::with_capacity(entries.len());
        for (entry, inside) in entries.into_iter().zip(inside) {
            match entry {
                Entry::Found(f) => found.push(f),
                Entry::Folder(..) => found.extend(inside),
            }
        }
        found
    }

    /// One entry of a folder: symbolic links followed, hidden and left-out folders not entered.
    fn entry(&self, entry: &fs::DirEntry, above: &Ancestor<'_>) -> Option<Entry> {
        let root = self.root;
        let path = entry.path();
        let error = |cause: String| {
            Some(Entry::Found(Found::Error(Failure::new(
                display_rel(root, &path),
                cause,
            ))))
        };
        let mut file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => return error(cause_of(&path, &e)),
        };
        let link = file_type.is_symlink();
        let mut meta = None;
        if link {
            match fs::metadata(&path) {
                Ok(m) => {
                    file_type = m.file_type();
                    meta = Some(m);
                }
                Err(e) => return error(cause_of(&path, &e)),
            }
        }
        let id = match (&meta, file_type.is_dir()) {
            (Some(m), true) => Some((m.dev(), m.ino())),
            (None, true) => match fs::metadata(&path) {
                Ok(m) => Some((m.dev(), m.ino())),
                Err(e) => return error(cause_of(&path, &e)),
            },
            (_, false) => None,
        };
        if id.is_some_and(|id| above.contains(id)) {
            return error("symlink loop".to_string());
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            // Hidden files and folders (.musync, .DS_Store, .git) are never music.
            return (!file_type.is_dir()).then_some(Entry::Found(Found::Ignored));
        }
        if link && !inside(root, &path) {
            return error("symlink points outside the library; skipped".to_string());
        }
        if let Some(id) = id {
            if relative_utf8(root, &path).is_some_and(|rel| self.selection.skips_folder(&rel)) {
                return None;
            }
            return Some(Entry::Folder(path, id));
        }
        let Some(rel) = relative_utf8(root, &path) else {
            return error("name is not valid UTF-8; rename it to include it in the mirror".into());
        };
        let ext = extension(&rel);
        let audio = LOSSLESS.contains(&ext.as_str()) || PASS_THROUGH.contains(&ext.as_str());
        let failure = |cause: String| Some(Entry::Found(Found::Error(Failure::new(&rel, cause))));
        if !file_type.is_file() {
            if audio {
                return failure("not a regular file (FIFO, socket or device)".to_string());
            }
            return Some(Entry::Found(Found::Ignored));
        }
        let meta = match meta.map_or_else(|| entry.metadata(), Ok) {
            Ok(m) => m,
            Err(e) => return failure(cause_of(&path, &e)),
        };
        let stamp = Stamp::of_metadata(&meta);
        let found = if audio {
            let kind = if PASS_THROUGH.contains(&ext.as_str()) {
                SourceKind::Mp3
            } else {
                SourceKind::Lossless
            };
            if self.selection.selects(&rel, kind) {
                Found::Source(Source { rel, stamp, kind })
            } else {
                Found::Ignored
            }
        } else if let Some(rank) = cover_rank_of(&rel) {
            Found::Image(rel, stamp, rank)
        } else {
            Found::Ignored
        };
        Some(Entry::Found(found))
    }
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

    // Regression guard: the parallel walk recurses per folder level; a library nested as deep as
    // a path can go (2,000 folders in 4,096 bytes) must not overflow a thread's stack.
    #[test]
    fn a_library_nested_to_the_path_limit_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let lib = fs::canonicalize(dir.path()).unwrap();
        let room = 4000 - lib.as_os_str().len() - "/s.flac".len();
        let deep = lib.join("d/".repeat(room / 2));
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("s.flac"), b"x").unwrap();
        let scan = scan(&lib, &Selection::default()).unwrap();
        assert_eq!(scan.sources.len(), 1, "{:?}", scan.errors);
        assert!(scan.errors.is_empty(), "{:?}", scan.errors);
    }

    #[test]
    fn a_symlink_back_up_the_tree_is_a_loop() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path();
        fs::create_dir_all(lib.join("a/b")).unwrap();
        fs::write(lib.join("a/b/1.flac"), b"x").unwrap();
        std::os::unix::fs::symlink("../../a", lib.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("b", lib.join("a/side")).unwrap();
        let scan = scan(lib, &Selection::default()).unwrap();
        let errors: Vec<(&str, &str)> = (scan.errors.iter())
            .map(|f| (f.path.as_str(), f.error.as_str()))
            .collect();
        assert!(errors.contains(&("a/b/up", "symlink loop")), "{errors:?}");
        let rels: Vec<_> = scan.sources.iter().map(|s| s.rel.as_str()).collect();
        assert_eq!(rels, ["a/b/1.flac", "a/side/1.flac"], "{errors:?}");
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
