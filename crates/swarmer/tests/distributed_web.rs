//! End-to-end tests of distributed mode as the web API shows it: a master
//! with its UI on a free port, runs started and stopped over HTTP as
//! Locust's UI and CI scripts do, and `/stats/requests`'s `worker_count`
//! and `workers` polled through churn: exact at every poll.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::{Master, worker};
use common::{DemoTarget, Proc, TempDir, get_json, http_post_form, serial};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(30);

fn script(name: &str) -> String {
    format!(
        r#"
local U = swarmer.user {{ name = "U", wait = swarmer.constant(0.1) }}
U:task(1, function(self) self.http:get("/", {{ name = "{name}" }}) end)
"#
    )
}

/// A master with its web UI, and its base URL.
struct WebMaster {
    master: Master,
    url: String,
}

impl WebMaster {
    fn start(dir: &TempDir, script: &str, target: &DemoTarget) -> WebMaster {
        let args = [
            "-f",
            script,
            "-H",
            &target.url,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            "0",
            "--stop-timeout",
            "5s",
        ];
        let master = Master::start(dir.path(), &args);
        let url = master.web_url();
        WebMaster { master, url }
    }

    fn stats(&self) -> Value {
        let stats = get_json(&format!("{}/stats/requests", self.url));
        check_exact(&stats);
        stats
    }

    /// Polls `/stats/requests` until `pred` holds, checking every answer.
    fn wait(&self, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + LONG;
        loop {
            let stats = self.stats();
            if pred(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "never {what}; last: {stats:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn post(&self, path: &str, form: &str) {
        let (code, body) = http_post_form(&format!("{}{path}", self.url), form).expect("POST");
        assert_eq!(code, 200, "POST {path}: {body}");
    }
}

/// What must hold in every answer: `worker_count` is the number of
/// workers not lost, and no id is listed twice.
fn check_exact(stats: &Value) {
    let workers = stats["workers"].as_array().expect("a workers list");
    let live = workers.iter().filter(|w| w["state"] != "lost").count();
    assert_eq!(
        stats["worker_count"].as_u64(),
        Some(live as u64),
        "{stats:#}"
    );
    let ids: BTreeSet<&str> = workers.iter().filter_map(|w| w["id"].as_str()).collect();
    assert_eq!(ids.len(), workers.len(), "an id listed twice: {stats:#}");
}

fn state_of<'a>(stats: &'a Value, id: &str) -> Option<&'a str> {
    let workers = stats["workers"].as_array()?;
    workers.iter().find(|w| w["id"] == id)?["state"].as_str()
}

fn requests_named(stats: &Value, name: &str) -> u64 {
    let rows = stats["stats"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    rows.iter()
        .filter(|e| e["name"] == name)
        .filter_map(|e| e["num_requests"].as_u64())
        .sum()
}

fn start_workers(dir: &TempDir, port: u16, ids: &[&str]) -> Vec<Proc> {
    ids.iter()
        .map(|id| worker(dir.path(), port, id, &["--cores", "1"]))
        .collect()
}

#[test]
fn worker_count_is_exact_at_every_poll_through_churn_and_loss() {
    let _serial = serial();
    let dir = TempDir::new("webchurn");
    let target = DemoTarget::start(dir.path());
    let web = WebMaster::start(&dir, &dir.write("users.lua", &script("/")), &target);
    let port = web.master.port;
    let mut workers = start_workers(&dir, port, &["w1", "w2"]);
    web.wait("2 workers ready", |s| {
        s["worker_count"] == 2 && state_of(s, "w2") == Some("ready")
    });
    web.post("/swarm", "user_count=6&spawn_rate=30");
    web.wait("6 users running", |s| {
        s["user_count"] == 6
            && ["w1", "w2"]
                .iter()
                .all(|w| state_of(s, w) == Some("running"))
    });

    // 2 → 1 → 3, at once: exactly 3, never more at any poll.
    workers[1].signal("TERM");
    workers.extend(start_workers(&dir, port, &["w3", "w4"]));
    let mut max = 0;
    let settled = web.wait("3 workers with 6 users", |s| {
        max = max.max(s["worker_count"].as_u64().unwrap_or(0));
        s["worker_count"] == 3 && s["user_count"] == 6 && state_of(s, "w2").is_none()
    });
    assert!(max <= 3, "counted {max} workers");
    assert_eq!(
        settled["workers"].as_array().map(Vec::len),
        Some(3),
        "{settled:#}"
    );

    // kill -9: shown as lost, not counted; back under the same id: one entry.
    workers[2].kill9();
    let lost = web.wait("w3 lost", |s| {
        s["worker_count"] == 2 && state_of(s, "w3") == Some("lost")
    });
    assert_eq!(lost["lost_workers"], 1, "the API says how many were lost");
    web.wait("the users restored", |s| s["user_count"] == 6);
    workers.extend(start_workers(&dir, port, &["w3"]));
    web.wait("w3 back", |s| {
        s["worker_count"] == 3
            && state_of(s, "w3").is_some_and(|st| st != "lost")
            && s["user_count"] == 6
    });
    web.master.proc.expect_line(LONG, "worker w3 rejoined");
}

#[test]
fn workers_without_a_script_get_the_masters_and_its_changes_at_the_next_run() {
    let _serial = serial();
    let dir = TempDir::new("webscript");
    let target = DemoTarget::start(dir.path());
    let path = dir.write("users.lua", &script("first"));
    let web = WebMaster::start(&dir, &path, &target);
    // The workers run in a directory holding no script at all.
    let elsewhere = TempDir::new("webscript-workers");
    let _workers = start_workers(&elsewhere, web.master.port, &["w1", "w2"]);
    web.wait("2 workers", |s| s["worker_count"] == 2);

    web.post("/swarm", "user_count=4&spawn_rate=20");
    web.wait("requests of the first script", |s| {
        requests_named(s, "first") > 0
    });
    web.post("/stop", "");
    web.wait("the run stopped", |s| s["state"] == "stopped");

    // Edited between runs: the next start sends the new script.
    std::fs::write(&path, script("second")).expect("rewrite the script");
    web.post("/swarm", "user_count=4&spawn_rate=20");
    let stats = web.wait("requests of the second script", |s| {
        requests_named(s, "second") > 0
    });
    assert_eq!(
        requests_named(&stats, "first"),
        0,
        "a new run starts from zero: {stats:#}"
    );
    web.master
        .proc
        .expect_line(LONG, "changed; workers get it with this run");
    web.wait("4 users running on the new script", |s| {
        s["user_count"] == 4
    });
}
