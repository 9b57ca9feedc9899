//! rclone wrapper tests: the argument vectors, redaction, secrets in the environment, and
//! real rclone runs against local folders.

use super::process::{parse_duration, stats_key};
use super::stderr::{plain_log_line, stderr_tail};
use super::*;
use std::fs;

#[test]
fn join_puts_exactly_one_slash() {
    assert_eq!(join("nas:", "a/b"), "nas:a/b");
    assert_eq!(join("nas:music", "a"), "nas:music/a");
    assert_eq!(join("nas:music/", "/a/"), "nas:music/a");
    assert_eq!(join("/x/", "a"), "/x/a");
    assert_eq!(join("/x", "a b/c.mp3"), "/x/a b/c.mp3");
    assert_eq!(join(":sftp,host=h,user=u:", "a"), ":sftp,host=h,user=u:a");
    assert_eq!(join(":sftp,host=h:music", "a"), ":sftp,host=h:music/a");
    assert_eq!(join("nas:music", ""), "nas:music");
}

#[test]
fn version_parsing() {
    let debian = "rclone v1.60.1-DEV\n- os/version: debian 12.11 (64 bit)\n";
    assert_eq!(
        parse_version(debian),
        Some(("v1.60.1-DEV".to_owned(), 1, 60))
    );
    assert_eq!(
        parse_version("rclone v1.75.2\n"),
        Some(("v1.75.2".to_owned(), 1, 75))
    );
    assert_eq!(
        parse_version("rclone 1.61.0\n"),
        Some(("1.61.0".to_owned(), 1, 61))
    );
    assert_eq!(supported_version("rclone v1.60.0\n").unwrap(), "v1.60.0");
    assert_eq!(supported_version("rclone v2.0.0\n").unwrap(), "v2.0.0");
    let old = supported_version("rclone v1.59.9\n").unwrap_err();
    assert!(
        matches!(&old, RcloneError::TooOld { found } if found == "v1.59.9"),
        "{old}"
    );
    let err = supported_version("hello\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "rclone version failed (exit 0): unrecognised output \"hello\""
    );
    for garbage in [
        "",
        "hello",
        "rclone",
        "rclone vX.Y",
        "rsync version 3.2.7",
        "v1.60.1",
    ] {
        assert_eq!(parse_version(garbage), None, "{garbage:?}");
    }
}

#[test]
fn errors_read_as_one_line() {
    let e = RcloneError::Failed {
        op: "copy".into(),
        code: Some(1),
        stderr_tail: "boom".into(),
    };
    assert_eq!(e.to_string(), "rclone copy failed (exit 1): boom");
    let killed = RcloneError::Failed {
        op: "copy".into(),
        code: None,
        stderr_tail: String::new(),
    };
    assert_eq!(
        killed.to_string(),
        "rclone copy failed (killed by a signal)"
    );
    let e = RcloneError::TooOld {
        found: "v1.59.9".into(),
    };
    assert_eq!(
        e.to_string(),
        "rclone v1.59.9 is too old: musync needs 1.60 or newer"
    );
}

