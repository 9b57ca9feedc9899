//! musync: parse the command line, run one subcommand, print its result and any error once,
//! and exit with a code that says how it went.

use musync::{
    cli, config, convert, fsutil, init, interrupt, lock, manifest, manual, metadata, overlap, push,
    rclone, report, scan, settings, status, subsonic, summary, tag, verify,
};

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cli::{
    Command, Common, ConvertArgs, GenreArgs, InitArgs, PassThrough, PolicyArg, PruneArgs, PushArgs,
    PushPolicy, RemoteArgs, SelectArgs, SyncArgs, TagArgs,
};
use convert::Mode;
use metadata::Id3Version;
use report::Exit;
use settings::Overrides;
use tag::rules::{self, Policy};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let early = config::early_flags(&args);
    // `init` writes the config file; it and the generated help read none.
    let load = match early.command.as_deref() {
        Some("init" | "completions" | "man") => Ok(config::Defaults::default()),
        _ => config::load(early.config, early.profile.as_deref()),
    };
    let defaults = match load {
        Ok(defaults) => defaults,
        Err(e) => {
            eprintln!("musync: {e:#}");
            return Exit::Usage.into();
        }
    };
    let cli = cli::parse(args, &defaults);
    if let Err(e) = report::init_logging(&cli) {
        eprintln!("musync: {e:#}");
        return Exit::Usage.into();
    }
    if let Err(e) = interrupt::install() {
        tracing::warn!("cannot catch Ctrl-C ({e}); it will stop musync at once");
    }
    let result = match cli.command {
        Command::Convert(args) => convert(args, cli.quiet),
        Command::Tag(args) => tag(args, cli.quiet),
        Command::Push(args) => push(args, cli.quiet),
        Command::Sync(args) => sync(args, cli.quiet),
        Command::PruneBackups(args) => prune_backups(args),
        Command::Init(args) => init(args, cli.config),
        Command::Verify(args) => verify(args, cli.quiet),
        Command::Status(args) => status(args),
        Command::Completions(args) => completions(&args),
        Command::Man(args) => man(args),
    };
    let exit = match result {
        Ok(exit) => exit,
        // rclone got the terminal's Ctrl-C too: its failure is the interruption, not an error.
        Err(e)
            if interrupt::interrupted()
                && (e.is::<interrupt::Interrupted>() || e.is::<rclone::RcloneError>()) =>
        {
            tracing::info!("{e:#}");
            Exit::Interrupted
        }
        Err(e) => {
            eprintln!("musync: {e:#}");
            tracing::error!(target: report::LOG_ONLY, "{e:#}");
            if e.downcast_ref::<rclone::RcloneError>().is_some() {
                Exit::Remote
            } else if e.is::<lock::Busy>() {
                Exit::Refused
            } else {
                Exit::Usage
            }
        }
    };
    if interrupt::interrupted() {
        eprintln!("musync: interrupted; what was finished is saved, run again to continue");
        tracing::warn!(target: report::LOG_ONLY, "interrupted");
        return Exit::Interrupted.into();
    }
    exit.into()
}

fn settings(
    common: Common,
    genre: GenreArgs,
    select: SelectArgs,
    mode: Mode,
    quiet: bool,
) -> anyhow::Result<convert::Settings> {
    let native_mp3 = !select.pass_through.contains(&PassThrough::None);
    let selection = scan::Selection::new(&select.include, &select.exclude, native_mp3)?;
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
        selection,
    })
}

fn convert_settings(args: ConvertArgs, quiet: bool) -> anyhow::Result<convert::Settings> {
    let mut settings = settings(args.common, args.genre, args.select, Mode::Convert, quiet)?;
    let encode = args.encode;
    settings.overrides.quality = encode.quality;
    settings.overrides.art_max_size = encode.art_max_size;
    settings.overrides.id3 = match (encode.id3v23, encode.id3v24) {
        (true, _) => Some(Id3Version::V23),
        (_, true) => Some(Id3Version::V24),
        _ => None,
    };
    settings.force = encode.force;
    Ok(settings)
}

