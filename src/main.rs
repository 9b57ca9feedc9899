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

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ConvertArgs};
use metadata::Id3Version;
use report::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let result = match cli.command {
        Command::Convert(args) => convert(args, cli.quiet),
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

fn convert(args: ConvertArgs, quiet: bool) -> anyhow::Result<Exit> {
    let settings = convert::Settings {
        library: args.library,
        staging: args.staging,
        quality: args.quality,
        id3: if args.id3v23 {
            Id3Version::V23
        } else {
            Id3Version::V24
        },
        jobs: args.jobs.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        ),
        dry_run: args.dry_run,
        force: args.force,
        quiet: quiet || args.json,
    };
    if !settings.library.is_dir() {
        eprintln!(
            "musync: library {} is missing or not a folder; is the disk mounted? Nothing was changed",
            settings.library.display()
        );
        return Ok(Exit::Refused);
    }
    convert::check_staging(&settings.library, &settings.staging)?;
    let summary = convert::run(&settings)?;
    let mut out = std::io::stdout().lock();
    let printed = if args.json {
        serde_json::to_writer(&mut out, &summary)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        print_summary(&mut out, &summary, quiet)
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

fn print_summary(out: &mut impl Write, s: &convert::Summary, quiet: bool) -> std::io::Result<()> {
    if s.dry_run {
        for line in &s.plan_lines {
            writeln!(out, "{line}")?;
        }
    }
    if quiet {
        return Ok(());
    }
    let verb = if s.dry_run {
        "Would convert"
    } else {
        "Converted"
    };
    write!(
        out,
        "{verb} {}, retag {}, rename {}, remove {}; {} unchanged",
        s.converted, s.retagged, s.renamed, s.removed, s.skipped
    )?;
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
