//! The manifest: what musync made in the staging tree, from which source, with which settings.
//! It lives in `<staging>/.musync/` as a compact snapshot (`manifest.json`) plus an append-only
//! journal (`journal.jsonl`, one fsynced line per finished file), so a kill -9 loses at most the
//! files in flight. Every change is idempotent, so replaying a journal twice is harmless.
//! This module stores and replays; it decides nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, Stamp};
use crate::scan::SourceKind;
use crate::settings::MirrorSettings;

const FORMAT_VERSION: u32 = 1;
/// The folder in staging that holds musync's own bookkeeping; never part of the mirror.
pub const STATE_DIR: &str = ".musync";

/// One staged file and what it was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Library-relative path of the source.
    pub source: String,
    pub kind: SourceKind,
    pub stamp: Stamp,
    /// sha256 over the source's audio packets only: unchanged by tag edits.
    pub audio_hash: String,
    /// sha256 of the source's tags and embedded cover.
    pub tag_hash: String,
    /// The encoder settings the output was made with.
    pub encoder: String,
    /// Everything the staged tags were derived from (source tags, folder cover, ID3 version).
    pub tag_key: String,
    /// Staging-relative path of the output.
    pub output: String,
    pub output_stamp: Stamp,
    pub output_hash: String,
    /// The output's hash before its last tag rewrite: a file still holding it has the right
    /// audio and only needs its tags written again (the rewrite was journaled, then killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retag_from: Option<String>,
    /// The source's own genre values, and the genre the staged file was given.
    #[serde(default)]
    pub own_genre: Vec<String>,
    #[serde(default)]
    pub genre: Vec<String>,
}

/// One journal change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "a few per journal line, never stored in bulk"
)]
pub enum Change {
    Put(Record),
    Remove(String),
    /// A staged file musync made that no record owns any more (its move may not have happened):
    /// the next run deletes it if it is still there.
    Orphan(String),
    Forget(String),
    /// The settings this and later runs work with.
    Settings(MirrorSettings),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub records: BTreeMap<String, Record>,
    pub orphans: BTreeSet<String>,
    /// The settings the staged files were made with; `None` before the first run.
    #[serde(default)]
    pub settings: Option<MirrorSettings>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    #[serde(flatten)]
    manifest: Manifest,
}

impl Manifest {
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Put(r) => {
                self.records.insert(r.source.clone(), r);
            }
            Change::Remove(source) => {
                self.records.remove(&source);
            }
            Change::Orphan(output) => {
                self.orphans.insert(output);
            }
            Change::Forget(output) => {
                self.orphans.remove(&output);
            }
            Change::Settings(settings) => self.settings = Some(settings),
        }
    }

    /// Whether musync made the staged file at `output` (a record's output or an orphan).
    pub fn owns(&self, output: &str) -> bool {
        self.orphans.contains(output) || self.records.values().any(|r| r.output == output)
    }
}

pub fn state_dir(staging: &Path) -> PathBuf {
    staging.join(STATE_DIR)
}

/// Identifies the manifest's content without reading it: the size and mtime of its two files,
/// which every change rewrites or appends to.
pub fn fingerprint(staging: &Path) -> String {
    let stamp = |p: PathBuf| Stamp::of(&p).map(|s| format!("{}:{}", s.size, s.mtime_ns));
    let (snapshot, journal) = (stamp(snapshot_path(staging)), stamp(journal_path(staging)));
    format!(
        "{}/{}",
        snapshot.unwrap_or_default(),
        journal.unwrap_or_default()
    )
}

fn snapshot_path(staging: &Path) -> PathBuf {
    state_dir(staging).join("manifest.json")
}

fn journal_path(staging: &Path) -> PathBuf {
    state_dir(staging).join("journal.jsonl")
}

