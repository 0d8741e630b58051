//! Autoscaling on generator saturation, end to end: `swarmer --master
//! --autoscale` with real worker processes limited to one core each,
//! running a script whose users only burn CPU. The master adds workers
//! while they are hot, gives the newcomers users, and scales back after
//! the run; a manual scale pauses it until the next run; the Kubernetes
//! scaler's requests go to a fake API server; bad flags are refused; and a
//! run with a saturated worker says so in its summary.
//!
//! The marks are low (the machine running the tests is shared, so a busy
//! worker may get well under a whole core) and the windows short, so every
//! test is bounded; every wait has a deadline.

mod common;
mod support;

use std::time::Duration;

use serde_json::Value;
use support::fake_kube::FakeKube;
use support::{BIN, Master, Proc, TempDir, WAIT, http};

/// Users that only burn CPU: each task spins a Lua loop, no waiting.
const BUSY_SCRIPT: &str = r#"
local Busy = swarmer.user { name = "Busy", wait = swarmer.constant(0), host = "http://127.0.0.1:9" }
Busy:task(function(self)
  local x = 0
  for i = 1, 300000 do x = x + i % 7 end
end)
"#;

/// Low marks and short windows: a busy worker may get a small share of a
/// core on a shared, loaded test machine (these tests run side by side),
/// so 5% counts as hot here; an idle one uses well under 1%.
const AUTOSCALE_FLAGS: &[&str] = &[
    "--autoscale-high",
    "5%",
    "--autoscale-target",
    "2%",
    "--autoscale-low",
    "1%",
    "--autoscale-window",
    "2s",
    "--heartbeat-interval",
    "500ms",
    "--cores",
    "1",
    "--loglevel",
    "info",
];

fn start(dir: &TempDir, extra: &[&str], env: &[(&str, &str)]) -> Master {
    let mut flags = AUTOSCALE_FLAGS.to_vec();
    flags.extend_from_slice(extra);
    Master::start_script(dir, BUSY_SCRIPT, &flags, env)
}

fn swarm(master: &Master, users: u32) {
    let url = format!("{}/swarm", master.web);
    let body = format!("user_count={users}&spawn_rate=50");
    let (code, reply) =
        http("POST", &url, "application/x-www-form-urlencoded", &body).expect("POST /swarm");
    assert_eq!(code, 200, "{reply}");
}

fn stop(master: &Master) {
    let (code, reply) = http("GET", &format!("{}/stop", master.web), "text/plain", "").unwrap();
    assert_eq!(code, 200, "{reply}");
}

