//! Crash consistency: `musync sync` killed with SIGKILL at random moments of convert, tag and
//! push, the library edited between rounds. After each kill, a rerun must finish the job: every
//! staged and remote MP3 whole and of the right length, the remote equal to the mirror, the
//! manifest equal to the disk, the library untouched, no temporary file left anywhere.
//! The seed is printed first; replay a failure with `MUSYNC_CRASH_SEED=<seed>`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::remotes::{Kind, Remote};
use crate::util::*;

/// xorshift64*: tiny and seedable, enough to pick kill moments, faults and edits.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the environment variable `var` if set, else from the clock; the seed is
    /// returned so the test can print it.
    pub fn from_env(var: &str) -> (Rng, u64) {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                now.as_nanos() as u64
            });
        (Rng::new(seed), seed)
    }

    pub fn new(seed: u64) -> Rng {
        // One splitmix64 step: close seeds give unrelated states, and the state is never 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A generated library: short FLACs (one at 96 kHz/24-bit) in four albums under two genre
/// folders, a native MP3 made by `lame`, and a folder cover. `made` numbers new tracks.
pub struct Library {
    made: usize,
}

const ALBUMS: [&str; 4] = [
    "Jazz/Blue Session",
    "Jazz/Night Trio",
    "Rock/Loud Days",
    "Rock/Quiet Nights",
];

impl Library {
    pub fn generate(env: &Env, rng: &mut Rng) -> Library {
        let mut lib = Library { made: 0 };
        for i in 0..11 {
            lib.add_flac(env, rng, ALBUMS[i % ALBUMS.len()]);
        }
        let hires = env.lib("Rock/Quiet Nights/90 - Hi-Res.flac");
        let wav = env.dir.path().join("hires.wav");
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("sine=frequency=330:duration=3:sample_rate=96000")
            .args(["-ac", "2", "-c:a", "pcm_s24le"])
            .arg(&wav));
        run(Command::new("flac")
            .args(["-s", "-f", "--tag=TITLE=Hi-Res", "--tag=ALBUM=Quiet Nights"])
            .arg(&wav)
            .arg("-o")
            .arg(&hires));
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("sine=frequency=550:duration=4")
            .args(["-ac", "2", "-c:a", "pcm_s16le"])
            .arg(&wav));
        run(Command::new("lame")
            .args(["--quiet", "-V4", "--tt", "Native", "--tl", "Loud Days"])
            .arg(&wav)
            .arg(env.lib("Rock/Loud Days/91 - Native.mp3")));
        fs::remove_file(&wav).unwrap();
        run(Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "color=c=blue:s=32x32",
            ])
            .args(["-frames:v", "1"])
            .arg(env.lib("Jazz/Blue Session/cover.jpg")));
        lib
    }

    fn add_flac(&mut self, env: &Env, rng: &mut Rng, album: &str) -> String {
        self.made += 1;
        let n = self.made;
        let rel = format!("{album}/{n:02} - Track {n}.flac");
        let seconds = 2.0 + rng.unit() * 6.0;
        let (title, album_tag) = (format!("TITLE=Track {n}"), format!("ALBUM={album}"));
        make_flac(
            &env.lib(&rel),
            (seconds * 100.0).round() / 100.0,
            &[&title, &album_tag, "ARTIST=The Testers"],
        );
        rel
    }

    /// One random edit a user might make between two syncs; returns what it did.
    pub fn edit(&mut self, env: &Env, rng: &mut Rng) -> String {
        let flacs: Vec<String> = files(&env.library)
            .into_iter()
            .filter(|f| f.ends_with(".flac"))
            .collect();
        let albums = album_dirs(&env.library);
        match rng.below(10) {
            0 | 1 if flacs.len() < 15 => {
                let album = rng.pick(&albums).clone();
                format!("add {}", self.add_flac(env, rng, &album))
            }
            2 if flacs.len() > 8 => {
                let gone = rng.pick(&flacs);
                fs::remove_file(env.lib(gone)).unwrap();
                format!("delete {gone}")
            }
            3 | 4 => {
                let album = rng.pick(&albums);
                let (genre, name) = album.split_once('/').unwrap();
                let base = name.split(" (").next().unwrap();
                let to = format!("{genre}/{base} ({})", rng.below(1000));
                fs::rename(env.lib(album), env.lib(&to)).unwrap();
                format!("rename {album} -> {to}")
            }
            5 => {
                let track = rng.pick(&flacs);
                let album = rng.pick(&albums);
                let to = format!("{album}/{}", track.rsplit('/').next().unwrap());
                if env.lib(&to).exists() {
                    return "nothing".into();
                }
                fs::rename(env.lib(track), env.lib(&to)).unwrap();
                format!("move {track} -> {to}")
            }
            // Renaming a genre folder changes every tag under it: uploads and remote deletions.
            6 => {
                let genre = *rng.pick(&["Jazz", "Rock"]);
                let current = fs::read_dir(&env.library)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .find(|n| n.starts_with(genre))
                    .unwrap();
                let to = if current == genre {
                    format!("{genre} Extra")
                } else {
                    genre.to_owned()
                };
                fs::rename(env.lib(&current), env.lib(&to)).unwrap();
                format!("rename genre {current} -> {to}")
            }
            7 => {
                let track = rng.pick(&flacs);
                run(Command::new("touch").arg(env.lib(track)));
                format!("touch {track}")
            }
            _ => {
                let track = rng.pick(&flacs);
                let comment = format!("COMMENT={:x}", rng.next() >> rng.below(60));
                run(Command::new("metaflac")
                    .arg("--remove-tag=COMMENT")
                    .arg(format!("--set-tag={comment}"))
                    .arg(env.lib(track)));
                format!("retag {track} {comment}")
            }
        }
    }

    /// Give every FLAC a new comment of the same length: every staged file gets new tags but
    /// keeps its size (ID3 padding), which a size-only comparison cannot tell apart.
    pub fn retag_all(&self, env: &Env, rng: &mut Rng) -> String {
        let comment = format!("COMMENT={:016x}", rng.next());
        for track in files(&env.library).iter().filter(|f| f.ends_with(".flac")) {
            run(Command::new("metaflac")
                .arg("--remove-tag=COMMENT")
                .arg(format!("--set-tag={comment}"))
                .arg(env.lib(track)));
        }
        format!("retag all {comment}")
    }
}

