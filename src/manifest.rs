//! The manifest: what musync made in the staging tree, from which source, with which settings.
//! It lives in `<staging>/.musync/` as a compact binary snapshot (`manifest.bin`, see
//! `snapshot`) plus an append-only journal (`journal.jsonl`, one fsynced line per finished file),
//! so a kill -9 loses at most the files in flight. Every change is idempotent, so replaying a
//! journal twice is harmless. A run that changed a few files only appends to the journal; the
//! snapshot is rewritten once the journal has grown past a quarter of it. A `manifest.json`
//! (format 1) is still read, and rewritten as `manifest.bin` by the first run that takes the
//! writer's lock. This module stores and replays; it decides nothing.

mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::fsutil::{self, Stamp};
use crate::relpath;
use crate::scan::SourceKind;
use crate::settings::MirrorSettings;

/// The format of `manifest.json`, which is read but no longer written.
const JSON_VERSION: u32 = 1;
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
    pub audio_hash: Digest,
    /// sha256 of the source's tags and embedded cover.
    pub tag_hash: Digest,
    /// The encoder settings the output was made with (one text, shared by the records).
    pub encoder: Arc<str>,
    /// Everything the staged tags were derived from (source tags, folder cover, ID3 version).
    pub tag_key: Digest,
    /// Staging-relative path of the output.
    pub output: String,
    pub output_stamp: Stamp,
    pub output_hash: Digest,
    /// The output's hash before its last tag rewrite: a file still holding it has the right
    /// audio and only needs its tags written again (the rewrite was journaled, then killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retag_from: Option<Digest>,
    /// The source's own genre values, and the genre the staged file was given.
    #[serde(default)]
    pub own_genre: Vec<String>,
    #[serde(default)]
    pub genre: Vec<String>,
}

/// One journal change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "a few per journal line, never stored in bulk; below the lint's threshold since \
              the settings grew, above it as the record grows"
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

impl Record {
    fn check(&self) -> Result<(), relpath::Unsafe> {
        relpath::check(&self.source)?;
        relpath::check(&self.output).map(drop)
    }
}

impl Change {
    /// The paths it names are clean and relative.
    fn check(&self) -> Result<(), relpath::Unsafe> {
        match self {
            Change::Put(r) => r.check(),
            Change::Remove(p) | Change::Orphan(p) | Change::Forget(p) => {
                relpath::check(p).map(drop)
            }
            Change::Settings(_) => Ok(()),
        }
    }
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

    /// Every path is clean and relative (see `relpath`); every record is filed under its source.
    fn check(&self) -> Result<(), String> {
        for (source, r) in &self.records {
            if *source != r.source {
                return Err(format!("record {source:?} holds source {:?}", r.source));
            }
            r.check().map_err(|e| e.to_string())?;
        }
        let orphans = self.orphans.iter().map(|o| relpath::check(o).map(drop));
        orphans
            .collect::<Result<(), _>>()
            .map_err(|e| e.to_string())
    }

    /// Whether musync made the staged file at `output` (a record's output or an orphan).
    pub fn owns(&self, output: &str) -> bool {
        self.orphans.contains(output) || self.records.values().any(|r| r.output == output)
    }

    /// Finds the records of sources asked for in order (a scan's are sorted): see `InOrder`.
    pub fn in_order(&self) -> InOrder<'_> {
        let mut rest = self.records.range::<str, _>(..);
        InOrder {
            records: &self.records,
            next: rest.next(),
            rest,
            behind: None,
        }
    }
}

/// Finds records by source, stepping through the manifest beside sources that come in order:
/// a merge, not a search each (at 100,000 tracks, no index to build and one or two comparisons
/// a source). A source asked for before one already passed seeks afresh: any order is answered
/// right, sorted order fast.
pub struct InOrder<'a> {
    records: &'a BTreeMap<String, Record>,
    rest: std::collections::btree_map::Range<'a, String, Record>,
    /// The first record not stepped past.
    next: Option<(&'a String, &'a Record)>,
    /// The last record stepped past: every record up to it has been.
    behind: Option<&'a str>,
}

