//! The security review's guarantees, each attacked through the real binary: no file name, tag
//! or remote entry makes musync write or delete outside the staging folder or the remote root,
//! no file name reaches rclone where it could be read as a flag, and no secret (a password in
//! the remote's connection string, the Subsonic password, token or salt) shows in stdout,
//! stderr, `--log-file`, `--json` or rclone's arguments.
//!
//! rclone runs through a recording stand-in (`MUSYNC_RCLONE`): it logs every argument vector
//! and its environment's `RCLONE_*` names, then runs the real rclone (or fails a chosen call).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::remotes::{FAIL_FAST, Kind, Remote};
use crate::util::*;

/// Logs each call as its arguments separated by 0x1f, one call a line (and the calls that got
/// musync's Subsonic password in their environment, in `subsonic-password`); fails the calls whose
/// operation is named in `fail` (exit 1, before any work); else runs the real rclone.
const RECORDER: &str = r#"#!/bin/sh
here=$(dirname "$0")
for a in "$@"; do printf '%s\037' "$a"; done >> "$here/argv"
printf '\n' >> "$here/argv"
if [ -n "${MUSYNC_SUBSONIC_PASSWORD+set}" ]; then echo "$1" >> "$here/subsonic-password"; fi
if grep -qx "$1" "$here/fail" 2>/dev/null; then
    echo "ERROR : injected failure of $1" >&2
    exit 1
fi
exec 'REAL' "$@"
"#;

/// The recording stand-in rclone, in a folder of its own.
struct Recorder {
    dir: tempfile::TempDir,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            dir: stand_in_rclone(RECORDER),
        }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("rclone")
    }

    /// Make every later call of `op` fail.
    fn fail(&self, op: &str) {
        fs::write(self.dir.path().join("fail"), format!("{op}\n")).unwrap();
    }

    /// The calls that could read musync's Subsonic password.
    fn saw_subsonic_password(&self) -> String {
        fs::read_to_string(self.dir.path().join("subsonic-password")).unwrap_or_default()
    }

    /// Every call's arguments so far.
    fn calls(&self) -> Vec<Vec<String>> {
        let log = fs::read_to_string(self.dir.path().join("argv")).unwrap_or_default();
        log.lines()
            .map(|l| {
                l.split('\x1f')
                    .filter(|a| !a.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect()
    }
}

/// `musync SUBCOMMAND --remote REMOTE --json -v --log-file LOG ARGS` through `recorder`.
fn musync(env: &Env, subcommand: &str, remote: &Remote, rec: &Recorder, args: &[&str]) -> Output {
    env.run(subcommand)
        .json()
        .args(["-v"])
        .remote(remote)
        .arg("--log-file")
        .arg(log_file(env))
        .args(args)
        .env("MUSYNC_RCLONE", rec.bin())
        .env("MUSYNC_RCLONE_FLAGS", FAIL_FAST)
        .output()
}

fn log_file(env: &Env) -> PathBuf {
    env.dir.path().join("musync.log")
}

fn json(out: &Output) -> Value {
    strict_json(out)
}

/// Everything a user or another program sees of a run: stdout, stderr and the log file.
fn shown(env: &Env, out: &Output) -> String {
    let log = fs::read_to_string(log_file(env)).unwrap_or_default();
    format!(
        "{}{}{log}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    )
}

fn assert_hidden(text: &str, secrets: &[&str], what: &str) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

/// A library of copies of one small fixture FLAC under each of `names`.
fn library_of(names: &[&str]) -> Env {
    let env = Env::empty();
    let flac = fixtures().join("Jazz/Miles Quartet/Blue Session/01 - Opening.flac");
    for name in names {
        let path = env.lib(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::copy(&flac, path).unwrap();
    }
    env
}

/// Every file and symlink under `dir`, not following symlinks: the sha256 of each file, the
/// target of each symlink.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            let what = if e.file_type().is_symlink() {
                format!("-> {}", fs::read_link(e.path()).unwrap().display())
            } else {
                let digest = Sha256::digest(fs::read(e.path()).unwrap());
                digest.iter().map(|b| format!("{b:02x}")).collect()
            };
            (rel, what)
        })
        .collect()
}