/// `Genre/Album` folders of the library.
fn album_dirs(library: &Path) -> Vec<String> {
    let mut albums: Vec<String> = walkdir::WalkDir::new(library)
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_dir())
        .map(|e| {
            let rel = e.path().strip_prefix(library).unwrap();
            rel.to_str().unwrap().to_owned()
        })
        .collect();
    albums.sort();
    albums
}

/// The staged path of each library source: `A/B.flac` and `A/B.mp3` become `A/B.mp3`.
pub fn expected_outputs(library: &Path) -> BTreeMap<String, String> {
    files(library)
        .into_iter()
        .filter_map(|f| {
            let stem = f.strip_suffix(".flac").or(f.strip_suffix(".mp3"))?;
            Some((format!("{stem}.mp3"), f))
        })
        .collect()
}

/// Checks staged MP3s against their sources with ffmpeg, remembering results by content hash
/// so a file is decoded once however many rounds it survives.
#[derive(Default)]
pub struct Lengths {
    /// Source sha256 → the frames its MP3 must decode to.
    wanted: BTreeMap<String, u64>,
    /// Staged sha256 → the frames it decodes to.
    decoded: BTreeMap<String, u64>,
}

impl Lengths {
    /// Every staged MP3 decodes without an error, to its source's length (scaled by the rate
    /// ratio for a 96 kHz source, which becomes 48 kHz; 44.1 kHz stays 44.1 kHz).
    pub fn check(&mut self, env: &Env, context: &str) {
        let library = tree_hashes(&env.library);
        let staged = tree_hashes(&env.staging);
        for (output, source) in expected_outputs(&env.library) {
            let want = *self
                .wanted
                .entry(library[&source].clone())
                .or_insert_with(|| source_frames(&env.lib(&source)));
            let Some(hash) = staged.get(&output) else {
                panic!("{context}: {output} (from {source}) is not staged");
            };
            let got = *self
                .decoded
                .entry(hash.clone())
                .or_insert_with(|| decode_frames(&env.staged(&output), context));
            assert_eq!(got, want, "{context}: {output} decodes to the wrong length");
        }
    }
}

/// The frames a source's MP3 must hold: FLAC's sample count, halved for 96 kHz; a native MP3's
/// own decoded length (it is copied, never re-encoded).
fn source_frames(path: &Path) -> u64 {
    if path.extension().is_some_and(|e| e == "mp3") {
        return decode_frames(path, "the library's own MP3");
    }
    let out = run(Command::new("metaflac")
        .args(["--show-total-samples", "--show-sample-rate"])
        .arg(path));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(|l| l.parse::<u64>().unwrap());
    let (samples, rate) = (lines.next().unwrap(), lines.next().unwrap());
    match rate {
        44_100 | 48_000 => samples,
        96_000 => samples / 2,
        other => panic!("no expected length for {other} Hz"),
    }
}

/// Frames ffmpeg decodes from `path`, which must decode without a single error message.
pub fn decode_frames(path: &Path, context: &str) -> u64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-ac", "1", "-f", "s16le", "-"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        out.status.success() && err.is_empty(),
        "{context}: {} does not decode cleanly: {err}",
        path.display()
    );
    out.stdout.len() as u64 / 2
}

