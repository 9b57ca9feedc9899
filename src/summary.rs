//! The result each command prints on stdout: the human summary (and a dry run's plan lines) or
//! one JSON object. Failures and logs go to stderr through `report`, never here.

use std::io::Write;

use crate::convert::{self, Mode};
use crate::push;
use crate::report;

/// A closed pipe (`musync … | head`) is not an error.
pub fn finish_output(printed: std::io::Result<()>) -> anyhow::Result<()> {
    match printed {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

pub fn print_json(out: &mut impl Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}

/// A convert or tag run's plan lines (dry run) and its summary.
pub fn print_summary(
    out: &mut impl Write,
    s: &convert::Summary,
    mode: Mode,
    quiet: bool,
) -> std::io::Result<()> {
    if s.dry_run {
        for line in &s.plan_lines {
            writeln!(out, "{line}")?;
        }
    }
    if quiet {
        return Ok(());
    }
    match (mode, s.dry_run) {
        (Mode::Convert, dry) => {
            let [convert, copy, retag, rename, remove] = if dry {
                ["Would convert", "copy", "retag", "rename", "remove"]
            } else {
                ["Converted", "copied", "retagged", "renamed", "removed"]
            };
            let c = &s.counts;
            write!(
                out,
                "{convert} {}, {copy} {}, {retag} {}, {rename} {}, {remove} {}; {} unchanged",
                c.converted, c.copied, c.retagged, c.renamed, c.removed, c.skipped
            )?;
            if c.covers > 0 {
                write!(out, "; {} folder cover files", c.covers)?;
            }
        }
        (Mode::TagOnly, dry) => {
            write!(
                out,
                "{} {}; {} unchanged",
                if dry { "Would tag" } else { "Tagged" },
                s.counts.retagged,
                s.counts.skipped
            )?;
            if s.pending > 0 {
                write!(out, "; {} need `musync convert` first", s.pending)?;
            }
        }
    }
    if !s.dry_run {
        write!(
            out,
            " ({:.1} minutes of audio in {:.1} s)",
            s.audio_minutes, s.seconds
        )?;
    }
    writeln!(out, ".")?;
    if !s.failed.is_empty() {
        writeln!(out, "{}", report::files_failed(s.failed.len()))?;
    }
    Ok(())
}

/// The push's plan lines (dry run) and its one-line summary.
pub fn print_push(s: &push::Summary, quiet: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if s.dry_run {
        for line in &s.plan_lines {
            writeln!(out, "{line}")?;
        }
    }
    if quiet {
        return Ok(());
    }
    let counts = s.counts();
    let mut first = counts.chars();
    let capital = first.next().map(|c| c.to_ascii_uppercase());
    writeln!(out, "{}{}.", capital.unwrap_or_default(), first.as_str())?;
    // What stopped the push, so that nobody reads the counts above as the whole job.
    if s.remote_failed {
        writeln!(
            out,
            "rclone or the remote failed (above on stderr): only what is counted here was done; \
             run the push again."
        )?;
    } else if !s.failed.is_empty() {
        writeln!(out, "{}", report::files_failed(s.failed.len()))?;
    }
    if s.interrupted {
        writeln!(
            out,
            "Interrupted: only what is counted here was done; run the push again."
        )?;
    }
    Ok(())
}

/// Convert's counts as JSON: `copied` for native MP3s (not among `converted`), `unchanged` as in
/// tag and push, and `skipped`, its old name, kept for one release so that scripts reading it
/// keep working.
impl serde::Serialize for convert::Counts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Counts", 8)?;
        s.serialize_field("converted", &self.converted)?;
        s.serialize_field("copied", &self.copied)?;
        s.serialize_field("retagged", &self.retagged)?;
        s.serialize_field("renamed", &self.renamed)?;
        s.serialize_field("removed", &self.removed)?;
        s.serialize_field("covers", &self.covers)?;
        s.serialize_field("unchanged", &self.skipped)?;
        s.serialize_field("skipped", &self.skipped)?;
        s.end()
    }
}