const FLAG_NAMES: [&str; 6] = [
    "--delete-excluded.flac",
    "-v.flac",
    "--config=x/-r.flac",
    "-/--dry-run.flac",
    "-x/--files-from=y/-a.flac",
    "--max-delete=0/--/-- -.flac",
];

/// Asserts that no call put a name-derived word before its `--`, nor one starting with '-'
/// after it.
fn assert_names_are_not_flags(calls: &[Vec<String>], names: &[&str]) {
    let words: Vec<String> = names
        .iter()
        .flat_map(|n| n.split('/'))
        .flat_map(|w| [w.to_owned(), w.replace(".flac", ".mp3")])
        .filter(|w| w.len() > 2)
        .collect();
    for call in calls {
        let dashes = call.iter().position(|a| a == "--");
        let (flags, args) = call.split_at(dashes.unwrap_or(call.len()));
        for word in &words {
            assert!(
                !flags.iter().any(|a| a.contains(word.as_str())),
                "{word:?} reached rclone's flags: {call:?}"
            );
        }
        if call[0] != "version" {
            assert!(dashes.is_some(), "no `--` in {call:?}");
        }
        let positional = args.iter().skip(1);
        assert!(
            !positional.clone().any(|a| a.starts_with('-')),
            "an argument after `--` starts with '-': {call:?}"
        );
    }
}

