//! Real-file tests: FLAC made by `flac` → `read_tags` → `write_mp3_tags` onto a LAME MP3 → read
//! back with lofty and, independently, with Python's mutagen; ffmpeg proves the audio is intact.
//! Needs flac, lame, ffmpeg/ffprobe and mutagen (scripts/test installs them); a missing tool is a
//! failure with its name, never a silent pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use lofty::config::ParseOptions;
use lofty::file::AudioFile;
use lofty::id3::v2::{Frame, FrameId, Id3v2Version};
use lofty::mpeg::MpegFile;
use lofty::picture::PictureType;
use serde_json::Value;

use super::*;

fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{tool}` ({e}); install it (see scripts/test)"));
    assert!(
        out.status.success(),
        "`{tool} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const MB_TRACK: &str = "mbid-1";

/// (Vorbis comment, expected canonical key, expected values).
#[rustfmt::skip]
const SOURCE: &[(&str, &str, &[&str])] = &[
    ("TITLE=Ünïcödé ✓ title", "title", &["Ünïcödé ✓ title"]),
    ("ARTIST=Artist A", "artist", &["Artist A", "AC/DC"]),
    ("ARTIST=AC/DC", "artist", &["Artist A", "AC/DC"]),
    ("ALBUM=The Album", "album", &["The Album"]),
    ("ALBUMARTIST=Various", "albumartist", &["Various"]),
    ("TRACKNUMBER=3", "tracknumber", &["3"]),
    ("TRACKTOTAL=12", "tracktotal", &["12"]),
    ("DISCNUMBER=1/2", "discnumber", &["1"]),
    ("DATE=2001-02-03", "date", &["2001-02-03"]),
    ("ORIGINALDATE=1999", "originaldate", &["1999"]),
    ("GENRE=Rock", "genre", &["Rock", "Pop"]),
    ("GENRE=Pop", "genre", &["Rock", "Pop"]),
    ("COMPOSER=Comp", "composer", &["Comp"]),
    ("COMPILATION=1", "compilation", &["1"]),
    ("COMMENT=a comment", "comment", &["a comment"]),
    ("LYRICS=la la la", "lyrics", &["la la la"]),
    ("LABEL=Label", "label", &["Label"]),
    ("ISRC=USRC17607839", "isrc", &["USRC17607839"]),
    ("CONDUCTOR=Cond", "conductor", &["Cond"]),
    ("PRODUCER=Prod", "producer", &["Prod"]),
    ("MUSICBRAINZ_TRACKID=mbid-1", "musicbrainz_trackid", &[MB_TRACK]),
    ("MUSICBRAINZ_ALBUMID=mbid-2", "musicbrainz_albumid", &["mbid-2"]),
    ("MUSICBRAINZ_ARTISTID=mbid-3", "musicbrainz_artistid", &["mbid-3"]),
    ("MUSICBRAINZ_ALBUMARTISTID=mbid-4", "musicbrainz_albumartistid", &["mbid-4"]),
    ("MUSICBRAINZ_RELEASEGROUPID=mbid-5", "musicbrainz_releasegroupid", &["mbid-5"]),
    ("MUSICBRAINZ_RELEASETRACKID=mbid-6", "musicbrainz_releasetrackid", &["mbid-6"]),
    ("REPLAYGAIN_TRACK_GAIN=-6.50 dB", "replaygain_track_gain", &["-6.50 dB"]),
    ("REPLAYGAIN_TRACK_PEAK=0.988312", "replaygain_track_peak", &["0.988312"]),
    ("REPLAYGAIN_ALBUM_GAIN=-7.10 dB", "replaygain_album_gain", &["-7.10 dB"]),
    ("REPLAYGAIN_ALBUM_PEAK=1.000000", "replaygain_album_peak", &["1.000000"]),
    ("CUSTOM_THING=kept", "custom_thing", &["kept"]),
    ("ENCODER=should vanish", "encoder", &[]),
    ("ENCODED_BY=should vanish", "encoded_by", &[]),
];

