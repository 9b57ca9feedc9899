//! The staged pipeline as library code: `musync::pipeline` called directly, without the binary,
//! on a copy of the demo library and a local-folder remote.

use std::path::Path;

use musync::convert::{ConvertSettings, Mode};
use musync::pipeline::{self, Output, SyncSettings};
use musync::push::{PushSettings, plan::DeleteCap};
use musync::report::{Exit, Stopped};

use crate::util::{Env, files};

fn convert_settings(env: &Env, dry_run: bool) -> ConvertSettings {
    ConvertSettings {
        library: env.library.clone(),
        staging: env.staging.clone(),
        overrides: musync::settings::Overrides::default(),
        mode: Mode::Convert,
        jobs: 2,
        dry_run,
        force: false,
        quiet: true,
        selection: musync::scan::Selection::new(&[], &[], true).unwrap(),
    }
}

fn sync_settings(env: &Env, remote: &Path, dry_run: bool) -> SyncSettings {
    SyncSettings {
        bisync: None,
        convert: convert_settings(env, dry_run),
        push: PushSettings {
            staging: env.staging.clone(),
            remote: remote.to_str().unwrap().to_owned(),
            dry_run,
            backup: true,
            delete_foreign: false,
            max_delete: DeleteCap::Percent(50),
            predicted: None,
        },
        subsonic: None,
        output: Output {
            json: true,
            quiet: true,
        },
        wait: false,
    }
}

fn mp3s(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.ends_with(".mp3") && !f.starts_with(".musync"))
        .collect()
}

#[test]
fn sync_converts_tags_and_pushes_the_whole_library() {
    let env = Env::demo();
    let remote = env.dir.path().join("remote");
    std::fs::create_dir(&remote).unwrap();
    let exit = pipeline::sync(sync_settings(&env, &remote, false)).unwrap();
    assert_eq!(exit, Exit::Ok);
    let staged = mp3s(&env.staging);
    assert!(!staged.is_empty());
    assert_eq!(mp3s(&remote), staged);
    // A second sync finds nothing to do and still ends well.
    assert_eq!(
        pipeline::sync(sync_settings(&env, &remote, false)).unwrap(),
        Exit::Ok
    );
}

#[test]
fn a_dry_run_sync_changes_nothing() {
    let env = Env::demo();
    let remote = env.dir.path().join("remote");
    std::fs::create_dir(&remote).unwrap();
    let exit = pipeline::sync(sync_settings(&env, &remote, true)).unwrap();
    assert_eq!(exit, Exit::Ok);
    assert!(mp3s(&env.staging).is_empty());
    assert!(files(&remote).is_empty());
}

#[test]
fn a_missing_library_is_a_refusal_with_exit_3() {
    let env = Env::empty();
    std::fs::remove_dir(&env.library).unwrap();
    let output = Output {
        json: false,
        quiet: true,
    };
    let err = pipeline::stage(&convert_settings(&env, false), output, false).unwrap_err();
    let stopped = err.downcast_ref::<Stopped>().expect("a typed stop");
    assert_eq!(stopped.exit, Exit::Refused);
    assert_eq!(musync::commands::exit_for(&err), Exit::Refused);
    assert!(!env.staging.exists());
}
