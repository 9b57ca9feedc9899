//! The push state: which files musync put on a remote (so it deletes no others) or may have put
//! there (a call that never reported back). It lives in `<staging>/.musync/push/`, one file per
//! remote, keyed by a hash of the remote's name. Pushes are kept apart by the staging folder's
//! lock (`crate::lock`), which the command holds for the whole run. It is saved in a binary form
//! (`binary`, `<key>.bin`); a state saved as JSON by an older musync (`<key>.json`) is read, and
//! replaced by the next push that is not a dry run.

mod binary;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::plan::Pushed;
use crate::fsutil;
use crate::manifest;
use crate::rclone;
use crate::relpath;

#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Written with its secrets redacted (the file's name comes from the remote as given);
    /// `load` puts back the remote it was asked for.
    #[serde(serialize_with = "redacted")]
    pub remote: String,
    #[serde(deserialize_with = "sorted_map")]
    pub files: BTreeMap<String, Pushed>,
    /// The manifest fingerprint of the mirror that the last push made the remote equal to,
    /// in full: `files` then is that mirror, and a push can plan without reading the manifest.
    #[serde(default)]
    pub complete_for: Option<String>,
    /// What an upload or move call may have put on the remote, saved before the call and
    /// dropped once its outcome is known: musync's own files, their content unconfirmed.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "sorted_map"
    )]
    pub pending: BTreeMap<String, Pushed>,
}

