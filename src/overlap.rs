//! The folders musync works with, the library, staging and a remote that is a local folder, may
//! not be one another or lie inside one another: musync would write into the library, or mirror
//! its own output into itself. `find` decides on resolved paths (pure); `check` first resolves
//! what was given (symlinks followed as far as the path exists, a remote's local forms read).

use std::path::{Component, Path, PathBuf};

use crate::rclone;

/// Which folder a path is, for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Library,
    Staging,
    Remote,
    /// Library sync's other copy (`bisync --peer`).
    Peer,
    /// Pull's source (`pull --from`).
    Share,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Library => "the library",
            Role::Staging => "staging",
            Role::Remote => "the remote",
            Role::Peer => "the peer",
            Role::Share => "the share",
        }
    }
}

/// One folder: its role, how it was given (shown) and where it really is.
#[derive(Clone, Debug)]
pub struct Folder {
    pub role: Role,
    pub shown: String,
    pub real: PathBuf,
}

impl Folder {
    fn named(&self) -> String {
        let real = self.real.display().to_string();
        if real == self.shown {
            format!("{} {}", self.role.name(), self.shown)
        } else {
            format!("{} {} ({real})", self.role.name(), self.shown)
        }
    }
}

/// Two of the folders overlap: a configuration error (exit code 2), found before anything is
/// touched.
#[derive(Debug, thiserror::Error)]
#[error("{0}; the library, staging and a local remote may not overlap. Nothing was changed")]
pub struct Overlap(pub String);

/// How `a` stands to `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    Same,
    Inside,
    Holds,
}

/// Component by component, on resolved paths.
pub fn relation(a: &Path, b: &Path) -> Option<Relation> {
    if a == b {
        Some(Relation::Same)
    } else if a.starts_with(b) {
        Some(Relation::Inside)
    } else if b.starts_with(a) {
        Some(Relation::Holds)
    } else {
        None
    }
}

/// The first pair of `folders` that overlap, as the message naming both.
pub fn find(folders: &[Folder]) -> Option<Overlap> {
    for (i, a) in folders.iter().enumerate() {
        for b in &folders[i + 1..] {
            let Some(relation) = relation(&a.real, &b.real) else {
                continue;
            };
            let (a_named, b_named) = (a.named(), b.named());
            let why = match relation {
                Relation::Same => format!("{a_named} and {b_named} are the same folder"),
                Relation::Inside => format!("{a_named} is inside {b_named}"),
                Relation::Holds => format!("{b_named} is inside {a_named}"),
            };
            return Some(Overlap(why));
        }
    }
    None
}

/// Refuse overlapping folders among those given. `remote` counts only when it names a local
/// folder (see [`local_remote`]).
pub fn check(
    library: Option<&Path>,
    staging: Option<&Path>,
    remote: Option<&str>,
) -> Result<(), Overlap> {
    let path = |role, p: &Path| Folder {
        role,
        shown: p.display().to_string(),
        real: resolve(p),
    };
    let mut folders: Vec<Folder> = Vec::new();
    folders.extend(library.map(|p| path(Role::Library, p)));
    folders.extend(staging.map(|p| path(Role::Staging, p)));
    if let Some(remote) = remote
        && let Some(local) = local_remote(remote)
    {
        folders.push(Folder {
            role: Role::Remote,
            shown: rclone::redact(remote),
            real: resolve(&local),
        });
    }
    match find(&folders) {
        Some(overlap) => Err(overlap),
        None => Ok(()),
    }
}

/// Refuse library sync's other side `other` (in `role`: [`Role::Peer`] or [`Role::Share`])
/// being the library or lying inside or around it, in those roles' words: a usage error for
/// the caller (exit 2). `other` counts only when it names a local folder.
pub fn check_side(library: &Path, other: &str, role: Role) -> anyhow::Result<()> {
    let mut folders = vec![Folder {
        role: Role::Library,
        shown: library.display().to_string(),
        real: resolve(library),
    }];
    if let Some(local) = local_remote(other) {
        folders.push(Folder {
            role,
            shown: rclone::redact(other),
            real: resolve(&local),
        });
    }
    match find(&folders) {
        Some(Overlap(why)) => Err(anyhow::anyhow!(
            "{why}; the library and {} may not overlap. Nothing was changed",
            role.name()
        )),
        None => Ok(()),
    }
}

/// The local folder a remote names, as rclone reads it: a plain path (no colon, or a slash
/// before the first colon), `local:PATH`, `:local:PATH` or `:local,OPTIONS:PATH`. `None` for
/// any other remote. (A remote of the rclone config that is an alias of a local folder is not
/// recognised.)
pub fn local_remote(remote: &str) -> Option<PathBuf> {
    let on_the_fly = remote.strip_prefix(':');
    let spec = on_the_fly.unwrap_or(remote);
    // The backend or remote name ends at its options or at the colon before the path.
    let name_end = spec.find([',', ':']).unwrap_or(spec.len());
    let name = &spec[..name_end];
    if on_the_fly.is_none() {
        let is_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || "_-.+@ ".contains(c));
        if !is_name || name_end == spec.len() {
            return Some(PathBuf::from(remote));
        }
    }
    if name != "local" {
        return None;
    }
    // Option values may be quoted, and hold colons.
    let mut quote = None;
    for (i, c) in spec.char_indices().skip(name_end) {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ':') => return Some(PathBuf::from(&spec[i + 1..])),
            _ => {}
        }
    }
    None
}

