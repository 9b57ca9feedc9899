//! The checks behind the fuzz targets in `fuzz/`, one per input musync parses itself: the
//! manifest, the push state, the config file, rclone's listing, the genre rules. They live here,
//! not in `fuzz/`, so that `cargo test` on stable Rust also runs them over the committed corpus
//! (`fuzz/corpus/<target>/`). Each asserts more than "no panic": whatever parses holds only clean
//! relative paths, what musync writes reads back equal, and a config error is one line.
//! Not part of musync's interface; it does no I/O of its own.
#![doc(hidden)]

use std::path::Path;

use crate::genre::{self, DISC_PATTERN, GenreFrom, GenreRules, Policy};
use crate::manifest;
use crate::push::state::State;
use crate::relpath;

/// A fuzz target's check: it panics on a bug.
pub type Check = fn(&[u8]);

/// Every target's name (its folder under `fuzz/corpus/`) and check.
pub const TARGETS: [(&str, Check); 5] = [
    ("manifest", manifest),
    ("push_state", push_state),
    ("config", config),
    ("rclone_listing", rclone_listing),
    ("genre_rules", genre_rules),
];

/// The input is a snapshot (either format) and a journal. A JSON snapshot is split from its
/// journal at the first NUL (which JSON text cannot hold): without one it is a snapshot alone;
/// an empty snapshot part is a missing snapshot. A binary snapshot (it starts with the magic)
/// gives its body's length first, as 4 bytes little-endian, and the journal follows the body; it
/// gets the right checksum, so that mutations reach the decoder.
pub fn manifest(data: &[u8]) {
    let (snapshot, journal) = split_manifest(data);
    let staging = Path::new("staging");
    let Ok(m) = manifest::parse(staging, snapshot.as_deref(), journal) else {
        return;
    };
    let sources = m
        .records
        .iter()
        .flat_map(|(k, r)| [k, &r.source, &r.output]);
    all_safe(sources.chain(&m.orphans));
    let bytes = manifest::to_bytes(&m).expect("a manifest serialises");
    let again = manifest::parse(staging, Some(&bytes), None).expect("a saved manifest loads");
    assert_eq!(again, m, "the manifest changed through a save and a load");
}

fn split_manifest(data: &[u8]) -> (Option<Vec<u8>>, Option<&[u8]>) {
    if let Some(rest) = data.strip_prefix(manifest::MAGIC)
        && let Some((len, rest)) = rest.split_first_chunk::<4>()
    {
        let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
        let mut snapshot = [&manifest::MAGIC[..], &rest[..len]].concat();
        manifest::seal(&mut snapshot);
        return (Some(snapshot), Some(&rest[len..]).filter(|j| !j.is_empty()));
    }
    match data.iter().position(|&b| b == 0) {
        Some(at) => (
            Some(data[..at].to_vec()).filter(|s| !s.is_empty()),
            Some(&data[at + 1..]),
        ),
        None => (Some(data.to_vec()), None),
    }
}

/// A fuzz input for `manifest` from a binary snapshot and a journal.
#[cfg(test)]
fn binary_manifest_input(snapshot: &[u8], journal: &[u8]) -> Vec<u8> {
    let (magic, body) = snapshot.split_at(manifest::MAGIC.len());
    let len = u32::try_from(body.len()).unwrap().to_le_bytes();
    [magic, &len, body, journal].concat()
}

pub fn push_state(data: &[u8]) {
    let path = Path::new("state.bin");
    // A binary state gets the right checksum, so that mutations reach the decoder.
    let mut data = data.to_vec();
    State::seal(&mut data);
    let Ok(state) = State::parse(path, &data) else {
        return;
    };
    all_safe(state.files.keys().chain(state.pending.keys()));
    let bytes = state.to_bytes().expect("a push state serialises");
    let again = State::parse(path, &bytes).expect("a saved push state loads");
    // The remote is saved with its secrets redacted.
    let remote = crate::rclone::redact(&state.remote);
    assert_eq!(
        again,
        State { remote, ..state },
        "the push state changed through a save and a load"
    );
}

