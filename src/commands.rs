//! One function per subcommand: turn its parsed arguments into the settings of the stages it
//! runs (errors there are the user's: exit 2), call the library, print the result. `exit_for`
//! decides the exit code of a failed run, in one place.
//!
//! One file, like just's `subcommand.rs`: each command is a few lines of glue over a stage
//! module; the pipeline itself (`sync`, the guards) lives in `pipeline`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::cli::{
    self, Command, Common, ConvertArgs, GenreArgs, InitArgs, PassThrough, PolicyArg, PruneArgs,
    PushArgs, PushPolicy, RemoteArgs, SelectArgs, SyncArgs, TagArgs,
};
use crate::convert::{ConvertSettings, Mode};
use crate::genre::{self as rules, Policy};
use crate::metadata::Id3Version;
use crate::pipeline::{self, Output};
use crate::report::{self, Exit, Stopped, usage};
use crate::settings::Overrides;
use crate::{
    fsutil, init, interrupt, lock, manual, push, rclone, status, subsonic, summary, verify,
};

/// Runs the parsed command line's subcommand.
pub fn run(cli: cli::Cli) -> anyhow::Result<Exit> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Convert(args) => {
            let output = output(&args.common, quiet);
            let wait = args.common.wait;
            pipeline::stage(&convert_settings(args, quiet)?, output, wait)
        }
        Command::Tag(args) => tag(args, quiet),
        Command::Push(args) => push(args, quiet),
        Command::Sync(args) => sync(args, quiet),
        Command::Bisync(args) => bisync(args, quiet),
        Command::Pull(args) => pull(args, quiet),
        Command::PruneBackups(args) => prune_backups(args),
        Command::Init(args) => init(args, cli.config),
        Command::Verify(args) => verify(args, quiet),
        Command::Status(args) => status(args),
        Command::Completions(args) => completions(&args),
        Command::Man(args) => man(args),
    }
}

/// The exit code of a run that ended in `error`: the code it was stopped with, 3 for another
/// run's lock or musync's own refusal inside the rclone wrapper, 4 for rclone, 130 when rclone or
/// a stage stopped for Ctrl-C, else 5 (a local failure: I/O, disk full).
pub fn exit_for(error: &anyhow::Error) -> Exit {
    if interrupt::interrupted()
        && (error.is::<interrupt::Interrupted>() || error.is::<rclone::RcloneError>())
    {
        return Exit::Interrupted;
    }
    if let Some(stopped) = error.downcast_ref::<Stopped>() {
        return stopped.exit;
    }
    if error.is::<lock::Busy>() {
        return Exit::Refused;
    }
    match error.downcast_ref::<rclone::RcloneError>() {
        // musync refused to hand rclone a path (a symlink, a name like a flag).
        Some(rclone::RcloneError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Exit::Refused
        }
        Some(_) => Exit::Remote,
        None => Exit::Local,
    }
}

fn output(common: &Common, quiet: bool) -> Output {
    Output {
        json: common.json,
        quiet,
    }
}

/// `--jobs`, else one per core.
fn jobs(jobs: Option<u16>) -> usize {
    jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    )
}

fn stage_settings(
    common: Common,
    genre: GenreArgs,
    select: SelectArgs,
    mode: Mode,
    quiet: bool,
) -> anyhow::Result<ConvertSettings> {
    let native_mp3 = !select.pass_through.contains(&PassThrough::None);
    let selection =
        crate::scan::Selection::new(&select.include, &select.exclude, native_mp3).map_err(usage)?;
    let genre_map = match genre.genre_map.as_slice() {
        [] => None,
        [clear] if clear.is_empty() => Some(Vec::new()),
        maps => Some(
            maps.iter()
                .map(|m| rules::parse_mapping(m))
                .collect::<anyhow::Result<_>>()
                .map_err(usage)?,
        ),
    };
    Ok(ConvertSettings {
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
        jobs: jobs(common.jobs),
        dry_run: common.dry_run,
        force: false,
        quiet: quiet || common.json,
        selection,
    })
}

fn convert_settings(args: ConvertArgs, quiet: bool) -> anyhow::Result<ConvertSettings> {
    let mut settings = stage_settings(args.common, args.genre, args.select, Mode::Convert, quiet)?;
    let encode = args.encode;
    settings.overrides.quality = encode.quality;
    settings.overrides.art_max_size = encode.art_max_size;
    settings.overrides.folder_art = match (encode.folder_art, encode.no_folder_art) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    settings.overrides.id3 = match (encode.id3v23, encode.id3v24) {
        (true, _) => Some(Id3Version::V23),
        (_, true) => Some(Id3Version::V24),
        _ => None,
    };
    settings.force = encode.force;
    Ok(settings)
}