/// ID3 frames mutagen must see, as (mutagen key, text) for ID3v2.4; v2.3 differs only in joins
/// and dates, handled in `check_mutagen`.
#[rustfmt::skip]
const FRAMES: &[(&str, &[&str])] = &[
    ("TIT2", &["Ünïcödé ✓ title"]),
    ("TPE1", &["Artist A", "AC/DC"]),
    ("TALB", &["The Album"]),
    ("TPE2", &["Various"]),
    ("TRCK", &["3/12"]),
    ("TPOS", &["1/2"]),
    ("TCON", &["Rock", "Pop"]),
    ("TCOM", &["Comp"]),
    ("TCMP", &["1"]),
    ("TPUB", &["Label"]),
    ("TSRC", &["USRC17607839"]),
    ("TPE3", &["Cond"]),
    ("COMM::eng", &["a comment"]),
    ("USLT::eng", &["la la la"]),
    ("TXXX:MusicBrainz Album Id", &["mbid-2"]),
    ("TXXX:MusicBrainz Artist Id", &["mbid-3"]),
    ("TXXX:MusicBrainz Album Artist Id", &["mbid-4"]),
    ("TXXX:MusicBrainz Release Group Id", &["mbid-5"]),
    ("TXXX:MusicBrainz Release Track Id", &["mbid-6"]),
    ("TXXX:REPLAYGAIN_TRACK_GAIN", &["-6.50 dB"]),
    ("TXXX:REPLAYGAIN_TRACK_PEAK", &["0.988312"]),
    ("TXXX:REPLAYGAIN_ALBUM_GAIN", &["-7.10 dB"]),
    ("TXXX:REPLAYGAIN_ALBUM_PEAK", &["1.000000"]),
    ("TXXX:CUSTOM_THING", &["kept"]),
];

/// Dumps every ID3 frame as JSON (untranslated, so v2.3 frames stay v2.3), plus whether an APEv2
/// or ID3v1 tag survived, the ID3v2 padding, and the LAME info frame mutagen finds after the tag.
const MUTAGEN_DUMP: &str = r#"
import hashlib, json, sys, mutagen.id3, mutagen.apev2, mutagen.mp3
p = sys.argv[1]
t = mutagen.id3.ID3(p, translate=False)
out = {"version": list(t.version), "frames": {}}
for k, f in t.items():
    if f.FrameID == "APIC":
        v = {"type": int(f.type), "mime": f.mime, "sha256": hashlib.sha256(f.data).hexdigest()}
    elif f.FrameID == "UFID":
        v = {"owner": f.owner, "data": f.data.decode()}
    elif f.FrameID in ("TIPL", "TMCL", "IPLS"):
        v = [list(x) for x in f.people]
    elif isinstance(f.text, str):  # USLT holds one string
        v = [f.text]
    else:
        v = [str(x) for x in f.text]
    out["frames"][k] = v
try:
    mutagen.apev2.APEv2(p); out["ape"] = True
except mutagen.apev2.APENoHeaderError:
    out["ape"] = False
out["lame"] = mutagen.mp3.MP3(p).info.encoder_info
data = open(p, "rb").read()
out["id3v1"] = data[-128:-125] == b"TAG"
size = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
out["padding"] = size - len(data[:size].rstrip(b"\0"))
print(json.dumps(out))
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    flac: PathBuf,
    mp3: PathBuf,
    cover: PathBuf,
    root: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (wav, flac, mp3) = (root.join("t.wav"), root.join("t.flac"), root.join("t.mp3"));
    let (cover, back) = (root.join("c.jpg"), root.join("back.png"));
    let ff = |args: &[&str]| run("ffmpeg", &[&["-v", "error", "-y"], args].concat());
    ff(&["-f", "lavfi", "-i", "sine=d=1", "-ac", "2", s(&wav)]);
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "color=red:s=32x32",
        "-frames:v",
        "1",
        s(&cover),
    ]);
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "color=blue:s=32x32",
        "-frames:v",
        "1",
        s(&back),
    ]);
    let mut args: Vec<String> = vec!["-s".into(), "-f".into(), "-o".into(), s(&flac).into()];
    args.extend(SOURCE.iter().map(|(c, _, _)| format!("--tag={c}")));
    // The back cover comes first: the front one must still win.
    args.push(format!("--picture=4||back|32x32x24/0|{}", s(&back)));
    args.push(format!("--picture=3||front|32x32x24/0|{}", s(&cover)));
    args.push(s(&wav).into());
    run("flac", &args.iter().map(String::as_str).collect::<Vec<_>>());
    // An MP3 that already carries ID3v2 (with LAME's TSSE), ID3v1 and APE tags: all must go.
    let (tt, ta) = ("--tt", "--ta");
    run(
        "lame",
        &[
            "--quiet",
            "-V2",
            "--add-id3v2",
            tt,
            "old",
            ta,
            "old",
            s(&wav),
            s(&mp3),
        ],
    );
    let ape =
        "import mutagen.apev2,sys; t=mutagen.apev2.APEv2(); t['Title']='old'; t.save(sys.argv[1])";
    run("python3", &["-c", ape, s(&mp3)]);
    Fixture {
        _dir: dir,
        flac,
        mp3,
        cover,
        root,
    }
}

