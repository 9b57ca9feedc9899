//! The config file: every setting a flag takes, in TOML, with named profiles. It is read before
//! the command line is parsed and its values become the flags' defaults, so a flag always wins
//! and every command sees one set of arguments. Values are checked here, against the same
//! parsers the flags use, so a bad one is reported with its key and line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use serde::Deserialize;
use toml::Spanned;

use crate::audio::Quality;
use crate::genre::{self, GenreFrom};
use crate::push::plan::DeleteCap;
use crate::report::escape_controls;

/// One level of the file: the top level, or a `[profile.NAME]` table (which may not nest).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Table {
    library: Option<Spanned<String>>,
    staging: Option<Spanned<String>>,
    remote: Option<Spanned<String>>,
    quality: Option<Spanned<String>>,
    id3: Option<Spanned<String>>,
    jobs: Option<Spanned<u16>>,
    genre_from: Option<Spanned<String>>,
    genre_policy: Option<Spanned<String>>,
    genre_map: Option<Spanned<Vec<String>>>,
    disc_pattern: Option<Spanned<String>>,
    art_max_size: Option<Spanned<u32>>,
    folder_art: Option<Spanned<bool>>,
    include: Option<Spanned<Vec<String>>>,
    exclude: Option<Spanned<Vec<String>>>,
    pass_through: Option<Spanned<Vec<String>>>,
    backup: Option<Spanned<bool>>,
    max_delete: Option<Spanned<String>>,
    delete_foreign: Option<Spanned<bool>>,
    subsonic: Option<Subsonic>,
    peer: Option<Spanned<String>>,
    bisync: Option<Bisync>,
    pull: Option<Pull>,
    #[serde(default)]
    profile: BTreeMap<String, Spanned<Table>>,
}

/// `[bisync]`: the defaults of `musync bisync`'s flags (the peer is the top-level `peer`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Bisync {
    compare: Option<Spanned<String>>,
    renames: Option<Spanned<String>>,
    conflict: Option<Spanned<String>>,
    max_delete: Option<Spanned<String>>,
    backup: Option<Spanned<bool>>,
    include: Option<Spanned<Vec<String>>>,
    exclude: Option<Spanned<Vec<String>>>,
}

/// `[pull]`: the defaults of `musync pull`'s flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Pull {
    from: Option<Spanned<String>>,
    include: Option<Spanned<Vec<String>>>,
    exclude: Option<Spanned<Vec<String>>>,
    delete_extras: Option<Spanned<bool>>,
    max_delete: Option<Spanned<String>>,
    backup: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Subsonic {
    url: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
}

/// A key's clap argument id, its name in the file, and where and what its value is.
type Field = (
    &'static str,
    &'static str,
    Option<(usize, Result<Vec<String>, String>)>,
);

/// The flags' defaults from a config file: clap argument id → values.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    pub file: Option<PathBuf>,
    pub args: BTreeMap<&'static str, Vec<String>>,
}

/// The config file named by `--config` (which must exist), else the default one if it exists:
/// `$XDG_CONFIG_HOME/musync/config.toml`, or `~/.config/musync/config.toml`.
pub fn path(given: Option<PathBuf>) -> Option<(PathBuf, bool)> {
    if let Some(given) = given {
        return Some((given, true));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some((base.join("musync").join("config.toml"), false))
}

/// What decides the config before the command line is parsed: `--config FILE`, `--profile
/// NAME` and the subcommand (clap parses all again later, for `--help` and for errors).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Early {
    pub config: Option<PathBuf>,
    pub profile: Option<String>,
    pub command: Option<String>,
}

pub fn early_flags(args: &[OsString]) -> Early {
    let (mut config, mut profile, mut command) = (None, None, None);
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if command.is_none() && !arg.starts_with('-') {
            command = Some(arg.to_owned());
        }
        for (flag, slot) in [("--config", &mut config), ("--profile", &mut profile)] {
            if arg == flag {
                *slot = it.next().map(|v| v.to_string_lossy().into_owned());
            } else if let Some(v) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                *slot = Some(v.to_owned());
            }
        }
    }
    Early {
        config: config.map(PathBuf::from),
        profile,
        command,
    }
}

