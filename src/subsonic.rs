//! Asks a Subsonic server (Navidrome, gonic, supysonic…) to rescan its library, with the
//! `startScan` API call. It owns the server's password: read from the environment or a file,
//! never from the command line, and kept with the token and the salt out of every message, log
//! line and `Debug` output. It does not decide when to rescan; the caller does, after a push.

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use md5::{Digest, Md5};
use serde_json::Value;

/// The environment variable that holds the password.
pub const PASSWORD_VAR: &str = "MUSYNC_SUBSONIC_PASSWORD";

const API_VERSION: &str = "1.16.1";
const CLIENT: &str = "musync";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `startScan` only starts the scan, so a server that takes longer than this is not coming.
const TIMEOUT: Duration = Duration::from_secs(30);
/// A `startScan` answer is a few hundred bytes; anything much bigger is not one.
const MAX_ANSWER: u64 = 1 << 20;

/// A Subsonic server to rescan after a push.
pub struct Server {
    url: String,
    user: String,
    password: String,
}

/// What the server says about the scan it was asked to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ScanStatus {
    pub scanning: bool,
    /// Files scanned so far, when the server says.
    pub count: Option<u64>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The password comes from `MUSYNC_SUBSONIC_PASSWORD` if it is set, else from the first line
    /// of `password_file`.
    pub fn new(url: &str, user: &str, password_file: Option<&Path>) -> anyhow::Result<Server> {
        let url = base_url(url)?;
        let password = password(std::env::var_os(PASSWORD_VAR), password_file)
            .with_context(|| format!("subsonic server {url}"))?;
        if user.is_empty() {
            bail!("subsonic server {url}: the user name is empty");
        }
        Ok(Server {
            url,
            user: user.to_owned(),
            password,
        })
    }

    /// Ask the server to rescan. Token authentication first; a server that cannot check tokens
    /// (supysonic, LDAP users) gets the password in the body of a POST, where neither the URL
    /// nor the server's access log shows it.
    pub fn start_scan(&self) -> anyhow::Result<ScanStatus> {
        let salt = salt().with_context(|| format!("subsonic server {}", self.url))?;
        let token = token(&self.password, &salt);
        let encoded = format!("enc:{}", hex(self.password.as_bytes()));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            // A redirect would carry the token to another address; the user fixes the URL.
            .max_redirects(0)
            .user_agent(concat!("musync/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        // `.view` is what the original Subsonic requires; every other server accepts it too.
        let endpoint = format!("{}/rest/startScan.view", self.url);
        tracing::debug!("asking subsonic server {} to rescan", self.url);
        let common = [("v", API_VERSION), ("c", CLIENT), ("f", "json")];
        let by_token = agent
            .get(&endpoint)
            .query_pairs([
                ("u", self.user.as_str()),
                ("t", token.as_str()),
                ("s", salt.as_str()),
            ])
            .query_pairs(common)
            .call();
        let result = match answer(by_token) {
            Err(Failure::Api { code, .. }) if no_token_auth(code) => {
                tracing::info!(
                    "subsonic server {} does not take token authentication (error {code}); \
                     sending the password in the request body",
                    self.url
                );
                let by_password = agent.post(&endpoint).send_form(
                    [("u", self.user.as_str()), ("p", encoded.as_str())]
                        .into_iter()
                        .chain(common),
                );
                answer(by_password)
            }
            other => other,
        };
        result.map_err(|failure| {
            let cause = redact(
                &failure.to_string(),
                &[&self.password, &encoded, &token, &salt],
            );
            anyhow!("subsonic server {}: {cause}", self.url)
        })
    }
}

/// Error 41 is "token authentication not supported for LDAP users", 42 the `OpenSubsonic`
/// extension's "this authentication mechanism is not supported"; supysonic answers 10, "a
/// required parameter is missing", because it wants `p`.
fn no_token_auth(code: i64) -> bool {
    matches!(code, 10 | 41 | 42)
}

/// The configured URL without its trailing slashes, checked to be one that errors can name.
fn base_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("subsonic url {url:?} does not start with http:// or https://");
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        // Not echoed: it may hold a password.
        bail!(
            "the subsonic url must not contain a user or password; use the user setting and \
             {PASSWORD_VAR} or a password file"
        );
    }
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        bail!("subsonic url {url:?} does not start with http:// or https://");
    }
    if authority.is_empty() {
        bail!("subsonic url {url:?} has no host");
    }
    if url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
        bail!("subsonic url {url:?} must be the server's address, without a query or spaces");
    }
    Ok(url.to_owned())
}

