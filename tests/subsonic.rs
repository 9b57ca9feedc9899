//! A real Subsonic server reads the genres `musync tag` writes: Debian's supysonic scans the
//! staging folder, and its Subsonic API (not its database) lists every MP3 under the genre of
//! its album folder.
//!
//! supysonic runs as in `scan.rs` (a private folder, its Flask app on loopback); here its scan
//! runs in the foreground, started from `supysonic-cli`.

use std::collections::BTreeMap;

use crate::scan::Supysonic;
use crate::util::{Env, stderr};

/// Every staged MP3 and the genre `musync tag --genre-from parent` gives it (its album folder).
const EXPECTED: &str = "\
Classical/Orchestra/Symphony/01 - Mono Movement.mp3 = Symphony
Classical/Orchestra/Symphony/02 - HiRes.mp3 = Symphony
Jazz/Miles Quartet/Blue Session/01 - Opening.mp3 = Blue Session
Jazz/Miles Quartet/Blue Session/02 - Second Take.mp3 = Blue Session
Jazz/Miles Quartet/Blue Session/03 - Bonus.mp3 = Blue Session
Rock/Some Band/Live Album/CD1/01 - Intro.mp3 = Live Album
Rock/Some Band/Live Album/CD2/01 - Encore.mp3 = Live Album
Soundtrack/Studio/Surround/01 - Five One.mp3 = Surround";

#[test]
fn subsonic_server_indexes_folder_genres() {
    let env = Env::demo();
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    let mut tag = env.command("tag");
    let tag = tag
        .args(["--genre-from", "parent", "--json"])
        .output()
        .unwrap();
    assert_eq!(tag.status.code(), Some(0), "{}", stderr(&tag));
    let expected: BTreeMap<String, &str> = EXPECTED
        .lines()
        .map(|l| l.split_once(" = ").unwrap())
        .map(|(path, genre)| (path.to_owned(), genre))
        .collect();
    let mut mp3s = env.staged_files();
    mp3s.retain(|f| f.ends_with(".mp3"));
    assert_eq!(mp3s, expected.keys().cloned().collect::<Vec<_>>());

    let server = Supysonic::start(&env, &env.staging);
    server.cli(&["folder", "scan", "--foreground", "music"]);

    // path → genre as the server serves them, from its genre list and each genre's songs.
    let mut indexed = BTreeMap::new();
    let genres = server.get("getGenres", "");
    for genre in genres["genres"]["genre"].as_array().unwrap() {
        let name = genre["value"].as_str().unwrap();
        let params = format!("&count=500&genre={}", name.replace(' ', "%20"));
        let songs = server.get("getSongsByGenre", &params);
        for song in songs["songsByGenre"]["song"].as_array().unwrap() {
            assert_eq!(song["genre"], name, "{song}");
            let old = indexed.insert(song["path"].as_str().unwrap().to_owned(), name);
            assert_eq!(old, None, "listed twice: {song}");
        }
    }
    assert_eq!(indexed, expected);
}
