//! Config file tests: what each key becomes, profiles, and the error for each kind of mistake.

use super::*;

/// A config file that sets every key (also a seed of the config fuzz target).
pub const EVERY_KEY: &str = r#"
library = "/music"
staging = "mirror"
remote = "nas:music"
quality = "V5"
id3 = "2.3"
jobs = 3
genre-from = "level:2"
genre-policy = "if-missing"
genre-map = ["Soundtracks/**=Soundtrack"]
disc-pattern = "^CD\\d+$"
include = ["Jazz/**"]
exclude = ["**/Podcasts"]
pass-through = []
backup = false
max-delete = "20%"
delete-foreign = true
[subsonic]
url = "http://nas:4533"
user = "admin"
password-file = "~/.subsonic"
"#;

fn args(text: &str, profile: Option<&str>) -> BTreeMap<&'static str, Vec<String>> {
    parse(text, profile, Path::new("/cfg")).unwrap().args
}

fn error(text: &str, profile: Option<&str>) -> String {
    parse(text, profile, Path::new("/cfg")).unwrap_err()
}

fn v(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_key_becomes_its_flag() {
    let text = EVERY_KEY;
    let home = std::env::var("HOME").unwrap();
    let got = args(text, None);
    let want: BTreeMap<&str, Vec<String>> = [
        ("library", v(&["/music"])),
        ("staging", v(&["/cfg/mirror"])),
        ("remote", v(&["nas:music"])),
        ("quality", v(&["V5"])),
        ("id3v23", v(&["true"])),
        ("jobs", v(&["3"])),
        ("genre_from", v(&["level:2"])),
        ("genre_policy", v(&["if-missing"])),
        ("genre_map", v(&["Soundtracks/**=Soundtrack"])),
        ("disc_pattern", v(&["^CD\\d+$"])),
        ("include", v(&["Jazz/**"])),
        ("exclude", v(&["**/Podcasts"])),
        ("pass_through", v(&["none"])),
        ("no_backup", v(&["true"])),
        ("max_delete", v(&["20%"])),
        ("delete_foreign", v(&["true"])),
        ("subsonic_url", v(&["http://nas:4533"])),
        ("subsonic_user", v(&["admin"])),
        ("subsonic_password_file", v(&[&format!("{home}/.subsonic")])),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}

#[test]
fn a_profile_wins_over_the_top_level_key_by_key() {
    let text = "quality = \"V2\"\nremote = \"nas:music\"\nbackup = false\nid3 = \"2.3\"\n\
                [profile.phone]\nquality = \"V7\"\nbackup = true\nid3 = \"2.4\"\n";
    let top = args(text, None);
    assert_eq!(
        (top["quality"].clone(), top.get("no_backup").cloned()),
        (v(&["V2"]), Some(v(&["true"])))
    );
    let phone = args(text, Some("phone"));
    assert_eq!(phone["quality"], v(&["V7"]));
    assert_eq!(phone["remote"], v(&["nas:music"]));
    assert!(
        !phone.contains_key("no_backup") && !phone.contains_key("id3v23"),
        "{phone:?}"
    );
    assert_eq!(phone["id3v24"], v(&["true"]));
    assert!(
        args("genre-map = []", None)["genre_map"] == v(&[""]),
        "an empty map clears the table"
    );
}

#[test]
fn mistakes_name_the_key_and_line() {
    let cases = [
        (
            "library = \"/m\"\nqualty = \"V2\"\n",
            "line 2: unknown field `qualty`",
        ),
        (
            "jobs = \"x\"\n",
            "line 1: jobs: invalid type: string \"x\", expected u16",
        ),
        ("jobs = 0\n", "line 1: jobs: must be 1 or more"),
        (
            "\n\nquality = \"V11\"\n",
            "line 3: quality: invalid quality \"V11\"",
        ),
        (
            "id3 = \"2.5\"\n",
            "line 1: id3: `2.5` is not an ID3 version",
        ),
        (
            "genre-from = \"album\"\n",
            "line 1: genre-from: `album` is not a genre rule",
        ),
        (
            "genre-policy = \"never\"\n",
            "line 1: genre-policy: `never` is not a genre policy",
        ),
        ("genre-map = [\"nogenre\"]\n", "line 1: genre-map:"),
        (
            "disc-pattern = \"(\"\n",
            "line 1: disc-pattern: not a regular expression: unclosed group",
        ),
        (
            "include = [\"a[\"]\n",
            "line 1: include: `a[` is not a glob",
        ),
        (
            "pass-through = [\"ogg\"]\n",
            "line 1: pass-through: `ogg` cannot pass through",
        ),
        (
            "max-delete = \"lots\"\n",
            "line 1: max-delete: `lots` is not a delete cap",
        ),
        (
            "backup = \"no\"\n",
            "line 1: backup: invalid type: string \"no\", expected a boolean",
        ),
        (
            "[subsonic]\npassword = \"x\"\n",
            "line 2: unknown field `password`",
        ),
        (
            "[profile.a]\n[profile.a.profile.b]\n",
            "profile a: profiles do not nest",
        ),
        ("library = \n", "line 1: library:"),
    ];
    for (text, want) in cases {
        let got = error(text, None);
        assert!(got.contains(want), "{text:?}: {got}");
    }
    assert_eq!(
        error("[profile.a]\n", Some("b")),
        "no profile b (profiles here: a)"
    );
}

#[test]
fn early_flags_are_found_in_either_spelling() {
    let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let early = early_flags(&os(&[
        "musync",
        "-v",
        "convert",
        "--config",
        "c.toml",
        "--profile=nas",
    ]));
    let want = Early {
        config: Some(PathBuf::from("c.toml")),
        profile: Some("nas".to_owned()),
        command: Some("convert".to_owned()),
    };
    assert_eq!(early, want);
    assert_eq!(
        early_flags(&os(&["musync", "--", "--config=x"])),
        Early::default()
    );
}

// Regression: errors quoting the file's text (a key, a value, a regex's syntax error) broke over
// several lines; found by the config fuzz target (fuzz/corpus/config/regression-*).
#[test]
fn errors_are_one_line() {
    let cases = [
        (
            "id3 = \"2.5\\n\"\n",
            "line 1: id3: `2.5\\n` is not an ID3 version: use \"2.3\" or \"2.4\"",
        ),
        (
            "\"a\\rb\" = 1\n",
            "line 1: unknown field `a\\rb`, expected one of",
        ),
        (
            "disc-pattern = \"a{99999}{99999}\"\n",
            "line 1: disc-pattern: not a regular expression: ",
        ),
    ];
    for (text, want) in cases {
        let got = error(text, None);
        assert!(got.starts_with(want), "{text:?}: {got}");
        assert!(!got.contains(['\n', '\r']), "{text:?}: {got}");
    }
}

#[test]
fn the_library_sync_keys_become_their_own_flags_also_in_profiles() {
    let text = r#"
peer = "nas:Music"
include = ["Mirror/**"]
[bisync]
compare = "hash"
renames = "size"
conflict = "keep-both"
max-delete = "10"
backup = false
include = ["Jazz"]
exclude = ["Jazz/Live"]
[pull]
from = "share"
include = ["Rock"]
exclude = []
delete-extras = true
max-delete = "5%"
backup = false
[profile.laptop]
peer = "desk:Music"
[profile.laptop.bisync]
conflict = "library"
"#;
    let got = args(text, None);
    let want: BTreeMap<&str, Vec<String>> = [
        ("peer", v(&["nas:Music"])),
        ("include", v(&["Mirror/**"])),
        ("compare", v(&["hash"])),
        ("renames", v(&["size"])),
        ("conflict", v(&["keep-both"])),
        ("bisync_max_delete", v(&["10"])),
        ("bisync_no_backup", v(&["true"])),
        ("bisync_include", v(&["Jazz"])),
        ("bisync_exclude", v(&["Jazz/Live"])),
        ("from", v(&["/cfg/share"])),
        ("pull_include", v(&["Rock"])),
        ("delete_extras", v(&["true"])),
        ("pull_max_delete", v(&["5%"])),
        ("pull_no_backup", v(&["true"])),
    ]
    .into();
    assert_eq!(got, want);
    let laptop = args(text, Some("laptop"));
    assert_eq!(laptop["peer"], v(&["desk:Music"]));
    assert_eq!(laptop["conflict"], v(&["library"]));
    assert_eq!(laptop["compare"], v(&["hash"]));
    for (bad, key) in [
        (
            "[bisync]\ncompare = \"md5\"\n",
            "line 2: bisync.compare: `md5` is not a compare mode",
        ),
        ("[bisync]\nconflict = \"mine\"\n", "line 2: bisync.conflict"),
        ("[pull]\nmax-delete = \"lots\"\n", "line 2: pull.max-delete"),
        ("[pull]\ninclude = [\"[\"]\n", "line 2: pull.include"),
    ] {
        let e = error(bad, None);
        assert!(e.starts_with(key), "{bad}: {e}");
    }
    assert!(error("[bisync]\npeer = \"x\"\n", None).contains("peer"));
}
