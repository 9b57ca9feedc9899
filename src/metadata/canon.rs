//! Canonical fields: turn raw (key, value) pairs from any tag format into the sorted, deduplicated
//! `TagSet::fields` form. Pure; no I/O. Decides which source keys survive, not how they are written.

use std::collections::BTreeMap;

/// Source keys never carried into the mirror. Encoder identity describes the *source* file (the
/// FLAC vendor string, "reference libFLAC ...", must not pose as the MP3's encoder); the rest are
/// format-specific bookkeeping that is wrong or meaningless once the audio is re-encoded.
const DROPPED: &[&str] = &[
    "encoder",
    "encoded_by",
    "encodedby",
    "encoded-by",
    "encoded by",
    "encoding",
    "encodersettings",
    "encoder_settings",
    "encoderoptions",
    "encoder_options",
    "vendor",
    // iTunes gapless/normalisation data of the source encode, not of our MP3.
    "itunsmpb",
    "itunnorm",
    "itunpgap",
    // Opus-only gain (Q7.8 against -23 LUFS); misread as ReplayGain elsewhere.
    "r128_track_gain",
    "r128_album_gain",
    // Embedded rip logs and cue sheets are huge and useless in a lossy mirror.
    "cuesheet",
    "log",
    "eac log",
    "waveformatextensible_channel_mask",
    "length",
    // Pictures are handled as `TagSet::cover`, never as text.
    "metadata_block_picture",
    "coverart",
    "coverartmime",
];

/// Spelling variants folded onto one canonical key (Picard's Vorbis names).
const ALIASES: &[(&str, &str)] = &[
    ("album artist", "albumartist"),
    ("album_artist", "albumartist"),
    ("totaltracks", "tracktotal"),
    ("totaldiscs", "disctotal"),
    ("track", "tracknumber"),
    ("disc", "discnumber"),
    ("unsyncedlyrics", "lyrics"),
    ("unsynced lyrics", "lyrics"),
    ("description", "comment"),
    ("organization", "label"),
    ("publisher", "label"),
    ("mixartist", "remixer"),
    ("initialkey", "key"),
    ("musicbrainz_albumtype", "releasetype"),
    ("musicbrainz_albumstatus", "releasestatus"),
    ("album artists", "albumartists"),
];

/// Keys whose second form only fills in when the first is missing: YEAR is a worse DATE.
const FALLBACKS: &[(&str, &str)] = &[("year", "date"), ("originalyear", "originaldate")];

/// Number pairs: the number key may hold "n/N"; the total key only fills in if absent.
const PAIRS: &[(&str, &str)] = &[
    ("tracknumber", "tracktotal"),
    ("discnumber", "disctotal"),
    ("movement", "movementtotal"),
];

/// Canonical fields from raw pairs in source order: keys lowercased and de-aliased, values
/// trimmed, empty values and exact duplicates dropped (value order kept), sorted by key.
pub(super) fn canonical_fields<K, V>(
    raw: impl IntoIterator<Item = (K, V)>,
) -> Vec<(String, Vec<String>)>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in raw {
        let key = k.as_ref().trim().to_lowercase();
        // Trailing NULs come from sloppy writers that count the C terminator.
        let value = v
            .as_ref()
            .trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if key.is_empty() || value.is_empty() || DROPPED.contains(&key.as_str()) {
            continue;
        }
        let key = ALIASES
            .iter()
            .find(|(from, _)| *from == key)
            .map_or(key, |(_, to)| (*to).to_owned());
        let values = map.entry(key).or_default();
        if !values.iter().any(|x| x == value) {
            values.push(value.to_owned());
        }
    }
    for (weak, strong) in FALLBACKS {
        if let Some(v) = map.remove(*weak) {
            map.entry((*strong).to_owned()).or_insert(v);
        }
    }
    for (number, total) in PAIRS {
        split_pair(&mut map, number, total);
    }
    // A compilation flag is present or absent; "0"/"false" mean absent.
    if let Some(v) = map.remove("compilation")
        && v.iter().any(|x| is_truthy(x))
    {
        map.insert("compilation".into(), vec!["1".into()]);
    }
    map.into_iter().collect()
}

