//! The library sync's executor: carries out a checked plan's actions on the library (renames
//! on a local folder) and on the peer (through rclone), and reports which of them really
//! happened. It decides nothing: what to do was planned and guarded in `run`.
//!
//! The plan is cut into segments (`segments`, pure) inside which the actions can be grouped
//! without changing what they do: the moves first, in order; then every copy's bytes in one
//! rclone call per direction, into a temporary folder on the side that receives them
//! (`LIBRARY/.musync-tmp/<tag>/`, `PEER/.musync-tmp/<key>/`); then the files they replace and the
//! files to delete moved into the side's backup folder (one rclone call on the peer, a rename
//! each in the library); then the copies renamed into place. So the number of rclone processes
//! grows with the segments (one for any plan B1's planner makes: moves, then copies, then
//! deletions), not with the files. Ctrl-C stops before the next step; an action is reported as
//! done only once its last step succeeded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Action, Listing, Side};
use crate::interrupt;
use crate::rclone::{self, Rclone, RcloneError};
use crate::report::{Failure, escape_controls};

/// Where the actions go and how.
pub struct Target<'a> {
    pub library: &'a Path,
    pub peer: &'a str,
    /// Move replaced and deleted files into the backups (else delete them).
    pub backup: bool,
    /// This run's folder under `.musync-backups/` (same name on both sides).
    pub backup_dir: &'a str,
    /// The peer's upload folder (`.musync-tmp/<key>`).
    pub peer_tmp: &'a str,
    /// Whether `peer_tmp` holds files left by a killed run, to remove before uploading.
    pub leftovers: bool,
}

/// What the executor did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The actions that happened, in the order they did.
    pub done: Vec<Action>,
    pub failed: Vec<Failure>,
    /// Files moved into a backup folder (both sides).
    pub backed_up: usize,
    /// Peer paths written (copied or moved to), whose listed time the next state takes.
    pub peer_written: BTreeSet<String>,
    /// An rclone call failed as a whole (the remote, not a file).
    pub remote_failed: bool,
    pub interrupted: bool,
}

impl Outcome {
    fn stop(&mut self) -> bool {
        self.interrupted |= interrupt::interrupted();
        self.interrupted
    }

    /// An rclone call that failed: every file in `paths` fails with its cause (or, after
    /// Ctrl-C, the run is interrupted).
    fn call_failed(&mut self, peer: &str, op: &str, e: &RcloneError, paths: &[&str]) {
        if interrupt::interrupted() {
            tracing::info!("{} ({op}) stopped by Ctrl-C: {e}", rclone::redact(peer));
            self.interrupted = true;
            return;
        }
        self.remote_failed = true;
        let why = format!("{} ({op}): {e}", rclone::redact(peer));
        for p in paths {
            self.failed.push(Failure::new(*p, why.clone()));
        }
        if paths.is_empty() {
            self.failed.push(Failure::new(rclone::redact(peer), why));
        }
    }

    fn file_failed(&mut self, path: &str, e: &anyhow::Error) {
        self.failed.push(Failure::from_error(path, e));
    }
}

/// The plan cut where grouping would change its meaning: a move after a copy or deletion that
/// reads or writes one of its paths, or a copy or deletion after a deletion or copy of the same
/// path on the same side, starts a new segment.
pub fn segments(actions: &[Action]) -> Vec<&[Action]> {
    let mut cuts = Vec::new();
    let mut start = 0;
    // Paths that copies and deletions of the current segment touch, by side.
    let mut touched: BTreeSet<(Side, &str)> = BTreeSet::new();
    for (i, action) in actions.iter().enumerate() {
        let conflicts = match action {
            Action::Move { side, from, to } => {
                touched.contains(&(*side, from.as_str())) || touched.contains(&(*side, to.as_str()))
            }
            Action::Copy {
                from,
                from_path,
                to_path,
            } => {
                touched.contains(&(*from, from_path.as_str()))
                    || touched.contains(&(from.other(), to_path.as_str()))
            }
            Action::Delete { side, path } => touched.contains(&(*side, path.as_str())),
        };
        if conflicts {
            cuts.push(&actions[start..i]);
            start = i;
            touched.clear();
        }
        match action {
            Action::Move { .. } => {}
            Action::Copy {
                from,
                from_path,
                to_path,
            } => {
                touched.insert((*from, from_path));
                touched.insert((from.other(), to_path));
            }
            Action::Delete { side, path } => {
                touched.insert((*side, path));
            }
        }
    }
    if start < actions.len() {
        cuts.push(&actions[start..]);
    }
    cuts
}

