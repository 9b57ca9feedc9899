//! `musync convert` end to end: what it writes, checked by ffmpeg and mutagen, and how it
//! follows each kind of library change.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

const OPENING: &str = "Jazz/Miles Quartet/Blue Session/01 - Opening";
const DEMO_OUTPUTS: [&str; 8] = [
    "Classical/Orchestra/Symphony/01 - Mono Movement.mp3",
    "Classical/Orchestra/Symphony/02 - HiRes.mp3",
    "Jazz/Miles Quartet/Blue Session/01 - Opening.mp3",
    "Jazz/Miles Quartet/Blue Session/02 - Second Take.mp3",
    "Jazz/Miles Quartet/Blue Session/03 - Bonus.mp3",
    "Rock/Some Band/Live Album/CD1/01 - Intro.mp3",
    "Rock/Some Band/Live Album/CD2/01 - Encore.mp3",
    "Soundtrack/Studio/Surround/01 - Five One.mp3",
];

fn converted(env: &Env) -> Vec<String> {
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["failed"], serde_json::json!([]));
    env.staged_files()
}

#[test]
fn demo_library_mirrors_with_exact_lengths() {
    let env = Env::demo();
    let library = tree_hashes(&env.library);
    assert_eq!(converted(&env), DEMO_OUTPUTS);
    for out in DEMO_OUTPUTS.iter().filter(|o| !o.contains("Bonus")) {
        let source = env.lib(&out.replace(".mp3", ".flac"));
        let (frames, rate, channels) = decoded(&source);
        let (mp3_frames, mp3_rate, mp3_channels) = decoded(&env.staged(out));
        let want_rate = if rate == 96_000 { 48_000 } else { rate };
        let want_frames = (frames * u64::from(want_rate) + u64::from(rate) / 2) / u64::from(rate);
        assert_eq!((mp3_frames, mp3_rate), (want_frames, want_rate), "{out}");
        assert_eq!(mp3_channels, channels.min(2), "{out}");
    }
    for args in [
        &["--dry-run"][..],
        &[],
        &["--id3v23"],
        &["--quality", "V0"],
        &["--force"],
    ] {
        let out = env.convert(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(
        tree_hashes(&env.library),
        library,
        "the library was written to"
    );
}

#[test]
fn lame_info_frame_is_in_the_first_frame() {
    let env = Env::demo();
    converted(&env);
    let bytes = fs::read(env.staged(&format!("{OPENING}.mp3"))).unwrap();
    // Skip the ID3v2 tag (synchsafe size), then the first frame must be LAME's info frame.
    assert_eq!(&bytes[..3], b"ID3");
    let size = bytes[6..10]
        .iter()
        .fold(0usize, |n, b| (n << 7) | usize::from(*b));
    let frame = &bytes[10 + size..10 + size + 417];
    assert_eq!(frame[0], 0xff, "no MPEG frame right after the tag");
    let info = frame
        .windows(4)
        .position(|w| w == b"Xing" || w == b"Info")
        .expect("no Xing/Info header");
    assert_eq!(
        &frame[info + 120..info + 124],
        b"LAME",
        "no LAME tag in the info frame"
    );
    let second = &bytes[10 + size + 417..];
    assert!(
        !second
            .windows(4)
            .take(64)
            .any(|w| w == b"Xing" || w == b"Info"),
        "a second info frame"
    );
}

#[test]
fn tags_and_cover_are_carried_over() {
    let env = Env::demo();
    converted(&env);
    let tags = mutagen(&env.staged(&format!("{OPENING}.mp3")));
    let text = |k: &str| {
        tags.get(k)
            .unwrap_or_else(|| panic!("no {k} in {tags:?}"))
            .clone()
    };
    assert_eq!(text("_version"), "2.4");
    assert_eq!(text("TIT2"), serde_json::json!(["Opening"]));
    assert_eq!(
        text("TPE1"),
        serde_json::json!(["Miles Quartet", "Guest Trumpeter"])
    );
    assert_eq!(text("TALB"), serde_json::json!(["Blue Session"]));
    assert_eq!(text("TPE2"), serde_json::json!(["Miles Quartet"]));
    assert_eq!(text("TRCK"), serde_json::json!(["1/3"]));
    assert_eq!(text("TPOS"), serde_json::json!(["1/1"]));
    assert_eq!(text("TDRC"), serde_json::json!(["2021-05-14"]));
    assert_eq!(text("TCON"), serde_json::json!(["Jazz"]));
    assert_eq!(text("TCOM"), serde_json::json!(["José Ortega"]));
    assert_eq!(
        text("TXXX:MusicBrainz Album Id"),
        serde_json::json!(["6f1c3b9e-2d4a-4c8e-9b7a-1e5f0c2d3a41"])
    );
    assert_eq!(
        text("TXXX:MusicBrainz Artist Id"),
        serde_json::json!([
            "0b8d5e2c-7f3a-4e19-a6c4-9d2e1f7b8c05",
            "c4e2a7d9-1f6b-4b3e-8a5d-2e9c7f1a0b64"
        ])
    );
    assert_eq!(
        text("UFID:http://musicbrainz.org"),
        "3a7e9c21-5b4d-4f6a-8e2c-7d1b0a9f6e32"
    );
    assert_eq!(
        text("TXXX:REPLAYGAIN_TRACK_GAIN"),
        serde_json::json!(["+10.82 dB"])
    );
    assert_eq!(
        text("TXXX:REPLAYGAIN_ALBUM_PEAK"),
        serde_json::json!(["0.07067871"])
    );
    assert!(
        tags.keys().any(|k| k.starts_with("COMM")),
        "no comment: {tags:?}"
    );
    assert!(
        tags.keys().any(|k| k.starts_with("USLT")),
        "no lyrics: {tags:?}"
    );
    let cover = tags
        .iter()
        .find(|(k, _)| k.starts_with("APIC"))
        .expect("no cover")
        .1;
    assert_eq!(cover["type"], 3);
    assert_eq!(cover["mime"], "image/jpeg");
    assert!(
        !tags.contains_key("TSSE"),
        "the FLAC vendor string became the encoder: {tags:?}"
    );

    // No embedded picture: the folder's folder.jpg is embedded instead.
    let intro = mutagen(&env.staged("Rock/Some Band/Live Album/CD1/01 - Intro.mp3"));
    let folder_jpg = fs::metadata(env.lib("Rock/Some Band/Live Album/CD1/folder.jpg"))
        .unwrap()
        .len();
    let cover = intro
        .iter()
        .find(|(k, _)| k.starts_with("APIC"))
        .expect("folder.jpg not embedded")
        .1;
    assert_eq!(cover["len"], folder_jpg);
    let encore = mutagen(&env.staged("Rock/Some Band/Live Album/CD2/01 - Encore.mp3"));
    assert!(
        !encore.keys().any(|k| k.starts_with("APIC")),
        "a cover from another folder"
    );
}

#[test]
fn id3v23_is_written_when_asked() {
    let env = Env::demo();
    let (_, code) = env.convert_json(&["--id3v23"]);
    assert_eq!(code, 0);
    let tags = mutagen(&env.staged(&format!("{OPENING}.mp3")));
    assert_eq!(tags["_version"], "2.3");
    assert!(
        tags.contains_key("TYER") || tags.contains_key("TDRC"),
        "{tags:?}"
    );
    // The choice is remembered; switching back to 2.4 rewrites tags only.
    assert_eq!(env.convert_json(&[]).0["skipped"].as_u64(), Some(8));
    let (json, _) = env.convert_json(&["--id3v24"]);
    assert_eq!(
        (json["converted"].as_u64(), json["retagged"].as_u64()),
        (Some(0), Some(8)),
        "{json}"
    );
}

#[test]
fn wav_aiff_and_alac_sources_convert_too() {
    let env = Env::empty();
    for (name, codec) in [
        ("a.wav", "pcm_s24le"),
        ("b.aiff", "pcm_s16be"),
        ("c.m4a", "alac"),
    ] {
        run(Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=330:duration=1.3",
            ])
            .args(["-ac", "2", "-ar", "48000", "-c:a", codec])
            .arg(env.lib(name)));
    }
    assert_eq!(converted(&env), ["a.mp3", "b.mp3", "c.mp3"]);
    for (source, mp3) in [("a.wav", "a.mp3"), ("b.aiff", "b.mp3"), ("c.m4a", "c.mp3")] {
        let (frames, rate, _) = decoded(&env.lib(source));
        let (mp3_frames, mp3_rate, _) = decoded(&env.staged(mp3));
        assert_eq!((mp3_frames, mp3_rate), (frames, rate), "{source}");
    }
}

