//! musync: parse the command line, run one subcommand, print its result and any error once,
//! and exit with a code that says how it went.

mod audio;
mod cli;
mod convert;
mod fsutil;
mod manifest;
mod metadata;
mod report;
mod scan;
mod settings;
mod tag;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Common, ConvertArgs, GenreArgs, PolicyArg, TagArgs};
use convert::Mode;
use metadata::Id3Version;
use report::Exit;
use settings::Overrides;
use tag::rules::{self, Policy};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let result = match cli.command {
        Command::Convert(args) => convert(args, cli.quiet),
        Command::Tag(args) => tag(args, cli.quiet),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("musync: {e:#}");
            Exit::Usage.into()
        }
    }
}

fn init_logging(cli: &Cli) {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;

    let level = match (cli.quiet, cli.verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // The decoding and tagging libraries log their own recoveries; only -vv shows them.
    let others = if cli.verbose >= 2 {
        tracing::Level::DEBUG
    } else {
        tracing::Level::ERROR
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("musync", level)
        .with_default(others);
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour)
                .without_time()
                .with_target(false)
                .with_filter(filter),
        )
        .init();
}

fn settings(
    common: Common,
    genre: GenreArgs,
    mode: Mode,
    quiet: bool,
) -> anyhow::Result<convert::Settings> {
    let genre_map = match genre.genre_map.as_slice() {
        [] => None,
        [clear] if clear.is_empty() => Some(Vec::new()),
        maps => Some(
            maps.iter()
                .map(|m| rules::parse_mapping(m))
                .collect::<anyhow::Result<_>>()?,
        ),
    };
    Ok(convert::Settings {
        library: common.library,
        staging: common.staging,
        overrides: Overrides {
            genre_from: genre.genre_from,
            genre_policy: genre.genre_policy.map(|p| match p {
                PolicyArg::Always => Policy::Always,
                PolicyArg::IfMissing => Policy::IfMissing,
            }),
            genre_map,
            disc_pattern: genre.disc_pattern,
            ..Overrides::default()
        },
        mode,
        jobs: common.jobs.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        ),
        dry_run: common.dry_run,
        force: false,
        quiet: quiet || common.json,
    })
}

fn convert(args: ConvertArgs, quiet: bool) -> anyhow::Result<Exit> {
    let json = args.common.json;
    let mut settings = settings(args.common, args.genre, Mode::Convert, quiet)?;
    settings.overrides.quality = args.quality;
    settings.overrides.id3 = match (args.id3v23, args.id3v24) {
        (true, _) => Some(Id3Version::V23),
        (_, true) => Some(Id3Version::V24),
        _ => None,
    };
    settings.force = args.force;
    run_stage(&settings, json, quiet)
}

fn tag(args: TagArgs, quiet: bool) -> anyhow::Result<Exit> {
    let json = args.common.json;
    let settings = settings(args.common, args.genre, Mode::TagOnly, quiet)?;
    run_stage(&settings, json, quiet)
}

fn run_stage(settings: &convert::Settings, json: bool, quiet: bool) -> anyhow::Result<Exit> {
    if !settings.library.is_dir() {
        eprintln!(
            "musync: library {} is missing or not a folder; is the disk mounted? Nothing was changed",
            settings.library.display()
        );
        return Ok(Exit::Refused);
    }
    convert::check_staging(&settings.library, &settings.staging)?;
    let summary = match settings.mode {
        Mode::Convert => convert::run(settings)?,
        Mode::TagOnly => tag::run(settings)?,
    };
    let mut out = std::io::stdout().lock();
    let printed = match (json, settings.mode) {
        (true, Mode::Convert) => print_json(&mut out, &summary),
        (true, Mode::TagOnly) => print_json(&mut out, &tag::TagSummary::from(&summary)),
        (false, mode) => print_summary(&mut out, &summary, mode, quiet),
    };
    // A closed pipe (`musync … | head`) is not an error.
    if let Err(e) = printed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    if let Some(why) = &summary.refused {
        eprintln!("musync: refused: {why}");
        return Ok(Exit::Refused);
    }
    Ok(if summary.failed.is_empty() {
        Exit::Ok
    } else {
        Exit::SomeFailed
    })
}

fn print_json(out: &mut impl Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}

fn print_summary(
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
        (Mode::Convert, dry) => write!(
            out,
            "{} {}, retag {}, rename {}, remove {}; {} unchanged",
            if dry { "Would convert" } else { "Converted" },
            s.counts.converted,
            s.counts.retagged,
            s.counts.renamed,
            s.counts.removed,
            s.counts.skipped
        )?,
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
        writeln!(
            out,
            "{} files failed (listed above on stderr).",
            s.failed.len()
        )?;
    }
    Ok(())
}
