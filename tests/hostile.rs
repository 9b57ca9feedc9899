//! Hostile input: the corpus `scripts/make-hostile` generates (truncated, bit-flipped and lying
//! FLACs, huge metadata, odd names, special files, symlink traps, a library that is a symlink,
//! 100,000 clutter files). For every path the corpus lists, musync must end in one clear
//! `musync: PATH: cause` line or a correct MP3, never panic or hang, leave the library exactly
//! as it was and leave no temporary file in staging. See the script for the expectations.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::{Env, files, run};

/// Far above what a run takes (a few seconds); reaching it means musync hangs.
const RUN_LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    Fail,
    Either,
    FailUnder,
    OneOf,
    None,
}

/// One line of the corpus's `cases.tsv`.
#[derive(Debug)]
struct Row {
    case: String,
    path: Vec<u8>,
    expect: Expect,
    frames: u64,
    rate: u32,
    channels: u32,
    reference: Option<String>,
    min_size: u64,
}

impl Row {
    /// The path as musync prints it: lossy UTF-8, control characters escaped.
    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.path)
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    }

    /// The staged MP3 this source would become.
    fn output(&self) -> Vec<u8> {
        let name_at = self
            .path
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(0, |i| i + 1);
        let stem_end = self.path[name_at..]
            .iter()
            .rposition(|&b| b == b'.')
            .filter(|&i| i > 0)
            .map_or(self.path.len(), |i| name_at + i);
        [&self.path[..stem_end], b".mp3"].concat()
    }
}

fn rows(tsv: &Path) -> Vec<Row> {
    let text = fs::read_to_string(tsv).unwrap();
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            Row {
                case: f[0].to_string(),
                path: hex(f[1]),
                expect: match f[2] {
                    "ok" => Expect::Ok,
                    "fail" => Expect::Fail,
                    "either" => Expect::Either,
                    "fail-under" => Expect::FailUnder,
                    "one-of" => Expect::OneOf,
                    "none" => Expect::None,
                    other => panic!("unknown expectation {other}"),
                },
                frames: f[3].parse().unwrap(),
                rate: f[4].parse().unwrap(),
                channels: f[5].parse().unwrap(),
                reference: (f[6] != "-").then(|| f[6].to_string()),
                min_size: f[7].parse().unwrap(),
            }
        })
        .collect()
}

fn make_hostile(out: &Path, part: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-hostile");
    let made = run(Command::new(script).arg(out).args(["--part", part]));
    eprint!("{}", String::from_utf8_lossy(&made.stderr));
}

/// Every entry under `dir` (not following symlinks, reaching past PATH_MAX): type, mode, size,
/// mtime, and the content hash, link target or device number. Special files are never opened.
fn snapshot(dir: &Path) -> String {
    const SCRIPT: &str = r#"
import hashlib, os, stat, sys
root = sys.argv[1]
for top, dirs, names, fd in os.fwalk(root):
    for name in sorted(dirs + names):
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        what = ""
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with os.fdopen(os.open(name, os.O_RDONLY, dir_fd=fd), "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            what = h.hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            what = os.readlink(name, dir_fd=fd)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            what = st.st_rdev
        print(repr(os.path.join(top, name)), oct(st.st_mode), st.st_size, st.st_mtime_ns, what)
"#;
    let out = run(Command::new("python3").args(["-c", SCRIPT]).arg(dir));
    String::from_utf8(out.stdout).unwrap()
}

/// Run `musync convert --json` with a time limit; returns (JSON, stderr, exit code).
fn convert(env: &Env) -> (Value, String, i32) {
    let (out_path, err_path) = (env.dir.path().join("stdout"), env.dir.path().join("stderr"));
    let mut child = env
        .command("convert")
        .args(["--json", "--jobs", "2"])
        .stdout(Stdio::from(File::create(&out_path).unwrap()))
        .stderr(Stdio::from(File::create(&err_path).unwrap()))
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > RUN_LIMIT {
            child.kill().unwrap();
            panic!(
                "musync hung (killed after {RUN_LIMIT:?}); stderr so far:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let err = String::from_utf8_lossy(&fs::read(&err_path).unwrap()).into_owned();
    assert!(!err.contains("panicked"), "musync panicked:\n{err}");
    assert!(code == 0 || code == 1, "exit code {code}:\n{err}");
    let json = serde_json::from_slice(&fs::read(&out_path).unwrap())
        .unwrap_or_else(|e| panic!("bad JSON ({e}); stderr:\n{err}"));
    eprintln!(
        "musync convert: exit {code} after {:.1?}",
        started.elapsed()
    );
    (json, err, code)
}

/// What ffmpeg decodes from an MP3: (frames, rate, channels, sha256 of the 16-bit samples).
fn decode(path: &Path) -> (u64, u32, u32, String) {
    let probe = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0"])
        .args([
            "-show_entries",
            "stream=sample_rate,channels",
            "-of",
            "json",
        ])
        .arg(path));
    let json: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let stream = &json["streams"][0];
    let rate = stream["sample_rate"].as_str().unwrap().parse().unwrap();
    let channels = u32::try_from(stream["channels"].as_u64().unwrap()).unwrap();
    let pcm = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "s16le", "-acodec", "pcm_s16le", "-"]));
    let frames = pcm.stdout.len() as u64 / 2 / u64::from(channels);
    let hash = Sha256::digest(&pcm.stdout)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (frames, rate, channels, hash)
}

