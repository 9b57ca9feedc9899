//! Incremental runs equal a fresh convert: after library edits, files that fail, and runs killed
//! at random moments, a staging folder that `convert` has brought to rest holds what a fresh
//! convert of the same library gives: the same files, the same tags (read by mutagen) and the
//! same audio (decoded by ffmpeg). The property test prints its seed; replay a failure with
//! `REPLAY_FRESH_SEED=<seed>`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// `musync convert --json` of `library` into `staging`: its JSON and exit code.
fn convert(library: &Path, staging: &Path) -> (Value, i32) {
    let out = musync()
        .arg("convert")
        .arg("--json")
        .arg("--library")
        .arg(library)
        .arg("--staging")
        .arg(staging)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        )
    });
    (json, out.status.code().unwrap_or(-1))
}

/// Run `convert` until a run finds nothing left to do (what fails fails again, and is all that
/// fails); returns that run's failures as (path, error).
fn settle(library: &Path, staging: &Path, context: &str) -> Vec<(String, String)> {
    for _ in 0..6 {
        let (json, code) = convert(library, staging);
        assert!(
            code == 0 || code == 1,
            "{context}: convert exited {code}: {json}"
        );
        let done: u64 = ["converted", "retagged", "renamed", "removed"]
            .iter()
            .map(|k| json[k].as_u64().unwrap())
            .sum();
        if done == 0 {
            let mut failed: Vec<(String, String)> = json["failed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let s = |k: &str| f[k].as_str().unwrap().to_owned();
                    (s("path"), s("error"))
                })
                .collect();
            failed.sort();
            return failed;
        }
    }
    panic!("{context}: six runs of convert in a row still found work")
}

/// Every staged file (musync's own folder aside) → its tags as mutagen reads them (a cover as
/// its type, MIME type and a hash of its bytes) and the MD5 of the audio ffmpeg decodes from it.
fn mirror(staging: &Path) -> BTreeMap<String, (Value, String)> {
    const SCRIPT: &str = r#"
import hashlib, json, sys
from mutagen.id3 import ID3
result = {}
for path in sys.argv[1:]:
    tags = ID3(path)
    out = {"_version": "2.%d" % tags.version[1]}
    for key, frame in tags.items():
        if frame.FrameID == "APIC":
            out[key] = [int(frame.type), frame.mime, hashlib.sha256(frame.data).hexdigest()]
        elif frame.FrameID == "UFID":
            out[key] = frame.data.decode()
        elif hasattr(frame, "text"):
            out[key] = [str(t) for t in frame.text]
        else:
            out[key] = repr(frame)
    result[path] = out
print(json.dumps(result))
"#;
    let staged: Vec<String> = files(staging)
        .into_iter()
        .filter(|f| !f.starts_with(".musync/"))
        .collect();
    if staged.is_empty() {
        return BTreeMap::new();
    }
    // A folder cover file (`--folder-art`) is compared by its bytes.
    let (mp3s, covers): (Vec<String>, Vec<String>) =
        staged.into_iter().partition(|f| f.ends_with(".mp3"));
    let bytes = |f: &String| {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(fs::read(staging.join(f)).unwrap());
        Value::from(hash.iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    let covers = covers.into_iter().map(|f| {
        let hash = bytes(&f);
        (f, (hash, String::new()))
    });
    let out = run(Command::new("python3")
        .args(["-c", SCRIPT])
        .args(mp3s.iter().map(|f| staging.join(f))));
    let mut tags: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    mp3s.into_iter()
        .map(|f| {
            let path = staging.join(&f);
            let md5 = run(Command::new("ffmpeg")
                .args(["-v", "error", "-i"])
                .arg(&path)
                .args(["-map", "0:a:0", "-f", "md5", "-"]));
            let md5 = String::from_utf8(md5.stdout).unwrap().trim().to_owned();
            let key = path.to_str().unwrap().to_owned();
            (f, (tags.remove(&key).unwrap(), md5))
        })
        .chain(covers)
        .collect()
}

/// Bring `env.staging` to rest, convert the library afresh into another folder, and require the
/// same failures, files, tags and audio.
fn assert_equals_fresh(env: &Env, context: &str) {
    let settled = settle(&env.library, &env.staging, context);
    let fresh_dir = env.dir.path().join("fresh");
    let _ = fs::remove_dir_all(&fresh_dir);
    let fresh = settle(&env.library, &fresh_dir, context);
    assert_eq!(settled, fresh, "{context}: the failures differ");
    let (ours, theirs) = (mirror(&env.staging), mirror(&fresh_dir));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{context}: the staged files differ"
    );
    for (file, (tags, audio)) in &ours {
        let (fresh_tags, fresh_audio) = &theirs[file];
        assert_eq!(tags, fresh_tags, "{context}: the tags of {file} differ");
        assert_eq!(audio, fresh_audio, "{context}: the audio of {file} differs");
    }
}

/// A WAV header with no samples: it reads, but there is nothing to convert.
fn write_empty_wav(path: &Path) {
    let mut wav = b"RIFF".to_vec();
    wav.extend(36u32.to_le_bytes());
    wav.extend(b"WAVEfmt ");
    wav.extend(16u32.to_le_bytes());
    wav.extend(1u16.to_le_bytes()); // PCM
    wav.extend(2u16.to_le_bytes());
    wav.extend(44_100u32.to_le_bytes());
    wav.extend((44_100u32 * 4).to_le_bytes());
    wav.extend(4u16.to_le_bytes());
    wav.extend(16u16.to_le_bytes());
    wav.extend(b"data");
    wav.extend(0u32.to_le_bytes());
    fs::write(path, wav).unwrap();
}

/// A native MP3 made by ffmpeg's LAME, titled `title`.
fn make_mp3(path: &Path, seconds: f64, title: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=660:duration={seconds}"))
        .args(["-ac", "2", "-c:a", "libmp3lame", "-q:a", "4", "-metadata"])
        .arg(format!("title={title}"))
        .arg(path));
}

