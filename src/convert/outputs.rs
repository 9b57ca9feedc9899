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
    format!("{}.mp3", stem(source))
}

/// A source's path without its extension (a name that is all extension, `.flac`, keeps it).
fn stem(source: &str) -> &str {
    let stem_end = source
        .rfind('.')
        .filter(|&i| source.rfind('/').is_none_or(|s| i > s + 1))
        .unwrap_or(source.len());
    &source[..stem_end]
}

/// The staged path a source gets: its own with `.mp3` (`output_path`, only made when asked
/// for: a no-op run over 100,000 tracks made 100,000 strings to compare), or a fixed one.
#[derive(Clone, Copy, Debug)]
pub(super) enum Output<'a> {
    /// The source's path.
    Derived(&'a str),
    Fixed(&'a str),
}

impl Output<'_> {
    /// Whether `path` is this output.
    pub fn is(self, path: &str) -> bool {
        match self {
            Output::Derived(source) => {
                let stem = stem(source);
                path.len() == stem.len() + 4 && path.starts_with(stem) && path.ends_with(".mp3")
            }
            Output::Fixed(output) => output == path,
        }
    }

    pub fn path(self) -> String {
        match self {
            Output::Derived(source) => output_path(source),
            Output::Fixed(output) => output.to_string(),
        }
    }
}

/// Each source's output, sorted by source: `None` for its own path with `.mp3`.
#[derive(Debug, Default)]
pub(super) struct Outputs<'a>(Vec<(&'a str, Option<&'a str>)>);

impl<'a> Outputs<'a> {
    /// These sources get these outputs, whatever their own paths.
    pub fn with_fixed(mut self, fixed: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let before = self.0.len();
        self.0.extend(fixed.into_iter().map(|(s, o)| (s, Some(o))));
        if self.0.len() > before {
            // Two sorted runs: one merge.
            self.0.sort_by(|a, b| a.0.cmp(b.0));
            // A fixed output wins over a derived one (stable: it comes second).
            self.0.dedup_by(|fixed, earlier| {
                let same = fixed.0 == earlier.0;
                if same {
                    *earlier = *fixed;
                }
                same
            });
        }
        self
    }

    /// Finds outputs for sources asked in order: see `InOrder`.
    pub fn in_order(&self) -> InOrder<'_, 'a> {
        InOrder {
            outputs: &self.0,
            at: 0,
        }
    }

    #[cfg(test)]
    fn paths(&self) -> BTreeMap<&'a str, String> {
        (self.0.iter()).map(|&o| (o.0, output(o).path())).collect()
    }
}

fn output<'a>((source, fixed): (&'a str, Option<&'a str>)) -> Output<'a> {
    fixed.map_or(Output::Derived(source), Output::Fixed)
}

/// Finds the outputs of sources by stepping through them beside sources that come in order (as
/// `manifest::InOrder` does records): one or two comparisons a source. A source asked for
/// before one already passed searches afresh, so any order is answered right.
pub(super) struct InOrder<'o, 'a> {
    outputs: &'o [(&'a str, Option<&'a str>)],
    /// Every output before it is of a source before the last one asked for.
    at: usize,
}

impl<'a> InOrder<'_, 'a> {
    pub fn get(&mut self, source: &str) -> Option<Output<'a>> {
        if self.at > 0 && source <= self.outputs[self.at - 1].0 {
            self.at = self.outputs.partition_point(|(s, _)| *s < source);
        }
        while let Some(&found) = self.outputs.get(self.at) {
            match found.0.cmp(source) {
                std::cmp::Ordering::Less => self.at += 1,
                std::cmp::Ordering::Equal => return Some(output(found)),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
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
) -> Outputs<'a> {
    assign_with(sources, failures, hash_key)
}

