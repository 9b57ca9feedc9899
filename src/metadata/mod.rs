//! Tag effects: read a source's tags and cover with lofty into one canonical `TagSet`, and write
//! a `TagSet` into an MP3 as ID3v2. Knows nothing about libraries, manifests or planning, and never
//! touches audio data: the caller decides which file to read, which cover to fall back on and
//! when to write.
//!
//! Submodules: `canon` turns raw (key, value) pairs into canonical fields, `read` gets them out of
//! a source file (with `vorbis` for FLAC comments lofty would drop), `id3` maps canonical fields
//! onto ID3v2 frames and writes them.

mod canon;
mod id3;
mod read;
#[cfg(test)]
mod roundtrip_tests;
mod vorbis;

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use id3::write_mp3_tags;
pub use read::read_tags;

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

/// A picture that is not the front cover (back cover, booklet, artist photo, …), kept with its
/// type so that it never turns into the front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherPicture {
    /// The picture type shared by FLAC PICTURE blocks and ID3v2 APIC frames (0–20; 3, the front
    /// cover, is never here).
    pub kind: u8,
    pub description: String,
    pub image: Cover,
}

/// Everything musync writes into a staged MP3, in a canonical order.
///
/// Keys are lowercase Vorbis-comment style names, as Picard and beets use them ("title",
/// "albumartist", "tracknumber", "musicbrainz_albumid", "replaygain_track_peak", ...); see
/// `id3` for the full key → frame table. ReplayGain gain *and* peak values are kept as read from
/// the source (the peak is the source's, not re-measured on the MP3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagSet {
    /// (canonical key, values) pairs, sorted by key; multi-value fields keep every value.
    pub fields: Vec<(String, Vec<String>)>,
    /// The front cover (picture type 3) only.
    pub cover: Option<Cover>,
    /// Every other picture, in the source's order.
    pub others: Vec<OtherPicture>,
}

impl TagSet {
    /// The values of `key` (canonical, lowercase), if present.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        let key = key.to_lowercase();
        self.fields
            .binary_search_by(|(k, _)| k.as_str().cmp(&key))
            .ok()
            .map(|i| self.fields[i].1.as_slice())
    }

    /// Replace every value of `key` with `values`, keeping the fields sorted. An empty `values`
    /// removes the key, so a `TagSet` never carries a key without values.
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        let key = key.to_lowercase();
        match self.fields.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) if values.is_empty() => {
                self.fields.remove(i);
            }
            Ok(i) => self.fields[i].1 = values,
            Err(_) if values.is_empty() => {}
            Err(i) => self.fields.insert(i, (key, values)),
        }
    }
}