/// A small real JPEG.
fn make_cover(path: &Path, colour: &str) {
    make_image(path, &format!("color=c={colour}:s=16x16"));
}

fn title(path: &Path) -> Value {
    mutagen(path)["TIT2"].clone()
}

// Regression (issue 11, item 4): renaming an album and editing a title in one go, with a retag
// that failed once (a zero-byte cover.jpg), kept the old title for ever. The album stays in its
// genre folder, so the genre the folder gives does not change the tags as well.
#[test]
fn a_rename_whose_retag_failed_once_still_gets_the_new_tags() {
    let env = Env::empty();
    make_flac(&env.lib("Rock/Old/01.flac"), 1.0, &["TITLE=Before"]);
    make_flac(&env.lib("Rock/Old/02.flac"), 1.5, &["TITLE=Two"]);
    assert_eq!(env.convert(&[]).status.code(), Some(0));
    fs::rename(env.lib("Rock/Old"), env.lib("Rock/New")).unwrap();
    run(Command::new("metaflac")
        .args(["--remove-tag=TITLE", "--set-tag=TITLE=After"])
        .arg(env.lib("Rock/New/01.flac")));
    fs::write(env.lib("Rock/New/cover.jpg"), b"").unwrap();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Rock/New/01.flac: cover"),
        "{}",
        stderr(&out)
    );
    fs::remove_file(env.lib("Rock/New/cover.jpg")).unwrap();
    // The record left by the failed retag is the one a kill between the rename and the retag
    // leaves (the retag journals nothing before it fails): the dry run, as `status`, sees the
    // retag still to do.
    let dry = env.convert(&["--dry-run"]);
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(plan.contains("retag   Rock/New/01.mp3"), "{plan}");
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let staged = env.staged("Rock/New/01.mp3");
    assert_eq!(title(&staged), serde_json::json!(["After"]));
    assert_equals_fresh(&env, "after the failed retag");
}

// Regression (issue 11, item 5): a deleted track's MP3 whose name an empty 02.wav took became
// "not made by musync", and restoring 02.flac failed on every run.
#[test]
fn a_stale_mp3_claimed_by_an_empty_wav_stays_musyncs() {
    let env = Env::empty();
    make_flac(&env.lib("A/01.flac"), 1.0, &["TITLE=One"]);
    make_flac(&env.lib("A/02.flac"), 1.5, &["TITLE=Two"]);
    assert_eq!(env.convert(&[]).status.code(), Some(0));
    let two = env.dir.path().join("02.flac");
    fs::rename(env.lib("A/02.flac"), &two).unwrap();
    write_empty_wav(&env.lib("A/02.wav"));
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("A/02.wav: the file holds no audio"),
        "{}",
        stderr(&out)
    );
    assert_equals_fresh(&env, "with the empty wav");
    let verify = env.command("verify").output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
    fs::rename(&two, env.lib("A/02.flac")).unwrap();
    let out = env.convert(&[]);
    let err = stderr(&out);
    assert!(!err.contains("did not create"), "{err}");
    assert_eq!(title(&env.staged("A/02.mp3")), serde_json::json!(["Two"]));
    assert_equals_fresh(&env, "with 02.flac back");
}

