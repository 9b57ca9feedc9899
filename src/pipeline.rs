//! The staged pipeline: the guards every run passes (library mounted, folders apart, the staging
//! lock, rclone found), then the stages in order (`sync`: convert, tag, push, rescan), each
//! printing its summary and giving its exit code. Takes settings already built and checked;
//! knows nothing of the command line (that is `commands`).

use std::io::Write;
use std::path::Path;

use crate::convert::{self, ConvertSettings, Mode};
use crate::report::{self, Exit, stop, usage};
use crate::{interrupt, lock, manifest, overlap, push, rclone, settings, subsonic, summary, tag};

/// What a convert or tag run prints.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

/// One `sync`: convert, tag, then push (and ask a Subsonic server to rescan).
pub struct SyncSettings {
    pub convert: ConvertSettings,
    pub push: push::PushSettings,
    pub subsonic: Option<subsonic::Server>,
    pub output: Output,
    /// Wait for another run's staging lock instead of refusing.
    pub wait: bool,
}

/// A push on its own.
pub struct PushRun {
    pub library: std::path::PathBuf,
    pub push: push::PushSettings,
    pub subsonic: Option<subsonic::Server>,
    pub output: Output,
    pub wait: bool,
}

/// Refused (exit 3) when the library is not a folder: an unmounted disk would look like a
/// library whose every file was deleted.
pub fn library_present(library: &Path) -> anyhow::Result<()> {
    if library.is_dir() {
        return Ok(());
    }
    Err(stop(
        Exit::Refused,
        anyhow::anyhow!(
            "library {} is missing or not a folder; is the disk mounted? Nothing was changed",
            library.display()
        ),
    ))
}

/// The folders may not lie in one another (exit 2).
pub fn folders_apart(
    library: Option<&Path>,
    staging: Option<&Path>,
    remote: Option<&str>,
) -> anyhow::Result<()> {
    overlap::check(library, staging, remote).map_err(usage)
}

/// rclone, its version check remembered in the staging folder (not written by a dry run).
pub fn find_rclone(staging: &Path, dry_run: bool) -> anyhow::Result<rclone::Rclone> {
    let cache = manifest::state_dir(staging).join("rclone-version");
    let rclone = rclone::Rclone::find(Some(&cache), !dry_run)?;
    tracing::debug!("rclone {}", rclone.version());
    Ok(rclone)
}

/// A run that changes staging holds its lock to the end (a second one is refused, or waits);
/// a dry run takes none, and says when another run is changing what it reads.
pub fn staging_lock(
    staging: &Path,
    command: &str,
    dry_run: bool,
    wait: bool,
) -> anyhow::Result<Option<lock::Lock>> {
    if dry_run {
        lock::note_writer(staging);
        return Ok(None);
    }
    let lock = lock::take(staging, command, wait)?;
    // The first writer rewrites a manifest of the older format; readers read both.
    manifest::upgrade(staging)?;
    Ok(Some(lock))
}

/// `convert` or `tag` (by `settings.mode`): guards, the stage, its summary, its exit code.
pub fn stage(settings: &ConvertSettings, output: Output, wait: bool) -> anyhow::Result<Exit> {
    library_present(&settings.library)?;
    folders_apart(Some(&settings.library), Some(&settings.staging), None)?;
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
    let printed = match (output.json, settings.mode) {
        (true, Mode::Convert) => summary::print_json(&mut out, &summary),
        (true, Mode::TagOnly) => summary::print_json(&mut out, &tag::TagSummary::from(&summary)),
        (false, mode) => summary::print_summary(&mut out, &summary, mode, output.quiet),
    };
    summary::finish_output(printed)?;
    refused(summary.refused.as_deref())?;
    Ok(Exit::files(summary.failed.len()))
}

fn refused(why: Option<&str>) -> anyhow::Result<()> {
    match why {
        Some(why) => Err(stop(Exit::Refused, anyhow::anyhow!("refused: {why}"))),
        None => Ok(()),
    }
}

/// `push`: guards, the push, its summary, the rescan, the exit code.
pub fn push(run: &PushRun) -> anyhow::Result<Exit> {
    library_present(&run.library)?;
    let settings = &run.push;
    folders_apart(
        Some(&run.library),
        Some(&settings.staging),
        Some(&settings.remote),
    )?;
    let _lock = staging_lock(&settings.staging, "push", settings.dry_run, run.wait)?;
    let rclone = find_rclone(&settings.staging, settings.dry_run)?;
    let quiet = run.output.quiet || run.output.json;
    let summary = push_with_progress(settings, rclone, quiet)?;
    summary.failed.iter().for_each(report::Failure::print);
    let printed = if run.output.json {
        summary::print_json(&mut std::io::stdout(), &summary)
    } else {
        summary::print_push(&summary, run.output.quiet)
    };
    summary::finish_output(printed)?;
    after_push(run.subsonic.as_ref(), &summary)
}