#[test]
fn stderr_tail_keeps_the_failure_and_drops_the_noise() {
    // rclone 1.60.1: unleveled final line, three identical attempts.
    let old = "2026/11/22 04:36:20 NOTICE: Config file \"/root/.config/rclone/rclone.conf\" not found - using defaults
2026/11/22 04:36:20 ERROR : top.mp3: Failed to copy: mkdir /r/afile: not a directory
2026/11/22 04:36:20 ERROR : Attempt 1/3 failed with 1 errors and: mkdir /r/afile: not a directory
2026/11/22 04:36:20 ERROR : top.mp3: Failed to copy: mkdir /r/afile: not a directory
2026/11/22 04:36:20 ERROR : Attempt 2/3 failed with 1 errors and: mkdir /r/afile: not a directory

2026/11/22 04:36:20 Failed to copy with 1 errors: last error was: mkdir /r/afile: not a directory
";
    assert_eq!(
        stderr_tail(old),
        "top.mp3: Failed to copy: mkdir /r/afile: not a directory / \
         Failed to copy with 1 errors: last error was: mkdir /r/afile: not a directory"
    );
    // rclone 1.75: the final line is a NOTICE.
    let new = "2026/11/22 04:37:40 ERROR : error listing: directory not found
2026/11/22 04:37:40 NOTICE: Failed to lsjson with 2 errors: last error was: error in ListJSON: directory not found
";
    assert_eq!(
        stderr_tail(new),
        "error listing: directory not found / \
         Failed to lsjson with 2 errors: last error was: error in ListJSON: directory not found"
    );
    let critical = "2026/11/22 04:37:40 CRITICAL: Failed to create file system for \"x:\": didn't find section";
    assert_eq!(
        stderr_tail(critical),
        "Failed to create file system for \"x:\": didn't find section"
    );
    // Only noise: better the noise than nothing.
    assert_eq!(
        stderr_tail("2026/11/22 04:37:40.123456 INFO  : hello\n\n"),
        "hello"
    );
    assert_eq!(stderr_tail(""), "");
    // At most three lines and about 300 characters; the last line is always kept.
    let many: String = (0..10).map(|i| format!("ERROR : error {i}\n")).collect();
    assert_eq!(stderr_tail(&many), "error 7 / error 8 / error 9");
    let long = format!("ERROR : {}\nERROR : {}\n", "a".repeat(200), "b".repeat(400));
    let tail = stderr_tail(&long);
    assert!(tail.starts_with("bbb") && tail.ends_with('…'), "{tail}");
    assert_eq!(tail.chars().count(), TAIL_MAX_CHARS + 1);
}

#[test]
fn redaction_hides_secrets_only() {
    assert_eq!(
        redact(":sftp,host=127.0.0.1,port=22,user=u,pass=Xy-z_9:music/a"),
        ":sftp,host=127.0.0.1,port=22,user=u,pass=***:music/a"
    );
    assert_eq!(
        redact(":webdav,url='http://h:1/',password=abc,user=u:"),
        ":webdav,url='http://h:1/',password=***,user=u:"
    );
    assert_eq!(
        redact("--sftp-pass=abc --retries=1"),
        "--sftp-pass=*** --retries=1"
    );
    assert_eq!(
        redact(":s3,secret_access_key=\"a,b:c\",region=x:b"),
        ":s3,secret_access_key=***,region=x:b"
    );
    assert_eq!(
        redact("Failed for \":sftp,pass=abc\": boom"),
        "Failed for \":sftp,pass=***\": boom"
    );
    assert_eq!(redact("nas:music/a=b.mp3"), "nas:music/a=b.mp3");
    assert_eq!(redact("no secrets"), "no secrets");
}

#[test]
fn connection_string_secrets_move_to_the_environment() {
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        secrets_to_env(":sftp,host=127.0.0.1,user=u,pass=Xy-z_9,shell_type=unix:music/a"),
        (
            ":sftp,host=127.0.0.1,user=u,shell_type=unix:music/a".to_owned(),
            env(&[("RCLONE_SFTP_PASS", "Xy-z_9")])
        )
    );
    assert_eq!(
        secrets_to_env(":webdav,url='http://h:1/',pass=\"a,b:c\"\"d\",user=u:"),
        (
            ":webdav,url='http://h:1/',user=u:".to_owned(),
            env(&[("RCLONE_WEBDAV_PASS", "a,b:c\"d")])
        )
    );
    assert_eq!(
        secrets_to_env("nas,pass=p,key_file_pass=k,user=u:dir"),
        (
            "nas,user=u:dir".to_owned(),
            env(&[
                ("RCLONE_CONFIG_NAS_PASS", "p"),
                ("RCLONE_CONFIG_NAS_KEY_FILE_PASS", "k")
            ])
        )
    );
    assert_eq!(
        secrets_to_env(":smb,pass=p:"),
        (":smb:".to_owned(), env(&[("RCLONE_SMB_PASS", "p")]))
    );
    for unchanged in [
        "nas:music",
        ":sftp:",
        "/mnt/usb,pass=x:y",
        "my-nas,pass=x:y",
        ":sftp,pass='unterminated:",
        ":sftp,pass=x",
        "nas:music,pass=x:y",
        "",
    ] {
        assert_eq!(secrets_to_env(unchanged), (unchanged.to_owned(), vec![]));
    }
}

