//! Helpers for the scaling tests: the real `swarmer` binary as child
//! processes on loopback (each in its own process group, killed with it on
//! drop so a failing test leaves nothing behind), a small HTTP client for
//! the master's API, and a fake Kubernetes API server ([`fake_kube`]).
//!
//! Processes, temporary directories and polling come from `tests/common`
//! (test files declare both modules). Not every test file uses every helper.
#![allow(dead_code)]

pub mod fake_kube;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

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

pub use crate::common::{Proc, TempDir, poll};

/// Sends `sig` to `target` (a pid, or `-pgid` for a whole process group).
pub fn send_signal(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, "--", target])
        .stderr(Stdio::null())
        .status();
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
        Master::start_script(dir, IDLE_SCRIPT, extra, env)
    }

    /// As [`Master::start`], with `code` as the script.
    pub fn start_script(dir: &TempDir, code: &str, extra: &[&str], env: &[(&str, &str)]) -> Master {
        let script = dir.write("idle.lua", code);
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
        let proc = Proc::swarmer_with_env("master", dir.path(), &args, env);
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
            files: Vec::new(),
        },
        heartbeat_interval: Duration::from_millis(500),
        report_interval: Duration::from_millis(500),
        missed_heartbeats: 3,
        token: None,
        stop_timeout: Duration::from_secs(2),
        tags: vec![],
        exclude_tags: vec![],
        host: None,
        max_users: master::validate::DEFAULT_MAX_USERS,
        thresholds: vec![],
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