/// Check every row against what the run did; returns the problems found, one per line.
fn check(rows: &[Row], staging: &Path, stderr: &str, json: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    // A warning (a damaged header read through, issue 14) is not an error line.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim_start().starts_with("WARN "))
        .collect();
    let error_lines = |row: &Row| -> usize {
        let exact = format!("musync: {}: ", row.shown());
        let under = format!("musync: {}/", row.shown());
        let under_ok = row.expect == Expect::FailUnder;
        lines
            .iter()
            .filter(|l| l.starts_with(&exact) || (under_ok && l.starts_with(&under)))
            .count()
    };
    for line in &lines {
        let known = rows.iter().any(|r| {
            line.starts_with(&format!("musync: {}: ", r.shown()))
                || (r.expect == Expect::FailUnder
                    && line.starts_with(&format!("musync: {}/", r.shown())))
        });
        if !known {
            problems.push(format!("stderr line for no listed path: {line:?}"));
        }
    }
    let failed = json["failed"].as_array().map_or(0, Vec::len);
    if failed != lines.len() {
        problems.push(format!(
            "{failed} failures in the JSON, {} lines on stderr",
            lines.len()
        ));
    }

    // Decode every output there is, two at a time.
    let outputs: Vec<(usize, PathBuf)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i, staging.join(OsStr::from_bytes(&r.output()))))
        .filter(|(_, p)| p.is_file())
        .collect();
    let decoded: BTreeMap<usize, (u64, u32, u32, String)> = thread::scope(|s| {
        let halves: Vec<_> = outputs
            .chunks(outputs.len().div_ceil(2).max(1))
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(i, p)| (*i, decode(p)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let reference: BTreeMap<&str, &str> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.reference.as_deref() == Some(r.case.as_str()))
        .filter_map(|(i, r)| Some((r.case.as_str(), decoded.get(&i)?.3.as_str())))
        .collect();

    // Per row: did it convert correctly, fail clearly, or neither?
    let mut converted = BTreeSet::new();
    let mut one_of: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let errors = error_lines(row);
        let output = staging.join(OsStr::from_bytes(&row.output()));
        let what = format!("{} ({})", row.case, row.shown());
        let correct = || -> Result<(), String> {
            let Some((frames, rate, channels, hash)) = decoded.get(&i) else {
                return Err("no MP3".into());
            };
            if (*frames, *rate, *channels) != (row.frames, row.rate, row.channels) {
                return Err(format!(
                    "MP3 decodes to {frames} frames, {rate} Hz, {channels} ch; expected {}, {}, {}",
                    row.frames, row.rate, row.channels
                ));
            }
            if let Some(name) = &row.reference
                && reference.get(name.as_str()) != Some(&hash.as_str())
            {
                return Err(format!("MP3 audio differs from the {name} case's"));
            }
            let size = fs::metadata(&output).map_or(0, |m| m.len());
            if size < row.min_size {
                return Err(format!(
                    "MP3 is {size} bytes, expected at least {}",
                    row.min_size
                ));
            }
            Ok(())
        };
        // Sources whose names differ only in case of the extension share one output path.
        let shared = rows.iter().filter(|r| r.output() == row.output()).count() > 1;
        let failed_cleanly = || -> Result<(), String> {
            match (errors, output.is_file() && !shared) {
                (1, false) => Ok(()),
                (0, _) => Err("no error line".into()),
                (n, false) => Err(format!("{n} error lines")),
                (_, true) => Err("an error line, and an MP3 too".into()),
            }
        };
        let verdict = match row.expect {
            Expect::Ok | Expect::Either | Expect::OneOf if errors == 0 => {
                converted.insert(row.output());
                correct()
            }
            Expect::Ok => Err(format!("{errors} error lines, expected a correct MP3")),
            Expect::Fail | Expect::Either | Expect::OneOf => failed_cleanly(),
            Expect::FailUnder => {
                let under = staging.join(OsStr::from_bytes(&row.path));
                match (errors, files(&under).len()) {
                    (0, _) => Err("no error line under it".into()),
                    (_, 0) => Ok(()),
                    (_, n) => Err(format!("{n} MP3s under it")),
                }
            }
            Expect::None => match (errors, output.is_file()) {
                (0, false) => Ok(()),
                (n, exists) => Err(format!("{n} error lines, MP3 made: {exists}")),
            },
        };
        if row.expect == Expect::OneOf {
            let tally = one_of.entry(&row.case).or_default();
            tally.0 += usize::from(errors == 0 && verdict.is_ok());
            tally.1 += 1;
        }
        if let Err(why) = verdict {
            problems.push(format!("{what}: {why}"));
        }
    }
    for (case, (ok, all)) in one_of {
        if ok != 1 {
            problems.push(format!(
                "{case}: {ok} of {all} converted, expected exactly 1"
            ));
        }
    }

    // Nothing else in staging: no stray MP3, no temporary file.
    for file in walkdir::WalkDir::new(staging)
        .into_iter()
        .filter_map(Result::ok)
    {
        let name = file.file_name().to_string_lossy();
        let rel = file.path().strip_prefix(staging).unwrap();
        if name.starts_with(".musync-tmp-") {
            problems.push(format!("temporary file left in staging: {}", rel.display()));
        } else if file.file_type().is_file()
            && !rel.starts_with(".musync")
            && !converted.contains(rel.as_os_str().as_bytes())
        {
            problems.push(format!("unexpected file in staging: {}", rel.display()));
        }
    }
    problems
}

