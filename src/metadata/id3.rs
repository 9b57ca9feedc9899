//! Writing: map a canonical `TagSet` onto ID3v2 frames (Picard's conventions) and make them the
//! MP3's only tag. Touches the tag region only: lofty splices the ID3v2 tag in front of the first
//! MPEG frame (the LAME/Xing info frame stays first in the audio, so decoding stays sample-exact)
//! and cuts any ID3v1/APE tag from the end.
//!
//! | canonical key | ID3v2.4 | ID3v2.3 |
//! |---|---|---|
//! | title, subtitle, grouping, album | TIT2, TIT3, TIT1, TALB | same |
//! | artist, albumartist, conductor, remixer | TPE1, TPE2, TPE3, TPE4 | same |
//! | composer, lyricist, label, genre | TCOM, TEXT, TPUB, TCON | same |
//! | bpm, isrc, copyright, language, media, key | TBPM, TSRC, TCOP, TLAN, TMED, TKEY | same |
//! | albumartistsort, composersort, movementname | TSO2, TSOC, MVNM | same |
//! | albumsort, artistsort, titlesort, discsubtitle | TSOA, TSOP, TSOT, TSST | same (as Picard and iTunes write them) |
//! | originalalbum, originalartist, originallyricist | TOAL, TOPE, TOLY | same |
//! | mood, releasedate | TMOO, TDRL | TXXX:MOOD, TXXX:RELEASEDATE (v2.4-only frames) |
//! | tracknumber + tracktotal | TRCK "3/12" | same |
//! | discnumber + disctotal, movement + movementtotal | TPOS "1/2", MVIN "1/3" | same |
//! | date | TDRC (ISO prefix) | TYER + TDAT (DDMM) |
//! | originaldate | TDOR | TORY (year) |
//! | compilation | TCMP "1" | same |
//! | comment / lyrics | COMM / USLT, lang "eng", empty description | same |
//! | musicbrainz_trackid (recording) | UFID owner "http://musicbrainz.org" | same |
//! | musicbrainz_albumid, _artistid, _albumartistid, _releasegroupid, _releasetrackid, _workid, _discid | TXXX "MusicBrainz Album Id" ... | same |
//! | releasetype, releasestatus, releasecountry | TXXX "MusicBrainz Album Type/Status/Release Country" | same |
//! | acoustid_id, acoustid_fingerprint, writer | TXXX "Acoustid Id", "Acoustid Fingerprint", "Writer" | same |
//! | arranger, engineer, producer, djmixer, mixer | TIPL role pairs | IPLS |
//! | performer ("Name (role)", or performer:role) | TMCL (role, name) pairs; no role: "performer" | IPLS (with the TIPL pairs) |
//! | replaygain_{track,album}_{gain,peak} and anything else | TXXX:KEY (uppercased key) | same |
//! | front cover (own, else the folder's) | APIC type 3, its mime, empty description | same |
//! | other pictures (back cover, booklet…) | APIC with their own type and description | same |
//!
//! Multiple values: ID3v2.4 stores them NUL-separated in one frame (the spec's way). ID3v2.3 has
//! no multi-value text, so values are joined with "; " ([`V23_JOIN`]); comment and lyrics are
//! free text and joined with a newline in both versions. No encoder frame (TSSE/TENC) is written.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, ensure};
use lofty::TextEncoding;
use lofty::config::{ParseOptions, WriteOptions};
use lofty::file::AudioFile;
use lofty::id3::v2::{
    AttachedPictureFrame, CommentFrame, ExtendedTextFrame, Frame, FrameId, Id3v2Tag, KeyValueFrame,
    TextInformationFrame, UniqueFileIdentifierFrame, UnsynchronizedTextFrame,
};
use lofty::mpeg::MpegFile;
use lofty::picture::{MimeType, Picture, PictureType};
use lofty::tag::{TagExt, TagType};

use super::{Cover, Id3Version, TagSet};

/// The ID3v2.3 multi-value separator. Not the spec's "/" because "/" lives inside real names
/// (AC/DC, "Drum/Bass") and could never be split back; Navidrome splits artists, roles and genres
/// on "; " and ";" by default, and Picard users can configure it as their join string.
pub const V23_JOIN: &str = "; ";

/// Padding after the tag so a later small tag change can be written in place.
const PADDING: u32 = 8 * 1024;

