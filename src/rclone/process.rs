//! Running one rclone child process: no stdin, stderr read for stats and the error tail, bounded
//! by the stall watchdog and stopped on Ctrl-C or SIGTERM. What to run is decided in `mod.rs`.

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::redact;
use super::stderr::{parse_stats, plain_log_line, split_level, stderr_tail, strip_timestamp};
use super::{Progress, RcloneError, TERM_GRACE};

/// Runs `cmd` without stdin (an encrypted config then fails instead of waiting for a password),
/// capturing its output (stdout into `stdout` if given); a non-zero exit not in `ok` is `Failed`.
/// With `stall`, rclone is stopped once its stats lines (see `STATS`) show no new byte for that
/// long; a first Ctrl-C or SIGTERM to musync stops it too.
pub(super) fn output(
    op: &str,
    cmd: &mut Command,
    ok: &[i32],
    stdout: Option<std::fs::File>,
    stall: Option<Duration>,
    on_stats: Option<&Progress>,
) -> Result<Output, RcloneError> {
    let start = Instant::now();
    die_with_musync(cmd);
    // rclone has no use for musync's other secret.
    cmd.env_remove(crate::subsonic::PASSWORD_VAR);
    let captured = stdout.is_none();
    cmd.stdin(Stdio::null())
        .stdout(stdout.map_or_else(Stdio::piped, Stdio::from))
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(RcloneError::NotFound),
        result => result?,
    };
    let stdout_reader = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = out.read_to_end(&mut bytes);
            bytes
        })
    });
    let progress = Arc::new(Mutex::new(Liveness::default()));
    // Dropped when rclone closes its stderr, which it does as it exits.
    let (closing, closed) = std::sync::mpsc::channel::<()>();
    let stderr_reader = child.stderr.take().map(|err| {
        let progress = Arc::clone(&progress);
        let on_stats = on_stats.cloned();
        std::thread::spawn(move || {
            let kept = read_stderr(err, &progress, on_stats.as_ref());
            drop(closing);
            kept
        })
    });
    let waited = wait(&mut child, op, stall, &progress, &closed);
    let stderr = stderr_reader.map_or_else(Vec::new, |r| r.join().unwrap_or_default());
    let stdout = match stdout_reader {
        Some(r) if captured => r.join().unwrap_or_default(),
        _ => Vec::new(),
    };
    let status = waited?;
    tracing::debug!("rclone {op}: {status} after {:.2?}", start.elapsed());
    match status.code() {
        Some(code) if code == 0 || ok.contains(&code) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        code => Err(RcloneError::Failed {
            op: op.to_owned(),
            code,
            stderr_tail: stderr_tail(&redact(&String::from_utf8_lossy(&stderr))),
        }),
    }
}

/// What the stats lines of a running transfer last said, and when that changed.
pub(super) struct Liveness {
    key: Option<String>,
    since: Instant,
}

impl Default for Liveness {
    fn default() -> Liveness {
        Liveness {
            key: None,
            since: Instant::now(),
        }
    }
}

/// rclone's stderr without its stats lines, each of which updates `progress` instead (and goes
/// to `on_stats`, for the progress bar, when rclone logs in JSON). JSON log lines are kept in
/// rclone's plain form, so an error's tail reads the same either way.
pub(super) fn read_stderr(
    err: impl Read,
    progress: &Mutex<Liveness>,
    on_stats: Option<&Progress>,
) -> Vec<u8> {
    use std::io::BufRead;
    let mut kept = Vec::new();
    let mut lines = io::BufReader::new(err);
    let mut line = Vec::new();
    while lines.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
        let text = String::from_utf8_lossy(&line);
        let key = match parse_stats(&text) {
            Some(stats) => {
                if let Some(on_stats) = on_stats {
                    (on_stats.0)(stats);
                }
                Some(format!("{} / {}", stats.bytes, stats.total_bytes))
            }
            None => stats_key(&text),
        };
        match key {
            Some(key) => {
                let mut p = progress
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if p.key.as_deref() != Some(key.as_str()) {
                    p.key = Some(key);
                    p.since = Instant::now();
                }
            }
            None if on_stats.is_some() => {
                kept.extend_from_slice(plain_log_line(text.trim_end_matches('\n')).as_bytes());
                kept.push(b'\n');
            }
            None => kept.extend_from_slice(&line),
        }
        line.clear();
    }
    kept
}

