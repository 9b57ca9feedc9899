//! What a push does to files on the remote that are not simply its own: the backups of another
//! push, a symbolic link where the mirror writes, and a user's file on a share that ignores
//! case. Nothing is overwritten without a backup, nothing is written outside the remote, and the
//! next push converges.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::push::{push, pushed};
use crate::remotes::{FAIL_FAST, Kind, Remote};
use crate::util::*;

const TRACK: &str = "Jazz/Miles Quartet/Blue Session/01 - Opening.mp3";

/// A second push does nothing at all, and says so with exit 0.
fn assert_noop(env: &Env, remote: &Remote) {
    let json = pushed(env, remote, &[]);
    for key in ["uploaded", "moved", "deleted", "backed_up"] {
        assert_eq!(json[key], 0, "{key} in the push after: {json}");
    }
}

fn converted(args: &[&str]) -> Env {
    let env = Env::demo();
    let (json, code) = env.convert_json(args);
    assert_eq!(code, 0, "{json}");
    env
}

/// The contents of every file in the remote's backup folders.
fn backed_up(remote: &Remote) -> Vec<Vec<u8>> {
    let backups = remote.dir.join(".musync-backups");
    files(&backups)
        .iter()
        .map(|f| fs::read(backups.join(f)).unwrap())
        .collect()
}

