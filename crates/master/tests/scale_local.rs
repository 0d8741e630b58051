//! The local scaler's process handling, with a small shell script standing
//! in for `swarmer --worker`: which flags and environment each child gets,
//! that downscaling sends SIGTERM to the newest, that a child ignoring it is
//! killed after the grace period, and that `stop_all` leaves none behind.
//! (The same churn with real workers is in the swarmer crate's tests.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use master::scale::{LocalConfig, LocalScaler, Scaler};

/// A directory of its own per test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("swarmer-scale-local-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// The stand-in worker: records its arguments and environment, and
    /// leaves on SIGTERM unless given `--stubborn`; `--crash` exits at once.
    fn fake_worker(&self) -> PathBuf {
        let script = format!(
            r#"#!/bin/sh
dir='{dir}'
id=''; prev=''
for a in "$@"; do [ "$prev" = "--worker-id" ] && id="$a"; prev="$a"; done
echo "$@" > "$dir/$id.args"
env | grep '^SWARMER_' | sort > "$dir/$id.env"
case " $* " in *" --crash "*) exit 3;; esac
case " $* " in
  *" --stubborn "*) trap 'echo term > "$dir/$id.term"' TERM;;
  *) trap 'echo term > "$dir/$id.term"; exit 0' TERM;;
esac
echo started > "$dir/$id.started"
while true; do sleep 0.05; done
"#,
            dir = self.0.display()
        );
        let path = self.0.join("fake-worker.sh");
        std::fs::write(&path, script).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
        path
    }

    fn has(&self, file: &str) -> bool {
        self.0.join(file).exists()
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.0.join(file)).unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(program: &Path) -> LocalConfig {
    let mut config = LocalConfig::new(program, "127.0.0.1", 5999);
    config.cluster_token = Some("s3cret".into());
    config.heartbeat_interval = Duration::from_millis(250);
    config.grace = Duration::from_millis(600);
    config
}

#[tokio::test]
async fn children_get_worker_flags_and_only_the_token_from_the_environment() {
    let dir = Scratch::new("flags");
    let mut config = config(&dir.fake_worker());
    config.extra_args = vec!["--cores".into(), "1".into()];
    let scaler = LocalScaler::new(config);
    scaler.scale(2).await.unwrap();
    eventually("both children", || {
        dir.has("local-1.started") && dir.has("local-2.started")
    })
    .await;
    assert_eq!(
        dir.read("local-2.args").trim(),
        "--worker --master-host 127.0.0.1 --master-port 5999 --worker-id local-2 --heartbeat-interval=250ms --cores 1"
    );
    // Only what the scaler sets: the master's own SWARMER_* settings (and
    // any swarmer.toml) must not turn a child into something else; the
    // parent pid lets it die with this process.
    assert_eq!(
        dir.read("local-1.env"),
        format!(
            "SWARMER_CLUSTER_TOKEN=s3cret\nSWARMER_CONFIG=/dev/null\nSWARMER_PARENT_PID={}\n",
            std::process::id()
        )
    );
    assert!(
        !dir.read("local-1.args").contains("s3cret"),
        "the token stays off the command line"
    );
    scaler.stop_all().await;
}

#[tokio::test]
async fn downscaling_terms_the_newest_and_ids_are_never_reused() {
    let dir = Scratch::new("churn");
    let scaler = LocalScaler::new(config(&dir.fake_worker()));
    scaler.scale(4).await.unwrap();
    let status = scaler.status().await.unwrap();
    assert_eq!(
        (status.desired, status.ready, status.warning),
        (4, Some(4), None)
    );
    eventually("four children", || {
        (1..=4).all(|i| dir.has(&format!("local-{i}.started")))
    })
    .await;

    scaler.scale(1).await.unwrap();
    let status = scaler.status().await.unwrap();
    assert_eq!((status.desired, status.ready), (1, Some(1)));
    eventually("the newest three to get SIGTERM", || {
        (2..=4).all(|i| dir.has(&format!("local-{i}.term")))
    })
    .await;
    assert!(!dir.has("local-1.term"), "the oldest stays");

    // At once back up: new ids, so a child still leaving cannot clash.
    scaler.scale(3).await.unwrap();
    assert_eq!(scaler.worker_ids().await, ["local-1", "local-5", "local-6"]);
    let status = scaler.status().await.unwrap();
    assert_eq!((status.desired, status.ready), (3, Some(3)));

    // (A child killed before its shell installs the trap leaves no mark.)
    eventually("the new children", || {
        dir.has("local-5.started") && dir.has("local-6.started")
    })
    .await;
    scaler.stop_all().await;
    assert!(scaler.worker_ids().await.is_empty());
    for id in ["local-1", "local-5", "local-6"] {
        assert!(dir.has(&format!("{id}.term")), "{id} was told to leave");
    }
    assert_eq!(scaler.status().await.unwrap().desired, 0);
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = Scratch::new("stubborn");
    let mut config = config(&dir.fake_worker());
    config.extra_args = vec!["--stubborn".into()];
    let scaler = LocalScaler::new(config);
    scaler.scale(1).await.unwrap();
    eventually("the child", || dir.has("local-1.started")).await;
    let started = Instant::now();
    scaler.stop_all().await;
    let took = started.elapsed();
    assert!(dir.has("local-1.term"), "it got SIGTERM first");
    assert!(
        took >= Duration::from_millis(500),
        "killed only after the grace period ({took:?})"
    );
    assert!(took < Duration::from_secs(5), "but killed ({took:?})");
}

#[tokio::test]
async fn children_that_exit_on_their_own_are_reaped_and_reported() {
    let dir = Scratch::new("crash");
    let mut config = config(&dir.fake_worker());
    config.extra_args = vec!["--crash".into()];
    let scaler = LocalScaler::new(config);
    scaler.scale(2).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = scaler.status().await.unwrap();
        if status.ready == Some(0) || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((status.desired, status.ready), (2, Some(0)));
    let warning = status.warning.expect("a warning says they exited");
    assert!(
        warning.starts_with("2 of 2 local worker processes have exited"),
        "{warning}"
    );
}

#[tokio::test]
async fn a_missing_program_is_a_clear_error() {
    let scaler = LocalScaler::new(config(Path::new("/nonexistent/swarmer")));
    let err = scaler.scale(1).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot start a worker process (/nonexistent/swarmer)"),
        "{err}"
    );
}