/// Plain text frames: (key, frame, also valid in ID3v2.3).
const TEXT: &[(&str, &str, bool)] = &[
    ("album", "TALB", true),
    ("albumartist", "TPE2", true),
    ("albumartistsort", "TSO2", true),
    ("albumsort", "TSOA", true),
    ("artist", "TPE1", true),
    ("artistsort", "TSOP", true),
    ("bpm", "TBPM", true),
    ("composer", "TCOM", true),
    ("composersort", "TSOC", true),
    ("conductor", "TPE3", true),
    ("copyright", "TCOP", true),
    ("discsubtitle", "TSST", true),
    ("genre", "TCON", true),
    ("grouping", "TIT1", true),
    ("isrc", "TSRC", true),
    ("key", "TKEY", true),
    ("label", "TPUB", true),
    ("language", "TLAN", true),
    ("lyricist", "TEXT", true),
    ("media", "TMED", true),
    ("mood", "TMOO", false),
    ("movementname", "MVNM", true),
    ("originalalbum", "TOAL", true),
    ("originalartist", "TOPE", true),
    ("originallyricist", "TOLY", true),
    ("releasedate", "TDRL", false),
    ("remixer", "TPE4", true),
    ("subtitle", "TIT3", true),
    ("title", "TIT2", true),
    ("titlesort", "TSOT", true),
];

/// TXXX descriptions that differ from the uppercased key (MusicBrainz Picard's spellings).
const TXXX: &[(&str, &str)] = &[
    ("acoustid_fingerprint", "Acoustid Fingerprint"),
    ("acoustid_id", "Acoustid Id"),
    ("musicbrainz_albumartistid", "MusicBrainz Album Artist Id"),
    ("musicbrainz_albumid", "MusicBrainz Album Id"),
    ("musicbrainz_artistid", "MusicBrainz Artist Id"),
    ("musicbrainz_discid", "MusicBrainz Disc Id"),
    (
        "musicbrainz_originalalbumid",
        "MusicBrainz Original Album Id",
    ),
    (
        "musicbrainz_originalartistid",
        "MusicBrainz Original Artist Id",
    ),
    ("musicbrainz_releasegroupid", "MusicBrainz Release Group Id"),
    ("musicbrainz_releasetrackid", "MusicBrainz Release Track Id"),
    ("musicbrainz_workid", "MusicBrainz Work Id"),
    ("releasecountry", "MusicBrainz Album Release Country"),
    ("releasestatus", "MusicBrainz Album Status"),
    ("releasetype", "MusicBrainz Album Type"),
    ("writer", "Writer"),
];

/// Frames Picard writes in ID3v2.3 too (every v2.3 reader that sorts reads them) but lofty drops
/// from a v2.3 tag as v2.4-only; `add_v23_frames` puts them back.
const V23_ADDED: &[&str] = &["TSOA", "TSOP", "TSOT", "TSST"];

/// Involved-people roles, as Picard names them inside TIPL.
const TIPL: &[(&str, &str)] = &[
    ("arranger", "arranger"),
    ("djmixer", "DJ-mix"),
    ("engineer", "engineer"),
    ("mixer", "mix"),
    ("producer", "producer"),
];

/// Keys consumed by the special cases in `frames`.
const SPECIAL: &[&str] = &[
    "tracknumber",
    "tracktotal",
    "discnumber",
    "disctotal",
    "movement",
    "movementtotal",
    "date",
    "originaldate",
    "compilation",
    "comment",
    "lyrics",
    "musicbrainz_trackid",
];

/// Replace every tag in the MP3 at `mp3` with exactly `tags` (an empty `TagSet` leaves no tag).
pub fn write_mp3_tags(mp3: &Path, tags: &TagSet, version: Id3Version) -> anyhow::Result<()> {
    write_inner(mp3, tags, version).with_context(|| format!("writing tags to {}", mp3.display()))
}

fn write_inner(mp3: &Path, tags: &TagSet, version: Id3Version) -> anyhow::Result<()> {
    super::read::lofty_globals();
    let options = WriteOptions::new()
        .preferred_padding(PADDING)
        .use_id3v23(version == Id3Version::V23);
    let mut tag = Id3v2Tag::new();
    for frame in frames(tags, version) {
        tag.insert(frame);
    }
    strip_trailing_tags(mp3, options)?;
    tag.save_to_path(mp3, options)?;
    let extra = v23_extras(tags, version);
    if !extra.is_empty() {
        add_v23_frames(mp3, &extra)?;
    }
    Ok(())
}

