//! Unit tests of `subsonic`: the token, the URL and password rules, the answers, and the
//! token-then-password exchange against a fake server on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use super::*;

fn server(url: &str) -> Server {
    Server {
        url: base_url(url).unwrap(),
        user: "admin".to_owned(),
        password: "sesame".to_owned(),
    }
}

#[test]
fn token_is_the_subsonic_documentations_example() {
    assert_eq!(
        token("sesame", "c19b2d"),
        "26719a1196d2a940705a59634eb18eab"
    );
}

#[test]
fn salt_is_fresh_hex() {
    let (a, b) = (salt().unwrap(), salt().unwrap());
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn url_keeps_its_path_and_loses_trailing_slashes() {
    assert_eq!(base_url("http://host:4533/").unwrap(), "http://host:4533");
    assert_eq!(
        base_url("https://host/navidrome//").unwrap(),
        "https://host/navidrome"
    );
    for bad in [
        "host:4533",
        "ftp://host",
        "http://",
        "http://host/?x=1",
        "http://a b",
    ] {
        assert!(base_url(bad).is_err(), "{bad}");
    }
    let err = base_url("http://me:hunter2@host").unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn password_from_environment_first_then_file_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "s3cret \r\nsecond line\n").unwrap();
    assert_eq!(password(None, Some(&file)).unwrap(), "s3cret ");
    assert_eq!(password(Some("env".into()), Some(&file)).unwrap(), "env");
    assert!(password(Some("".into()), Some(&file)).is_err());
    assert!(
        password(None, None)
            .unwrap_err()
            .to_string()
            .contains(PASSWORD_VAR)
    );
    std::fs::write(&file, "\nx").unwrap();
    assert!(password(None, Some(&file)).is_err());
    assert!(password(None, Some(&dir.path().join("missing"))).is_err());
}

#[test]
fn debug_hides_the_password() {
    let shown = format!("{:?}", server("http://host"));
    assert!(
        shown.contains("http://host") && !shown.contains("sesame"),
        "{shown}"
    );
}

#[test]
fn answers_parse_to_status_or_one_line_cause() {
    let ok = r#"{"subsonic-response":{"status":"ok","scanStatus":{"scanning":true,"count":7}}}"#;
    assert_eq!(
        parse(200, ok),
        Ok(ScanStatus {
            scanning: true,
            count: Some(7)
        })
    );
    let failed = r#"{"subsonic-response":{"status":"failed","error":{"code":40,"message":"Wrong username or password."}}}"#;
    let failure = parse(200, failed).unwrap_err();
    assert_eq!(failure.to_string(), "wrong username or password (error 40)");
    assert!(
        parse(404, "<html>not found</html>")
            .unwrap_err()
            .to_string()
            .starts_with("HTTP 404")
    );
    assert!(parse(200, "<html></html>").is_err());
    assert!(parse(500, ok).is_err());
    assert_eq!(redact("a\nsesame b", &["sesame", ""]), "a *** b");
}

/// Answer `answers.len()` HTTP requests on loopback; return the URL and the requests.
fn fake(answers: Vec<&'static str>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/prefix/",
        listener.local_addr().unwrap().port()
    );
    let thread = std::thread::spawn(move || {
        let mut requests = Vec::new();
        for body in answers {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap();
                }
                request.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut content = vec![0; length];
            reader.read_exact(&mut content).unwrap();
            request.push_str(&String::from_utf8(content).unwrap());
            requests.push(request);
            let mut stream = reader.into_inner();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
        requests
    });
    (url, thread)
}

#[test]
fn token_first_then_password_in_the_body_for_servers_without_tokens() {
    let (url, requests) = fake(vec![
        r#"{"subsonic-response":{"status":"failed","error":{"code":10,"message":"A required parameter is missing."}}}"#,
        r#"{"subsonic-response":{"status":"ok","scanStatus":{"scanning":true,"count":0}}}"#,
    ]);
    let status = server(&url).start_scan().unwrap();
    assert_eq!(
        status,
        ScanStatus {
            scanning: true,
            count: Some(0)
        }
    );
    let requests = requests.join().unwrap();
    let first = requests[0].lines().next().unwrap();
    assert!(
        first.starts_with("GET /prefix/rest/startScan.view?u=admin&t="),
        "{first}"
    );
    let salt = first
        .split("&s=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        first.contains(&format!("&t={}&", token("sesame", salt))),
        "{first}"
    );
    assert!(!first.contains("sesame"));
    let second = &requests[1];
    assert!(
        second.starts_with("POST /prefix/rest/startScan.view HTTP/1.1"),
        "{second}"
    );
    assert!(second.ends_with(&format!(
        "u=admin&p=enc%3A{}&v=1.16.1&c=musync&f=json",
        hex(b"sesame")
    )));
}

#[test]
fn refused_connection_is_one_line_naming_the_server() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = server(&format!("http://127.0.0.1:{port}/"))
        .start_scan()
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!("subsonic server http://127.0.0.1:{port}: connection refused")
    );
}

#[test]
fn wrong_password_names_the_cause_and_no_secret() {
    let (url, _) = fake(vec![
        r#"{"subsonic-response":{"status":"failed","error":{"code":40,"message":"Wrong username or password: sesame"}}}"#,
    ]);
    let err = format!("{:#}", server(&url).start_scan().unwrap_err());
    let base = url.trim_end_matches('/');
    assert_eq!(
        err,
        format!("subsonic server {base}: wrong username or password: *** (error 40)")
    );
}
