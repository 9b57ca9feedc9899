//! What the listener sees (issue 14): covers, picture types, Picard's tag mapping, native copies
//! reported as copies, and staged files a media server running as another user can read. Every
//! check reads the mirror with an independent reader (mutagen, ffprobe) or the file system.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{Env, files, make_flac, make_image, mtimes, mutagen, run, stderr};

const BONUS: &str = "Jazz/Miles Quartet/Blue Session/03 - Bonus.mp3";

// Regression: native MP3 copies were listed as `convert X.mp3 -> X.mp3` and counted as converted.
#[test]
fn native_mp3_copies_are_copy_lines_and_a_copied_count() {
    let env = Env::demo();
    let dry = env.convert(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let plan = String::from_utf8_lossy(&dry.stdout);
    let line = plan
        .lines()
        .find(|l| l.contains("03 - Bonus"))
        .expect(&plan);
    assert_eq!(line, format!("copy    {BONUS} -> {BONUS} (new)"), "{plan}");
    assert_eq!(
        plan.lines().filter(|l| l.starts_with("convert ")).count(),
        7,
        "{plan}"
    );
    assert!(plan.contains("Would convert 7, copy 1, retag 0"), "{plan}");
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        (&json["converted"], &json["copied"]),
        (&7.into(), &1.into()),
        "{json}"
    );
    assert!(env.staged(BONUS).is_file());
}

