//! Which staged path each source gets: its own path with an `.mp3` extension, unless another
//! source wants the same file, as the staging folder or a case-insensitive remote sees it. Pure,
//! like the planner it serves.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::hash::Hasher as _;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHasher};
use unicode_normalization::UnicodeNormalization;

use crate::report::Failure;
use crate::scan::SourceKind;

/// The staged file a source becomes.
pub fn output_path(source: &str) -> String {
    let stem_end = source
        .rfind('.')
        .filter(|&i| source.rfind('/').is_none_or(|s| i > s + 1))
        .unwrap_or(source.len());
    format!("{}.mp3", &source[..stem_end])
}

/// Give each source its output path. When two sources want the same one (`Song.flac` and
/// `Song.mp3` side by side), or ones that differ only in letter case or Unicode normalisation
/// (`Song.flac` and `song.flac`, `Café` in NFC and in NFD), which a Windows or SMB share or
/// macOS stores as one file, lossless wins before MP3, then the first by name; the others fail
/// with a message naming both. So does an output that would be a file where other outputs need
/// a folder (`x.flac` beside a folder `x.mp3/`). The winner depends on the library alone, never
/// on which source was mirrored first, so an incremental run gives what a fresh convert gives.
/// The sources come as (relative path, kind), so this helper of the planner needs none of its
/// types.
pub(super) fn assign_outputs<'a>(
    sources: impl IntoIterator<Item = (&'a str, SourceKind)>,
    failures: &mut Vec<Failure>,
) -> FxHashMap<&'a str, String> {
    assign_with(sources, failures, hash_key)
}

/// `assign_outputs`, with the hash of remote keys given (a test makes every key's the same).
fn assign_with<'a>(
    sources: impl IntoIterator<Item = (&'a str, SourceKind)>,
    failures: &mut Vec<Failure>,
    hash_key: fn(&[u8]) -> u64,
) -> FxHashMap<&'a str, String> {
    let mut order: Vec<(&str, SourceKind)> = sources.into_iter().collect();
    order.sort_by_key(|&(rel, kind)| (kind != SourceKind::Lossless, rel));
    // Each source's output and the hash of its remote key, on every core: a key itself is only
    // built where two hashes meet, so a large library builds almost none.
    let named: Vec<(&str, String, u64)> = (order.par_iter())
        .map(|&(rel, _)| {
            let output = output_path(rel);
            let hash = key_hash(&output, hash_key);
            (rel, output, hash)
        })
        .collect();
    // The sources that got their output, in `order`; where in it the first holder of each
    // key's hash is, and, for the rare key whose hash another key has, of the key itself.
    let mut won: Vec<(&str, String, u64)> = Vec::with_capacity(named.len());
    let mut taken: FxHashMap<u64, usize> = FxHashMap::default();
    taken.reserve(named.len());
    let mut exact: FxHashMap<String, usize> = FxHashMap::default();
    for (rel, output, hash) in named {
        let holder = taken.get(&hash).and_then(|&i| {
            let key = remote_key(&output);
            if remote_key(&won[i].1) == key {
                Some(i)
            } else {
                exact.get(&key).copied()
            }
        });
        if let Some(i) = holder {
            let (first, theirs, _) = &won[i];
            let why = if *theirs == output {
                format!(
                    "its MP3 {output} would collide with the one made from {first}; rename one \
                     of them"
                )
            } else if output.nfc().eq(theirs.nfc()) {
                format!(
                    "its name and {first}'s are the same text in two Unicode forms (NFC and \
                     NFD), so their MP3s would be one file on a Windows, SMB or macOS remote; \
                     rename one of them"
                )
            } else {
                format!(
                    "its MP3 {output} and {theirs} (made from {first}) differ only in letter \
                     case, so a Windows, SMB or macOS remote would hold them as one file; \
                     rename one of them"
                )
            };
            failures.push(Failure::new(rel, why));
            continue;
        }
        match taken.entry(hash) {
            Entry::Occupied(_) => {
                exact.insert(remote_key(&output), won.len());
            }
            Entry::Vacant(free) => {
                free.insert(won.len());
            }
        }
        won.push((rel, output, hash));
    }
    drop((taken, exact));
    // By source: the folder clashes below are found, and told, in the order of the names.
    won.sort_by(|a, b| a.0.cmp(b.0));
    // Each folder once (an album's tracks share theirs), with the first output inside it. An
    // output in the same folder as the one before it adds no folder.
    let mut inside: BTreeMap<&str, &String> = BTreeMap::new();
    let mut last_folder = None;
    for (_, o, _) in &won {
        let folder = o.rfind('/').map(|i| &o[..i]);
        if folder == last_folder {
            continue;
        }
        last_folder = folder;
        for (i, _) in o.match_indices('/') {
            inside.entry(&o[..i]).or_insert(o);
        }
    }
    // Key hash → (remote key, an output inside it); of folders with one key, the last by name.
    let mut folders: FxHashMap<u64, Vec<(String, String)>> = FxHashMap::default();
    for (folder, o) in inside {
        let key = remote_key(folder);
        let same = folders.entry(hash_key(key.as_bytes())).or_default();
        match same.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1.clone_from(o),
            None => same.push((key, o.clone())),
        }
    }
    let mut outputs = FxHashMap::default();
    outputs.reserve(won.len());
    for (rel, output, hash) in won {
        let folder = folders.get(&hash).and_then(|same| {
            let key = remote_key(&output);
            same.iter().find(|(k, _)| *k == key).map(|(_, o)| o)
        });
        match folder {
            Some(inside) => failures.push(Failure::new(
                rel,
                format!(
                    "its MP3 {output} would be a file where {inside} needs a folder; rename one \
                     of them"
                ),
            )),
            None => {
                outputs.insert(rel, output);
            }
        }
    }
    outputs
}

