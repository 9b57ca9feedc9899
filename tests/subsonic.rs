//! musync and a real Subsonic server (Debian's supysonic, on loopback):
//! - `--subsonic-url` on `push` and `sync`: after the push, musync asks the server to rescan,
//!   and the server then lists every pushed MP3. The password comes from the environment or a
//!   file and shows nowhere; a server that refuses is one line on stderr and exit code 4.
//! - The server reads the genres `musync tag` writes: it scans the staging folder, and its
//!   Subsonic API (not its database) lists every MP3 under the genre of its album folder.
//!
//! supysonic runs with a private folder as working directory and `HOME`, its Flask app under
//! werkzeug on loopback. Its `startScan` does not scan in the web process: it hands the scan to
//! `supysonic-daemon` over the daemon socket, so the daemon runs here too, with the same
//! config. For the rescan tests the folder it serves is the push's remote, added empty, so the
//! songs it lists after the push can only come from the scan musync asked for. supysonic cannot
//! check Subsonic tokens (it stores salted hashes), so this also covers musync's fallback to
//! the password in a POST body. For the genre test its scan runs in the foreground, started
//! from `supysonic-cli`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Env, files, make_flac, make_image, run, stderr};

pub const USER: &str = "musync";
pub const PASSWORD: &str = "Pa55-w0rd-of-the-test";

/// Serve supysonic on a free loopback port and print the port; die after 120 s in any case.
const SERVE: &str = r#"
import signal
from supysonic.web import create_application
from werkzeug.serving import make_server
signal.alarm(120)
server = make_server("127.0.0.1", 0, create_application())
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// supysonic's daemon, which runs the scans `startScan` asks for; dies after 120 s in any case.
const DAEMON: &str = r"
import signal
signal.alarm(120)
from supysonic.daemon import main
main()
";

/// supysonic's web server and daemon serving one music folder (named `music`) with an admin
/// user; dropping it kills both.
pub struct Supysonic {
    home: PathBuf,
    children: Vec<Child>,
    port: u16,
    /// How to run `supysonic-cli`: its Python and the script.
    cli: Vec<String>,
}

impl Drop for Supysonic {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Supysonic {
    /// Serve `music` (which must exist) with an admin user, without scanning it.
    pub fn start(env: &Env, music: &Path) -> Supysonic {
        // supysonic's Python is the one in `supysonic-cli`'s `#!` line (Debian's python3, which
        // may not be the `python3` on PATH, e.g. under pyenv).
        let cli = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("supysonic-cli"))
            .find(|path| path.is_file())
            .expect(
                "supysonic-cli is not installed: scripts/test installs it (apt package supysonic)",
            );
        let script = fs::read_to_string(&cli).unwrap();
        let shebang = script.lines().next().and_then(|l| l.strip_prefix("#!"));
        let mut python: Vec<String> = shebang
            .expect("no #!")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        python.push(cli.to_string_lossy().into_owned());

        let home = env.dir.path().join("supysonic");
        fs::create_dir(&home).unwrap();
        let d = home.display();
        let conf = format!(
            "[base]\ndatabase_uri = sqlite:///{d}/supysonic.db\n[webapp]\ncache_dir = {d}/cache\n\
             [daemon]\nsocket = {d}/daemon.sock\nrun_watcher = no\nlog_level = INFO\n"
        );
        fs::write(home.join("supysonic.conf"), conf).unwrap();
        let mut supysonic = Supysonic {
            home: home.clone(),
            children: Vec::new(),
            port: 0,
            cli: python,
        };
        let music = music.to_str().unwrap();
        supysonic.cli(&["folder", "add", "music", music]);
        supysonic.cli(&["user", "add", USER, "--password", PASSWORD]);
        supysonic.cli(&["user", "setroles", "--admin", USER]);

