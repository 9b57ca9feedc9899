//! Two-sided libraries for the bisync and pull tests: a library (a local folder) and a peer, a
//! folder on one of `tests/remotes.rs`'s servers (a local folder, `rclone serve sftp`, smbd).
//! Tests change either side through the filesystem behind the server, read both sides back as
//! path → bytes, read the backups, and run `musync bisync`/`pull` with a chosen rclone.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::remotes::{FAIL_FAST, Kind, Remote};
use crate::util::*;

/// musync's folders at a side's root, never music (src/libsync/mod.rs `RESERVED`).
pub const RESERVED: [&str; 3] = [".musync/", ".musync-backups/", ".musync-tmp/"];
/// The peer's folder on its server: not the server's root, as a user's `nas:Music` is not.
const PEER_FOLDER: &str = "Music";

/// Either side of a pair, as the tests name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    Lib,
    Peer,
}

pub use At::{Lib, Peer};

impl At {
    pub fn other(self) -> At {
        match self {
            Lib => Peer,
            Peer => Lib,
        }
    }

    /// The word musync uses for this side (in keep-both names, in its output).
    pub fn word(self) -> &'static str {
        match self {
            Lib => "library",
            Peer => "peer",
        }
    }
}

/// A library (with a staging folder, for `sync`) and a peer folder on a server of `kind`, run
/// with one rclone binary.
pub struct Pair {
    pub env: Env,
    pub server: Remote,
    pub rclone: PathBuf,
    /// What the tests say in messages: the backend and the rclone version.
    pub what: String,
    /// The time test files' ages count back from, so that two files given one age have
    /// one mtime to the nanosecond.
    now: SystemTime,
}

impl Pair {
    /// An empty library and an empty peer folder on a new server of `kind`.
    pub fn new(kind: Kind, rclone: &Path) -> Pair {
        let server = Remote::start(kind);
        fs::create_dir(server.dir.join(PEER_FOLDER)).unwrap();
        let what = format!("{kind:?} with rclone {}", rclone_version(rclone));
        Pair {
            env: Env::empty(),
            server,
            rclone: rclone.to_owned(),
            what,
            now: SystemTime::now(),
        }
    }

    /// `--peer`'s value (or `--from`'s): the peer folder as rclone reaches it.
    pub fn spec(&self) -> String {
        self.server.path(PEER_FOLDER)
    }

    /// Where a side's files are on this machine.
    pub fn root(&self, side: At) -> PathBuf {
        match side {
            Lib => self.env.library.clone(),
            Peer => self.server.dir.join(PEER_FOLDER),
        }
    }

    pub fn path(&self, side: At, rel: &str) -> PathBuf {
        self.root(side).join(rel)
    }

