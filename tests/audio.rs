//! Issue 14's audio items: damaged FLACs that libFLAC plays convert to the length libFLAC decodes
//! with one warning line each (corpus made by scripts/make-flac-quirks), files libFLAC fails stay
//! refused, the downmix follows the file's channel mask, and a source too short for its
//! resampling ratio still gives audio.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// How many samples per channel `flac -d` decodes from `path`, and whether `flac -t` passes.
fn libflac(path: &Path) -> (u64, bool) {
    let out = Command::new("flac")
        .args(["-d", "-s", "-c", "--force-raw-format", "--endian=little"])
        .args(["--sign=signed"])
        .arg(path)
        .output()
        .unwrap();
    let test = Command::new("flac").args(["-t", "-s"]).arg(path).output();
    // Every corpus file is 16-bit stereo.
    (out.stdout.len() as u64 / 4, test.unwrap().status.success())
}

fn corpus(env: &Env) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-flac-quirks");
    run(Command::new(script).arg(&env.library));
}

// Regression: FLACs libFLAC plays (wrong STREAMINFO, metadata out of order or missing, a broken
// comment length, no header at all) were refused.
#[test]
fn damaged_flacs_libflac_plays_convert_to_its_length() {
    let env = Env::empty();
    corpus(&env);
    let out = env.convert(&[]);
    let err = stderr(&out);
    let mut played = 0;
    for name in files(&env.library) {
        let (samples, passes) = libflac(&env.lib(&name));
        let mp3 = env.staged(&name.replace(".flac", ".mp3"));
        let warnings: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(name.as_str()))
            .collect();
        if name.starts_with("refused-") {
            assert!(!passes, "{name}: libFLAC should fail it");
            assert!(!mp3.exists(), "{name}: a refused file left an MP3");
            assert!(
                err.contains(&format!("musync: {name}: ")),
                "{name} not named as failed:\n{err}"
            );
            continue;
        }
        played += 1;
        assert!(samples > 50_000, "{name}: flac -d decoded {samples}");
        assert!(mp3.exists(), "{name} did not convert:\n{err}");
        let (frames, rate, channels) = decoded(&mp3);
        assert_eq!((frames, rate, channels), (samples, 44_100, 2), "{name}");
        assert_eq!(warnings.len(), 1, "{name}: one warning line:\n{err}");
    }
    assert_eq!(played, 8, "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Tags come from what can be read: all of them when only the block order is wrong.
    let tags = mutagen(&env.staged("streaminfo-not-first.mp3"));
    assert_eq!(tags["TPE1"], serde_json::json!(["Quirk"]), "{tags:?}");
}

// Regression: a 1-sample 192 kHz FLAC was refused as "holds no audio" (it resampled to 0 frames).
#[test]
fn one_sample_at_192_khz_gives_one_frame() {
    let env = Env::empty();
    let raw = env.dir.path().join("one.raw");
    std::fs::write(&raw, [0x00, 0x40, 0x00, 0xc0]).unwrap();
    run(Command::new("flac")
        .args([
            "-s",
            "--force-raw-format",
            "--endian=little",
            "--sign=signed",
        ])
        .args(["--channels=2", "--bps=16", "--sample-rate=192000", "-o"])
        .arg(env.lib("one.flac"))
        .arg(&raw));
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(decoded(&env.staged("one.mp3")), (1, 48_000, 2));
}