/// The remote's files without the backups folder.
pub fn remote_tree(remote: &Remote) -> BTreeMap<String, String> {
    tree_hashes(&remote.dir)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".musync-backups/"))
        .collect()
}

/// The staged mirror without musync's own folder.
pub fn mirror_tree(env: &Env) -> BTreeMap<String, String> {
    tree_hashes(&env.staging)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".musync/"))
        .collect()
}

/// Temporary or partial files anywhere under `dir`.
pub fn leftovers(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| {
            let name = f.rsplit('/').next().unwrap();
            name.starts_with(".musync-tmp-") || name.ends_with(".partial")
        })
        .collect()
}

/// The remote equals the mirror, and a second convert and push find nothing to do.
pub fn assert_settled(env: &Env, remote: &Remote, context: &str) {
    for dir in [&env.staging, &remote.dir, &env.library] {
        let left = leftovers(dir);
        assert!(left.is_empty(), "{context}: leftovers {left:?}");
    }
    let staged: Vec<String> = mirror_tree(env).into_keys().collect();
    let wanted: Vec<String> = expected_outputs(&env.library).into_keys().collect();
    assert_eq!(
        staged, wanted,
        "{context}: staging is not the library's mirror"
    );
    assert_eq!(
        remote_tree(remote),
        mirror_tree(env),
        "{context}: the remote is not the mirror"
    );
    let (json, code) = env.convert_json(&[]);
    let counts = ["converted", "retagged", "renamed", "removed"].map(|k| json[k].as_u64());
    assert_eq!(
        (code, counts),
        (0, [Some(0); 4]),
        "{context}: the manifest does not match the disk: {json}"
    );
    let out = env
        .command("push")
        .args(["--json", "--remote", &remote.spec])
        .envs(remote.envs())
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let counts = ["uploaded", "moved", "deleted", "backed_up"].map(|k| json[k].as_u64());
    assert_eq!(
        (out.status.code(), counts),
        (Some(0), [Some(0); 4]),
        "{context}: the push state does not match the remote: {json} {}",
        stderr(&out)
    );
}

/// `musync sync` as a user would run it, into `remote`.
fn sync_command(env: &Env, remote: &Remote, quality: &str, slow: bool) -> Command {
    let mut cmd = env.command("sync");
    cmd.args(["--json", "--quality", quality, "--max-delete", "100%"])
        .args(["--remote", &remote.spec])
        .envs(remote.envs());
    if slow {
        // A narrow pipe widens the push's window for the kill.
        cmd.env("MUSYNC_RCLONE_FLAGS", "--bwlimit 300k");
    }
    cmd
}

fn sync_ok(env: &Env, remote: &Remote, quality: &str, slow: bool, context: &str) -> Value {
    let out = sync_command(env, remote, quality, slow).output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "{context}: sync failed: {}\n{json}",
        stderr(&out)
    );
    for stage in ["convert", "tag", "push"] {
        assert_eq!(
            json[stage]["failed"],
            serde_json::json!([]),
            "{context}: {json}"
        );
    }
    json
}

/// The rclone operation a running musync is waiting for, if any.
fn rclone_op(musync: u32) -> Option<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-P", &musync.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().next()?;
    let op = line.split_whitespace().nth(2).unwrap_or("?");
    Some(
        if op == "<defunct>" {
            "between rclone calls"
        } else {
            op
        }
        .to_owned(),
    )
}

/// An rclone that outlived musync would race the next push, which finds the lock's process
/// gone: its late writes truncated files the next push had just uploaded. The kernel kills it
/// with musync, so only a moment is allowed.
fn assert_group_ends(pgid: u32, context: &str) {
    let deadline = Instant::now() + Duration::from_millis(250);
    while group_alive(pgid) {
        assert!(
            Instant::now() < deadline,
            "{context}: rclone runs on after musync was killed"
        );
        sleep(Duration::from_millis(10));
    }
}

/// Whether a live process (not a zombie awaiting its reaper) is left in the process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