// Regression: staged MP3s were created 0600 (tempfile's mode), unreadable to a media server
// running as another user.
#[test]
fn staged_files_are_readable_by_others_under_the_default_umask() {
    let env = Env::demo();
    let mut convert = env.command("convert");
    // The usual umask, whatever the test runner's is; set in the child only.
    // SAFETY: umask is async-signal-safe and touches nothing but the child's own mask.
    unsafe {
        convert.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let out = convert.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let staged: Vec<String> = files(&env.staging)
        .into_iter()
        .filter(|f| f.ends_with(".mp3"))
        .collect();
    assert_eq!(staged.len(), 8, "{staged:?}");
    for rel in staged {
        let mode = fs::metadata(env.staging.join(&rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644, "{rel}: {mode:o}");
    }
}

/// A `size`×`size` image made by ffmpeg (`.jpg` or `.png` by the name).
fn image(path: &Path, size: u32, colour: &str) {
    make_image(path, &format!("color=c={colour}:s={size}x{size}"));
}

/// The APIC frames mutagen reads: description → (type, length).
fn apics(tags: &BTreeMap<String, Value>) -> BTreeMap<String, (u64, u64)> {
    tags.iter()
        .filter_map(|(k, v)| {
            let desc = k.strip_prefix("APIC:")?;
            Some((desc.to_owned(), (v["type"].as_u64()?, v["len"].as_u64()?)))
        })
        .collect()
}

// Regression: tracks in `Album/CD1/` and `Album/CD2/` got no picture from `Album/cover.jpg`.
#[test]
fn disc_folders_take_the_album_folder_cover() {
    let env = Env::empty();
    let album = env.lib("Rock/Band/Album");
    image(&album.join("cover.jpg"), 64, "red");
    make_flac(&album.join("CD1/01.flac"), 0.2, &["TITLE=One"]);
    make_flac(&album.join("CD2/01.flac"), 0.2, &["TITLE=Two"]);
    // A disc folder's own image wins over the album's.
    image(&env.lib("Rock/Band/Other/Disc 1/folder.png"), 32, "blue");
    image(&env.lib("Rock/Band/Other/cover.jpg"), 48, "green");
    make_flac(&env.lib("Rock/Band/Other/Disc 1/01.flac"), 0.2, &[]);
    // A folder that is not a disc folder does not borrow its parent's cover.
    make_flac(&album.join("Extras/01.flac"), 0.2, &[]);
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    let cover = fs::metadata(album.join("cover.jpg")).unwrap().len();
    for disc in ["CD1", "CD2"] {
        let tags = mutagen(&env.staged(&format!("Rock/Band/Album/{disc}/01.mp3")));
        assert_eq!(
            apics(&tags),
            BTreeMap::from([(String::new(), (3, cover))]),
            "{disc}"
        );
    }
    let own = fs::metadata(env.lib("Rock/Band/Other/Disc 1/folder.png"))
        .unwrap()
        .len();
    let tags = mutagen(&env.staged("Rock/Band/Other/Disc 1/01.mp3"));
    assert_eq!(apics(&tags), BTreeMap::from([(String::new(), (3, own))]));
    let tags = mutagen(&env.staged("Rock/Band/Album/Extras/01.mp3"));
    assert_eq!(apics(&tags), BTreeMap::new());
    // One folder cover, the album's: a disc folder's own image is only embedded.
    assert_eq!(
        cover_files(&env.staged_files()),
        ["Rock/Band/Album/cover.jpg"]
    );
    // The next run has nothing left to do.
    let (json, _) = env.convert_json(&[]);
    assert_eq!(
        (&json["converted"], &json["retagged"]),
        (&0.into(), &0.into()),
        "{json}"
    );
}

// Regression: a FLAC whose only picture was the back cover got it as the MP3's front cover, and
// the folder's cover.jpg was ignored.
#[test]
fn a_back_cover_stays_the_back_and_the_folder_gives_the_front() {
    let env = Env::empty();
    let dir = env.lib("Jazz/Band/Album");
    image(&dir.join("cover.jpg"), 40, "red");
    image(&env.dir.path().join("back.png"), 24, "white");
    image(&env.dir.path().join("front.jpg"), 16, "black");
    let back = env.dir.path().join("back.png");
    let front = env.dir.path().join("front.jpg");
    for (name, pictures) in [
        (
            "back-only",
            vec![format!("4||Back side||{}", back.display())],
        ),
        (
            "both",
            vec![
                format!("4||||{}", back.display()),
                format!("3||||{}", front.display()),
            ],
        ),
    ] {
        let flac = dir.join(format!("{name}.flac"));
        make_flac(&flac, 0.2, &[]);
        let mut metaflac = Command::new("metaflac");
        for p in &pictures {
            metaflac.arg(format!("--import-picture-from={p}"));
        }
        run(metaflac.arg(&flac));
    }
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    let len = |p: &Path| fs::metadata(p).unwrap().len();
    for version in ["--id3v24", "--id3v23"] {
        let (json, code) = env.convert_json(&[version]);
        assert_eq!(code, 0, "{json}");
        let tags = mutagen(&env.staged("Jazz/Band/Album/back-only.mp3"));
        assert_eq!(
            apics(&tags),
            BTreeMap::from([
                (String::new(), (3, len(&dir.join("cover.jpg")))),
                ("Back side".to_owned(), (4, len(&back))),
            ]),
            "{version}"
        );
        let tags = mutagen(&env.staged("Jazz/Band/Album/both.mp3"));
        assert_eq!(
            apics(&tags),
            BTreeMap::from([
                (String::new(), (3, len(&front))),
                ("Cover Art (Back)".to_owned(), (4, len(&back))),
            ]),
            "{version}"
        );
    }
}

/// (width, height) of the picture ffprobe finds attached to `mp3`.
fn attached_picture_size(mp3: &Path) -> (u64, u64) {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "json"])
        .arg(mp3));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &json["streams"][0];
    (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap())
}