/// sha256 (hex) of a `TagSet`, stable across runs and platforms.
///
/// Hashed bytes: the domain tag "musync-tagset-v1", the field count, then per field (in key order,
/// even if a caller left them unsorted) the key, the value count and each value; then 0 for no
/// cover, or 1, the mime and the 32-byte sha256 of the image; then, only when there are other
/// pictures, their count and per picture its type, description, mime and image sha256 (so a set
/// without them hashes as it always did). Every string is prefixed with its length and every
/// count is a u64, little-endian, so no two tag sets share a byte stream. Bump the domain tag if
/// this ever changes (it retags every file).
pub fn tag_hash(tags: &TagSet) -> crate::digest::Digest {
    fn put(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let mut h = Sha256::new();
    put(&mut h, b"musync-tagset-v1");
    let mut fields: Vec<&(String, Vec<String>)> = tags.fields.iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    h.update((fields.len() as u64).to_le_bytes());
    for (key, values) in fields {
        put(&mut h, key.as_bytes());
        h.update((values.len() as u64).to_le_bytes());
        for v in values {
            put(&mut h, v.as_bytes());
        }
    }
    match &tags.cover {
        None => h.update([0u8]),
        Some(c) => {
            h.update([1u8]);
            put(&mut h, c.mime.as_bytes());
            h.update(Sha256::digest(&c.data));
        }
    }
    if !tags.others.is_empty() {
        h.update((tags.others.len() as u64).to_le_bytes());
        for p in &tags.others {
            h.update([p.kind]);
            put(&mut h, p.description.as_bytes());
            put(&mut h, p.image.mime.as_bytes());
            h.update(Sha256::digest(&p.image.data));
        }
    }
    crate::digest::Digest::sha256(h.finalize().into())
}

/// Read an image file to embed as a cover; the mime comes from its content, else its extension.
pub fn load_cover(path: &Path) -> anyhow::Result<Cover> {
    let data = std::fs::read(path).with_context(|| format!("reading cover {}", path.display()))?;
    if data.is_empty() {
        bail!("cover {} is empty", path.display());
    }
    let by_ext = || {
        let ext = path.extension()?.to_str()?.to_lowercase();
        Some(match ext.as_str() {
            "jpg" | "jpeg" => "image/jpeg",
            "png" => "image/png",
            "gif" => "image/gif",
            "webp" => "image/webp",
            "avif" => "image/avif",
            "bmp" => "image/bmp",
            _ => return None,
        })
    };
    let Some(mime) = sniff_mime(&data).or_else(by_ext) else {
        bail!("cover {} is not a recognised image", path.display());
    };
    Ok(Cover {
        mime: mime.to_owned(),
        data,
    })
}

/// The JPEG quality of a downscaled cover: no visible loss at cover sizes, a fraction of a PNG.
const ART_JPEG_QUALITY: u8 = 90;

/// `cover` fitted within `max`×`max` pixels: a bigger image is downscaled (Lanczos3, aspect kept)
/// and re-encoded as JPEG; a smaller one, or any with `max` 0, is returned as it is (never
/// upscaled, never re-encoded). The result depends only on the bytes and `max`, so every track
/// that shares an image gets the same bytes. An image it cannot decode is an error; the caller
/// keeps the original then.
pub fn fit_cover(cover: &Cover, max: u32) -> anyhow::Result<Cover> {
    if max == 0 {
        return Ok(cover.clone());
    }
    let image = image::load_from_memory(&cover.data).context("decoding the cover image")?;
    if image.width() <= max && image.height() <= max {
        return Ok(cover.clone());
    }
    let small = image.resize(max, max, image::imageops::FilterType::Lanczos3);
    let mut data = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, ART_JPEG_QUALITY)
        .encode_image(&small.to_rgb8())
        .context("encoding the downscaled cover")?;
    Ok(Cover {
        mime: "image/jpeg".to_owned(),
        data,
    })
}

