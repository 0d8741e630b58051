//! Helpers for the scaling tests: the real `swarmer` binary as child
//! processes on loopback (each in its own process group, killed with it on
//! drop so a failing test leaves nothing behind), a small HTTP client for
//! the master's API, and a fake Kubernetes API server ([`fake_kube`]).
//!
//! Kept apart from `tests/common` (another suite's helpers) so the two can
//! change independently. Not every test file uses every helper.
#![allow(dead_code)]

pub mod fake_kube;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use master::{MasterConfig, MasterHandle};
use tokio_util::sync::CancellationToken;

pub const BIN: &str = env!("CARGO_BIN_EXE_swarmer");
/// How long workers may take to join or leave before a test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A script with one user type that only waits: the scaling tests care
/// about workers joining and leaving, not about load.
pub const IDLE_SCRIPT: &str = r#"
local Idle = swarmer.user { name = "Idle", wait = swarmer.constant(1), host = "http://127.0.0.1:9" }
Idle:task(function(self) end)
"#;

/// A running process in its own process group, its output kept in memory.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts the swarmer binary with no `SWARMER_*` settings but `env`.
    pub fn swarmer(name: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(dir).process_group(0);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("SWARMER_")) {
                cmd.env_remove(key);
            }
        }
        cmd.env("NO_COLOR", "1").envs(env.iter().copied());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        read_lines(child.stdout.take().unwrap(), lines.clone());
        read_lines(child.stderr.take().unwrap(), lines.clone());
        Proc {
            name: name.into(),
            child,
            lines,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The first line containing `needle`, waiting up to `timeout`.
    pub fn expect_line(&self, timeout: Duration, needle: &str) -> String {
        poll(timeout, || {
            self.lines().into_iter().find(|l| l.contains(needle))
        })
        .unwrap_or_else(|| panic!("{} never printed {needle:?}:\n{}", self.name, self.tail(30)))
    }

    pub fn signal(&self, sig: &str) {
        send_signal(sig, &self.pid().to_string());
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = poll(timeout, || self.child.try_wait().ok().flatten());
        }
        self.status
    }

    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            // The whole group: local workers are the master's children.
            send_signal("KILL", &format!("-{}", self.pid()));
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- {} (last 40 lines) -----\n{}",
                self.name,
                self.tail(40)
            );
        }
    }
}

pub fn send_signal(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, "--", target])
        .stderr(Stdio::null())
        .status();
}

fn read_lines(stream: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lines.lock().unwrap().push(strip_ansi(&line));
        }
    });
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The pids of a process's children, from /proc (to check none outlive it).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

/// Whether a process still exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("swarmer-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write file");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 request over a fresh loopback connection: (status, body).
pub fn http(
    method: &str,
    url: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    http_with(method, url, &[("Content-Type", content_type)], body)
}

/// [`http`] with any headers (authorization, origin, content type).
pub fn http_with(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("an http:// url");
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(s, "{head}Content-Length: {}\r\n\r\n{body}", body.len())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A master started from the binary, with the addresses it printed.
pub struct Master {
    pub proc: Proc,
    pub web: String,
    pub worker_port: u16,
}

impl Master {
    /// `swarmer --master` on free loopback ports with the idle script and
    /// `extra` flags; waits until it serves.
    pub fn start(dir: &TempDir, extra: &[&str], env: &[(&str, &str)]) -> Master {
        let script = dir.write("idle.lua", IDLE_SCRIPT);
        let mut args = vec![
            "--master",
            "-f",
            &script,
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            "0",
            "--web-host",
            "127.0.0.1",
            "--web-port",
            "0",
        ];
        args.extend_from_slice(extra);
        let proc = Proc::swarmer("master", dir.path(), &args, env);
        let wait = Duration::from_secs(30);
        let web_line = proc.expect_line(wait, "web UI at http://");
        let web = web_line
            .split_whitespace()
            .nth(3)
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        let port_line = proc.expect_line(wait, "waiting for workers on ");
        let worker_port = port_line
            .rsplit(':')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Master {
            proc,
            web,
            worker_port,
        }
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (code, body) =
            http("GET", &format!("{}{path}", self.web), "text/plain", "").expect("GET");
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// `PUT /api/v1/workers/scale` with this JSON body: (status, reply).
    pub fn put_scale(&self, body: &str) -> (u16, serde_json::Value) {
        let url = format!("{}/api/v1/workers/scale", self.web);
        let (code, text) = http("PUT", &url, "application/json", body).expect("PUT scale");
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (code, value)
    }

    pub fn scale(&self) -> serde_json::Value {
        self.get_json("/api/v1/workers/scale")
    }

    /// Waits until the scale status satisfies `pred`; panics with the last
    /// one seen otherwise.
    pub fn wait_scale(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) {
        let mut last = serde_json::Value::Null;
        let ok = poll(timeout, || {
            last = self.scale();
            pred(&last).then_some(())
        });
        assert!(
            ok.is_some(),
            "timed out waiting for {what}; last status: {last}"
        );
    }
}

/// A master from the library, listening for workers on a loopback port.
pub async fn library_master(shutdown: &CancellationToken) -> (MasterHandle, u16) {
    let script = script::ScriptSource {
        path: "idle.lua".into(),
        code: IDLE_SCRIPT.into(),
    };
    let info = script::inspect(&script).unwrap();
    let config = MasterConfig {
        script: protocol::ScriptText {
            path: script.path.clone(),
            code: script.code.clone(),
        },
        heartbeat_interval: Duration::from_millis(500),
        report_interval: Duration::from_millis(500),
        missed_heartbeats: 3,
        token: None,
        stop_timeout: Duration::from_secs(2),
        tags: vec![],
        exclude_tags: vec![],
        host: None,
    };
    let (handle, _) = master::start(config, info, shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(master::listener::run(
        listener,
        handle.clone(),
        shutdown.clone(),
    ));
    (handle, port)
}

pub async fn wait_connected(handle: &MasterHandle, n: usize) {
    let reached = tokio::time::timeout(WAIT, handle.wait_for(|s| s.worker_count == n)).await;
    assert!(
        reached.is_ok(),
        "timed out waiting for {n} workers; connected: {}",
        handle.snapshot().worker_count
    );
}
