//! The snapshot's binary format (format 2), which replaced `manifest.json` (format 1, about 670
//! bytes a track, 1.3 s to load at 100,000 tracks). It encodes and decodes a `Manifest` and
//! checks the bytes are whole; it reads and writes no file.
//!
//! Layout: `MAGIC`, the format (u32 little-endian), a checksum of the body (u64 little-endian),
//! then the body: the settings (as JSON, they are small and change shape), a table of the strings
//! records share (encoders, genres), the orphans, the records. Numbers are LEB128 varints, mtimes
//! zigzag-encoded; a path is stored as the length of the prefix it shares with the path before
//! it (orphans, sources) or with its source (outputs), then the rest; a 64-character lowercase
//! hex hash is stored as its 32 bytes, any other text as itself. Records and orphans are sorted
//! and distinct, so one manifest has exactly one encoding.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Manifest, Record};
use crate::binfmt::{self, Reader, Unframed, Writer, frame, unframe};
use crate::scan::SourceKind;
use crate::settings::MirrorSettings;

/// The first bytes of a snapshot in this format; no JSON text starts with them.
pub const MAGIC: &[u8; 16] = b"musync manifest\n";
pub const VERSION: u32 = 2;
/// Magic, format and checksum.
#[cfg(test)]
const HEADER: usize = MAGIC.len() + 4 + 8;

/// Why a snapshot's bytes are not a manifest.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// A format this musync does not know, e.g. written by a newer one.
    Format(u32),
    Damaged(String),
}

pub fn encode(manifest: &Manifest) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64 + manifest.records.len() * 200));
    match &manifest.settings {
        None => w.byte(0),
        Some(settings) => {
            w.byte(1);
            let json = serde_json::to_vec(settings).expect("settings serialise");
            w.bytes(&json);
        }
    }
    let shared: BTreeSet<&str> = manifest
        .records
        .values()
        .flat_map(|r| {
            let genres = r.own_genre.iter().chain(&r.genre).map(String::as_str);
            genres.chain([&*r.encoder])
        })
        .collect();
    w.varint(shared.len() as u64);
    shared.iter().for_each(|s| w.bytes(s.as_bytes()));
    let index: BTreeMap<&str, u64> = shared.iter().zip(0..).map(|(s, i)| (*s, i)).collect();
    w.varint(manifest.orphans.len() as u64);
    let mut before = "";
    for orphan in &manifest.orphans {
        w.after(before, orphan);
        before = orphan;
    }
    w.varint(manifest.records.len() as u64);
    let mut before = "";
    for r in manifest.records.values() {
        w.after(before, &r.source);
        before = &r.source;
        w.byte(match r.kind {
            SourceKind::Lossless => 0,
            SourceKind::Mp3 => 1,
            SourceKind::Cover => 2,
        });
        w.stamp(r.stamp);
        w.hash(&r.audio_hash);
        w.hash(&r.tag_hash);
        w.varint(index[&*r.encoder]);
        w.hash(&r.tag_key);
        w.after(&r.source, &r.output);
        w.stamp(r.output_stamp);
        w.hash(&r.output_hash);
        match &r.retag_from {
            None => w.byte(0),
            Some(hash) => {
                w.byte(1);
                w.hash(hash);
            }
        }
        for genres in [&r.own_genre, &r.genre] {
            w.varint(genres.len() as u64);
            genres.iter().for_each(|g| w.varint(index[g.as_str()]));
        }
    }
    frame(MAGIC, VERSION, &w.0)
}

/// The manifest in `bytes`, which start with `MAGIC`. Paths are not checked here.
pub fn decode(bytes: &[u8]) -> Result<Manifest, Unreadable> {
    let damaged = |why: &str| Unreadable::Damaged(why.to_string());
    let body = unframe(bytes, MAGIC, VERSION).map_err(|e| match e {
        Unframed::NotOurs => damaged("not a musync manifest"),
        Unframed::CutShort => damaged("cut short in its header"),
        Unframed::Format(version) => Unreadable::Format(version),
        Unframed::Checksum => damaged("its checksum does not match (cut short or overwritten)"),
    })?;
    let mut r = Reader { bytes: body };
    body_of(&mut r).map_err(Unreadable::Damaged)
}

/// Gives `bytes` (a snapshot) the checksum of its body, so that a fuzzer's changes reach the
/// decoder instead of all failing the checksum.
#[doc(hidden)]
pub fn seal(bytes: &mut [u8]) {
    binfmt::seal(bytes, MAGIC);
}

