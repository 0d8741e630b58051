//! The web server as a real process on loopback: it keeps answering
//! `/healthz` and the UI while more slow sockets than it has file
//! descriptors trickle one byte a second at it, and it answers only to
//! the Host names it may be reached by (DNS rebinding).

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{BIN, Proc, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDLE: &str = r#"
local Idle = swarmer.user { name = "Idle", wait = swarmer.constant(1), host = "http://127.0.0.1:9" }
Idle:task(function(self) end)
"#;

/// The master's descriptor limit, and more slow sockets than that.
const NOFILE: u32 = 256;
const SLOW_SOCKETS: usize = 320;
/// What a health probe may take while the server is under pressure.
const PROBE_LIMIT: Duration = Duration::from_secs(2);

/// `swarmer --master` with its UI on a free loopback port, under
/// `ulimit -n nofile`; returns it and the UI's "host:port".
fn start_master(dir: &TempDir, nofile: u32, extra: &[&str]) -> (Proc, String) {
    let script = dir.write("idle.lua", IDLE);
    let mut cmd = Command::new("sh");
    // `exec` so the limit and the process group are the master's own.
    cmd.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(["--master", "--master-bind-host", "127.0.0.1"])
        .args(["--master-bind-port", "0", "-f", &script])
        .args(["--web-host", "127.0.0.1", "--web-port", "0"])
        .args(extra)
        .current_dir(dir.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("SWARMER_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    let proc = Proc::spawn("master", cmd);
    let line = proc.expect_line(Duration::from_secs(20), "web UI at http://");
    let addr = line
        .split("web UI at http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (proc, addr)
}

/// One request on a fresh connection; (status line, whole answer).
async fn request(addr: &str, path: &str, host: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.lines().next().unwrap_or_default().to_string();
    Ok((status, text))
}

/// `request` within [`PROBE_LIMIT`], panicking with what went wrong.
async fn probe(addr: &str, path: &str) -> Duration {
    let started = Instant::now();
    let outcome = tokio::time::timeout(PROBE_LIMIT, request(addr, path, addr)).await;
    let (status, text) = match outcome {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => panic!("GET {path} failed under pressure: {e}"),
        Err(_) => panic!("GET {path} took over {PROBE_LIMIT:?} under pressure"),
    };
    assert!(status.contains(" 200 "), "GET {path}: {text}");
    started.elapsed()
}

/// A slowloris client: sends a request head one byte a second and never
/// finishes it, reconnecting whenever the server closes the socket.
async fn trickle(addr: String, connects: Arc<AtomicUsize>, stop: Arc<AtomicBool>) {
    let head = b"GET /api/v1/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".repeat(4);
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr)).await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        connects.fetch_add(1, Ordering::Relaxed);
        for byte in head.iter() {
            if stop.load(Ordering::Relaxed) || stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_the_ui_answer_with_more_slow_sockets_than_descriptors() {
    let dir = TempDir::new("web-pressure");
    let (_master, addr) = start_master(&dir, NOFILE, &[]);
    probe(&addr, "/healthz").await;

    let (connects, stop) = start_trickling(&addr, SLOW_SOCKETS);
    // Wait until the slow sockets outnumber the master's descriptors.
    let deadline = Instant::now() + Duration::from_secs(20);
    while connects.load(Ordering::Relaxed) < SLOW_SOCKETS {
        assert!(
            Instant::now() < deadline,
            "only {} slow sockets connected",
            connects.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Several seconds of pressure, probing all along.
    let mut slowest = Duration::ZERO;
    for round in 0..12 {
        let path = if round % 3 == 2 { "/" } else { "/healthz" };
        slowest = slowest.max(probe(&addr, path).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    eprintln!(
        "{} slow connections against ulimit -n {NOFILE}; slowest probe {slowest:?}",
        connects.load(Ordering::Relaxed)
    );
}

/// Starts slow sockets against `addr`; stop them by setting the flag.
fn start_trickling(addr: &str, count: usize) -> (Arc<AtomicUsize>, Arc<AtomicBool>) {
    let connects = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..count {
        tokio::spawn(trickle(addr.to_string(), connects.clone(), stop.clone()));
    }
    (connects, stop)
}

/// Descriptors the process holds now.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/fd: {e}"))
}

/// With only a few descriptors left over, the cap (half the limit) is
/// above what is free, so accepting fails with EMFILE: the server must
/// make room and back off, not spin or stop, and say so once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_server_backs_off_and_keeps_answering() {
    let dir = TempDir::new("web-emfile");
    // The same master's own descriptors, measured once it has served.
    let (master, addr) = start_master(&dir, 1024, &[]);
    probe(&addr, "/healthz").await;
    let base = open_descriptors(master.pid());
    drop(master);

    let spare = 8;
    let (master, addr) = start_master(&dir, (base + spare) as u32, &[]);
    let (connects, stop) = start_trickling(&addr, 40);
    let warned = master
        .wait_line_from(0, Duration::from_secs(20), |l| {
            l.contains("cannot accept connections")
        })
        .unwrap_or_else(|| {
            let n = connects.load(Ordering::Relaxed);
            panic!("no EMFILE with {base}+{spare} descriptors after {n} slow connections")
        });
    assert!(warned.1.contains("Too many open files"), "{}", warned.1);
    let mut slowest = Duration::ZERO;
    for _ in 0..6 {
        slowest = slowest.max(probe(&addr, "/healthz").await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("out of descriptors ({base}+{spare}): slowest probe {slowest:?}");
    stop.store(true, Ordering::Relaxed);
    let warnings = master
        .lines()
        .iter()
        .filter(|l| l.contains("cannot accept connections"))
        .count();
    assert!(
        warnings <= 2,
        "one warning per 10 s, not one per failure: {warnings}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_host_names_are_answered() {
    let dir = TempDir::new("web-hosts");
    let extra = ["--web-allowed-hosts", "ui.example,*.corp.example"];
    let (_master, addr) = start_master(&dir, 1024, &extra);
    let port = addr.rsplit(':').next().unwrap().to_string();
    let ask = |host: String| {
        let addr = addr.clone();
        async move { request(&addr, "/api/v1/state", &host).await.unwrap() }
    };
    for host in [
        addr.clone(),
        format!("localhost:{port}"),
        format!("ui.example:{port}"),
        "UI.example".to_string(),
        format!("a.corp.example:{port}"),
        format!("10.1.2.3:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, text) = ask(host.clone()).await;
        assert!(status.contains(" 200 "), "Host {host}: {text}");
    }
    for host in [
        format!("evil.example:{port}"),
        format!("ui.example.evil.example:{port}"),
        "corp.example".to_string(),
    ] {
        let (status, text) = ask(host.clone()).await;
        assert!(status.contains(" 421 "), "Host {host}: {text}");
        assert!(text.contains("--web-allowed-hosts"), "{text}");
    }
    // Probes by any name still see the health check.
    let (status, _) = request(&addr, "/healthz", "evil.example").await.unwrap();
    assert!(status.contains(" 200 "), "{status}");
}