/// `assign_outputs`, with the hash of remote keys given (a test makes every key's the same).
fn assign_with<'a>(
    sources: impl IntoIterator<Item = (&'a str, SourceKind)>,
    failures: &mut Vec<Failure>,
    hash_key: fn(&[u8]) -> u64,
) -> Outputs<'a> {
    let mut order: Vec<(&str, SourceKind)> = sources.into_iter().collect();
    order.sort_by_key(|&(rel, kind)| (kind != SourceKind::Lossless, rel));
    // The hash of each source's remote key, on every core: an output and its key are only
    // made where two hashes meet, so a large library makes almost none.
    let named: Vec<(&str, u64)> = (order.par_iter())
        .map(|&(rel, _)| (rel, key_hash(rel, hash_key)))
        .collect();
    // The sources that got their output, in `order`; where in it the first holder of each
    // key's hash is, and, for the rare key whose hash another key has, of the key itself.
    let mut won: Vec<(&str, u64)> = Vec::with_capacity(named.len());
    let mut taken: FxHashMap<u64, usize> = FxHashMap::default();
    taken.reserve(named.len());
    let mut exact: FxHashMap<String, usize> = FxHashMap::default();
    for (rel, hash) in named {
        let key = || remote_key(&output_path(rel));
        let holder = taken.get(&hash).and_then(|&i| {
            let key = key();
            if remote_key(&output_path(won[i].0)) == key {
                Some(i)
            } else {
                exact.get(&key).copied()
            }
        });
        if let Some(i) = holder {
            let first = won[i].0;
            let (output, theirs) = (output_path(rel), output_path(first));
            let why = if theirs == output {
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
                exact.insert(key(), won.len());
            }
            Entry::Vacant(free) => {
                free.insert(won.len());
            }
        }
        won.push((rel, hash));
    }
    drop((taken, exact));
    // By source: the folder clashes below are found, and told, in the order of the names.
    won.sort_by(|a, b| a.0.cmp(b.0));
    // Each folder once (an album's tracks share theirs), with the first source inside it (an
    // output's folders are its source's). A source in the same folder as the one before it
    // adds no folder.
    let mut inside: BTreeMap<&str, &str> = BTreeMap::new();
    let mut last_folder = None;
    for &(rel, _) in &won {
        let folder = rel.rfind('/').map(|i| &rel[..i]);
        if folder == last_folder {
            continue;
        }
        last_folder = folder;
        for (i, _) in rel.match_indices('/') {
            inside.entry(&rel[..i]).or_insert(rel);
        }
    }
    // Key hash → (remote key, a source inside it); of folders with one key, the last by name.
    let mut folders: FxHashMap<u64, Vec<(String, &str)>> = FxHashMap::default();
    for (folder, rel) in inside {
        let key = remote_key(folder);
        let same = folders.entry(hash_key(key.as_bytes())).or_default();
        match same.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = rel,
            None => same.push((key, rel)),
        }
    }
    let mut outputs = Vec::with_capacity(won.len());
    for (rel, hash) in won {
        let folder = folders.get(&hash).and_then(|same| {
            let key = remote_key(&output_path(rel));
            same.iter()
                .find(|(k, _)| *k == key)
                .map(|&(_, inside)| inside)
        });
        match folder {
            Some(inside) => failures.push(Failure::new(
                rel,
                format!(
                    "its MP3 {} would be a file where {} needs a folder; rename one of them",
                    output_path(rel),
                    output_path(inside)
                ),
            )),
            None => outputs.push((rel, None)),
        }
    }
    Outputs(outputs)
}

/// `hash_key(remote_key(output_path(source)))`, without making the output or its key for a
/// short ASCII path (nearly all).
fn key_hash(source: &str, hash_key: fn(&[u8]) -> u64) -> u64 {
    let stem = stem(source);
    let mut lower = [0; 512];
    match lower.get_mut(..stem.len() + 4) {
        Some(lower) if stem.is_ascii() => {
            lower[..stem.len()].copy_from_slice(stem.as_bytes());
            lower[stem.len()..].copy_from_slice(b".mp3");
            lower.make_ascii_lowercase();
            hash_key(lower)
        }
        _ => hash_key(remote_key(&output_path(source)).as_bytes()),
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
        (outputs.paths(), failures)
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
        /// An output that is not made is what it would be made as: compared, hashed, written.
        #[test]
        fn a_derived_output_is_its_source_with_mp3(
            source in "[aA/.é]{0,8}(\\.(flac|FLAC|mp3))?",
            other in "[aA/.é]{0,8}(\\.(mp3|MP3|flac))?",
        ) {
            let made = output_path(&source);
            let output = Output::Derived(&source);
            prop_assert_eq!(output.path(), made.clone());
            prop_assert!(output.is(&made));
            prop_assert_eq!(output.is(&other), other == made);
            let key = remote_key(&made);
            prop_assert_eq!(key_hash(&source, hash_key), hash_key(key.as_bytes()));
        }

        /// Asked in any order, sorted or not, the merge finds each source's output; a fixed
        /// output wins over its source's own.
        #[test]
        fn in_order_finds_what_get_finds(
            derived in prop::collection::btree_set("[ab/é]{0,4}", 0..16),
            fixed in prop::collection::btree_map("[ab/é]{0,4}", "[xy]{1,3}", 0..6),
            asked in prop::collection::vec("[ab/é]{0,4}", 0..24),
            sorted in any::<bool>(),
        ) {
            let outputs = Outputs(derived.iter().map(|s| (s.as_str(), None)).collect())
                .with_fixed(fixed.iter().map(|(s, o)| (s.as_str(), o.as_str())));
            let mut asked = asked;
            if sorted {
                asked.sort();
            }
            let mut in_order = outputs.in_order();
            for source in &asked {
                let expected = (fixed.get(source).cloned())
                    .or_else(|| derived.contains(source).then(|| output_path(source)));
                prop_assert_eq!(in_order.get(source).map(Output::path), expected);
            }
        }

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