/// Read the config file (if any) and turn the chosen profile into flag defaults.
pub fn load(given: Option<PathBuf>, profile: Option<&str>) -> anyhow::Result<Defaults> {
    let Some((file, required)) = path(given) else {
        return Ok(Defaults::default());
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            if let Some(name) = profile {
                bail!(
                    "--profile {name}: there is no config file ({})",
                    file.display()
                );
            }
            return Ok(Defaults::default());
        }
        Err(e) => return Err(e).with_context(|| format!("reading config {}", file.display())),
    };
    let dir = std::path::absolute(&file)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut defaults = parse(&text, profile, &dir)
        .map_err(|e| anyhow::anyhow!("config {}: {e}", file.display()))?;
    defaults.file = Some(file);
    Ok(defaults)
}

/// The defaults from the text of a config file; relative paths in it are relative to `dir`.
/// The error is one line: control characters from the file come out escaped.
pub fn parse(text: &str, profile: Option<&str>, dir: &Path) -> Result<Defaults, String> {
    defaults(text, profile, dir).map_err(|e| escape_controls(&e).into_owned())
}

fn defaults(text: &str, profile: Option<&str>, dir: &Path) -> Result<Defaults, String> {
    let line = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let top: Table = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => match key_before(text, span.start) {
            Some(key) => format!("line {}: {key}: {}", line(span.start), e.message()),
            None => format!("line {}: {}", line(span.start), e.message()),
        },
        None => e.message().to_owned(),
    })?;
    for (name, table) in &top.profile {
        if !table.get_ref().profile.is_empty() {
            return Err(format!(
                "line {}: profile {name}: profiles do not nest",
                line(table.span().start)
            ));
        }
    }
    let chosen = match profile {
        None => None,
        Some(name) => match top.profile.get(name) {
            Some(table) => Some(table.get_ref()),
            None => {
                let names: Vec<&str> = top.profile.keys().map(String::as_str).collect();
                return Err(format!(
                    "no profile {name} (profiles here: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ));
            }
        },
    };
    let mut args = BTreeMap::new();
    // The profile's tables first: their keys win over the top level's.
    for table in chosen.into_iter().chain([&top]) {
        let mut set =
            |id: &'static str, key: &str, at: usize, values: Result<Vec<String>, String>| {
                if args.contains_key(id) {
                    return Ok(());
                }
                let values = values.map_err(|e| format!("line {}: {key}: {e}", line(at)))?;
                args.insert(id, values);
                Ok::<_, String>(())
            };
        let one = |v: &Spanned<String>| (v.span().start, Ok(vec![v.get_ref().clone()]));
        let checked = |v: &Spanned<String>, check: fn(&str) -> Result<(), String>| {
            (
                v.span().start,
                check(v.get_ref()).map(|()| vec![v.get_ref().clone()]),
            )
        };
        let path = |v: &Spanned<String>| (v.span().start, Ok(vec![expand(v.get_ref(), dir)]));
        // A remote that is a plain folder path is a path like the others (`~`, or relative to
        // this file), not relative to wherever musync runs next; `nas:music` stays as it is.
        let remote = |v: &Spanned<String>| {
            let text = v.get_ref();
            let plain_path = crate::overlap::local_remote(text).as_deref() == Some(Path::new(text));
            match plain_path {
                true => path(v),
                false => one(v),
            }
        };
        let flag = |v: &Spanned<bool>, when: bool| {
            (
                v.span().start,
                Ok(if *v.get_ref() == when {
                    vec!["true".into()]
                } else {
                    vec![]
                }),
            )
        };
        let mut fields: Vec<Field> = vec![
            ("library", "library", table.library.as_ref().map(path)),
            ("staging", "staging", table.staging.as_ref().map(path)),
            ("remote", "remote", table.remote.as_ref().map(remote)),
            (
                "quality",
                "quality",
                table.quality.as_ref().map(|v| checked(v, valid::<Quality>)),
            ),
            (
                "jobs",
                "jobs",
                table
                    .jobs
                    .as_ref()
                    .map(|v| (v.span().start, jobs(*v.get_ref()))),
            ),
            (
                "genre_from",
                "genre-from",
                table
                    .genre_from
                    .as_ref()
                    .map(|v| checked(v, valid::<GenreFrom>)),
            ),
            (
                "genre_policy",
                "genre-policy",
                table.genre_policy.as_ref().map(|v| checked(v, policy)),
            ),
            (
                "genre_map",
                "genre-map",
                table.genre_map.as_ref().map(genre_map),
            ),
            (
                "disc_pattern",
                "disc-pattern",
                table.disc_pattern.as_ref().map(|v| checked(v, regex)),
            ),
            (
                "art_max_size",
                "art-max-size",
                table
                    .art_max_size
                    .as_ref()
                    .map(|v| (v.span().start, Ok(vec![v.get_ref().to_string()]))),
            ),
            (
                "folder_art",
                "folder-art",
                table.folder_art.as_ref().map(|v| flag(v, true)),
            ),
            (
                "no_folder_art",
                "folder-art",
                table.folder_art.as_ref().map(|v| flag(v, false)),
            ),
            ("include", "include", table.include.as_ref().map(globs)),
            ("exclude", "exclude", table.exclude.as_ref().map(globs)),
            (
                "pass_through",
                "pass-through",
                table.pass_through.as_ref().map(pass_through),
            ),
            (
                "no_backup",
                "backup",
                table.backup.as_ref().map(|v| flag(v, false)),
            ),
            (
                "max_delete",
                "max-delete",
                table
                    .max_delete
                    .as_ref()
                    .map(|v| checked(v, valid::<DeleteCap>)),
            ),
            (
                "delete_foreign",
                "delete-foreign",
                table.delete_foreign.as_ref().map(|v| flag(v, true)),
            ),
        ];
        if let Some(v) = &table.id3 {
            let at = v.span().start;
            let (v23, v24) = match v.get_ref().as_str() {
                "2.3" => (Ok(vec!["true".into()]), Ok(vec![])),
                "2.4" => (Ok(vec![]), Ok(vec!["true".into()])),
                other => {
                    let e = Err(format!(
                        "`{other}` is not an ID3 version: use \"2.3\" or \"2.4\""
                    ));
                    (e.clone(), e)
                }
            };
            fields.push(("id3v23", "id3", Some((at, v23))));
            fields.push(("id3v24", "id3", Some((at, v24))));
        }
        if let Some(s) = &table.subsonic {
            fields.push(("subsonic_url", "subsonic.url", s.url.as_ref().map(one)));
            fields.push(("subsonic_user", "subsonic.user", s.user.as_ref().map(one)));
            fields.push((
                "subsonic_password_file",
                "subsonic.password-file",
                s.password_file.as_ref().map(path),
            ));
        }
        fields.push(("peer", "peer", table.peer.as_ref().map(remote)));
        if let Some(b) = &table.bisync {
            let words =
                |v: &Spanned<String>, what: &'static str, allowed: &'static [&'static str]| {
                    let ok = allowed.contains(&v.get_ref().as_str());
                    let e = || {
                        format!(
                            "`{}` is not a {what}: use {}",
                            v.get_ref(),
                            allowed.join(", ")
                        )
                    };
                    (
                        v.span().start,
                        if ok {
                            Ok(vec![v.get_ref().clone()])
                        } else {
                            Err(e())
                        },
                    )
                };
            fields.extend([
                (
                    "compare",
                    "bisync.compare",
                    b.compare
                        .as_ref()
                        .map(|v| words(v, "compare mode", &["size", "mtime", "hash"])),
                ),
                (
                    "renames",
                    "bisync.renames",
                    (b.renames.as_ref())
                        .map(|v| words(v, "rename mode", &["none", "size", "mtime", "hash"])),
                ),
                (
                    "conflict",
                    "bisync.conflict",
                    b.conflict.as_ref().map(|v| {
                        let modes = &["library", "peer", "newer", "older", "keep-both"];
                        words(v, "conflict mode", modes)
                    }),
                ),
                (
                    "bisync_max_delete",
                    "bisync.max-delete",
                    (b.max_delete.as_ref()).map(|v| checked(v, valid::<DeleteCap>)),
                ),
                (
                    "bisync_no_backup",
                    "bisync.backup",
                    b.backup.as_ref().map(|v| flag(v, false)),
                ),
                (
                    "bisync_include",
                    "bisync.include",
                    b.include.as_ref().map(globs),
                ),
                (
                    "bisync_exclude",
                    "bisync.exclude",
                    b.exclude.as_ref().map(globs),
                ),
            ]);
        }
        if let Some(p) = &table.pull {
            fields.extend([
                ("from", "pull.from", p.from.as_ref().map(remote)),
                (
                    "pull_include",
                    "pull.include",
                    p.include.as_ref().map(globs),
                ),
                (
                    "pull_exclude",
                    "pull.exclude",
                    p.exclude.as_ref().map(globs),
                ),
                (
                    "delete_extras",
                    "pull.delete-extras",
                    p.delete_extras.as_ref().map(|v| flag(v, true)),
                ),
                (
                    "pull_max_delete",
                    "pull.max-delete",
                    (p.max_delete.as_ref()).map(|v| checked(v, valid::<DeleteCap>)),
                ),
                (
                    "pull_no_backup",
                    "pull.backup",
                    p.backup.as_ref().map(|v| flag(v, false)),
                ),
            ]);
        }
        for (id, key, value) in fields {
            if let Some((at, values)) = value {
                set(id, key, at, values)?;
            }
        }
    }
    // A switch set to its off state decided the key (over the top level) but sets no default.
    args.retain(|_, values| !values.is_empty());
    Ok(Defaults { file: None, args })
}