/// The push, with a progress bar fed by rclone's stats on a terminal (cleared when it ends).
fn push_with_progress(
    settings: &push::PushSettings,
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

/// The push's exit code, after asking a Subsonic server to rescan what a real push changed.
fn after_push(server: Option<&subsonic::Server>, summary: &push::Summary) -> anyhow::Result<Exit> {
    if let Some(refused) = &summary.refused {
        return Err(stop(
            Exit::Refused,
            anyhow::anyhow!("refused: {}", refused.reason),
        ));
    }
    if summary.remote_failed {
        return Ok(Exit::Remote);
    }
    if summary.guard_refused {
        return Ok(Exit::Refused);
    }
    if let Some(server) = server.filter(|_| !summary.dry_run) {
        let status = server.start_scan().map_err(|e| stop(Exit::Remote, e))?;
        tracing::info!("subsonic scan started: {status:?}");
    }
    Ok(Exit::files(summary.failed.len()))
}

/// `sync --json` prints one object with a key per stage.
#[derive(serde::Serialize)]
struct SyncSummary<'a> {
    convert: &'a convert::Summary,
    tag: tag::TagSummary,
    push: Option<&'a push::Summary>,
}

/// `sync`: convert, tag, push, rescan, each stage's summary printed as it ends. A stage does
/// not start after Ctrl-C, nor the push after a refusal.
pub fn sync(run: SyncSettings) -> anyhow::Result<Exit> {
    let SyncSettings {
        convert: mut settings,
        output,
        ..
    } = run;
    let dry_run = settings.dry_run;
    library_present(&settings.library)?;
    folders_apart(
        Some(&settings.library),
        Some(&settings.staging),
        Some(&run.push.remote),
    )?;
    let _lock = staging_lock(&settings.staging, "sync", dry_run, run.wait)?;
    let rclone = find_rclone(&settings.staging, dry_run)?;
    let converted = convert::run(&settings)?;
    // Convert's summary shows when convert ends, not after a push that may be long, or fail.
    if !output.json {
        let mut out = std::io::stdout().lock();
        let printed = summary::print_summary(&mut out, &converted, Mode::Convert, output.quiet);
        summary::finish_output(printed)?;
    }
    // A dry run plans the push on the mirror as the convert plan will leave it.
    let mut push_settings = run.push;
    let estimated = if dry_run && converted.refused.is_none() {
        let predicted = convert::predicted_outputs(&settings)?;
        let estimated = predicted.values().filter(|o| o.estimated).count();
        push_settings.predicted = Some(
            (predicted.into_iter())
                .map(|(p, o)| {
                    (
                        p,
                        push::plan::Local {
                            size: o.size,
                            hash: o.hash,
                        },
                    )
                })
                .collect(),
        );
        estimated
    } else {
        0
    };
    settings.mode = Mode::TagOnly;
    settings.overrides = settings::Overrides::default();
    let tagged = if interrupt::interrupted() {
        convert::Summary::default()
    } else {
        tag::run(&settings)?
    };
    let pushed = if converted.refused.is_none() && !interrupt::interrupted() {
        Some(push_with_progress(
            &push_settings,
            rclone,
            output.quiet || output.json,
        )?)
    } else {
        None
    };
    if let Some(p) = &pushed {
        p.failed.iter().for_each(report::Failure::print);
    }
    let printed = if output.json {
        let all = SyncSummary {
            convert: &converted,
            tag: tag::TagSummary::from(&tagged),
            push: pushed.as_ref(),
        };
        summary::print_json(&mut std::io::stdout(), &all)
    } else {
        match &pushed {
            Some(p) => summary::print_push(p, output.quiet).and_then(|()| match estimated {
                0 => Ok(()),
                n => writeln!(
                    std::io::stdout(),
                    "(The upload size is an estimate: {n} files are not converted yet.)"
                ),
            }),
            None => Ok(()),
        }
    };
    summary::finish_output(printed)?;
    refused(converted.refused.as_deref())?;
    let push_exit = match &pushed {
        Some(p) => after_push(run.subsonic.as_ref(), p)?,
        None => Exit::Ok,
    };
    Ok(match push_exit {
        Exit::Ok => Exit::files(converted.failed.len() + tagged.failed.len()),
        other => other,
    })
}