fn tag(args: TagArgs, quiet: bool) -> anyhow::Result<Exit> {
    let (output, wait) = (output(&args.common, quiet), args.common.wait);
    let settings = stage_settings(args.common, args.genre, args.select, Mode::TagOnly, quiet)?;
    pipeline::stage(&settings, output, wait)
}

fn push_settings(staging: PathBuf, dry_run: bool, args: RemoteArgs) -> push::PushSettings {
    // `--break-lock` is accepted and ignored: a kernel lock ends with its holder.
    let _ = args.break_lock;
    policy_settings(staging, args.remote, dry_run, args.policy)
}

fn policy_settings(
    staging: PathBuf,
    remote: String,
    dry_run: bool,
    policy: PushPolicy,
) -> push::PushSettings {
    push::PushSettings {
        staging,
        remote,
        dry_run,
        backup: !policy.no_backup,
        delete_foreign: policy.delete_foreign,
        max_delete: policy.max_delete,
        predicted: None,
    }
}

fn subsonic_server(args: &cli::SubsonicArgs) -> anyhow::Result<Option<subsonic::Server>> {
    match (&args.subsonic_url, &args.subsonic_user) {
        (Some(url), Some(user)) => Ok(Some(
            subsonic::Server::new(url, user, args.subsonic_password_file.as_deref())
                .map_err(usage)?,
        )),
        _ => Ok(None),
    }
}

fn push(args: PushArgs, quiet: bool) -> anyhow::Result<Exit> {
    let run = pipeline::PushRun {
        library: args.common.library.clone(),
        subsonic: subsonic_server(&args.remote.subsonic)?,
        output: output(&args.common, quiet),
        wait: args.common.wait,
        push: push_settings(args.common.staging, args.common.dry_run, args.remote),
    };
    pipeline::push(&run)
}

fn sync(args: SyncArgs, quiet: bool) -> anyhow::Result<Exit> {
    let common = &args.convert.common;
    let (output, wait) = (output(common, quiet), common.wait);
    let (staging, dry_run) = (common.staging.clone(), common.dry_run);
    let subsonic = subsonic_server(&args.remote.subsonic)?;
    let peer = args.peer;
    let bisync = peer.peer.map(|remote| crate::libsync::run::BisyncSettings {
        library: common.library.clone(),
        peer: remote,
        compare: peer.compare.into(),
        renames: peer.renames.into(),
        conflict: peer.conflict.into(),
        max_delete: peer.max_delete,
        backup: !peer.no_backup,
        include: peer.include,
        exclude: peer.exclude,
        dry_run,
        wait,
    });
    pipeline::sync(pipeline::SyncSettings {
        bisync,
        convert: convert_settings(args.convert, quiet)?,
        push: push_settings(staging, dry_run, args.remote),
        subsonic,
        output,
        wait,
    })
}

/// rclone for a library sync, its version check cached in the library's state folder (not
/// written by a dry run), and drawing a progress bar on a terminal unless `quiet`.
fn libsync_rclone(
    command: &str,
    library: &std::path::Path,
    dry_run: bool,
    quiet: bool,
) -> anyhow::Result<(rclone::Rclone, Option<indicatif::ProgressBar>)> {
    // The version cache sits with the pair's state, never in the library.
    let cache = crate::libsync::state::root()
        .map(|root| crate::libsync::state::library_dir(&root, library).join("rclone-version"))?;
    let rclone = rclone::Rclone::find(
        Some(&cache),
        !dry_run && cache.parent().is_some_and(std::path::Path::is_dir),
    )?;
    let Some(bar) = report::transfer_progress(command, quiet || dry_run) else {
        return Ok((rclone, None));
    };
    bar.set_message("listing both sides");
    let shown = bar.clone();
    let rclone = rclone.with_progress(move |stats| report::show_push_stats(&shown, stats));
    Ok((rclone, Some(bar)))
}

/// Prints a library sync's failures, plan lines (dry run), summary line or JSON, and picks its
/// exit code.
fn libsync_output(
    printed: &LibsyncPrinted,
    json: &impl serde::Serialize,
    as_json: bool,
    quiet: bool,
) -> anyhow::Result<Exit> {
    printed.failed.iter().for_each(report::Failure::print);
    let result = if as_json {
        summary::print_json(&mut std::io::stdout(), json)
    } else {
        let mut out = std::io::stdout().lock();
        let lines = if printed.dry_run {
            &printed.plan_lines[..]
        } else {
            &[]
        };
        let mut result = lines.iter().try_for_each(|l| writeln!(out, "{l}"));
        if !quiet && result.is_ok() {
            let mut first = printed.counts.chars();
            let capital = first.next().map(|c| c.to_ascii_uppercase());
            result = writeln!(out, "{}{}.", capital.unwrap_or_default(), first.as_str());
            if result.is_ok() && printed.remote_failed {
                result = writeln!(
                    out,
                    "rclone or the peer failed (above on stderr): only what is counted here was \
                     done; run again."
                );
            } else if result.is_ok() && !printed.failed.is_empty() {
                result = writeln!(out, "{}", report::files_failed(printed.failed.len()));
            }
        }
        result
    };
    summary::finish_output(result)?;
    if let Some(reason) = &printed.refused {
        return Err(report::stop(Exit::Refused, anyhow::anyhow!("{reason}")));
    }
    Ok(crate::libsync::run::exit_of(
        false,
        printed.remote_failed,
        printed.failed.len(),
    ))
}

