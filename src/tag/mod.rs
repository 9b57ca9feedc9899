//! The tag stage: give every staged file the tags the library and the genre rules say it should
//! have, rewriting tags only (never audio) and only where they differ. It shares the convert
//! stage's planner and executor, so both stages compute a staged file's tags the same way.

use serde::Serialize;

use crate::convert::{self, ConvertSettings, Mode, Summary};
use crate::report::Failure;

/// What `tag --json` prints.
#[derive(Debug, Serialize)]
pub struct TagSummary {
    pub tagged: usize,
    pub unchanged: usize,
    /// Sources whose staged file needs `musync convert` first (new, re-ripped, moved).
    pub pending_convert: usize,
    pub failed: Vec<Failure>,
    pub dry_run: bool,
}

pub fn run(settings: &ConvertSettings) -> anyhow::Result<Summary> {
    debug_assert_eq!(settings.mode, Mode::TagOnly);
    convert::run(settings)
}

/// `run` in a `sync`, planned from what its convert stage saw and left.
pub fn run_after(
    settings: &ConvertSettings,
    seen: convert::Seen,
) -> anyhow::Result<(Summary, convert::Seen)> {
    debug_assert_eq!(settings.mode, Mode::TagOnly);
    convert::run_after(settings, Some(seen))
}

impl From<&Summary> for TagSummary {
    fn from(s: &Summary) -> TagSummary {
        TagSummary {
            tagged: s.counts.retagged,
            unchanged: s.counts.skipped,
            pending_convert: s.pending,
            failed: s.failed.clone(),
            dry_run: s.dry_run,
        }
    }
}
