//! Reading: get the tags and pictures (the front cover apart) out of a source file (FLAC first; WAV, AIFF, M4A/ALAC,
//! MP3 and whatever else lofty reads) into a canonical `TagSet`. Never writes.
//!
//! FLAC is read from its raw Vorbis comments so every key survives, including ones lofty has no
//! `ItemKey` for. ID3v2 (MP3, WAV, AIFF) goes through lofty's generic mapping plus every TXXX it
//! can't name; other formats (MP4 ilst, RIFF INFO, APE) through the generic `Tag` only, whose items
//! are renamed to their Vorbis spelling, so keys lofty can't name are lost there.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::Context;
use lofty::config::{GlobalOptions, ParseOptions, ParsingMode, apply_global_options};
use lofty::file::{AudioFile, FileType, TaggedFileExt};
use lofty::flac::FlacFile;
use lofty::id3::v2::{Frame, Id3v2Tag};
use lofty::iff::aiff::AiffFile;
use lofty::iff::wav::WavFile;
use lofty::mpeg::MpegFile;
use lofty::ogg::OggPictureStorage;
use lofty::picture::{Picture, PictureType};
use lofty::probe::Probe;
use lofty::tag::{ItemKey, ItemValue, SplitTag, Tag, TagType};

use super::canon::canonical_fields;
use super::vorbis::flac_comments;
use super::{Cover, OtherPicture, TagSet, sniff_mime};

/// lofty refuses single allocations above 16 MiB by default; a big scan embedded as cover art is
/// legitimate, so allow what an ID3v2 tag could ever hold (28-bit size).
const ALLOCATION_LIMIT: usize = 256 * 1024 * 1024;

/// Make lofty's per-thread options ours; cheap, so done before every lofty call.
pub(super) fn lofty_globals() {
    apply_global_options(GlobalOptions::new().allocation_limit(ALLOCATION_LIMIT));
}

/// Read the tags and embedded pictures of a source file (FLAC, WAV, AIFF, ALAC/M4A, MP3).
///
/// Errors name the file and lofty's cause (unknown format, bad FLAC marker, truncated block ...).
/// A readable file without tags gives an empty `TagSet`.
pub fn read_tags(src: &Path) -> anyhow::Result<TagSet> {
    read_inner(src).with_context(|| format!("reading tags of {}", src.display()))
}

fn read_inner(src: &Path) -> anyhow::Result<TagSet> {
    lofty_globals();
    // Audio properties are the decoder's business; tags must not fail on them. BestAttempt skips
    // single bad items (a broken frame, a bad picture) instead of rejecting the whole file.
    let options = ParseOptions::new()
        .read_properties(false)
        .parsing_mode(ParsingMode::BestAttempt);
    // Content decides the format; the extension is only a fallback (so a garbage "x.flac" fails
    // as a bad FLAC, and a text file fails as an unknown format).
    let probe = Probe::open(src)?.options(options).guess_file_type()?;
    let open = || anyhow::Ok(BufReader::new(File::open(src)?));
    let id3v2 = match probe.file_type() {
        None => anyhow::bail!("not a recognised audio file"),
        Some(FileType::Flac) => {
            // Without implicit conversions "3/12" reaches `canon` as written instead of lofty
            // overwriting an explicit TRACKTOTAL with the "/12". Other formats need them (ID3v2.3
            // TYER+TDAT become a date, MP4 `gnre` a genre).
            let raw = { options }.implicit_conversions(false);
            let flac = match FlacFile::read_from(&mut open()?, raw) {
                Ok(flac) => flac,
                // libFLAC plays FLACs whose metadata lofty refuses (STREAMINFO out of order, a
                // broken comment length): the decoder decides about the audio, and the tags are
                // what our own reader can find.
                Err(err) => {
                    if !metadata_walks(src) {
                        return Err(err.into());
                    }
                    let fields = flac_comments(&mut open()?).map(canonical_fields);
                    return Ok(TagSet {
                        fields: fields.unwrap_or_default(),
                        cover: None,
                        others: Vec::new(),
                    });
                }
            };
            return Ok(from_flac(flac, flac_comments(&mut open()?)));
        }
        Some(FileType::Mpeg) => MpegFile::read_from(&mut open()?, options)?.remove_id3v2(),
        Some(FileType::Wav) => WavFile::read_from(&mut open()?, options)?.remove_id3v2(),
        Some(FileType::Aiff) => AiffFile::read_from(&mut open()?, options)?.remove_id3v2(),
        Some(_) => None,
    };
    if let Some(tag) = id3v2 {
        return Ok(from_id3v2(tag, Vec::new()));
    }
    // Everything else, and ID3-less WAV/AIFF/MP3 (RIFF INFO, AIFF text chunks, APE, ID3v1).
    let file = probe.read()?;
    let Some(tag) = file.primary_tag().or_else(|| file.first_tag()) else {
        return Ok(TagSet::default());
    };
    let (cover, others) = split_pictures(tag.pictures());
    Ok(TagSet {
        fields: canonical_fields(generic_pairs(tag)),
        cover,
        others,
    })
}