// Regression: a 3000 px cover was embedded at full size in every track of its album.
#[test]
fn big_covers_are_downscaled_once_and_shared_across_the_album() {
    let env = Env::empty();
    let album = env.lib("Pop/Band/Album");
    fs::create_dir_all(&album).unwrap();
    make_image(&album.join("cover.png"), "testsrc2=s=3000x2000");
    let original = fs::metadata(album.join("cover.png")).unwrap().len();
    for n in 1..=3 {
        make_flac(&album.join(format!("0{n}.flac")), 0.2, &[]);
    }
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    let mut lens = Vec::new();
    for n in 1..=3 {
        let mp3 = env.staged(&format!("Pop/Band/Album/0{n}.mp3"));
        assert_eq!(attached_picture_size(&mp3), (1200, 800));
        let pics = apics(&mutagen(&mp3));
        assert_eq!(pics.len(), 1, "{pics:?}");
        lens.push(pics[""]);
    }
    assert!(
        lens.iter().all(|l| *l == lens[0] && l.1 < original),
        "{lens:?}"
    );
    // Identical bytes, not merely the same size.
    let bytes: Vec<Vec<u8>> = (1..=3)
        .map(|n| {
            let out = run(Command::new("ffmpeg")
                .args(["-v", "error", "-i"])
                .arg(env.staged(&format!("Pop/Band/Album/0{n}.mp3")))
                .args(["-map", "0:v", "-c", "copy", "-f", "image2pipe", "-"]));
            out.stdout
        })
        .collect();
    assert!(bytes[0].len() > 1000 && bytes.iter().all(|b| *b == bytes[0]));

    // 0 keeps the original bytes; changing the setting retags, never re-encodes.
    let (json, code) = env.convert_json(&["--art-max-size", "0"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        (&json["converted"], &json["retagged"]),
        (&0.into(), &3.into()),
        "{json}"
    );
    let mp3 = env.staged("Pop/Band/Album/01.mp3");
    assert_eq!(attached_picture_size(&mp3), (3000, 2000));
    assert_eq!(apics(&mutagen(&mp3))[""], (3, original));
    // The setting is remembered.
    let (json, _) = env.convert_json(&[]);
    assert_eq!(
        (&json["converted"], &json["retagged"]),
        (&0.into(), &0.into()),
        "{json}"
    );
    // And it can come from the config file.
    let config = env.dir.path().join("musync.toml");
    fs::write(&config, "art-max-size = 500\n").unwrap();
    let (json, code) = env.convert_json(&["--config", config.to_str().unwrap()]);
    assert_eq!((code, &json["retagged"]), (0, &3.into()), "{json}");
    assert_eq!(attached_picture_size(&mp3), (500, 333));
}

/// The front cover's bytes embedded in `mp3`, as ffmpeg extracts them.
fn embedded_cover(mp3: &Path) -> Vec<u8> {
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(mp3)
        .args(["-map", "0:v", "-c", "copy", "-f", "image2pipe", "-"]))
    .stdout
}

/// The cover files in `paths` (every track is an `.mp3`), the remote's backups left out.
fn cover_files(paths: &[String]) -> Vec<&str> {
    (paths.iter())
        .map(String::as_str)
        .filter(|p| !p.ends_with(".mp3") && !p.starts_with(".musync-backups/"))
        .collect()
}