fn pcm(mp3: &Path) -> Vec<u8> {
    run("ffmpeg", &["-v", "error", "-i", s(mp3), "-f", "s16le", "-"])
}

#[test]
fn flac_to_mp3_both_versions() {
    let fx = fixture();
    let tags = read_tags(&fx.flac).unwrap();
    for (_, key, values) in SOURCE {
        assert_eq!(
            tags.get(key).unwrap_or_default(),
            *values,
            "canonical {key}"
        );
    }
    let cover = tags.cover.clone().expect("front cover read");
    assert_eq!(cover.mime, "image/jpeg");
    assert_eq!(cover.data, std::fs::read(&fx.cover).unwrap());
    let reference = pcm(&fx.mp3);

    for version in [Id3Version::V24, Id3Version::V23] {
        let out = fx.root.join(format!("{version:?}.mp3"));
        std::fs::copy(&fx.mp3, &out).unwrap();
        write_mp3_tags(&out, &tags, version).unwrap();
        check_mutagen(&out, &tags, version);
        check_lofty(&out, version);
        assert_eq!(pcm(&out), reference, "{version:?}: decoded audio changed");
        let probe = run(
            "ffprobe",
            &["-v", "error", "-show_entries", "stream=codec_name", s(&out)],
        );
        assert!(String::from_utf8_lossy(&probe).contains("codec_name=mp3"));
        // Our own reader gets the very same TagSet back from v2.4 (v2.3 joins multi-values).
        if version == Id3Version::V24 {
            assert_eq!(read_tags(&out).unwrap(), tags);
        }
        // Rewriting in place is idempotent and still leaves exactly one tag.
        write_mp3_tags(&out, &tags, version).unwrap();
        check_mutagen(&out, &tags, version);
    }
}

/// lofty's raw view: one ID3v2 tag of the asked version, no encoder frame, no other tag.
fn check_lofty(mp3: &Path, version: Id3Version) {
    let mut reader = std::io::BufReader::new(std::fs::File::open(mp3).unwrap());
    let file = MpegFile::read_from(&mut reader, ParseOptions::new()).unwrap();
    assert!(
        file.id3v1().is_none() && file.ape().is_none(),
        "{version:?}"
    );
    let tag = file.id3v2().expect("ID3v2 tag");
    let want = match version {
        Id3Version::V23 => Id3v2Version::V3,
        Id3Version::V24 => Id3v2Version::V4,
    };
    assert_eq!(tag.original_version(), want);
    for id in ["TSSE", "TENC"] {
        assert!(
            tag.get(&FrameId::new(id).unwrap()).is_none(),
            "{version:?}: {id}"
        );
    }
    let Some(Frame::Picture(apic)) = tag.get(&FrameId::new("APIC").unwrap()) else {
        panic!("{version:?}: no APIC");
    };
    assert_eq!(apic.picture.pic_type(), PictureType::CoverFront);
}