fn messages(scale: &Value) -> Vec<String> {
    let events = scale["autoscale"]["events"].as_array().cloned();
    events
        .unwrap_or_default()
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn metrics(master: &Master) -> String {
    let (code, text) = http("GET", &format!("{}/metrics", master.web), "text/plain", "").unwrap();
    assert_eq!(code, 200);
    text
}

/// As many live workers as asked for, each running users: the newcomers
/// were given their share.
fn all_workers_busy(master: &Master) -> bool {
    let n = master.scale()["desired"].as_u64().unwrap_or(0) as usize;
    let state = master.get_json("/stats/requests");
    let workers = state["workers"].as_array().cloned().unwrap_or_default();
    let live: Vec<&Value> = workers.iter().filter(|w| w["state"] != "lost").collect();
    live.len() == n && live.iter().all(|w| w["user_count"].as_u64() > Some(0))
}

#[test]
fn hot_workers_are_added_to_and_removed_after_the_run() {
    let dir = TempDir::new("autoscale-local");
    let flags = ["--scaler", "local", "--workers", "1", "--autoscale", "1:3"];
    let mut master = start(&dir, &flags, &[]);
    master.wait_scale("1 worker", WAIT, |s| s["connected"] == 1);
    let policy = &master.scale()["autoscale"]["policy"];
    assert_eq!(
        (policy["min"].as_u64(), policy["max"].as_u64()),
        (Some(1), Some(3))
    );

    swarm(&master, 6);
    // One busy worker at 5%+ wants ceil(5 / 2) = 3 or more: up to MAX.
    master.wait_scale("more workers", WAIT, |s| {
        s["desired"].as_u64() > Some(1) && s["connected"] == s["desired"]
    });
    let scale = master.scale();
    let first = messages(&scale).first().cloned().unwrap_or_default();
    assert!(
        first.starts_with("scaled 1 → ") && first.contains("worker CPU"),
        "{scale}"
    );
    assert!(
        scale["desired"].as_u64() <= Some(3),
        "never above MAX: {scale}"
    );
    let busy = support::poll(WAIT, || all_workers_busy(&master).then_some(()));
    assert!(
        busy.is_some(),
        "users rebalanced onto the new workers: {}",
        master.get_json("/stats/requests")["workers"]
    );
    let text = metrics(&master);
    assert!(
        text.contains("swarmer_autoscale_decisions_total{direction=\"up\"} ")
            && !text.contains("swarmer_autoscale_decisions_total{direction=\"up\"} 0"),
        "{text}"
    );
    assert!(text.contains("swarmer_autoscale_target_workers "), "{text}");
    let (_, report) = http(
        "GET",
        &format!("{}/stats/report", master.web),
        "text/plain",
        "",
    )
    .unwrap();
    assert!(
        report.contains("<h2>Autoscaling</h2>"),
        "the report lists the decisions"
    );
    assert!(report.contains(&first), "{first} in the report");

    stop(&master);
    master.wait_scale("back to MIN after the run", WAIT, |s| {
        s["desired"] == 1 && s["connected"] == 1
    });
    let scale = master.scale();
    let last = messages(&scale).last().cloned().unwrap_or_default();
    assert!(last.ends_with(" → 1: the run ended"), "{scale}");
    assert!(messages(&scale).len() >= 2, "{scale}");
    assert!(
        metrics(&master).contains("swarmer_autoscale_decisions_total{direction=\"down\"} 1"),
        "one scale-down counted"
    );
    // The decisions are in the log too.
    let logs = master.proc.lines().join("\n");
    assert!(logs.contains(&first), "logged: {first}");

    master.proc.signal("TERM");
    let status = master.proc.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "master exit: {status:?}"
    );
}

#[test]
fn a_manual_scale_pauses_autoscaling_until_the_next_run() {
    let dir = TempDir::new("autoscale-pause");
    let flags = ["--scaler", "local", "--workers", "1", "--autoscale", "1:3"];
    let mut master = start(&dir, &flags, &[]);
    master.wait_scale("1 worker", WAIT, |s| s["connected"] == 1);
    swarm(&master, 4);
    let (code, reply) = master.put_scale(r#"{"workers": 2}"#);
    assert_eq!(code, 200, "{reply}");
    let scale = master.scale();
    let paused = scale["autoscale"]["paused"].as_str().unwrap_or_default();
    assert!(
        paused.contains("manual scale to 2") && paused.contains("until the next run"),
        "{scale}"
    );
    master.wait_scale("2 workers", WAIT, |s| s["connected"] == 2);
    // Hot or not, the autoscaler leaves the count alone for several
    // windows (2 s each), and when the run ends.
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(master.scale()["desired"], 2, "{}", master.scale());
    }
    assert!(metrics(&master).contains("swarmer_autoscale_paused 1"));
    stop(&master);
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(master.scale()["desired"], 2, "{}", master.scale());
    }
    assert!(messages(&master.scale()).is_empty(), "{}", master.scale());

    // The next run resumes it: when that run ends, back to MIN.
    swarm(&master, 2);
    master.wait_scale("resumed", WAIT, |s| s["autoscale"]["paused"].is_null());
    stop(&master);
    master.wait_scale("back to MIN", WAIT, |s| {
        s["desired"] == 1 && s["connected"] == 1
    });
    master.proc.signal("TERM");
    let status = master.proc.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "master exit: {status:?}"
    );
}