#[test]
fn native_mp3_passes_through_without_reencoding() {
    let env = Env::demo();
    converted(&env);
    let rel = "Jazz/Miles Quartet/Blue Session/03 - Bonus.mp3";
    assert_eq!(decoded(&env.staged(rel)), decoded(&env.lib(rel)));
}

#[test]
fn surround_is_downmixed_with_every_channel() {
    let env = Env::empty();
    // One tone in the centre channel only: a "first two channels" downmix would be silent.
    for (name, pan) in [
        ("centre.flac", "5.1|FC=c0"),
        ("back-left.flac", "5.1|BL=c0"),
    ] {
        let wav = env.dir.path().join("t.wav");
        run(Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=500:duration=1",
                "-af",
            ])
            .arg(format!("pan={pan}"))
            .arg(&wav));
        run(Command::new("flac")
            .args(["-s", "-f"])
            .arg(&wav)
            .arg("-o")
            .arg(env.lib(name)));
    }
    converted(&env);
    let rms = |rel: &str| {
        let pcm = run(Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(env.staged(rel))
            .args(["-f", "s16le", "-"]))
        .stdout;
        let samples: Vec<f64> = pcm
            .chunks_exact(2)
            .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
            .collect();
        let side = |c: usize| {
            (samples
                .iter()
                .skip(c)
                .step_by(2)
                .map(|s| s * s)
                .sum::<f64>()
                / (samples.len() / 2) as f64)
                .sqrt()
        };
        (side(0), side(1))
    };
    // ffmpeg's sine has an RMS of 2896; the normalised 5.1 matrix gives C and Ls 0.293 each.
    let (l, r) = rms("centre.mp3");
    assert!(
        l > 800.0 && (l - r).abs() < l * 0.05,
        "centre should reach both sides equally: {l} {r}"
    );
    let (l, r) = rms("back-left.mp3");
    assert!(
        l > 800.0 && r < l * 0.05,
        "back-left should reach the left side only: {l} {r}"
    );
}