/// The `V23_ADDED` frames of `tags`, for an ID3v2.3 tag (none for v2.4, where lofty writes them).
fn v23_extras(tags: &TagSet, version: Id3Version) -> Vec<(&'static str, String)> {
    if version != Id3Version::V23 {
        return Vec::new();
    }
    TEXT.iter()
        .filter(|(_, id, _)| V23_ADDED.contains(id))
        .filter_map(|(key, id, _)| Some((*id, tags.get(key)?.join(V23_JOIN))))
        .collect()
}

/// Append text frames to the ID3v2.3 tag lofty just wrote at the start of `mp3`: into its
/// padding when they fit, else by rewriting the file with a larger tag. The frames are UTF-16
/// with a BOM, v2.3's only Unicode encoding.
fn add_v23_frames(mp3: &Path, frames: &[(&str, String)]) -> anyhow::Result<()> {
    let mut data = fs::read(mp3)?;
    if !data.starts_with(b"ID3") {
        // lofty writes no tag at all for an empty one: start an empty v2.3 tag.
        data.splice(0..0, *b"ID3\x03\0\0\0\0\0\0");
    }
    ensure!(
        data.len() >= 10 && data.starts_with(b"ID3\x03"),
        "no ID3v2.3 tag to add {} to",
        frames[0].0
    );
    // Unsynchronisation or an extended header would move the frames; lofty writes neither.
    ensure!(data[5] & 0xC0 == 0, "unexpected ID3v2.3 header flags");
    let syncsafe = |b: &[u8]| {
        b.iter()
            .fold(0usize, |n, &x| (n << 7) | usize::from(x & 0x7F))
    };
    let end = 10 + syncsafe(&data[6..10]);
    ensure!(end <= data.len(), "the ID3v2.3 tag is longer than the file");
    let mut pos = 10;
    while pos + 10 <= end && data[pos] != 0 {
        let len = u32::from_be_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        pos += 10 + len as usize;
    }
    ensure!(pos <= end, "an ID3v2.3 frame runs past the tag");
    let mut bytes = Vec::new();
    for (id, value) in frames {
        let mut body = vec![1u8, 0xFF, 0xFE];
        body.extend(value.encode_utf16().flat_map(u16::to_le_bytes));
        bytes.extend(id.as_bytes());
        bytes.extend(u32::try_from(body.len())?.to_be_bytes());
        bytes.extend([0, 0]);
        bytes.extend(body);
    }
    if bytes.len() <= end - pos && end > 10 {
        let mut file = fs::OpenOptions::new().write(true).open(mp3)?;
        file.seek(SeekFrom::Start(pos as u64))?;
        file.write_all(&bytes)?;
        return Ok(());
    }
    let size = pos - 10 + bytes.len() + PADDING as usize;
    ensure!(size < 1 << 28, "the ID3v2.3 tag would be too big");
    let mut out = data[..pos].to_vec();
    out.extend(bytes);
    out.resize(10 + size, 0);
    out.extend(data.drain(end..));
    for (i, shift) in [21, 14, 7, 0].into_iter().enumerate() {
        out[6 + i] = ((size >> shift) & 0x7F) as u8;
    }
    fs::write(mp3, out)?;
    Ok(())
}

/// Remove every APE and ID3v1 tag. lofty's `remove_others` is not implemented for MPEG, and
/// removing an ID3v1 tag that isn't there *appends* an empty one (lofty 0.25.5), so only tags
/// lofty actually finds are removed, one at a time, until none is left.
fn strip_trailing_tags(mp3: &Path, options: WriteOptions) -> anyhow::Result<()> {
    let parse = ParseOptions::new().read_properties(false);
    for _ in 0..8 {
        let file = MpegFile::read_from(&mut BufReader::new(File::open(mp3)?), parse)?;
        let present = if file.ape().is_some() {
            TagType::Ape
        } else if file.id3v1().is_some() {
            TagType::Id3v1
        } else {
            return Ok(());
        };
        present.remove_from_path(mp3, options)?;
    }
    anyhow::bail!("could not strip its APE/ID3v1 tags")
}

