//! A real Subsonic server reads the genres `musync tag` writes: Debian's supysonic scans the
//! staging folder, and its Subsonic API (not its database) lists every MP3 under the genre of
//! its album folder.
//!
//! supysonic takes no config path or variable: it merges `/etc/supysonic`, `~/.supysonic`,
//! `~/.config/supysonic/supysonic.conf` and `./supysonic.conf`. So every supysonic process runs
//! in a private folder, as its working directory and `HOME`, whose `supysonic.conf` puts the
//! sqlite database, the cache and the daemon socket there. The scan runs in the foreground (no
//! daemon). The server is supysonic's own Flask app under werkzeug's WSGI server (a dependency of
//! the Debian package, so nothing more to install), on 127.0.0.1 with a port the OS picks.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{Env, run, stderr};

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

/// Serve supysonic on a free loopback port and print the port; die after 120 s in any case, in
/// case the test that started it could not kill it.
const SERVE: &str = r#"
import signal
from supysonic.web import create_application
from werkzeug.serving import make_server
signal.alarm(120)
server = make_server("127.0.0.1", 0, create_application())
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// The running server; dropping it (test passed or failed) kills it.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Call a Subsonic API method and return its `subsonic-response`, checked to be "ok".
    fn get(&self, method: &str, params: &str) -> Value {
        let mut http = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let timeout = Some(Duration::from_secs(30));
        http.set_read_timeout(timeout).unwrap();
        let query = format!("u=musync&p=secret&v=1.10.2&c=musync-test&f=json{params}");
        write!(http, "GET /rest/{method}.view?{query} HTTP/1.0\r\n\r\n").unwrap();
        let mut response = String::new();
        http.read_to_string(&mut response).unwrap();
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let json: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{method}: bad answer ({e}): {response}"));
        let answer = json["subsonic-response"].clone();
        assert_eq!(answer["status"], "ok", "{method}: {answer}");
        answer
    }
}

#[test]
fn subsonic_server_indexes_folder_genres() {
    // supysonic's Python is the one in `supysonic-cli`'s `#!` line (Debian's python3, which may
    // not be the `python3` on PATH, e.g. under pyenv).
    let cli = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("supysonic-cli"))
        .find(|path| path.is_file())
        .expect("supysonic-cli is not installed: scripts/test installs it (apt package supysonic)");
    let script = fs::read_to_string(&cli).unwrap();
    let shebang = script.lines().next().and_then(|l| l.strip_prefix("#!"));
    let python: Vec<&str> = shebang.expect("no #!").split_whitespace().collect();

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

    let home = env.dir.path().join("supysonic");
    fs::create_dir(&home).unwrap();
    let d = home.display();
    let conf = format!(
        "[base]\ndatabase_uri = sqlite:///{d}/supysonic.db\n[webapp]\ncache_dir = {d}/cache\n\
         [daemon]\nsocket = {d}/daemon.sock\n"
    );
    fs::write(home.join("supysonic.conf"), conf).unwrap();
    let python = || {
        let mut cmd = Command::new(python[0]);
        cmd.args(&python[1..]).current_dir(&home).env("HOME", &home);
        cmd.stdin(Stdio::null());
        cmd
    };
    let staging = env.staging.to_str().unwrap();
    for args in [
        ["folder", "add", "staging", staging].as_slice(),
        &["folder", "scan", "--foreground", "staging"],
        &["user", "add", "musync", "--password", "secret"],
    ] {
        run(python().arg(&cli).args(args));
    }

    let log = fs::File::create(home.join("server.log")).unwrap();
    let mut server = python();
    server
        .args(["-c", SERVE])
        .stdout(Stdio::piped())
        .stderr(log);
    let child = server.spawn().unwrap();
    let mut server = Server { child, port: 0 };
    let mut line = String::new();
    let stdout = server.child.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    server.port = line.trim().parse().unwrap_or_else(|_| {
        let log = fs::read_to_string(home.join("server.log")).unwrap_or_default();
        panic!("supysonic server did not start: {line:?}\n{log}")
    });

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