#[test]
fn second_run_does_nothing_and_touches_nothing() {
    let env = Env::demo();
    converted(&env);
    let before = mtimes(&env.staging);
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0);
    assert_eq!(
        (json["converted"].as_u64(), json["skipped"].as_u64()),
        (Some(0), Some(8)),
        "{json}"
    );
    assert_eq!(mtimes(&env.staging), before);
}

#[test]
fn dry_run_writes_nothing_and_predicts_the_real_run() {
    let env = Env::demo();
    let out = env.convert(&["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        plan.lines()
            .filter(|l| l.starts_with("convert ") || l.starts_with("copy "))
            .count(),
        8,
        "{plan}"
    );
    assert!(!env.staging.exists(), "dry run created staging");
    let (dry, _) = env.convert_json(&["--dry-run"]);
    let (real, _) = env.convert_json(&[]);
    for key in [
        "converted",
        "copied",
        "retagged",
        "renamed",
        "removed",
        "skipped",
    ] {
        assert_eq!(dry[key], real[key], "{key}");
    }
    assert_eq!(
        (dry["dry_run"].as_bool(), real["dry_run"].as_bool()),
        (Some(true), Some(false))
    );

    fs::remove_file(env.lib(&format!("{OPENING}.flac"))).unwrap();
    let before = tree_hashes(&env.staging);
    let plan = String::from_utf8(env.convert(&["--dry-run"]).stdout).unwrap();
    assert!(plan.contains(&format!("remove  {OPENING}.mp3")), "{plan}");
    assert_eq!(tree_hashes(&env.staging), before, "dry run changed staging");
}

#[test]
fn tag_edit_retags_without_reencoding() {
    let env = Env::demo();
    converted(&env);
    let flac = env.lib(&format!("{OPENING}.flac"));
    run(Command::new("metaflac")
        .arg("--remove-tag=TITLE")
        .arg("--set-tag=TITLE=Opening (edit)")
        .arg(&flac));
    let (json, _) = env.convert_json(&[]);
    assert_eq!(
        (json["converted"].as_u64(), json["retagged"].as_u64()),
        (Some(0), Some(1)),
        "{json}"
    );
    assert_eq!(
        mutagen(&env.staged(&format!("{OPENING}.mp3")))["TIT2"],
        serde_json::json!(["Opening (edit)"])
    );
}

#[test]
fn renamed_album_is_moved_not_reencoded() {
    let env = Env::demo();
    converted(&env);
    let album = "Jazz/Miles Quartet/Blue Session";
    fs::rename(
        env.lib(album),
        env.lib("Jazz/Miles Quartet/Blue Session (Remaster)"),
    )
    .unwrap();
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        (json["converted"].as_u64(), json["renamed"].as_u64()),
        (Some(0), Some(3)),
        "{json}"
    );
    assert!(
        !env.staged(album).exists(),
        "the old album folder is left behind"
    );
    assert!(
        env.staged("Jazz/Miles Quartet/Blue Session (Remaster)/01 - Opening.mp3")
            .exists()
    );
    let (json, _) = env.convert_json(&[]);
    assert_eq!(json["skipped"].as_u64(), Some(8), "{json}");
}