// Regression (issue 11, item 6): Song.mp3 mirrored first kept its name when Song.flac came
// beside it, where a fresh convert gives the name to the FLAC's conversion.
#[test]
fn a_flac_beside_a_mirrored_mp3_gets_the_name() {
    let env = Env::empty();
    make_mp3(&env.lib("Song.mp3"), 1.0, "The MP3");
    assert_eq!(env.convert(&[]).status.code(), Some(0));
    make_flac(&env.lib("Song.flac"), 1.5, &["TITLE=The FLAC"]);
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["failed"][0]["path"], "Song.mp3", "{json}");
    assert_eq!(
        title(&env.staged("Song.mp3")),
        serde_json::json!(["The FLAC"])
    );
    assert_equals_fresh(&env, "the FLAC beside the MP3");
}

/// A library under random edits: short FLACs in a few albums, and now and then a native MP3 of
/// the same name as a FLAC, a zero-byte cover.jpg, an empty WAV.
struct Library<'a> {
    env: &'a Env,
    made: usize,
}

impl Library<'_> {
    fn sources(&self) -> Vec<String> {
        files(&self.env.library)
            .into_iter()
            .filter(|f| [".flac", ".mp3", ".wav"].iter().any(|e| f.ends_with(e)))
            .collect()
    }

    /// `Genre/Album` folders: the genre folder gives the genre, and an album renamed stays in it.
    fn albums(&self) -> Vec<String> {
        let mut albums: Vec<String> = walkdir::WalkDir::new(&self.env.library)
            .min_depth(2)
            .max_depth(2)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_dir())
            .map(|e| {
                let rel = e.path().strip_prefix(&self.env.library).unwrap();
                rel.to_str().unwrap().to_owned()
            })
            .collect();
        albums.sort();
        albums
    }

    fn add_flac(&mut self, rng: &mut Rng, album: &str) -> String {
        self.made += 1;
        let rel = format!("{album}/{:02} - Track.flac", self.made);
        let seconds = 1.0 + rng.below(4) as f64 * 0.5;
        let title = format!("TITLE=Track {}", self.made);
        make_flac(&self.env.lib(&rel), seconds, &[&title, "ARTIST=Testers"]);
        rel
    }

    /// One random edit; returns what it did.
    fn edit(&mut self, rng: &mut Rng) -> String {
        let sources = self.sources();
        let flacs: Vec<&String> = sources.iter().filter(|s| s.ends_with(".flac")).collect();
        let albums = self.albums();
        let album = rng.pick(&albums).clone();
        match rng.below(12) {
            0 | 1 => format!("add {}", self.add_flac(rng, &album)),
            2 if sources.len() > 2 => {
                let gone = rng.pick(&sources);
                fs::remove_file(self.env.lib(gone)).unwrap();
                format!("delete {gone}")
            }
            3 if !sources.is_empty() => {
                let from = rng.pick(&sources);
                let ext = from.rsplit('.').next().unwrap();
                self.made += 1;
                let to = format!("{}/{:02} - Renamed.{ext}", rng.pick(&albums), self.made);
                fs::rename(self.env.lib(from), self.env.lib(&to)).unwrap();
                format!("rename {from} -> {to}")
            }
            4 => {
                self.made += 1;
                let genre = album.split('/').next().unwrap();
                let to = format!("{genre}/Album {}", self.made);
                fs::rename(self.env.lib(&album), self.env.lib(&to)).unwrap();
                format!("rename album {album} -> {to}")
            }
            5 | 6 if !flacs.is_empty() => {
                let track = rng.pick(&flacs);
                if rng.chance(0.25) {
                    run(Command::new("metaflac")
                        .arg("--remove-tag=ARTIST")
                        .arg(self.env.lib(track)));
                    return format!("remove the artist of {track}");
                }
                let title = format!("TITLE=Edited {}", rng.below(1000));
                run(Command::new("metaflac")
                    .arg("--remove-tag=TITLE")
                    .arg(format!("--set-tag={title}"))
                    .arg(self.env.lib(track)));
                format!("retag {track} {title}")
            }
            7 if !flacs.is_empty() => {
                let flac = rng.pick(&flacs);
                let stem = flac.strip_suffix(".flac").unwrap();
                let (album, name) = stem.rsplit_once('/').unwrap();
                let twin = format!("{album}/{}.flac", name.to_uppercase());
                // Never onto itself (a twin's twin): that empties the file, a source gone bad,
                // whose MP3 an incremental run rightly keeps and a fresh one cannot make.
                if rng.chance(0.3) && twin != **flac {
                    // A copy whose name differs only in case: one file on a Windows share.
                    fs::copy(self.env.lib(flac), self.env.lib(&twin)).unwrap();
                    return format!("copy {flac} to {twin}");
                }
                let mp3 = format!("{stem}.mp3");
                make_mp3(&self.env.lib(&mp3), 1.0, "Same name");
                format!("add {mp3} beside {flac}")
            }
            8 => {
                fs::write(self.env.lib(&format!("{album}/cover.jpg")), b"").unwrap();
                format!("zero-byte {album}/cover.jpg")
            }
            // An empty WAV, half the time taking the name of a FLAC it replaces.
            9 => {
                let wav = match flacs.is_empty() || rng.chance(0.5) {
                    true => {
                        self.made += 1;
                        format!("{album}/{:02} - Empty.wav", self.made)
                    }
                    false => {
                        let flac = rng.pick(&flacs);
                        fs::remove_file(self.env.lib(flac)).unwrap();
                        format!("{}.wav", flac.strip_suffix(".flac").unwrap())
                    }
                };
                write_empty_wav(&self.env.lib(&wav));
                format!("empty {wav}")
            }
            10 => {
                make_cover(&self.env.lib(&format!("{album}/cover.jpg")), "red");
                format!("cover {album}/cover.jpg")
            }
            _ if !sources.is_empty() => {
                let track = rng.pick(&sources);
                run(Command::new("touch").arg(self.env.lib(track)));
                format!("touch {track}")
            }
            _ => "nothing".into(),
        }
    }

    /// Replace every zero-byte cover with a real one or remove it: a fault that stays would make
    /// the fresh convert fail the album as well, and prove nothing.
    fn fix_covers(&self, rng: &mut Rng) -> String {
        let mut fixed = Vec::new();
        for f in files(&self.env.library) {
            let path = self.env.lib(&f);
            if f.ends_with("cover.jpg") && fs::metadata(&path).unwrap().len() == 0 {
                if rng.chance(0.5) {
                    fs::remove_file(&path).unwrap();
                } else {
                    make_cover(&path, "green");
                }
                fixed.push(f);
            }
        }
        format!("fix covers {fixed:?}")
    }
}

