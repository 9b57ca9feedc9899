//! Library sync: keep the lossless library itself in step with another copy of it, two ways
//! (`bisync`, with a peer) or one way (`pull`, from a share). These are the only commands that
//! write to the library, and only through temporary names, every overwritten or deleted file
//! first moved into `.musync-backups/<UTC time>/` at the root of the side that loses it.
//!
//! This module holds the vocabulary both planners and the effects share. The planners
//! (`plan` for bisync, `pull` for pull) are pure: listings and the previous state in, an ordered
//! list of actions out. Listing the sides, keeping the state and carrying out the actions through
//! rclone are effects and live beside them.

pub mod execute;
pub mod listing;
#[cfg(test)]
mod model_tests;
pub mod plan;
pub mod pull;
pub mod run;
pub mod state;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Folders at a side's root that belong to musync, never synced and never listed as music.
pub const RESERVED: [&str; 3] = [".musync", ".musync-backups", ".musync-tmp"];

/// One file on one side, as listed. Paths (the keys of a [`Listing`]) are relative to the
/// side's root, `/`-separated, as rclone lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (rclone's `ModTime`).
    pub mtime: i64,
    /// A content hash as lowercase hex, of the pair's common hash type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// Every file of one side, by path.
pub type Listing = BTreeMap<String, Entry>;

/// The two sides of a bisync, or the local copy and the share of a pull (the share is the peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Library,
    Peer,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Library => Side::Peer,
            Side::Peer => Side::Library,
        }
    }

    /// The word used in output and in keep-both names.
    pub fn name(self) -> &'static str {
        match self {
            Side::Library => "library",
            Side::Peer => "peer",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a file is judged changed since the previous listing, or equal on both sides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Size alone: cheapest, misses an edit that keeps the size (a tag fix often does).
    Size,
    /// Size and modification time (within the pair's modify window).
    #[default]
    Mtime,
    /// Size and content hash: reads every new or changed file once; needs a hash both sides have.
    Hash,
}

/// How a rename on one side is recognised, to be replayed as a move on the other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Renames {
    /// Never: a renamed file is a deletion plus a new file (its bytes are sent again).
    None,
    /// A new file with the size of exactly one vanished file.
    Size,
    /// Size and modification time.
    #[default]
    Mtime,
    /// Content hash (and size).
    Hash,
}

/// Which version wins when a file changed on both sides since the previous run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictMode {
    Library,
    Peer,
    /// The later modification time wins (on a tie: the library).
    #[default]
    Newer,
    Older,
    /// Both stay, each renamed with a suffix naming its side and the date, on both sides.
    KeepBoth,
}

/// What a bisync plan is made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub compare: Compare,
    pub renames: Renames,
    pub conflict: ConflictMode,
    /// Two times closer than this are the same time (the coarser side's precision: 1 s for
    /// sftp, 2 s for FAT, 1 ns locally).
    pub modify_window_ns: i64,
    /// The run's UTC date, `YYYY-MM-DD`, for keep-both names.
    pub date: String,
}

/// One step of a plan. Steps are applied in order, one at a time; any prefix of a plan leaves
/// both sides in a state from which a new plan converges without losing a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Send `from_path` on side `from` to the other side, at `to_path` (the same path except for
    /// keep-both), backing up the file it replaces there.
    Copy {
        from: Side,
        from_path: String,
        to_path: String,
    },
    /// Rename on `side`, no bytes sent; a file already at `to` is backed up first.
    Move {
        side: Side,
        from: String,
        to: String,
    },
    /// Remove `path` from `side` (into the side's backups unless backups are off).
    Delete { side: Side, path: String },
}

impl Action {
    /// The side this action writes to.
    pub fn target(&self) -> Side {
        match self {
            Action::Copy { from, .. } => from.other(),
            Action::Move { side, .. } | Action::Delete { side, .. } => *side,
        }
    }
}

/// A file changed on both sides, and how the plan settles it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub path: String,
    /// The side whose version is kept at `path`; `None` for keep-both.
    pub winner: Option<Side>,
}

/// The previous run's view of both sides: what each side held when they were last in step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub library: Listing,
    pub peer: Listing,
}