#[test]
fn removed_source_removes_only_musyncs_file() {
    let env = Env::demo();
    converted(&env);
    fs::write(
        env.staged("Jazz/Miles Quartet/Blue Session/my-playlist.m3u"),
        "mine",
    )
    .unwrap();
    fs::write(
        env.staged("Jazz/Miles Quartet/Blue Session/04 - Mine.mp3"),
        "mine",
    )
    .unwrap();
    fs::remove_file(env.lib(&format!("{OPENING}.flac"))).unwrap();
    let (json, code) = env.convert_json(&[]);
    assert_eq!((code, json["removed"].as_u64()), (0, Some(1)), "{json}");
    assert!(!env.staged(&format!("{OPENING}.mp3")).exists());
    assert!(
        env.staged("Jazz/Miles Quartet/Blue Session/my-playlist.m3u")
            .exists()
    );
    assert!(
        env.staged("Jazz/Miles Quartet/Blue Session/04 - Mine.mp3")
            .exists()
    );
}

#[test]
fn missing_or_damaged_output_is_reconverted() {
    let env = Env::demo();
    converted(&env);
    fs::remove_file(env.staged(&format!("{OPENING}.mp3"))).unwrap();
    let damaged = env.staged("Rock/Some Band/Live Album/CD2/01 - Encore.mp3");
    let mut bytes = fs::read(&damaged).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&damaged, bytes).unwrap();
    let (json, _) = env.convert_json(&[]);
    assert_eq!(json["converted"].as_u64(), Some(2), "{json}");
}

#[test]
fn new_quality_reencodes_lossless_only() {
    let env = Env::demo();
    converted(&env);
    let (json, _) = env.convert_json(&["--quality", "CBR128"]);
    assert_eq!(
        (json["converted"].as_u64(), json["skipped"].as_u64()),
        (Some(7), Some(1)),
        "{json}"
    );
    let bad = env.convert(&["--quality", "V11"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("V11"), "{}", stderr(&bad));
}

#[test]
fn identical_audio_gives_two_outputs() {
    let env = Env::demo();
    converted(&env);
    fs::copy(
        env.lib(&format!("{OPENING}.flac")),
        env.lib("Jazz/copy.flac"),
    )
    .unwrap();
    let (json, _) = env.convert_json(&[]);
    assert_eq!(
        (json["converted"].as_u64(), json["renamed"].as_u64()),
        (Some(1), Some(0)),
        "{json}"
    );
    assert!(env.staged(&format!("{OPENING}.mp3")).exists() && env.staged("Jazz/copy.mp3").exists());
}

#[test]
fn unmounted_or_emptied_library_refuses_to_delete() {
    let env = Env::demo();
    converted(&env);
    let staged = tree_hashes(&env.staging);
    let moved = env.dir.path().join("elsewhere");
    fs::rename(&env.library, &moved).unwrap();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("mounted"), "{}", stderr(&out));
    fs::create_dir(&env.library).unwrap();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Most of it gone (5 of 8): refused too, unless forced.
    fs::remove_dir(&env.library).unwrap();
    fs::rename(&moved, &env.library).unwrap();
    fs::remove_dir_all(env.lib("Jazz")).unwrap();
    fs::remove_dir_all(env.lib("Classical")).unwrap();
    assert_eq!(env.convert(&[]).status.code(), Some(3));
    assert_eq!(
        tree_hashes(&env.staging),
        staged,
        "a refused run changed staging"
    );
    let (json, code) = env.convert_json(&["--force"]);
    assert_eq!((code, json["removed"].as_u64()), (0, Some(5)), "{json}");
}