impl<'a> InOrder<'a> {
    pub fn get(&mut self, source: &str) -> Option<&'a Record> {
        if self.behind.is_some_and(|b| source <= b) {
            let (before, from) = (Bound::Excluded(source), Bound::Included(source));
            let before = (self.records.range::<str, _>((Bound::Unbounded, before))).next_back();
            self.behind = before.map(|(key, _)| key.as_str());
            self.rest = self.records.range::<str, _>((from, Bound::Unbounded));
            self.next = self.rest.next();
        }
        while let Some((key, record)) = self.next {
            match key.as_str().cmp(source) {
                std::cmp::Ordering::Less => {
                    self.behind = Some(key);
                    self.next = self.rest.next();
                }
                std::cmp::Ordering::Equal => return Some(record),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

pub fn state_dir(staging: &Path) -> PathBuf {
    staging.join(STATE_DIR)
}

/// Identifies the manifest's content without reading it: the size and mtime of its snapshot
/// (the one `load` reads) and journal, which every change rewrites or appends to.
pub fn fingerprint(staging: &Path) -> String {
    let stamp = |p: PathBuf| Stamp::of(&p).map(|s| format!("{}:{}", s.size, s.mtime_ns));
    let snapshot = stamp(snapshot_path(staging)).or_else(|| stamp(json_path(staging)));
    let journal = stamp(journal_path(staging));
    format!(
        "{}/{}",
        snapshot.unwrap_or_default(),
        journal.unwrap_or_default()
    )
}

/// The snapshot's path relative to the staging folder.
pub const SNAPSHOT: &str = ".musync/manifest.bin";
/// The snapshot of format 1: read when there is no `SNAPSHOT`, removed when one is written.
pub const JSON_SNAPSHOT: &str = ".musync/manifest.json";

/// The snapshot is rewritten when the journal has grown past this fraction of it.
const COMPACT_AT: u64 = 4;

fn snapshot_path(staging: &Path) -> PathBuf {
    staging.join(SNAPSHOT)
}

fn json_path(staging: &Path) -> PathBuf {
    staging.join(JSON_SNAPSHOT)
}

fn journal_path(staging: &Path) -> PathBuf {
    state_dir(staging).join("journal.jsonl")
}

/// Load the snapshot and replay the journal. A missing manifest is an empty one.
///
/// A run may compact the journal into a new snapshot between the two reads (a reader does not
/// wait for a writer): the old snapshot without its journal would be the manifest of before
/// that run. So the pair is read again until the files did not change meanwhile.
pub fn load(staging: &Path) -> anyhow::Result<Manifest> {
    let read = |path: PathBuf| match fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut tries = 0;
    loop {
        let before = fingerprint(staging);
        let snapshot = match read(snapshot_path(staging))? {
            Some(bytes) => Some((Format::Binary, bytes)),
            None => read(json_path(staging))?.map(|bytes| (Format::Json, bytes)),
        };
        let journal = read(journal_path(staging))?;
        tries += 1;
        if tries == 10 || fingerprint(staging) == before {
            let snapshot = snapshot.as_ref().map(|(f, b)| (*f, b.as_slice()));
            return parse_as(staging, snapshot, journal.as_deref());
        }
    }
}

#[derive(Clone, Copy)]
enum Format {
    Binary,
    Json,
}

/// The manifest from the bytes of its snapshot (either format, told by its first bytes) and
/// journal (`None`: that file does not exist). `staging` only names the files in errors. Every
/// path in it is checked: a manifest that could make musync write or delete outside the staging
/// folder is damaged.
pub fn parse(
    staging: &Path,
    snapshot: Option<&[u8]>,
    journal: Option<&[u8]>,
) -> anyhow::Result<Manifest> {
    let format = |bytes: &[u8]| {
        if bytes.starts_with(snapshot::MAGIC) {
            Format::Binary
        } else {
            Format::Json
        }
    };
    parse_as(staging, snapshot.map(|b| (format(b), b)), journal)
}

fn parse_as(
    staging: &Path,
    snapshot: Option<(Format, &[u8])>,
    journal: Option<&[u8]>,
) -> anyhow::Result<Manifest> {
    const START_OVER: &str = "move it away to start over (musync will then leave the files \
                              already in staging alone)";
    let mut manifest = match snapshot {
        Some((Format::Binary, bytes)) => {
            let path = snapshot_path(staging);
            let manifest = snapshot::decode(bytes).map_err(|e| match e {
                snapshot::Unreadable::Format(n) => anyhow!(
                    "manifest {} has format {n}, this musync reads {} (a newer musync wrote it?)",
                    path.display(),
                    snapshot::VERSION
                ),
                snapshot::Unreadable::Damaged(why) => anyhow!(
                    "manifest {} is damaged: {why}; {START_OVER}",
                    path.display()
                ),
            })?;
            if let Err(why) = manifest.check() {
                bail!(
                    "manifest {} is damaged: {why}; {START_OVER}",
                    path.display()
                );
            }
            manifest
        }
        Some((Format::Json, bytes)) => {
            let path = json_path(staging);
            let snap: Snapshot = serde_json::from_slice(bytes)
                .with_context(|| format!("manifest {} is damaged; {START_OVER}", path.display()))?;
            if snap.version != JSON_VERSION {
                bail!(
                    "manifest {} has format {}, this musync reads {JSON_VERSION}",
                    path.display(),
                    snap.version
                );
            }
            if let Err(why) = snap.manifest.check() {
                bail!(
                    "manifest {} is damaged: {why}; {START_OVER}",
                    path.display()
                );
            }
            snap.manifest
        }
        None => Manifest::default(),
    };
    if let Some(journal) = journal {
        replay(&journal_path(staging), journal, &mut manifest)?;
    }
    Ok(manifest)
}

fn replay(path: &Path, journal: &[u8], manifest: &mut Manifest) -> anyhow::Result<()> {
    // Lines as `BufRead::lines` splits them; a `\r` before the `\n` is JSON whitespace.
    let journal = journal.strip_suffix(b"\n").unwrap_or(journal);
    let mut lines = journal
        .split(|&b| b == b'\n')
        .take_while(|_| !journal.is_empty())
        .peekable();
    let mut number = 0;
    while let Some(line) = lines.next() {
        number += 1;
        match serde_json::from_slice::<Vec<Change>>(line) {
            Ok(changes) => {
                if let Some(why) = changes.iter().find_map(|c| c.check().err()) {
                    bail!("journal {} line {number} is damaged: {why}", path.display());
                }
                changes.into_iter().for_each(|c| manifest.apply(c));
            }
            // A kill -9 in the middle of an append leaves a torn last line: that file was in flight.
            Err(_) if lines.peek().is_none() => {}
            Err(e) => bail!("journal {} line {number} is damaged: {e}", path.display()),
        }
    }
    Ok(())
}

/// The snapshot file's bytes for `manifest`.
pub fn to_bytes(manifest: &Manifest) -> anyhow::Result<Vec<u8>> {
    Ok(snapshot::encode(manifest))
}

/// The bytes of a `manifest.json` (format 1) holding `manifest`, as musync wrote them before
/// `manifest.bin`: for the tests of reading and upgrading that format.
#[doc(hidden)]
pub fn to_json(manifest: &Manifest) -> anyhow::Result<Vec<u8>> {
    let snap = Snapshot {
        version: JSON_VERSION,
        manifest: manifest.clone(),
    };
    serde_json::to_vec(&snap).context("serialising the manifest")
}

#[doc(hidden)]
pub use snapshot::{MAGIC, seal};

/// The end of a run that journaled every change in `manifest`: the snapshot and the journal on
/// disk already hold it, so they are compacted into a new snapshot only when that is due (the
/// journal has grown past a quarter of the snapshot, or there is no snapshot in this format).
/// A run that changed a few files thus leaves the snapshot alone.
pub fn save(staging: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let len = |path: PathBuf| fs::metadata(path).map(|m| m.len());
    let due = match len(snapshot_path(staging)) {
        Ok(snapshot) => len(journal_path(staging)).unwrap_or(0) > snapshot / COMPACT_AT,
        Err(_) => true,
    };
    if due {
        compact(staging, manifest)
    } else {
        Ok(())
    }
}

/// Write `manifest` as the snapshot, atomically, and drop the journal it absorbed and any
/// `manifest.json` it replaces.
pub fn compact(staging: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    fsutil::write_atomic(&snapshot_path(staging), &to_bytes(manifest)?)?;
    remove(&journal_path(staging)).context("removing the absorbed journal")?;
    remove(&json_path(staging)).context("removing the replaced manifest.json")
}

fn remove(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Rewrites a `manifest.json` (and its journal) as a `manifest.bin`. Only a run holding the
/// writer's lock may call it; readers read either format and never write.
pub fn upgrade(staging: &Path) -> anyhow::Result<()> {
    let json = json_path(staging);
    if fs::symlink_metadata(&json).is_err() {
        return Ok(());
    }
    if fs::symlink_metadata(snapshot_path(staging)).is_ok() {
        // An upgrade killed after writing the new snapshot: the old one is stale.
        return remove(&json).with_context(|| format!("removing {}", json.display()));
    }
    let manifest = load(staging)?;
    compact(staging, &manifest)?;
    tracing::info!(
        "rewrote {} as {} ({} records)",
        json.display(),
        SNAPSHOT,
        manifest.records.len()
    );
    Ok(())
}

/// One journal line (with its newline) holding `changes`.
pub fn journal_line(changes: &[Change]) -> anyhow::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(changes).context("serialising a journal line")?;
    line.push(b'\n');
    Ok(line)
}

/// Appends changes to the journal, one durable line per call.
pub struct Journal {
    file: File,
    path: PathBuf,
    /// A failed write left a torn line that could not be cut off.
    broken: bool,
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
        Ok(Journal {
            file,
            path,
            broken: false,
        })
    }

    pub fn append(&mut self, changes: &[Change]) -> anyhow::Result<()> {
        if self.broken {
            bail!(
                "{} could not be repaired after a failed write; run again",
                self.path.display()
            );
        }
        let line = journal_line(changes)?;
        let end = self.file.metadata().map(|m| m.len());
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if written.is_err() {
            // A part-written line (full disk) would glue onto the next one and make the journal
            // unreadable: cut it off. If even that fails, the torn line is the last one, which
            // loading tolerates, so no further line may follow it.
            let cut = end.and_then(|end| self.file.set_len(end));
            if cut.is_err() {
                self.broken = true;
            }
        }
        written.with_context(|| format!("writing {}", self.path.display()))
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
        compact(dir.path(), &loaded).unwrap();
        assert_eq!(load(dir.path()).unwrap(), loaded);
        assert!(!journal_path(dir.path()).exists());
    }

    #[test]
    fn damaged_snapshot_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(state_dir(dir.path())).unwrap();
        fs::write(json_path(dir.path()), b"{not json").unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("manifest.json is damaged"), "{err}");
        fs::write(snapshot_path(dir.path()), b"{not json").unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(
            err.contains("manifest.bin is damaged: not a musync manifest;"),
            "{err}"
        );
        let mut m = Manifest::default();
        m.apply(Change::Put(record("a.flac", "a.mp3")));
        let mut bytes = to_bytes(&m).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(snapshot_path(dir.path()), &bytes).unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        let path = snapshot_path(dir.path());
        assert_eq!(
            err,
            format!(
                "manifest {} is damaged: its checksum does not match (cut short or \
                 overwritten); move it away to start over (musync will then leave the files \
                 already in staging alone)",
                path.display()
            )
        );
        assert!(!err.contains('\n'));
        fs::write(snapshot_path(dir.path()), &bytes[..40]).unwrap();
        assert!(load(dir.path()).is_err());
    }

