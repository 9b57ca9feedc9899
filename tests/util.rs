//! The test harness: temporary libraries made from the fixtures or from the reference `flac`
//! tool, a runner for the real binary, and independent readers of what it wrote.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use sha2::{Digest, Sha256};

mod library;
mod mirror;
mod rng;

pub use library::Library;
pub use mirror::{Lengths, assert_settled, decode_frames, leftovers, mirror_tree, remote_tree};
pub use rng::Rng;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/library")
}

/// The real `musync` binary, cut off from the developer's own setup (see `isolate`).
pub fn musync() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_musync"));
    isolate(&mut cmd);
    cmd
}

/// Give a command (musync, or a program that starts it) an empty HOME and XDG_CONFIG_HOME of
/// its own and none of the `MUSYNC_*` or `RCLONE_*` variables of the environment the tests run
/// in, so that no user's config file, rclone config or settings can change a test's outcome or
/// point it at a real remote. A test sets what it needs after this.
pub fn isolate(cmd: &mut Command) -> &mut Command {
    let home = isolated_home();
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"));
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("MUSYNC_") || key_str.starts_with("RCLONE_") {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// One empty folder per test process, standing in for the user's home.
pub fn isolated_home() -> &'static Path {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let home =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("home-{}", std::process::id()));
        fs::create_dir_all(home.join(".config")).unwrap();
        home
    })
}

/// A library and a staging folder in a fresh temporary directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub library: PathBuf,
    pub staging: PathBuf,
}

impl Env {
    pub fn empty() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let library = dir.path().join("library");
        let staging = dir.path().join("staging");
        fs::create_dir(&library).unwrap();
        Env {
            dir,
            library,
            staging,
        }
    }

    /// A copy of the demo library.
    pub fn demo() -> Env {
        let env = Env::empty();
        copy_tree(&fixtures(), &env.library);
        env
    }

    pub fn lib(&self, rel: &str) -> PathBuf {
        self.library.join(rel)
    }

    pub fn staged(&self, rel: &str) -> PathBuf {
        self.staging.join(rel)
    }

    pub fn command(&self, subcommand: &str) -> Command {
        let mut cmd = musync();
        cmd.arg(subcommand)
            .arg("--library")
            .arg(&self.library)
            .arg("--staging")
            .arg(&self.staging)
            .stdin(Stdio::null());
        cmd
    }

    /// Run `musync convert ARGS`.
    pub fn convert(&self, args: &[&str]) -> Output {
        self.run("convert").args(args).output()
    }

    /// Run `musync convert --json ARGS` and return its JSON and exit code.
    pub fn convert_json(&self, args: &[&str]) -> (Value, i32) {
        let (json, out) = self.run("convert").json().args(args).parsed_strict();
        (json, out.status.code().unwrap_or(-1))
    }

    /// Every file under staging except musync's own folder, relative and sorted.
    pub fn staged_files(&self) -> Vec<String> {
        files(&self.staging)
            .into_iter()
            .filter(|f| !f.starts_with(".musync/"))
            .collect()
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Relative paths of the regular files under `dir`, sorted; a staging folder's lock files are
/// left out (every run that may write takes the lock and notes its pid there, even when it
/// then has nothing to do; `tests/misuse/lock.rs` checks who writes them).
pub fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let lock = [".musync/lock", ".musync/lock.busy"].map(|f| dir.join(f));
            !lock.iter().any(|l| e.path() == l)
        })
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

/// Path → sha256 of every file, to prove a tree was not changed.
pub fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    files(dir)
        .into_iter()
        .map(|f| {
            let digest = Sha256::digest(fs::read(dir.join(&f)).unwrap());
            (f, digest.iter().map(|b| format!("{b:02x}")).collect())
        })
        .collect()
}

pub fn mtimes(dir: &Path) -> BTreeMap<String, std::time::SystemTime> {
    files(dir)
        .into_iter()
        .map(|f| {
            let m = fs::metadata(dir.join(&f)).unwrap().modified().unwrap();
            (f, m)
        })
        .collect()
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (is it installed? scripts/test installs it)")
    });
    assert!(out.status.success(), "{cmd:?} failed: {}", stderr(&out));
    out
}

/// What ffmpeg decodes from a file: (frames per channel, sample rate, channels).
pub fn decoded(path: &Path) -> (u64, u32, u32) {
    let probe = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=sample_rate,channels",
            "-of",
            "json",
        ])
        .arg(path));
    let json: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let stream = &json["streams"][0];
    let rate: u32 = stream["sample_rate"].as_str().unwrap().parse().unwrap();
    let channels = u32::try_from(stream["channels"].as_u64().unwrap()).unwrap();
    let pcm = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "s16le", "-acodec", "pcm_s16le", "-"]));
    (
        pcm.stdout.len() as u64 / 2 / u64::from(channels),
        rate,
        channels,
    )
}

/// The MP3's tags as mutagen reads them: frame id (TXXX:desc, COMM::lang…) → text values.
pub fn mutagen(path: &Path) -> BTreeMap<String, Value> {
    const SCRIPT: &str = r#"
import json, sys
from mutagen.id3 import ID3
tags = ID3(sys.argv[1])
out = {"_version": "2.%d" % tags.version[1]}
for key, frame in tags.items():
    if frame.FrameID == "APIC":
        out[key] = {"type": int(frame.type), "mime": frame.mime, "len": len(frame.data)}
    elif frame.FrameID == "USLT":
        out[key] = frame.text
    elif frame.FrameID == "UFID":
        out[key] = frame.data.decode()
    elif hasattr(frame, "text"):
        out[key] = [str(t) for t in frame.text]
print(json.dumps(out))
"#;
    let out = run(Command::new("python3").args(["-c", SCRIPT]).arg(path));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An image (`.jpg` or `.png` by the name) of one frame of ffmpeg's lavfi `source`, e.g.
/// `color=c=blue:s=32x32` or `testsrc2=s=3000x2000`.
pub fn make_image(path: &Path, source: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", source])
        .args(["-frames:v", "1"])
        .arg(path));
}

