//! The config file through the real binary: defaults for every command, flags winning,
//! profiles, the default location, include/exclude and pass-through, and errors.

use std::fs;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::util::*;

const OPENING: &str = "Jazz/Miles Quartet/Blue Session/01 - Opening.mp3";
const BONUS: &str = "Jazz/Miles Quartet/Blue Session/03 - Bonus.mp3";

/// `musync ARGS` with no config but what the test gives (`XDG_CONFIG_HOME` points into `env`).
fn musync(env: &Env, args: &[&str]) -> Output {
    Run::bare()
        .args(args)
        .env("XDG_CONFIG_HOME", env.dir.path().join("xdg"))
        .output()
}

fn ok(env: &Env, args: &[&str]) -> Value {
    let out = musync(env, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn write_config(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn genre(env: &Env, staging: &Path, rel: &str) -> Value {
    let _ = env;
    mutagen(&staging.join(rel))["TCON"].clone()
}

#[test]
fn settings_come_from_the_file_and_flags_win() {
    let env = Env::demo();
    let config = env.dir.path().join("musync.toml");
    let text = format!(
        "library = {:?}\nstaging = \"staging\"\ngenre-from = \"parent\"\n\n[profile.top]\nstaging = \"staging-top\"\ngenre-from = \"top\"\n",
        env.library.display().to_string()
    );
    write_config(&config, &text);
    let config = config.to_str().unwrap();
    // No --library or --staging: both from the file, staging relative to the file's folder.
    let converted = ok(&env, &["convert", "--config", config, "--json"]);
    assert_eq!(
        (&converted["converted"], &converted["copied"]),
        (&7.into(), &1.into()),
        "{converted}"
    );
    assert_eq!(
        genre(&env, &env.staging, OPENING),
        serde_json::json!(["Blue Session"])
    );
    // A flag wins over the file.
    let tagged = ok(
        &env,
        &["tag", "--config", config, "--genre-from", "top", "--json"],
    );
    assert_eq!(tagged["tagged"], 8, "{tagged}");
    assert_eq!(
        genre(&env, &env.staging, OPENING),
        serde_json::json!(["Jazz"])
    );
    // A profile wins over the top level.
    let other = env.dir.path().join("staging-top");
    ok(
        &env,
        &["convert", "--config", config, "--profile", "top", "--json"],
    );
    assert_eq!(genre(&env, &other, OPENING), serde_json::json!(["Jazz"]));
}

#[test]
fn the_default_file_is_read_and_include_exclude_pass_through_apply() {
    let env = Env::demo();
    let text = format!(
        "library = {:?}\nstaging = {:?}\ninclude = [\"Jazz\", \"Rock\"]\nexclude = [\"**/CD2\"]\npass-through = []\n",
        env.library.display().to_string(),
        env.staging.display().to_string()
    );
    write_config(&env.dir.path().join("xdg/musync/config.toml"), &text);
    ok(&env, &["convert", "--json"]);
    let staged: Vec<String> = env.staged_files();
    assert_eq!(
        staged,
        [
            "Jazz/Miles Quartet/Blue Session/01 - Opening.mp3",
            "Jazz/Miles Quartet/Blue Session/02 - Second Take.mp3",
            "Rock/Some Band/Live Album/CD1/01 - Intro.mp3",
        ],
        "the native {BONUS} does not pass through"
    );
    // Flags replace the file's lists.
    ok(
        &env,
        &[
            "convert",
            "--include",
            "Classical",
            "--pass-through",
            "mp3",
            "--force",
            "--json",
        ],
    );
    assert_eq!(
        env.staged_files(),
        [
            "Classical/Orchestra/Symphony/01 - Mono Movement.mp3",
            "Classical/Orchestra/Symphony/02 - HiRes.mp3"
        ]
    );
}

#[test]
fn config_errors_are_one_line_with_file_key_and_line() {
    let env = Env::demo();
    let bad = env.dir.path().join("bad.toml");
    let cases = [
        (
            "library = \"/m\"\nqualty = \"V2\"\n",
            "line 2: unknown field `qualty`",
        ),
        ("quality = \"V11\"\n", "line 1: quality: invalid quality"),
        (
            "[profile.phone]\njobs = \"two\"\n",
            "line 2: jobs: invalid type",
        ),
    ];
    for (text, want) in cases {
        write_config(&bad, text);
        let out = musync(
            &env,
            &[
                "convert",
                "--config",
                bad.to_str().unwrap(),
                "--library",
                "x",
                "--staging",
                "y",
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("musync: config {}: {want}", bad.display())),
            "{err}"
        );
    }
    let out = musync(&env, &["convert", "--config", "/nonexistent/musync.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/musync.toml"),
        "{}",
        stderr(&out)
    );
    write_config(&bad, "[profile.a]\n");
    let out = musync(
        &env,
        &[
            "convert",
            "--config",
            bad.to_str().unwrap(),
            "--profile",
            "b",
        ],
    );
    assert!(
        stderr(&out).contains("no profile b (profiles here: a)"),
        "{}",
        stderr(&out)
    );
}

/// `init` writes a config that the other commands then read, and says what it found.
#[test]
fn init_writes_a_working_config_and_checks_it() {
    let env = Env::demo();
    let config = env.dir.path().join("xdg/musync/config.toml");
    let remote = env.dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let (library, staging) = (env.library.to_str().unwrap(), env.staging.to_str().unwrap());
    let out = musync(
        &env,
        &[
            "init",
            "--library",
            library,
            "--staging",
            staging,
            "--remote",
            remote.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report.contains(&format!("wrote {}", config.display())),
        "{report}"
    );
    assert!(
        report.contains(&format!("library {library}: found")),
        "{report}"
    );
    assert!(
        report.contains("rclone v") && report.contains(": reachable"),
        "{report}"
    );
    // The written file parses, with the given values and the commented defaults.
    let converted = ok(&env, &["convert", "--json"]);
    assert_eq!(
        (
            converted["converted"].as_u64(),
            converted["copied"].as_u64()
        ),
        (Some(7), Some(1))
    );
    assert_eq!(ok(&env, &["push", "--json"])["uploaded"], 8);
    assert!(remote.join(OPENING).is_file());
    // No overwriting without --force; an unreachable remote is reported, not fatal.
    let again = musync(&env, &["init", "--library", library]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = musync(
        &env,
        &["init", "--force", "--remote", "/nonexistent/remote:x"],
    );
    let report = String::from_utf8(forced.stdout).unwrap();
    assert!(report.contains("library: not set"), "{report}");
}