#[test]
fn staging_inside_the_library_is_refused() {
    let env = Env::demo();
    let out = crate::util::musync()
        .args(["convert", "--library"])
        .arg(&env.library)
        .arg("--staging")
        .arg(env.lib("mirror"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("overlap"), "{}", stderr(&out));
    assert!(!env.lib("mirror").exists());
    // A staging folder holding the library would let a mirrored path land inside it.
    let out = crate::util::musync()
        .args(["convert", "--library"])
        .arg(&env.library)
        .arg("--staging")
        .arg(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn user_file_in_the_way_is_kept_and_reported() {
    let env = Env::demo();
    converted(&env);
    let mine = env.staged("Jazz/new.mp3");
    fs::write(&mine, "mine").unwrap();
    fs::copy(
        env.lib(&format!("{OPENING}.flac")),
        env.lib("Jazz/new.flac"),
    )
    .unwrap();
    let out = env.convert(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("musync: Jazz/new.flac: staging already has Jazz/new.mp3"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read(&mine).unwrap(), b"mine");
}

/// kill -9 in the middle of a run, then run again: no truncated MP3 under a final name, ever.
#[test]
fn killed_run_is_finished_by_the_next() {
    let env = Env::empty();
    for i in 0..6 {
        make_flac(
            &env.lib(&format!("Album/{i:02}.flac")),
            40.0,
            &[&format!("TITLE=Track {i}")],
        );
    }
    let mut child = env
        .command("convert")
        .args(["--jobs", "1"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !env.staged("Album").exists()
        || files(&env.staged("Album"))
            .iter()
            .all(|f| f.starts_with(".musync-tmp-"))
    {
        assert!(Instant::now() < deadline, "no file was ever finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let expected = decoded(&env.lib("Album/00.flac")).0;
    let finished: Vec<String> = env
        .staged_files()
        .into_iter()
        .filter(|f| f.ends_with(".mp3") && !f.contains(".musync-tmp-"))
        .collect();
    assert!(
        finished.len() < 6,
        "the kill came too late to test anything"
    );
    for f in &finished {
        assert_eq!(decoded(&env.staged(f)).0, expected, "{f} is truncated");
    }
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    assert!(
        env.staged_files()
            .iter()
            .all(|f| !f.contains(".musync-tmp-")),
        "temporaries left"
    );
    assert_eq!(env.staged_files().len(), 6);
    for f in env.staged_files() {
        assert_eq!(decoded(&env.staged(&f)).0, expected, "{f}");
    }
}

/// Regression: renaming most of the library in the run that changed the quality was refused as
/// "sources gone from the library": renamed sources that must be re-encoded anyway are planned
/// as removed and converted again, and the guard counted them as lost.
#[test]
fn renames_with_a_new_quality_are_no_disappearance() {
    let env = Env::demo();
    converted(&env);
    for (from, to) in [
        ("Jazz", "Jazz & Blues"),
        ("Rock", "Rock & Pop"),
        ("Classical", "Art"),
    ] {
        fs::rename(env.lib(from), env.lib(to)).unwrap();
    }
    let (json, code) = env.convert_json(&["--quality", "V5"]);
    assert_eq!(code, 0, "{json}");
    let mut want: Vec<String> = DEMO_OUTPUTS
        .iter()
        .map(|o| {
            let o = o.replacen("Jazz/", "Jazz & Blues/", 1);
            let o = o.replacen("Rock/", "Rock & Pop/", 1);
            o.replacen("Classical/", "Art/", 1)
        })
        .collect();
    want.sort();
    assert_eq!(env.staged_files(), want);
    // A library that really lost most of its sources is still refused.
    fs::remove_dir_all(env.lib("Jazz & Blues")).unwrap();
    fs::remove_dir_all(env.lib("Art")).unwrap();
    assert_eq!(env.convert(&["--quality", "V2"]).status.code(), Some(3));
}
