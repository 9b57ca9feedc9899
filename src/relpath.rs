//! The one check on a relative path that musync reads back, from its own files (the manifest,
//! the push state) or from a remote's listing, before it acts on it: joined to the staging
//! folder or the remote root, the path must name something inside it. Lexical only: no I/O.
//!
//! Line breaks are allowed: a library may hold such names and musync mirrors them. Only lists
//! with one path a line (rclone's `--files-from-raw`) refuse them, with `check_line`.

/// A path that could leave its root, or that names no file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path {0:?}")]
pub struct Unsafe(pub String);

/// `rel` if it is a clean relative path: not empty, not absolute, no empty, `.` or `..`
/// component, no NUL.
pub fn check(rel: &str) -> Result<&str, Unsafe> {
    let clean = !rel.is_empty()
        && !rel.contains('\0')
        && rel.split('/').all(|c| !matches!(c, "" | "." | ".."));
    if clean {
        Ok(rel)
    } else {
        Err(Unsafe(rel.to_owned()))
    }
}

/// As `check`, and on one line.
pub fn check_line(rel: &str) -> Result<&str, Unsafe> {
    match check(rel)? {
        rel if rel.contains(['\n', '\r']) => Err(Unsafe(rel.to_owned())),
        rel => Ok(rel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_relative_paths_pass() {
        for bad in [
            "",
            "/",
            "/etc/passwd",
            "..",
            "../x",
            "a/../../b",
            "a/..",
            ".",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "//a",
            "a\0b",
        ] {
            assert_eq!(check(bad), Err(Unsafe(bad.to_owned())), "{bad:?}");
        }
        for good in [
            "a",
            "...",
            "..a/b..",
            ".hidden/x",
            "-a #1/b;c é.mp3",
            "a\\..\\b",
            "new\nline.mp3",
        ] {
            assert_eq!(check(good), Ok(good), "{good:?}");
        }
        assert!(check_line("new\nline.mp3").is_err() && check_line("a\r").is_err());
        assert_eq!(check_line("a/b.mp3"), Ok("a/b.mp3"));
    }

    #[test]
    fn the_error_is_one_line() {
        let e = check("../a\nb").unwrap_err().to_string();
        assert_eq!(e, r#"unsafe path "../a\nb""#);
    }
}