/// The environment's value if set, else the file's first line without its line ending.
fn password(env: Option<OsString>, file: Option<&Path>) -> anyhow::Result<String> {
    let password = match (env, file) {
        (Some(value), _) => value
            .into_string()
            .map_err(|_| anyhow!("{PASSWORD_VAR} is not valid UTF-8"))?,
        (None, Some(file)) => {
            warn_if_readable_by_others(file);
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the password file {}", file.display()))?;
            text.lines().next().unwrap_or_default().to_owned()
        }
        (None, None) => bail!("no password: set {PASSWORD_VAR} or give a password file"),
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

#[cfg(unix)]
fn warn_if_readable_by_others(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(file)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the password file {} can be read by other users (chmod 600 it)",
            file.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// A fresh random salt for each call, so a token seen once cannot be told apart from noise.
fn salt() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no random numbers for the salt: {e}"))?;
    Ok(hex(&bytes))
}

/// The Subsonic token: hex of md5(password + salt).
fn token(password: &str, salt: &str) -> String {
    hex(&Md5::digest(format!("{password}{salt}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Why a call failed; its message names no secret (the caller redacts it anyway).
#[derive(Debug, PartialEq)]
enum Failure {
    /// The server answered with a Subsonic error.
    Api { code: i64, message: String },
    /// No Subsonic answer: the connection, the HTTP status or the body was wrong.
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Api { code, message } => {
                let message = message.trim().trim_end_matches('.');
                let message = match message {
                    "" => "the server refused".to_owned(),
                    _ => lowercase_first(message),
                };
                write!(f, "{message} (error {code})")?;
                if *code == 50 {
                    write!(f, "; starting a scan takes an admin user")?;
                }
                Ok(())
            }
            Failure::Other(message) => f.write_str(message),
        }
    }
}

/// "Wrong username or password" reads as a cause after a colon; "LDAP…" stays as it is.
fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => first
            .to_lowercase()
            .chain(message.chars().skip(1))
            .collect(),
        _ => message.to_owned(),
    }
}

fn answer(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<ScanStatus, Failure> {
    let mut response = response.map_err(|e| Failure::Other(transport(e)))?;
    let status = response.status().as_u16();
    if response.status().is_redirection() {
        let to = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(|l| l.split(['?', '#']).next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        return Err(Failure::Other(format!(
            "HTTP {status}: the server redirects to {to:?}; set the url to the server's address there"
        )));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(|e| {
            Failure::Other(format!(
                "HTTP {status}, reading the answer: {}",
                transport(e)
            ))
        })?;
    parse(status, &body)
}

/// The scan status from a `startScan` answer: HTTP status and body.
fn parse(status: u16, body: &str) -> Result<ScanStatus, Failure> {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let answer = &json["subsonic-response"];
    match answer["status"].as_str() {
        Some("failed") => Err(Failure::Api {
            code: answer["error"]["code"].as_i64().unwrap_or(0),
            message: answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }),
        Some("ok") if status == 200 => {
            let scan = &answer["scanStatus"];
            let scanning = match &scan["scanning"] {
                Value::Bool(b) => *b,
                Value::String(s) => s == "true",
                _ => false,
            };
            let count = match &scan["count"] {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            };
            Ok(ScanStatus { scanning, count })
        }
        _ if status != 200 => Err(Failure::Other(format!(
            "HTTP {status}{}",
            if status == 404 {
                ": no Subsonic API there; is the url the server's address?"
            } else {
                ""
            }
        ))),
        _ => Err(Failure::Other(
            "the answer is not a Subsonic one; is the url the server's address?".to_owned(),
        )),
    }
}

/// ureq's errors, in words and without the request's URL.
fn transport(error: ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
            _ => e.to_string(),
        },
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::Timeout(what) => format!("timed out ({what})"),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => "not a valid URL".to_owned(),
        ureq::Error::Tls(e) => format!("TLS: {e}"),
        ureq::Error::Rustls(e) => format!("TLS: {e}"),
        ureq::Error::BodyExceedsLimit(_) => "the answer is too big to be a Subsonic one".to_owned(),
        other => other.to_string(),
    }
}

/// One line, at most 300 characters, and none of the secrets.
fn redact(message: &str, secrets: &[&str]) -> String {
    let mut out = message.replace(['\n', '\r', '\t'], " ");
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "***");
    }
    if out.chars().count() > 300 {
        out = out.chars().take(300).chain("…".chars()).collect();
    }
    out
}

#[cfg(test)]
#[path = "subsonic_tests.rs"]
mod tests;
