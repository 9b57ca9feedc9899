//! What a run tells the user: per-file failures, the progress bar, and exit codes. Output goes
//! through here so parallel workers never interleave half-lines.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// One file that could not be handled, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub path: String,
    pub error: String,
}

impl Failure {
    pub fn new(path: impl Into<String>, error: impl Into<String>) -> Failure {
        Failure {
            path: path.into(),
            error: error.into(),
        }
    }

    /// From an anyhow error: its whole chain on one line.
    pub fn from_error(path: impl Into<String>, error: &anyhow::Error) -> Failure {
        Failure::new(path, format!("{error:#}"))
    }

    /// The one line printed to stderr, and logged to `--log-file`.
    pub fn print(&self) {
        let (path, error) = (escape_controls(&self.path), escape_controls(&self.error));
        eprintln!("musync: {path}: {error}");
        tracing::warn!(target: LOG_ONLY, "failed {path}: {error}");
    }
}

/// The tracing target of lines meant for `--log-file` only (failures, the run's summary), which
/// the terminal already shows in its own way.
pub const LOG_ONLY: &str = "musync::log";

/// `text` with its control characters (newline, tab, escape...) written as escapes (`\n`,
/// `\u{1b}`), so a file name can neither break a message in two nor drive the terminal.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The process exit codes, documented in `--help` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// Some files failed; the rest were done.
    SomeFailed = 1,
    /// Bad arguments or settings.
    Usage = 2,
    /// A safety guard refused to act (e.g. the library looks unmounted).
    Refused = 3,
    /// rclone or the remote failed.
    Remote = 4,
    /// Stopped by Ctrl-C (or SIGTERM) after finishing and saving the work in flight.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// A progress bar over bytes of source audio, drawn on stderr only when it is a terminal.
pub fn progress(total_bytes: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {msg} ({elapsed}, ETA {eta})")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("a/b c.flac"), "a/b c.flac");
        assert_eq!(
            escape_controls("new\nline\t\u{1b}[2J\u{7f}é\\<>.flac"),
            "new\\nline\\t\\u{1b}[2J\\u{7f}é\\<>.flac"
        );
    }
}