/// The input is a config file's text. It is read without a profile and, when its first line is
/// `#profile=NAME` (a TOML comment), with profile NAME too.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let named = text
        .strip_prefix("#profile=")
        .map(|rest| rest.split(['\n', '\r']).next().unwrap_or(rest));
    let dir = Path::new("/cfg");
    for profile in [None, named] {
        match crate::config::parse(text, profile, dir) {
            Ok(defaults) => {
                for (id, values) in &defaults.args {
                    assert!(!values.is_empty(), "{id} set to nothing");
                }
            }
            Err(e) => {
                assert!(!e.is_empty(), "an empty config error");
                assert!(
                    !e.contains(['\n', '\r']),
                    "a config error of many lines: {e:?}"
                );
            }
        }
    }
}

/// The input is `rclone lsjson` output. It is also read as the push reads it, as it grows, in
/// pieces of as many bytes as the first byte says, and must read the same.
pub fn rclone_listing(data: &[u8]) {
    let whole = crate::rclone::parse_links_listing(data).map_err(|e| e.to_string());
    let cut = usize::from(data.first().copied().unwrap_or(1));
    let pieces = crate::rclone::parse_links_listing_in_pieces(data, cut);
    assert_eq!(
        pieces.map_err(|e| e.to_string()),
        whole,
        "a listing read in pieces of {cut} bytes reads otherwise than whole"
    );
    match crate::rclone::parse_listing(data) {
        Ok(files) => all_safe(files.keys()),
        Err(e) => {
            let e = e.to_string();
            assert!(
                !e.contains(['\n', '\r']),
                "a listing error of many lines: {e:?}"
            );
        }
    }
}

/// The input is NUL-separated fields: the rule (`top`, `level:2`…), the policy (`if-missing`,
/// else always), the disc-folder pattern (empty: the default), the source's relative path, its
/// own genre (empty: none), then any number of `GLOB=GENRE` mappings.
pub fn genre_rules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\0');
    let mut next = || fields.next().unwrap_or_default();
    let (rule, policy, disc, rel, own) = (next(), next(), next(), next(), next());
    let own: Vec<String> = [own]
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(Into::into)
        .collect();
    let mappings: Vec<&str> = fields.collect();

    let from = match rule.parse::<GenreFrom>() {
        Ok(from) => {
            assert_eq!(
                from.to_string().parse(),
                Ok(from),
                "{rule:?} does not round-trip"
            );
            from
        }
        Err(_) => GenreFrom::Top,
    };
    let policy = match policy {
        "if-missing" => Policy::IfMissing,
        _ => Policy::Always,
    };
    let mut map = Vec::new();
    for m in mappings {
        if let Ok((glob, genre)) = genre::parse_mapping(m) {
            assert!(!glob.is_empty() && !genre.is_empty(), "{m:?}");
            assert_eq!(format!("{glob}={genre}"), m);
            map.push((glob, genre));
        }
    }
    // A pattern's compile time grows with its length; a long one only slows the fuzzer down.
    let disc = if disc.is_empty() { DISC_PATTERN } else { disc };
    if disc.len() > 256 || map.iter().any(|(glob, _)| glob.len() > 256) {
        return;
    }
    let Ok(rules) = GenreRules::new(from, policy, &map, disc) else {
        return;
    };
    let genre = rules.genre(rel, &own);
    let named = matches!(genre.as_slice(), [one] if !one.is_empty());
    assert!(
        genre == own || named,
        "{rel:?} with own genre {own:?} got {genre:?}"
    );
    assert_eq!(
        rules.genre(rel, &own),
        genre,
        "the genre is not deterministic"
    );
}

