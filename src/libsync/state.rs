//! Where a library sync keeps its previous listings (`State`): one file per pair, in
//! `LIBRARY/.musync/bisync/<key>.json` (pull: `.../pull/<key>.json`), `<key>` the first 16 hex
//! digits of the SHA-256 of the peer as given (secrets redacted). Written whole to a temporary
//! name and renamed into place, with a format version. A file that cannot be read stops the run
//! (exit 5): musync never guesses a previous listing, which would turn into deletions.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{Listing, State};
use crate::{fsutil, manifest, rclone};

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
    /// The peer as given, redacted: for whoever reads the file.
    peer_name: String,
    library: Listing,
    peer: Listing,
}

/// The state file of `library` and `peer` for `kind`.
pub fn path(library: &Path, kind: Kind, peer: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let key = fsutil::hex(&Sha256::digest(rclone::redact(peer).as_bytes()));
    manifest::state_dir(library)
        .join(kind.name())
        .join(format!("{}.json", &key[..16]))
}

/// The previous listings of the pair, `None` before its first complete run.
pub fn load(library: &Path, kind: Kind, peer: &str) -> anyhow::Result<Option<State>> {
    let file = path(library, kind, peer);
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
pub fn save(library: &Path, kind: Kind, peer: &str, state: &State) -> anyhow::Result<()> {
    let file = path(library, kind, peer);
    let stored = Stored {
        version: VERSION,
        peer_name: rclone::redact(peer),
        library: state.library.clone(),
        peer: state.peer.clone(),
    };
    let json = serde_json::to_vec(&stored)?;
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
        assert_eq!(load(lib, Kind::Bisync, "nas:Music").unwrap(), None);
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
        save(lib, Kind::Bisync, "nas:Music", &state).unwrap();
        assert_eq!(load(lib, Kind::Bisync, "nas:Music").unwrap(), Some(state));
        assert_eq!(load(lib, Kind::Pull, "nas:Music").unwrap(), None);
        assert_eq!(load(lib, Kind::Bisync, "nas:Other").unwrap(), None);
        let name = path(lib, Kind::Bisync, "nas:Music");
        assert!(
            name.starts_with(lib.join(".musync/bisync")),
            "{}",
            name.display()
        );
        assert_eq!(name.file_name().unwrap().len(), 16 + ".json".len());
    }

    #[test]
    fn an_unreadable_or_newer_state_is_an_error_naming_the_file() {
        let library = tempfile::tempdir().unwrap();
        let lib = library.path();
        let file = path(lib, Kind::Pull, "/mnt/share");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"{not json").unwrap();
        let e = format!("{:#}", load(lib, Kind::Pull, "/mnt/share").unwrap_err());
        assert!(e.contains(&file.display().to_string()), "{e}");
        std::fs::write(
            &file,
            br#"{"version":99,"peer_name":"x","library":{},"peer":{}}"#,
        )
        .unwrap();
        let e = format!("{:#}", load(lib, Kind::Pull, "/mnt/share").unwrap_err());
        assert!(e.contains("version 99"), "{e}");
    }

    #[test]
    fn the_key_is_of_the_redacted_peer() {
        let lib = Path::new("/l");
        assert_eq!(
            path(lib, Kind::Bisync, "nas:Music"),
            path(lib, Kind::Bisync, "nas:Music")
        );
        assert_ne!(
            path(lib, Kind::Bisync, "nas:Music"),
            path(lib, Kind::Bisync, "nas:music")
        );
    }
}