    #[test]
    fn a_newer_format_is_refused_in_one_line() {
        let mut bytes = to_bytes(&Manifest::default()).unwrap();
        bytes[snapshot::MAGIC.len()] = 3;
        let err = format!(
            "{:#}",
            parse(Path::new("/s"), Some(&bytes), None).unwrap_err()
        );
        assert_eq!(
            err,
            "manifest /s/.musync/manifest.bin has format 3, this musync reads 2 (a newer \
             musync wrote it?)"
        );
        let json = br#"{"version":2,"records":{},"orphans":[]}"#;
        let err = format!(
            "{:#}",
            parse(Path::new("/s"), Some(json), None).unwrap_err()
        );
        assert_eq!(
            err,
            "manifest /s/.musync/manifest.json has format 2, this musync reads 1"
        );
    }

    fn many(n: usize) -> Manifest {
        let mut m = Manifest::default();
        m.apply(Change::Settings(MirrorSettings::default()));
        for i in 0..n {
            let mut r = record(&format!("A/{i:03}.flac"), &format!("A/{i:03}.mp3"));
            r.audio_hash = format!("{i:064x}").into();
            m.apply(Change::Put(r));
        }
        m
    }

    #[test]
    fn a_run_that_changes_a_few_files_only_appends_to_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = many(200);
        save(dir.path(), &m).unwrap();
        let snapshot = fs::read(snapshot_path(dir.path())).unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        let change = Change::Put(record("B/new.flac", "B/new.mp3"));
        journal.append(std::slice::from_ref(&change)).unwrap();
        m.apply(change);
        save(dir.path(), &m).unwrap();
        assert_eq!(fs::read(snapshot_path(dir.path())).unwrap(), snapshot);
        assert_eq!(load(dir.path()).unwrap(), m);
        // Past a quarter of the snapshot, the journal is compacted into it.
        while fs::metadata(journal_path(dir.path())).unwrap().len() <= snapshot.len() as u64 / 4 {
            let change = Change::Orphan(format!("C/{}.mp3", m.orphans.len()));
            journal.append(std::slice::from_ref(&change)).unwrap();
            m.apply(change);
        }
        save(dir.path(), &m).unwrap();
        assert!(!journal_path(dir.path()).exists());
        assert_eq!(load(dir.path()).unwrap(), m);
    }

    #[test]
    fn a_json_manifest_is_read_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let old = many(3);
        fs::create_dir_all(state_dir(dir.path())).unwrap();
        fs::write(json_path(dir.path()), to_json(&old).unwrap()).unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.append(&[Change::Orphan("x.mp3".into())]).unwrap();
        let mut m = old.clone();
        m.apply(Change::Orphan("x.mp3".into()));
        let before = fingerprint(dir.path());
        assert_eq!(load(dir.path()).unwrap(), m);
        upgrade(dir.path()).unwrap();
        assert!(!json_path(dir.path()).exists() && !journal_path(dir.path()).exists());
        assert_eq!(load(dir.path()).unwrap(), m);
        assert_ne!(fingerprint(dir.path()), before);
        // Killed after writing the new snapshot: the stale JSON one is dropped, not read.
        fs::write(json_path(dir.path()), to_json(&old).unwrap()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), m);
        upgrade(dir.path()).unwrap();
        assert!(!json_path(dir.path()).exists());
        assert_eq!(load(dir.path()).unwrap(), m);
        upgrade(dir.path()).unwrap();
    }

    // Regression guard for the size that motivated format 2: a JSON record took ~670 bytes.
    #[test]
    fn a_record_takes_a_fraction_of_its_json() {
        let m = many(1000);
        let (binary, json) = (to_bytes(&m).unwrap(), to_json(&m).unwrap());
        assert!(
            binary.len() * 3 < json.len(),
            "{} {}",
            binary.len(),
            json.len()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_manifest_round_trips(
            records in proptest::collection::vec(
                (
                    "[a-cé/\n]{0,6}",
                    "[a-cé/]{0,6}",
                    proptest::prelude::any::<(u64, i64, u64, i64)>(),
                    "([0-9a-f]{64}|[0-9a-fA-F]{0,3})",
                    proptest::option::of("[0-9a-f]{64}"),
                    proptest::collection::vec("[a-c ]{0,3}", 0..3),
                ),
                0..12,
            ),
            orphans in proptest::collection::btree_set("[a-cé/]{0,6}", 0..5),
            settings in proptest::prelude::any::<bool>(),
        ) {
            let mut m = Manifest {
                orphans,
                settings: settings.then(MirrorSettings::default),
                ..Manifest::default()
            };
            for (source, output, (size, mtime, osize, omtime), hash, retag, genres) in records {
                let mut r = record(&source, &output);
                r.stamp = Stamp { size, mtime_ns: mtime };
                r.output_stamp = Stamp { size: osize, mtime_ns: omtime };
                r.audio_hash = hash.as_str().into();
                r.output_hash = hash.to_uppercase().into();
                r.retag_from = retag.map(Into::into);
                r.encoder = genres.concat().into();
                r.own_genre = genres.clone();
                r.genre = genres.into_iter().rev().collect();
                m.apply(Change::Put(r));
            }
            proptest::prop_assert_eq!(snapshot::decode(&to_bytes(&m).unwrap()), Ok(m));
        }

        /// Asked in any order, sorted or not, with sources it has and has not, the merge finds
        /// what a search finds.
        #[test]
        fn in_order_finds_what_get_finds(
            sources in proptest::collection::btree_set("[ab/é]{0,4}", 0..16),
            asked in proptest::collection::vec("[ab/é]{0,4}", 0..24),
            sorted in proptest::prelude::any::<bool>(),
        ) {
            let mut m = Manifest::default();
            for source in &sources {
                m.apply(Change::Put(record(source, "x.mp3")));
            }
            let mut asked = asked;
            if sorted {
                asked.sort();
            }
            let mut in_order = m.in_order();
            for source in &asked {
                proptest::prop_assert_eq!(in_order.get(source), m.records.get(source));
            }
        }
    }

    #[test]
    fn a_manifest_naming_a_path_outside_staging_is_refused() {
        let staging = Path::new("/s");
        let snap = |m: &Manifest| to_bytes(m).unwrap();
        for bad in ["../../etc/passwd", "/etc/passwd", "a/../../b", "./a", ""] {
            let mut m = Manifest::default();
            m.apply(Change::Put(record("a.flac", bad)));
            let err = format!("{:#}", parse(staging, Some(&snap(&m)), None).unwrap_err());
            assert_eq!(
                err,
                format!(
                    "manifest /s/.musync/manifest.bin is damaged: unsafe path {bad:?}; move it \
                     away to start over (musync will then leave the files already in staging alone)"
                )
            );
            let mut m = Manifest::default();
            m.apply(Change::Orphan(bad.into()));
            assert!(parse(staging, Some(&snap(&m)), None).is_err(), "{bad:?}");
            let line = journal_line(&[Change::Put(record(bad, "a.mp3"))]).unwrap();
            // Not even the last line is forgiven: it is whole, not torn.
            let err = format!("{:#}", parse(staging, None, Some(&line)).unwrap_err());
            assert_eq!(
                err,
                format!("journal /s/.musync/journal.jsonl line 1 is damaged: unsafe path {bad:?}")
            );
        }
        // A record filed under another source than its own.
        let mut m = Manifest::default();
        m.apply(Change::Put(record("a.flac", "a.mp3")));
        let json = String::from_utf8(to_json(&m).unwrap()).unwrap().replacen(
            "\"a.flac\":",
            "\"b.flac\":",
            1,
        );
        let err = format!(
            "{:#}",
            parse(staging, Some(json.as_bytes()), None).unwrap_err()
        );
        assert!(
            err.contains(r#"damaged: record "b.flac" holds source "a.flac""#),
            "{err}"
        );
    }

    #[test]
    fn names_with_line_breaks_are_kept() {
        // The library may hold them, and musync mirrors them.
        let mut m = Manifest::default();
        m.apply(Change::Put(record("new\nline.flac", "new\nline.mp3")));
        m.apply(Change::Orphan("tab\there\r.mp3".into()));
        let bytes = to_bytes(&m).unwrap();
        assert_eq!(parse(Path::new("/s"), Some(&bytes), None).unwrap(), m);
        let json = to_json(&m).unwrap();
        assert_eq!(parse(Path::new("/s"), Some(&json), None).unwrap(), m);
    }

    // Regression: a journal line torn inside a multi-byte character failed the whole load
    // ("stream did not contain valid UTF-8") instead of being forgiven as torn.
    #[test]
    fn a_journal_torn_inside_a_character_is_forgiven() {
        let mut journal = journal_line(&[Change::Put(record("a.flac", "a.mp3"))]).unwrap();
        let torn = journal_line(&[Change::Put(record("é.flac", "é.mp3"))]).unwrap();
        let cut = torn.iter().position(|&b| b == 0xC3).unwrap() + 1;
        journal.extend_from_slice(&torn[..cut]);
        let m = parse(Path::new("/s"), None, Some(&journal)).unwrap();
        assert_eq!(m.records.keys().collect::<Vec<_>>(), ["a.flac"]);
        // Not as the last line it is damage.
        journal.extend_from_slice(b"\n[]\n");
        let err = format!(
            "{:#}",
            parse(Path::new("/s"), None, Some(&journal)).unwrap_err()
        );
        assert!(
            err.starts_with("journal /s/.musync/journal.jsonl line 2 is damaged: "),
            "{err}"
        );
    }

    #[test]
    fn journal_lines_split_as_before() {
        let line = journal_line(&[Change::Orphan("a.mp3".into())]).unwrap();
        let s = Path::new("/s");
        let crlf = [&line[..line.len() - 1], b"\r\n"].concat();
        assert!(parse(s, None, Some(&crlf)).unwrap().owns("a.mp3"));
        assert_eq!(parse(s, None, Some(b"")).unwrap(), Manifest::default());
        // An empty line is damage, except as the last one.
        assert_eq!(parse(s, None, Some(b"\n")).unwrap(), Manifest::default());
        let err = parse(s, None, Some(&[b"\n", &line[..]].concat())).unwrap_err();
        assert!(format!("{err:#}").contains("line 1 is damaged"), "{err:#}");
    }

    // A write that fails part-way (full disk) must not leave a torn line for the next append to
    // glue onto; /dev/full fails every write and cannot be cut back, so the journal refuses
    // further appends instead.
    #[test]
    fn a_failed_append_is_never_followed_by_another_line() {
        let Ok(file) = OpenOptions::new().append(true).open("/dev/full") else {
            return;
        };
        let path = PathBuf::from("/dev/full");
        let mut journal = Journal {
            file,
            path,
            broken: false,
        };
        let changes = [Change::Orphan("a.mp3".into())];
        let err = format!("{:#}", journal.append(&changes).unwrap_err());
        assert!(err.contains("No space left on device"), "{err}");
        let err = format!("{:#}", journal.append(&changes).unwrap_err());
        assert!(err.contains("could not be repaired"), "{err}");
    }
}

/// Figures for a large library: `cargo test --release --lib manifest::measure -- --ignored
/// --nocapture` (TRACKS=n to change the size from 100,000).
#[cfg(test)]
mod measure {
    use super::*;

    /// A record as `scripts/bench-noop`'s library gives them: Genre/Artist/Album/NN - Track.
    fn record(i: usize) -> Record {
        let album = i / 10;
        let folder = format!(
            "Genre {}/Artist {}/Album {}",
            album / 100,
            album / 10 % 10,
            album % 10
        );
        let name = format!("{folder}/{:02} - Track", i % 10);
        let hash = |salt: &str| {
            use sha2::Digest as _;
            Digest::sha256(sha2::Sha256::digest(format!("{salt}{i}")).into())
        };
        Record {
            source: format!("{name}.flac"),
            kind: SourceKind::Lossless,
            stamp: Stamp {
                size: 25_000 + i as u64,
                mtime_ns: 1_700_000_000_000_000_000 + i as i64 * 1_000_003,
            },
            audio_hash: hash("a"),
            tag_hash: hash("t"),
            encoder: "lame V2; pipeline 3".into(),
            tag_key: hash("k"),
            output: format!("{name}.mp3"),
            output_stamp: Stamp {
                size: 4_000 + i as u64,
                mtime_ns: 1_700_000_100_000_000_000 + i as i64 * 999_983,
            },
            output_hash: hash("o"),
            retag_from: None,
            own_genre: vec![],
            genre: vec![format!("Genre {}", album / 100)],
        }
    }

    /// CPU time of this thread: the machine is shared, so wall time says little.
    fn cpu() -> std::time::Duration {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid timespec for the call to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut t) };
        std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }

    /// Bytes the allocator has handed out and not had back.
    fn heap() -> f64 {
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let info = unsafe { libc::mallinfo2() };
        (info.uordblks + info.hblkhd) as f64 / 1e6
    }

    /// One format's figures: (save CPU, load CPU, bytes, MB held by the loaded manifest).
    fn figures(
        name: &str,
        m: &Manifest,
        bytes: &[u8],
        file: &Path,
        read: impl Fn(&[u8]) -> Manifest,
    ) {
        let started = cpu();
        fsutil::write_atomic(file, bytes).unwrap();
        let save = cpu() - started;
        let before = heap();
        let started = cpu();
        let data = fs::read(file).unwrap();
        let loaded = read(&data);
        let load = cpu() - started;
        drop(data);
        let held = heap() - before;
        assert_eq!(&loaded, m);
        let n = m.records.len();
        println!(
            "{name}: {n} records, write {save:.3?} (after encoding), read+decode {load:.3?} CPU, \
             file {:.1} MB ({} B/record), held in memory {held:.1} MB",
            bytes.len() as f64 / 1e6,
            bytes.len() / n.max(1),
        );
    }

    #[test]
    #[ignore = "a measurement, not a test"]
    fn large_manifest() {
        let tracks = std::env::var("TRACKS").map_or(100_000, |t| t.parse().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.apply(Change::Settings(MirrorSettings::default()));
        for i in 0..tracks {
            m.apply(Change::Put(record(i)));
        }
        let s = Path::new("/s");
        let started = cpu();
        let json = to_json(&m).unwrap();
        println!("json: encode {:.3?} CPU", cpu() - started);
        let file = dir.path().join("manifest.json");
        figures("json (format 1)", &m, &json, &file, |b| {
            parse(s, Some(b), None).unwrap()
        });
        drop(json);
        let started = cpu();
        let binary = to_bytes(&m).unwrap();
        println!("binary: encode {:.3?} CPU", cpu() - started);
        let file = dir.path().join("manifest.bin");
        figures("binary (format 2)", &m, &binary, &file, |b| {
            parse(s, Some(b), None).unwrap()
        });
    }
}