/// Make a 16-bit 44.1 kHz stereo FLAC of `seconds` with the reference encoder.
pub fn make_flac(path: &Path, seconds: f64, tags: &[&str]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let wav = path.with_extension("tmp.wav");
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(["-ac", "2", "-c:a", "pcm_s16le"])
        .arg(&wav));
    let mut flac = Command::new("flac");
    flac.args(["-s", "-f"]);
    for t in tags {
        flac.arg(format!("--tag={t}"));
    }
    run(flac.arg(&wav).arg("-o").arg(path));
    fs::remove_file(&wav).unwrap();
}

/// A stand-in `rclone` (for `MUSYNC_RCLONE`) in a folder of its own: `script`, with `REAL`
/// replaced by the path of the real rclone, as the executable `rclone` in the folder.
pub fn stand_in_rclone(script: &str) -> tempfile::TempDir {
    let real = run(Command::new("sh").args(["-c", "command -v rclone"])).stdout;
    let real = String::from_utf8(real).unwrap().trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("rclone");
    fs::write(&bin, script.replace("REAL", &real)).unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    fs::set_permissions(&bin, executable).unwrap();
    dir
}

/// Whether a musync run holds the lock of the staging folder `staging` now, as flock(1) sees it
/// from outside (the writer holds `lock.busy` as long as `lock`).
pub fn lock_held(staging: &Path) -> bool {
    let busy = staging.join(".musync/lock.busy");
    busy.exists()
        && !run_status(
            Command::new("flock")
                .args(["-n", "-s"])
                .arg(&busy)
                .arg("true"),
        )
        .success()
}

fn run_status(cmd: &mut Command) -> std::process::ExitStatus {
    cmd.status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Wait until `child`, a musync run that writes `staging`, holds the staging lock.
pub fn wait_for_lock(staging: &Path, child: &mut std::process::Child) {
    let start = std::time::Instant::now();
    while !lock_held(staging) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it was seen holding the staging lock");
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the run did not take the staging lock within a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A stand-in rclone that waits `seconds` before every call but `version`: a push that lasts.
pub fn slow_rclone(seconds: u32) -> tempfile::TempDir {
    stand_in_rclone(&format!(
        "#!/bin/sh\n[ \"$1\" = version ] || sleep {seconds}\nexec REAL \"$@\"\n"
    ))
}

/// Whether a test can run here: `ready` is whether `what` (the thing the test needs) is
/// available, `why` the reason it is not. Under `CI=true` a test that cannot run fails, naming
/// what it needs and why; elsewhere it prints that it did not run and the caller returns.
pub fn require(ready: bool, what: &str, why: &str) -> bool {
    if ready {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "CI must be able to run this test: it needs {what}: {why}"
    );
    eprintln!("NOT RUN: needs {what}: {why}");
    false
}

/// The one way tests run musync: `env.run("push").json().remote(&remote).args([...]).output()`.
/// It starts from `Env::command` (isolated HOME and config, the env's library and staging,
/// stdin closed) or, for commands without folders, from `Run::bare`.
pub struct Run {
    cmd: Command,
}

impl Env {
    /// A run of `musync SUBCOMMAND --library LIB --staging STAGING`.
    pub fn run(&self, subcommand: &str) -> Run {
        Run {
            cmd: self.command(subcommand),
        }
    }
}

impl Run {
    /// A run of `musync` with no arguments yet, isolated, stdin closed.
    pub fn bare() -> Run {
        let mut cmd = musync();
        cmd.stdin(Stdio::null());
        Run { cmd }
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Ask for the JSON summary on stdout.
    pub fn json(self) -> Run {
        self.arg("--json")
    }

    /// Push to `remote`: `--remote SPEC` and the variables its rclone config needs.
    pub fn remote(mut self, remote: &crate::remotes::Remote) -> Run {
        self.cmd
            .args(["--remote", &remote.spec])
            .envs(remote.envs());
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.env(key, value);
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Run
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Run {
        self.cmd.env_remove(key);
        self
    }

    /// The command itself, to spawn it or change it further.
    pub fn command(self) -> Command {
        self.cmd
    }

    pub fn output(mut self) -> Output {
        self.cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.cmd))
    }

    /// The output of a run that must succeed.
    pub fn ok(self) -> Output {
        let what = format!("{:?}", self.cmd.get_args().collect::<Vec<_>>());
        let out = self.output();
        assert!(out.status.success(), "musync {what}: {}", stderr(&out));
        out
    }

    /// The JSON on stdout (`null` if there is none, as after a refusal) and the output.
    pub fn parsed(self) -> (Value, Output) {
        let out = self.output();
        (
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
            out,
        )
    }

    /// The JSON on stdout, which must be there, and the output.
    pub fn parsed_strict(self) -> (Value, Output) {
        let out = self.output();
        (strict_json(&out), out)
    }
}

/// The JSON a run printed on stdout; a panic showing stdout and stderr if it is not JSON.
pub fn strict_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}