fn convert(args: ConvertArgs, quiet: bool) -> anyhow::Result<Exit> {
    let (json, wait) = (args.common.json, args.common.wait);
    run_stage(&convert_settings(args, quiet)?, json, quiet, wait)
}

fn tag(args: TagArgs, quiet: bool) -> anyhow::Result<Exit> {
    let (json, wait) = (args.common.json, args.common.wait);
    let settings = settings(args.common, args.genre, args.select, Mode::TagOnly, quiet)?;
    run_stage(&settings, json, quiet, wait)
}

fn push_settings(staging: PathBuf, dry_run: bool, args: RemoteArgs) -> push::Settings {
    // `--break-lock` is accepted and ignored: a kernel lock ends with its holder.
    let _ = args.break_lock;
    policy_settings(staging, args.remote, dry_run, args.policy)
}

fn policy_settings(
    staging: PathBuf,
    remote: String,
    dry_run: bool,
    policy: PushPolicy,
) -> push::Settings {
    push::Settings {
        staging,
        remote,
        dry_run,
        backup: !policy.no_backup,
        delete_foreign: policy.delete_foreign,
        max_delete: policy.max_delete,
    }
}

fn push(args: PushArgs, quiet: bool) -> anyhow::Result<Exit> {
    if let Some(exit) = library_missing(&args.common.library) {
        return Ok(exit);
    }
    let common = &args.common;
    overlap::check(
        Some(&common.library),
        Some(&common.staging),
        Some(&args.remote.remote),
    )?;
    let _lock = staging_lock(&common.staging, "push", common.dry_run, common.wait)?;
    let rclone = find_rclone(&args.common.staging, args.common.dry_run)?;
    let json = args.common.json;
    let server = subsonic_server(&args.remote.subsonic)?;
    let settings = push_settings(args.common.staging, args.common.dry_run, args.remote);
    let summary = run_push(&settings, rclone, quiet || json)?;
    summary.failed.iter().for_each(report::Failure::print);
    let printed = if json {
        summary::print_json(&mut std::io::stdout(), &summary)
    } else {
        summary::print_push(&summary, quiet)
    };
    summary::finish_output(printed)?;
    Ok(rescan(server.as_ref(), &summary, push_exit(&summary)))
}

/// The push, with a progress bar fed by rclone's stats on a terminal (cleared when it ends).
fn run_push(
    settings: &push::Settings,
    rclone: rclone::Rclone,
    quiet: bool,
) -> anyhow::Result<push::Summary> {
    let Some(bar) = report::push_progress(quiet || settings.dry_run) else {
        return push::run(settings, &rclone);
    };
    let shown = bar.clone();
    let rclone = rclone.with_progress(move |stats| report::show_push_stats(&shown, stats));
    let summary = push::run(settings, &rclone);
    bar.finish_and_clear();
    summary
}

fn subsonic_server(args: &cli::SubsonicArgs) -> anyhow::Result<Option<subsonic::Server>> {
    match (&args.subsonic_url, &args.subsonic_user) {
        (Some(url), Some(user)) => Ok(Some(subsonic::Server::new(
            url,
            user,
            args.subsonic_password_file.as_deref(),
        )?)),
        _ => Ok(None),
    }
}

fn rescan(server: Option<&subsonic::Server>, summary: &push::Summary, exit: Exit) -> Exit {
    let Some(server) = server else { return exit };
    if summary.dry_run || summary.refused.is_some() || summary.remote_failed {
        return exit;
    }
    match server.start_scan() {
        Ok(status) => {
            tracing::info!("subsonic scan started: {status:?}");
            exit
        }
        Err(e) => {
            eprintln!("musync: {e:#}");
            Exit::Remote
        }
    }
}