fn check_mutagen(mp3: &Path, tags: &TagSet, version: Id3Version) {
    let json = run("python3", &["-c", MUTAGEN_DUMP, s(mp3)]);
    let dump: Value = serde_json::from_slice(&json).unwrap();
    let frames = dump["frames"].as_object().unwrap();
    let v23 = version == Id3Version::V23;
    assert_eq!(dump["version"][1], if v23 { 3 } else { 4 });
    assert_eq!(dump["ape"], false, "{version:?}: APE tag left behind");
    assert_eq!(dump["id3v1"], false, "{version:?}: ID3v1 tag left behind");
    assert!(
        dump["padding"].as_u64().unwrap() >= 4096,
        "padding: {}",
        dump["padding"]
    );
    // The Xing/LAME frame is still the first audio frame (gapless info intact).
    let lame = dump["lame"].as_str().unwrap();
    assert!(
        lame.starts_with("LAME"),
        "{version:?}: encoder info {lame:?}"
    );
    for gone in ["TSSE", "TENC", "TXXX:ENCODER", "TXXX:ENCODED_BY"] {
        assert!(!frames.contains_key(gone), "{gone} must not be written");
    }
    for (key, want) in FRAMES {
        let want: Vec<String> = match (v23, want.len()) {
            (true, n) if n > 1 => vec![want.join(id3::V23_JOIN)],
            _ => want.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            frames.get(*key),
            Some(&serde_json::json!(want)),
            "{version:?} {key}"
        );
    }
    let dates: &[(&str, &str)] = if v23 {
        &[("TYER", "2001"), ("TDAT", "0302"), ("TORY", "1999")]
    } else {
        &[("TDRC", "2001-02-03"), ("TDOR", "1999")]
    };
    for (key, want) in dates {
        assert_eq!(frames[*key], serde_json::json!([want]), "{version:?} {key}");
    }
    let people = if v23 { "IPLS" } else { "TIPL" };
    assert_eq!(frames[people], serde_json::json!([["producer", "Prod"]]));
    assert_eq!(frames["UFID:http://musicbrainz.org"]["data"], MB_TRACK);
    let apic = &frames["APIC:"];
    let cover = tags.cover.as_ref().unwrap();
    assert_eq!(apic["type"], 3);
    assert_eq!(apic["mime"], cover.mime.as_str());
    assert_eq!(
        apic["sha256"],
        crate::fsutil::hex(&Sha256::digest(&cover.data))
    );
    // The back cover travels too, as the back cover, under its own description.
    let back = &frames["APIC:back"];
    assert_eq!(back["type"], 4);
    assert_eq!((tags.others.len(), tags.others[0].kind), (1, 4));
    assert_eq!(
        back["sha256"],
        crate::fsutil::hex(&Sha256::digest(&tags.others[0].image.data))
    );
    let expected = FRAMES.len() + dates.len() + 4; // + TIPL/IPLS, UFID, two APIC
    assert_eq!(
        frames.len(),
        expected,
        "{version:?}: unexpected frames {:?}",
        frames.keys()
    );
}

#[test]
fn empty_tagset_strips_every_tag_and_big_covers_travel() {
    let fx = fixture();
    write_mp3_tags(&fx.mp3, &TagSet::default(), Id3Version::V24).unwrap();
    let data = std::fs::read(&fx.mp3).unwrap();
    assert!(!data.starts_with(b"ID3") && !data[data.len() - 128..].starts_with(b"TAG"));
    assert_eq!(read_tags(&fx.mp3).unwrap(), TagSet::default());

    // 20 MiB is above lofty's default 16 MiB allocation limit.
    let big = fx.root.join("big.jpg");
    let mut bytes = std::fs::read(&fx.cover).unwrap();
    bytes.resize(20 << 20, 0x55);
    std::fs::write(&big, &bytes).unwrap();
    let mut tags = TagSet::default();
    tags.set("title", vec!["big".into()]);
    tags.cover = Some(load_cover(&big).unwrap());
    write_mp3_tags(&fx.mp3, &tags, Id3Version::V23).unwrap();
    assert_eq!(read_tags(&fx.mp3).unwrap().cover, tags.cover);
}

#[test]
fn unreadable_sources_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 4] = [
        ("noise.flac", &[0x42; 4096]),
        ("notes.txt", b"just some text, not audio at all\n"),
        ("empty.flac", b""),
        ("cut.flac", b"fLaC\x00\x00\x00\x22\x10\x00"),
    ];
    for (name, bytes) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let err = read_tags(&p).expect_err(name);
        let msg = format!("{err:#}");
        assert!(msg.contains(name), "{msg}");
    }
    assert!(read_tags(&dir.path().join("missing.flac")).is_err());
}

