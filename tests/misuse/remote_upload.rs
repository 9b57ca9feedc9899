//! An upload that is stopped (kill -9, Ctrl-C, SIGTERM) or whose server stops answering leaves
//! nothing partial under a final name, ends in bounded time, and the next push converges; with
//! Debian's rclone 1.60 and the current release (regression: a killed push left truncated MP3s
//! under their final names, and a push to a dead-but-connected server hung for good).

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::remotes::{self, FAIL_FAST, Kind, Remote};
use crate::util::*;

/// Where an upload waits on the remote before its rename into place.
const UPLOAD_DIR: &str = ".musync-tmp/";
/// Slow enough that a signal lands mid-transfer: each staged MP3 is about 300 kB.
const SLOW: &str = "--bwlimit 100k";

/// A converted library of a few MP3s large enough to be caught mid-transfer.
fn converted() -> Env {
    let env = Env::empty();
    for i in 0..4 {
        make_flac(&env.lib(&format!("Album/{i:02}.flac")), 20.0, &[]);
    }
    assert_eq!(env.convert_json(&[]).1, 0);
    env
}

fn push_cmd(env: &Env, remote: &Remote, rclone: &Path, flags: &str) -> Command {
    let mut cmd = env.command("push");
    cmd.args(["--remote", &remote.spec])
        .envs(remote.envs())
        .env("MUSYNC_RCLONE", rclone)
        .env("MUSYNC_RCLONE_FLAGS", format!("{FAIL_FAST} {flags}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn push(env: &Env, remote: &Remote, rclone: &Path) -> Output {
    push_cmd(env, remote, rclone, "")
        .stdout(Stdio::piped())
        .output()
        .unwrap()
}

/// Waits until bytes are arriving on the remote: some file in the upload folder (whole, part,
/// or rclone's own `….partial`) is not empty, or one under a final name is short.
fn wait_for_partial(remote: &Remote, env: &Env, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = files(&remote.dir).into_iter().any(|f| {
            let size = fs::metadata(remote.dir.join(&f)).map_or(0, |m| m.len());
            match f.strip_prefix(UPLOAD_DIR) {
                Some(_) => size > 0,
                None => fs::metadata(env.staged(&f)).is_ok_and(|m| size < m.len()),
            }
        });
        if started {
            return;
        }
        let seen = files(&remote.dir);
        assert!(
            Instant::now() < deadline,
            "{what}: no upload started: {seen:?}"
        );
        sleep(Duration::from_millis(5));
    }
}

/// Files outside musync's hidden folders whose size differs from the staged file of that name.
fn partial_under_final_names(remote: &Remote, env: &Env) -> Vec<String> {
    files(&remote.dir)
        .into_iter()
        .filter(|f| !f.starts_with(UPLOAD_DIR) && !f.starts_with(".musync-backups/"))
        .filter(|f| {
            let on_remote = fs::metadata(remote.dir.join(f)).unwrap().len();
            fs::metadata(env.staged(f)).map_or(true, |m| m.len() != on_remote)
        })
        .map(|f| {
            format!(
                "{f} ({} bytes)",
                fs::metadata(remote.dir.join(&f)).unwrap().len()
            )
        })
        .collect()
}

/// The next push converges: exit 0, the remote equal to the mirror, no upload leftovers.
fn assert_converges(env: &Env, remote: &Remote, rclone: &Path, what: &str) {
    let out = push(env, remote, rclone);
    assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
    let remote_files: Vec<String> = files(&remote.dir)
        .into_iter()
        .filter(|f| !f.starts_with(".musync-backups/"))
        .collect();
    assert_eq!(remote_files, env.staged_files(), "{what}: remote differs");
    for f in &remote_files {
        assert_eq!(
            fs::read(remote.dir.join(f)).unwrap(),
            fs::read(env.staged(f)).unwrap(),
            "{what}: {f} differs"
        );
    }
}

/// rclone processes whose parent is `pid`.
fn rclone_children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so split after its last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(pid) && head.ends_with("(rclone") {
            found.push(child);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, t)| !t.trim_start().starts_with('Z'))
    })
}

fn signal(pid: u32, sig: &str) {
    run(Command::new("kill").args(["-s", sig, &pid.to_string()]));
}

fn name(rclone: &Path) -> String {
    let out = run(Command::new(rclone).arg("version")).stdout;
    let out = String::from_utf8_lossy(&out);
    out.split_whitespace().nth(1).unwrap_or("?").to_owned()
}

