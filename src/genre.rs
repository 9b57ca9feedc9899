//! Genre rules: which genre a staged file gets from the folders its source sits in. Pure: a
//! relative path and the source's own genre in, the genre to write out. No I/O.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, bail};
use globset::{Glob, GlobMatcher};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// The default disc-folder pattern: `CD1`, `CD 2`, `Disc 3`, `disk03`, `Disc 1 - Live`…
pub const DISC_PATTERN: &str = r"(?i)^(cd|dis[ck])[ _.-]*\d+\b";

/// Which folder names the genre.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum GenreFrom {
    /// The first folder under the library root: `Jazz/Artist/Album/x.flac` → `Jazz`.
    Top,
    /// The folder holding the file, disc folders skipped: `…/Album/CD1/x.flac` → `Album`.
    Parent,
    /// The whole folder path: `Album/Pippo/x.flac` → `Album/Pippo`.
    Path,
    /// The N-th folder level, from 1: `level:2` on `Jazz/Artist/Album/x.flac` → `Artist`.
    Level(usize),
}

/// Whether the folder overrides a genre the file already has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The folder is the truth.
    #[default]
    Always,
    /// Keep a genre the source already has.
    IfMissing,
}

/// Everything that decides a staged file's genre.
#[derive(Clone, Debug)]
pub struct GenreRules {
    pub from: GenreFrom,
    pub policy: Policy,
    /// Folder glob → genre; the first match wins over `from`.
    map: Vec<(String, GlobMatcher, String)>,
    disc: Regex,
}

impl GenreRules {
    pub fn new(
        from: GenreFrom,
        policy: Policy,
        map: &[(String, String)],
        disc: &str,
    ) -> anyhow::Result<GenreRules> {
        let map = map
            .iter()
            .map(|(glob, genre)| {
                let matcher = Glob::new(glob)
                    .with_context(|| format!("genre mapping `{glob}` is not a valid glob"))?
                    .compile_matcher();
                Ok((glob.clone(), matcher, genre.clone()))
            })
            .collect::<anyhow::Result<_>>()?;
        let disc = Regex::new(disc)
            .with_context(|| format!("disc-folder pattern `{disc}` is not a valid regex"))?;
        Ok(GenreRules {
            from,
            policy,
            map,
            disc,
        })
    }

    /// Whether a folder name is a disc folder (`CD1`, `Disc 2`…) under the configured pattern.
    pub fn is_disc_folder(&self, name: &str) -> bool {
        self.disc.is_match(name)
    }

    /// The genre values a staged file gets, given its source's path and own genre values.
    /// A file the rule says nothing about (at the library root, or too shallow for `level:N`)
    /// keeps its own genre.
    pub fn genre(&self, rel: &str, own: &[String]) -> Vec<String> {
        self.of_folder(crate::scan::parent_of(rel)).with_own(own)
    }

    /// What a folder's files get, before their own genre values are known: the same for every
    /// track of an album, so worked out once a folder.
    pub fn of_folder(&self, folder: &str) -> FolderGenre {
        if let Some((_, _, genre)) = self.map.iter().find(|(_, m, _)| m.is_match(folder)) {
            return FolderGenre::Mapped(genre.clone());
        }
        let parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
        let named = match self.from {
            GenreFrom::Top => parts.first().map(|p| (*p).to_string()),
            GenreFrom::Parent => parts
                .iter()
                .rev()
                .find(|p| !self.disc.is_match(p))
                .map(|p| (*p).to_string()),
            GenreFrom::Path => (!parts.is_empty()).then(|| parts.join("/")),
            GenreFrom::Level(n) => parts.get(n - 1).map(|p| (*p).to_string()),
        };
        FolderGenre::Named {
            genre: named,
            own_first: self.policy == Policy::IfMissing,
        }
    }
}

/// A folder's genre (`GenreRules::of_folder`), to be joined with each file's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FolderGenre {
    /// A mapping matched the folder: its genre, whatever the file's own.
    Mapped(String),
    /// The genre the rule names from the folder (`None`: it names none, the file keeps its
    /// own); `own_first`: a file with a genre of its own keeps it (`--genre-policy if-missing`).
    Named {
        genre: Option<String>,
        own_first: bool,
    },
}

impl FolderGenre {
    pub fn with_own(&self, own: &[String]) -> Vec<String> {
        match self {
            FolderGenre::Mapped(genre) => vec![genre.clone()],
            FolderGenre::Named {
                genre: Some(genre),
                own_first,
            } if !*own_first || own.is_empty() => vec![genre.clone()],
            FolderGenre::Named { .. } => own.to_vec(),
        }
    }
}