fn all_safe<'a>(paths: impl IntoIterator<Item = &'a String>) {
    for p in paths {
        assert!(relpath::check(p).is_ok(), "parsed an unsafe path {p:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;
    use std::path::PathBuf;

    fn corpus(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target)
    }

    #[test]
    fn every_check_passes_on_the_committed_corpus() {
        for (target, check) in TARGETS {
            let dir = corpus(target);
            let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let mut inputs = 0;
            for entry in entries {
                let path = entry.unwrap().path();
                let data = fs::read(&path).unwrap();
                let checked = std::panic::catch_unwind(|| check(&data));
                assert!(checked.is_ok(), "{target} fails on {}", path.display());
                inputs += 1;
            }
            assert!(inputs > 0, "no corpus for {target} in {}", dir.display());
        }
    }

    /// The seeds: files musync writes, and small hand-written inputs. Run with
    /// `cargo test --lib fuzzing -- --ignored` to write them to `fuzz/corpus/`.
    #[test]
    #[ignore = "writes the seed corpus"]
    fn write_seeds() {
        for (target, name, data) in seeds() {
            fs::create_dir_all(corpus(target)).unwrap();
            fs::write(corpus(target).join(format!("seed-{name}")), data).unwrap();
        }
    }

    #[test]
    fn every_check_passes_on_the_seeds() {
        for (target, name, data) in seeds() {
            let (_, check) = TARGETS.iter().find(|(t, _)| *t == target).unwrap();
            let checked = std::panic::catch_unwind(|| check(&data));
            assert!(checked.is_ok(), "{target} fails on seed {name}");
        }
    }

    fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
        let mut seeds = manifest_seeds();
        seeds.extend(push_state_seeds());
        let configs: [(&str, &str); 4] = [
            ("every-key", crate::config::tests::EVERY_KEY),
            (
                "profile",
                "#profile=laptop\nlibrary = \"/music\"\njobs = 4\n[profile.laptop]\n\
                 staging = \"~/mirror\"\ngenre-map = []\npass-through = [\"mp3\"]\n\
                 [profile.nas]\nremote = \"nas:music\"\n",
            ),
            ("bad-value", "quality = \"V10\"\nid3 = \"2.5\"\n"),
            ("unknown-key", "[subsonic]\nurl = \"x\"\npasword-file = 1\n"),
        ];
        seeds.extend(configs.map(|(n, t)| ("config", n, t.as_bytes().to_vec())));
        let listings: [(&str, &str); 3] = [
            ("lsjson", LSJSON),
            ("empty", "[]\n"),
            (
                "unsafe",
                r#"[{"Path":"../x","Name":"x","Size":1},{"Path":"a//b","Name":"b","Size":-1}]"#,
            ),
        ];
        seeds.extend(listings.map(|(n, t)| ("rclone_listing", n, t.as_bytes().to_vec())));
        let genre: [(&str, &str); 4] = [
            (
                "top",
                "top\0always\0\0Jazz/Miles Davis/Kind of Blue/01.flac\0Bebop",
            ),
            ("parent", "parent\0always\0\0Rock/Band/Live/CD 2/01.flac\0"),
            (
                "mapped",
                "level:2\0if-missing\0(?i)^disc\\d+$\0Jazz/Miles Davis/A/01.flac\0\0\
                 Jazz/Miles*/**=Cool Jazz\0Soundtracks/**=Soundtrack",
            ),
            ("path", "path\0always\0\0Album/Pippo/Disc1/x.flac\0Pop"),
        ];
        seeds.extend(genre.map(|(n, t)| ("genre_rules", n, t.as_bytes().to_vec())));
        seeds
    }

    /// What `rclone lsjson -R --files-only --no-mimetype --no-modtime` prints.
    const LSJSON: &str = r#"[
{"Path":"-lead.mp3","Name":"-lead.mp3","Size":9,"IsDir":false},
{"Path":"a #1/b;c é.mp3","Name":"b;c é.mp3","Size":14,"IsDir":false},
{"Path":"Ünïcødé/日本 語/x.mp3","Name":"x.mp3","Size":-1,"IsDir":false}
]
"#;

    /// A manifest as musync saves it, with a journal after it (one line of it torn).
    fn manifest_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
        use crate::fsutil::Stamp;
        use crate::manifest::{Change, Journal, Manifest, Record};
        use crate::settings::MirrorSettings;

        let record = |source: &str, output: &str| Record {
            source: source.into(),
            kind: crate::scan::SourceKind::Lossless,
            stamp: Stamp {
                size: 1_234_567,
                mtime_ns: 1_700_000_000_123_456_789,
            },
            audio_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            tag_hash: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752".into(),
            encoder: "lame V2 id3v2.4".into(),
            tag_key: "f2ca1bb6c7e907d06dafe4687e579fce76b37e4e93b7605022da52e6ccc26fd2".into(),
            output: output.into(),
            output_stamp: Stamp {
                size: 345_678,
                mtime_ns: -5,
            },
            output_hash: "a".repeat(64).into(),
            retag_from: Some("b".repeat(64).into()),
            own_genre: vec!["Bebop".into()],
            genre: vec!["Jazz".into()],
        };
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.apply(Change::Settings(MirrorSettings::default()));
        m.apply(Change::Put(record(
            "Jazz/Miles/01 So What.flac",
            "Jazz/Miles/01 So What.mp3",
        )));
        m.apply(Change::Put(record(
            "names/new\nline.flac",
            "names/new\nline.mp3",
        )));
        m.apply(Change::Orphan("Old/gone.mp3".into()));
        manifest::save(dir.path(), &m).unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        journal
            .append(&[
                Change::Remove("Jazz/Miles/01 So What.flac".into()),
                Change::Orphan("Jazz/Miles/01 So What.mp3".into()),
                Change::Put(record("Rock/é/CD1/02.flac", "Rock/é/CD1/02.mp3")),
            ])
            .unwrap();
        journal
            .append(&[Change::Forget("Old/gone.mp3".into())])
            .unwrap();
        drop(journal);
        let state = dir.path().join(crate::manifest::STATE_DIR);
        let snapshot = fs::read(dir.path().join(manifest::SNAPSHOT)).unwrap();
        let journal = fs::read(state.join("journal.jsonl")).unwrap();
        let torn = [&journal[..], br#"[{"put":{"sou"#].concat();
        let json = manifest::to_json(&m).unwrap();
        let binary = |journal: &[u8]| super::binary_manifest_input(&snapshot, journal);
        vec![
            ("manifest", "json-snapshot", json.clone()),
            ("manifest", "journal", [&b"\0"[..], &journal].concat()),
            (
                "manifest",
                "json-both",
                [&json[..], b"\0", &journal].concat(),
            ),
            ("manifest", "json-torn", [&json[..], b"\0", &torn].concat()),
            ("manifest", "snapshot", binary(b"")),
            ("manifest", "both", binary(&journal)),
            ("manifest", "torn", binary(&torn)),
        ]
    }

    /// A push state as musync saves it, mid-push (with pending files).
    fn push_state_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
        use crate::push::plan::Pushed;

        let dir = tempfile::tempdir().unwrap();
        let mut state = State {
            remote: "nas:music".into(),
            complete_for: Some("1234:1700000000123456789/99:1700000000223456789".into()),
            ..State::default()
        };
        let pushed = |size| Pushed {
            size,
            hash: "c".repeat(64),
            mtime: None,
        };
        state
            .files
            .insert("Jazz/Miles/01 So What.mp3".into(), pushed(345_678));
        state
            .files
            .insert("Ünïcødé/日本 語/x.mp3".into(), pushed(1));
        state.pending.insert("Rock/é/CD1/02.mp3".into(), pushed(0));
        state.save(dir.path()).unwrap();
        let saved = walkdir::WalkDir::new(dir.path())
            .into_iter()
            .map(Result::unwrap)
            .find(|e| e.path().extension().is_some_and(|x| x == "bin"))
            .unwrap();
        vec![
            ("push_state", "mid-push", fs::read(saved.path()).unwrap()),
            ("push_state", "mid-push-json", state.to_json()),
        ]
    }
}
