//! Tag effects: read a source's tags and cover with lofty into one canonical `TagSet`, and write
//! a `TagSet` into an MP3 as ID3v2. Knows nothing about libraries, manifests or planning.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which ID3v2 version to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Id3Version {
    V23,
    V24,
}

/// An image to embed as the front cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cover {
    pub mime: String,
    pub data: Vec<u8>,
}

/// Everything musync writes into a staged MP3, in a canonical order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagSet {
    /// (canonical key, values) pairs, sorted by key; multi-value fields keep every value.
    pub fields: Vec<(String, Vec<String>)>,
    pub cover: Option<Cover>,
}

/// Read the tags and embedded front cover of a source file (FLAC, WAV, AIFF, ALAC/M4A, MP3).
pub fn read_tags(src: &Path) -> anyhow::Result<TagSet> {
    let _ = src;
    todo!()
}

/// The folder image to embed when a source has no cover: cover.jpg, folder.jpg, front.* (any case).
pub fn folder_cover(dir: &Path) -> Option<PathBuf> {
    let _ = dir;
    todo!()
}

/// Replace every tag in the MP3 at `mp3` with exactly `tags`.
pub fn write_mp3_tags(mp3: &Path, tags: &TagSet, version: Id3Version) -> anyhow::Result<()> {
    let _ = (mp3, tags, version);
    todo!()
}

/// sha256 (hex) of a `TagSet`, stable across runs and platforms.
pub fn tag_hash(tags: &TagSet) -> String {
    let _ = tags;
    todo!()
}