#[test]
fn bad_relative_paths_are_refused() {
    for bad in ["", "/", "../x", "a/../../b", "a\nb", "a\r"] {
        assert!(checked_rel(bad).is_err(), "{bad:?}");
    }
    for unclean in ["/a", "a/", "a//b", "./a"] {
        assert!(checked_rel(unclean).is_err(), "{unclean:?}");
    }
    assert!(checked_rel("-a #1/b;c é.mp3").is_ok());
}

#[test]
fn listed_paths_that_leave_the_remote_are_left_out() {
    let json =
        br#"[{"Path":"a/b.mp3","Name":"b.mp3","Size":3,"ModTime":"2024-01-02T03:04:05.123456789Z"},
        {"Path":"../x.mp3","Name":"x.mp3","Size":1},
        {"Path":"/etc/passwd","Name":"passwd","Size":1},
        {"Path":"a/../../y","Name":"y","Size":1},
        {"Path":"c.mp3","Name":"c.mp3","Size":-1}]"#;
    let files = parse_listing(json).unwrap();
    let time = Some("2024-01-02T03:04:05.123456789Z".to_owned());
    let want = [("a/b.mp3", 3, time), ("c.mp3", 0, None)]
        .map(|(p, size, mtime)| (p.to_owned(), RemoteFile { size, mtime }));
    assert_eq!(files, BTreeMap::from(want));
    let links = br#"[{"Path":"a/b.mp3.rclonelink","Name":"b.mp3.rclonelink","Size":9},
        {"Path":"c.rclonelink","Name":"c.rclonelink","Size":9},
        {"Path":".rclonelink","Name":".rclonelink","Size":1}]"#;
    let listing = parse_links_listing(links).unwrap();
    assert_eq!(listing.links.iter().collect::<Vec<_>>(), ["a/b.mp3", "c"]);
    assert_eq!(listing.files.keys().collect::<Vec<_>>(), [".rclonelink"]);
    let err = parse_listing(b"[{").unwrap_err().to_string();
    assert!(err.contains("reading rclone lsjson output"), "{err}");
}