// Regression: PERFORMER landed in a TXXX instead of TMCL/IPLS, and with --id3v23 the sort and set
// subtitle fields landed in TXXX instead of TSOP/TSOA/TSOT/TSST (Picard's mapping).
#[test]
fn picard_performer_and_sort_frames_read_back_by_mutagen() {
    let fx = fixture();
    let flac = fx.root.join("p.flac");
    let wav = fx.root.join("p.wav");
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=d=0.3",
            s(&wav),
        ],
    );
    let tags = [
        "PERFORMER=Eric Clapton (guitar)",
        "PERFORMER=Ginger Baker",
        "PERFORMER:BASS=Jack Bruce",
        "PRODUCER=Felix Pappalardi",
        "ARTISTSORT=Cream",
        "ALBUMSORT=Disraeli Gears",
        "TITLESORT=Sunshine of Your Love",
        "DISCSUBTITLE=Ünïcödé side",
    ];
    let mut args = vec!["-s", "-f", "-o", s(&flac)];
    let tag_args: Vec<String> = tags.iter().map(|t| format!("--tag={t}")).collect();
    args.extend(tag_args.iter().map(String::as_str));
    args.push(s(&wav));
    run("flac", &args);
    let read = read_tags(&flac).unwrap();
    let reference = pcm(&fx.mp3);
    let musicians = [
        ["guitar", "Eric Clapton"],
        ["performer", "Ginger Baker"],
        ["bass", "Jack Bruce"],
    ];
    for version in [Id3Version::V24, Id3Version::V23] {
        let out = fx.root.join(format!("p{version:?}.mp3"));
        std::fs::copy(&fx.mp3, &out).unwrap();
        write_mp3_tags(&out, &read, version).unwrap();
        let dump: Value =
            serde_json::from_slice(&run("python3", &["-c", MUTAGEN_DUMP, s(&out)])).unwrap();
        let frames = &dump["frames"];
        let sorts = [
            ("TSOP", "Cream"),
            ("TSOA", "Disraeli Gears"),
            ("TSOT", "Sunshine of Your Love"),
            ("TSST", "Ünïcödé side"),
        ];
        for (id, want) in sorts {
            assert_eq!(
                frames[id],
                serde_json::json!([want]),
                "{version:?} {id}: {frames}"
            );
        }
        if version == Id3Version::V24 {
            assert_eq!(dump["version"][1], 4);
            assert_eq!(frames["TMCL"], serde_json::json!(musicians), "{frames}");
            assert_eq!(
                frames["TIPL"],
                serde_json::json!([["producer", "Felix Pappalardi"]])
            );
        } else {
            assert_eq!(dump["version"][1], 3);
            let mut people = vec![["producer", "Felix Pappalardi"]];
            people.extend(musicians);
            assert_eq!(frames["IPLS"], serde_json::json!(people), "{frames}");
        }
        assert!(
            !frames
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("TXXX")),
            "{version:?}: {frames}"
        );
        assert_eq!(pcm(&out), reference, "{version:?}: decoded audio changed");
    }

    // Sort names longer than the padding: the v2.3 tag grows, the audio is untouched.
    let mut long = read.clone();
    long.set("titlesort", vec!["x".repeat(20_000)]);
    let out = fx.root.join("long.mp3");
    std::fs::copy(&fx.mp3, &out).unwrap();
    write_mp3_tags(&out, &long, Id3Version::V23).unwrap();
    let dump: Value =
        serde_json::from_slice(&run("python3", &["-c", MUTAGEN_DUMP, s(&out)])).unwrap();
    assert_eq!(
        dump["frames"]["TSOT"][0].as_str().map(str::len),
        Some(20_000)
    );
    assert_eq!(dump["frames"]["TSOP"], serde_json::json!(["Cream"]));
    assert_eq!(pcm(&out), reference, "decoded audio changed");
    // A tag holding nothing but a sort name still gets one.
    let mut only = TagSet::default();
    only.set("artistsort", vec!["Cream".into()]);
    write_mp3_tags(&out, &only, Id3Version::V23).unwrap();
    let dump: Value =
        serde_json::from_slice(&run("python3", &["-c", MUTAGEN_DUMP, s(&out)])).unwrap();
    assert_eq!(dump["frames"], serde_json::json!({"TSOP": ["Cream"]}));
    assert_eq!(pcm(&out), reference, "decoded audio changed");
}