/// Whether `src` starts with "fLaC" and its metadata blocks lead, inside the file, to a last one:
/// a FLAC that libFLAC can walk to its audio, whatever lofty thinks of the blocks themselves.
fn metadata_walks(src: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let walk = || -> std::io::Result<bool> {
        let mut file = File::open(src)?;
        let len = file.metadata()?.len();
        let mut magic = [0; 4];
        file.read_exact(&mut magic)?;
        if &magic != b"fLaC" {
            return Ok(false);
        }
        let mut pos = 4u64;
        loop {
            let mut head = [0; 4];
            file.seek(SeekFrom::Start(pos))?;
            file.read_exact(&mut head)?;
            pos += 4 + u64::from(u32::from_be_bytes([0, head[1], head[2], head[3]]));
            if pos > len {
                return Ok(false);
            }
            if head[0] & 0x80 != 0 {
                return Ok(true);
            }
        }
    };
    walk().unwrap_or(false)
}

/// `lenient` is our own read of the comment block (keeps non-UTF-8 values, see `vorbis`); lofty's
/// items are the fallback if that read failed.
fn from_flac(mut flac: FlacFile, lenient: Option<Vec<(String, String)>>) -> TagSet {
    let mut pictures: Vec<Picture> = flac.pictures().iter().map(|(p, _)| p.clone()).collect();
    match flac.vorbis_comments() {
        Some(vc) => {
            pictures.extend(vc.pictures().iter().map(|(p, _)| p.clone()));
            let fields = match lenient {
                Some(pairs) => canonical_fields(pairs),
                None => canonical_fields(vc.items()),
            };
            let (cover, others) = split_pictures(&pictures);
            TagSet {
                fields,
                cover,
                others,
            }
        }
        // An ID3v2 tag glued onto a FLAC is non-standard but does happen.
        None => match flac.remove_id3v2() {
            Some(tag) => from_id3v2(tag, pictures),
            None => {
                let (cover, others) = split_pictures(&pictures);
                TagSet {
                    fields: Vec::new(),
                    cover,
                    others,
                }
            }
        },
    }
}

/// lofty's generic mapping, plus the TXXX frames it has no key for (Picard's "MusicBrainz Album
/// Status", "ASIN", "SCRIPT", ...), keyed by their lowercased description.
fn from_id3v2(tag: Id3v2Tag, extra_pictures: Vec<Picture>) -> TagSet {
    let (rest, generic) = tag.split_tag();
    let txxx = rest.iter().filter_map(|frame| match frame {
        Frame::UserText(f) if !f.description.is_empty() => Some(
            f.content
                .split('\0')
                .map(|v| (f.description.to_lowercase(), v.to_owned()))
                .collect::<Vec<_>>(),
        ),
        _ => None,
    });
    let mut raw = generic_pairs(&generic);
    raw.extend(txxx.flatten());
    let mut pictures = generic.pictures().to_vec();
    pictures.extend(extra_pictures);
    let (cover, others) = split_pictures(&pictures);
    TagSet {
        fields: canonical_fields(raw),
        cover,
        others,
    }
}