impl FromStr for GenreFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a genre rule: use top, parent, path or level:N (N ≥ 1)");
        match s {
            "top" => Ok(GenreFrom::Top),
            "parent" => Ok(GenreFrom::Parent),
            "path" => Ok(GenreFrom::Path),
            _ => match s.strip_prefix("level:").map(str::parse) {
                Some(Ok(n)) if n >= 1 => Ok(GenreFrom::Level(n)),
                _ => Err(bad()),
            },
        }
    }
}

impl fmt::Display for GenreFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenreFrom::Top => f.write_str("top"),
            GenreFrom::Parent => f.write_str("parent"),
            GenreFrom::Path => f.write_str("path"),
            GenreFrom::Level(n) => write!(f, "level:{n}"),
        }
    }
}

impl TryFrom<String> for GenreFrom {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<GenreFrom> for String {
    fn from(g: GenreFrom) -> String {
        g.to_string()
    }
}

/// Parse a `GLOB=GENRE` mapping argument.
pub fn parse_mapping(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((glob, genre)) if !glob.is_empty() && !genre.is_empty() => {
            Ok((glob.into(), genre.into()))
        }
        _ => bail!(
            "`{s}` is not a genre mapping: use FOLDER-GLOB=GENRE, e.g. 'Soundtracks/**=Soundtrack'"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(from: &str) -> GenreRules {
        GenreRules::new(from.parse().unwrap(), Policy::Always, &[], DISC_PATTERN).unwrap()
    }

    const TRACK: &str = "Jazz/Miles Davis/Kind of Blue/01.flac";

    #[test]
    fn top_is_the_first_folder() {
        assert_eq!(rules("top").genre(TRACK, &[]), ["Jazz"]);
    }

    #[test]
    fn parent_skips_disc_folders() {
        let r = rules("parent");
        assert_eq!(r.genre(TRACK, &[]), ["Kind of Blue"]);
        for disc in ["CD1", "cd 2", "Disc 2", "disk03", "DISC_4", "CD1 - Live"] {
            assert_eq!(
                r.genre(&format!("Rock/Band/Live/{disc}/01.flac"), &[]),
                ["Live"],
                "{disc}"
            );
        }
        assert_eq!(r.genre("Rock/Band/Discovery/01.flac", &[]), ["Discovery"]);
        assert_eq!(
            r.genre("Rock/Band/CDs and more/01.flac", &[]),
            ["CDs and more"]
        );
    }

    #[test]
    fn path_and_level() {
        assert_eq!(
            rules("path").genre("Album/Pippo/01.flac", &[]),
            ["Album/Pippo"]
        );
        assert_eq!(rules("level:2").genre(TRACK, &[]), ["Miles Davis"]);
        let own = vec!["Bebop".to_string()];
        assert_eq!(
            rules("level:4").genre(TRACK, &own),
            own,
            "too shallow keeps its own"
        );
        assert_eq!(
            rules("top").genre("root.flac", &own),
            own,
            "no folder keeps its own"
        );
    }

    #[test]
    fn mapping_wins_and_if_missing_keeps_own_genre() {
        let map = [("Jazz/Miles*/**".to_string(), "Cool Jazz".to_string())];
        let r = GenreRules::new(GenreFrom::Top, Policy::IfMissing, &map, DISC_PATTERN).unwrap();
        let own = vec!["Bebop".to_string()];
        assert_eq!(r.genre(TRACK, &own), ["Cool Jazz"]);
        assert_eq!(r.genre("Jazz/Other/A/01.flac", &own), own);
        assert_eq!(r.genre("Jazz/Other/A/01.flac", &[]), ["Jazz"]);
    }

    #[test]
    fn unicode_folder_names_are_kept() {
        assert_eq!(
            rules("top").genre("Musique française/A/01.flac", &[]),
            ["Musique française"]
        );
    }

    #[test]
    fn rule_text_round_trips_and_errors_are_clear() {
        for s in ["top", "parent", "path", "level:3"] {
            assert_eq!(s.parse::<GenreFrom>().unwrap().to_string(), s);
        }
        assert!(
            "level:0"
                .parse::<GenreFrom>()
                .unwrap_err()
                .contains("level:N")
        );
        assert!(
            parse_mapping("Jazz/**")
                .unwrap_err()
                .to_string()
                .contains("FOLDER-GLOB=GENRE")
        );
        assert!(GenreRules::new(GenreFrom::Top, Policy::Always, &[], "(").is_err());
    }
}
