//! musync: parse the command line, run one subcommand, print any error once, and exit with a
//! code that says how it went. Everything else is library code (`commands`, `pipeline`).

use std::process::ExitCode;

use musync::{cli, commands, config, interrupt, report};
use report::Exit;

fn main() -> ExitCode {
    fixed_mmap_threshold();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let early = config::early_flags(&args);
    // `init` writes the config file; it and the generated help read none.
    let load = match early.command.as_deref() {
        Some("init" | "completions" | "man") => Ok(config::Defaults::default()),
        _ => config::load(early.config, early.profile.as_deref()),
    };
    let defaults = match load {
        Ok(defaults) => defaults,
        Err(e) => return fail(&report::usage(e)).into(),
    };
    let cli = cli::parse(args, &defaults);
    if let Err(e) = report::init_logging(&cli.log_options()) {
        return fail(&report::usage(e)).into();
    }
    if let Err(e) = interrupt::install() {
        tracing::warn!("cannot catch Ctrl-C ({e}); it will stop musync at once");
    }
    let exit = match commands::run(cli) {
        Ok(exit) => exit,
        Err(e) => fail(&e),
    };
    if interrupt::interrupted() {
        eprintln!("musync: interrupted; what was finished is saved, run again to continue");
        tracing::warn!(target: report::LOG_ONLY, "interrupted");
        return Exit::Interrupted.into();
    }
    exit.into()
}

/// glibc's malloc raises its mmap threshold to the largest block freed so far (up to 32 MiB):
/// once the manifest's bytes are freed, the large tables built after them come from the heap,
/// and freeing those leaves holes the process keeps. A fixed threshold keeps each block of
/// 64 KiB or more a mapping of its own, returned when freed: a no-op `convert` or `sync` of
/// 100,000 tracks peaked some 35 MiB lower, no slower (GNU time, the previous build run with
/// `MALLOC_MMAP_THRESHOLD_=65536` against the default).
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

/// Prints the run's one error (`musync: ` and its causes) and decides its exit code. rclone got
/// the terminal's Ctrl-C too: its failure then is the interruption, logged only.
fn fail(error: &anyhow::Error) -> Exit {
    let exit = commands::exit_for(error);
    if exit == Exit::Interrupted {
        tracing::info!("{error:#}");
    } else {
        eprintln!("musync: {error:#}");
        tracing::error!(target: report::LOG_ONLY, "{error:#}");
    }
    exit
}