/// Carries out `actions` in order (by segments). `peer_files` is the peer's listing before the
/// run: which peer paths hold a file, to back up before replacing.
pub fn execute(
    rclone: &Rclone,
    target: &Target,
    actions: &[Action],
    peer_files: &Listing,
) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let mut on_peer: BTreeSet<String> = peer_files.keys().cloned().collect();
    let tmp = target
        .library
        .join(super::RESERVED[2])
        .join(crate::push::random_tag());
    for segment in segments(actions) {
        if out.stop() {
            break;
        }
        run_segment(rclone, target, segment, &tmp, &mut on_peer, &mut out)?;
        if out.interrupted {
            break;
        }
    }
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
        crate::fsutil::remove_empty_dirs(tmp.parent().unwrap_or(&tmp), target.library);
    }
    tidy_peer(rclone, target, peer_files, &mut out);
    Ok(out)
}

/// Removes the peer folders this run's moves and deletions emptied (not the others).
fn tidy_peer(rclone: &Rclone, target: &Target, before: &Listing, out: &mut Outcome) {
    let gone: BTreeSet<&str> = (out.done.iter())
        .filter_map(|a| match a {
            Action::Move {
                side: Side::Peer,
                from,
                ..
            } => Some(from.as_str()),
            Action::Delete {
                side: Side::Peer,
                path,
            } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    if gone.is_empty() || out.interrupted {
        return;
    }
    let remaining = (before.keys().map(String::as_str))
        .filter(|p| !gone.contains(p))
        .chain(out.peer_written.iter().map(String::as_str));
    for dir in crate::push::plan::emptied_dirs(gone.iter().copied(), remaining, false) {
        if out.stop() {
            return;
        }
        if let Err(e) = rclone.rmdirs(target.peer, &dir) {
            tracing::warn!("emptied folder {} stays: {e}", escape_controls(&dir));
        }
    }
}

fn run_segment(
    rclone: &Rclone,
    target: &Target,
    segment: &[Action],
    tmp: &Path,
    on_peer: &mut BTreeSet<String>,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    // 1. The moves, in order.
    let moves: Vec<&Action> = (segment.iter())
        .filter(|a| matches!(a, Action::Move { .. }))
        .collect();
    run_moves(rclone, target, &moves, on_peer, out)?;
    if out.stop() {
        return Ok(());
    }
    // 2. Every copy's bytes, into the receiving side's temporary folder.
    let mut to_library: Vec<(&str, &str)> = Vec::new();
    let mut to_peer: Vec<(&str, &str)> = Vec::new();
    let mut deletes: [Vec<&str>; 2] = [Vec::new(), Vec::new()];
    for action in segment {
        match action {
            Action::Copy {
                from: Side::Peer,
                from_path,
                to_path,
            } => to_library.push((from_path, to_path)),
            Action::Copy {
                from: Side::Library,
                from_path,
                to_path,
            } => to_peer.push((from_path, to_path)),
            Action::Delete { side, path } => deletes[usize::from(*side == Side::Peer)].push(path),
            Action::Move { .. } => {}
        }
    }
    let fetched = fetch(rclone, target, &to_library, tmp, out)?;
    if out.stop() {
        return Ok(());
    }
    let uploaded = stage_uploads(rclone, target, &to_peer, out);
    if out.stop() {
        return Ok(());
    }
    // 3. Library: each replaced or deleted file into the backups, then the copy into place.
    for (from_path, to_path) in fetched {
        let action = Action::Copy {
            from: Side::Peer,
            from_path: from_path.to_owned(),
            to_path: to_path.to_owned(),
        };
        match place_local(target, &tmp.join(from_path), to_path, out) {
            Ok(()) => {
                tracing::info!("copied peer → library: {}", escape_controls(to_path));
                out.done.push(action);
            }
            Err(e) => out.file_failed(to_path, &e),
        }
    }
    for path in &deletes[0] {
        if out.stop() {
            return Ok(());
        }
        let full = target.library.join(path);
        match remove_local(target, path, out) {
            Ok(()) => {
                tracing::info!("deleted library: {}", escape_controls(path));
                crate::fsutil::remove_empty_dirs(full.parent().unwrap_or(&full), target.library);
                out.done.push(Action::Delete {
                    side: Side::Library,
                    path: (*path).to_owned(),
                });
            }
            Err(e) => out.file_failed(path, &e),
        }
    }
    // 4. Peer: replaced and deleted files into the backups in one call, then the copies into
    // place in one call, then (without backups) the deletions in one call.
    let replaced: Vec<&str> = (uploaded.iter())
        .map(|(_, to)| *to)
        .filter(|to| on_peer.contains(*to))
        .collect();
    let peer_deletes: Vec<&str> = (deletes[1].iter())
        .copied()
        .filter(|p| on_peer.contains(*p))
        .collect();
    let mut gone_ok = true;
    if target.backup {
        let files: Vec<String> = (replaced.iter().chain(&peer_deletes))
            .map(|p| (*p).to_owned())
            .collect();
        if !files.is_empty() {
            if out.stop() {
                return Ok(());
            }
            let tag = crate::push::random_tag();
            match rclone.move_into(target.peer, target.backup_dir, &files, &tag) {
                Ok(()) => {
                    out.backed_up += files.len();
                    files.iter().for_each(|p| {
                        on_peer.remove(p);
                    });
                }
                Err(e) => {
                    let all: Vec<&str> = (uploaded.iter().map(|(_, to)| *to))
                        .chain(deletes[1].iter().copied())
                        .collect();
                    out.call_failed(target.peer, "backup", &e, &all);
                    gone_ok = false;
                }
            }
        }
    }
    if !gone_ok {
        return Ok(());
    }
    if out.stop() {
        return Ok(());
    }
    place_uploads(rclone, target, &uploaded, on_peer, out);
    if out.stop() {
        return Ok(());
    }
    let to_delete: Vec<String> = if target.backup {
        Vec::new()
    } else {
        peer_deletes.iter().map(|p| (*p).to_owned()).collect()
    };
    match rclone.delete(target.peer, &to_delete) {
        Ok(()) => {
            for path in &deletes[1] {
                tracing::info!("deleted peer: {}", escape_controls(path));
                on_peer.remove(*path);
                out.done.push(Action::Delete {
                    side: Side::Peer,
                    path: (*path).to_owned(),
                });
            }
        }
        Err(e) => out.call_failed(target.peer, "delete", &e, &deletes[1]),
    }
    Ok(())
}

fn run_moves(
    rclone: &Rclone,
    target: &Target,
    moves: &[&Action],
    on_peer: &mut BTreeSet<String>,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let mut i = 0;
    while i < moves.len() {
        if out.stop() {
            return Ok(());
        }
        let Action::Move { side, from, to } = moves[i] else {
            unreachable!("only moves are passed")
        };
        if *side == Side::Library {
            match move_local(target, from, to, out) {
                Ok(()) => {
                    tracing::info!(
                        "moved library: {} → {}",
                        escape_controls(from),
                        escape_controls(to)
                    );
                    out.done.push(moves[i].clone());
                }
                Err(e) => out.file_failed(from, &e),
            }
            i += 1;
            continue;
        }
        // Peer moves from one folder to another that keep their names go in one call.
        let batch: Vec<(&str, &str)> = (moves[i..].iter())
            .map_while(|a| match a {
                Action::Move {
                    side: Side::Peer,
                    from,
                    to,
                } => Some((from.as_str(), to.as_str())),
                _ => None,
            })
            .take_while(|(f, t)| {
                same_name_between(f, t, from, to) && !on_peer.contains(*t) && !t.starts_with(*f)
            })
            .collect();
        if batch.len() > 1 {
            let (from_dir, to_dir) = (parent(from), parent(to));
            let names: Vec<String> = batch.iter().map(|(f, _)| name(f).to_owned()).collect();
            match rclone.move_between(target.peer, from_dir, to_dir, &names) {
                Ok(()) => {
                    for (f, t) in &batch {
                        tracing::info!(
                            "moved peer: {} → {}",
                            escape_controls(f),
                            escape_controls(t)
                        );
                        on_peer.remove(*f);
                        on_peer.insert((*t).to_owned());
                        out.peer_written.insert((*t).to_owned());
                        out.done.push(Action::Move {
                            side: Side::Peer,
                            from: (*f).to_owned(),
                            to: (*t).to_owned(),
                        });
                    }
                }
                Err(e) => {
                    let froms: Vec<&str> = batch.iter().map(|(f, _)| *f).collect();
                    out.call_failed(target.peer, "move", &e, &froms);
                }
            }
            i += batch.len();
            continue;
        }
        // One move: a file at its target is backed up (or deleted) first.
        let mut ready = true;
        if on_peer.contains(to.as_str()) && target.backup {
            let tag = crate::push::random_tag();
            match rclone.move_into(
                target.peer,
                target.backup_dir,
                std::slice::from_ref(to),
                &tag,
            ) {
                Ok(()) => {
                    out.backed_up += 1;
                    on_peer.remove(to.as_str());
                }
                Err(e) => {
                    out.call_failed(target.peer, "backup", &e, &[to]);
                    ready = false;
                }
            }
        }
        if ready {
            match rclone.rename(target.peer, from, to) {
                Ok(()) => {
                    tracing::info!(
                        "moved peer: {} → {}",
                        escape_controls(from),
                        escape_controls(to)
                    );
                    on_peer.remove(from.as_str());
                    on_peer.insert(to.clone());
                    out.peer_written.insert(to.clone());
                    out.done.push(moves[i].clone());
                }
                Err(e) => out.call_failed(target.peer, "move", &e, &[from]),
            }
        }
        i += 1;
    }
    Ok(())
}

/// `f → t` moves a file between the same two (non-root, unrelated) folders as `from → to`,
/// keeping its name.
fn same_name_between(f: &str, t: &str, from: &str, to: &str) -> bool {
    let (fd, td) = (parent(from), parent(to));
    !fd.is_empty()
        && !td.is_empty()
        && !td.starts_with(&format!("{fd}/"))
        && !fd.starts_with(&format!("{td}/"))
        && fd != td
        && parent(f) == fd
        && parent(t) == td
        && name(f) == name(t)
}

fn parent(rel: &str) -> &str {
    rel.rfind('/').map_or("", |i| &rel[..i])
}

fn name(rel: &str) -> &str {
    rel.rfind('/').map_or(rel, |i| &rel[i + 1..])
}

/// Fetches the peer files of `copies` into `tmp` in one call; returns the copies whose file
/// arrived whole (the listed size), each other one failing with rclone's cause.
fn fetch<'a>(
    rclone: &Rclone,
    target: &Target,
    copies: &[(&'a str, &'a str)],
    tmp: &Path,
    out: &mut Outcome,
) -> anyhow::Result<Vec<(&'a str, &'a str)>> {
    if copies.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let files: Vec<String> = (copies.iter().map(|(f, _)| (*f).to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let result = rclone.download(target.peer, &files, tmp);
    let arrived = |p: &str| std::fs::symlink_metadata(tmp.join(p)).is_ok_and(|m| m.is_file());
    match result {
        Ok(()) => Ok(copies.to_vec()),
        Err(e) => {
            if interrupt::interrupted() {
                out.interrupted = true;
                return Ok(Vec::new());
            }
            let (ok, lost): (Vec<_>, Vec<_>) = copies.iter().partition(|(f, _)| arrived(f));
            let lost: Vec<&str> = lost.iter().map(|(_, t)| *t).collect();
            if ok.is_empty() {
                out.call_failed(target.peer, "copy", &e, &lost);
            } else {
                let why = format!("{} (copy): {e}", rclone::redact(target.peer));
                lost.iter()
                    .for_each(|p| out.failed.push(Failure::new(*p, why.clone())));
            }
            Ok(ok)
        }
    }
}

/// Copies the library files of `copies` into the peer's upload folder in one call; returns
/// them, or none when the call failed.
fn stage_uploads<'a>(
    rclone: &Rclone,
    target: &Target,
    copies: &[(&'a str, &'a str)],
    out: &mut Outcome,
) -> Vec<(&'a str, &'a str)> {
    if copies.is_empty() {
        return Vec::new();
    }
    let files: Vec<String> = (copies.iter().map(|(f, _)| (*f).to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if target.leftovers {
        // A tidy-up: the upload overwrites what it needs anyway, so it goes on.
        if let Err(e) = rclone.purge(target.peer, target.peer_tmp) {
            tracing::warn!("the leftovers in {} stay: {e}", target.peer_tmp);
        }
    }
    match rclone.stage_upload(target.library, target.peer, target.peer_tmp, &files) {
        Ok(()) => copies.to_vec(),
        Err(e) => {
            let all: Vec<&str> = copies.iter().map(|(_, t)| *t).collect();
            let refused =
                matches!(&e, RcloneError::Io(io) if io.kind() == std::io::ErrorKind::InvalidInput);
            if refused {
                // musync's own refusal (a file that changed into a link): the files, not the remote.
                let why = e.to_string();
                all.iter()
                    .for_each(|p| out.failed.push(Failure::new(*p, why.clone())));
                return Vec::new();
            }
            if interrupt::interrupted() {
                out.interrupted = true;
                return Vec::new();
            }
            // The files that arrived whole go on; the others fail with rclone's cause.
            let staged = rclone
                .list(&rclone::join(target.peer, target.peer_tmp))
                .unwrap_or_default();
            let whole = |f: &str| {
                let size = std::fs::metadata(target.library.join(f)).map(|m| m.len());
                staged
                    .get(f)
                    .is_some_and(|r| size.is_ok_and(|s| s == r.size))
            };
            let (ok, lost): (Vec<_>, Vec<_>) = copies.iter().partition(|(f, _)| whole(f));
            let lost: Vec<&str> = lost.iter().map(|(_, t)| *t).collect();
            if ok.is_empty() {
                out.call_failed(target.peer, "copy", &e, &lost);
            } else {
                let why = format!("{} (copy): {e}", rclone::redact(target.peer));
                (lost.iter()).for_each(|p| out.failed.push(Failure::new(*p, why.clone())));
            }
            ok
        }
    }
}

/// Renames the staged uploads into place on the peer: those that keep their path in one call,
/// the others (keep-both copies) one rename each.
fn place_uploads(
    rclone: &Rclone,
    target: &Target,
    uploaded: &[(&str, &str)],
    on_peer: &mut BTreeSet<String>,
    out: &mut Outcome,
) {
    let done = |out: &mut Outcome, on_peer: &mut BTreeSet<String>, from: &str, to: &str| {
        tracing::info!("copied library → peer: {}", escape_controls(to));
        on_peer.insert(to.to_owned());
        out.peer_written.insert(to.to_owned());
        out.done.push(Action::Copy {
            from: Side::Library,
            from_path: from.to_owned(),
            to_path: to.to_owned(),
        });
    };
    let (same, renamed): (Vec<_>, Vec<_>) = uploaded.iter().partition(|(f, t)| f == t);
    let files: Vec<String> = same.iter().map(|(f, _)| (*f).to_owned()).collect();
    match rclone.place(target.peer, target.peer_tmp, &files) {
        Ok(()) => same.iter().for_each(|(f, t)| done(out, on_peer, f, t)),
        Err(e) => {
            let all: Vec<&str> = same.iter().map(|(_, t)| *t).collect();
            out.call_failed(target.peer, "move into place", &e, &all);
        }
    }
    for (from, to) in renamed {
        if out.stop() {
            return;
        }
        match rclone.rename(target.peer, &rclone::join(target.peer_tmp, from), to) {
            Ok(()) => done(out, on_peer, from, to),
            Err(e) => out.call_failed(target.peer, "move into place", &e, &[to]),
        }
    }
}

/// The library path of `rel`, refusing one that leaves the library through a link.
fn library_path(target: &Target, rel: &str) -> anyhow::Result<PathBuf> {
    crate::relpath::check(rel).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = target.library.join(rel);
    crate::fsutil::check_confined(target.library, &path)?;
    Ok(path)
}

/// Moves the library file at `rel` into the backups (or deletes it without backups). A file
/// already gone counts as deleted.
fn remove_local(target: &Target, rel: &str, out: &mut Outcome) -> anyhow::Result<()> {
    let path = library_path(target, rel)?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    if target.backup {
        let dest = library_path(target, &rclone::join(target.backup_dir, rel))?;
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::rename(&path, &dest)
            .with_context(|| format!("backing up {} into {}", path.display(), dest.display()))?;
        out.backed_up += 1;
    } else {
        std::fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
    }
    Ok(())
}

/// Renames the fetched file `staged` to the library path `rel`, backing up what is there.
fn place_local(target: &Target, staged: &Path, rel: &str, out: &mut Outcome) -> anyhow::Result<()> {
    let dest = library_path(target, rel)?;
    remove_local(target, rel, out)?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::rename(staged, &dest)
        .with_context(|| format!("renaming into place {}", dest.display()))?;
    crate::fsutil::sync_parent(&dest);
    Ok(())
}

/// Renames the library file `from` to `to`, backing up a file at `to` first.
fn move_local(target: &Target, from: &str, to: &str, out: &mut Outcome) -> anyhow::Result<()> {
    let src = library_path(target, from)?;
    let dest = library_path(target, to)?;
    if !std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_file()) {
        anyhow::bail!(
            "{}: gone from the library since it was listed",
            src.display()
        );
    }
    remove_local(target, to, out)?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::rename(&src, &dest)
        .with_context(|| format!("renaming {} to {}", src.display(), dest.display()))?;
    crate::fsutil::remove_empty_dirs(src.parent().unwrap_or(&src), target.library);
    Ok(())
}

/// The library file `rel` as it is now, for the next state (the time rclone set).
pub fn stat_local(library: &Path, rel: &str) -> Option<super::Entry> {
    let stamp = crate::fsutil::Stamp::of(&library.join(rel))?;
    Some(super::Entry {
        size: stamp.size,
        mtime: stamp.mtime_ns,
        hash: None,
    })
}

/// The files each side lost or gained by `done`, applied to the listings from before the run:
/// the listings as the actions left them (the times of written files are the caller's to
/// refresh).
pub fn apply(done: &[Action], library: &mut Listing, peer: &mut Listing) {
    let mut sides: BTreeMap<Side, &mut Listing> = BTreeMap::new();
    sides.insert(Side::Library, library);
    sides.insert(Side::Peer, peer);
    for action in done {
        match action {
            Action::Copy {
                from,
                from_path,
                to_path,
            } => {
                let Some(entry) = sides[from].get(from_path).cloned() else {
                    continue;
                };
                sides
                    .get_mut(&from.other())
                    .expect("both sides")
                    .insert(to_path.clone(), entry);
            }
            Action::Move { side, from, to } => {
                let listing = sides.get_mut(side).expect("both sides");
                if let Some(entry) = listing.remove(from) {
                    listing.insert(to.clone(), entry);
                }
            }
            Action::Delete { side, path } => {
                sides.get_mut(side).expect("both sides").remove(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Entry;
    use super::*;

    fn copy(from: Side, path: &str) -> Action {
        Action::Copy {
            from,
            from_path: path.into(),
            to_path: path.into(),
        }
    }

    fn mv(side: Side, from: &str, to: &str) -> Action {
        Action::Move {
            side,
            from: from.into(),
            to: to.into(),
        }
    }

    fn del(side: Side, path: &str) -> Action {
        Action::Delete {
            side,
            path: path.into(),
        }
    }

    #[test]
    fn a_plan_of_moves_copies_and_deletions_is_one_segment() {
        let plan = [
            mv(Side::Peer, "A/1", "B/1"),
            copy(Side::Library, "C/1"),
            copy(Side::Peer, "D/1"),
            mv(Side::Library, "E/1", "F/1"),
            del(Side::Peer, "G/1"),
            del(Side::Library, "H/1"),
        ];
        assert_eq!(segments(&plan), [&plan[..]]);
        assert!(segments(&[]).is_empty());
    }

    #[test]
    fn grouping_never_reorders_actions_on_one_path() {
        // A move after a copy of its source would run before it if grouped.
        let plan = [copy(Side::Library, "A/1"), mv(Side::Library, "A/1", "B/1")];
        assert_eq!(segments(&plan), [&plan[..1], &plan[1..]]);
        // A deletion then a copy to the same path: the copy would be deleted.
        let plan = [del(Side::Peer, "A/1"), copy(Side::Library, "A/1")];
        assert_eq!(segments(&plan), [&plan[..1], &plan[1..]]);
        // The same path on the other side is another file.
        let plan = [
            del(Side::Peer, "A/1"),
            copy(Side::Peer, "A/2"),
            del(Side::Library, "A/1"),
        ];
        assert_eq!(segments(&plan), [&plan[..]]);
    }

    #[test]
    fn applying_done_actions_moves_entries_between_listings() {
        let e = |size| Entry {
            size,
            mtime: 1,
            hash: None,
        };
        let mut library: Listing = [("a".to_owned(), e(1)), ("b".to_owned(), e(2))].into();
        let mut peer: Listing = [("c".to_owned(), e(3)), ("d".to_owned(), e(4))].into();
        apply(
            &[
                copy(Side::Library, "a"),
                copy(Side::Peer, "c"),
                mv(Side::Library, "b", "B"),
                del(Side::Peer, "d"),
            ],
            &mut library,
            &mut peer,
        );
        assert_eq!(library.keys().collect::<Vec<_>>(), ["B", "a", "c"]);
        assert_eq!(peer.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(peer["a"], e(1));
    }

    #[test]
    fn peer_moves_are_batched_only_between_two_unrelated_folders_keeping_names() {
        assert!(same_name_between("A/1", "B/1", "A/2", "B/2"));
        assert!(!same_name_between("A/1", "B/x", "A/2", "B/2"));
        assert!(!same_name_between("A/1", "A/B/1", "A/2", "A/B/2"));
        assert!(!same_name_between("1", "B/1", "2", "B/2"));
    }
}
