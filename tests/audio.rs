//! Issue 14's audio items: damaged FLACs that libFLAC plays convert to the length libFLAC decodes
//! with one warning line each (corpus made by scripts/make-flac-quirks), files libFLAC fails stay
//! refused, the downmix follows the file's channel mask, and a source too short for its
//! resampling ratio still gives audio.

use std::f64::consts::FRAC_1_SQRT_2;
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

/// Layouts `flac --channel-map=none` writes as a `WAVEFORMATEXTENSIBLE_CHANNEL_MASK` tag (every
/// standard one up to 8 channels ffmpeg names), as ffmpeg spells them, with the mask.
const LAYOUTS: &[(&str, u32)] = &[
    ("FL+FR+FC", 0x7),
    ("FL+FR+BC", 0x103),
    ("FL+FR+LFE", 0xb),
    ("FL+FR+FC+BC", 0x107),
    ("FL+FR+BL+BR", 0x33),
    ("FL+FR+SL+SR", 0x603),
    ("FL+FR+FC+SL+SR", 0x607),
    ("FL+FR+FC+LFE+BL+BR", 0x3f),
    ("FL+FR+FC+LFE+SL+SR", 0x60f),
    ("FL+FR+FC+BL+BR+BC", 0x137),
    ("FL+FR+FC+LFE+BC+SL+SR", 0x70f),
    ("FL+FR+FC+LFE+BL+BR+SL+SR", 0x63f),
    ("FL+FR+FC+LFE+BL+BR+FLC+FRC", 0xff),
    ("FL+FR+FC+BL+BR+BC+SL+SR", 0x737),
    ("FL+FR+TFL+TFR", 0x5003),
];

/// Each channel's tone: distinct, a whole number of cycles in the half second measured.
const TONES: [u32; 8] = [220, 330, 440, 550, 660, 880, 990, 1100];

/// The level of `freq` in each of the two channels of 44.1 kHz stereo `pcm` (s16le), over the
/// half second from 0.25 s (Goertzel).
fn levels(pcm: &[u8], freq: u32) -> [f64; 2] {
    let samples: Vec<i16> = pcm
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let (start, n) = (11_025, 22_050);
    let w = 2.0 * std::f64::consts::PI * f64::from(freq) / 44_100.0;
    [0, 1].map(|side| {
        let (mut re, mut im) = (0.0, 0.0);
        for i in 0..n {
            let x = f64::from(samples[(start + i) * 2 + side]) / 32768.0;
            re += x * (w * i as f64).cos();
            im += x * (w * i as f64).sin();
        }
        2.0 * (re * re + im * im).sqrt() / n as f64
    })
}

fn stereo_pcm(path: &Path, extra: &[&str]) -> Vec<u8> {
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(extra)
        .args(["-ac", "2", "-f", "s16le", "-acodec", "pcm_s16le", "-"]))
    .stdout
}

// Regression: the downmix went by channel count alone, ignoring the file's channel mask (a 4.0
// file put front centre left only; a hexagonal one lost its back left).
#[test]
fn downmix_follows_the_channel_mask_like_ffmpeg() {
    let env = Env::empty();
    for (layout, mask) in LAYOUTS {
        let n = layout.split('+').count();
        let inputs: String = (0..n)
            .map(|k| format!("sine=f={}:d=1:sample_rate=44100[a{k}];", TONES[k]))
            .collect();
        let pads: String = (0..n).map(|k| format!("[a{k}]")).collect();
        let wav = env.dir.path().join(format!("{mask:x}.wav"));
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-filter_complex"])
            .arg(format!(
                "{inputs}{pads}join=inputs={n}:channel_layout={layout}[out]"
            ))
            .args(["-map", "[out]", "-c:a", "pcm_s16le"])
            .arg(&wav));
        run(Command::new("flac")
            .args(["-s", "-f", "--channel-map=none", "-o"])
            .arg(env.lib(&format!("{mask:x}.flac")))
            .arg(&wav));
    }
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut wrong = Vec::new();
    for (layout, mask) in LAYOUTS {
        let names: Vec<&str> = layout.split('+').collect();
        let ours = stereo_pcm(&env.staged(&format!("{mask:x}.mp3")), &[]);
        let theirs = stereo_pcm(&env.lib(&format!("{mask:x}.flac")), &[]);
        // Levels relative to the loudest, as each side normalises its own matrix.
        let measure = |pcm: &[u8]| -> Vec<[f64; 2]> {
            let raw: Vec<[f64; 2]> = (0..names.len()).map(|k| levels(pcm, TONES[k])).collect();
            let peak = raw.iter().flatten().copied().fold(0.0, f64::max);
            raw.iter().map(|g| g.map(|x| x / peak)).collect()
        };
        let (ours, theirs) = (measure(&ours), measure(&theirs));
        for (k, name) in names.iter().enumerate() {
            // ffmpeg drops top speakers; musync mixes them at -3 dB on their side.
            let theirs = match *name {
                "TFL" => [FRAC_1_SQRT_2, 0.0],
                "TFR" => [0.0, FRAC_1_SQRT_2],
                _ => theirs[k],
            };
            let close = (0..2).all(|s| (ours[k][s] - theirs[s]).abs() < 0.04);
            if !close {
                wrong.push(format!(
                    "{layout} {name}: musync L {:.3} R {:.3}, ffmpeg L {:.3} R {:.3}",
                    ours[k][0], ours[k][1], theirs[0], theirs[1]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
