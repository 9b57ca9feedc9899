//! Which staged path each source gets: its own path with an `.mp3` extension, unless another
//! source wants the same file, as the staging folder or a case-insensitive remote sees it. Pure,
//! like the planner it serves.

use std::collections::BTreeMap;

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
) -> BTreeMap<&'a str, String> {
    let mut order: Vec<(&str, SourceKind)> = sources.into_iter().collect();
    order.sort_by_key(|&(rel, kind)| (kind != SourceKind::Lossless, rel));
    // Remote key → (the source that has it, its output as written).
    let mut taken: BTreeMap<String, (&str, String)> = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    for (rel, _) in order {
        let output = output_path(rel);
        let key = remote_key(&output);
        if let Some((first, theirs)) = taken.get(&key) {
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
        taken.insert(key, (rel, output.clone()));
        outputs.insert(rel, output);
    }
    // Each folder once (an album's tracks share theirs), with an output inside it.
    let mut inside: BTreeMap<&str, &String> = BTreeMap::new();
    for o in outputs.values() {
        for (i, _) in o.match_indices('/') {
            inside.entry(&o[..i]).or_insert(o);
        }
    }
    let folders: BTreeMap<String, String> = inside
        .into_iter()
        .map(|(folder, o)| (remote_key(folder), o.clone()))
        .collect();
    outputs.retain(|rel, output| match folders.get(&remote_key(output)) {
        Some(inside) => {
            failures.push(Failure::new(
                *rel,
                format!(
                    "its MP3 {output} would be a file where {inside} needs a folder; rename one \
                     of them"
                ),
            ));
            false
        }
        None => true,
    });
    outputs
}

/// A path as a case-insensitive, normalisation-insensitive file system sees it.
fn remote_key(path: &str) -> String {
    if path.is_ascii() {
        return path.to_ascii_lowercase();
    }
    path.nfd().flat_map(char::to_lowercase).nfc().collect()
}
