//! Real rclone remotes for the integration tests: a local folder, and a temp folder served on
//! 127.0.0.1 by `rclone serve sftp`, `rclone serve webdav` or Debian's Samba `smbd`. Each one
//! has passed a real rclone round trip before a test gets it; dropping it kills its server.
//!
//! `spec` is an on-the-fly rclone remote (`:backend,option=value:path`), so musync needs no
//! rclone config. `envs()` still points rclone at an empty private config file: the tester's own
//! rclone.conf then cannot leak in, and rclone prints no "config file not found" notice.
//! Everything a server writes (host keys, Samba's passdb and state, logs) stays in the temp dir.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{run, stderr};

const USER: &str = "musync";
const PASSWORD: &str = "musync-secret";
/// How long a server may take to listen, and to let go of its port once killed.
const READY: Duration = Duration::from_secs(20);
/// rclone flags for tests: fail soon rather than retry a dead sftp server for ~11 s (rclone's
/// default), and never hang on a server that accepts but does not answer. A few low-level
/// retries stay: a WebDAV server may answer 423 Locked when two uploads make one folder at once,
/// and a retry is how rclone gets past that.
pub const FAIL_FAST: &str = "--retries 1 --low-level-retries 3 --contimeout 5s --timeout 10s";

/// A standalone Samba serving `{dir}` as the share `music`, its own state kept in `{state}`.
const SMB_CONF: &str = "[global]
server role = standalone server
smb ports = {port}
# IPv4 only: with [::1] also bound, smbd would run on, unnoticed, if 127.0.0.1:{port} were taken.
interfaces = 127.0.0.1
bind interfaces only = yes
disable netbios = yes
load printers = no
disable spoolss = yes
printcap name = /dev/null
passdb backend = tdbsam:{state}/passdb
lock directory = {state}
state directory = {state}
cache directory = {state}
pid directory = {state}
private dir = {state}
binddns dir = {state}
ncalrpc dir = {state}/rpc
log file = {state}/log
[music]
path = {dir}
read only = no
force user = root
# Else every file gets an owner-execute bit (the DOS archive flag).
map archive = no
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Local,
    Sftp,
    Webdav,
    Smb,
}

pub fn all() -> [Kind; 4] {
    [Kind::Local, Kind::Sftp, Kind::Webdav, Kind::Smb]
}

pub struct Remote {
    pub kind: Kind,
    /// What to pass as musync's `--remote`.
    pub spec: String,
    /// Where the remote's files land on this machine.
    pub dir: PathBuf,
    port: u16,
    server: Option<Child>,
    temp: tempfile::TempDir,
}

impl Remote {
    pub fn start(kind: Kind) -> Remote {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("files");
        fs::create_dir(&dir).unwrap();
        for file in ["rclone.conf", "authorized_keys"] {
            fs::write(temp.path().join(file), "").unwrap();
        }
        let (spec, port, server) = (String::new(), 0, None);
        let mut remote = Remote {
            kind,
            spec,
            dir,
            port,
            server,
            temp,
        };
        // A port the OS just handed out is free unless a parallel test grabs it first: then the
        // server exits at once and another port is tried.
        for attempt in 1.. {
            let any = TcpListener::bind("127.0.0.1:0").unwrap();
            remote.port = any.local_addr().unwrap().port();
            drop(any);
            match remote.spawn() {
                Ok(()) => break,
                Err(log) => assert!(attempt < 5, "{kind:?} server keeps exiting:\n{log}"),
            }
        }
        if kind == Kind::Smb {
            // Samba keeps its own password for a Unix user; root is the one user sure to exist.
            let answers = remote.temp.path().join("smbpasswd.txt");
            fs::write(&answers, format!("{PASSWORD}\n{PASSWORD}\n")).unwrap();
            let mut smbpasswd = Command::new(tool("smbpasswd", "samba"));
            smbpasswd
                .args(["-s", "-a", "root", "-c"])
                .arg(remote.smb_conf());
            run(smbpasswd.stdin(File::open(answers).unwrap()));
        }
        let obscured = run(remote.rclone().args(["obscure", PASSWORD])).stdout;
        let pass = String::from_utf8(obscured).unwrap().trim().to_owned();
        let (dir, port) = (remote.dir.display().to_string(), remote.port);
        remote.spec = match kind {
            Kind::Local => dir,
            // Naming the shell and hash commands skips rclone's probing of them, which prints
            // "Can't save config" notices for an on-the-fly remote; rclone's server runs both.
            Kind::Sftp => format!(
                ":sftp,host=127.0.0.1,port={port},user={USER},pass={pass},shell_type=unix,\
                 md5sum_command=md5sum,sha1sum_command=sha1sum:"
            ),
            // A URL inside a connection string must be quoted, for its colons.
            Kind::Webdav => format!(
                ":webdav,url='http://127.0.0.1:{port}/',vendor=other,user={USER},pass={pass}:"
            ),
            Kind::Smb => format!(":smb,host=127.0.0.1,port={port},user=root,pass={pass}:music"),
        };
        remote.check_round_trip();
        remote
    }