/// The frames for `tags`, in key order with the cover last.
fn frames(tags: &TagSet, version: Id3Version) -> Vec<Frame<'static>> {
    let v23 = version == Id3Version::V23;
    let join = |values: &[String]| values.join(if v23 { V23_JOIN } else { "\0" });
    let first = |key: &str| tags.get(key).and_then(|v| v.first()).map(String::as_str);
    let mut out = Vec::new();

    for (key, values) in &tags.fields {
        let key = key.as_str();
        if SPECIAL.contains(&key) || TIPL.iter().any(|(k, _)| *k == key) || is_performer(key) {
            continue;
        }
        match TEXT.iter().find(|(k, _, _)| *k == key) {
            // Added to the tag after lofty wrote it.
            Some((_, id, _)) if v23 && V23_ADDED.contains(id) => {}
            Some((_, id, in_v23)) if *in_v23 || !v23 => out.push(text(id, join(values))),
            _ => {
                let desc = TXXX
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or_else(|| key.to_uppercase(), |(_, d)| (*d).to_owned());
                out.push(txxx(desc, join(values)));
            }
        }
    }

    for (number, total, id) in [
        ("tracknumber", "tracktotal", "TRCK"),
        ("discnumber", "disctotal", "TPOS"),
        ("movement", "movementtotal", "MVIN"),
    ] {
        if let Some(pair) = number_pair(first(number), first(total)) {
            out.push(text(id, pair));
        }
    }
    if let Some(date) = first("date") {
        out.extend(date_frames(date, "TDRC", v23));
    }
    if let Some(date) = first("originaldate") {
        out.extend(date_frames(date, "TDOR", v23));
    }
    if tags.get("compilation").is_some() {
        out.push(text("TCMP", "1".into()));
    }
    if let Some(v) = tags.get("comment") {
        let f = CommentFrame::new(TextEncoding::UTF8, *b"eng", "", v.join("\n"));
        out.push(Frame::Comment(f));
    }
    if let Some(v) = tags.get("lyrics") {
        let f = UnsynchronizedTextFrame::new(TextEncoding::UTF8, *b"eng", "", v.join("\n"));
        out.push(Frame::UnsynchronizedText(f));
    }
    if let Some(id) = first("musicbrainz_trackid") {
        let f = UniqueFileIdentifierFrame::new("http://musicbrainz.org", id.as_bytes().to_vec());
        out.push(Frame::UniqueFileIdentifier(f));
    }
    let people: Vec<(Cow<'static, str>, Cow<'static, str>)> = TIPL
        .iter()
        .flat_map(|(key, role)| {
            let values = tags.get(key).unwrap_or_default();
            values
                .iter()
                .map(|v| (Cow::Borrowed(*role), Cow::Owned(v.clone())))
        })
        .collect();
    // lofty merges TIPL and TMCL into one IPLS for ID3v2.3, as Picard does.
    let musicians: Vec<(Cow<'static, str>, Cow<'static, str>)> = performers(tags)
        .into_iter()
        .map(|(role, name)| (Cow::Owned(role), Cow::Owned(name)))
        .collect();
    for (id, pairs) in [("TIPL", people), ("TMCL", musicians)] {
        if !pairs.is_empty() {
            let id = FrameId::Valid(Cow::Borrowed(id));
            out.push(Frame::KeyValue(KeyValueFrame::new(
                id,
                TextEncoding::UTF8,
                pairs,
            )));
        }
    }
    out.extend(pictures(tags));
    out
}

/// APIC frames: the front cover with an empty description, then every other picture with its
/// own type. ID3v2 allows one APIC per description, so a repeated or empty description gets
/// the type's name and a number ("Cover Art (Back) (2)").
fn pictures(tags: &TagSet) -> Vec<Frame<'static>> {
    let mut used: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut apic = |kind: PictureType, wanted: &str, image: &Cover| {
        let base = if wanted.is_empty() && kind != PictureType::CoverFront {
            kind.as_ape_key().unwrap_or("Picture").to_owned()
        } else {
            wanted.to_owned()
        };
        let mut description = base.clone();
        for n in 2.. {
            if !used.contains(&description) {
                break;
            }
            description = format!("{base} ({n})");
        }
        used.push(description.clone());
        let picture = Picture::unchecked(image.data.clone())
            .pic_type(kind)
            .mime_type(MimeType::from_str(&image.mime))
            .description(description)
            .build();
        out.push(Frame::Picture(AttachedPictureFrame::new(
            TextEncoding::UTF8,
            picture,
        )));
    };
    if let Some(cover) = &tags.cover {
        apic(PictureType::CoverFront, "", cover);
    }
    for p in &tags.others {
        apic(PictureType::from_u8(p.kind), &p.description, &p.image);
    }
    out
}

