//! The command line's own output: completion scripts, manual pages, `--help`, and the progress
//! bar, drawn on a terminal (a pseudo-terminal from util-linux `script`) and never elsewhere.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::util::{Env, Run, make_flac, require, stderr};

fn musync(args: &[&str]) -> Output {
    Run::bare().args(args).ok()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The subcommands `musync --help` lists, `help` aside.
fn subcommands() -> Vec<String> {
    let help = stdout(&musync(&["--help"]));
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    for expected in [
        "convert",
        "tag",
        "push",
        "sync",
        "prune-backups",
        "completions",
        "man",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {help}");
    }
    names
}

/// Whether `program` can be run (it answers `--version`).
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run `program args` with `input` on stdin.
fn feed(program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// `script` parses with `shell`'s no-execute flag, if that shell is installed.
fn parses_in(shell: &str, no_exec: &str, script: &[u8]) {
    if !require(installed(shell), shell, "it is not installed") {
        return;
    }
    let out = feed(shell, &[no_exec], script);
    assert!(out.status.success(), "{shell} {no_exec}: {}", stderr(&out));
}

#[test]
fn bash_completion_is_valid_bash_and_names_the_subcommands() {
    let script = musync(&["completions", "bash"]).stdout;
    let out = feed("bash", &["-n"], &script);
    assert!(out.status.success(), "bash -n: {}", stderr(&out));
    let text = String::from_utf8(script).unwrap();
    assert!(text.contains("complete "), "{text}");
    for sub in subcommands() {
        assert!(
            text.contains(&sub),
            "{sub} missing from the bash completion"
        );
    }
    assert!(text.contains("--library") && text.contains("--genre-from"));
}

#[test]
fn zsh_completion_parses() {
    let script = musync(&["completions", "zsh"]).stdout;
    assert!(String::from_utf8_lossy(&script).contains("#compdef musync"));
    parses_in("zsh", "-n", &script);
}

#[test]
fn fish_completion_parses() {
    let script = musync(&["completions", "fish"]).stdout;
    assert!(String::from_utf8_lossy(&script).contains("complete -c musync"));
    parses_in("fish", "--no-execute", &script);
}

/// groff's (or man's) warnings about `page`, or None when neither is installed.
fn roff_warnings(page: &[u8]) -> Option<String> {
    let out = if installed("groff") {
        // -k: UTF-8 input through preconv, as man does; -ww: every warning; -z: no output.
        feed("groff", &["-k", "-man", "-Tutf8", "-ww", "-z"], page)
    } else if installed("man") {
        feed("man", &["-l", "-"], page)
    } else {
        println!("roff not checked: neither groff nor man is installed");
        return None;
    };
    assert!(out.status.success(), "{}", stderr(&out));
    Some(stderr(&out))
}

#[test]
fn man_page_is_valid_roff_with_the_exit_codes_and_every_subcommand() {
    let page = musync(&["man"]).stdout;
    if let Some(warnings) = roff_warnings(&page) {
        assert_eq!(warnings, "", "roff warnings");
    }
    let text = String::from_utf8(page).unwrap().replace("\\-", "-");
    assert!(text.contains("\n.TH musync 1 "), "{text}");
    assert!(text.contains(".SH \"EXIT STATUS\""), "{text}");
    assert!(
        text.contains("130") && text.contains("interrupted"),
        "{text}"
    );
    for sub in subcommands() {
        assert!(
            text.contains(&format!("musync-{sub}(1)")),
            "{sub} missing: {text}"
        );
    }
}

#[test]
fn man_dir_writes_a_valid_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = musync(&["man", "--dir", pages.to_str().unwrap()]);
    let mut expected = vec!["musync.1".to_owned()];
    expected.extend(subcommands().iter().map(|s| format!("musync-{s}.1")));
    for name in &expected {
        let path = pages.join(name);
        assert!(
            stdout(&out).contains(&*path.to_string_lossy()),
            "{name} not printed"
        );
        let page = std::fs::read(&path).unwrap();
        if let Some(warnings) = roff_warnings(&page) {
            assert_eq!(warnings, "", "roff warnings in {name}");
        }
        assert!(
            String::from_utf8(page).unwrap().contains("EXIT STATUS"),
            "{name}"
        );
    }
    expected.sort();
    assert_eq!(crate::util::files(&pages), expected);
}

#[test]
fn every_subcommands_help_lists_the_exit_codes() {
    for sub in subcommands() {
        let help = stdout(&musync(&[&sub, "--help"]));
        assert!(help.contains("Exit codes:"), "musync {sub} --help: {help}");
        for code in ["\n  0 ", "\n  3 ", "\n  130 "] {
            assert!(
                help.contains(code),
                "{code:?} in musync {sub} --help: {help}"
            );
        }
    }
}

/// A library that takes `convert --jobs 1` about a second: long enough for the bar to be drawn
/// a few times (its steady tick is 200 ms).
fn slow_library() -> Env {
    let env = Env::empty();
    for n in 1..=4 {
        make_flac(&env.lib(&format!("Artist/Album/{n:02}.flac")), 25.0, &[]);
    }
    env
}

/// `musync ARGS` with stdin, stdout and stderr on a pseudo-terminal: what the terminal got.
fn on_a_terminal(env: &Env, args: &[&str]) -> Option<String> {
    if !require(
        installed("script"),
        "util-linux script",
        "it is not installed",
    ) {
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_musync"))
        .chain(args.iter().copied())
        .map(quote)
        .collect();
    let out = crate::util::isolate(&mut Command::new("script"))
        .args(["--quiet", "--return", "--command"])
        .arg(command.join(" "))
        .arg("/dev/null")
        .env("SHELL", "/bin/sh")
        // A terminal type that draws, whatever the test runner's.
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env("XDG_CONFIG_HOME", env.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "script: {}", stderr(&out));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn progress_bar_is_drawn_on_a_terminal_and_cleared_before_the_summary() {
    let env = slow_library();
    let args = [
        "convert",
        "--library",
        path(&env.library),
        "--staging",
        path(&env.staging),
        "--jobs",
        "1",
    ];
    let Some(screen) = on_a_terminal(&env, &args) else {
        return;
    };
    let shown = screen.escape_debug().to_string();
    // Each redraw returns to the line's start and erases it.
    let redraws = screen.matches("\r\x1b[2K").count();
    assert!(redraws >= 2, "{redraws} redraws: {shown}");
    // The template in report::progress: bar, message, then (elapsed, ETA).
    assert!(
        screen.contains("files, ") && screen.contains("audio-min"),
        "{shown}"
    );
    assert!(screen.contains(", ETA "), "{shown}");
    // The last erase is the bar's clearing: only the summary follows, no bar left on the line.
    let after = screen.rsplit("\x1b[2K").next().unwrap();
    assert!(after.starts_with("Converted 4, "), "{shown}");
    assert!(!after.contains("ETA") && !after.contains('█'), "{shown}");
    assert_eq!(after.trim_end().lines().count(), 1, "{shown}");
}

#[test]
fn no_progress_codes_when_stderr_is_not_a_terminal() {
    let env = slow_library();
    let out = env
        .command("convert")
        .args(["--jobs", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for (name, stream) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains("\x1b["), "escape codes in {name}: {text:?}");
        assert!(!text.contains('\r'), "carriage return in {name}: {text:?}");
        assert!(!text.contains("ETA"), "progress in {name}: {text:?}");
    }
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Converted 4, "));
}