/// Generic items as (Vorbis key, value) pairs.
fn generic_pairs(tag: &Tag) -> Vec<(String, String)> {
    let pairs = tag.items().filter_map(|item| {
        let ItemValue::Text(value) = item.value() else {
            return None;
        };
        // COMM/USLT with a description are application data ("iTunNORM", "iTunSMPB", ...), not
        // the user's comment or lyrics.
        let commentish = matches!(
            item.key(),
            ItemKey::Comment | ItemKey::UnsyncLyrics | ItemKey::Lyrics
        );
        if commentish && !item.description().is_empty() {
            return None;
        }
        Some((vorbis_name(item.key())?.to_owned(), value.clone()))
    });
    pairs.collect()
}

/// The Vorbis spelling of a generic key, which is what our canonical keys are.
fn vorbis_name(key: ItemKey) -> Option<&'static str> {
    key.map_key(TagType::VorbisComments).or(match key {
        ItemKey::OriginalAlbumTitle => Some("originalalbum"),
        ItemKey::OriginalArtist => Some("originalartist"),
        ItemKey::OriginalLyricist => Some("originallyricist"),
        ItemKey::ComposerSortOrder => Some("composersort"),
        _ => None,
    })
}

/// The first picture typed as the front cover, and every other picture with its own type: a
/// back cover alone never becomes the front (the caller may then use the folder's image). Empty
/// pictures, further front covers and exact repeats (a FLAC's PICTURE block and the same image in
/// its comments) are dropped.
fn split_pictures(pictures: &[Picture]) -> (Option<Cover>, Vec<OtherPicture>) {
    let image = |p: &Picture| Cover {
        mime: picture_mime(p),
        data: p.data().to_vec(),
    };
    let mut front = None;
    let mut others: Vec<OtherPicture> = Vec::new();
    for p in pictures.iter().filter(|p| !p.data().is_empty()) {
        if p.pic_type() == PictureType::CoverFront {
            front = front.or_else(|| Some(image(p)));
            continue;
        }
        let other = OtherPicture {
            kind: p.pic_type().as_u8(),
            description: p.description().unwrap_or_default().to_owned(),
            image: image(p),
        };
        if !others.contains(&other) {
            others.push(other);
        }
    }
    (front, others)
}

/// Sniffed type first (declared types are often wrong, "image/jpg" or empty), then the declared
/// one, then a neutral fallback so the picture still travels.
fn picture_mime(p: &Picture) -> String {
    if let Some(m) = sniff_mime(p.data()) {
        return m.to_owned();
    }
    match p.mime_type().map(|m| m.as_str().trim().to_lowercase()) {
        Some(m) if m.contains('/') && !m.ends_with('/') => m,
        _ => "application/octet-stream".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lofty::picture::MimeType;

    fn pic(ty: PictureType, data: &[u8]) -> Picture {
        Picture::unchecked(data.to_vec()).pic_type(ty).build()
    }

    // Regression: a FLAC whose only picture was the back cover got it as the MP3's front cover.
    #[test]
    fn only_the_front_cover_is_the_front_and_other_pictures_keep_their_type() {
        let png = b"\x89PNG\r\n\x1a\nfront";
        let back = pic(PictureType::CoverBack, b"\xFF\xD8\xFFback");
        let front = pic(PictureType::CoverFront, png);
        let (cover, others) = split_pictures(&[back.clone(), front.clone(), front]);
        let cover = cover.unwrap();
        assert_eq!(
            (cover.mime.as_str(), cover.data.as_slice()),
            ("image/png", &png[..])
        );
        assert_eq!(others.len(), 1);
        assert_eq!(
            (others[0].kind, others[0].image.mime.as_str()),
            (4, "image/jpeg")
        );
        let empty = pic(PictureType::Other, b"");
        let (cover, others) = split_pictures(&[empty, back.clone(), back]);
        assert_eq!(cover, None);
        assert_eq!(others.iter().map(|p| p.kind).collect::<Vec<_>>(), [4]);
        assert_eq!(split_pictures(&[]), (None, vec![]));
        // Unknown bytes keep a usable declared type, else a neutral one.
        let mut odd = pic(PictureType::Other, b"????");
        assert_eq!(picture_mime(&odd), "application/octet-stream");
        odd = Picture::unchecked(b"????".to_vec())
            .mime_type(MimeType::from_str("image/x-odd"))
            .build();
        assert_eq!(picture_mime(&odd), "image/x-odd");
    }
}