/// Start `convert` and SIGKILL it after `kill` (if given and it is still running).
fn convert_maybe_killed(env: &Env, kill: Option<Duration>) -> String {
    let mut child = env
        .command("convert")
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let Some(after) = kill else {
        let status = child.wait().unwrap();
        return format!("run (exit {:?})", status.code());
    };
    let started = Instant::now();
    while started.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return format!("run (done before the kill at {after:?})");
        }
        sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    format!("run killed after {after:?}")
}

/// Random histories of edits, failing files and runs killed at random moments, each brought to
/// rest and compared with a fresh convert of the same library.
#[test]
fn incremental_runs_end_as_a_fresh_convert() {
    const CASES: usize = 5;
    let (mut rng, seed) = Rng::from_env("REPLAY_FRESH_SEED");
    eprintln!("seed {seed}; replay with REPLAY_FRESH_SEED={seed}");
    let started = Instant::now();
    let (mut runs, mut killed) = (0, 0);
    for case in 0..CASES {
        let env = Env::empty();
        let mut library = Library { env: &env, made: 0 };
        for album in ["Jazz/Album A", "Rock/Album B"] {
            for _ in 0..3 {
                library.add_flac(&mut rng, album);
            }
        }
        let mut log = Vec::new();
        for _ in 0..6 {
            for _ in 0..=rng.below(3) {
                log.push(library.edit(&mut rng));
            }
            // Most runs take 10 to 300 ms here (the audio is short): the kill lands anywhere
            // from the scan to the last rename, often early where short runs do their work.
            let kill = rng.chance(0.6).then(|| {
                let range = if rng.chance(0.5) { 40 } else { 200 };
                Duration::from_millis(rng.below(range) as u64)
            });
            let run = convert_maybe_killed(&env, kill);
            runs += 1;
            killed += usize::from(run.starts_with("run killed"));
            log.push(run);
        }
        log.push(library.fix_covers(&mut rng));
        let context = format!(
            "seed {seed} (replay with REPLAY_FRESH_SEED={seed}), case {case}, after {log:#?}\n"
        );
        assert_equals_fresh(&env, &context);
    }
    eprintln!(
        "{CASES} cases, {runs} runs of which {killed} killed mid-run, in {:.1?}",
        started.elapsed()
    );
}