fn is_performer(key: &str) -> bool {
    key == "performer" || key.starts_with("performer:")
}

/// Musician credits as (role, name), Picard's way: `PERFORMER:ROLE=Name` and
/// `PERFORMER=Name (role)` give the role; a bare `PERFORMER=Name` gets the role "performer".
pub(super) fn performers(tags: &TagSet) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, values) in tags.fields.iter().filter(|(k, _)| is_performer(k)) {
        let role = key.strip_prefix("performer:").map(str::trim);
        for value in values {
            out.push(match (role, split_role(value)) {
                (Some(role), _) if !role.is_empty() => (role.to_owned(), value.clone()),
                (_, Some((name, role))) => (role.to_owned(), name.to_owned()),
                _ => ("performer".to_owned(), value.clone()),
            });
        }
    }
    out
}

/// "Eric Clapton (guitar)" → ("Eric Clapton", "guitar"): the role is the last balanced
/// parenthesis, as Picard reads it, so "Name (ft. X) (lead vocals)" keeps "(ft. X)" in the name.
fn split_role(value: &str) -> Option<(&str, &str)> {
    let inner = value.strip_suffix(')')?;
    let mut depth = 1;
    let open = inner.char_indices().rev().find_map(|(i, c)| {
        match c {
            ')' => depth += 1,
            '(' => depth -= 1,
            _ => {}
        }
        (depth == 0).then_some(i)
    })?;
    let (name, role) = (inner[..open].trim_end(), inner[open + 1..].trim());
    (!name.is_empty() && !role.is_empty()).then_some((name, role))
}

fn text(id: &'static str, value: String) -> Frame<'static> {
    let id = FrameId::Valid(Cow::Borrowed(id));
    Frame::Text(TextInformationFrame::new(id, TextEncoding::UTF8, value))
}

fn txxx(description: String, value: String) -> Frame<'static> {
    Frame::UserText(ExtendedTextFrame::new(
        TextEncoding::UTF8,
        description,
        value,
    ))
}

/// "3/12", "3", or nothing: a total alone says nothing useful (Picard drops it too).
pub(super) fn number_pair(number: Option<&str>, total: Option<&str>) -> Option<String> {
    let number = number?.trim();
    if number.is_empty() {
        return None;
    }
    Some(match total.map(str::trim).filter(|t| !t.is_empty()) {
        Some(total) => format!("{number}/{total}"),
        None => number.to_owned(),
    })
}

