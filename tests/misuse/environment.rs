//! The suite ignores the developer's own setup: a hostile `~/.config/musync/config.toml`, an
//! rclone config, and `MUSYNC_*`/`RCLONE_*` variables change no test's outcome (regression: the
//! tests used to read the developer's config and variables, which could point them at a real
//! remote).

use std::fs;
use std::process::Command;

/// Set in the child run, so that it does not start another.
const CHILD: &str = "HOSTILE_SETUP_CHILD";

/// Tests that any of the hostile settings below would break if they reached musync.
const VICTIMS: [&str; 4] = [
    "convert::demo_library_mirrors_with_exact_lengths",
    "convert::second_run_does_nothing_and_touches_nothing",
    "push::sync_runs_every_stage_into_a_local_folder",
    "everyday::status_shows_each_stage_and_writes_nothing",
];

#[test]
fn a_hostile_user_setup_changes_no_test() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // Anything written under here means a test followed the user's setup.
    let trap = dir.path().join("trap");
    fs::create_dir_all(home.join(".config/musync")).unwrap();
    fs::create_dir_all(home.join(".config/rclone")).unwrap();
    let t = trap.display();
    fs::write(
        home.join(".config/musync/config.toml"),
        format!(
            "library = \"{t}/library\"\nstaging = \"{t}/staging\"\nremote = \"{t}/remote\"\n\
             quality = \"V9\"\nid3 = \"2.3\"\njobs = 1\ngenre-from = \"level:3\"\n\
             include = [\"Nothing\"]\npass-through = []\nmax-delete = \"100%\"\n\
             delete-foreign = true\n"
        ),
    )
    .unwrap();
    let rclone_conf = home.join(".config/rclone/rclone.conf");
    fs::write(
        &rclone_conf,
        format!("[nas]\ntype = alias\nremote = {t}/nas\n"),
    )
    .unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "--test-threads=2"])
        .args(VICTIMS)
        .env(CHILD, "1")
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("MUSYNC_RCLONE", trap.join("no-rclone"))
        .env("MUSYNC_RCLONE_FLAGS", "--dry-run")
        .env("MUSYNC_SUBSONIC_PASSWORD", "hostile")
        .env("RCLONE_CONFIG", &rclone_conf)
        .env("RCLONE_DRY_RUN", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "with a hostile user setup: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ran = format!("test result: ok. {} passed", VICTIMS.len());
    assert!(stdout.contains(&ran), "expected {ran}: {stdout}");
    assert!(
        !trap.exists(),
        "a test wrote into the user's configured folders"
    );
}