/// What `libsync_output` prints of a bisync or pull summary.
struct LibsyncPrinted {
    failed: Vec<report::Failure>,
    plan_lines: Vec<String>,
    counts: String,
    dry_run: bool,
    remote_failed: bool,
    refused: Option<String>,
}

fn bisync(args: cli::BisyncArgs, quiet: bool) -> anyhow::Result<Exit> {
    use crate::libsync::{Compare, ConflictMode, Renames, run};
    let settings = run::BisyncSettings {
        compare: match args.compare {
            cli::CompareArg::Size => Compare::Size,
            cli::CompareArg::Mtime => Compare::Mtime,
            cli::CompareArg::Hash => Compare::Hash,
        },
        renames: match args.renames {
            cli::RenamesArg::None => Renames::None,
            cli::RenamesArg::Size => Renames::Size,
            cli::RenamesArg::Mtime => Renames::Mtime,
            cli::RenamesArg::Hash => Renames::Hash,
        },
        conflict: match args.conflict {
            cli::ConflictArg::Library => ConflictMode::Library,
            cli::ConflictArg::Peer => ConflictMode::Peer,
            cli::ConflictArg::Newer => ConflictMode::Newer,
            cli::ConflictArg::Older => ConflictMode::Older,
            cli::ConflictArg::KeepBoth => ConflictMode::KeepBoth,
        },
        max_delete: args.max_delete,
        backup: !args.no_backup,
        include: args.include,
        exclude: args.exclude,
        dry_run: args.dry_run,
        wait: args.wait,
        library: args.library,
        peer: args.peer,
    };
    let (rclone, bar) = libsync_rclone(
        "bisync",
        &settings.library,
        args.dry_run,
        quiet || args.json,
    )?;
    let result = run::bisync(&settings, &rclone);
    bar.inspect(indicatif::ProgressBar::finish_and_clear);
    let s = result?;
    let printed = LibsyncPrinted {
        failed: s.failed.clone(),
        plan_lines: s.plan_lines.clone(),
        counts: s.counts(),
        dry_run: s.dry_run,
        remote_failed: s.remote_failed,
        refused: s.refused.as_ref().map(|r| r.reason.clone()),
    };
    libsync_output(&printed, &s, args.json, quiet)
}

fn pull(args: cli::PullArgs, quiet: bool) -> anyhow::Result<Exit> {
    use crate::libsync::run;
    let settings = run::PullSettings {
        include: args.include,
        exclude: args.exclude,
        delete_extras: args.delete_extras,
        max_delete: args.max_delete,
        backup: !args.no_backup,
        dry_run: args.dry_run,
        wait: args.wait,
        library: args.library,
        from: args.from,
    };
    let (rclone, bar) =
        libsync_rclone("pull", &settings.library, args.dry_run, quiet || args.json)?;
    let result = run::pull(&settings, &rclone);
    bar.inspect(indicatif::ProgressBar::finish_and_clear);
    let s = result?;
    let printed = LibsyncPrinted {
        failed: s.failed.clone(),
        plan_lines: s.plan_lines.clone(),
        counts: s.counts(),
        dry_run: s.dry_run,
        remote_failed: s.remote_failed,
        refused: s.refused.as_ref().map(|r| r.reason.clone()),
    };
    libsync_output(&printed, &s, args.json, quiet)
}

fn prune_backups(args: PruneArgs) -> anyhow::Result<Exit> {
    let age = push::backups_age(&args.older_than).map_err(usage)?;
    let rclone = rclone::Rclone::find(None, false)?;
    for dir in push::prune(&rclone, &args.remote, age, args.dry_run)? {
        let done = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        summary::finish_output(writeln!(std::io::stdout(), "{done} {dir}"))?;
    }
    Ok(Exit::Ok)
}