/// `5.722 MiB / 20 MiB` from a one-line stats line (`… NOTICE:    5.722 MiB / 20 MiB, 28%,
/// 1 MiB/s, ETA 10s`): the bytes done and due, which change while anything moves.
pub(super) fn stats_key(line: &str) -> Option<String> {
    let (level, msg) = split_level(strip_timestamp(line));
    let (bytes, rest) = msg.split_once(',')?;
    let (done, due) = bytes.split_once(" / ")?;
    let is_size =
        |s: &str| s.trim().ends_with('B') && s.trim().starts_with(|c: char| c.is_ascii_digit());
    (level == Some("NOTICE") && is_size(done) && is_size(due) && rest.contains("ETA"))
        .then(|| bytes.trim().to_owned())
}

/// Waits for rclone, stopping it on a first Ctrl-C or SIGTERM to musync, or when `stall` passes
/// with no change in its stats (armed by the first stats line, so flags that silence them only
/// lose the watchdog).
pub(super) fn wait(
    child: &mut Child,
    op: &str,
    stall: Option<Duration>,
    progress: &Mutex<Liveness>,
    closed: &std::sync::mpsc::Receiver<()>,
) -> Result<ExitStatus, RcloneError> {
    let mut nap = Duration::from_millis(1);
    let mut stderr_open = true;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if crate::interrupt::interrupted() {
            stop(child);
            return Err(RcloneError::Interrupted { op: op.to_owned() });
        }
        if let Some(limit) = stall {
            let p = progress
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if p.key.is_some() && p.since.elapsed() > limit {
                drop(p);
                stop(child);
                let secs = limit.as_secs();
                return Err(RcloneError::Stalled {
                    op: op.to_owned(),
                    secs,
                });
            }
        }
        // Woken as rclone exits, not up to a nap later: a no-op push waits for one listing.
        if stderr_open {
            if let Err(std::sync::mpsc::RecvTimeoutError::Disconnected) = closed.recv_timeout(nap) {
                stderr_open = false;
                nap = Duration::from_millis(1);
                continue;
            }
        } else {
            std::thread::sleep(nap);
        }
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// SIGTERM, then SIGKILL if rclone has not exited after `TERM_GRACE`.
pub(super) fn stop(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline {
        if child.try_wait().is_ok_and(|s| s.is_some()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The value of `flag` (`--timeout 5s` or `--timeout=5s`; the last one counts, as in rclone),
/// in rclone's simple duration forms (`500ms`, `30s`, `5m`, `1h`, `1m30s`).
pub(super) fn flag_duration(flags: &[String], flag: &str) -> Option<Duration> {
    let mut value = None;
    let mut args = flags.iter();
    while let Some(arg) = args.next() {
        if arg == flag {
            value = args.next().map(String::as_str);
        } else if let Some(v) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            value = Some(v);
        }
    }
    parse_duration(value?)
}

pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let (mut total, mut rest) = (Duration::ZERO, text);
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(number * unit).ok()?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Has the kernel kill rclone when musync dies. Otherwise a musync killed on its own (`kill -9`,
/// the OOM killer) leaves its rclone writing to the remote while the next push, finding the
/// lock's process gone, uploads the same files: the orphan's late writes (a truncated file, an
/// old version) then replace what the push recorded. The signal follows the spawning thread, so
/// that thread must wait for rclone, as `output` does.
#[cfg(target_os = "linux")]
pub(super) fn die_with_musync(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let musync = libc::pid_t::try_from(std::process::id()).expect("a pid fits in pid_t");
    // SAFETY: between fork and exec the closure makes only async-signal-safe system calls and
    // does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // musync died before the prctl took effect: rclone must not start at all.
            if libc::getppid() != musync {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn die_with_musync(_cmd: &mut Command) {}
