//! Masters and workers of distributed mode as processes, and the master's
//! membership as its log lines tell it.
//!
//! The coordinator logs every change of membership at once (`worker X
//! joined …; K live`, `… lost …; K live`, `worker X left; K live`) and, once
//! per heartbeat when anything changed, a summary (`workers: K live (…), L
//! lost, U users`). These helpers read those lines back.

use std::path::Path;
use std::time::Duration;

use super::Proc;

/// A master process and the port its workers join on.
pub struct Master {
    pub proc: Proc,
    pub port: u16,
}

impl Master {
    /// `swarmer --master` on a free loopback port, plus `args`.
    pub fn start(dir: &Path, args: &[&str]) -> Master {
        Self::start_on(dir, 0, args)
    }

    /// The same on a given port (0: any free one), e.g. to restart a master
    /// where its workers look for it.
    pub fn start_on(dir: &Path, port: u16, args: &[&str]) -> Master {
        let port_arg = port.to_string();
        let mut all = vec![
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            &port_arg,
        ];
        all.extend_from_slice(args);
        // A headless master is quiet by default; these tests read its
        // info lines (where it listens, who joined).
        if !args
            .iter()
            .any(|a| *a == "-L" || a.starts_with("--loglevel"))
        {
            all.extend_from_slice(&["--loglevel", "info"]);
        }
        let proc = Proc::swarmer("master", dir, &all);
        let line = proc.expect_line(Duration::from_secs(20), "waiting for workers on");
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Master { proc, port }
    }

    /// The web UI's base URL (no trailing slash), for a master started with
    /// `--web-host 127.0.0.1 --web-port 0`.
    pub fn web_url(&self) -> String {
        let line = self.proc.expect_line(Duration::from_secs(20), "web UI at ");
        let url = line
            .split("web UI at ")
            .nth(1)
            .and_then(|r| r.split(' ').next());
        url.unwrap_or_else(|| panic!("no URL in {line:?}"))
            .trim_end_matches('/')
            .to_string()
    }

    /// The live count in the last membership line so far.
    pub fn live(&self) -> Option<usize> {
        self.proc.lines().iter().rev().find_map(|l| live_in(l))
    }

    /// Waits for a membership line at or after `from` saying `n` live.
    pub fn wait_live_from(
        &self,
        from: usize,
        n: usize,
        timeout: Duration,
    ) -> Option<(usize, String)> {
        self.proc
            .wait_line_from(from, timeout, |l| live_in(l) == Some(n))
    }

    pub fn expect_live_from(&self, from: usize, n: usize, timeout: Duration) -> (usize, String) {
        self.wait_live_from(from, n, timeout)
            .unwrap_or_else(|| panic!("master never said {n} live within {timeout:?}"))
    }

    /// Waits for a summary line at or after `from` with `n` live workers and
    /// `users` users.
    pub fn expect_summary_from(
        &self,
        from: usize,
        n: usize,
        users: u32,
        timeout: Duration,
    ) -> (usize, String) {
        self.proc
            .wait_line_from(from, timeout, |l| {
                l.contains("workers: ") && live_in(l) == Some(n) && users_in(l) == Some(users)
            })
            .unwrap_or_else(|| {
                panic!("master never said {n} live with {users} users within {timeout:?}")
            })
    }

    /// Every live count the master logged from line `from` on.
    pub fn live_counts_from(&self, from: usize) -> Vec<usize> {
        self.proc
            .lines()
            .iter()
            .skip(from)
            .filter_map(|l| live_in(l))
            .collect()
    }
}

/// A worker of the master on `port`, named `id`, plus `args`.
pub fn worker(dir: &Path, port: u16, id: &str, args: &[&str]) -> Proc {
    let port = port.to_string();
    let mut all = vec![
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        &port,
    ];
    if !id.is_empty() {
        all.extend_from_slice(&["--worker-id", id]);
    }
    all.extend_from_slice(args);
    Proc::swarmer(&format!("worker {id}"), dir, &all)
}

/// The live-worker count a membership line states, if it is one: `…; K
/// live` or `workers: K live …`.
pub fn live_in(line: &str) -> Option<usize> {
    if let Some((_, rest)) = line.split_once("workers: ") {
        return rest.split(' ').next()?.parse().ok();
    }
    let before = line.trim_end().strip_suffix(" live")?;
    before.rsplit(' ').next()?.parse().ok()
}

/// The user count of a summary line (`…, U users`).
pub fn users_in(line: &str) -> Option<u32> {
    let (_, rest) = line.split_once("workers: ")?;
    let before = rest.trim_end().strip_suffix(" users")?;
    before.rsplit(' ').next()?.parse().ok()
}

/// The lost count of a summary line (`…, L lost, …`).
pub fn lost_in(line: &str) -> Option<usize> {
    let (_, rest) = line.split_once("workers: ")?;
    let (before, _) = rest.split_once(" lost")?;
    before.rsplit(' ').next()?.parse().ok()
}