#[test]
fn the_kubernetes_scaler_is_asked_through_the_scale_subresource() {
    let dir = TempDir::new("autoscale-kube");
    let kube = FakeKube::start(dir.path(), "load", "swarmer-worker", 1);
    let kubeconfig = kube.kubeconfig.to_string_lossy().into_owned();
    let flags = [
        "--scaler",
        "kubernetes",
        "--worker-deployment",
        "swarmer-worker",
        "--autoscale",
        "1:2",
    ];
    let mut master = start(&dir, &flags, &[("KUBECONFIG", &kubeconfig)]);
    kube.run_workers(BIN, master.worker_port, &["--cores", "1"]);
    master.wait_scale("1 worker", WAIT, |s| s["connected"] == 1);
    swarm(&master, 4);
    master.wait_scale("2 workers", WAIT, |s| {
        s["connected"] == 2 && s["desired"] == 2
    });
    stop(&master);
    master.wait_scale("1 worker again", WAIT, |s| {
        s["desired"] == 1 && s["connected"] == 1
    });
    let patches = kube.patches();
    let bodies: Vec<&str> = patches.iter().map(|p| p.body.as_str()).collect();
    assert_eq!(
        bodies,
        [r#"{"spec":{"replicas":2}}"#, r#"{"spec":{"replicas":1}}"#]
    );
    for p in &patches {
        assert_eq!(
            p.path,
            "/apis/apps/v1/namespaces/load/deployments/swarmer-worker/scale?&fieldManager=swarmer"
        );
        assert_eq!(
            p.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
    }
    master.proc.signal("TERM");
    let status = master.proc.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "master exit: {status:?}"
    );
}

/// The flags alone: exit 2 and the message, before anything starts.
fn refused(args: &[&str]) -> String {
    let dir = TempDir::new("autoscale-flags");
    let script = dir.write("busy.lua", BUSY_SCRIPT);
    let mut all = vec![
        "-f",
        script.as_str(),
        "--web-port",
        "0",
        "--master-bind-port",
        "0",
    ];
    all.extend_from_slice(args);
    let mut proc = Proc::swarmer("refused", dir.path(), &all);
    let status = proc
        .wait_exit(Duration::from_secs(30))
        .expect("exits by itself");
    assert_eq!(status.code(), Some(2), "{}", proc.tail(10));
    proc.lines().join("\n")
}

#[test]
fn autoscale_flags_that_cannot_work_are_refused_at_startup() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--master", "--scaler", "local", "--autoscale", "5:2"],
            "--autoscale 5:2: MIN (5) is more than MAX (2)",
        ),
        (
            &["--master", "--scaler", "local", "--autoscale", "1:200"],
            "--autoscale 1:200: MAX (200) is more than --max-workers 100",
        ),
        (
            &["--master", "--autoscale", "1:4"],
            "--autoscale 1:4 needs a scaler to add workers: --scaler local or --scaler kubernetes",
        ),
        (
            &["--master", "--scaler", "local", "--autoscale", "two:4"],
            "--autoscale two:4: expected MIN:MAX",
        ),
        (&["--autoscale", "1:4"], "so does --autoscale"),
        (
            &[
                "--master",
                "--scaler",
                "local",
                "--autoscale",
                "1:4",
                "--autoscale-high",
                "50%",
            ],
            "--autoscale-low (30%) < --autoscale-target (60%) < --autoscale-high (50%) must hold",
        ),
        (
            &[
                "--master",
                "--scaler",
                "local",
                "--workers",
                "6",
                "--autoscale",
                "1:4",
            ],
            "--workers 6 is outside --autoscale 1:4",
        ),
    ];
    for (args, expected) in cases {
        let text = refused(args);
        assert!(text.contains(expected), "{args:?}: {text}");
    }
}

