//! What the listener sees (issue 14): covers, picture types, Picard's tag mapping, native copies
//! reported as copies, and staged files a media server running as another user can read. Every
//! check reads the mirror with an independent reader (mutagen, ffprobe) or the file system.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use crate::util::{Env, files, stderr};

const BONUS: &str = "Jazz/Miles Quartet/Blue Session/03 - Bonus.mp3";

// Regression: native MP3 copies were listed as `convert X.mp3 -> X.mp3` and counted as converted.
#[test]
fn native_mp3_copies_are_copy_lines_and_a_copied_count() {
    let env = Env::demo();
    let dry = env.convert(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let plan = String::from_utf8_lossy(&dry.stdout);
    let line = plan
        .lines()
        .find(|l| l.contains("03 - Bonus"))
        .expect(&plan);
    assert_eq!(line, format!("copy    {BONUS} -> {BONUS} (new)"), "{plan}");
    assert_eq!(
        plan.lines().filter(|l| l.starts_with("convert ")).count(),
        7,
        "{plan}"
    );
    assert!(plan.contains("Would convert 7, copy 1, retag 0"), "{plan}");
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        (&json["converted"], &json["copied"]),
        (&7.into(), &1.into()),
        "{json}"
    );
    assert!(env.staged(BONUS).is_file());
}

// Regression: staged MP3s were created 0600 (tempfile's mode), unreadable to a media server
// running as another user.
#[test]
fn staged_files_are_readable_by_others_under_the_default_umask() {
    let env = Env::demo();
    let mut convert = env.command("convert");
    // The usual umask, whatever the test runner's is; set in the child only.
    // SAFETY: umask is async-signal-safe and touches nothing but the child's own mask.
    unsafe {
        convert.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let out = convert.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let staged: Vec<String> = files(&env.staging)
        .into_iter()
        .filter(|f| f.ends_with(".mp3"))
        .collect();
    assert_eq!(staged.len(), 8, "{staged:?}");
    for rel in staged {
        let mode = fs::metadata(env.staging.join(&rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644, "{rel}: {mode:o}");
    }
}
