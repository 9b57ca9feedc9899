//! The staged pipeline: the guards every run passes (library mounted, folders apart, the staging
//! lock, rclone found), then the stages in order (`sync`: bisync with a peer if one is set,
//! convert, tag, push, rescan), each printing its summary and giving its exit code. Takes settings already built and checked;
//! knows nothing of the command line (that is `commands`).

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use crate::convert::{self, ConvertSettings, Mode};
use crate::libsync::run::{self as libsync, BisyncSettings};
use crate::report::{self, Exit, stop, usage};
use crate::{
    fsutil, interrupt, lock, manifest, overlap, push, rclone, settings, subsonic, summary, tag,
};

/// What a convert or tag run prints.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

/// One `sync`: bisync with a peer (if one is set), convert, tag, then push (and ask a Subsonic
/// server to rescan).
pub struct SyncSettings {
    /// The library's bisync with its peer, first: what the peer has new reaches the library
    /// (and so the remote) in the same run.
    pub bisync: Option<BisyncSettings>,
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

/// With a peer: the peer may lie in neither staging nor a local remote, nor they in it (exit
/// 2), or a bisync would copy the library into the mirror, or the mirror into the library.
/// (The peer and the library are bisync's own check.)
pub fn peer_apart(peer: &str, staging: &Path, remote: &str) -> anyhow::Result<()> {
    let Some(peer_dir) = overlap::local_remote(peer) else {
        return Ok(());
    };
    let peer_dir = overlap::resolve(&peer_dir);
    let others = [
        ("staging", Some(staging.to_path_buf())),
        ("the remote", overlap::local_remote(remote)),
    ];
    for (name, dir) in others {
        let Some(dir) = dir else { continue };
        if overlap::relation(&peer_dir, &overlap::resolve(&dir)).is_some() {
            return Err(usage(anyhow::anyhow!(
                "the peer {} and {name} {} lie in one another; they must be apart. Nothing was \
                 changed",
                rclone::redact(peer),
                dir.display()
            )));
        }
    }
    Ok(())
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
    let summary = push_with_progress(settings, rclone, quiet, None, None)?;
    summary.failed.iter().for_each(report::Failure::print);
    let printed = if run.output.json {
        summary::print_json(&mut std::io::stdout(), &summary)
    } else {
        summary::print_push(&summary, run.output.quiet)
    };
    summary::finish_output(printed)?;
    after_push(run.subsonic.as_ref(), &summary)
}

/// The push, with a progress bar fed by rclone's stats on a terminal (cleared when it ends);
/// `manifest`: the one the stages before it left, not loaded again; `listing`: the remote's,
/// started before them.
fn push_with_progress(
    settings: &push::PushSettings,
    rclone: rclone::Rclone,
    quiet: bool,
    manifest: Option<Cow<'_, manifest::Manifest>>,
    listing: Option<push::EarlyListing>,
) -> anyhow::Result<push::Summary> {
    let Some(bar) = report::push_progress(quiet || settings.dry_run) else {
        return push::run_listed(settings, &rclone, manifest, listing);
    };
    let shown = bar.clone();
    let rclone = rclone.with_progress(move |stats| report::show_push_stats(&shown, stats));
    let summary = push::run_listed(settings, &rclone, manifest, listing);
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

/// `sync --json` prints one object with a key per stage (`bisync` only with a peer; `convert`
/// and the rest are null when a bisync that failed or was refused stopped the sync).
#[derive(serde::Serialize)]
struct SyncSummary<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bisync: Option<&'a libsync::Summary>,
    convert: &'a convert::Summary,
    tag: tag::TagSummary,
    push: Option<&'a push::Summary>,
}

/// The bisync that starts a `sync` with a peer, with a progress bar on a terminal.
fn bisync_with_progress(
    settings: &BisyncSettings,
    rclone: &rclone::Rclone,
    quiet: bool,
) -> anyhow::Result<libsync::Summary> {
    let Some(bar) = report::transfer_progress("bisync", quiet || settings.dry_run) else {
        return libsync::bisync(settings, rclone);
    };
    bar.set_message("listing both sides");
    let shown = bar.clone();
    let rclone =
        (rclone.clone()).with_progress(move |stats| report::show_push_stats(&shown, stats));
    let summary = libsync::bisync(settings, &rclone);
    bar.finish_and_clear();
    summary
}

/// The bisync of a `sync` with a peer, its outcome printed: `Err` (refused, exit 3) or
/// `Ok(Some(exit))` when it stops the sync before convert, `Ok(None)` when the sync goes on.
fn bisync_stage(
    settings: &BisyncSettings,
    rclone: &rclone::Rclone,
    output: Output,
) -> anyhow::Result<(libsync::Summary, Option<Exit>)> {
    let summary = bisync_with_progress(settings, rclone, output.quiet || output.json)?;
    summary.failed.iter().for_each(report::Failure::print);
    if !output.json {
        let mut out = std::io::stdout().lock();
        let lines = if summary.dry_run {
            &summary.plan_lines[..]
        } else {
            &[]
        };
        let mut printed = lines.iter().try_for_each(|l| writeln!(out, "{l}"));
        if !output.quiet && printed.is_ok() {
            printed = writeln!(out, "Bisync: {}.", summary.counts());
        }
        if printed.is_ok() && settings.dry_run && fetches(&summary) {
            printed = writeln!(
                out,
                "(A dry run: the convert plan does not yet include what bisync would fetch.)"
            );
        }
        summary::finish_output(printed)?;
    }
    let exit = libsync::exit_of(
        summary.refused.is_some(),
        summary.remote_failed,
        summary.failed.len(),
    );
    let stops = exit != Exit::Ok || summary.interrupted || interrupt::interrupted();
    Ok((summary, stops.then_some(exit)))
}

/// Whether a bisync (plan) changes the library, which convert would then see.
fn fetches(summary: &libsync::Summary) -> bool {
    summary.to_library + summary.moved_library + summary.deleted_library > 0
}

/// A sync stopped by its bisync: the JSON (bisync only), one line saying why, bisync's exit.
fn stopped_by_bisync(
    bisynced: &libsync::Summary,
    peer: &str,
    exit: Exit,
    json: bool,
) -> anyhow::Result<Exit> {
    if json {
        let printed = summary::print_json(
            &mut std::io::stdout(),
            &serde_json::json!({ "bisync": bisynced, "convert": null, "tag": null, "push": null }),
        );
        summary::finish_output(printed)?;
    }
    if let Some(refused) = &bisynced.refused {
        return Err(stop(
            Exit::Refused,
            anyhow::anyhow!("bisync refused, nothing was synced: {}", refused.reason),
        ));
    }
    if exit != Exit::Ok {
        let why = if bisynced.remote_failed {
            "rclone or the peer failed".to_owned()
        } else {
            report::files_failed(bisynced.failed.len())
        };
        eprintln!(
            "musync: bisync with {}: {}; nothing was converted or pushed",
            rclone::redact(peer),
            why.trim_end_matches('.')
        );
    }
    Ok(exit)
}

/// `sync`: bisync (with a peer), convert, tag, push, rescan, each stage's summary printed as it
/// ends. A stage does not start after Ctrl-C, nor convert after a bisync that failed or was
/// refused, nor the push after a refusal. The library is walked and the manifest loaded once:
/// each stage plans from what the one before it saw and left.
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
    if let Some(bisync) = &run.bisync {
        peer_apart(&bisync.peer, &settings.staging, &run.push.remote)?;
    }
    let _lock = staging_lock(&settings.staging, "sync", dry_run, run.wait)?;
    let rclone = find_rclone(&settings.staging, dry_run)?;
    let bisynced = match &run.bisync {
        Some(bisync) => match bisync_stage(bisync, &rclone, output)? {
            (summary, Some(exit)) => {
                return stopped_by_bisync(&summary, &bisync.peer, exit, output.json);
            }
            (summary, None) => Some(summary),
        },
        None => None,
    };
    // rclone lists the remote while convert and tag scan the library and staging; the push
    // (which alone writes the remote) plans from that listing. Unused (no push), it is dropped
    // unread, its error too.
    let listing = push::EarlyListing::start(&rclone, &run.push.remote);
    let (converted, seen) = convert::run_after(&settings, None)?;
    // Convert's summary shows when convert ends, not after a push that may be long, or fail.
    if !output.json {
        let mut out = std::io::stdout().lock();
        let printed = summary::print_summary(&mut out, &converted, Mode::Convert, output.quiet);
        summary::finish_output(printed)?;
    }
    // A dry run plans the push on the mirror as the convert plan will leave it.
    let mut push_settings = run.push;
    let estimated = if dry_run && converted.refused.is_none() {
        let predicted = convert::predicted_outputs(&seen);
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
    let (tagged, seen) = if interrupt::interrupted() {
        (convert::Summary::default(), seen)
    } else {
        tag::run_after(&settings, seen)?
    };
    let manifest = seen.into_manifest();
    // What convert and tag let go of (the scan, the fingerprints, staging's sets, the plan)
    // lies mostly in the heaps of the walk's threads, which the push cannot reuse.
    fsutil::return_freed_memory();
    // Handed over: a push whose state holds the mirror frees it before it plans (`let_go`).
    let pushed = if converted.refused.is_none() && !interrupt::interrupted() {
        Some(push_with_progress(
            &push_settings,
            rclone,
            output.quiet || output.json,
            Some(Cow::Owned(manifest)),
            Some(listing),
        )?)
    } else {
        fsutil::free_in_background(manifest);
        None
    };
    if let Some(p) = &pushed {
        p.failed.iter().for_each(report::Failure::print);
    }
    let printed = if output.json {
        let all = SyncSummary {
            bisync: bisynced.as_ref(),
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