/// The compact parse reads escaped names as rclone writes them, in any order, and keeps the
/// last entry of a path listed twice (as one insertion after another did).
#[test]
fn listings_parse_escapes_order_and_repeats() {
    let json = br#"[{"Path":"z\u00e9/\"q\".mp3","Name":"x","Size":5,"ModTime":"2024-01-02T03:04:05Z","IsDir":false,"Hashes":{"md5":"00"}},
        {"Path":"a.mp3","Size":1},
        {"Path":"m/n.mp3","Size":2,"ModTime":"t\u0031"},
        {"Path":"a.mp3","Size":7}]"#;
    let files = parse_listing(json).unwrap();
    let want = [
        ("a.mp3", 7, None),
        ("m/n.mp3", 2, Some("t1")),
        ("zé/\"q\".mp3", 5, Some("2024-01-02T03:04:05Z")),
    ]
    .map(|(p, size, mtime)| {
        let mtime = mtime.map(str::to_owned);
        (p.to_owned(), RemoteFile { size, mtime })
    });
    assert_eq!(files, BTreeMap::from(want));
    assert!(parse_listing(br#"[{"Path":"a.mp3"}]"#).is_err());
    assert_eq!(parse_listing(b"[]").unwrap(), BTreeMap::new());
}

/// A listing read as rclone writes it, a piece at a time, reads as the whole output does: in
/// rclone's shape line by line, in any other shape (or with a line that does not parse) whole.
#[test]
fn a_listing_read_as_it_grows_reads_as_the_whole() {
    let entry = |p: &str, size: u64| {
        format!(
            r#"{{"Path":"{p}","Name":"x","Size":{size},"ModTime":"2024-01-02T03:04:05Z","IsDir":false}}"#
        )
    };
    let rclones = format!(
        "[\n{},\n{},\n{},\n{}\n]\n",
        entry("b/c.mp3", 1),
        entry("a.mp3", 2),
        entry("l.rclonelink", 3),
        entry("../x.mp3", 4)
    );
    let shapes = [
        rclones.clone(),
        rclones.trim_end().to_owned(),
        rclones.replace('\n', "\r\n"),
        "[\n]\n".to_owned(),
        "[]".to_owned(),
        "[\n\n]".to_owned(),
        format!("[{},{}]", entry("a", 1), entry("b", 2)),
        format!("[\n{}, {}\n]\n", entry("a", 1), entry("b", 2)),
    ];
    for json in &shapes {
        let whole = parse_links_listing(json.as_bytes()).unwrap();
        for cut in [1, 7, 64, json.len()] {
            let pieces = parse_links_listing_in_pieces(json.as_bytes(), cut).unwrap();
            assert_eq!(pieces, whole, "{json:?} in pieces of {cut}");
        }
    }
    let whole = parse_links_listing(rclones.as_bytes()).unwrap();
    assert_eq!(whole.files.keys().collect::<Vec<_>>(), ["a.mp3", "b/c.mp3"]);
    assert_eq!(whole.links.iter().collect::<Vec<_>>(), ["l"]);
    // Not JSON, however it is read: the same error either way.
    let bad = [
        format!("[\n{},\n]\n", entry("a", 1)),
        format!("[\n{}\n{}\n]\n", entry("a", 1), entry("b", 2)),
        format!("[\n{}\n]\n]\n", entry("a", 1)),
        format!("\u{c}[\n{}\n]\n", entry("a", 1)),
        "[\n{\"Path\":\"a\"}\n]".to_owned(),
        format!("[\n{}\n", entry("a", 1)),
    ];
    for json in &bad {
        let whole = parse_links_listing(json.as_bytes())
            .unwrap_err()
            .to_string();
        let pieces = parse_links_listing_in_pieces(json.as_bytes(), 5);
        assert_eq!(pieces.unwrap_err().to_string(), whole, "{json:?}");
    }
}

#[test]
fn version_check_is_remembered_per_binary() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("rclone-version");
    let checked = Rclone::find(Some(&cache), true).unwrap();
    let saved = fs::read_to_string(&cache).unwrap();
    assert!(
        saved.ends_with(&format!("\n{}\n", checked.version())),
        "{saved}"
    );
    // A remembered version is trusted only for the same binary, and only if supported.
    let key = saved.lines().next().unwrap();
    assert_eq!(
        cached_version(&cache, key).as_deref(),
        Some(checked.version())
    );
    assert_eq!(cached_version(&cache, "/other/rclone\t1\t2"), None);
    fs::write(&cache, format!("{key}\nv1.59.0\n")).unwrap();
    assert_eq!(cached_version(&cache, key), None);
}

#[test]
fn empty_lists_make_no_call() {
    let rc = Rclone {
        bin: "/nonexistent/rclone".into(),
        version: "v1.60.0".into(),
        extra_flags: vec![],
        stall: Duration::from_secs(60),
        progress: None,
    };
    assert!(
        rc.upload(Path::new("/nonexistent"), "nas:", TMP, &[])
            .is_ok()
    );
    assert!(rc.move_into("nas:", "backup", &[], "t").is_ok());
    assert!(rc.delete("nas:", &[]).is_ok());
    assert!(matches!(rc.list("nas:"), Err(RcloneError::NotFound)));
}

// The tests below run the real rclone on a local-folder remote.

fn rclone() -> Rclone {
    match Rclone::find(None, false) {
        Ok(rc) => rc,
        Err(e) => {
            panic!("these tests need rclone >= 1.60 on PATH (scripts/test installs it): {e}")
        }
    }
}

/// A staging folder with `files` (each containing its own name) and an empty remote folder.
fn setup(files: &[&str]) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("staging");
    for file in files {
        let path = local.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, file).unwrap();
    }
    let remote = dir.path().join("remote").to_str().unwrap().to_owned();
    (dir, local, remote)
}

fn names(files: &[&str]) -> Vec<String> {
    files.iter().map(|f| f.to_string()).collect()
}