/// The image type from its magic bytes; content beats a declared type, which is often wrong.
fn sniff_mime(data: &[u8]) -> Option<&'static str> {
    let m = |magic: &[u8]| data.starts_with(magic);
    if m(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if m(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if m(b"GIF87a") || m(b"GIF89a") {
        Some("image/gif")
    } else if m(b"RIFF") && data.get(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else if data.get(4..8) == Some(b"ftyp") && matches!(data.get(8..12), Some(b"avif" | b"avis"))
    {
        Some("image/avif")
    } else if m(b"BM") && data.len() > 14 {
        Some("image/bmp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TagSet {
        let mut t = TagSet::default();
        t.set("title", vec!["T".into()]);
        t.set("artist", vec!["A".into(), "B".into()]);
        t.cover = Some(Cover {
            mime: "image/png".into(),
            data: vec![1, 2, 3],
        });
        t
    }

    #[test]
    fn set_keeps_sorted_and_replaces_and_removes() {
        let mut t = TagSet::default();
        for k in ["title", "album", "Genre", "artist"] {
            t.set(k, vec![k.to_uppercase()]);
        }
        let keys: Vec<_> = t.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["album", "artist", "genre", "title"]);
        t.set("genre", vec!["Jazz".into(), "Funk".into()]);
        assert_eq!(t.get("genre").unwrap(), ["Jazz", "Funk"]);
        t.set("genre", vec![]);
        assert_eq!(t.get("genre"), None);
        t.set("nothing", vec![]);
        assert_eq!(t.fields.len(), 3);
    }

    #[test]
    fn hash_is_stable_and_order_independent() {
        let a = sample();
        assert_eq!(tag_hash(&a), tag_hash(&a.clone()));
        assert!(tag_hash(&a).as_sha256().is_some());
        let mut shuffled = a.clone();
        shuffled.fields.reverse();
        assert_eq!(tag_hash(&a), tag_hash(&shuffled));
        // Pinned so an accidental change of framing shows up: it would retag every file.
        assert_eq!(
            tag_hash(&a),
            "292ab3530243b10b35d21ecd2df85d897dfcf78984d3b2fa1c09ff3d9d119edb"
        );
    }

    #[test]
    fn hash_sees_every_part() {
        let base = tag_hash(&sample());
        let mut t = sample();
        t.set("artist", vec!["A".into()]);
        assert_ne!(tag_hash(&t), base);
        let mut t = sample();
        t.set("artist", vec!["AB".into()]); // same bytes, different framing
        assert_ne!(tag_hash(&t), base);
        let mut t = sample();
        t.set("artist", vec!["B".into(), "A".into()]); // value order matters
        assert_ne!(tag_hash(&t), base);
        let mut t = sample();
        t.cover.as_mut().unwrap().data.push(4);
        assert_ne!(tag_hash(&t), base);
        let mut t = sample();
        t.cover.as_mut().unwrap().mime = "image/jpeg".into();
        assert_ne!(tag_hash(&t), base);
        let mut t = sample();
        t.cover = None;
        assert_ne!(tag_hash(&t), base);
        let back = OtherPicture {
            kind: 4,
            description: String::new(),
            image: sample().cover.unwrap(),
        };
        let mut t = sample();
        t.others.push(back.clone());
        let with_back = tag_hash(&t);
        assert_ne!(with_back, base);
        t.others[0].kind = 0;
        assert_ne!(tag_hash(&t), with_back);
        t.others[0] = OtherPicture {
            description: "b".into(),
            ..back
        };
        assert_ne!(tag_hash(&t), with_back);
    }

    fn png(width: u32, height: u32) -> Cover {
        let mut data = Vec::new();
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        img.write_to(
            &mut std::io::Cursor::new(&mut data),
            image::ImageFormat::Png,
        )
        .unwrap();
        Cover {
            mime: "image/png".into(),
            data,
        }
    }

    #[test]
    fn big_covers_are_downscaled_to_jpeg_small_ones_kept() {
        let big = png(3000, 1500);
        let fitted = fit_cover(&big, 1200).unwrap();
        assert_eq!(fitted.mime, "image/jpeg");
        let read = image::load_from_memory(&fitted.data).unwrap();
        assert_eq!((read.width(), read.height()), (1200, 600));
        // Deterministic: the same image gives the same bytes for every track.
        assert_eq!(fit_cover(&big, 1200).unwrap(), fitted);
        // Never upscaled, never re-encoded; 0 keeps the original.
        let small = png(300, 300);
        assert_eq!(fit_cover(&small, 1200).unwrap(), small);
        assert_eq!(fit_cover(&big, 0).unwrap(), big);
        let junk = Cover {
            mime: "image/jpeg".into(),
            data: b"\xFF\xD8\xFFnot really".to_vec(),
        };
        assert!(fit_cover(&junk, 1200).is_err());
        assert_eq!(fit_cover(&junk, 0).unwrap(), junk);
    }

    #[test]
    fn load_cover_sniffs_content_then_extension() {
        let d = tempfile::tempdir().unwrap();
        let png = d.path().join("x.jpg");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\n....").unwrap();
        assert_eq!(load_cover(&png).unwrap().mime, "image/png");
        let odd = d.path().join("y.JPEG");
        std::fs::write(&odd, b"not magic").unwrap();
        assert_eq!(load_cover(&odd).unwrap().mime, "image/jpeg");
        let bad = d.path().join("z.txt");
        std::fs::write(&bad, b"hello").unwrap();
        assert!(load_cover(&bad).is_err());
        std::fs::write(&bad, b"").unwrap();
        assert!(load_cover(&bad).is_err());
        assert!(load_cover(&d.path().join("missing.jpg")).is_err());
    }
}
