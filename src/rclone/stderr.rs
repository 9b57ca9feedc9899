//! Reading what rclone writes to stderr: its stats lines (JSON or plain), and the short tail of
//! meaningful lines an `RcloneError` carries. Pure text handling: it runs nothing.

use serde::Deserialize;

use super::{Stats, TAIL_MAX_CHARS, TAIL_MAX_LINES};

/// `: <tail>`, or nothing when rclone said nothing (killed before it could); a timeout is said
/// in plain words first.
pub(super) fn tail_text(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else if tail.contains("i/o timeout") || tail.contains("connection timed out") {
        format!(": the server did not answer in time: {tail}")
    } else {
        format!(": {tail}")
    }
}

pub(super) fn exit_text(code: &Option<i32>) -> String {
    code.map_or_else(
        || "killed by a signal".to_owned(),
        |code| format!("exit {code}"),
    )
}

/// rclone's stats from one line of its JSON log (`--use-json-log`): the `stats` object of the
/// lines 1.60 and later log at the stats level. Any other line is `None`.
pub fn parse_stats(line: &str) -> Option<Stats> {
    #[derive(Deserialize)]
    struct Line {
        stats: Stats,
    }
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Line>(line).ok().map(|l| l.stats)
}

/// A JSON log line as rclone's plain log writes it (`ERROR : msg`), for the error's tail; any
/// other line as it is.
pub(super) fn plain_log_line(line: &str) -> String {
    #[derive(Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    match serde_json::from_str::<Line>(line.trim()) {
        Ok(l) => {
            let level = match l.level.as_str() {
                "warning" | "notice" => "NOTICE".to_owned(),
                other => other.to_ascii_uppercase(),
            };
            format!("{level} : {}", l.msg.trim())
        }
        Err(_) => line.to_owned(),
    }
}

/// The last few meaningful stderr lines, without timestamps or levels, joined with " / ".
/// NOTICE/INFO/DEBUG lines are noise unless they report a failure (rclone ≥ 1.6x logs its final
/// "Failed to …" at NOTICE); "Attempt n/m failed" only repeats what the last line says.
pub(super) fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<(Option<&str>, &str)> = stderr
        .lines()
        .map(|l| split_level(strip_timestamp(l)))
        .filter(|(_, msg)| !msg.is_empty())
        .collect();
    let meaningful = |(level, msg): &&(Option<&str>, &str)| match level {
        Some("NOTICE" | "INFO" | "DEBUG") => {
            let lower = msg.to_lowercase();
            lower.contains("fail") || lower.contains("error")
        }
        _ => !(msg.starts_with("Attempt ") && msg.contains(" failed with ")),
    };
    let mut pool: Vec<&str> = lines.iter().filter(meaningful).map(|(_, m)| *m).collect();
    if pool.is_empty() {
        pool = lines.iter().map(|(_, m)| *m).collect();
    }
    let (mut picked, mut chars) = (Vec::new(), 0);
    for msg in pool.into_iter().rev() {
        if picked.contains(&msg) {
            continue;
        }
        let len = msg.chars().count() + " / ".len();
        if !picked.is_empty() && (picked.len() == TAIL_MAX_LINES || chars + len > TAIL_MAX_CHARS) {
            break;
        }
        picked.push(msg);
        chars += len;
    }
    picked.reverse();
    let joined = picked.join(" / ");
    match joined.char_indices().nth(TAIL_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// Drops rclone's `2024/01/31 12:00:00[.000000]` log prefix.
pub(super) fn strip_timestamp(line: &str) -> &str {
    let mut rest = line.trim();
    for _ in 0..2 {
        let Some((word, after)) = rest.split_once(' ') else {
            break;
        };
        if !word.starts_with(|c: char| c.is_ascii_digit())
            || !word
                .chars()
                .all(|c| c.is_ascii_digit() || "/:.".contains(c))
        {
            break;
        }
        rest = after.trim_start();
    }
    rest
}

/// `ERROR : msg` → (Some("ERROR"), "msg"); a line without a level → (None, line).
pub(super) fn split_level(msg: &str) -> (Option<&str>, &str) {
    match msg.split_once(':') {
        Some((level, rest))
            if !level.trim_end().is_empty()
                && level.trim_end().chars().all(|c| c.is_ascii_uppercase()) =>
        {
            (Some(level.trim_end()), rest.trim_start())
        }
        _ => (None, msg),
    }
}
