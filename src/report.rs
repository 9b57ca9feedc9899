//! What a run tells the user: per-file failures, the progress bar, logs and exit codes. Output goes
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

    /// From an anyhow error: its whole chain on one line, or just the cause when it is the disk
    /// (full or read-only), which no amount of detail about temporary files makes clearer.
    pub fn from_error(path: impl Into<String>, error: &anyhow::Error) -> Failure {
        let message = match disk_trouble(error) {
            Some(cause) => cause.to_owned(),
            None => format!("{error:#}"),
        };
        Failure::new(path, message)
    }

    /// The one line printed to stderr, and logged to `--log-file`.
    pub fn print(&self) {
        let (path, error) = (escape_controls(&self.path), escape_controls(&self.error));
        eprintln!("musync: {path}: {error}");
        tracing::warn!(target: LOG_ONLY, "failed {path}: {error}");
    }
}

/// The user-facing cause when `error` comes from a full or read-only disk.
pub fn disk_trouble(error: &anyhow::Error) -> Option<&'static str> {
    let io = error
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .next()?;
    match io.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => Some(
            "no space left on the device (nothing was left half-written; free some space and run again)",
        ),
        std::io::ErrorKind::ReadOnlyFilesystem => Some("the file system is read-only"),
        _ => None,
    }
}

/// The summary's line for `n` failures, which are each printed as they happen.
pub fn files_failed(n: usize) -> String {
    let files = if n == 1 { "file" } else { "files" };
    format!("{n} {files} failed (listed above on stderr).")
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
    /// Bad arguments, settings or config file: nothing was started.
    Usage = 2,
    /// A safety guard refused to act (e.g. the library looks unmounted, another run holds the
    /// staging lock, a symlink in staging would be uploaded).
    Refused = 3,
    /// rclone or the remote failed.
    Remote = 4,
    /// A local failure stopped the run: staging not writable, disk full, an I/O error.
    Local = 5,
    /// Stopped by Ctrl-C (or SIGTERM) after finishing and saving the work in flight.
    Interrupted = crate::interrupt::EXIT_STATUS as isize,
}

impl Exit {
    /// 0 when nothing failed, else 1: the end of a run that reached every file.
    pub fn files(failed: usize) -> Exit {
        if failed == 0 {
            Exit::Ok
        } else {
            Exit::SomeFailed
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// An error that says how the run ends: its exit code, with the message and causes of the error
/// it wraps. Untyped errors are local failures (exit 5); see `commands::exit_for`.
#[derive(Debug)]
pub struct Stopped {
    pub exit: Exit,
    error: anyhow::Error,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for Stopped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// `error`, ending the run with `exit`.
pub fn stop(exit: Exit, error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Stopped {
        exit,
        error: error.into(),
    })
}

/// `error`, marked as the user's to fix (exit 2).
pub fn usage(error: impl Into<anyhow::Error>) -> anyhow::Error {
    stop(Exit::Usage, error)
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

/// The push's progress bar, over the bytes rclone uploads (from its own stats), drawn on stderr;
/// `None` (and no stats asked of rclone) with `-q` or when stderr is not a terminal.
pub fn push_progress(quiet: bool) -> Option<ProgressBar> {
    transfer_progress("push", quiet)
}

/// The bar's template for the command `label` (`push`, `bisync`, `pull`).
fn transfer_template(label: &str) -> String {
    format!("{label} {{bar:20}} {{bytes}}/{{total_bytes}}, {{msg}}, ETA {{eta}}")
}

/// [`push_progress`] for any command moving bytes with rclone, labelled with its name.
pub fn transfer_progress(label: &str, quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template(&transfer_template(label)).expect("valid template"));
    bar.set_message("listing the remote");
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// Moves the push's bar to rclone's latest figures.
pub fn show_push_stats(bar: &ProgressBar, stats: crate::rclone::Stats) {
    bar.set_length(stats.total_bytes);
    bar.set_position(stats.bytes);
    bar.set_message(format!(
        "{}/{} files",
        stats.transfers, stats.total_transfers
    ));
}

/// How the run logs: the -q/-v level, `--log-file` and `--color`, taken from the command line by
/// its caller so that this lower layer never depends on the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Only errors on stderr.
    pub quiet: bool,
    /// 0: warnings; 1: each action; 2 or more: debugging detail, the libraries' own included.
    pub verbose: u8,
    /// Also append every action, failure and run summary to this file.
    pub log_file: Option<std::path::PathBuf>,
    pub color: ColorChoice,
}

/// Whether stderr's messages are coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    /// When stderr is a terminal and `NO_COLOR` is unset.
    Auto,
    Always,
    Never,
}

/// Logs go to stderr at the -q/-v level, and with `--log-file` also to that file: every action,
/// failure and run summary, timestamped, without colour.
pub fn init_logging(options: &LogOptions) -> anyhow::Result<()> {
    use anyhow::Context;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;

    let level = match (options.quiet, options.verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // The decoding and tagging libraries log their own recoveries and errors, without the
    // file's name; musync reports each failure itself, so only -vv shows theirs.
    let others = if options.verbose >= 2 {
        LevelFilter::DEBUG
    } else {
        LevelFilter::OFF
    };
    let filter = Targets::new()
        .with_target("musync", level)
        .with_target(LOG_ONLY, LevelFilter::OFF)
        .with_default(others);
    let colour = match options.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let file = match &options.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::sync::Arc::new(file))
                    .with_ansi(false)
                    .with_target(false)
                    .with_filter(Targets::new().with_target("musync", tracing::Level::INFO)),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour)
                .without_time()
                .with_target(false)
                .with_filter(filter),
        )
        .with(file)
        .init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: bisync's and pull's bar was labelled "push".
    #[test]
    fn a_transfer_bar_is_labelled_with_its_command() {
        for label in ["push", "bisync", "pull"] {
            let template = transfer_template(label);
            assert!(
                template.starts_with(&format!("{label} {{bar")),
                "{template}"
            );
            assert!(
                ProgressStyle::with_template(&template).is_ok(),
                "{template}"
            );
        }
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("a/b c.flac"), "a/b c.flac");
        assert_eq!(
            escape_controls("new\nline\t\u{1b}[2J\u{7f}é\\<>.flac"),
            "new\\nline\\t\\u{1b}[2J\\u{7f}é\\<>.flac"
        );
    }
}