/// A map read whole, then built at once: the state is written in order, and sorting a sorted
/// list then building the tree costs less than inserting 100,000 files one by one (each
/// insertion compares long paths that share most of their bytes). A path written twice keeps
/// its last value, as insertion did.
fn sorted_map<'de, D: serde::Deserializer<'de>>(
    from: D,
) -> Result<BTreeMap<String, Pushed>, D::Error> {
    struct Entries;
    impl<'de> serde::de::Visitor<'de> for Entries {
        type Value = Vec<(String, Pushed)>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of paths to pushed files")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    Ok(from.deserialize_map(Entries)?.into_iter().collect())
}

fn redacted<S: serde::Serializer>(remote: &str, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(&rclone::redact(remote))
}

fn base(staging: &Path, remote: &str) -> PathBuf {
    let key = fsutil::hex(&Sha256::digest(remote.as_bytes()));
    manifest::state_dir(staging).join("push").join(&key[..16])
}

/// The file of the older format, JSON, which `save` replaces.
fn json_file(staging: &Path, remote: &str) -> PathBuf {
    base(staging, remote).with_extension("json")
}

fn file(staging: &Path, remote: &str) -> PathBuf {
    base(staging, remote).with_extension("bin")
}

impl State {
    pub fn load(staging: &Path, remote: &str) -> anyhow::Result<State> {
        for path in [file(staging, remote), json_file(staging, remote)] {
            match fs::read(&path) {
                Ok(bytes) => {
                    return State::parse(&path, &bytes).map(|state| State {
                        remote: remote.to_string(),
                        ..state
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            }
        }
        Ok(State {
            remote: remote.to_string(),
            ..State::default()
        })
    }

    /// Whether the state of `remote` is in the older format (JSON), which the next `save`
    /// replaces: a push that changes nothing saves it then, once, to be read faster after.
    pub fn saved_as_json(staging: &Path, remote: &str) -> bool {
        json_file(staging, remote).exists() && !file(staging, remote).exists()
    }

    /// The state from the bytes of its file (either format); `path` only names it in errors. A
    /// state naming a path that could leave the remote root is damaged: musync never deletes or
    /// moves by it.
    pub fn parse(path: &Path, bytes: &[u8]) -> anyhow::Result<State> {
        let state: State = if bytes.starts_with(binary::MAGIC) {
            binary::decode(bytes).map_err(|why| {
                anyhow::anyhow!(
                    "push state {} is damaged: {why}; move it away to start over",
                    path.display()
                )
            })?
        } else {
            serde_json::from_slice(bytes).with_context(|| {
                format!(
                    "push state {} is damaged; move it away to start over",
                    path.display()
                )
            })?
        };
        let mut paths = state.files.keys().chain(state.pending.keys());
        if let Some(why) = paths.find_map(|p| relpath::check(p).err()) {
            bail!(
                "push state {} is damaged: {why}; move it away to start over",
                path.display()
            );
        }
        Ok(state)
    }

    /// The bytes of its file.
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        Ok(binary::encode(self, &rclone::redact(&self.remote)))
    }

    /// Saved after every step, so the state never claims more than happened. A state of the
    /// older format is removed once this one is in place (while both are there, this one is
    /// read).
    pub fn save(&self, staging: &Path) -> anyhow::Result<()> {
        fsutil::write_atomic(&file(staging, &self.remote), &self.to_bytes()?)?;
        let old = json_file(staging, &self.remote);
        match fs::remove_file(&old) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", old.display()))
            }
            _ => Ok(()),
        }
    }

    /// Gives `bytes`, if a state in the binary format, the checksum of its body (for the fuzz
    /// target, whose changes would otherwise all fail the checksum).
    #[doc(hidden)]
    pub fn seal(bytes: &mut [u8]) {
        binary::seal(bytes);
    }

    /// The bytes of its file in the older format (JSON), as musync wrote it before the binary
    /// one: for the tests and the fuzz seeds of the migration.
    #[doc(hidden)]
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a push state serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_naming_a_path_outside_the_remote_is_refused() {
        let path = Path::new("/s/.musync/push/0123.json");
        let file = r#"{"size":1,"hash":"h"}"#;
        for bad in ["../../etc/passwd", "/etc/passwd", "a/./b", "a//b", ""] {
            for other in [r#""pending":{}"#, r#""files":{}"#] {
                let map = if other.contains("files") {
                    "pending"
                } else {
                    "files"
                };
                let json = format!(r#"{{"remote":"r:",{other},"{map}":{{"{bad}":{file}}}}}"#);
                let err = format!("{:#}", State::parse(path, json.as_bytes()).unwrap_err());
                assert_eq!(
                    err,
                    format!(
                        "push state {} is damaged: unsafe path {bad:?}; move it away to start over",
                        path.display()
                    )
                );
            }
        }
    }

    /// The maps are built whole from the file's entries: in any order, a path written twice
    /// keeping its last value, as one insertion after another did.
    #[test]
    fn a_state_loads_in_any_order_and_keeps_the_last_of_a_repeated_path() {
        let json = br#"{"remote":"r:","files":{"b.mp3":{"size":2,"hash":"b"},
            "a.mp3":{"size":1,"hash":"a"},"b.mp3":{"size":3,"hash":"c"}},
            "pending":{"z.mp3":{"size":4,"hash":"z"},"c.mp3":{"size":5,"hash":"y"}}}"#;
        let state = State::parse(Path::new("x"), json).unwrap();
        let sizes = |m: &BTreeMap<String, Pushed>| {
            m.iter()
                .map(|(p, f)| (p.clone(), f.size))
                .collect::<Vec<_>>()
        };
        let want = [("a.mp3".to_owned(), 1), ("b.mp3".to_owned(), 3)];
        assert_eq!(sizes(&state.files), want);
        assert_eq!(state.files["b.mp3"].hash, "c");
        let want = [("c.mp3".to_owned(), 5), ("z.mp3".to_owned(), 4)];
        assert_eq!(sizes(&state.pending), want);
        let err = State::parse(Path::new("x"), br#"{"remote":"r:","files":[]}"#).unwrap_err();
        assert!(format!("{err:#}").contains("is damaged"), "{err:#}");
    }

    #[test]
    fn state_round_trips() {
        let mut state = State {
            remote: "nas:music".into(),
            complete_for: Some("1:2/3:4".into()),
            ..State::default()
        };
        let pushed = Pushed {
            size: 3,
            hash: "h".into(),
            mtime: None,
        };
        state.files.insert("a/new\nline.mp3".into(), pushed.clone());
        state.pending.insert("b.mp3".into(), pushed);
        let bytes = state.to_bytes().unwrap();
        assert_eq!(State::parse(Path::new("x"), &bytes).unwrap(), state);
    }

    /// A state written before times were kept loads, each file with no time (the next
    /// listing's is adopted), and one with a time keeps it.
    #[test]
    fn a_state_without_times_loads() {
        let old = br#"{"remote":"r:","files":{"a.mp3":{"size":3,"hash":"h"}}}"#;
        let state = State::parse(Path::new("x"), old).unwrap();
        assert_eq!(state.files["a.mp3"].mtime, None);
        let mut state = state;
        state.files.get_mut("a.mp3").unwrap().mtime = Some("2026-11-30T04:00:00Z".into());
        let bytes = state.to_bytes().unwrap();
        assert_eq!(State::parse(Path::new("x"), &bytes).unwrap(), state);
    }

    #[test]
    fn the_saved_remote_has_its_secrets_redacted() {
        let staging = tempfile::tempdir().unwrap();
        let remote = ":sftp,host=nas,user=me,pass=S3cret-obscured:music";
        let mut state = State::load(staging.path(), remote).unwrap();
        let pushed = Pushed {
            size: 3,
            hash: "h".into(),
            mtime: None,
        };
        state.files.insert("a.mp3".into(), pushed);
        state.save(staging.path()).unwrap();
        let bytes = fs::read(file(staging.path(), remote)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("S3cret"), "{text}");
        assert!(
            text.contains(":sftp,host=nas,user=me,pass=***:music"),
            "{text}"
        );
        assert_eq!(State::load(staging.path(), remote).unwrap(), state);
    }

    fn a_state() -> State {
        let mut state = State {
            remote: "nas:music".into(),
            complete_for: Some("1:2/3:4".into()),
            ..State::default()
        };
        let hash = "0123456789abcdef".repeat(4);
        for (path, mtime) in [("a/b.mp3", None), ("a/c.mp3", Some("2026-11-30T04:00:00Z"))] {
            let pushed = Pushed {
                size: 3,
                hash: hash.clone(),
                mtime: mtime.map(str::to_owned),
            };
            state.files.insert(path.into(), pushed);
        }
        let pending = Pushed {
            size: 5,
            hash: "not hex".into(),
            mtime: None,
        };
        state.pending.insert("z/y.mp3".into(), pending);
        state
    }

    /// A state saved as JSON by an older musync loads, and the next save replaces it with the
    /// binary form, which loads the same.
    #[test]
    fn a_json_state_is_read_and_replaced_by_the_next_save() {
        let staging = tempfile::tempdir().unwrap();
        let state = a_state();
        let old = json_file(staging.path(), &state.remote);
        fs::create_dir_all(old.parent().unwrap()).unwrap();
        fs::write(&old, state.to_json()).unwrap();
        assert!(State::saved_as_json(staging.path(), &state.remote));
        let loaded = State::load(staging.path(), &state.remote).unwrap();
        assert_eq!(loaded, state);
        loaded.save(staging.path()).unwrap();
        assert!(!old.exists(), "the JSON state is left behind");
        assert!(!State::saved_as_json(staging.path(), &state.remote));
        let bytes = fs::read(file(staging.path(), &state.remote)).unwrap();
        assert!(bytes.starts_with(binary::MAGIC));
        assert_eq!(State::load(staging.path(), &state.remote).unwrap(), state);
    }

    /// A binary state cut short, overwritten, or of an unknown format is damaged: one line
    /// naming it, as a damaged JSON state.
    #[test]
    fn a_damaged_binary_state_is_refused_in_one_line() {
        let path = Path::new("/s/.musync/push/0123.bin");
        let bytes = a_state().to_bytes().unwrap();
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut newer = bytes.clone();
        newer[binary::MAGIC.len()] = 9;
        for (bad, why) in [
            (&bytes[..bytes.len() - 1], "its checksum does not match"),
            (&flipped[..], "its checksum does not match"),
            (&bytes[..20], "cut short in its header"),
            (&newer[..], "format 9"),
        ] {
            let err = format!("{:#}", State::parse(path, bad).unwrap_err());
            assert!(err.starts_with("push state /s/.musync/push/0123.bin is damaged: "));
            assert!(err.contains(why), "{err}");
            assert!(err.ends_with("; move it away to start over"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
        // Whole, but naming a path outside the remote: refused as in a JSON state.
        let mut outside = a_state();
        outside.files.insert(
            "../../etc/passwd".into(),
            a_state().files["a/b.mp3"].clone(),
        );
        let err = format!(
            "{:#}",
            State::parse(path, &outside.to_bytes().unwrap()).unwrap_err()
        );
        assert!(err.contains(r#"unsafe path "../../etc/passwd""#), "{err}");
    }
}
