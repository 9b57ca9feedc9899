//! Ctrl-C, `--log-file` and `--color`: SIGINT sent to the real musync process mid-run, and what
//! it leaves behind; the log file and the colour of stderr.

use std::fs;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Env, decoded, files, make_flac, stderr};

const INTERRUPTED: &str = "musync: interrupted; what was finished is saved, run again to continue";

/// A library of `n` tracks of `seconds` each, `A/NN.flac`.
fn library(n: usize, seconds: f64) -> Env {
    let env = Env::empty();
    for i in 0..n {
        make_flac(
            &env.lib(&format!("A/{i:02}.flac")),
            seconds,
            &[&format!("TITLE=Track {i}")],
        );
    }
    env
}

/// `convert --jobs 1 --json`, started in the background.
fn spawn_convert(env: &Env) -> Child {
    env.command("convert")
        .args(["--jobs", "1", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The finished MP3s in staging (temporaries left out).
fn finished(env: &Env) -> Vec<String> {
    env.staged_files()
        .into_iter()
        .filter(|f| f.ends_with(".mp3") && !f.contains(".musync-tmp-"))
        .collect()
}

fn temporaries(env: &Env) -> Vec<String> {
    files(&env.staging)
        .into_iter()
        .filter(|f| f.contains(".musync-tmp-"))
        .collect()
}

fn wait_for_first_mp3(env: &Env) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while finished(env).is_empty() {
        assert!(Instant::now() < deadline, "no file was ever finished");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn sigint(child: &Child) {
    let status = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

#[test]
fn first_ctrl_c_finishes_the_files_in_flight_and_saves_them() {
    let env = library(12, 20.0);
    let expected = decoded(&env.lib("A/00.flac")).0;
    let child = spawn_convert(&env);
    wait_for_first_mp3(&env);
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains(INTERRUPTED), "{}", stderr(&out));
    let first = json(&out);
    assert_eq!(first["interrupted"], true, "{first}");
    let staged = finished(&env);
    let n = staged.len();
    assert!(n < 12, "the Ctrl-C came too late to test anything");
    assert_eq!(first["converted"], n, "{first}");
    assert_eq!(
        temporaries(&env),
        Vec::<String>::new(),
        "in-flight files not finished"
    );
    for f in &staged {
        assert_eq!(decoded(&env.staged(f)).0, expected, "{f} is truncated");
    }
    let before: Vec<_> = staged
        .iter()
        .map(|f| fs::metadata(env.staged(f)).unwrap().modified().unwrap())
        .collect();

    // The manifest holds exactly the finished files: the rerun converts the others only.
    let (again, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["converted"], 12 - n, "{again}");
    assert_eq!(again["skipped"], n, "{again}");
    assert_eq!(again.get("interrupted"), None, "{again}");
    let after: Vec<_> = staged
        .iter()
        .map(|f| fs::metadata(env.staged(f)).unwrap().modified().unwrap())
        .collect();
    assert_eq!(
        before, after,
        "files finished before the Ctrl-C were redone"
    );
    assert_eq!(finished(&env).len(), 12);
    assert_eq!(temporaries(&env), Vec::<String>::new());
    for f in finished(&env) {
        assert_eq!(decoded(&env.staged(&f)).0, expected, "{f}");
    }
}

#[test]
fn second_ctrl_c_exits_at_once_and_the_next_run_completes() {
    let env = library(12, 30.0);
    let expected = decoded(&env.lib("A/00.flac")).0;
    let child = spawn_convert(&env);
    wait_for_first_mp3(&env);
    sigint(&child);
    // Apart, so the two signals are not merged into one while pending.
    std::thread::sleep(Duration::from_millis(30));
    let second = Instant::now();
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "took {:?} to exit",
        second.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    // At once: the file in flight was abandoned, so no summary was printed.
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(finished(&env).len() < 12);
    for f in finished(&env) {
        assert_eq!(decoded(&env.staged(&f)).0, expected, "{f} is truncated");
    }

    let (again, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(
        again["converted"].as_u64().unwrap() + again["skipped"].as_u64().unwrap(),
        12,
        "{again}"
    );
    assert_eq!(finished(&env).len(), 12);
    assert_eq!(temporaries(&env), Vec::<String>::new(), "temporaries left");
    for f in finished(&env) {
        assert_eq!(decoded(&env.staged(&f)).0, expected, "{f}");
    }
    let (last, code) = env.convert_json(&[]);
    assert_eq!((last["converted"].as_u64(), code), (Some(0), 0), "{last}");
}

#[test]
fn log_file_gets_timestamped_actions_and_a_summary_per_run_appended() {
    let env = Env::empty();
    make_flac(&env.lib("A/one.flac"), 1.0, &[]);
    make_flac(&env.lib("A/two.flac"), 1.0, &[]);
    let log = env.dir.path().join("musync.log");
    let log_arg = log.to_str().unwrap();
    // -q on the terminal changes nothing in the log.
    let out = env.convert(&["-q", "--log-file", log_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // Another length, so not taken for two.flac renamed.
    make_flac(&env.lib("A/three.flac"), 2.0, &[]);
    fs::remove_file(env.lib("A/two.flac")).unwrap();
    let out = env.convert(&["--log-file", log_arg]);
    assert!(out.status.success(), "{}", stderr(&out));

    let text = fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "colour in the log:\n{text}");
    let stamp = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z +[A-Z]+ ").unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        assert!(stamp.is_match(line), "no timestamp: {line}\n{text}");
    }
    let position = |needle: &str| {
        let found: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(needle))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{needle:?} is not on exactly one line:\n{text}"
        );
        found[0]
    };
    let one = position("converted A/one.flac -> A/one.mp3");
    let two = position("converted A/two.flac -> A/two.mp3");
    let first_summary =
        position("convert: converted 2, copied 0, retagged 0, renamed 0, removed 0");
    let three = position("converted A/three.flac -> A/three.mp3");
    let removed = position("removed A/two.mp3");
    let second_summary =
        position("convert: converted 1, copied 0, retagged 0, renamed 0, removed 1");
    assert!(one.max(two) < first_summary, "{text}");
    assert!(first_summary < three.min(removed), "{text}");
    assert!(three.max(removed) < second_summary, "{text}");
    assert_eq!(second_summary, lines.len() - 1, "{text}");
}

#[test]
fn color_follows_the_flag_and_no_color() {
    let env = Env::empty();
    make_flac(&env.lib("A/one.flac"), 1.0, &[]);
    let run = |args: &[&str], no_color: bool| {
        fs::remove_dir_all(&env.staging).ok();
        let mut cmd = env.command("convert");
        cmd.args(["-v"]).args(args).env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("converted A/one.flac"),
            "{}",
            stderr(&out)
        );
        stderr(&out).contains('\u{1b}')
    };
    assert!(
        run(&["--color", "always"], false),
        "--color always has no colour"
    );
    assert!(!run(&["--color", "never"], false));
    // stderr is a pipe here: auto means none.
    assert!(!run(&[], false));
    assert!(!run(&["--color", "auto"], true));
    // The flag, given on the command line, wins over the environment.
    assert!(run(&["--color", "always"], true));
}