fn push_exit(s: &push::Summary) -> Exit {
    if let Some(refused) = &s.refused {
        eprintln!("musync: refused: {}", refused.reason);
        Exit::Refused
    } else if s.remote_failed {
        Exit::Remote
    } else if !s.failed.is_empty() {
        Exit::SomeFailed
    } else {
        Exit::Ok
    }
}

/// `sync --json` prints one object with a key per stage.
#[derive(serde::Serialize)]
struct SyncSummary<'a> {
    convert: &'a convert::Summary,
    tag: tag::TagSummary,
    push: Option<&'a push::Summary>,
}

fn sync(args: SyncArgs, quiet: bool) -> anyhow::Result<Exit> {
    let json = args.convert.common.json;
    let dry_run = args.convert.common.dry_run;
    if let Some(exit) = library_missing(&args.convert.common.library) {
        return Ok(exit);
    }
    let common = &args.convert.common;
    overlap::check(
        Some(&common.library),
        Some(&common.staging),
        Some(&args.remote.remote),
    )?;
    let _lock = staging_lock(&common.staging, "sync", dry_run, common.wait)?;
    let rclone = find_rclone(&args.convert.common.staging, dry_run)?;
    let server = subsonic_server(&args.remote.subsonic)?;
    let mut settings = convert_settings(args.convert, quiet)?;
    let converted = convert::run(&settings)?;
    // Convert's summary shows when convert ends, not after a push that may be long, or fail.
    if !json {
        let mut out = std::io::stdout().lock();
        let printed = summary::print_summary(&mut out, &converted, Mode::Convert, quiet);
        summary::finish_output(printed)?;
    }
    settings.mode = Mode::TagOnly;
    settings.overrides = Overrides::default();
    // After Ctrl-C, no stage starts.
    let tagged = if interrupt::interrupted() {
        convert::Summary::default()
    } else {
        tag::run(&settings)?
    };
    // A dry run can plan the push exactly only when the mirror is already current; otherwise the
    // plan would describe a mirror that the real run changes first.
    let to_do = convert::Counts {
        skipped: 0,
        ..converted.counts
    };
    let current = to_do == convert::Counts::default() && tagged.counts.retagged == 0;
    let pushed =
        if converted.refused.is_none() && (!dry_run || current) && !interrupt::interrupted() {
            Some(run_push(
                &push_settings(settings.staging.clone(), dry_run, args.remote),
                rclone,
                quiet || json,
            )?)
        } else {
            None
        };
    if let Some(p) = &pushed {
        p.failed.iter().for_each(report::Failure::print);
    }
    let printed = if json {
        let all = SyncSummary {
            convert: &converted,
            tag: tag::TagSummary::from(&tagged),
            push: pushed.as_ref(),
        };
        summary::print_json(&mut std::io::stdout(), &all)
    } else {
        match &pushed {
            Some(p) => summary::print_push(p, quiet),
            None if dry_run && converted.refused.is_none() => writeln!(
                std::io::stdout(),
                "The push is planned once the mirror is up to date: run `musync convert`, then \
                 `musync push --dry-run`."
            ),
            None => Ok(()),
        }
    };
    summary::finish_output(printed)?;
    if let Some(why) = &converted.refused {
        eprintln!("musync: refused: {why}");
        return Ok(Exit::Refused);
    }
    let push_exit = match &pushed {
        Some(p) => rescan(server.as_ref(), p, push_exit(p)),
        None => Exit::Ok,
    };
    Ok(if push_exit != Exit::Ok {
        push_exit
    } else if converted.failed.is_empty() && tagged.failed.is_empty() {
        Exit::Ok
    } else {
        Exit::SomeFailed
    })
}

fn prune_backups(args: PruneArgs) -> anyhow::Result<Exit> {
    let age = push::backups_age(&args.older_than)?;
    let rclone = rclone::Rclone::find(None, false)?;
    for dir in push::prune(&rclone, &args.remote, age, args.dry_run)? {
        println!(
            "{} {dir}",
            if args.dry_run {
                "would delete"
            } else {
                "deleted"
            }
        );
    }
    Ok(Exit::Ok)
}