/// Load the snapshot and replay the journal. A missing manifest is an empty one.
pub fn load(staging: &Path) -> anyhow::Result<Manifest> {
    let path = snapshot_path(staging);
    let mut manifest = match fs::read(&path) {
        Ok(bytes) => {
            let snap: Snapshot = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "manifest {} is damaged; move it away to start over (musync will then \
                     leave the files already in staging alone)",
                    path.display()
                )
            })?;
            if snap.version != FORMAT_VERSION {
                bail!(
                    "manifest {} has format {}, this musync reads {FORMAT_VERSION}",
                    path.display(),
                    snap.version
                );
            }
            snap.manifest
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    replay(&journal_path(staging), &mut manifest)?;
    Ok(manifest)
}

fn replay(path: &Path, manifest: &mut Manifest) -> anyhow::Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut lines = BufReader::new(file).lines().peekable();
    let mut number = 0;
    while let Some(line) = lines.next() {
        number += 1;
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        match serde_json::from_str::<Vec<Change>>(&line) {
            Ok(changes) => changes.into_iter().for_each(|c| manifest.apply(c)),
            // A kill -9 in the middle of an append leaves a torn last line: that file was in flight.
            Err(_) if lines.peek().is_none() => {}
            Err(e) => bail!("journal {} line {number} is damaged: {e}", path.display()),
        }
    }
    Ok(())
}

/// Write a compact snapshot atomically and drop the journal it absorbed.
pub fn save(staging: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let snap = Snapshot {
        version: FORMAT_VERSION,
        manifest: manifest.clone(),
    };
    let bytes = serde_json::to_vec(&snap).context("serialising the manifest")?;
    fsutil::write_atomic(&snapshot_path(staging), &bytes)?;
    match fs::remove_file(journal_path(staging)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).context("removing the absorbed journal")
        }
        _ => Ok(()),
    }
}

/// Appends changes to the journal, one durable line per call.
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    pub fn open(staging: &Path) -> anyhow::Result<Journal> {
        let path = journal_path(staging);
        fs::create_dir_all(state_dir(staging))
            .with_context(|| format!("creating {}", state_dir(staging).display()))?;
        // A torn last line from a killed run is cut off, so our first line does not glue onto it.
        if let Ok(bytes) = fs::read(&path)
            && !bytes.ends_with(b"\n")
        {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(keep as u64))
                .with_context(|| format!("repairing {}", path.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Journal { file, path })
    }

    pub fn append(&mut self, changes: &[Change]) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(changes).context("serialising a journal line")?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn record(source: &str, output: &str) -> Record {
        Record {
            source: source.into(),
            kind: SourceKind::Lossless,
            stamp: Stamp {
                size: 1,
                mtime_ns: 2,
            },
            audio_hash: "a".into(),
            tag_hash: "t".into(),
            encoder: "V2".into(),
            tag_key: "k".into(),
            output: output.into(),
            output_stamp: Stamp {
                size: 3,
                mtime_ns: 4,
            },
            output_hash: "o".into(),
            retag_from: None,
            own_genre: vec![],
            genre: vec![],
        }
    }

    #[test]
    fn journal_replays_over_snapshot_and_survives_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.apply(Change::Put(record("a.flac", "a.mp3")));
        save(dir.path(), &m).unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&[Change::Put(record("b.flac", "b.mp3"))]).unwrap();
        j.append(&[
            Change::Remove("a.flac".into()),
            Change::Orphan("a.mp3".into()),
        ])
        .unwrap();
        drop(j);
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal_path(dir.path()))
            .unwrap();
        f.write_all(br#"[{"put":{"sou"#).unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.records.keys().collect::<Vec<_>>(), ["b.flac"]);
        assert!(loaded.owns("a.mp3") && loaded.owns("b.mp3") && !loaded.owns("c.mp3"));
        // A later run appends after the torn line and both survive the next load.
        Journal::open(dir.path())
            .unwrap()
            .append(&[Change::Forget("a.mp3".into())])
            .unwrap();
        let loaded = load(dir.path()).unwrap();
        assert!(!loaded.owns("a.mp3"));
        save(dir.path(), &loaded).unwrap();
        assert_eq!(load(dir.path()).unwrap(), loaded);
        assert!(!journal_path(dir.path()).exists());
    }

    #[test]
    fn damaged_snapshot_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(state_dir(dir.path())).unwrap();
        fs::write(snapshot_path(dir.path()), b"{not json").unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("manifest.json is damaged"), "{err}");
    }
}