/// "3/12" in the number key becomes number "3" and (unless already set) total "12"; both keep a
/// single value, numeric ones without leading zeros ("03" → "3").
fn split_pair(map: &mut BTreeMap<String, Vec<String>>, number: &str, total: &str) {
    if let Some(first) = map.get(number).and_then(|v| v.first()).cloned() {
        let (n, t) = match first.split_once('/') {
            Some((n, t)) => (n.trim().to_owned(), Some(t.trim().to_owned())),
            None => (first, None),
        };
        set_one(map, number, &n);
        if let Some(t) = t
            && !map.contains_key(total)
        {
            set_one(map, total, &t);
        }
    }
    if let Some(first) = map.get(total).and_then(|v| v.first()).cloned() {
        set_one(map, total, &first);
    }
}

fn set_one(map: &mut BTreeMap<String, Vec<String>>, key: &str, value: &str) {
    let value = normalize_number(value);
    if value.is_empty() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), vec![value]);
    }
}

/// "03" → "3"; anything not a plain number (vinyl "A1") is kept as is.
pub(super) fn normalize_number(s: &str) -> String {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let t = s.trim_start_matches('0');
        if t.is_empty() { "0".into() } else { t.into() }
    } else {
        s.into()
    }
}

fn is_truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "y"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(raw: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
        canonical_fields(raw.iter().copied())
    }

    fn get<'a>(f: &'a [(String, Vec<String>)], key: &str) -> Option<Vec<&'a str>> {
        f.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.iter().map(String::as_str).collect())
    }

    #[test]
    fn sorted_lowercased_multivalue_dedup() {
        let f = canon(&[
            ("TITLE", "x"),
            ("ARTIST", "a"),
            ("artist", "b"),
            ("Artist", "a"),
            ("GENRE", " Rock "),
            ("GENRE", ""),
            ("Album Artist", "aa"),
        ]);
        let keys: Vec<_> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["albumartist", "artist", "genre", "title"]);
        assert_eq!(get(&f, "artist").unwrap(), ["a", "b"]);
        assert_eq!(get(&f, "genre").unwrap(), ["Rock"]);
    }

    #[test]
    fn track_pairs_are_normalised() {
        let f = canon(&[("TRACKNUMBER", "03/12"), ("DISCNUMBER", "1")]);
        assert_eq!(get(&f, "tracknumber").unwrap(), ["3"]);
        assert_eq!(get(&f, "tracktotal").unwrap(), ["12"]);
        assert_eq!(get(&f, "discnumber").unwrap(), ["1"]);
        assert_eq!(get(&f, "disctotal"), None);
        // An explicit total wins over the one embedded in the number.
        let f = canon(&[("TRACKNUMBER", "3/12"), ("TOTALTRACKS", "013")]);
        assert_eq!(get(&f, "tracktotal").unwrap(), ["13"]);
        let f = canon(&[
            ("TRACKNUMBER", "A1"),
            ("TRACKTOTAL", "9"),
            ("TRACKTOTAL", "10"),
        ]);
        assert_eq!(get(&f, "tracknumber").unwrap(), ["A1"]);
        assert_eq!(get(&f, "tracktotal").unwrap(), ["9"]);
        let f = canon(&[("TRACKNUMBER", "/12")]);
        assert_eq!(get(&f, "tracknumber"), None);
        assert_eq!(get(&f, "tracktotal").unwrap(), ["12"]);
        assert_eq!(normalize_number("000"), "0");
    }

    #[test]
    fn drops_encoder_and_folds_aliases() {
        let f = canon(&[
            ("ENCODER", "x"),
            ("ENCODED_BY", "y"),
            ("ENCODERSETTINGS", "z"),
            ("YEAR", "1999"),
            ("ORIGINALYEAR", "1990"),
            ("ORIGINALDATE", "1990-05-01"),
            ("COMPILATION", "0"),
            ("UNSYNCEDLYRICS", "la la"),
            ("ORGANIZATION", "Label"),
        ]);
        let keys: Vec<_> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["date", "label", "lyrics", "originaldate"]);
        assert_eq!(get(&f, "date").unwrap(), ["1999"]);
        assert_eq!(get(&f, "originaldate").unwrap(), ["1990-05-01"]);
        let f = canon(&[("COMPILATION", "true"), ("DATE", "2001"), ("YEAR", "1999")]);
        assert_eq!(get(&f, "compilation").unwrap(), ["1"]);
        assert_eq!(get(&f, "date").unwrap(), ["2001"]);
        assert_eq!(get(&f, "year"), None);
    }
}