/// An environment whose library is the generated one, and a fresh staging folder.
fn generated(part: &str, library: &str) -> (Env, Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    make_hostile(&dir.path().join("out"), part);
    let root = dir.path().join("out").join(part);
    let rows = rows(&root.join("cases.tsv"));
    let env = Env {
        library: root.join(library),
        staging: dir.path().join("staging"),
        dir,
    };
    (env, rows)
}

#[test]
fn hostile_corpus_ends_in_clear_errors_or_correct_mp3s() {
    let started = Instant::now();
    let (env, rows) = generated("corpus", "library");
    let corpus = env.library.parent().unwrap().to_path_buf();
    for skipped in fs::read_to_string(corpus.join("skipped.txt"))
        .unwrap()
        .lines()
    {
        eprintln!("skipped case {skipped}");
    }
    let cases: BTreeSet<&str> = rows.iter().map(|r| r.case.as_str()).collect();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    assert!(env.library.is_symlink(), "the library itself is a symlink");
    let before = snapshot(&corpus);

    let (json, err, code) = convert(&env);
    let problems = check(&rows, &env.staging, &err, &json);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n\nstderr:\n{err}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(code, 1, "some files failed, so the exit code is 1");

    // Again: nothing to convert, the same failures, still no panic or hang.
    let (again, err_again, code_again) = convert(&env);
    assert_eq!(again["converted"], 0, "{again}");
    let paths = |json: &Value| -> BTreeSet<String> {
        let failed = json["failed"].as_array().unwrap().iter();
        failed.map(|f| f["path"].to_string()).collect()
    };
    assert_eq!(paths(&again), paths(&json), "{err_again}");
    assert_eq!(code_again, 1);
    assert!(
        snapshot(&corpus) == before,
        "the library (or what its symlinks point to) changed"
    );
    eprintln!(
        "hostile: {} cases, {} paths in {:.1?}",
        cases.len(),
        rows.len(),
        started.elapsed()
    );
}

#[test]
fn hundred_thousand_clutter_files_in_one_folder() {
    let (env, rows) = generated("clutter", "library");
    let before = snapshot(&env.library);
    let started = Instant::now();
    let (json, err, code) = convert(&env);
    let took = started.elapsed();
    let problems = check(&rows, &env.staging, &err, &json);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!((code, &json["converted"]), (0, &Value::from(3)), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(snapshot(&env.library) == before, "the library changed");
}