fn sizes(rc: &Rclone, remote: &str) -> Vec<(String, u64)> {
    rc.list(remote)
        .unwrap()
        .into_iter()
        .map(|(p, f)| (p, f.size))
        .collect()
}

/// Where uploads wait before their rename, as the push names it.
const TMP: &str = ".musync-tmp/0123456789abcdef";

const AWKWARD: [&str; 5] = [
    "-lead.mp3",
    "a #1/b;c é.mp3",
    "Ünïcødé/日本 語/x.mp3",
    "top.mp3",
    "a #1/--dry-run",
];

#[test]
fn upload_then_list_awkward_names() {
    let rc = rclone();
    let (_dir, local, remote) = setup(&AWKWARD);
    assert!(
        rc.list(&remote).unwrap().is_empty(),
        "a missing folder lists as empty"
    );
    rc.upload(&local, &remote, TMP, &names(&AWKWARD[..4]))
        .unwrap();
    let mut want: Vec<(String, u64)> = AWKWARD[..4]
        .iter()
        .map(|f| (f.to_string(), f.len() as u64))
        .collect();
    want.sort();
    assert_eq!(sizes(&rc, &remote), want);
    assert_eq!(
        rc.list(&join(&remote, "a #1"))
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["b;c é.mp3"]
    );
    let waiting: Vec<_> = walkdir::WalkDir::new(Path::new(&remote).join(".musync-tmp"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .collect();
    assert!(waiting.is_empty(), "not renamed into place: {waiting:?}");
    // Uploading again overwrites whatever is there.
    fs::write(local.join("top.mp3"), "changed!!").unwrap();
    rc.upload(&local, &remote, TMP, &names(&["top.mp3"]))
        .unwrap();
    let listed = &rc.list(&remote).unwrap()["top.mp3"];
    assert_eq!(listed.size, 9);
    assert!(listed.mtime.is_some(), "the listing carries the time");
}

#[test]
fn upload_refuses_missing_local_files() {
    let rc = rclone();
    let (_dir, local, remote) = setup(&["a.mp3"]);
    let err = rc
        .upload(&local, &remote, TMP, &names(&["a.mp3", "gone.mp3"]))
        .unwrap_err();
    assert!(
        err.to_string().contains("gone.mp3: not a regular file"),
        "{err}"
    );
}

#[test]
fn move_rename_delete_list_dirs_purge() {
    let rc = rclone();
    let (_dir, local, remote) = setup(&AWKWARD);
    rc.upload(&local, &remote, TMP, &names(&AWKWARD)).unwrap();

    rc.move_into(
        &remote,
        "backup/2024-01-01",
        &names(&[
            "-lead.mp3",
            "a #1/b;c é.mp3",
            "absent.mp3",
            "nodir/absent.mp3",
        ]),
        "t1",
    )
    .unwrap();
    let listed = rc.list(&remote).unwrap();
    assert!(listed.contains_key("backup/2024-01-01/-lead.mp3"));
    assert!(listed.contains_key("backup/2024-01-01/a #1/b;c é.mp3"));
    assert!(!listed.contains_key("-lead.mp3") && listed.contains_key("top.mp3"));

    rc.rename(&remote, "backup/2024-01-01/-lead.mp3", "-renamed #2.mp3")
        .unwrap();
    let listed = rc.list(&remote).unwrap();
    assert!(
        listed.contains_key("-renamed #2.mp3")
            && !listed.contains_key("backup/2024-01-01/-lead.mp3")
    );

    rc.delete(
        &remote,
        &names(&[
            "-renamed #2.mp3",
            "a #1/--dry-run",
            "absent.mp3",
            "nodir/absent.mp3",
        ]),
    )
    .unwrap();
    let listed = rc.list(&remote).unwrap();
    assert!(!listed.contains_key("-renamed #2.mp3") && !listed.contains_key("a #1/--dry-run"));
    assert!(listed.contains_key("top.mp3") && listed.contains_key("Ünïcødé/日本 語/x.mp3"));
    rc.delete(&join(&remote, "nowhere"), &names(&["x.mp3"]))
        .unwrap();

    // The uploads' waiting folder stays, empty.
    assert_eq!(
        rc.list_dirs(&remote, "").unwrap(),
        [".musync-tmp", "a #1", "backup", "Ünïcødé"]
    );
    assert_eq!(rc.list_dirs(&remote, "backup").unwrap(), ["2024-01-01"]);
    assert!(rc.list_dirs(&remote, "nowhere").unwrap().is_empty());

    assert!(
        rc.purge(&remote, "").is_err(),
        "purging the whole remote is refused"
    );
    rc.purge(&remote, "backup/2024-01-01").unwrap();
    assert!(rc.list_dirs(&remote, "backup").unwrap().is_empty());
    assert!(rc.list(&remote).unwrap().contains_key("top.mp3"));
}

// Regression: a backup moved onto one of the same name replaced it, or (same size and time)
// was deleted as already there.
#[test]
fn a_backup_never_replaces_a_file_in_the_backup_folder() {
    let rc = rclone();
    let (dir, local, remote) = setup(&["a/01.mp3"]);
    rc.upload(&local, &remote, TMP, &names(&["a/01.mp3"]))
        .unwrap();
    let kept = Path::new(&remote).join("bk/a/01.mp3");
    fs::create_dir_all(kept.parent().unwrap()).unwrap();
    // Same size and time as the file moved in: rclone would take them for one file.
    fs::write(&kept, "a/01.xyz").unwrap();
    let moved = Path::new(&remote).join("a/01.mp3");
    let time = fs::metadata(&moved).unwrap().modified().unwrap();
    fs::File::options()
        .write(true)
        .open(&kept)
        .unwrap()
        .set_modified(time)
        .unwrap();
    rc.move_into(&remote, "bk", &names(&["a/01.mp3"]), "t7")
        .unwrap();
    assert_eq!(fs::read_to_string(&kept).unwrap(), "a/01.mp3");
    let renamed = Path::new(&remote).join("bk/a/01-t7.mp3");
    assert_eq!(fs::read_to_string(renamed).unwrap(), "a/01.xyz");
    assert!(!moved.exists());
    drop(dir);
}

#[test]
fn symbolic_links_on_a_local_remote_are_listed_as_links() {
    let rc = rclone();
    let (dir, local, remote) = setup(&["a/01.mp3"]);
    rc.upload(&local, &remote, TMP, &names(&["a/01.mp3"]))
        .unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("x.mp3"), "x").unwrap();
    let root = Path::new(&remote);
    std::os::unix::fs::symlink(outside.join("x.mp3"), root.join("a/02.mp3")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("b")).unwrap();
    let listing = rc.listing(&remote).unwrap();
    assert_eq!(listing.files.keys().collect::<Vec<_>>(), ["a/01.mp3"]);
    assert_eq!(listing.links.iter().collect::<Vec<_>>(), ["a/02.mp3", "b"]);
}

#[test]
fn a_case_sensitive_folder_does_not_ignore_case() {
    let rc = rclone();
    let (_dir, local, remote) = setup(&["Jazz/01.mp3"]);
    rc.upload(&local, &remote, TMP, &names(&["Jazz/01.mp3"]))
        .unwrap();
    assert!(!rc.ignores_case(&remote, "jAZZ", "01.mp3").unwrap());
}

#[test]
fn failures_carry_the_exit_code_and_cause() {
    let mut rc = rclone();
    rc.extra_flags
        .extend(["--retries", "1", "--low-level-retries", "1"].map(String::from));
    let (dir, local, _) = setup(&["a.mp3"]);
    let file = dir.path().join("a-file");
    fs::write(&file, "not a folder").unwrap();
    let err = rc
        .upload(&local, file.to_str().unwrap(), TMP, &names(&["a.mp3"]))
        .unwrap_err();
    let RcloneError::Failed {
        op,
        code,
        stderr_tail,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((op.as_str(), *code), ("copy", Some(1)));
    assert!(stderr_tail.contains("not a directory"), "{err}");

    let err = rc.list("nosuchremote:music").unwrap_err();
    assert!(
        matches!(err, RcloneError::Failed { code: Some(1), .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nosuchremote"), "{err}");

    let err = rc.rename("-x", "a", "b").unwrap_err();
    assert!(err.to_string().contains("read it as a flag"), "{err}");
}

// Regression (found by the push_state fuzz target): a character of more than one byte just
// before a key made redact slice inside it and panic.
#[test]
fn redact_takes_keys_after_any_character() {
    assert_eq!(redact("Üpass=x:y"), "Üpass=***:y");
    assert_eq!(
        redact(":sftp,user=Jürgen,pass=x:Ärger=1"),
        ":sftp,user=Jürgen,pass=***:Ärger=1"
    );
    assert_eq!(redact("tÜeb=<<=<"), "tÜeb=<<=<");
}

#[test]
fn stats_are_read_from_json_log_lines_only() {
    // As rclone 1.60.1 logs them with --use-json-log (trimmed).
    let line = r#"{"level":"warning","msg":"\nTransferred: ...","source":"accounting/stats.go:482","stats":{"bytes":937984,"checks":0,"elapsedTime":0.27,"eta":null,"speed":0,"totalBytes":9000000,"totalTransfers":3,"transferring":[{"bytes":356352,"name":"f1.bin"}],"transfers":1},"time":"2026-11-30T03:05:52.166677+00:00"}"#;
    assert_eq!(
        parse_stats(line),
        Some(Stats {
            bytes: 937_984,
            total_bytes: 9_000_000,
            transfers: 1,
            total_transfers: 3
        })
    );
    let error =
        r#"{"level":"error","msg":"a.mp3: Failed to copy: disk full","source":"x","time":"t"}"#;
    assert_eq!(parse_stats(error), None);
    assert_eq!(
        parse_stats("2026/11/30 03:06:00 NOTICE: 1 MiB / 8 MiB"),
        None
    );
    // The other lines keep what the error's tail reads from rclone's plain log.
    assert_eq!(
        plain_log_line(error),
        "ERROR : a.mp3: Failed to copy: disk full"
    );
    let notice = r#"{"level":"warning","msg":"Config file not found","time":"t"}"#;
    assert_eq!(plain_log_line(notice), "NOTICE : Config file not found");
    assert_eq!(plain_log_line("panic: oops"), "panic: oops");
}

#[test]
fn an_upload_with_progress_reports_rclone_stats_to_the_last_byte() {
    let files = ["a.mp3", "b/c.mp3"];
    let (_dir, local, remote) = setup(&files);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let rc = rclone().with_progress(move |s| sink.lock().unwrap().push(s));
    rc.upload(&local, &remote, TMP, &names(&files)).unwrap();
    let seen = seen.lock().unwrap();
    let bytes = ("a.mp3".len() + "b/c.mp3".len()) as u64;
    assert_eq!(
        seen.last(),
        Some(&Stats {
            bytes,
            total_bytes: bytes,
            transfers: 2,
            total_transfers: 2
        }),
        "{seen:?}"
    );
    assert_eq!(sizes(&rc, &remote).len(), 2);
    // A failure still reads as one line with rclone's own words, not JSON.
    let e = rc
        .upload(&local, "nosuchremote:x", TMP, &names(&files))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("didn't find section in config file") && !e.contains('{'),
        "{e}"
    );
}

#[test]
fn durations_in_rclone_forms() {
    let secs = Duration::from_secs;
    assert_eq!(parse_duration("30s"), Some(secs(30)));
    assert_eq!(parse_duration("5m"), Some(secs(300)));
    assert_eq!(parse_duration("1m30s"), Some(secs(90)));
    assert_eq!(parse_duration("1h"), Some(secs(3600)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    for bad in ["", "5", "s", "5x", "-1s", "1e9999h"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn the_last_timeout_flag_counts() {
    let flags = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let timeout = |s: &str| flag_duration(&flags(s), "--timeout");
    assert_eq!(timeout(""), None);
    assert_eq!(timeout("--bwlimit 1M"), None);
    assert_eq!(timeout("--timeout 5s"), Some(Duration::from_secs(5)));
    assert_eq!(
        timeout("--timeout=5s --timeout 7s"),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        timeout("--timeout 5s --timeout=1m"),
        Some(Duration::from_secs(60))
    );
    assert_eq!(timeout("--contimeout 5s"), None);
    assert_eq!(timeout("--timeout"), None);
}

#[test]
fn stats_lines_are_told_from_messages() {
    let line = "2026/11/30 03:08:48 NOTICE:    5.722 MiB / 20 MiB, 28%, 1 MiB/s, ETA 10s";
    assert_eq!(stats_key(line).as_deref(), Some("5.722 MiB / 20 MiB"));
    let start = "2026/11/30 03:08:48 NOTICE:        0 B / 0 B, -, 0 B/s, ETA -";
    assert_eq!(stats_key(start).as_deref(), Some("0 B / 0 B"));
    let done = "2026/11/30 03:08:48 NOTICE: 1.000 KiB / 1.000 KiB, 100%, 0 B/s, ETA 0s (xfr#1/1)";
    assert_eq!(stats_key(done).as_deref(), Some("1.000 KiB / 1.000 KiB"));
    for other in [
        "2026/11/30 03:08:48 ERROR : a/f1.mp3: Failed to copy: 5 B / 6 B, 1%",
        "2026/11/30 03:08:48 NOTICE: a.mp3: Duplicate object found",
        "Transferred:   	    5.722 MiB / 5.722 MiB, 100%, 0 B/s, ETA -",
    ] {
        assert_eq!(stats_key(other), None, "{other}");
    }
}

#[test]
fn a_timeout_says_the_server_did_not_answer() {
    let failed = |tail: &str| RcloneError::Failed {
        op: "lsjson".to_owned(),
        code: Some(1),
        stderr_tail: tail.to_owned(),
    };
    let timeout = "couldn't connect SSH: ssh: handshake failed: read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout";
    assert_eq!(
        failed(timeout).to_string(),
        format!("rclone lsjson failed (exit 1): the server did not answer in time: {timeout}")
    );
    assert_eq!(
        failed("directory not found").to_string(),
        "rclone lsjson failed (exit 1): directory not found"
    );
    let stalled = RcloneError::Stalled {
        op: "copy".to_owned(),
        secs: 60,
    };
    assert!(
        stalled
            .to_string()
            .starts_with("the server did not answer for 60 s"),
        "{stalled}"
    );
}

#[test]
fn only_rclone_1_60_gets_one_move_per_top_folder() {
    let with = |version: &str| Rclone {
        bin: "/nonexistent/rclone".into(),
        version: version.into(),
        extra_flags: vec![],
        stall: Duration::from_secs(60),
        progress: None,
    };
    assert!(with("v1.60.1-DEV").refuses_nested_move());
    assert!(with("v1.60.0").refuses_nested_move());
    // Later versions try one call, and fall back if rclone still says "overlapping remotes".
    assert!(!with("v1.61.0").refuses_nested_move());
    assert!(!with("v1.75.2").refuses_nested_move());
}

#[test]
fn md5_listing_reads_the_hash_where_given() {
    let json = br#"[
{"Path":"a.mp3","Name":"a.mp3","Size":3,"ModTime":"2026-01-01T00:00:00Z","IsDir":false,"Hashes":{"md5":"764EFA883DDA1E11DB47671C4A3BBD9E"}},
{"Path":"b.mp3","Name":"b.mp3","Size":4,"ModTime":"2026-01-01T00:00:00Z","IsDir":false,"Hashes":{"md5":""}},
{"Path":"c.mp3","Name":"c.mp3","Size":5,"IsDir":false},
{"Path":"../x.mp3","Name":"x.mp3","Size":5,"IsDir":false}
]"#;
    let listed = parse_md5_listing(json).unwrap();
    let md5s: Vec<(&str, Option<&str>)> = (listed.iter())
        .map(|(p, h)| (p.as_str(), h.md5.as_deref()))
        .collect();
    assert_eq!(
        md5s,
        [
            ("a.mp3", Some("764efa883dda1e11db47671c4a3bbd9e")),
            ("b.mp3", None),
            ("c.mp3", None)
        ]
    );
    assert_eq!(listed["b.mp3"].file.size, 4);
    assert_eq!(
        listed["a.mp3"].file.mtime.as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
}
