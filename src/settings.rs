//! The mirror's settings: encoder preset, ID3 version and genre rules. They are remembered in the
//! manifest, so `convert` after `tag --genre-from parent` keeps the parent rule and `tag` after
//! `convert --quality V0` does not see every file as needing a re-encode: a flag changes a
//! setting for this run and every later one. Pure: no I/O.

use serde::{Deserialize, Serialize};

use crate::audio::Quality;
use crate::genre::{DISC_PATTERN, GenreFrom, GenreRules, Policy};
use crate::metadata::Id3Version;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MirrorSettings {
    pub quality: Quality,
    pub id3: Id3Version,
    pub genre_from: GenreFrom,
    pub genre_policy: Policy,
    /// Folder glob → genre, first match wins over `genre_from`.
    pub genre_map: Vec<(String, String)>,
    pub disc_pattern: String,
    /// Covers larger than this many pixels on a side are downscaled; 0 keeps the original bytes.
    pub art_max_size: u32,
    /// The mirror gets one `cover.jpg` (or `cover.png`) per album folder that has a cover image.
    pub folder_art: bool,
}

/// The default of `--art-max-size`: sharp on any phone or TV, a fraction of a 3000 px scan.
pub const ART_MAX_SIZE: u32 = 1200;

impl Default for MirrorSettings {
    fn default() -> Self {
        MirrorSettings {
            quality: Quality::default(),
            id3: Id3Version::V24,
            genre_from: GenreFrom::Top,
            genre_policy: Policy::Always,
            genre_map: Vec::new(),
            disc_pattern: DISC_PATTERN.to_string(),
            art_max_size: ART_MAX_SIZE,
            folder_art: true,
        }
    }
}

/// What the command line asks to change; `None` keeps the remembered value.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub quality: Option<Quality>,
    pub id3: Option<Id3Version>,
    pub genre_from: Option<GenreFrom>,
    pub genre_policy: Option<Policy>,
    pub genre_map: Option<Vec<(String, String)>>,
    pub disc_pattern: Option<String>,
    pub art_max_size: Option<u32>,
    pub folder_art: Option<bool>,
}

impl MirrorSettings {
    /// The remembered settings (or the defaults) with the command line's changes applied.
    pub fn resolve(remembered: Option<&MirrorSettings>, o: Overrides) -> MirrorSettings {
        let base = remembered.cloned().unwrap_or_default();
        MirrorSettings {
            quality: o.quality.unwrap_or(base.quality),
            id3: o.id3.unwrap_or(base.id3),
            genre_from: o.genre_from.unwrap_or(base.genre_from),
            genre_policy: o.genre_policy.unwrap_or(base.genre_policy),
            genre_map: o.genre_map.unwrap_or(base.genre_map),
            disc_pattern: o.disc_pattern.unwrap_or(base.disc_pattern),
            art_max_size: o.art_max_size.unwrap_or(base.art_max_size),
            folder_art: o.folder_art.unwrap_or(base.folder_art),
        }
    }

    pub fn rules(&self) -> anyhow::Result<GenreRules> {
        GenreRules::new(
            self.genre_from,
            self.genre_policy,
            &self.genre_map,
            &self.disc_pattern,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_and_the_rest_is_remembered() {
        let remembered = MirrorSettings {
            quality: Quality::Vbr(0),
            genre_from: GenreFrom::Parent,
            ..MirrorSettings::default()
        };
        let got = MirrorSettings::resolve(
            Some(&remembered),
            Overrides {
                id3: Some(Id3Version::V23),
                ..Overrides::default()
            },
        );
        assert_eq!(got.quality, Quality::Vbr(0));
        assert_eq!(got.genre_from, GenreFrom::Parent);
        assert_eq!(got.id3, Id3Version::V23);
        assert_eq!(
            MirrorSettings::resolve(None, Overrides::default()),
            MirrorSettings::default()
        );
    }
}
