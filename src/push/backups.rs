//! The backup folder on the remote: every file a push overwrites or deletes is first moved into
//! `.musync-backups/<UTC time>-<tag>/`, keeping its path. Media servers skip hidden folders.
//! Here: the folder names, and pruning old ones.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;

use crate::rclone::Rclone;

pub const BACKUP_DIR: &str = ".musync-backups";

/// `.musync-backups/2026-11-22T10-00-00-<tag>` for a push started at that UTC time: the tag
/// (from `tag`) keeps two pushes of one second, from two staging folders, out of one folder,
/// where `rclone move` would replace the first one's backups with the second's.
pub fn dir_name(at: SystemTime, tag: &str) -> String {
    format!("{}-{tag}", time_name(at))
}

/// A tag no other push is likely to pick: 8 hex digits from the OS's randomness, else from
/// a randomly keyed hash of the time and the process id.
pub fn random_tag() -> String {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        use std::hash::BuildHasher;
        let seed = (SystemTime::now(), std::process::id());
        let hash = std::collections::hash_map::RandomState::new().hash_one(seed);
        bytes.copy_from_slice(&hash.to_le_bytes()[..4]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A backup folder for a push started `at` that no listed file (`taken`: paths relative to
/// the remote) is in yet: the backups of another push are never moved over.
pub fn fresh_dir(at: SystemTime, mut taken: impl FnMut(&str) -> bool) -> String {
    loop {
        let dir = dir_name(at, &random_tag());
        if !taken(&dir) {
            return dir;
        }
    }
}

/// `.musync-backups/2026-11-22T10-00-00`, the name of backup folders before they had a tag.
fn time_name(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (y, m, d) = civil_from_days(days);
    let t = secs % 86_400;
    format!(
        "{BACKUP_DIR}/{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Seconds since the epoch of a backup folder's name (`<time>` or `<time>-<tag>`), `None` for
/// any other name.
fn parse(name: &str) -> Option<u64> {
    let (time, tag) = name.split_at_checked(19)?;
    let tagged = tag
        .strip_prefix('-')
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !tag.is_empty() && !tagged {
        return None;
    }
    let name = time;
    let b = name.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b'-'
        || b[16] != b'-'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| name.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, min, s) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || s > 59 {
        return None;
    }
    u64::try_from(days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60 + s).ok()
}

/// Parse an age with an explicit unit: `90min`, `48h`, `30d`, `8w`, `6mo` (30 days) or `1y`
/// (365 days). A bare `m` is refused: it means minutes to some and months to others. An age
/// that reaches back before 1970 (or overflows) is refused, so that no backup's time plus the
/// age can wrap around.
pub fn parse_age(s: &str) -> anyhow::Result<Duration> {
    const UNITS: &str = "min, h, d, w, mo or y, e.g. 30d or 6mo";
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let secs: u64 = match unit {
        "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => 30 * 86_400,
        "y" => 365 * 86_400,
        "m" => bail!("`{s}` is ambiguous: write `{n}min` for minutes or `{n}mo` for months"),
        _ => bail!("`{s}` is not an age: use a number with {UNITS}"),
    };
    if n.is_empty() {
        bail!("`{s}` is not an age: use a number with {UNITS}");
    }
    let too_old = || anyhow::anyhow!("`{s}` is out of range: it reaches back before 1970");
    let age = n
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(secs))
        .map(Duration::from_secs)
        .ok_or_else(too_old)?;
    match SystemTime::now().checked_sub(age) {
        Some(cutoff) if cutoff >= UNIX_EPOCH => Ok(age),
        _ => Err(too_old()),
    }
}

/// Delete the backup folders older than `age`; returns the ones deleted (or that would be).
pub fn prune(
    rclone: &Rclone,
    remote: &str,
    age: Duration,
    dry_run: bool,
) -> anyhow::Result<Vec<String>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut old = Vec::new();
    for name in rclone.list_dirs(remote, BACKUP_DIR)? {
        if parse(&name).is_some_and(|t| t + age.as_secs() < now) {
            let dir = format!("{BACKUP_DIR}/{name}");
            if !dry_run {
                rclone.purge(remote, &dir)?;
            }
            old.push(dir);
        }
    }
    Ok(old)
}

/// Howard Hinnant's civil calendar algorithms (days since 1970-01-01 ↔ proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_341_600); // 2026-11-22T10:00:00Z
        let name = dir_name(at, "0a1b2c3d");
        assert_eq!(name, ".musync-backups/2026-11-22T10-00-00-0a1b2c3d");
        assert_eq!(parse(&name[BACKUP_DIR.len() + 1..]), Some(1_795_341_600));
        for secs in [0, 951_782_400, 4_107_542_399] {
            let name = dir_name(UNIX_EPOCH + Duration::from_secs(secs), &random_tag());
            assert_eq!(parse(&name[BACKUP_DIR.len() + 1..]), Some(secs), "{name}");
        }
        assert_eq!(parse("notes"), None);
        assert_eq!(parse("2026-13-22T10-00-00"), None);
        assert_eq!(parse("2026-11-22T10-00-00-"), None);
        assert_eq!(parse("2026-11-22T10-00-00x1"), None);
        assert_eq!(parse("2026-11-22T10-00-00-a/b"), None);
    }

    // Regression: the folders of musync before the tag (`<time>` alone) are still pruned.
    #[test]
    fn untagged_folders_of_older_pushes_still_parse() {
        assert_eq!(parse("2026-11-22T10-00-00"), Some(1_795_341_600));
    }

    // Regression: two pushes in the same second shared one backup folder.
    #[test]
    fn two_pushes_in_one_second_get_two_folders() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_341_600);
        let first = fresh_dir(at, |_| false);
        assert_ne!(first, fresh_dir(at, |_| false));
        let mut tries = 0;
        let second = fresh_dir(at, |_| {
            tries += 1;
            tries < 3
        });
        assert_eq!(
            (tries, parse(&second[BACKUP_DIR.len() + 1..])),
            (3, Some(1_795_341_600))
        );
    }

    #[test]
    fn ages() {
        let day = 86_400;
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * day));
        assert_eq!(parse_age("2w").unwrap(), Duration::from_secs(14 * day));
        assert_eq!(parse_age("6mo").unwrap(), Duration::from_secs(180 * day));
        assert_eq!(parse_age("1y").unwrap(), Duration::from_secs(365 * day));
        assert_eq!(parse_age("48h").unwrap(), Duration::from_secs(48 * 3600));
        assert_eq!(parse_age("90min").unwrap(), Duration::from_secs(90 * 60));
        for bad in [
            "30", "d", "", "-1d", "1.5d", "1 d", "1D", "mo", "1dd", "1yr",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    // Regression: `1m` meant one minute, and someone who meant a month lost every backup.
    #[test]
    fn a_bare_m_is_refused_with_both_spellings() {
        let e = parse_age("1m").unwrap_err().to_string();
        assert!(
            e.contains("ambiguous") && e.contains("`1min`") && e.contains("`1mo`"),
            "{e}"
        );
    }

    // Regression: a huge age wrapped around in release builds and every backup was deleted.
    #[test]
    fn ages_out_of_range_are_refused() {
        for huge in [
            "18446744073709551615d",
            "99999999999999999999999d",
            "300000000000y",
            "100y",
        ] {
            let e = parse_age(huge).unwrap_err().to_string();
            assert!(e.contains("out of range"), "{huge}: {e}");
        }
        assert!(parse_age("50y").is_ok());
    }
}