fn backup_folders(remote: &Remote) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(remote.dir.join(".musync-backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Wait for the start of a new second, so that what runs next shares one.
fn at_a_new_second() {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    sleep_ms(1000 - u64::from(since.subsec_millis()) + 5);
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

// Regression: two pushes in the same second shared one backup folder, and the second push's
// backup replaced the first's, losing the user's file the first had backed up.
#[test]
fn two_stagings_pushing_in_one_second_keep_both_backups() {
    let remote = Remote::start(Kind::Local);
    // Two profiles mirroring one library to one remote, each encoded its own way.
    let (first, second) = (converted(&[]), converted(&["--quality", "V9"]));
    let user = b"the user's own recording".to_vec();
    write(&remote.dir.join(TRACK), &user);
    at_a_new_second();
    let started = SystemTime::now();
    let one = pushed(&first, &remote, &[]);
    let two = pushed(&second, &remote, &[]);
    let took = started.elapsed().unwrap();
    // The second backs up the first's files but the MP3 both copied as it was (adopted).
    assert_eq!(
        (one["backed_up"].as_u64(), two["backed_up"].as_u64()),
        (Some(1), Some(7)),
        "{one}\n{two}"
    );
    let folders = backup_folders(&remote);
    assert_eq!(folders.len(), 2, "{folders:?} (both pushes in {took:?})");
    let kept = backed_up(&remote);
    assert!(kept.contains(&user), "the user's file is lost: {folders:?}");
    // The first push's copy of the track is in the second's backup, not in place of the user's.
    let first_copy = fs::read(first.staged(TRACK)).unwrap();
    assert!(kept.contains(&first_copy));
    assert_eq!(
        fs::read(remote.dir.join(TRACK)).unwrap(),
        fs::read(second.staged(TRACK)).unwrap()
    );
    // prune-backups still reads the new folder names as times: none is a day old.
    let out = crate::util::musync()
        .args([
            "prune-backups",
            "--remote",
            &remote.spec,
            "--older-than",
            "1d",
        ])
        .envs(remote.envs())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(backup_folders(&remote), folders);
}

// Regression: a symbolic link on the remote at a mirror path was written through: rclone's
// listing skipped it, and the upload replaced the file (or filled the folder) it points to,
// outside the remote.
#[test]
fn symbolic_links_on_the_remote_are_never_written_through() {
    let remote = Remote::start(Kind::Local);
    let env = converted(&[]);
    let outside = env.dir.path().join("outside");
    write(&outside.join("song.mp3"), b"a file outside the remote");
    write(
        &outside.join("album/01 - Intro.mp3"),
        b"the user's file in a linked folder",
    );
    let before = tree_hashes(&outside);
    let file_link = remote.dir.join(TRACK);
    fs::create_dir_all(file_link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(outside.join("song.mp3"), &file_link).unwrap();
    let folder_link = remote.dir.join("Rock/Some Band/Live Album/CD1");
    fs::create_dir_all(folder_link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(outside.join("album"), &folder_link).unwrap();

    for attempt in ["first", "second"] {
        let (json, out) = push(&env, &remote, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{attempt}: {err}\n{json}");
        assert_eq!(
            tree_hashes(&outside),
            before,
            "{attempt}: written through a link"
        );
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("symbolic link"))
            .collect();
        assert_eq!(lines.len(), 2, "{attempt}: one line per file: {err}");
        assert!(lines.iter().any(|l| l.contains(TRACK)), "{err}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("Rock/Some Band/Live Album/CD1")),
            "{err}"
        );
        assert!(fs::symlink_metadata(&file_link).unwrap().is_symlink());
        assert!(fs::symlink_metadata(&folder_link).unwrap().is_symlink());
    }
    // Every other file of the mirror is there.
    let landed = files(&remote.dir);
    assert!(landed.contains(&"Rock/Some Band/Live Album/CD2/01 - Encore.mp3".to_owned()));
    assert_eq!(landed.len(), env.staged_files().len() - 2, "{landed:?}");
    // With the links gone, the next push fills in the two files and is done.
    fs::remove_file(&file_link).unwrap();
    fs::remove_file(&folder_link).unwrap();
    let json = pushed(&env, &remote, &[]);
    assert_eq!(json["uploaded"], 2, "{json}");
    assert_eq!(tree_hashes(&outside), before);
    assert_noop(&env, &remote);
}

// Regression: on an SMB share a user's `jazz/…/01.mp3` was overwritten by musync's `Jazz/…`
// with no backup.
#[test]
fn a_users_file_differing_only_in_case_on_smb_is_backed_up() {
    let remote = Remote::start(Kind::Smb);
    let env = converted(&[]);
    let user = b"the user's own take".to_vec();
    write(&remote.dir.join(TRACK.to_lowercase()), &user);
    let json = pushed(&env, &remote, &[]);
    assert_eq!(json["backed_up"], 1, "{json}");
    assert_eq!(backed_up(&remote), [user]);
    assert_noop(&env, &remote);
}

/// Rename `from` to `to` (relative to the library) and convert: a case-only rename.
fn rename_in_library(env: &Env, from: &str, to: &str) {
    fs::rename(env.lib(from), env.lib(to)).unwrap();
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
}

// Regression: a case-only album rename on an SMB share became one folder move onto itself,
// which rclone refuses ("overlapping remotes"), and every later push exited 4.
#[test]
fn a_case_only_album_rename_on_smb_converges() {
    let remote = Remote::start(Kind::Smb);
    let env = converted(&[]);
    pushed(&env, &remote, &[]);
    rename_in_library(
        &env,
        "Jazz/Miles Quartet/Blue Session",
        "Jazz/Miles Quartet/blue session",
    );
    let json = pushed(&env, &remote, &[]);
    assert_eq!(
        (json["moved"].as_u64(), json["uploaded"].as_u64()),
        (Some(3), Some(0)),
        "{json}"
    );
    let album = remote.dir.join("Jazz/Miles Quartet");
    let names: Vec<_> = fs::read_dir(&album)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["blue session"],
        "the folder has the new name, alone"
    );
    assert_noop(&env, &remote);
    assert!(
        !remote.dir.join(".musync-backups").exists(),
        "nothing replaced"
    );
}

// Regression: a case-only file rename with --no-backup uploaded `One.mp3`, then deleted
// `one.mp3`, the same file on the share, and exited 0.
#[test]
fn a_case_only_file_rename_on_smb_keeps_the_file() {
    let from = "Jazz/Miles Quartet/Blue Session/01 - Opening";
    let to = "Jazz/Miles Quartet/Blue Session/01 - OPENING";
    for args in [&["--no-backup"][..], &[]] {
        let remote = Remote::start(Kind::Smb);
        let env = converted(&[]);
        pushed(&env, &remote, args);
        rename_in_library(&env, &format!("{from}.flac"), &format!("{to}.flac"));
        let staged = fs::read(env.staged(&format!("{to}.mp3"))).unwrap();
        let json = pushed(&env, &remote, args);
        assert_eq!(json["deleted"], 0, "{args:?}: {json}");
        let on_share = remote.dir.join(format!("{to}.mp3"));
        assert_eq!(fs::read(&on_share).ok(), Some(staged), "{args:?}: {json}");
        assert!(!remote.dir.join(format!("{from}.mp3")).exists(), "{args:?}");
        assert_noop(&env, &remote);
    }
}

/// A FAT disk image mounted with the FUSE driver `fusefat` (the kernel here may have no vfat):
/// a local folder that ignores case, as a USB stick does. Unmounted when dropped.
struct FatDisk {
    mount: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl FatDisk {
    fn mount() -> FatDisk {
        let dir = tempfile::tempdir().unwrap();
        let (image, mount) = (dir.path().join("fat.img"), dir.path().join("mnt"));
        fs::create_dir(&mount).unwrap();
        fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
        let mkfs = [
            "/usr/sbin/mkfs.vfat",
            "/sbin/mkfs.vfat",
            "/usr/bin/mkfs.vfat",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("mkfs.vfat is not installed: scripts/test installs it (apt package dosfstools)");
        run(std::process::Command::new(mkfs).arg(&image));
        let mut fusefat = std::process::Command::new("fusefat");
        fusefat.args(["-o", "rw+"]).arg(&image).arg(&mount);
        let out = fusefat.output().unwrap_or_else(|e| {
            panic!("fusefat: {e}: scripts/test installs it (apt package fusefat)")
        });
        assert!(
            out.status.success(),
            "cannot mount a FAT image with fusefat (is /dev/fuse there?): {}",
            stderr(&out)
        );
        FatDisk { mount, _dir: dir }
    }
}

impl Drop for FatDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("fusermount")
            .arg("-u")
            .arg(&self.mount)
            .status();
    }
}

/// The names of the entries of `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// Regression: on a FAT disk (where rclone itself does not know the case is ignored) a user's
// file differing only in case was overwritten, and case-only renames moved files onto
// themselves.
#[test]
fn a_fat_disk_that_ignores_case_gets_backups_and_case_only_renames() {
    let disk = FatDisk::mount();
    let dir = disk.mount.join("music");
    fs::create_dir(&dir).unwrap();
    let remote = dir.to_str().unwrap();
    let env = converted(&[]);
    let push_here = |args: &[&str]| {
        let out = env
            .command("push")
            .args(["--json", "--remote", remote])
            .args(args)
            .env("MUSYNC_RCLONE_FLAGS", FAIL_FAST)
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}\n{json}",
            stderr(&out)
        );
        json
    };
    let user = b"the user's own take".to_vec();
    write(&dir.join(TRACK.to_uppercase()), &user);
    let json = push_here(&[]);
    assert_eq!(json["backed_up"], 1, "{json}");
    let backups = dir.join(".musync-backups");
    let kept: Vec<Vec<u8>> = files(&backups)
        .iter()
        .map(|f| fs::read(backups.join(f)).unwrap())
        .collect();
    assert_eq!(kept, [user]);

    rename_in_library(
        &env,
        "Jazz/Miles Quartet/Blue Session",
        "Jazz/Miles Quartet/blue session",
    );
    let json = push_here(&["--no-backup"]);
    assert_eq!(
        (json["moved"].as_u64(), json["deleted"].as_u64()),
        (Some(3), Some(0)),
        "{json}"
    );
    let album = dir.join("Jazz/Miles Quartet");
    assert_eq!(names(&album), ["blue session"]);
    rename_in_library(
        &env,
        "Jazz/Miles Quartet/blue session/02 - Second Take.flac",
        "Jazz/Miles Quartet/blue session/02 - second take.flac",
    );
    let json = push_here(&["--no-backup"]);
    assert_eq!(
        (json["moved"].as_u64(), json["deleted"].as_u64()),
        (Some(1), Some(0)),
        "{json}"
    );
    let staged = env.staged("Jazz/Miles Quartet/blue session/02 - second take.mp3");
    let landed = album.join("blue session/02 - second take.mp3");
    assert_eq!(fs::read(landed).ok(), Some(fs::read(staged).unwrap()));
    let json = push_here(&[]);
    assert_eq!(
        ["uploaded", "moved", "deleted", "backed_up"].map(|k| json[k].as_u64()),
        [Some(0); 4],
        "{json}"
    );
}

// The backup folder itself a symbolic link: backups would be moved through it, outside the
// remote. The push is refused (exit 3) and changes nothing.
#[test]
fn a_linked_backup_folder_refuses_the_push() {
    let remote = Remote::start(Kind::Local);
    let env = converted(&[]);
    let outside = env.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, remote.dir.join(".musync-backups")).unwrap();
    let (json, out) = push(&env, &remote, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}\n{json}");
    assert!(
        err.contains(".musync-backups") && err.contains("symbolic link"),
        "{err}"
    );
    assert!(files(&remote.dir).is_empty() && files(&outside).is_empty());
}