fn body_of(r: &mut Reader) -> Result<Manifest, String> {
    let settings = match r.byte()? {
        0 => None,
        1 => {
            let json = r.bytes()?;
            let settings: MirrorSettings =
                serde_json::from_slice(json).map_err(|e| format!("its settings: {e}"))?;
            Some(settings)
        }
        n => return Err(format!("unknown settings tag {n}")),
    };
    let count = r.count()?;
    let mut shared = Vec::with_capacity(count);
    for _ in 0..count {
        shared.push(r.string()?);
    }
    let at = |r: &mut Reader| -> Result<usize, String> {
        let i = r.varint()?;
        (usize::try_from(i).ok())
            .filter(|&i| i < shared.len())
            .ok_or_else(|| format!("string {i} of a table of {}", shared.len()))
    };
    let text = |r: &mut Reader| at(r).map(|i| shared[i].clone());
    // The encoder settings of every record are one of a few texts: each is held once.
    let mut encoders: Vec<Option<Arc<str>>> = vec![None; shared.len()];
    let count = r.count()?;
    // Each takes 2 bytes or more, so a damaged count cannot make us reserve much.
    let mut orphans: Vec<String> = Vec::with_capacity(count.min(r.bytes.len() / 2));
    for _ in 0..count {
        let orphan = r.after(orphans.last().map_or("", String::as_str))?;
        if orphans.last().is_some_and(|o| *o >= orphan) {
            return Err(format!("orphan {orphan:?} out of order"));
        }
        orphans.push(orphan);
    }
    let count = r.count()?;
    // Each takes 16 bytes or more (two paths, a kind, two stamps, four hashes, an encoder and
    // two genre lists).
    let mut records: Vec<(String, Record)> = Vec::with_capacity(count.min(r.bytes.len() / 16));
    for _ in 0..count {
        let source = r.after(records.last().map_or("", |(s, _)| s.as_str()))?;
        if records.last().is_some_and(|(s, _)| *s >= source) {
            return Err(format!("record {source:?} out of order"));
        }
        let kind = match r.byte()? {
            0 => SourceKind::Lossless,
            1 => SourceKind::Mp3,
            2 => SourceKind::Cover,
            n => return Err(format!("record {source:?}: unknown kind {n}")),
        };
        let stamp = r.stamp()?;
        let audio_hash = r.hash()?;
        let tag_hash = r.hash()?;
        let i = at(r)?;
        let encoder = (encoders[i].get_or_insert_with(|| Arc::from(shared[i].as_str()))).clone();
        let tag_key = r.hash()?;
        let output = r.after(&source)?;
        let output_stamp = r.stamp()?;
        let output_hash = r.hash()?;
        let retag_from = match r.byte()? {
            0 => None,
            1 => Some(r.hash()?),
            n => return Err(format!("record {source:?}: unknown retag tag {n}")),
        };
        let mut genres = [Vec::new(), Vec::new()];
        for list in &mut genres {
            let n = r.count()?;
            // Sized up front (`count` is at most the bytes left): collected from an iterator of
            // unknown length, each list took room for four, 10 MB at 100,000 tracks.
            list.reserve_exact(n);
            for _ in 0..n {
                list.push(text(r)?);
            }
        }
        let [own_genre, genre] = genres;
        let record = Record {
            source: source.clone(),
            kind,
            stamp,
            audio_hash,
            tag_hash,
            encoder,
            tag_key,
            output,
            output_stamp,
            output_hash,
            retag_from,
            own_genre,
            genre,
        };
        records.push((source, record));
    }
    if !r.bytes.is_empty() {
        return Err(format!("{} bytes after its end", r.bytes.len()));
    }
    Ok(Manifest {
        // Sorted input: both are built in one pass.
        records: records.into_iter().collect(),
        orphans: orphans.into_iter().collect(),
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_fails_the_checksum() {
        let mut m = Manifest::default();
        m.orphans.insert("a/b.mp3".into());
        m.orphans.insert("a/c.mp3".into());
        let bytes = encode(&m);
        assert_eq!(decode(&bytes), Ok(m));
        for at in HEADER..bytes.len() {
            for bit in 0..8 {
                let mut changed = bytes.clone();
                changed[at] ^= 1 << bit;
                assert!(
                    matches!(decode(&changed), Err(Unreadable::Damaged(_))),
                    "byte {at} bit {bit}"
                );
            }
        }
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(Unreadable::Damaged(_))
        ));
    }
}