#[test]
fn sync_survives_kill_9_anywhere() {
    let (mut rng, seed) = Rng::from_env("MUSYNC_CRASH_SEED");
    eprintln!("crash: seed {seed} (replay with MUSYNC_CRASH_SEED={seed})");
    let started = Instant::now();
    let env = Env::empty();
    let mut library = Library::generate(&env, &mut rng);
    let remote = Remote::start(Kind::Local);
    let mut lengths = Lengths::default();

    // Calibration: a first sync, then a full re-encode (a new quality) through a narrow pipe.
    let timed = |quality, slow| {
        let t = Instant::now();
        sync_ok(
            &env,
            &remote,
            quality,
            slow,
            &format!("seed {seed}: calibration"),
        );
        t.elapsed()
    };
    let full = timed("V2", false);
    let full_slow = timed("V4", true);
    lengths.check(&env, "calibration");
    assert_settled(&env, &remote, "calibration");
    eprintln!("crash: a full sync takes {full:.2?}, {full_slow:.2?} with --bwlimit");

    let mut quality = "V4";
    let (mut rounds, mut killed, mut missed, mut group_only) = (0, 0, 0, 0);
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    while killed < 24 && rounds < 80 {
        rounds += 1;
        let edits: Vec<String> = (0..rng.below(3))
            .map(|_| library.edit(&env, &mut rng))
            .collect();
        let before = quality;
        if rng.chance(0.4) {
            quality = *rng.pick(&["V2", "V4", "V6"]);
        }
        let slow = rng.chance(0.3);
        let window = if slow { full_slow } else { full };
        // Another quality re-encodes and re-uploads everything, as the calibration run did; a
        // few edits take a fraction of that (the start-up, scan and listing stay).
        let work = if quality == before { 0.4 } else { 1.0 };
        let delay = window.mul_f64(work * rng.unit());
        let target = rng.unit();
        let mut context = format!(
            "seed {seed} round {rounds}: edits {edits:?}, {quality}{}, kill after {delay:.2?}",
            if slow { " slow" } else { "" },
        );
        let library_before = tree_hashes(&env.library);

        let mut child = sync_command(&env, &remote, quality, slow)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        sleep(delay);
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "{context}: sync failed on its own: {status}"
            );
            missed += 1;
        } else {
            let phase = rclone_op(pid).unwrap_or_else(|| "convert/tag".into());
            // Killing musync alone matters most while it waits for rclone.
            let whole_group = target < if phase == "convert/tag" { 0.8 } else { 0.5 };
            context.push_str(if whole_group {
                " (the group)"
            } else {
                " (musync alone)"
            });
            if whole_group {
                // What closing the terminal does: musync and its rclone die together.
                run(Command::new("kill").args(["-s", "KILL", "--", &format!("-{pid}")]));
            } else {
                // What the OOM killer or `kill -9 <pid>` does: only musync.
                child.kill().unwrap();
                group_only += 1;
            }
            let status = child.wait().unwrap();
            if status.signal() == Some(9) {
                killed += 1;
                *phases.entry(phase).or_default() += 1;
            } else {
                assert!(
                    status.success(),
                    "{context}: sync failed on its own: {status}"
                );
                missed += 1;
            }
            assert_group_ends(pid, &context);
        }
        assert_eq!(
            tree_hashes(&env.library),
            library_before,
            "{context}: the killed run changed the library"
        );

        // Often the user changes the library before the next run: it must cope with half-done
        // work and new changes at once (an album renamed under an unfinished upload, a file
        // retagged after its upload landed unrecorded).
        let later: Vec<String> = match rng.below(6) {
            0 => vec![library.retag_all(&env, &mut rng)],
            1 | 2 => (0..=rng.below(2))
                .map(|_| library.edit(&env, &mut rng))
                .collect(),
            _ => vec![],
        };
        let context = format!("{context}, then {later:?}");
        let library_before = tree_hashes(&env.library);
        sync_ok(&env, &remote, quality, false, &context);
        assert_eq!(
            tree_hashes(&env.library),
            library_before,
            "{context}: the library changed"
        );
        lengths.check(&env, &context);
        assert_settled(&env, &remote, &context);
    }
    eprintln!(
        "crash: seed {seed}: {killed} kills survived ({group_only} of musync alone; by phase \
         {phases:?}), {missed} runs finished before their kill, {rounds} rounds in {:.1?}",
        started.elapsed()
    );
    assert!(killed >= 20, "seed {seed}: only {killed} kills landed");
}

/// Regression: `kill -9` of musync alone (the OOM killer, a service manager) left its rclone
/// uploading, and the next push, taking over the stale lock, uploaded beside it: the orphan's
/// late writes left empty files on the remote where the mirror had music.
#[test]
fn rclone_dies_with_musync() {
    let env = Env::empty();
    for i in 0..3 {
        make_flac(&env.lib(&format!("Album/{i:02}.flac")), 8.0, &[]);
    }
    assert_eq!(env.convert_json(&[]).1, 0);
    let remote = Remote::start(Kind::Local);
    let mut child = env
        .command("push")
        .args(["--remote", &remote.spec])
        .envs(remote.envs())
        .env("MUSYNC_RCLONE_FLAGS", "--bwlimit 20k")
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rclone_op(child.id()).as_deref() != Some("copy") {
        assert!(
            Instant::now() < deadline,
            "the push never started its upload"
        );
        sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_group_ends(child.id(), "killed during the upload");
}