/// `hash_key(remote_key(path))`, without building the key for a short ASCII path (nearly all).
fn key_hash(path: &str, hash_key: fn(&[u8]) -> u64) -> u64 {
    let mut lower = [0; 512];
    match lower.get_mut(..path.len()) {
        Some(lower) if path.is_ascii() => {
            lower.copy_from_slice(path.as_bytes());
            lower.make_ascii_lowercase();
            hash_key(lower)
        }
        _ => hash_key(remote_key(path).as_bytes()),
    }
}

fn hash_key(key: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(key);
    hasher.finish()
}

/// A path as a case-insensitive, normalisation-insensitive file system sees it.
fn remote_key(path: &str) -> String {
    if path.is_ascii() {
        return path.to_ascii_lowercase();
    }
    path.nfd().flat_map(char::to_lowercase).nfc().collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn assigned(
        sources: &[(String, SourceKind)],
        hash_key: fn(&[u8]) -> u64,
    ) -> (BTreeMap<&str, String>, Vec<Failure>) {
        let mut failures = Vec::new();
        let sources = sources.iter().map(|(rel, kind)| (rel.as_str(), *kind));
        let outputs = assign_with(sources, &mut failures, hash_key);
        (outputs.into_iter().collect(), failures)
    }

    fn source() -> impl Strategy<Value = String> {
        let folder = prop::sample::select(vec!["", "A/", "a/", "A/B/", "a/b/", "x.mp3/", "X.MP3/"]);
        let name =
            prop::sample::select(vec!["x", "X", "y", "Caf\u{e9}", "Cafe\u{301}", "CAF\u{c9}"]);
        let ext = prop::sample::select(vec!["flac", "mp3", "FLAC", "wav"]);
        (folder, name, ext).prop_map(|(folder, name, ext)| format!("{folder}{name}.{ext}"))
    }

    fn kind_of(rel: &str) -> SourceKind {
        if rel.to_ascii_lowercase().ends_with(".mp3") {
            SourceKind::Mp3
        } else {
            SourceKind::Lossless
        }
    }

    proptest! {
        /// Keys whose hashes meet are told apart by the keys themselves: with every key hashed
        /// alike, or by its length only, the outputs and the failures are the same.
        #[test]
        fn keys_whose_hashes_meet_are_compared_as_keys(
            sources in prop::collection::btree_set(source(), 0..24)
        ) {
            let sources: Vec<(String, SourceKind)> =
                sources.into_iter().map(|rel| (rel.clone(), kind_of(&rel))).collect();
            let real = assigned(&sources, hash_key);
            prop_assert_eq!(&assigned(&sources, |_| 0), &real);
            prop_assert_eq!(&assigned(&sources, |k| k.len() as u64), &real);
        }
    }

    #[test]
    fn case_twins_and_a_file_where_a_folder_must_be_fail() {
        let sources = [
            ("A/x.flac".to_string(), SourceKind::Lossless),
            ("a/X.flac".to_string(), SourceKind::Lossless),
            ("A/x.mp3".to_string(), SourceKind::Mp3),
            ("x.flac".to_string(), SourceKind::Lossless),
            ("X.mp3/y.flac".to_string(), SourceKind::Lossless),
        ];
        for hash in [hash_key, |_: &[u8]| 0] {
            let (outputs, failures) = assigned(&sources, hash);
            let won: Vec<&str> = outputs.keys().copied().collect();
            assert_eq!(won, ["A/x.flac", "X.mp3/y.flac"]);
            let lost: Vec<&str> = failures.iter().map(|f| f.path.as_str()).collect();
            assert_eq!(lost, ["a/X.flac", "A/x.mp3", "x.flac"]);
        }
    }
}
