//! `musync sync` with a peer: bisync first, then convert, tag and push, so that a CD ripped on
//! the laptop reaches the peer (the master copy) and the server in one command, and an album
//! added on the peer reaches the library and the server the same way. A bisync refusal stops
//! the sync before convert.

use std::path::{Path, PathBuf};

use super::peers::*;
use crate::remotes::{self, Kind};
use crate::util::*;

/// The server the MP3s are pushed to: a local folder beside the library.
fn server(pair: &Pair) -> PathBuf {
    pair.env.dir.path().join("server")
}

/// `musync sync --json --peer PEER --remote SERVER ARGS`.
fn sync(pair: &Pair, args: &[&str]) -> (serde_json::Value, std::process::Output) {
    pair.env
        .run("sync")
        .json()
        .arg("--peer")
        .arg(pair.spec())
        .arg("--remote")
        .arg(server(pair))
        .envs(pair.server.envs())
        .env("MUSYNC_RCLONE", &pair.rclone)
        .args(args)
        .parsed()
}

fn flac(pair: &Pair, side: At, rel: &str) {
    make_flac(&pair.path(side, rel), 1.0, &["TITLE=Track", "ARTIST=Band"]);
}

fn mp3s(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| !f.starts_with(".musync"))
        .collect()
}

/// A CD ripped on the library side reaches the peer as FLAC and the server as MP3 in one
/// `sync`; an album added on the peer then reaches the library and the server in the next.
#[test]
fn sync_with_a_peer_carries_a_ripped_cd_to_the_peer_and_the_server() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    flac(&pair, Lib, "Band/Ripped CD/01.flac");
    flac(&pair, Lib, "Band/Ripped CD/02.flac");

    let (json, out) = sync(&pair, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json["bisync"], "to_peer"), 2, "{json}");
    assert_eq!(json["convert"]["converted"], 2, "{json}");
    assert_eq!(json["push"]["uploaded"], 2, "{json}");
    pair.assert_in_step("after the first sync");
    assert_eq!(
        mp3s(&server(&pair)),
        ["Band/Ripped CD/01.mp3", "Band/Ripped CD/02.mp3"]
    );

    flac(&pair, Peer, "Other/From the NAS/01.flac");
    let (json, out) = sync(&pair, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json["bisync"], "to_library"), 1, "{json}");
    assert_eq!(json["push"]["uploaded"], 1, "{json}");
    pair.assert_in_step("after the second sync");
    assert!(pair.path(Lib, "Other/From the NAS/01.flac").is_file());
    assert_eq!(
        mp3s(&server(&pair)),
        [
            "Band/Ripped CD/01.mp3",
            "Band/Ripped CD/02.mp3",
            "Other/From the NAS/01.mp3"
        ]
    );
}

/// `sync --dry-run` with a peer plans the bisync, says that the convert plan does not include
/// what the bisync would fetch, and changes nothing anywhere.
#[test]
fn sync_dry_run_with_a_peer_changes_nothing_and_says_what_it_leaves_out() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    flac(&pair, Lib, "Band/CD/01.flac");
    flac(&pair, Peer, "Other/NAS/01.flac");
    let before = [pair.root(Lib), pair.root(Peer), pair.env.staging.clone()].map(|d| {
        std::fs::create_dir_all(&d).unwrap();
        tree_hashes(&d)
    });

    let out = pair
        .env
        .run("sync")
        .args(["--dry-run", "--peer", &pair.spec(), "--remote"])
        .arg(server(&pair))
        .env("MUSYNC_RCLONE", &pair.rclone)
        .ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the convert plan does not yet include what bisync would fetch"),
        "{text}"
    );
    assert!(text.contains("Other/NAS/01.flac"), "no bisync plan: {text}");
    let after =
        [pair.root(Lib), pair.root(Peer), pair.env.staging.clone()].map(|d| tree_hashes(&d));
    assert_eq!(before, after, "the dry run changed something");
    assert!(
        !server(&pair).exists(),
        "the dry run made the server folder"
    );

    let (json, out) = sync(&pair, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json["bisync"]["dry_run"], true, "{json}");
    assert_eq!(count(&json["bisync"], "to_library"), 1, "{json}");
    assert_eq!(count(&json["bisync"], "to_peer"), 1, "{json}");
}

/// A bisync refused (the peer folder gone after a sync saw files there) stops the sync before
/// convert: exit 3, one line, nothing converted or pushed.
#[test]
fn sync_stops_before_convert_when_its_bisync_is_refused() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    flac(&pair, Lib, "Band/CD/01.flac");
    let (_, out) = sync(&pair, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    flac(&pair, Lib, "Band/CD/02.flac");
    let staged = tree_hashes(&pair.env.staging);
    let pushed = tree_hashes(&server(&pair));
    std::fs::remove_dir_all(pair.root(Peer)).unwrap();

    let (_, out) = sync(&pair, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("musync:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert_eq!(tree_hashes(&pair.env.staging), staged, "convert ran: {err}");
    assert_eq!(tree_hashes(&server(&pair)), pushed, "push ran: {err}");
}

/// A peer inside staging or the server folder (or holding one of them) is refused with exit 2
/// before anything runs: a bisync would copy the library into the mirror.
#[test]
fn sync_refuses_a_peer_inside_staging_or_the_server() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    pair.write(Lib, "Band/CD/01.flac", &track(1, 500), ago(100));
    let staging_peer = pair.env.staging.join("peer");
    let server_peer = server(&pair).join("peer");
    for peer in [&staging_peer, &server_peer, &pair.env.dir.path().to_owned()] {
        let out = pair
            .env
            .run("sync")
            .arg("--peer")
            .arg(peer)
            .arg("--remote")
            .arg(server(&pair))
            .env("MUSYNC_RCLONE", &pair.rclone)
            .output();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", peer.display());
        assert!(err.starts_with("musync: "), "{err}");
        assert!(
            !pair.env.staging.exists(),
            "{}: staging made",
            peer.display()
        );
        assert!(!server(&pair).exists(), "{}: server made", peer.display());
    }
}

/// The config file's `peer` makes `sync` bisync first, as `--peer` does.
#[test]
fn the_config_files_peer_makes_sync_bisync_first() {
    let pair = Pair::new(Kind::Local, &remotes::rclones()[0]);
    flac(&pair, Lib, "Band/CD/01.flac");
    let config = pair.env.dir.path().join("config.toml");
    let text = format!(
        "peer = '{}'\n[bisync]\nconflict = 'keep-both'\n",
        pair.spec()
    );
    std::fs::write(&config, text).unwrap();
    let (json, out) = pair
        .env
        .run("sync")
        .json()
        .arg("--config")
        .arg(&config)
        .arg("--remote")
        .arg(server(&pair))
        .env("MUSYNC_RCLONE", &pair.rclone)
        .parsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json["bisync"], "to_peer"), 1, "{json}");
    pair.assert_in_step("after a sync with the config's peer");
    assert_eq!(mp3s(&server(&pair)), ["Band/CD/01.mp3"]);
}
