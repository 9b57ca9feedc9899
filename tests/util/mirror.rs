//! Independent checks of what musync left behind: every staged MP3 decodes to its source's
//! length, the remote equals the mirror, no temporary file is left, a rerun finds nothing to do.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::remotes::Remote;

/// The staged path of each library source: `A/B.flac` and `A/B.mp3` become `A/B.mp3`.
pub fn expected_outputs(library: &Path) -> BTreeMap<String, String> {
    files(library)
        .into_iter()
        .filter_map(|f| {
            let stem = f.strip_suffix(".flac").or(f.strip_suffix(".mp3"))?;
            Some((format!("{stem}.mp3"), f))
        })
        .collect()
}

/// Checks staged MP3s against their sources with ffmpeg, remembering results by content hash
/// so a file is decoded once however many rounds it survives.
#[derive(Default)]
pub struct Lengths {
    /// Source sha256 → the frames its MP3 must decode to.
    wanted: BTreeMap<String, u64>,
    /// Staged sha256 → the frames it decodes to.
    decoded: BTreeMap<String, u64>,
}

impl Lengths {
    /// Every staged MP3 decodes without an error, to its source's length (scaled by the rate
    /// ratio for a 96 kHz source, which becomes 48 kHz; 44.1 kHz stays 44.1 kHz).
    pub fn check(&mut self, env: &Env, context: &str) {
        let library = tree_hashes(&env.library);
        let staged = tree_hashes(&env.staging);
        for (output, source) in expected_outputs(&env.library) {
            let want = *self
                .wanted
                .entry(library[&source].clone())
                .or_insert_with(|| source_frames(&env.lib(&source)));
            let Some(hash) = staged.get(&output) else {
                panic!("{context}: {output} (from {source}) is not staged");
            };
            let got = *self
                .decoded
                .entry(hash.clone())
                .or_insert_with(|| decode_frames(&env.staged(&output), context));
            assert_eq!(got, want, "{context}: {output} decodes to the wrong length");
        }
    }
}

/// The frames a source's MP3 must hold: FLAC's sample count, halved for 96 kHz; a native MP3's
/// own decoded length (it is copied, never re-encoded).
fn source_frames(path: &Path) -> u64 {
    if path.extension().is_some_and(|e| e == "mp3") {
        return decode_frames(path, "the library's own MP3");
    }
    let out = run(Command::new("metaflac")
        .args(["--show-total-samples", "--show-sample-rate"])
        .arg(path));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(|l| l.parse::<u64>().unwrap());
    let (samples, rate) = (lines.next().unwrap(), lines.next().unwrap());
    match rate {
        44_100 | 48_000 => samples,
        96_000 => samples / 2,
        other => panic!("no expected length for {other} Hz"),
    }
}

/// Frames ffmpeg decodes from `path`, which must decode without a single error message.
pub fn decode_frames(path: &Path, context: &str) -> u64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-ac", "1", "-f", "s16le", "-"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        out.status.success() && err.is_empty(),
        "{context}: {} does not decode cleanly: {err}",
        path.display()
    );
    out.stdout.len() as u64 / 2
}

/// The remote's files without the backups folder.
pub fn remote_tree(remote: &Remote) -> BTreeMap<String, String> {
    tree_hashes(&remote.dir)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".musync-backups/"))
        .collect()
}

/// The staged mirror without musync's own folder.
pub fn mirror_tree(env: &Env) -> BTreeMap<String, String> {
    tree_hashes(&env.staging)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".musync/"))
        .collect()
}

/// Temporary or partial files anywhere under `dir`.
pub fn leftovers(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| {
            let name = f.rsplit('/').next().unwrap();
            name.starts_with(".musync-tmp-") || name.ends_with(".partial")
        })
        .collect()
}

/// The folder cover files the mirror holds (`--folder-art`): the library's `cover.jpg` in a
/// folder that still holds a track, in the same place. (The libraries these harnesses make keep
/// their small JPEG covers beside tracks without embedded art, in album folders, not disc ones.)
pub fn expected_covers(library: &Path) -> Vec<String> {
    let all = files(library);
    let has_track = |dir: &str| {
        all.iter().any(|f| {
            f.rsplit_once('/').is_some_and(|(d, _)| d == dir)
                && (f.ends_with(".flac") || f.ends_with(".mp3"))
        })
    };
    all.iter()
        .filter_map(|f| f.strip_suffix("/cover.jpg"))
        .filter(|dir| has_track(dir))
        .map(|dir| format!("{dir}/cover.jpg"))
        .collect()
}

/// The remote equals the mirror, and a second convert and push find nothing to do.
pub fn assert_settled(env: &Env, remote: &Remote, context: &str) {
    for dir in [&env.staging, &remote.dir, &env.library] {
        let left = leftovers(dir);
        assert!(left.is_empty(), "{context}: leftovers {left:?}");
    }
    let staged: Vec<String> = mirror_tree(env).into_keys().collect();
    let mut wanted: Vec<String> = expected_outputs(&env.library).into_keys().collect();
    wanted.extend(expected_covers(&env.library));
    wanted.sort();
    assert_eq!(
        staged, wanted,
        "{context}: staging is not the library's mirror"
    );
    assert_eq!(
        remote_tree(remote),
        mirror_tree(env),
        "{context}: the remote is not the mirror"
    );
    let (json, code) = env.convert_json(&[]);
    let counts = ["converted", "retagged", "renamed", "removed"].map(|k| json[k].as_u64());
    assert_eq!(
        (code, counts),
        (0, [Some(0); 4]),
        "{context}: the manifest does not match the disk: {json}"
    );
    let (json, out) = env.run("push").json().remote(remote).parsed();
    let counts = ["uploaded", "moved", "deleted", "backed_up"].map(|k| json[k].as_u64());
    assert_eq!(
        (out.status.code(), counts),
        (Some(0), [Some(0); 4]),
        "{context}: the push state does not match the remote: {json} {}",
        stderr(&out)
    );
}
