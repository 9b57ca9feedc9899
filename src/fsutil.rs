//! Atomic file writes for the staging tree: every new file is written under a hidden temporary
//! name in its final folder, synced, then renamed into place, so a killed run never leaves a
//! truncated file under a final name. Never touches anything outside the folder it is given.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::Context;
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use crate::digest::Digest;

/// Every temporary file musync makes starts with this, so a later run can find and remove
/// the ones a killed run left behind.
pub const TEMP_PREFIX: &str = ".musync-tmp-";

/// A fresh temporary file in the folder that will hold `target` (created if missing).
///
/// It is created with mode 0666 minus the umask, like any file a program writes (0644 under the
/// usual umask): tempfile's own 0600 would survive the rename and keep a media server running as
/// another user from reading the mirror.
pub fn temp_beside(target: &Path) -> anyhow::Result<NamedTempFile> {
    let dir = target.parent().context("target has no parent folder")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // The target's extension is kept: tag libraries pick the file format by it.
    let suffix = target
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(&suffix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// Refuses `target` (a path under `root`) when a folder between `root` and it is a symlink or
/// not a folder: writing, renaming or deleting there would reach outside `root`. Folders that do
/// not exist yet are fine; symlinks above `root`, and `target` itself, are not looked at (a
/// rename replaces a symlink, it does not write through it).
pub fn check_confined(root: &Path, target: &Path) -> anyhow::Result<()> {
    let rel = target
        .strip_prefix(root)
        .with_context(|| format!("{} is not inside {}", target.display(), root.display()))?;
    let mut dir = root.to_path_buf();
    for part in rel.parent().into_iter().flat_map(Path::components) {
        let std::path::Component::Normal(name) = part else {
            anyhow::bail!("{}: not a plain relative path", rel.display());
        };
        dir.push(name);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => anyhow::bail!(
                "{} is a symlink; musync does not write through symlinks in {}",
                dir.display(),
                root.display()
            ),
            Ok(_) => anyhow::bail!("{} is not a folder", dir.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        }
    }
    Ok(())
}

/// Sync `temp` to disk and rename it to `target`, replacing what was there.
pub fn commit(temp: NamedTempFile, target: &Path) -> anyhow::Result<()> {
    temp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", temp.path().display()))?;
    temp.persist(target)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming into {}", target.display()))?;
    sync_parent(target);
    Ok(())
}

/// Write `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temp = temp_beside(target)?;
    io::Write::write_all(&mut temp, bytes)
        .with_context(|| format!("writing {}", temp.path().display()))?;
    commit(temp, target)
}

/// Make a rename durable; failure only weakens durability, never correctness, so it is ignored.
pub fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Size and modification time (ns since the epoch) of a file: how musync tells, without reading
/// it, that a file is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
}

impl Stamp {
    pub fn of_metadata(meta: &fs::Metadata) -> Stamp {
        let mtime_ns = meta
            .modified()
            .ok()
            .map_or(0, |t| match t.duration_since(UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
            });
        Stamp {
            size: meta.len(),
            mtime_ns,
        }
    }

    /// The stamp of the file at `path`, or `None` when there is no regular file there.
    pub fn of(path: &Path) -> Option<Stamp> {
        let meta = fs::metadata(path).ok()?;
        meta.is_file().then(|| Stamp::of_metadata(&meta))
    }
}

/// Frees `value` on a thread of its own, so that the tens of milliseconds a large library's
/// bookkeeping takes to free are not spent before a command can exit.
pub fn free_in_background<T: Send + 'static>(value: T) {
    // Should the thread not start, the value is freed here, as it would have been.
    let _ = std::thread::Builder::new().spawn(move || drop(value));
}

/// `free_in_background`, then the freed memory handed back to the system: for what is let go
/// while the command goes on. Freed blocks stay with the heap of the thread that allocated
/// them (a walk's, the manifest loader's), which the threads still working cannot reuse, so
/// without the trim the process keeps it all.
pub fn free_and_return<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new().spawn(move || {
        drop(value);
        return_freed_memory();
    });
}

/// Hands the memory freed so far back to the system (glibc's heaps; elsewhere nothing).
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's heaps; it touches no live block.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// sha256 of a whole file, read in 64 KiB blocks.
pub fn sha256_file(path: &Path) -> anyhow::Result<Digest> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest::sha256(hasher.finalize().into()))
}

pub use crate::digest::hex;

/// Remove the temporary files an interrupted run left under `root`; returns how many.
pub fn remove_stale_temps(root: &Path) -> usize {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_type().is_file() && e.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
        })
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// Remove `dir` and its parents while they are empty, stopping at `root` (never removed).
pub fn remove_empty_dirs(dir: &Path, root: &Path) {
    let mut dir: PathBuf = dir.to_path_buf();
    while dir != root && dir.starts_with(root) && fs::remove_dir(&dir).is_ok() {
        if !dir.pop() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/file.txt");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(remove_stale_temps(dir.path()), 0);
    }

    // Regression: staged files were created 0600 (tempfile's mode), unreadable to a media server.
    #[test]
    fn staged_files_get_the_mode_of_a_normal_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.txt");
        fs::write(&plain, b"p").unwrap();
        let target = dir.path().join("song.mp3");
        write_atomic(&target, b"s").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), mode(&plain));
        assert_ne!(
            mode(&target) & 0o044,
            0,
            "group/other cannot read: {:o}",
            mode(&target)
        );
    }

    #[test]
    fn stale_temps_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let temp = temp_beside(&dir.path().join("x/song.mp3")).unwrap();
        let (_, path) = temp.keep().unwrap();
        fs::write(dir.path().join("x/keep.mp3"), b"k").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(!path.exists());
        assert!(dir.path().join("x/keep.mp3").exists());
    }

    #[test]
    fn empty_dirs_are_removed_up_to_root() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        fs::write(dir.path().join("a/keep"), b"").unwrap();
        remove_empty_dirs(&dir.path().join("a/b/c"), dir.path());
        assert!(!dir.path().join("a/b").exists());
        assert!(dir.path().join("a").exists());
    }

    #[test]
    fn symlinked_folders_below_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("staging");
        fs::create_dir_all(root.join("a")).unwrap();
        fs::write(root.join("file"), b"").unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("a/x.mp3")).unwrap();
        for fine in ["a/b.mp3", "a/new/deeper/b.mp3", "top.mp3", "a/x.mp3"] {
            assert!(check_confined(&root, &root.join(fine)).is_ok(), "{fine}");
        }
        for bad in [
            "link/b.mp3",
            "link/new/b.mp3",
            "file/b.mp3",
            "a/../link/b.mp3",
        ] {
            assert!(check_confined(&root, &root.join(bad)).is_err(), "{bad}");
        }
        let err = check_confined(&root, &root.join("link/b.mp3")).unwrap_err();
        assert!(err.to_string().contains("link is a symlink"), "{err}");
        assert!(
            check_confined(&root, dir.path()).is_err(),
            "outside the root"
        );
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
    }
}