// Regression: the mirror had no folder image, which Navidrome and other servers read beside the
// tracks (issue 14, item 2).
#[test]
fn a_multi_disc_album_gets_one_folder_cover_that_moves_goes_and_is_pushed_with_it() {
    let env = Env::empty();
    let remote = crate::remotes::Remote::start(crate::remotes::Kind::Local);
    let album = env.lib("Pop/Band/Album");
    image(&album.join("cover.jpg"), 2000, "red");
    make_flac(&album.join("CD1/01.flac"), 0.2, &["TITLE=One"]);
    make_flac(&album.join("CD2/01.flac"), 0.2, &["TITLE=Two"]);
    let dry = env.convert(&["--dry-run"]);
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(
        plan.lines()
            .any(|l| l == "cover   Pop/Band/Album/cover.jpg -> Pop/Band/Album/cover.jpg"),
        "{plan}"
    );
    let (json, out) = env.run("sync").json().remote(&remote).parsed_strict();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["convert"]["covers"], 1, "{json}");
    let staged = env.staged_files();
    assert_eq!(cover_files(&staged), ["Pop/Band/Album/cover.jpg"]);
    // The folder file holds the downscaled bytes embedded in every track.
    let folder = fs::read(env.staged("Pop/Band/Album/cover.jpg")).unwrap();
    for disc in ["CD1", "CD2"] {
        let mp3 = env.staged(&format!("Pop/Band/Album/{disc}/01.mp3"));
        assert_eq!(attached_picture_size(&mp3), (1200, 1200));
        assert_eq!(embedded_cover(&mp3), folder, "{disc}");
    }
    assert_eq!(
        fs::read(remote.dir.join("Pop/Band/Album/cover.jpg")).unwrap(),
        folder
    );
    let listed = env.run("verify").json().parsed_strict().0;
    assert_eq!(listed["staged"]["checked"], 3, "{listed}");

    // Renaming the album moves its cover, on staging and on the remote.
    fs::rename(&album, env.lib("Pop/Band/Album (2024)")).unwrap();
    let (json, out) = env.run("sync").json().remote(&remote).parsed_strict();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["convert"]["converted"], 0, "{json}");
    assert_eq!(
        cover_files(&env.staged_files()),
        ["Pop/Band/Album (2024)/cover.jpg"]
    );
    assert_eq!(
        cover_files(&remote.ls()),
        ["Pop/Band/Album (2024)/cover.jpg"]
    );

    // --no-folder-art removes it and re-encodes nothing; the MP3s stay as they are.
    let mp3_mtimes = |env: &Env| {
        let mut all = mtimes(&env.staging);
        all.retain(|k, _| k.ends_with(".mp3"));
        all
    };
    let before = mp3_mtimes(&env);
    let (json, out) = env
        .run("sync")
        .json()
        .remote(&remote)
        .arg("--no-folder-art")
        .parsed_strict();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        (&json["convert"]["converted"], &json["convert"]["retagged"]),
        (&0.into(), &0.into()),
        "{json}"
    );
    assert_eq!(cover_files(&env.staged_files()), Vec::<&str>::new());
    assert_eq!(cover_files(&remote.ls()), Vec::<&str>::new());
    assert_eq!(mp3_mtimes(&env), before);

    // Back on (remembered until then), the cover returns; deleting the image removes it.
    let (json, _) = env.convert_json(&["--folder-art"]);
    assert_eq!(
        (&json["converted"], &json["covers"]),
        (&0.into(), &1.into())
    );
    fs::remove_file(env.lib("Pop/Band/Album (2024)/cover.jpg")).unwrap();
    let (json, _) = env.convert_json(&[]);
    assert_eq!((&json["retagged"], &json["covers"]), (&2.into(), &1.into()));
    assert_eq!(cover_files(&env.staged_files()), Vec::<&str>::new());
}

// A file of the user's where the cover would go is never overwritten; a PNG kept as it is
// (`--art-max-size 0`) is named cover.png.
#[test]
fn a_users_cover_file_in_staging_is_kept_and_a_kept_png_is_cover_png() {
    let env = Env::empty();
    let album = env.lib("Pop/Band/Album");
    image(&album.join("folder.png"), 64, "blue");
    make_flac(&album.join("01.flac"), 0.2, &[]);
    fs::create_dir_all(env.staged("Pop/Band/Album")).unwrap();
    fs::write(env.staged("Pop/Band/Album/cover.png"), "mine").unwrap();
    let (json, code) = env.convert_json(&["--art-max-size", "0"]);
    assert_eq!(code, 1, "{json}");
    assert!(
        json["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("staging already has Pop/Band/Album/cover.png"),
        "{json}"
    );
    assert_eq!(
        fs::read(env.staged("Pop/Band/Album/cover.png")).unwrap(),
        b"mine"
    );
    fs::remove_file(env.staged("Pop/Band/Album/cover.png")).unwrap();
    let (json, code) = env.convert_json(&[]);
    assert_eq!((code, &json["covers"]), (0, &1.into()), "{json}");
    assert_eq!(
        fs::read(env.staged("Pop/Band/Album/cover.png")).unwrap(),
        fs::read(album.join("folder.png")).unwrap()
    );
    // The config file's `folder-art = false` turns it off like the flag.
    let config = env.dir.path().join("musync.toml");
    fs::write(&config, "folder-art = false\n").unwrap();
    let (json, code) = env.convert_json(&["--config", config.to_str().unwrap()]);
    assert_eq!((code, &json["covers"]), (0, &1.into()), "{json}");
    assert_eq!(env.staged_files(), ["Pop/Band/Album/01.mp3"]);
}