#[test]
fn a_headless_run_lists_its_decisions_in_the_summary_and_the_html_report() {
    let dir = TempDir::new("autoscale-headless");
    let script = dir.write("busy.lua", BUSY_SCRIPT);
    let html = dir.path().join("report.html");
    let html_arg = html.to_string_lossy().into_owned();
    let db = dir.path().join("history.db");
    let db_arg = db.to_string_lossy().into_owned();
    let mut args = vec![
        "--history",
        &db_arg,
        "--master",
        "-f",
        script.as_str(),
        "--master-bind-port",
        "0",
        "--scaler",
        "local",
        "--workers",
        "1",
        "--expect-workers",
        "1",
        "--autoscale",
        "1:2",
        "--headless",
        "-u",
        "4",
        "-r",
        "50",
        "-t",
        "15s",
        "--html",
        &html_arg,
    ];
    args.extend_from_slice(AUTOSCALE_FLAGS);
    let mut proc = Proc::swarmer("headless", dir.path(), &args);
    let status = proc
        .wait_exit(Duration::from_secs(120))
        .expect("the run ends");
    let text = proc.lines().join("\n");
    // No request is made (the users only burn CPU): exit 1 says so.
    assert!(status.code().is_some(), "{text}");
    assert!(
        text.contains("Autoscaling: scaled 1 → 2: "),
        "the summary lists the decision: {text}"
    );
    let report = std::fs::read_to_string(&html).expect("the HTML report");
    assert!(report.contains("scaled 1 → 2: "), "the report lists it");

    // The run history keeps the decision with the run.
    let history = |args: &[&str]| {
        let mut all = vec!["history", "--history", db_arg.as_str()];
        all.extend_from_slice(args);
        let out = std::process::Command::new(BIN)
            .args(&all)
            .env("NO_COLOR", "1")
            .output()
            .expect("swarmer history runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{all:?}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let shown: Value = serde_json::from_str(&history(&["show", "1", "--json"])).expect("JSON");
    let first = &shown["scaling"][0];
    assert_eq!(
        (first["from"].as_u64(), first["to"].as_u64()),
        (Some(1), Some(2)),
        "{shown}"
    );
    assert!(
        first["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("scaled 1 → 2: ")
    );
    let run_started = shown["started_ms"].as_i64().unwrap();
    assert!(first["time_ms"].as_i64().unwrap() >= run_started, "{shown}");
    let text = history(&["show", "1"]);
    assert!(
        text.contains("Scaling\n") && text.contains("scaled 1 → 2: "),
        "{text}"
    );
    let list = history(&["list"]);
    assert!(
        list.contains("Workers scaled") && list.contains("1 → 2"),
        "{list}"
    );
}

#[test]
fn the_summary_says_when_figures_were_taken_with_saturated_generators() {
    use common::raw::{RawClient, hello};
    use protocol::{MasterMessage, WorkerMessage, WorkerState, WorkerStatus};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = TempDir::new("autoscale-saturated");
    let script = dir.write("busy.lua", BUSY_SCRIPT);
    let mut master = common::cluster::Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "--expect-workers",
            "1",
            "-u",
            "1",
            "-r",
            "10",
            "-t",
            "3s",
            "--heartbeat-interval",
            "100ms",
            "--stop-timeout",
            "1s",
        ],
    );
    // A hand-driven worker that reports 97% of its one core: a real one
    // cannot be made that hot reliably on a machine others share.
    let mut hot = RawClient::connect(master.port);
    hot.send(hello("hot"));
    assert!(matches!(hot.recv(WAIT), Ok(MasterMessage::Welcome { .. })));
    let done = Arc::new(AtomicBool::new(false));
    let beating = done.clone();
    let beats = std::thread::spawn(move || {
        let status = WorkerMessage::Heartbeat(WorkerStatus {
            state: Some(WorkerState::Running),
            user_count: 1,
            cpu_percent: 97.0,
            memory_bytes: 1 << 20,
        });
        while !beating.load(Ordering::Relaxed) {
            // The master hangs up at the end: stop then.
            let sent =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hot.send(status.clone())));
            if sent.is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let status = master.proc.wait_exit(WAIT);
    done.store(true, Ordering::Relaxed);
    let _ = beats.join();
    let text = master.proc.lines().join("\n");
    assert!(status.is_some(), "the run ends: {text}");
    assert!(
        text.contains("Figures taken with saturated generators: hot used over 90% of their CPU"),
        "{text}"
    );
}