/// A date as its v2.4 timestamp frame, or as TYER+TDAT (TORY for the original date) in v2.3.
/// Dates that aren't ISO-like go out verbatim in a TXXX so nothing is silently lost.
fn date_frames(date: &str, id: &'static str, v23: bool) -> Vec<Frame<'static>> {
    let fallback = || {
        let desc = if id == "TDRC" { "DATE" } else { "ORIGINALDATE" };
        vec![txxx(desc.into(), date.to_owned())]
    };
    let Some(iso) = iso_prefix(date) else {
        return fallback();
    };
    if !v23 {
        return vec![text(id, iso.to_owned())];
    }
    let year = iso[..4].to_owned();
    if id == "TDOR" {
        return vec![text("TORY", year)];
    }
    let mut out = vec![text("TYER", year)];
    if iso.len() >= 10 {
        out.push(text("TDAT", format!("{}{}", &iso[8..10], &iso[5..7])));
    }
    out
}

/// The longest prefix of `s` that is an ID3v2.4 timestamp (yyyy[-MM[-dd[THH[:mm[:ss]]]]]);
/// FLAC dates like "2021-10-30T14:43:49+02:00" lose their zone, which ID3 can't store.
pub(super) fn iso_prefix(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let num = |from: usize| (b[from] - b'0') as u32 * 10 + (b[from + 1] - b'0') as u32;
    if !digits(0, 4) {
        return None;
    }
    // (separator before, valid range) for month, day, hour, minute, second.
    let parts = [
        (b'-', 1..=12),
        (b'-', 1..=31),
        (b'T', 0..=23),
        (b':', 0..=59),
        (b':', 0..=59),
    ];
    let mut end = 4;
    for (sep, range) in parts {
        // A space instead of 'T' ends the timestamp: ID3 only knows the 'T' form.
        if b.get(end) != Some(&sep) || !digits(end + 1, 2) || !range.contains(&num(end + 1)) {
            break;
        }
        end += 3;
    }
    Some(&s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trck_normalisation() {
        assert_eq!(number_pair(Some("3"), Some("12")).unwrap(), "3/12");
        assert_eq!(number_pair(Some("3"), None).unwrap(), "3");
        assert_eq!(number_pair(Some("3"), Some(" ")).unwrap(), "3");
        assert_eq!(number_pair(None, Some("12")), None);
        assert_eq!(number_pair(Some(""), Some("12")), None);
    }

    #[test]
    fn iso_dates() {
        assert_eq!(
            iso_prefix("2021-10-30T14:43:49+02:00"),
            Some("2021-10-30T14:43:49")
        );
        assert_eq!(iso_prefix("1999"), Some("1999"));
        assert_eq!(iso_prefix("1999-13-01"), Some("1999"));
        assert_eq!(iso_prefix("1999-02"), Some("1999-02"));
        assert_eq!(iso_prefix("1999-02-03 10:11"), Some("1999-02-03"));
        assert_eq!(iso_prefix("ca. 1950"), None);
        assert_eq!(iso_prefix("19"), None);
    }

    #[test]
    fn performer_roles_as_picard_reads_them() {
        assert_eq!(
            split_role("Eric Clapton (guitar)"),
            Some(("Eric Clapton", "guitar"))
        );
        assert_eq!(
            split_role("A (ft. B) (lead vocals)"),
            Some(("A (ft. B)", "lead vocals"))
        );
        assert_eq!(split_role("A (x (y))"), Some(("A", "x (y)")));
        for plain in ["Eric Clapton", "(guitar)", "A ()", "A b)", "A (b"] {
            assert_eq!(split_role(plain), None, "{plain}");
        }
        let mut t = TagSet::default();
        t.set(
            "performer",
            vec!["Eric Clapton (guitar)".into(), "Solo".into()],
        );
        t.set("performer:bass guitar", vec!["Jack Bruce".into()]);
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(r, n)| ((*r).into(), (*n).into())).collect()
        };
        assert_eq!(
            performers(&t),
            pairs(&[
                ("guitar", "Eric Clapton"),
                ("performer", "Solo"),
                ("bass guitar", "Jack Bruce")
            ])
        );
        let ids: Vec<String> = frames(&t, Id3Version::V24)
            .iter()
            .map(|f| f.id_str().to_owned())
            .collect();
        assert_eq!(ids, ["TMCL"]);
    }

    #[test]
    fn v23_dates_and_joins() {
        let mut t = TagSet::default();
        t.set("artist", vec!["A".into(), "B".into()]);
        t.set("date", vec!["2001-02-03".into()]);
        t.set("originaldate", vec!["1990-05".into()]);
        t.set("albumsort", vec!["S".into()]);
        let ids = |fs: &[Frame<'_>]| fs.iter().map(|f| f.id_str().to_owned()).collect::<Vec<_>>();
        let v23 = frames(&t, Id3Version::V23);
        assert_eq!(ids(&v23), ["TPE1", "TYER", "TDAT", "TORY"]);
        assert_eq!(v23_extras(&t, Id3Version::V23), [("TSOA", "S".to_owned())]);
        assert_eq!(v23_extras(&t, Id3Version::V24), []);
        let Frame::Text(f) = &v23[0] else { panic!() };
        assert_eq!(f.value, "A; B");
        let Frame::Text(f) = &v23[2] else { panic!() };
        assert_eq!(f.value, "0302");
        let v24 = frames(&t, Id3Version::V24);
        assert_eq!(ids(&v24), ["TSOA", "TPE1", "TDRC", "TDOR"]);
        let Frame::Text(f) = &v24[1] else { panic!() };
        assert_eq!(f.value, "A\0B");
    }
}