/// kill -9 of musync mid-upload, on every backend with both rclones: no file under a final name
/// is partial, and the next push converges (regression: sftp with rclone 1.60 kept a
/// 294,912-byte file where 967,789 were due).
#[test]
fn killed_upload_leaves_nothing_partial_under_a_final_name() {
    let env = converted();
    for rclone in remotes::rclones() {
        for kind in remotes::all() {
            let what = format!("{kind:?} with rclone {}", name(&rclone));
            let remote = Remote::start(kind);
            let mut child: Child = push_cmd(&env, &remote, &rclone, SLOW).spawn().unwrap();
            wait_for_partial(&remote, &env, &what);
            child.kill().unwrap();
            let status = child.wait().unwrap();
            assert_eq!(status.signal(), Some(9), "{what}: ended before the kill");
            // rclone dies with musync (PR_SET_PDEATHSIG); give the server a moment to close.
            sleep(Duration::from_millis(300));
            assert_eq!(
                partial_under_final_names(&remote, &env),
                Vec::<String>::new(),
                "{what}: partial files under final names"
            );
            assert_converges(&env, &remote, &rclone, &what);
        }
    }
}

/// SIGTERM to musync alone during an upload: it stops rclone and exits 130 within a few
/// seconds, leaving no rclone running and nothing partial (regression: the first SIGTERM did
/// nothing). Ctrl-C in a terminal (SIGINT to the whole process group) does the same.
#[test]
fn sigterm_or_ctrl_c_during_an_upload_exits_130_at_once() {
    let env = converted();
    for rclone in remotes::rclones() {
        for (kind, sig) in [(Kind::Sftp, "TERM"), (Kind::Webdav, "INT")] {
            let what = format!("SIG{sig} on {kind:?} with rclone {}", name(&rclone));
            let remote = Remote::start(kind);
            let mut child = push_cmd(&env, &remote, &rclone, SLOW)
                .process_group(0)
                .spawn()
                .unwrap();
            wait_for_partial(&remote, &env, &what);
            let rclones = rclone_children(child.id());
            assert!(!rclones.is_empty(), "{what}: no rclone running");
            let sent = Instant::now();
            if sig == "INT" {
                // As a terminal sends it: to musync and rclone alike.
                run(Command::new("kill").args(["-s", "INT", "--", &format!("-{}", child.id())]));
            } else {
                signal(child.id(), sig);
            }
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if sent.elapsed() > Duration::from_secs(10) {
                    child.kill().unwrap();
                    panic!("{what}: still running 10 s after the signal");
                }
                sleep(Duration::from_millis(20));
            };
            let took = sent.elapsed();
            let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
            eprintln!("{what}: exit {:?} after {took:?}", status.code());
            assert_eq!(status.code(), Some(130), "{what}: {status}\n{err}");
            assert!(took < Duration::from_secs(5), "{what}: took {took:?}");
            assert!(
                !rclones.iter().any(|&p| alive(p)),
                "{what}: rclone still running"
            );
            assert_eq!(
                partial_under_final_names(&remote, &env),
                Vec::<String>::new(),
                "{what}"
            );
            assert_converges(&env, &remote, &rclone, &what);
        }
    }
}

/// An sftp server that stops answering mid-upload (SIGSTOP: connected but dead) fails the push
/// with exit 4 within twice rclone's `--timeout`, in one line saying the server did not answer;
/// once it answers again, the next push converges (regression: the push hung for good).
#[test]
fn a_server_that_stops_answering_fails_the_push_in_bounded_time() {
    let env = converted();
    // FAIL_FAST's `--timeout 10s`, made shorter: the bound is twice this.
    let timeout = Duration::from_secs(3);
    for rclone in remotes::rclones() {
        let what = format!("sftp with rclone {}", name(&rclone));
        let remote = Remote::start(Kind::Sftp);
        let server = remote.server_pid().unwrap();
        let flags = format!("{SLOW} --timeout {}s", timeout.as_secs());
        let mut child = push_cmd(&env, &remote, &rclone, &flags).spawn().unwrap();
        wait_for_partial(&remote, &env, &what);
        signal(server, "STOP");
        let stopped = Instant::now();
        let bound = timeout * 2 + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if stopped.elapsed() > bound * 2 {
                child.kill().unwrap();
                signal(server, "CONT");
                panic!(
                    "{what}: still running {:?} after the server stopped",
                    bound * 2
                );
            }
            sleep(Duration::from_millis(50));
        };
        let took = stopped.elapsed();
        let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        signal(server, "CONT");
        eprintln!(
            "{what}: exit {:?} {took:?} after the server stopped",
            status.code()
        );
        assert_eq!(status.code(), Some(4), "{what}: {status}\n{err}");
        assert!(took < bound, "{what}: took {took:?}, over {bound:?}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("did not answer"))
            .collect();
        assert_eq!(lines.len(), 1, "{what}: {err}");
        assert!(lines[0].starts_with("musync: "), "{what}: {err}");
        assert_eq!(
            partial_under_final_names(&remote, &env),
            Vec::<String>::new(),
            "{what}"
        );
        assert_converges(&env, &remote, &rclone, &what);
    }
}