fn verify(args: cli::VerifyArgs, quiet: bool) -> anyhow::Result<Exit> {
    let remote = cli::optional_remote(args.remote, args.offline).map_err(usage)?;
    pipeline::folders_apart(
        args.library.as_deref(),
        Some(&args.staging),
        remote.as_deref(),
    )?;
    lock::note_writer(&args.staging);
    // A dry run's rclone: the version check is not saved, since verify writes nothing.
    let rclone = remote
        .as_ref()
        .map(|_| pipeline::find_rclone(&args.staging, true));
    let settings = verify::VerifySettings {
        staging: args.staging,
        remote: remote.clone(),
        jobs: jobs(args.jobs),
        checksum: args.checksum,
    };
    let mut report = match &rclone {
        Some(Err(_)) => verify::run(
            &verify::VerifySettings {
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
    if let (Some(content), Some(name)) = (&report.content, &shown)
        && content.unhashed > 0
    {
        eprintln!(
            "musync: note: {name} gives no hashes for {} files; those were compared by size only",
            content.unhashed
        );
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
    if let (Some(e), Some(name)) = (&report.remote_error, &shown) {
        return Err(report::stop(Exit::Remote, anyhow::anyhow!("{name}: {e}")));
    }
    Ok(if report.is_clean() {
        Exit::Ok
    } else {
        Exit::SomeFailed
    })
}

/// `-q` has no effect: the status is the result.
fn status(args: cli::StatusArgs) -> anyhow::Result<Exit> {
    pipeline::library_present(&args.library)?;
    let remote = cli::optional_remote(args.remote, args.offline).map_err(usage)?;
    pipeline::folders_apart(Some(&args.library), Some(&args.staging), remote.as_deref())?;
    lock::note_writer(&args.staging);
    let json = args.json;
    let push =
        remote.map(|remote| policy_settings(args.staging.clone(), remote, true, args.policy));
    // Dry run: the rclone version check is not saved.
    let rclone = push
        .as_ref()
        .map(|_| pipeline::find_rclone(&args.staging, true));
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
        &status::StatusSettings { convert, push },
        rclone.as_ref().map(Result::as_ref),
    )?;
    let printed = if json {
        summary::print_json(&mut std::io::stdout(), &status)
    } else {
        status.print(&mut std::io::stdout().lock())
    };
    summary::finish_output(printed)?;
    if let (Some(e), Some(push)) = (status.remote_error(), &status.push) {
        let e = anyhow::anyhow!("push to {}: {e}", push.remote);
        return Err(report::stop(Exit::Remote, e));
    }
    Ok(if status.refused().is_some() {
        Exit::Refused
    } else {
        Exit::files(status.failed())
    })
}

fn init(args: InitArgs, config: Option<PathBuf>) -> anyhow::Result<Exit> {
    let Some((config, _)) = crate::config::path(config) else {
        return Err(usage(anyhow::anyhow!(
            "no config location: set HOME or XDG_CONFIG_HOME, or give --config FILE"
        )));
    };
    let settings = init::InitSettings {
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
    let Some(problem) = report.problem else {
        return Ok(Exit::Ok);
    };
    let exit = match problem {
        init::Problem::Config => Exit::Usage,
        init::Problem::Remote => Exit::Remote,
    };
    Err(report::stop(
        exit,
        anyhow::anyhow!("the config file was written, but a check failed (see above)"),
    ))
}

/// `musync completions SHELL`: the script on stdout.
fn completions(args: &cli::CompletionsArgs) -> anyhow::Result<Exit> {
    summary::finish_output(std::io::stdout().write_all(&manual::completions(args.shell)))?;
    Ok(Exit::Ok)
}

/// `musync man`: musync.1 on stdout, or with `--dir` every page written there and its path
/// printed.
fn man(args: cli::ManArgs) -> anyhow::Result<Exit> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: std::io::ErrorKind) -> std::io::Error {
        std::io::Error::new(kind, "x")
    }

    #[test]
    fn each_kind_of_error_has_its_exit_code() {
        let busy = lock::Busy {
            staging: "s".into(),
            holder: "push".into(),
        };
        let refusal = rclone::RcloneError::Io(io(std::io::ErrorKind::InvalidInput));
        let cases = [
            (usage(anyhow::anyhow!("bad flag")), Exit::Usage),
            (
                report::stop(Exit::Refused, anyhow::anyhow!("no")),
                Exit::Refused,
            ),
            (anyhow::Error::new(busy), Exit::Refused),
            (anyhow::Error::new(refusal), Exit::Refused),
            (
                anyhow::Error::new(rclone::RcloneError::NotFound),
                Exit::Remote,
            ),
            (
                anyhow::Error::new(io(std::io::ErrorKind::PermissionDenied)),
                Exit::Local,
            ),
        ];
        for (error, exit) in cases {
            assert_eq!(exit_for(&error), exit, "{error:#}");
        }
    }

    #[test]
    fn a_stop_prints_as_the_error_it_wraps_with_its_causes() {
        let inner = anyhow::Error::new(io(std::io::ErrorKind::NotFound)).context("reading x");
        let stopped = usage(inner);
        assert_eq!(format!("{stopped:#}"), "reading x: x");
        assert_eq!(format!("{stopped}"), "reading x");
    }
}