/// The key of `key = value` when `at` lies in the value, for messages about a value's type.
fn key_before(text: &str, at: usize) -> Option<&str> {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let (key, _) = text[start..at].split_once('=')?;
    Some(key.trim()).filter(|k| !k.is_empty())
}

fn valid<T: FromStr>(s: &str) -> Result<(), String>
where
    T::Err: Display,
{
    T::from_str(s).map(drop).map_err(|e| e.to_string())
}

fn jobs(n: u16) -> Result<Vec<String>, String> {
    if n == 0 {
        return Err("must be 1 or more".into());
    }
    Ok(vec![n.to_string()])
}

fn policy(s: &str) -> Result<(), String> {
    match s {
        "always" | "if-missing" => Ok(()),
        _ => Err(format!(
            "`{s}` is not a genre policy: use always or if-missing"
        )),
    }
}

fn regex(s: &str) -> Result<(), String> {
    regex::Regex::new(s).map(drop).map_err(|e| {
        // A syntax error draws the pattern over several lines; the last one says what is wrong.
        let e = e.to_string();
        let why = e.lines().last().unwrap_or_default();
        format!(
            "not a regular expression: {}",
            why.trim_start_matches("error: ")
        )
    })
}

fn genre_map(v: &Spanned<Vec<String>>) -> (usize, Result<Vec<String>, String>) {
    let maps = v.get_ref();
    let checked = maps.iter().try_for_each(|m| {
        genre::parse_mapping(m)
            .map(drop)
            .map_err(|e| format!("{e:#}"))
    });
    // An empty list clears the table, as `--genre-map ''` does.
    let values = if maps.is_empty() {
        vec![String::new()]
    } else {
        maps.clone()
    };
    (v.span().start, checked.map(|()| values))
}

fn globs(v: &Spanned<Vec<String>>) -> (usize, Result<Vec<String>, String>) {
    let checked = v.get_ref().iter().try_for_each(|g| {
        globset::Glob::new(g)
            .map(drop)
            .map_err(|e| format!("`{g}` is not a glob: {e}"))
    });
    (v.span().start, checked.map(|()| v.get_ref().clone()))
}

fn pass_through(v: &Spanned<Vec<String>>) -> (usize, Result<Vec<String>, String>) {
    let formats = v.get_ref();
    let checked = formats.iter().try_for_each(|f| match f.as_str() {
        "mp3" => Ok(()),
        other => Err(format!(
            "`{other}` cannot pass through: only mp3 can (other lossy formats are not mirrored)"
        )),
    });
    let values = if formats.is_empty() {
        vec!["none".to_owned()]
    } else {
        formats.clone()
    };
    (v.span().start, checked.map(|()| values))
}

/// `~` and `~/x` are the home folder; a relative path is relative to the config file's folder.
fn expand(path: &str, dir: &Path) -> String {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let expanded = match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => dir.join(path),
    };
    expanded.to_string_lossy().into_owned()
}

#[cfg(test)]
#[path = "config_tests.rs"]
pub mod tests;
