//! A real, throwaway PostgreSQL server for tests: `initdb` and `postgres`
//! on a temp dir, listening on 127.0.0.1 and a free port, removed on drop.
//! Postgres refuses to run as root, so under root it runs as the
//! `postgres` user (`setpriv`), owning its temp dir. Without PostgreSQL
//! installed the test is skipped with a printed reason, except under
//! `CI=true`, where that is a failure (a green CI run means it was tested).
//!
//! Shared by the history crate's tests and the binary's (`#[path]`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Postgres {
    dir: PathBuf,
    child: Option<Child>,
    pub url: String,
}

/// The directory holding `initdb` and `postgres`, if installed.
fn bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    candidates.reverse();
    candidates.push(PathBuf::from("/usr/local/bin"));
    candidates.push(PathBuf::from("/usr/bin"));
    candidates
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("postgres").exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Skips (None, with a message) or, under CI, fails when PostgreSQL is missing.
pub fn start() -> Option<Postgres> {
    let Some(bin) = bin_dir() else {
        let why = "PostgreSQL (initdb, postgres) is not installed";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}; CI must test the PostgreSQL backend (apt-get install postgresql)");
        }
        eprintln!("skipping the PostgreSQL part: {why}");
        return None;
    };
    Some(Postgres::start_in(&bin))
}

impl Postgres {
    fn start_in(bin: &Path) -> Postgres {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("swarmer-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the postgres temp dir");
        let root = is_root();
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot give {} to the postgres user", dir.display());
        }
        let as_owner = |program: &Path| {
            let mut cmd = if root {
                // setpriv execs in place: the child is postgres itself.
                let mut c = Command::new("setpriv");
                c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                    .arg(program);
                c
            } else {
                Command::new(program)
            };
            cmd.stdin(Stdio::null());
            cmd
        };
        let data = dir.join("data");
        let out = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.join("log")).expect("create the postgres log");
        let child = as_owner(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let pg = Postgres {
            dir,
            child: Some(child),
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        };
        pg.wait_ready(Duration::from_secs(30));
        pg
    }

    fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            if log.contains("ready to accept connections") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "postgres did not start within {limit:?}: {}",
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Kills the server at once (a database that fails mid-run).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGQUIT: postgres's immediate shutdown, which takes its
            // backends down too (SIGKILL would orphan them).
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
