//! Secrets in remotes: redacting them from every message, and moving them from a connection
//! string into rclone's environment so no command line shows them.

/// Replaces secret values in connection strings and flags (`pass=…`, `password=…`,
/// `--sftp-pass=…`, `client_secret=…`, `token='…'`) with `***`, up to ',', ':', a quote or space.
/// Every message that names a remote shows it through here.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let (head, tail) = (&rest[..eq], &rest[eq + 1..]);
        out.push_str(head);
        out.push('=');
        // The key: the ASCII word before '=' (counted in bytes, so never inside a character).
        let key_len = (head.bytes().rev())
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            .count();
        rest = tail;
        if is_secret_key(&head[head.len() - key_len..]) {
            let end = match tail.chars().next() {
                Some(q @ ('"' | '\'')) => tail[1..].find(q).map_or(tail.len(), |i| i + 2),
                _ => tail
                    .find([',', ':', '"', '\'', ' ', '\t', '\n'])
                    .unwrap_or(tail.len()),
            };
            out.push_str("***");
            rest = &tail[end..];
        }
    }
    out.push_str(rest);
    out
}

/// `remote` with the secret options of its connection string taken out, and those options as
/// the `RCLONE_*` environment variables rclone reads them from instead: a command line is
/// visible to every user of the machine (`ps`), a process's environment only to its owner.
/// `:sftp,host=h,pass=X:dir` → `:sftp,host=h:dir` and `RCLONE_SFTP_PASS=X`; a named remote
/// `nas,pass=X:dir` → `nas:dir` and `RCLONE_CONFIG_NAS_PASS=X`. Anything else (a local path,
/// a name that cannot be part of a variable name, an unterminated quote) is left as it is.
pub(super) fn secrets_to_env(remote: &str) -> (String, Vec<(String, String)>) {
    let unchanged = || (remote.to_owned(), Vec::new());
    let (on_the_fly, rest) = match remote.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, remote),
    };
    let Some(name_end) = rest.find([',', ':']) else {
        return unchanged();
    };
    let name = &rest[..name_end];
    let plain_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if name.is_empty() || !name.chars().all(plain_name) || !rest[name_end..].starts_with(',') {
        return unchanged();
    }
    let prefix = if on_the_fly {
        format!("RCLONE_{}_", name.to_ascii_uppercase())
    } else {
        format!("RCLONE_CONFIG_{}_", name.to_ascii_uppercase())
    };
    let (mut kept, mut env) = (
        remote[..remote.len() - rest.len() + name_end].to_owned(),
        vec![],
    );
    let mut params = &rest[name_end..];
    // Each round takes `,key=value` off `params`; a value may be quoted with ' or ", a doubled
    // quote standing for itself, as rclone reads it.
    while let Some(param) = params.strip_prefix(',') {
        let key_end = param.find(['=', ',', ':']).unwrap_or(param.len());
        let key = &param[..key_end];
        let (value, len) = match param[key_end..].strip_prefix('=') {
            Some(value) => match connection_value(value) {
                Some((value, len)) => (Some(value), key_end + 1 + len),
                None => return unchanged(),
            },
            None => (None, key_end),
        };
        match value {
            Some(value) if is_secret_key(key) && key.chars().all(|c| plain_name(c) || c == '-') => {
                env.push((
                    prefix.clone() + &key.to_ascii_uppercase().replace('-', "_"),
                    value,
                ));
            }
            _ => kept.push_str(&params[..=len]),
        }
        params = &param[len..];
    }
    if !params.starts_with(':') {
        return unchanged();
    }
    kept.push_str(params);
    (kept, env)
}

/// The value at the start of `text` (up to an unquoted ',' or ':') and the bytes it took.
pub(super) fn connection_value(text: &str) -> Option<(String, usize)> {
    let Some(quote @ ('"' | '\'')) = text.chars().next() else {
        let len = text.find([',', ':']).unwrap_or(text.len());
        return Some((text[..len].to_owned(), len));
    };
    let (mut value, mut at) = (String::new(), 1);
    loop {
        let end = at + text[at..].find(quote)?;
        value.push_str(&text[at..end]);
        if text[end + 1..].starts_with(quote) {
            value.push(quote);
            at = end + 2;
        } else {
            return Some((value, end + 1));
        }
    }
}

/// A connection-string key or flag name whose value is a secret.
pub(super) fn is_secret_key(key: &str) -> bool {
    let key = key.trim_start_matches('-').to_ascii_lowercase();
    let words = ["pass", "secret", "token", "credentials"];
    words.iter().any(|w| key.contains(w)) || key == "key" || key.ends_with("_key")
}
