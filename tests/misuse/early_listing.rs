//! `sync` has rclone list the remote while convert and tag scan, and the push plans from that
//! listing: whatever the listing's outcome, the sync says and exits as when the push listed.

use std::fs;
use std::process::Output;

use crate::util::*;

const DOWN: &str = "nosuchremote:music";

fn sync(env: &Env, remote: &str, args: &[&str]) -> Output {
    env.command("sync")
        .arg("--remote")
        .arg(remote)
        .args(args)
        .output()
        .unwrap()
}

/// The lines of stderr that speak of the listing.
fn listing_errors(out: &Output) -> Vec<String> {
    (stderr(out).lines())
        .filter(|l| l.contains("lsjson"))
        .map(str::to_owned)
        .collect()
}

/// A remote that fails to list fails the sync's push, once, with exit 4, after convert and
/// tag did their work; a dry run says the same.
#[test]
fn a_remote_that_fails_to_list_is_reported_once_with_exit_4() {
    let env = Env::demo();
    for args in [&["--dry-run"][..], &[]] {
        let out = sync(&env, DOWN, args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", stderr(&out));
        let errors: Vec<String> = stderr(&out).lines().map(str::to_owned).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {errors:?}");
        assert!(
            errors[0].starts_with("musync: rclone lsjson failed (exit 1): "),
            "{args:?}: {errors:?}"
        );
        assert!(errors[0].contains(DOWN), "{args:?}: {errors:?}");
    }
    assert!(!env.staged_files().is_empty(), "convert did not run");
}

/// A sync whose convert is refused runs no push: a remote that fails to list is not reported
/// (the listing started early is dropped unread), and the refusal is the one line, exit 3.
#[test]
fn a_refused_convert_reports_no_listing_error() {
    let env = Env::demo();
    assert_eq!(env.convert_json(&[]).1, 0);
    fs::remove_dir_all(&env.library).unwrap();
    fs::create_dir(&env.library).unwrap();
    let out = sync(&env, DOWN, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(listing_errors(&out), Vec::<String>::new());
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
}

/// The listing taken while convert ran is the remote as the push finds it: a sync that
/// converts and pushes leaves the remote equal to the mirror, and the next one does nothing.
#[test]
fn a_sync_pushes_what_convert_made_and_the_next_sync_does_nothing() {
    let env = Env::demo();
    let remote = env.dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let remote = remote.to_str().unwrap();
    let out = sync(&env, remote, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(files(std::path::Path::new(remote)), env.staged_files());
    let out = sync(&env, remote, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = strict_json(&out);
    assert_eq!(json["push"]["uploaded"], 0, "{json}");
    assert_eq!(
        json["push"]["unchanged"],
        env.staged_files().len(),
        "{json}"
    );
}