        let log = fs::File::create(home.join("daemon.log")).unwrap();
        let mut daemon = supysonic.python();
        daemon
            .args(["-c", DAEMON])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        supysonic.children.push(daemon.spawn().unwrap());
        let started = Instant::now();
        while !home.join("daemon.sock").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no daemon: {}",
                supysonic.log("daemon.log")
            );
            std::thread::sleep(Duration::from_millis(50));
        }

        let log = fs::File::create(home.join("server.log")).unwrap();
        let mut server = supysonic.python();
        server
            .args(["-c", SERVE])
            .stdout(Stdio::piped())
            .stderr(log);
        supysonic.children.push(server.spawn().unwrap());
        let stdout = supysonic.children[1].stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        supysonic.port = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "supysonic did not start: {line:?}\n{}",
                supysonic.log("server.log")
            )
        });
        supysonic
    }

    /// supysonic's Python, in its private folder.
    fn python(&self) -> Command {
        let mut cmd = Command::new(&self.cli[0]);
        cmd.current_dir(&self.home).env("HOME", &self.home);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run `supysonic-cli ARGS`, which must succeed.
    pub fn cli(&self, args: &[&str]) {
        run(self.python().args(&self.cli[1..]).args(args));
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.home.join(name)).unwrap_or_default()
    }

    /// Call a Subsonic API method and return its `subsonic-response`, checked to be "ok".
    pub fn get(&self, method: &str, params: &str) -> Value {
        let (_, body) = self.request(method, &format!("&f=json{params}"));
        let json: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{method}: bad answer ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        let answer = json["subsonic-response"].clone();
        assert_eq!(answer["status"], "ok", "{method}: {answer}");
        answer
    }

    /// The body of a Subsonic API method's answer, checked to be a 200 (e.g. an image from
    /// `getCoverArt`).
    pub fn get_bytes(&self, method: &str, params: &str) -> Vec<u8> {
        let (head, body) = self.request(method, params);
        let ok = head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200");
        assert!(ok, "{method}: {head}");
        body
    }

    /// One HTTP/1.0 GET of `/rest/METHOD.view` as the test user: the head and the body.
    fn request(&self, method: &str, params: &str) -> (String, Vec<u8>) {
        let mut http = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        http.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let query = format!("u={USER}&p={PASSWORD}&v=1.10.2&c=musync-test{params}");
        write!(http, "GET /rest/{method}.view?{query} HTTP/1.0\r\n\r\n").unwrap();
        let mut response = Vec::new();
        http.read_to_end(&mut response).unwrap();
        let end = response.windows(4).position(|w| w == b"\r\n\r\n");
        let end = end.unwrap_or_else(|| panic!("{method}: no HTTP header"));
        let head = String::from_utf8_lossy(&response[..end]).into_owned();
        (head, response[end + 4..].to_vec())
    }

    /// The paths of the songs the server knows, sorted.
    fn songs(&self) -> Vec<String> {
        let answer = self.get("getRandomSongs", "&size=500");
        let songs = answer["randomSongs"]["song"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut paths: Vec<String> = songs
            .iter()
            .map(|s| s["path"].as_str().unwrap().to_owned())
            .collect();
        paths.sort();
        paths
    }

    /// Wait for the scan musync started to list `expected`.
    fn wait_for_songs(&self, expected: &[String]) {
        let started = Instant::now();
        loop {
            let songs = self.songs();
            if songs == expected {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server lists {songs:?}, not {expected:?}\n{}",
                self.log("daemon.log")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A converted demo library, an empty remote folder and a supysonic serving that folder.
fn setup() -> (Env, PathBuf, Supysonic) {
    let env = Env::demo();
    let (json, code) = env.convert_json(&[]);
    assert_eq!(code, 0, "{json}");
    let remote = env.dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let supysonic = Supysonic::start(&env, &remote);
    assert_eq!(supysonic.songs(), Vec::<String>::new());
    (env, remote, supysonic)
}

/// The MP3s musync put on the remote, sorted.
fn pushed_mp3s(remote: &Path) -> Vec<String> {
    let mut mp3s = files(remote);
    mp3s.retain(|f| f.ends_with(".mp3") && !f.starts_with(".musync"));
    mp3s
}

fn musync(env: &Env, subcommand: &str, remote: &Path, supysonic: &Supysonic) -> Command {
    env.run(subcommand)
        .arg("--remote")
        .arg(remote)
        .args(["--subsonic-url", &supysonic.url(), "--subsonic-user", USER])
        .env_remove("MUSYNC_SUBSONIC_PASSWORD")
        .command()
}

fn assert_no_password(out: &Output, password: &str) {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out));
    assert!(!text.contains(password), "the password is shown: {text}");
}

#[test]
fn push_asks_subsonic_server_to_rescan() {
    let (env, remote, supysonic) = setup();
    let out = musync(&env, "push", &remote, &supysonic)
        .env("MUSYNC_SUBSONIC_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_no_password(&out, PASSWORD);
    let mp3s = pushed_mp3s(&remote);
    assert_eq!(mp3s.len(), 8, "{mp3s:?}");
    supysonic.wait_for_songs(&mp3s);
}

#[test]
fn sync_reads_subsonic_password_from_file() {
    let (env, remote, supysonic) = setup();
    let file = env.dir.path().join("subsonic-password");
    fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = musync(&env, "sync", &remote, &supysonic)
        .arg("--subsonic-password-file")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_no_password(&out, PASSWORD);
    supysonic.wait_for_songs(&pushed_mp3s(&remote));
}

#[test]
fn wrong_subsonic_password_fails_after_push_without_showing_it() {
    let (env, remote, supysonic) = setup();
    let wrong = "Not-the-Pa55word";
    let out = musync(&env, "push", &remote, &supysonic)
        .env("MUSYNC_SUBSONIC_PASSWORD", wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_no_password(&out, wrong);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    let line = err.trim_end().to_lowercase();
    assert!(
        line.contains(&format!("subsonic server {}", supysonic.url())),
        "{err}"
    );
    assert!(line.contains("wrong username or password"), "{err}");
    // The push itself was done; only the rescan failed.
    assert_eq!(pushed_mp3s(&remote).len(), 8);
    assert_eq!(supysonic.songs(), Vec::<String>::new());
}

#[test]
fn subsonic_password_is_never_an_argument() {
    let env = Env::demo();
    assert_eq!(env.convert_json(&[]).1, 0);
    let remote = env.dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let mut cmd = env.command("push");
    cmd.arg("--remote").arg(&remote).args([
        "--subsonic-url",
        "http://127.0.0.1:9",
        "--subsonic-user",
        USER,
    ]);
    let out = cmd
        .args(["--subsonic-password", PASSWORD])
        .env_remove("MUSYNC_SUBSONIC_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unexpected argument '--subsonic-password'"),
        "{}",
        stderr(&out)
    );

    // No password anywhere: refused before anything is pushed.
    let mut cmd = env.command("push");
    cmd.arg("--remote").arg(&remote).args([
        "--subsonic-url",
        "http://127.0.0.1:9",
        "--subsonic-user",
        USER,
    ]);
    let out = cmd.env_remove("MUSYNC_SUBSONIC_PASSWORD").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("MUSYNC_SUBSONIC_PASSWORD"),
        "{}",
        stderr(&out)
    );
    assert!(
        files(&remote).is_empty(),
        "pushed without a usable subsonic password"
    );
}

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

/// What a listener sees in a Subsonic server (issue 14): a two-disc album whose big cover sits
/// beside its disc folders shows that cover, downscaled, for every track and for the album
/// folder (from the mirror's own `cover.jpg`), and the bytes are the ones musync embedded.
#[test]
fn subsonic_server_shows_a_multi_disc_albums_cover() {
    let env = Env::empty();
    let album = env.lib("Jazz/Quartet/Two Discs");
    make_image(&album.join("cover.jpg"), "testsrc2=s=2400x2400");
    for disc in ["CD1", "CD2"] {
        make_flac(
            &album.join(disc).join("01.flac"),
            0.5,
            &["TITLE=One", "ALBUM=Two Discs"],
        );
    }
    let remote = env.dir.path().join("remote");
    let out = env
        .command("sync")
        .arg("--remote")
        .arg(&remote)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let folder_cover = fs::read(remote.join("Jazz/Quartet/Two Discs/cover.jpg")).unwrap();

    let server = Supysonic::start(&env, &remote);
    server.cli(&["folder", "scan", "--foreground", "music"]);
    let songs = server.get("getRandomSongs", "&size=50");
    let songs = songs["randomSongs"]["song"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(songs.len(), 2, "{songs:?}");
    for song in &songs {
        let id = song["coverArt"]
            .as_str()
            .unwrap_or_else(|| panic!("no cover art: {song}"));
        let art = server.get_bytes("getCoverArt", &format!("&id={id}"));
        assert_eq!(
            art, folder_cover,
            "{}: the server's art is not musync's",
            song["path"]
        );
    }
    // The album folder itself (the disc folders' parent) shows the mirror's cover.jpg.
    let parent = songs[0]["parent"].as_str().unwrap();
    let disc = server.get("getMusicDirectory", &format!("&id={parent}"));
    let album_id = disc["directory"]["parent"].as_str().unwrap();
    let album = server.get("getMusicDirectory", &format!("&id={album_id}"));
    assert_eq!(album["directory"]["name"], "Two Discs", "{album}");
    let art = server.get_bytes("getCoverArt", &format!("&id={album_id}"));
    assert_eq!(art, folder_cover);
    assert!(
        folder_cover.len() < 1_000_000,
        "not downscaled: {} bytes",
        folder_cover.len()
    );
}