    /// Kill the server (the Local kind has none) and wait until its port refuses connections.
    pub fn stop(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        server.kill().unwrap();
        server.wait().unwrap();
        // smbd's forked workers leave by themselves once their parent is gone.
        let deadline = Instant::now() + READY;
        while TcpStream::connect(self.addr()).is_ok() {
            assert!(Instant::now() < deadline, "{:?} still up", self.kind);
            sleep(Duration::from_millis(20));
        }
    }

    /// Start the server again on the same port and folder.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY;
        while let Err(log) = self.spawn() {
            assert!(Instant::now() < deadline, "no restart:\n{log}");
            sleep(Duration::from_millis(200));
        }
        self.check_round_trip();
    }

    /// The server's process id (the Local kind has none): to stop it with SIGSTOP, say.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// Environment for every rclone (and musync) run against this remote.
    pub fn envs(&self) -> Vec<(String, String)> {
        let config = self.temp.path().join("rclone.conf");
        vec![("RCLONE_CONFIG".to_owned(), config.display().to_string())]
    }

    /// rclone set up for this remote.
    pub fn rclone(&self) -> Command {
        let mut cmd = Command::new(tool("rclone", "rclone"));
        crate::util::isolate(&mut cmd);
        cmd.envs(self.envs()).stdin(Stdio::null());
        cmd
    }

    /// The rclone path of `rel` inside the remote.
    pub fn path(&self, rel: &str) -> String {
        let sep = if self.spec.ends_with(':') { "" } else { "/" };
        format!("{}{sep}{rel}", self.spec)
    }

    /// The remote's files as rclone lists them, sorted.
    pub fn ls(&self) -> Vec<String> {
        let out = self.rclone_ok(&["lsjson", "-R", "--files-only", &self.spec]);
        let json: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        let mut paths: Vec<String> = json
            .iter()
            .map(|e| e["Path"].as_str().unwrap().into())
            .collect();
        paths.sort();
        paths
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn log(&self) -> String {
        fs::read_to_string(self.temp.path().join("server.log")).unwrap_or_default()
    }

    fn rclone_out(&self, args: &[&str]) -> Output {
        self.rclone()
            .args(FAIL_FAST.split(' '))
            .args(args)
            .output()
            .unwrap()
    }

    fn rclone_ok(&self, args: &[&str]) -> Output {
        let out = self.rclone_out(args);
        let (err, log) = (stderr(&out), self.log());
        assert!(
            out.status.success(),
            "rclone {args:?} failed: {err}\nserver log:\n{log}"
        );
        out
    }

    /// List, upload, see the file land in `dir`, delete: what musync needs from a remote.
    fn check_round_trip(&self) {
        let probe = self.temp.path().join("probe");
        let landed = self.dir.join("musync-probe");
        fs::write(&probe, "probe").unwrap();
        self.rclone_ok(&["lsjson", &self.spec]);
        let target = self.path("musync-probe");
        self.rclone_ok(&["copyto", probe.to_str().unwrap(), &target]);
        assert_eq!(fs::read_to_string(&landed).unwrap(), "probe");
        self.rclone_ok(&["deletefile", &target]);
        assert!(!landed.exists(), "{:?} did not delete", self.kind);
    }

    /// Start the server on `self.port` and wait until it accepts connections; `Err(its log)` if
    /// it exited first (the port was taken).
    fn spawn(&mut self) -> Result<(), String> {
        let (temp, addr) = (self.temp.path(), self.addr().to_string());
        let mut cmd = match self.kind {
            Kind::Local => return Ok(()),
            Kind::Sftp | Kind::Webdav => {
                let mut cmd = self.rclone();
                let protocol = format!("{:?}", self.kind).to_lowercase();
                cmd.args(["serve", &protocol, "--addr", &addr])
                    .arg(&self.dir);
                cmd.args(["--user", USER, "--pass", PASSWORD]);
                // Tests change the served folder behind the server's back (a peer edited on
                // the NAS itself): rclone's directory cache (5 min by default) would hide that.
                cmd.args(["--dir-cache-time", "0s"]);
                if self.kind == Kind::Sftp {
                    // Else it trusts ~/.ssh/authorized_keys and keeps host keys in ~/.cache.
                    cmd.arg("--authorized-keys")
                        .arg(temp.join("authorized_keys"));
                    cmd.arg("--cache-dir").arg(temp.join("cache"));
                }
                cmd
            }
            Kind::Smb => {
                let uid = fs::metadata("/proc/self").unwrap().uid();
                assert_eq!(uid, 0, "the Smb remote needs root: smbd must run as root");
                // No process group of its own, so a Ctrl-C of the tests stops it too.
                let mut cmd = Command::new(tool("smbd", "samba"));
                cmd.args(["--foreground", "--no-process-group", "--debug-stdout", "-s"]);
                cmd.arg(self.smb_conf()).stdin(Stdio::null());
                cmd
            }
        };
        let mut log = File::options();
        let log = log
            .create(true)
            .append(true)
            .open(temp.join("server.log"))
            .unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        let mut server = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let deadline = Instant::now() + READY;
        loop {
            if let Some(status) = server.try_wait().unwrap() {
                return Err(format!("{cmd:?}: {status}\n{}", self.log()));
            }
            if TcpStream::connect(self.addr()).is_ok() {
                self.server = Some(server);
                return Ok(());
            }
            if Instant::now() > deadline {
                server.kill().unwrap();
                server.wait().unwrap();
                panic!("{cmd:?} not listening after {READY:?}:\n{}", self.log());
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Samba's config for this port, with every path in the temp dir.
    fn smb_conf(&self) -> PathBuf {
        let state = self.temp.path().join("samba");
        fs::create_dir_all(&state).unwrap();
        let conf = SMB_CONF
            .replace("{port}", &self.port.to_string())
            .replace("{state}", &state.display().to_string())
            .replace("{dir}", &self.dir.display().to_string());
        let path = self.temp.path().join("smb.conf");
        fs::write(&path, conf).unwrap();
        path
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// The rclone binaries musync is tested against: Debian's (1.60, on PATH) and the current release
/// that scripts/lib/install.sh puts in a folder of its own. Tests hand one to musync through
/// `MUSYNC_RCLONE`. A missing one fails the test under `CI=true`; elsewhere it is left out with a
/// note, so a developer without it still runs the rest.
pub fn rclones() -> Vec<PathBuf> {
    let debian = tool("rclone", "rclone");
    let current = current_rclone();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut found = vec![debian];
    if current.is_file() {
        found.push(current);
    } else if ci {
        panic!("{} is missing: scripts/test installs it", current.display());
    } else {
        eprintln!(
            "note: {} is missing (scripts/test installs it); testing Debian's rclone only",
            current.display()
        );
    }
    found
}

/// Where scripts/lib/install.sh installs the current rclone: read from that script, so that the
/// version lives in one place.
fn current_rclone() -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/install.sh");
    let text = fs::read_to_string(&script).unwrap();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("RCLONE_CURRENT_VERSION="))
        .unwrap_or_else(|| panic!("no RCLONE_CURRENT_VERSION= in {}", script.display()));
    PathBuf::from(format!("/opt/musync-test/rclone-{version}/bin/rclone"))
}

/// Where `name` is installed; Debian puts smbd in /usr/sbin, which a non-root PATH may lack.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]);
    dirs.map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: scripts/test installs it (apt package {package})")
        })
}

#[test]
fn every_remote_round_trips() {
    let rel = "Sub dir/01 # Café ♫ 🎵.txt";
    for kind in all() {
        let started = Instant::now();
        let mut remote = Remote::start(kind);
        let source = remote.temp.path().join("source.txt");
        fs::write(&source, "round trip").unwrap();
        remote.rclone_ok(&["copyto", source.to_str().unwrap(), &remote.path(rel)]);
        assert_eq!(remote.ls(), [rel], "{kind:?}");
        let landed = fs::read_to_string(remote.dir.join(rel)).unwrap();
        assert_eq!(landed, "round trip", "{kind:?}");
        let up = started.elapsed();
        remote.stop();
        if kind != Kind::Local {
            let out = remote.rclone_out(&["lsjson", &remote.spec]);
            assert!(!out.status.success(), "{kind:?} still lists while stopped");
        }
        remote.restart();
        assert_eq!(remote.ls(), [rel], "{kind:?} after restart");
        let down_up = started.elapsed() - up;
        eprintln!("{kind:?}: start + round trip {up:?}, stop + restart {down_up:?}");
    }
}
