//! The command line, with clap derive: the doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::audio::Quality;

const EXIT_CODES: &str = "\
Exit codes:
  0  everything done
  1  some files failed (each named on stderr); the rest were done
  2  bad arguments, settings or manifest
  3  refused by a safety guard (e.g. the library looks unmounted); nothing was changed";

/// Keep a lossy MP3 mirror of a lossless music library, without ever losing a file.
#[derive(Parser, Debug)]
#[command(version, about, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log more (-v: each action, -vv: debugging detail) to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert the library's lossless files into MP3s in the staging folder, mirroring its layout.
    #[command(after_help = EXIT_CODES)]
    Convert(ConvertArgs),
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The music library (read only, never written to).
    #[arg(long, value_name = "DIR")]
    pub library: PathBuf,

    /// Where the MP3 mirror is built (musync keeps its manifest in DIR/.musync).
    #[arg(long, value_name = "DIR")]
    pub staging: PathBuf,

    /// LAME preset: V0 (best) … V9, CBR320, CBR256, CBR192, CBR128, or ABR<kbps>.
    #[arg(long, default_value = "V2", value_name = "PRESET")]
    pub quality: Quality,

    /// Write ID3v2.3 tags (for old players) instead of ID3v2.4.
    #[arg(long)]
    pub id3v23: bool,

    /// Files converted at once [default: the number of cores].
    #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Print what would be done, one line per action, and change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Print one JSON object with the results on stdout.
    #[arg(long)]
    pub json: bool,

    /// Remove staged files even when the library seems to have lost most of its music.
    #[arg(long)]
    pub force: bool,
}