/// rclone, its version check remembered in the staging folder (not written by a dry run).
fn find_rclone(staging: &std::path::Path, dry_run: bool) -> anyhow::Result<rclone::Rclone> {
    let cache = manifest::state_dir(staging).join("rclone-version");
    let rclone = rclone::Rclone::find(Some(&cache), !dry_run)?;
    tracing::debug!("rclone {}", rclone.version());
    Ok(rclone)
}

/// A run that changes staging holds its lock to the end (a second one is refused, or waits);
/// a dry run takes none, and says when another run is changing what it reads.
fn staging_lock(
    staging: &std::path::Path,
    command: &str,
    dry_run: bool,
    wait: bool,
) -> anyhow::Result<Option<lock::Lock>> {
    if dry_run {
        lock::note_writer(staging);
        return Ok(None);
    }
    lock::take(staging, command, wait).map(Some)
}

fn library_missing(library: &std::path::Path) -> Option<Exit> {
    (!library.is_dir()).then(|| {
        eprintln!(
            "musync: library {} is missing or not a folder; is the disk mounted? Nothing was changed",
            library.display()
        );
        Exit::Refused
    })
}

fn run_stage(
    settings: &convert::Settings,
    json: bool,
    quiet: bool,
    wait: bool,
) -> anyhow::Result<Exit> {
    if let Some(exit) = library_missing(&settings.library) {
        return Ok(exit);
    }
    overlap::check(Some(&settings.library), Some(&settings.staging), None)?;
    let command = match settings.mode {
        Mode::Convert => "convert",
        Mode::TagOnly => "tag",
    };
    let _lock = staging_lock(&settings.staging, command, settings.dry_run, wait)?;
    let summary = match settings.mode {
        Mode::Convert => convert::run(settings)?,
        Mode::TagOnly => tag::run(settings)?,
    };
    let mut out = std::io::stdout().lock();
    let printed = match (json, settings.mode) {
        (true, Mode::Convert) => summary::print_json(&mut out, &summary),
        (true, Mode::TagOnly) => summary::print_json(&mut out, &tag::TagSummary::from(&summary)),
        (false, mode) => summary::print_summary(&mut out, &summary, mode, quiet),
    };
    summary::finish_output(printed)?;
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

fn jobs(jobs: Option<u16>) -> usize {
    jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    )
}

fn verify(args: cli::VerifyArgs, quiet: bool) -> anyhow::Result<Exit> {
    let remote = cli::optional_remote(args.remote, args.offline)?;
    overlap::check(
        args.library.as_deref(),
        Some(&args.staging),
        remote.as_deref(),
    )?;
    lock::note_writer(&args.staging);
    // A dry run's rclone: the version check is not saved, since verify writes nothing.
    let rclone = remote.as_ref().map(|_| find_rclone(&args.staging, true));
    let settings = verify::Settings {
        staging: args.staging,
        remote: remote.clone(),
        jobs: jobs(args.jobs),
    };
    let mut report = match &rclone {
        Some(Err(_)) => verify::run(
            &verify::Settings {
                remote: None,
                ..settings
            },
            None,
        )?,
        Some(Ok(rclone)) => verify::run(&settings, Some(rclone))?,
        None => verify::run(&settings, None)?,
    };
    if let Some(Err(e)) = &rclone {
        report.remote_error = Some(format!("{e:#}"));
    }
    report.failures().iter().for_each(report::Failure::print);
    let shown = remote.as_deref().map(rclone::redact);
    if let (Some(e), Some(name)) = (&report.remote_error, &shown) {
        eprintln!("musync: {name}: {e}");
    }
    let printed = if args.json {
        summary::print_json(&mut std::io::stdout(), &report)
    } else if quiet {
        Ok(())
    } else {
        let mut out = std::io::stdout().lock();
        (report.summary(shown.as_deref()).iter()).try_for_each(|l| writeln!(out, "{l}"))
    };
    summary::finish_output(printed)?;
    Ok(if report.remote_error.is_some() {
        Exit::Remote
    } else if report.is_clean() {
        Exit::Ok
    } else {
        Exit::SomeFailed
    })
}

