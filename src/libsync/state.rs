//! Where a library sync keeps its previous listings (`State`): one file per pair, outside the
//! library (an unmounted library disk must not look like a first run), in the user's state
//! folder as rclone bisync does: `$XDG_STATE_HOME/musync/libsync/<library key>/bisync-<peer
//! key>.json` (pull: `pull-<key>.json`), else `~/.local/state/musync/libsync/...`. The library
//! key is the first 16 hex digits of the SHA-256 of the library's resolved path, the peer key
//! that of the peer as given (secrets redacted); the library's folder there also holds its
//! library-sync lock. Written whole to a temporary name and renamed into place, with a format
//! version. A file that cannot be read stops the run (exit 5): musync never guesses a previous
//! listing, which would turn into deletions.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{Listing, State};
use crate::report::usage;
use crate::{fsutil, rclone};

/// The version of the file's format; another one is refused, not misread.
pub const VERSION: u32 = 1;

/// Which command's state: bisync's and pull's are kept apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bisync,
    Pull,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bisync => "bisync",
            Kind::Pull => "pull",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    /// The library's resolved path: for whoever reads the file.
    #[serde(default)]
    library_path: String,
    /// The peer as given, redacted: for whoever reads the file.
    peer_name: String,
    library: Listing,
    peer: Listing,
}

/// The user's state folder for library sync: `$XDG_STATE_HOME/musync/libsync`, else
/// `$HOME/.local/state/musync/libsync` (relative values are ignored, as the XDG spec says).
pub fn root() -> anyhow::Result<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|home| home.join(".local/state"))
        });
    match base {
        Some(base) => Ok(base.join("musync/libsync")),
        None => Err(usage(anyhow::anyhow!(
            "no folder for library sync's state: set HOME or XDG_STATE_HOME"
        ))),
    }
}

/// The first 16 hex digits of the SHA-256 of `bytes`.
fn key(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut key = fsutil::hex(&Sha256::digest(bytes));
    key.truncate(16);
    key
}

/// The folder under `root` of `library` (by its resolved path, so another spelling of the same
/// folder finds the same state): its pairs' state files and its lock.
pub fn library_dir(root: &Path, library: &Path) -> PathBuf {
    let real = crate::overlap::resolve(library);
    root.join(key(real.as_os_str().as_encoded_bytes()))
}

/// The state file of `library` and `peer` for `kind`, under `root`.
pub fn path(root: &Path, library: &Path, kind: Kind, peer: &str) -> PathBuf {
    let peer = key(rclone::redact(peer).as_bytes());
    library_dir(root, library).join(format!("{}-{peer}.json", kind.name()))
}

/// The previous listings of the pair, `None` before its first complete run.
pub fn load(root: &Path, library: &Path, kind: Kind, peer: &str) -> anyhow::Result<Option<State>> {
    let file = path(root, library, kind, peer);
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let stored: Stored = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "reading {}: not a state file musync can read (move it away to start over: the \
             next run then merges both sides, deleting nothing)",
            file.display()
        )
    })?;
    if stored.version != VERSION {
        bail!(
            "reading {}: format version {} (this musync reads {VERSION}); use the musync that \
             wrote it, or move the file away to start over",
            file.display(),
            stored.version
        );
    }
    Ok(Some(State {
        library: stored.library,
        peer: stored.peer,
    }))
}

/// Saves `state` as the pair's previous listings.
pub fn save(
    root: &Path,
    library: &Path,
    kind: Kind,
    peer: &str,
    state: &State,
) -> anyhow::Result<()> {
    let file = path(root, library, kind, peer);
    let stored = Stored {
        version: VERSION,
        library_path: crate::overlap::resolve(library).display().to_string(),
        peer_name: rclone::redact(peer),
        library: state.library.clone(),
        peer: state.peer.clone(),
    };
    let json = serde_json::to_vec(&stored)?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fsutil::write_atomic(&file, &json).with_context(|| format!("saving {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::super::Entry;
    use super::*;

    #[test]
    fn a_state_round_trips_and_each_pair_has_its_file() {
        let library = tempfile::tempdir().unwrap();
        let lib = library.path();
        let home = tempfile::tempdir().unwrap();
        let root = home.path();
        assert_eq!(load(root, lib, Kind::Bisync, "nas:Music").unwrap(), None);
        let entry = Entry {
            size: 3,
            mtime: -5,
            hash: Some("ab".into()),
        };
        let state = State {
            library: [("A/1.flac".to_owned(), entry.clone())].into(),
            peer: [(
                "A/1.flac".to_owned(),
                Entry {
                    hash: None,
                    ..entry
                },
            )]
            .into(),
        };
        save(root, lib, Kind::Bisync, "nas:Music", &state).unwrap();
        assert_eq!(
            load(root, lib, Kind::Bisync, "nas:Music").unwrap(),
            Some(state)
        );
        assert_eq!(load(root, lib, Kind::Pull, "nas:Music").unwrap(), None);
        assert_eq!(load(root, lib, Kind::Bisync, "nas:Other").unwrap(), None);
        let name = path(root, lib, Kind::Bisync, "nas:Music");
        assert!(name.starts_with(root), "{}", name.display());
        assert!(
            !lib.join(".musync").exists(),
            "the state was written into the library"
        );
        assert_eq!(
            name.file_name().unwrap().len(),
            "bisync-".len() + 16 + ".json".len()
        );
        let other = tempfile::tempdir().unwrap();
        assert_eq!(
            load(root, other.path(), Kind::Bisync, "nas:Music").unwrap(),
            None
        );
    }

    #[test]
    fn an_unreadable_or_newer_state_is_an_error_naming_the_file() {
        let library = tempfile::tempdir().unwrap();
        let lib = library.path();
        let home = tempfile::tempdir().unwrap();
        let root = home.path();
        let file = path(root, lib, Kind::Pull, "/mnt/share");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"{not json").unwrap();
        let e = format!(
            "{:#}",
            load(root, lib, Kind::Pull, "/mnt/share").unwrap_err()
        );
        assert!(e.contains(&file.display().to_string()), "{e}");
        std::fs::write(
            &file,
            br#"{"version":99,"peer_name":"x","library":{},"peer":{}}"#,
        )
        .unwrap();
        let e = format!(
            "{:#}",
            load(root, lib, Kind::Pull, "/mnt/share").unwrap_err()
        );
        assert!(e.contains("version 99"), "{e}");
    }

    #[test]
    fn the_key_is_of_the_redacted_peer() {
        let (root, lib) = (Path::new("/s"), Path::new("/l"));
        assert_eq!(
            path(root, lib, Kind::Bisync, "nas:Music"),
            path(root, lib, Kind::Bisync, "nas:Music")
        );
        assert_ne!(
            path(root, lib, Kind::Bisync, "nas:Music"),
            path(root, lib, Kind::Bisync, "nas:music")
        );
    }
}