/// `path` made absolute, with symlinks resolved as far as it exists and the rest (which cannot
/// hold a symlink yet) cleaned of `.` and `..` as written.
pub fn resolve(path: &Path) -> PathBuf {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |p, c| push_lexically(p, c));
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last.as_os_str().to_owned());
                existing = parent;
            }
            _ => return absolute.clone(),
        }
    }
}

fn push_lexically(mut path: PathBuf, part: &std::ffi::OsStr) -> PathBuf {
    match Path::new(part).components().next() {
        Some(Component::CurDir) => {}
        Some(Component::ParentDir) => {
            path.pop();
        }
        _ => path.push(part),
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(role: Role, path: &str) -> Folder {
        Folder {
            role,
            shown: path.to_owned(),
            real: PathBuf::from(path),
        }
    }

    #[test]
    fn relations_are_by_component() {
        let r = |a: &str, b: &str| relation(Path::new(a), Path::new(b));
        assert_eq!(r("/m/lib", "/m/lib"), Some(Relation::Same));
        assert_eq!(r("/m/lib/mp3", "/m/lib"), Some(Relation::Inside));
        assert_eq!(r("/m", "/m/lib"), Some(Relation::Holds));
        assert_eq!(r("/m/library", "/m/lib"), None);
        assert_eq!(r("/m/lib2", "/m/lib"), None);
    }

    #[test]
    fn every_pair_is_checked_and_named() {
        let lib = folder(Role::Library, "/m/Lib");
        let st = folder(Role::Staging, "/m/st");
        let msg = |folders: &[Folder]| find(folders).map(|o| o.0);
        assert_eq!(msg(&[lib.clone(), st.clone()]), None);
        assert_eq!(
            msg(&[lib.clone(), st.clone(), folder(Role::Remote, "/m/Lib/mp3")]),
            Some("the remote /m/Lib/mp3 is inside the library /m/Lib".to_owned())
        );
        assert_eq!(
            msg(&[lib.clone(), st.clone(), folder(Role::Remote, "/m/st")]),
            Some("staging /m/st and the remote /m/st are the same folder".to_owned())
        );
        assert_eq!(
            msg(&[lib.clone(), st.clone(), folder(Role::Remote, "/")]),
            Some("the library /m/Lib is inside the remote /".to_owned())
        );
        assert_eq!(
            msg(&[lib, folder(Role::Staging, "/m")]),
            Some("the library /m/Lib is inside staging /m".to_owned())
        );
        let linked = Folder {
            real: PathBuf::from("/m/Lib/x"),
            ..folder(Role::Remote, "/link/x")
        };
        let text = find(&[folder(Role::Library, "/m/Lib"), linked])
            .unwrap()
            .to_string();
        assert!(
            text.starts_with("the remote /link/x (/m/Lib/x) is inside the library /m/Lib; "),
            "{text}"
        );
    }

    #[test]
    fn remotes_that_are_local_folders_are_recognised() {
        let local = |r: &str| local_remote(r).map(|p| p.display().to_string());
        let some = |p: &str| Some(p.to_owned());
        assert_eq!(local("/mnt/usb/music"), some("/mnt/usb/music"));
        assert_eq!(local("Lib/mp3"), some("Lib/mp3"));
        assert_eq!(local("mp3"), some("mp3"));
        assert_eq!(local("./a:b"), some("./a:b"));
        assert_eq!(local("my dir/x:y"), some("my dir/x:y"));
        assert_eq!(local("local:/m/Lib"), some("/m/Lib"));
        assert_eq!(local(":local:/m/Lib"), some("/m/Lib"));
        assert_eq!(local(":local:"), some(""));
        assert_eq!(local(":local,links,nounc='a:b':Lib/x"), some("Lib/x"));
        assert_eq!(local("nas:music"), None);
        assert_eq!(local("nas,pass=x:music"), None);
        assert_eq!(local(":sftp,host=h:music"), None);
        assert_eq!(local(":webdav,url='http://127.0.0.1:80/':"), None);
        assert_eq!(local(":local"), None, "no path: rclone refuses it");
    }

    #[test]
    fn resolving_follows_symlinks_as_far_as_the_path_exists() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real.join("Lib")).unwrap();
        std::os::unix::fs::symlink(real.join("Lib"), real.join("link")).unwrap();
        assert_eq!(resolve(&real.join("link/new/x")), real.join("Lib/new/x"));
        assert_eq!(resolve(&real.join("link/new/../y/.")), real.join("Lib/y"));
        assert_eq!(resolve(&real.join("link")), real.join("Lib"));
    }
}