/// `-q` has no effect: the status is the result.
fn status(args: cli::StatusArgs) -> anyhow::Result<Exit> {
    if let Some(exit) = library_missing(&args.library) {
        return Ok(exit);
    }
    let remote = cli::optional_remote(args.remote, args.offline)?;
    overlap::check(Some(&args.library), Some(&args.staging), remote.as_deref())?;
    lock::note_writer(&args.staging);
    let json = args.json;
    let push =
        remote.map(|remote| policy_settings(args.staging.clone(), remote, true, args.policy));
    // Dry run: the rclone version check is not saved.
    let rclone = match &push {
        Some(_) => Some(find_rclone(&args.staging, true)),
        None => None,
    };
    let common = Common {
        library: args.library,
        staging: args.staging,
        jobs: args.jobs,
        dry_run: true,
        json,
        wait: false,
    };
    let convert = convert_settings(
        ConvertArgs {
            common,
            encode: args.encode,
            genre: args.genre,
            select: args.select,
        },
        true,
    )?;
    let status = status::run(
        &status::Settings { convert, push },
        rclone.as_ref().map(Result::as_ref),
    )?;
    if let (Some(e), Some(push)) = (status.remote_error(), &status.push) {
        eprintln!("musync: push to {}: {e}", push.remote);
    }
    let printed = if json {
        summary::print_json(&mut std::io::stdout(), &status)
    } else {
        status.print(&mut std::io::stdout().lock())
    };
    summary::finish_output(printed)?;
    Ok(if status.remote_error().is_some() {
        Exit::Remote
    } else if status.refused().is_some() {
        Exit::Refused
    } else if status.failed() > 0 {
        Exit::SomeFailed
    } else {
        Exit::Ok
    })
}

fn init(args: InitArgs, config: Option<PathBuf>) -> anyhow::Result<Exit> {
    let Some((config, _)) = config::path(config) else {
        anyhow::bail!("no config location: set HOME or XDG_CONFIG_HOME, or give --config FILE");
    };
    let settings = init::Settings {
        config,
        library: args.library,
        staging: args.staging,
        remote: args.remote,
        force: args.force,
    };
    let report = init::run(&settings)?;
    let mut out = std::io::stdout().lock();
    summary::finish_output(report.lines.iter().try_for_each(|l| writeln!(out, "{l}")))?;
    // The file is written either way; the exit code says what still needs fixing.
    Ok(match report.problem {
        None => Exit::Ok,
        Some(problem) => {
            eprintln!("musync: the config file was written, but a check failed (see above)");
            match problem {
                init::Problem::Config => Exit::Usage,
                init::Problem::Remote => Exit::Remote,
            }
        }
    })
}

/// `musync completions SHELL`: the script on stdout.
fn completions(args: &cli::CompletionsArgs) -> anyhow::Result<Exit> {
    summary::finish_output(std::io::stdout().write_all(&manual::completions(args.shell)))?;
    Ok(Exit::Ok)
}

/// `musync man`: musync.1 on stdout, or with `--dir` every page written there and its path
/// printed.
fn man(args: cli::ManArgs) -> anyhow::Result<Exit> {
    use anyhow::Context;
    let mut pages = manual::pages();
    let Some(dir) = args.dir else {
        let (_, top) = pages.swap_remove(0);
        summary::finish_output(std::io::stdout().write_all(&top))?;
        return Ok(Exit::Ok);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, page) in pages {
        let path = dir.join(name);
        fsutil::write_atomic(&path, &page)?;
        summary::finish_output(writeln!(std::io::stdout(), "{}", path.display()))?;
    }
    Ok(Exit::Ok)
}
