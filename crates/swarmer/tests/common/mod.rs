//! Helpers shared by the end-to-end tests: the real `swarmer` binary run as
//! child processes on loopback, watched through their output.
//!
//! Every process gets its own process group and is killed with it when its
//! [`Proc`] is dropped, so a failing test leaves nothing behind. Output is
//! read by background threads into a line log (colours stripped), which
//! tests poll with deadlines instead of sleeping; when a test panics, the
//! tail of every process's output is printed to explain why.
//!
//! Use it from a test file with `mod common;`. Not every test file uses
//! every helper, hence the `dead_code` allowance. Set `SWARMER_TEST_ECHO=1`
//! to see the output of passing tests too.
#![allow(dead_code)]

pub mod cluster;
pub mod raw;
pub mod relay;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_swarmer");

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

#[derive(Default)]
struct LogState {
    lines: Vec<(Stream, String)>,
    /// Streams that reached end of file.
    closed: u8,
}

/// Lines a process printed so far, appended by reader threads.
#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    grew: Condvar,
}

impl Log {
    fn push(&self, stream: Stream, line: String) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.lines.push((stream, line));
        self.grew.notify_all();
    }

    fn close(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.closed += 1;
        self.grew.notify_all();
    }
}

/// A running `swarmer` (or any) process in its own process group.
pub struct Proc {
    pub name: String,
    child: Child,
    log: Arc<Log>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts the swarmer binary with `args` in `dir`, with a clean
    /// environment as far as swarmer is concerned (no `SWARMER_*`
    /// variables, no colours).
    pub fn swarmer(name: &str, dir: &Path, args: &[&str]) -> Proc {
        Self::swarmer_with_env(name, dir, args, &[])
    }

    pub fn swarmer_with_env(name: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(dir);
        for (key, _) in std::env::vars() {
            if key.starts_with("SWARMER_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn(name, cmd)
    }

    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Log::default());
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        read_lines(out, Stream::Out, log.clone());
        read_lines(err, Stream::Err, log.clone());
        Proc {
            name: name.to_string(),
            child,
            log,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many lines were printed so far: a mark to wait for later ones.
    pub fn mark(&self) -> usize {
        self.log
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines
            .len()
    }

    /// Every line so far (both streams, in arrival order).
    pub fn lines(&self) -> Vec<String> {
        let s = self.log.state.lock().unwrap_or_else(|e| e.into_inner());
        s.lines.iter().map(|(_, l)| l.clone()).collect()
    }

    /// Standard output so far, one string.
    pub fn stdout(&self) -> String {
        let s = self.log.state.lock().unwrap_or_else(|e| e.into_inner());
        let out: Vec<&str> = s
            .lines
            .iter()
            .filter(|(st, _)| *st == Stream::Out)
            .map(|(_, l)| l.as_str())
            .collect();
        out.join("\n")
    }

    /// Waits for a line at index `from` or later for which `pred` holds;
    /// returns its index and text, or None at the deadline or when the
    /// process closed its output without printing one.
    pub fn wait_line_from(
        &self,
        from: usize,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let mut s = self.log.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = from;
        loop {
            while next < s.lines.len() {
                if pred(&s.lines[next].1) {
                    return Some((next, s.lines[next].1.clone()));
                }
                next += 1;
            }
            let now = Instant::now();
            if now >= deadline || s.closed >= 2 {
                return None;
            }
            s = self
                .log
                .grew
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Like [`Proc::wait_line_from`] for a line containing `needle`,
    /// panicking with the process's output if none comes in time.
    pub fn expect_line_from(
        &self,
        from: usize,
        timeout: Duration,
        needle: &str,
    ) -> (usize, String) {
        self.wait_line_from(from, timeout, |l| l.contains(needle))
            .unwrap_or_else(|| panic!("{}: no line with {needle:?} within {timeout:?}", self.name))
    }

    pub fn expect_line(&self, timeout: Duration, needle: &str) -> String {
        self.expect_line_from(0, timeout, needle).1
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) to the process.
    pub fn signal(&self, sig: &str) {
        send_signal(sig, &self.pid().to_string());
    }

    /// `kill -9`: no goodbye, no final report.
    pub fn kill9(&mut self) {
        self.signal("KILL");
        let _ = self.wait_exit(Duration::from_secs(5));
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status {
                return Some(status);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
                // Let the readers drain what the process printed last.
                let _ = self.wait_line_from(usize::MAX, Duration::from_secs(2), |_| false);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.status.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of output, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        let start = lines.len().saturating_sub(n);
        lines[start..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            // The whole group: nothing the process started may outlive it.
            send_signal("KILL", &format!("-{}", self.pid()));
            let _ = self.child.wait();
        }
        // SWARMER_TEST_ECHO=1 shows the output of passing tests too.
        if std::thread::panicking() || std::env::var_os("SWARMER_TEST_ECHO").is_some() {
            eprintln!(
                "----- {} (last 60 lines) -----\n{}",
                self.name,
                self.tail(60)
            );
        }
    }
}

fn send_signal(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, "--", target])
        .stderr(Stdio::null())
        .status();
}

fn read_lines(stream: impl Read + Send + 'static, which: Stream, log: Arc<Log>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(line) => log.push(which, strip_ansi(&line)),
                Err(_) => break,
            }
        }
        log.close();
    });
}

/// Removes terminal colour sequences, should a process print any.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters final-byte
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

/// A directory removed when dropped; each test works in its own.
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

    /// Writes `name` with `text` and returns its path as a string.
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

/// Holds the other tests of this binary off while one runs: end-to-end
/// tests start several processes each, and timing bounds (a worker gone
/// within 1 s) mean little on a machine busy with a neighbour's test.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A port nothing listens on right now (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A minimal HTTP GET over std: (status code, body).
pub fn http_get(url: &str) -> std::io::Result<(u16, String)> {
    http_request("GET", url, None)
}

/// A form POST (`a=1&b=2`), as Locust's UI sends to `/swarm`.
pub fn http_post_form(url: &str, form: &str) -> std::io::Result<(u16, String)> {
    http_request("POST", url, Some(form))
}

/// GET `url` and parse its body as JSON, panicking with the body if it is not.
pub fn get_json(url: &str) -> serde_json::Value {
    let (code, body) = http_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(code, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

fn http_request(method: &str, url: &str, form: Option<&str>) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("an http:// url");
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    )?;
    match form {
        Some(body) => write!(
            s,
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?,
        None => write!(s, "\r\n")?,
    }
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let code = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// The demo target on a free loopback port; counts what it served.
pub struct DemoTarget {
    pub proc: Proc,
    pub url: String,
}

impl DemoTarget {
    pub fn start(dir: &Path) -> DemoTarget {
        let proc = Proc::swarmer("demo-target", dir, &["demo-target", "--port", "0"]);
        let line = proc.expect_line(Duration::from_secs(20), "demo target listening on");
        let url = line.rsplit(' ').next().expect("address").trim().to_string();
        DemoTarget { proc, url }
    }

    /// Requests served so far (not counting these questions).
    pub fn served(&self) -> u64 {
        let (_, body) = http_get(&format!("{}/stats", self.url)).expect("GET /stats");
        let v: serde_json::Value = serde_json::from_str(&body).expect("stats json");
        v["served"].as_u64().expect("served count")
    }
}

/// Waits for `child` to exit, at most `limit`; kills it and fails the test
/// with its standard error after that.
pub fn wait_with_deadline(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "swarmer did not finish in {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Process output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