    /// Write `bytes` at `rel` on `side` (folders made as needed), with the mtime `age` before
    /// the pair was made: the test, not the clock, says which edit is the newer.
    pub fn write(&self, side: At, rel: &str, bytes: &[u8], age: Duration) {
        let path = self.path(side, rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        self.set_age(side, rel, age);
    }

    /// Write the same file on both sides, with the same mtime: a pair already in step.
    pub fn both(&self, rel: &str, bytes: &[u8], age: Duration) {
        self.write(Lib, rel, bytes, age);
        self.write(Peer, rel, bytes, age);
    }

    /// Set the mtime of `rel` on `side` to `age` before the pair was made, leaving its bytes
    /// alone.
    pub fn set_age(&self, side: At, rel: &str, age: Duration) {
        let file = fs::File::options()
            .write(true)
            .open(self.path(side, rel))
            .unwrap();
        file.set_modified(self.now - age).unwrap();
    }

    pub fn remove(&self, side: At, rel: &str) {
        let path = self.path(side, rel);
        if path.is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }

    /// Rename a file or a folder on `side` (its mtime, size and inode stay).
    pub fn rename(&self, side: At, from: &str, to: &str) {
        let to = self.path(side, to);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::rename(self.path(side, from), to).unwrap();
    }

    pub fn read(&self, side: At, rel: &str) -> Vec<u8> {
        fs::read(self.path(side, rel)).unwrap_or_else(|e| panic!("{}: {rel}: {e}", self.what))
    }

    pub fn inode(&self, side: At, rel: &str) -> u64 {
        fs::metadata(self.path(side, rel)).unwrap().ino()
    }

    /// A side's music: path → bytes, musync's own folders left out.
    pub fn tree(&self, side: At) -> BTreeMap<String, Vec<u8>> {
        let root = self.root(side);
        files(&root)
            .into_iter()
            .filter(|f| !RESERVED.iter().any(|r| f.starts_with(r)))
            .map(|f| {
                let bytes = fs::read(root.join(&f)).unwrap();
                (f, bytes)
            })
            .collect()
    }

    /// A side's backups: (path inside the dated backup folder → bytes), one per backed-up
    /// version, from every `.musync-backups/<time>/` folder.
    pub fn backups(&self, side: At) -> Vec<(String, Vec<u8>)> {
        let root = self.root(side).join(".musync-backups");
        let mut found = Vec::new();
        if !root.is_dir() {
            return found;
        }
        for f in files(&root) {
            let (_, rel) = f.split_once('/').unwrap_or_else(|| {
                panic!("{}: backup {f} is not inside a dated folder", self.what)
            });
            found.push((rel.to_owned(), fs::read(root.join(&f)).unwrap()));
        }
        found.sort();
        found
    }

    /// Path → sha256 of every file under a side's folder, musync's records included, but not
    /// the cached rclone version check (which a run that changes nothing may write): to prove
    /// a run changed nothing.
    pub fn snapshot(&self, side: At) -> BTreeMap<String, String> {
        let mut all = tree_hashes(&self.root(side));
        all.remove(".musync/rclone-version");
        all
    }

    /// Files under musync's temporary folder on a side (none once a run has ended cleanly).
    pub fn temporaries(&self, side: At) -> Vec<String> {
        files(&self.root(side))
            .into_iter()
            .filter(|f| f.starts_with(".musync-tmp/"))
            .collect()
    }

    /// Every version (bytes) on either side or in either side's backups.
    pub fn versions(&self) -> BTreeSet<Vec<u8>> {
        [Lib, Peer]
            .into_iter()
            .flat_map(|side| {
                let tree = self.tree(side).into_values();
                tree.chain(self.backups(side).into_iter().map(|(_, b)| b))
            })
            .collect()
    }

    /// Both sides hold the same music (path and bytes).
    pub fn assert_in_step(&self, context: &str) {
        let (lib, peer) = (self.tree(Lib), self.tree(Peer));
        let names = |t: &BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&lib),
            names(&peer),
            "{}: {context}: the sides differ",
            self.what
        );
        for (path, bytes) in &lib {
            assert!(
                peer[path] == *bytes,
                "{}: {context}: {path} differs",
                self.what
            );
        }
    }

    /// `musync SUBCOMMAND --library LIB` with this pair's rclone (and its rclone config), and
    /// rclone told to fail fast on a dead server.
    fn command(&self, subcommand: &str) -> Run {
        Run::bare()
            .arg(subcommand)
            .arg("--library")
            .arg(&self.env.library)
            .envs(self.server.envs())
            .env("MUSYNC_RCLONE", &self.rclone)
            .env("MUSYNC_RCLONE_FLAGS", FAIL_FAST)
    }

    /// `musync bisync --library LIB --peer SPEC`.
    pub fn bisync(&self) -> Run {
        self.command("bisync").arg("--peer").arg(self.spec())
    }

    /// `musync pull --library LIB --from SPEC`.
    pub fn pull(&self) -> Run {
        self.command("pull").arg("--from").arg(self.spec())
    }

    /// `musync bisync --json ARGS`, which must end with exit code `code`: its JSON.
    pub fn bisync_json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let (json, out) = self.bisync().json().args(args).parsed();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}: bisync {args:?}: {}\nstdout: {}",
            self.what,
            stderr(&out),
            String::from_utf8_lossy(&out.stdout)
        );
        json
    }

    /// `musync pull --json ARGS`, which must end with exit code `code`: its JSON.
    pub fn pull_json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let (json, out) = self.pull().json().args(args).parsed();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}: pull {args:?}: {}\nstdout: {}",
            self.what,
            stderr(&out),
            String::from_utf8_lossy(&out.stdout)
        );
        json
    }
}

/// `rclone version`'s version word, e.g. `v1.60.1-DEV`.
pub fn rclone_version(rclone: &Path) -> String {
    let out = run(Command::new(rclone).arg("version")).stdout;
    let out = String::from_utf8_lossy(&out);
    out.split_whitespace().nth(1).unwrap_or("?").to_owned()
}

/// Distinct bytes standing in for a track where audio does not matter: `len` bytes drawn from
/// `seed`, so two calls with different seeds never give equal files.
pub fn track(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    bytes.extend_from_slice(&seed.to_le_bytes());
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len.max(8));
    bytes
}

/// `n` seconds: how long ago a test's file was last changed.
pub fn ago(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A JSON count as a number (0 if the key is missing, so that the assertion names it).
pub fn count(json: &serde_json::Value, key: &str) -> u64 {
    json[key]
        .as_u64()
        .or_else(|| json[key].as_array().map(|a| a.len() as u64))
        .unwrap_or_else(|| panic!("no count {key} in {json}"))
}