/// Names that read as rclone flags, at every level: converted, pushed, renamed and deleted on
/// a local remote, each call's arguments recorded. Every name travels in a `--files-from-raw`
/// list or after `--`, and the remote ends equal to the mirror.
#[test]
fn names_like_flags_never_reach_rclone_as_flags() {
    let env = library_of(&FLAG_NAMES);
    let remote = Remote::start(Kind::Local);
    let rec = Recorder::new();
    let (converted, code) = env.convert_json(&[]);
    assert_eq!(
        (code, &converted["converted"]),
        (0, &6.into()),
        "{converted}"
    );
    let out = musync(&env, "push", &remote, &rec, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["uploaded"], 6);
    assert_eq!(remote_tree(&remote), mirror_tree(&env));

    // Renamed folders (one `move` each) and a file renamed alone (`moveto`), then a deletion
    // with its backup.
    // (Below the top folder, which `--genre-from top` reads: a rename there re-tags.)
    fs::rename(env.lib("-x/--files-from=y"), env.lib("-x/--from=z")).unwrap();
    fs::rename(env.lib("-v.flac"), env.lib("-w.flac")).unwrap();
    fs::remove_file(env.lib("--delete-excluded.flac")).unwrap();
    assert_eq!(env.convert_json(&[]).1, 0);
    let out = musync(&env, "push", &remote, &rec, &["--max-delete", "100%"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed = json(&out);
    assert_eq!(
        (&pushed["moved"], &pushed["deleted"], &pushed["backed_up"]),
        (&2.into(), &1.into(), &1.into()),
        "{pushed}"
    );
    assert_eq!(remote_tree(&remote), mirror_tree(&env));
    fs::remove_file(env.lib("-/--dry-run.flac")).unwrap();
    assert_eq!(env.convert_json(&[]).1, 0);
    let args = ["--no-backup", "--max-delete", "100%"];
    let out = musync(&env, "push", &remote, &rec, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["deleted"], 1);
    assert_eq!(remote_tree(&remote), mirror_tree(&env));

    let calls = rec.calls();
    let ops: Vec<&str> = calls.iter().map(|c| c[0].as_str()).collect();
    for op in ["lsjson", "copy", "move", "moveto", "delete"] {
        assert!(ops.contains(&op), "no {op} call to check: {ops:?}");
    }
    let renamed = ["-x/--from=z/-a.flac", "-w.flac"];
    assert_names_are_not_flags(&calls, &[&FLAG_NAMES[..], &renamed].concat());
    // What a name in a list file could do if rclone read it as a filter: nothing was excluded.
    assert!(remote.dir.join("--max-delete=0/--/-- -.mp3").is_file());
}

/// A line break in a name cannot travel in rclone's one-name-a-line lists: that file fails on
/// its own line and the rest is pushed. (It used to fail the whole upload, on every push.)
#[test]
fn a_line_break_in_a_name_fails_alone() {
    let env = library_of(&["A/01.flac", "A/new\nline.flac", "-\n--dry-run.flac"]);
    assert_eq!(env.convert_json(&[]).1, 0);
    let remote = Remote::start(Kind::Local);
    let rec = Recorder::new();
    let out = musync(&env, "push", &remote, &rec, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let pushed = json(&out);
    assert_eq!(pushed["uploaded"], 1, "{pushed}");
    assert_eq!(pushed["failed"].as_array().unwrap().len(), 2, "{pushed}");
    assert!(
        stderr(&out).contains("A/new\\nline.mp3: a line break"),
        "{}",
        stderr(&out)
    );
    assert_eq!(files(&remote.dir), ["A/01.mp3"]);
    assert_names_are_not_flags(&rec.calls(), &["-\n--dry-run.flac"]);
}

/// Tags are data, never paths: `..`, absolute paths, NUL and line breaks in the title, artist,
/// album and genre leave the output at the library-relative path, and nothing is written
/// anywhere but staging.
#[test]
fn hostile_tags_do_not_steer_output_paths() {
    let env = library_of(&["Rock/Band/01 - Song.flac"]);
    const SCRIPT: &str = r#"
import sys
from mutagen.flac import FLAC
f = FLAC(sys.argv[1])
f["title"] = ["../../../escape\x00after-nul"]
f["artist"] = ["/etc/passwd"]
f["album"] = [".."]
f["albumartist"] = ["/tmp/musync-escape"]
f["genre"] = ["a\nb/../../c"]
f["tracknumber"] = ["../1"]
f.save()
"#;
    run(Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(env.lib("Rock/Band/01 - Song.flac")));
    let outside = snapshot(
        env.dir
            .path()
            .parent()
            .unwrap()
            .join("musync-escape")
            .as_path(),
    );
    for genre in [&[][..], &["--genre-from", "path"]] {
        let (json, code) = env.convert_json(genre);
        assert_eq!(code, 0, "{json}");
    }
    let tag = env.command("tag").arg("--json").output().unwrap();
    assert!(tag.status.success(), "{}", stderr(&tag));
    assert_eq!(env.staged_files(), ["Rock/Band/01 - Song.mp3"]);
    let mut top: Vec<String> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["library", "staging"], "written beside staging");
    assert_eq!(
        snapshot(
            env.dir
                .path()
                .parent()
                .unwrap()
                .join("musync-escape")
                .as_path()
        ),
        outside
    );
    // The tags themselves are carried over as text.
    let tags = mutagen(&env.staged("Rock/Band/01 - Song.mp3"));
    assert_eq!(tags["TPE1"], serde_json::json!(["/etc/passwd"]), "{tags:?}");
}

/// A folder inside staging that is a symlink to elsewhere (`staging/Rock -> outside`): convert
/// and tag neither write nor delete through it. Refusing with a line naming the path is the
/// expected behaviour; following it is not.
#[test]
fn staging_symlinks_are_not_written_through() {
    let env = library_of(&["Rock/Band/01 - Song.flac", "Jazz/02 - Other.flac"]);
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(outside.join("Band")).unwrap();
    fs::write(outside.join("Band/other.mp3"), "not musync's").unwrap();
    fs::write(outside.join("keep.txt"), "keep").unwrap();
    fs::create_dir_all(&env.staging).unwrap();
    symlink(&outside, env.staged("Rock")).unwrap();
    let before = snapshot(&outside);

    let (json, code) = env.convert_json(&[]);
    assert_eq!(
        snapshot(&outside),
        before,
        "convert wrote through the symlink: {json}"
    );
    assert_eq!(code, 1, "a symlink in staging went unreported: {json}");
    let failed = json["failed"].to_string();
    assert!(
        failed.contains("is a symlink"),
        "the failure does not say why: {json}"
    );
    assert!(
        env.staged("Jazz/02 - Other.mp3").is_file(),
        "the rest is converted"
    );
    let tag = env
        .command("tag")
        .args(["--genre-from", "path"])
        .output()
        .unwrap();
    assert_eq!(
        snapshot(&outside),
        before,
        "tag wrote through the symlink: {}",
        stderr(&tag)
    );

    // Made for real, then swapped for a symlink: a rename or a removal must not follow it.
    fs::remove_file(env.staged("Rock")).unwrap();
    assert_eq!(env.convert_json(&[]).1, 0);
    fs::rename(env.staged("Rock"), outside.join("Rock")).unwrap();
    symlink(outside.join("Rock"), env.staged("Rock")).unwrap();
    let before = snapshot(&outside);
    fs::rename(env.lib("Rock/Band"), env.lib("Rock/Group")).unwrap();
    let (json, code) = env.convert_json(&[]);
    assert_eq!(
        snapshot(&outside),
        before,
        "convert renamed through the symlink"
    );
    assert_eq!(code, 1, "{json}");
    assert!(
        json["failed"].to_string().contains("is a symlink"),
        "{json}"
    );
    fs::remove_dir_all(env.lib("Rock")).unwrap();
    let (json, code) = env.convert_json(&["--force"]);
    assert_eq!(
        snapshot(&outside),
        before,
        "convert deleted through the symlink"
    );
    assert_eq!(code, 1, "{json}");
    assert!(
        json["failed"].to_string().contains("is a symlink"),
        "{json}"
    );
}

/// A staged folder swapped for a symlink after convert (same files, same stamps): push
/// refuses to upload through it, naming it, rather than send what lies outside staging.
#[test]
fn push_does_not_upload_through_a_staging_symlink() {
    let env = library_of(&["Rock/Band/01 - Song.flac", "Jazz/02 - Other.flac"]);
    assert_eq!(env.convert_json(&[]).1, 0);
    let remote = Remote::start(Kind::Local);
    let rec = Recorder::new();
    assert!(musync(&env, "push", &remote, &rec, &[]).status.success());
    let outside = env.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::rename(env.staged("Rock"), outside.join("Rock")).unwrap();
    symlink(outside.join("Rock"), env.staged("Rock")).unwrap();
    // Drift on the server: the push wants to upload the file again.
    fs::remove_file(remote.dir.join("Rock/Band/01 - Song.mp3")).unwrap();
    let out = musync(&env, "push", &remote, &rec, &[]);
    // musync's own refusal, not rclone failing: a guard (3), not 4.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Rock is a symlink"),
        "{}",
        stderr(&out)
    );
    assert!(!remote.dir.join("Rock/Band/01 - Song.mp3").exists());
}

/// A remote root holding a symlink to a folder elsewhere: rclone does not list through it, so
/// even `--delete-foreign` deletes nothing there, and nothing outside is overwritten.
#[test]
fn remote_symlinks_are_not_deleted_through() {
    let env = library_of(&["Jazz/01 - Song.flac"]);
    assert_eq!(env.convert_json(&[]).1, 0);
    let remote = Remote::start(Kind::Local);
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(outside.join("Rock")).unwrap();
    fs::write(outside.join("Rock/foreign.mp3"), "foreign").unwrap();
    fs::write(outside.join("Jazz-file.mp3"), "foreign").unwrap();
    symlink(&outside, remote.dir.join("Rock")).unwrap();
    symlink(outside.join("Jazz-file.mp3"), remote.dir.join("linked.mp3")).unwrap();
    let before = snapshot(&outside);
    let rec = Recorder::new();
    let out = musync(
        &env,
        "push",
        &remote,
        &rec,
        &["--delete-foreign", "--max-delete", "100%"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        snapshot(&outside),
        before,
        "push changed what the remote's symlinks point to"
    );
    assert!(remote.dir.join("Rock").is_symlink() && remote.dir.join("linked.mp3").is_symlink());
    assert!(remote.dir.join("Jazz/01 - Song.mp3").is_file());
}

/// `status` and `init` name the remote too; its password must not show there either.
#[test]
fn status_and_init_hide_the_remote_password() {
    let env = library_of(&["A/01.flac"]);
    assert_eq!(env.convert_json(&[]).1, 0);
    let dir = env.dir.path().join("remote");
    let spec = format!(":local,pass=NotShownAnywhere:{}", dir.display());
    for json in [&["--json"][..], &[]] {
        let out = env
            .command("status")
            .args(["--remote", &spec])
            .args(json)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_hidden(&shown(&env, &out), &["NotShownAnywhere"], "status");
    }
    let config = env.dir.path().join("config.toml");
    let out = crate::util::musync()
        .args([
            "--config",
            config.to_str().unwrap(),
            "init",
            "--remote",
            &spec,
            "--library",
        ])
        .arg(&env.library)
        .arg("--staging")
        .arg(&env.staging)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_hidden(&shown(&env, &out), &["NotShownAnywhere"], "init");
}

/// The obscured password of an sftp remote's connection string, as rclone's `pass=` takes it.
fn pass_of(spec: &str) -> String {
    let start = spec.find(",pass=").unwrap() + ",pass=".len();
    let rest = &spec[start..];
    rest[..rest.find([',', ':']).unwrap()].to_owned()
}

/// A password in the remote's connection string (`:sftp,…,pass=OBSCURED:`) never shows in
/// stdout, stderr, `--log-file` or `--json`, whatever happens: a clean push at -vv, a failed
/// upload, a refused push, and an unreachable server.
#[test]
fn remote_password_is_never_shown() {
    let mut remote = Remote::start(Kind::Sftp);
    let pass = pass_of(&remote.spec);
    let secrets = [pass.as_str(), "musync-secret"];
    let env = library_of(&["A/01.flac", "A/02.flac", "B/03.flac", "B/04.flac"]);
    assert_eq!(env.convert_json(&[]).1, 0);
    let rec = Recorder::new();

    let out = musync(&env, "push", &remote, &rec, &["-v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        shown(&env, &out).contains("running"),
        "-vv shows rclone's command"
    );
    assert_hidden(&shown(&env, &out), &secrets, "a clean push at -vv");

    fs::rename(env.lib("A/01.flac"), env.lib("A/05.flac")).unwrap();
    fs::create_dir_all(env.lib("C")).unwrap();
    fs::copy(env.lib("A/02.flac"), env.lib("C/06.flac")).unwrap();
    assert_eq!(env.convert_json(&[]).1, 0);
    rec.fail("copy");
    let out = musync(&env, "push", &remote, &rec, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(!json(&out)["failed"].as_array().unwrap().is_empty());
    assert_hidden(&shown(&env, &out), &secrets, "a failed upload");
    rec.fail("none");

    fs::remove_dir_all(env.lib("A")).unwrap();
    fs::remove_dir_all(env.lib("B")).unwrap();
    assert_eq!(env.convert_json(&["--force"]).1, 0);
    let out = musync(&env, "push", &remote, &rec, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_hidden(&shown(&env, &out), &secrets, "a refused push");

    for json in [true, false] {
        let mut verify = crate::util::musync();
        verify.args(["verify", "--remote", &remote.spec, "--staging"]);
        verify.arg(&env.staging).envs(remote.envs());
        let out = verify.args(json.then_some("--json")).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("Verified") || json);
        assert_hidden(&shown(&env, &out), &secrets, "verify");
    }

    remote.stop();
    let out = musync(&env, "push", &remote, &rec, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_hidden(&shown(&env, &out), &secrets, "an unreachable server");

    // rclone gets the secret out of its argument vector, in its environment.
    for call in rec.calls() {
        assert_hidden(&call.join(" "), &secrets, "rclone's arguments");
    }
}

/// A Subsonic server on loopback that answers every request with `answer`, its `ECHO` replaced
/// by the request's query (or closes the connection when `answer` is empty), until `done` is
/// called; `done` hands back the requests it got.
struct Stub {
    url: String,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Stub {
    fn start(answer: &'static str) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut requests = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let mut request = Vec::new();
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    request.extend_from_slice(&buf[..n]);
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                let query = request.split(['?', ' ']).nth(2).unwrap_or_default();
                let _ = conn.write_all(answer.replace("ECHO", query).as_bytes());
                requests.push(request);
            }
            requests
        });
        Stub { url, stop, thread }
    }

    fn done(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The values of `t`, `s` and `p` in the requests a stub got.
fn auth_values(requests: &[String]) -> Vec<String> {
    let mut values = Vec::new();
    for request in requests {
        for pair in request.split(['?', '&', ' ', '\n']) {
            if let Some((key @ ("t" | "s" | "p"), value)) = pair.trim().split_once('=') {
                assert!(!value.is_empty(), "{key} is empty: {request}");
                values.push(value.to_owned());
            }
        }
    }
    values
}

/// The Subsonic password, and the token and salt made from it, stay out of stdout, stderr,
/// `--log-file` and `--json` when the server refuses, fails, echoes the token back in its
/// error, redirects with it, or hangs up.
#[test]
fn subsonic_secrets_are_never_shown() {
    const PASSWORD: &str = "Sub-Secret-Pa55";
    // The fourth puts the request's query, token and salt included, in its error message.
    let echo = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n\
        {\"subsonic-response\":{\"status\":\"failed\",\"version\":\"1.16.1\",\"error\":\
        {\"code\":40,\"message\":\"ECHO\"}}}";
    let answers: [&'static str; 5] = [
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\nboom!",
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/rest/startScan.view?ECHO\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        echo,
        "",
    ];
    let env = library_of(&["A/01.flac"]);
    assert_eq!(env.convert_json(&[]).1, 0);
    let remote = Remote::start(Kind::Local);
    let rec = Recorder::new();
    let hex: String = PASSWORD.bytes().map(|b| format!("{b:02x}")).collect();
    for answer in answers {
        let stub = Stub::start(answer);
        let url = stub.url.clone();
        let _ = fs::remove_file(log_file(&env));
        let out = env
            .command("push")
            .args(["--json", "-vv", "--remote", &remote.spec, "--log-file"])
            .arg(log_file(&env))
            .args(["--subsonic-url", &url, "--subsonic-user", "admin"])
            .env("MUSYNC_SUBSONIC_PASSWORD", PASSWORD)
            .env("MUSYNC_RCLONE", rec.bin())
            .output()
            .unwrap();
        let requests = stub.done();
        let first = answer.lines().next().unwrap_or("hang-up");
        assert_eq!(out.status.code(), Some(4), "{first}: {}", stderr(&out));
        assert!(!requests.is_empty(), "{first}: no request reached the stub");
        let text = shown(&env, &out);
        assert!(
            text.contains(&url),
            "{first}: the error names no server: {text}"
        );
        let mut secrets = auth_values(&requests);
        secrets.extend([PASSWORD.to_owned(), hex.clone()]);
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_hidden(&text, &secrets, first);
    }
    assert_eq!(
        rec.saw_subsonic_password(),
        "",
        "rclone got the Subsonic password"
    );
}
