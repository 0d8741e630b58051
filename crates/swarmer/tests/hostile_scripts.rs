//! Scripts that try to silence or stall a worker, through the real binary
//! on loopback: a task that never yields, a script that loops while it
//! loads, a target that never answers. None may cost the run its counts,
//! its heartbeats or its exit code.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Master, worker};
use common::{DemoTarget, Proc, TempDir, serial};

const LONG: Duration = Duration::from_secs(40);

fn entry<'a>(json: &'a serde_json::Value, method: &str, name: &str) -> &'a serde_json::Value {
    json["stats"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|e| e["method"] == method && e["name"] == name)
        })
        .unwrap_or_else(|| panic!("no {method} {name} in {json}"))
}

fn exceptions(json: &serde_json::Value) -> Vec<String> {
    json["exceptions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["msg"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Two users make requests; at the 20th one of them spins in a compiled
/// loop that never yields. Both users share the worker's only core.
const SPIN: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.05) }
local n = 0
U:task(function(self)
  self.http:get("/")
  n = n + 1
  if n == 20 then
    while true do end
  end
end)
"#;

#[test]
fn a_task_that_never_yields_costs_neither_the_worker_nor_its_counts() {
    let _serial = serial();
    let dir = TempDir::new("spin");
    let script = dir.write("spin.lua", SPIN);
    let target = DemoTarget::start(dir.path());
    let mut master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "--json",
            "--only-summary",
            "-H",
            &target.url,
            "--expect-workers",
            "1",
            "-u",
            "2",
            "-r",
            "10",
            "-t",
            "8s",
            "--heartbeat-interval",
            "250ms",
        ],
    );
    let mut w = worker(
        dir.path(),
        master.port,
        "w1",
        &["--cores", "1", "--task-time-limit", "2s"],
    );
    let status = master
        .proc
        .wait_exit(LONG)
        .unwrap_or_else(|| panic!("the run did not end: {}", master.proc.tail(20)));
    let log = master.proc.lines().join("\n");
    assert!(
        !log.contains("w1 lost"),
        "the busy worker was declared lost:\n{log}"
    );
    let json: serde_json::Value = serde_json::from_str(&master.proc.stdout())
        .unwrap_or_else(|e| panic!("no --json summary ({e}): {}", master.proc.tail(20)));
    // An exception is a failure: exit 1, not 0 with the numbers gone.
    assert_eq!(status.code(), Some(1), "{}", master.proc.tail(20));
    let ex = exceptions(&json);
    assert!(
        ex.iter()
            .any(|m| m.contains("spin.lua:8: task ran for more than 2 s")),
        "{ex:?}"
    );
    // Every response the target sent is in the totals (a request cut by
    // the stop is counted too, as a failure).
    let requests = entry(&json, "GET", "/")["num_requests"].as_u64().unwrap();
    let served = target.served();
    assert!(
        requests >= served && served > 20,
        "{requests} recorded, {served} served"
    );
    let _ = w.wait_exit(Duration::from_secs(10));
}

#[test]
fn a_worker_leaves_on_sigterm_while_its_core_spins() {
    let _serial = serial();
    let dir = TempDir::new("spin-term");
    let script = dir.write(
        "spin.lua",
        "local U = swarmer.user { name = \"U\" }\nU:task(function(self) while true do end end)\n",
    );
    let master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "--json",
            "--only-summary",
            "-H",
            "http://127.0.0.1:9",
            "--expect-workers",
            "1",
            "-u",
            "1",
            "-r",
            "10",
            "--heartbeat-interval",
            "250ms",
        ],
    );
    let mut w = worker(
        dir.path(),
        master.port,
        "w1",
        &["--cores", "1", "--task-time-limit", "3s"],
    );
    master.proc.expect_line(LONG, "all 1 users spawned");
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    w.signal("TERM");
    let status = w
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("SIGTERM ignored: {}", w.tail(10)));
    assert!(status.success(), "{status:?}: {}", w.tail(10));
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
    master
        .proc
        .wait_line_from(0, LONG, |l| l.contains("worker w1 left"))
        .unwrap_or_else(|| panic!("no goodbye: {}\n---\n{}", master.proc.tail(30), w.tail(30)));
    let log = master.proc.lines().join("\n");
    assert!(!log.contains("w1 lost"), "{log}");
}

#[test]
fn a_script_that_loops_while_loading_fails_with_exit_2_and_a_message() {
    let dir = TempDir::new("load-loop");
    let script = dir.write("loop.lua", "local n = 0\nwhile true do n = n + 1 end\n");
    let started = Instant::now();
    let mut p = Proc::swarmer(
        "swarmer",
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "-u",
            "1",
            "-t",
            "5s",
            "-H",
            "http://127.0.0.1:9",
            "--load-time-limit",
            "1s",
        ],
    );
    let status = p
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("still loading: {}", p.tail(10)));
    assert_eq!(status.code(), Some(2), "{}", p.tail(10));
    assert!(started.elapsed() < Duration::from_secs(10));
    let log = p.lines().join("\n");
    assert!(
        log.contains("loop.lua:2:") && log.contains("loading the script ran for more than 1 s"),
        "{log}"
    );
}

#[test]
fn requests_a_silent_target_never_answers_are_counted_at_stop() {
    let dir = TempDir::new("silent");
    // Accepts connections and never answers them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let script = dir.write(
        "silent.lua",
        "local U = swarmer.user { name = \"U\" }\nU:task(function(self) self.http:get(\"/\") end)\n",
    );
    let mut p = Proc::swarmer(
        "swarmer",
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "--json",
            "--only-summary",
            "-u",
            "3",
            "-r",
            "100",
            "-t",
            "2s",
            "--stop-timeout",
            "1s",
            "-H",
            &url,
        ],
    );
    let status = p
        .wait_exit(LONG)
        .unwrap_or_else(|| panic!("the run did not end: {}", p.tail(10)));
    let json: serde_json::Value = serde_json::from_str(&p.stdout())
        .unwrap_or_else(|e| panic!("no --json summary ({e}): {}", p.tail(10)));
    let get = entry(&json, "GET", "/");
    assert_eq!(get["num_requests"], 3, "{json}");
    assert_eq!(get["num_failures"], 3, "{json}");
    let errors = json["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["error"] == "cancelled at stop"),
        "{errors:?}"
    );
    assert_eq!(status.code(), Some(1), "failures mean exit 1");
}

#[test]
fn the_first_ctrl_c_ends_a_script_that_loops_while_loading() {
    let dir = TempDir::new("load-int");
    let script = dir.write("loop.lua", "while true do end\n");
    let mut p = Proc::swarmer(
        "swarmer",
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "-u",
            "1",
            "-H",
            "http://127.0.0.1:9",
        ],
    );
    // Loading (the default load limit is 30 s): let it get into the loop.
    std::thread::sleep(Duration::from_millis(800));
    let asked = Instant::now();
    p.signal("INT");
    let status = p
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the first Ctrl-C was ignored: {}", p.tail(10)));
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(status.code(), Some(2), "{}", p.tail(10));
    assert!(
        p.lines().join("\n").contains("interrupted while loading"),
        "{}",
        p.tail(10)
    );
}

/// Users that each keep a connection, more of them than the process may
/// open files: the run says so once, naming `ulimit -n`, and still ends
/// with a summary and the failure grouped in one row.
#[test]
fn the_descriptor_limit_is_named_once() {
    let dir = TempDir::new("nofile");
    let target = DemoTarget::start(dir.path());
    let script = dir.write(
        "conn.lua",
        "local U = swarmer.user { name = \"U\", wait = swarmer.constant(0.2) }\n\
         U:task(function(self) self.http:get(\"/\") end)\n",
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 96 && exec \"$0\" \"$@\"")
        .arg(common::BIN)
        .args(["-f", &script, "--headless", "--json", "--only-summary"])
        .args(["-u", "200", "-r", "1000", "-t", "3s", "--cores", "1"])
        .args(["-H", &target.url])
        .current_dir(dir.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("SWARMER_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    let mut p = Proc::spawn("swarmer", cmd);
    let status = p
        .wait_exit(LONG)
        .unwrap_or_else(|| panic!("the run did not end: {}", p.tail(10)));
    let named: Vec<String> = p
        .lines()
        .into_iter()
        .filter(|l| l.contains("ulimit -n"))
        .collect();
    assert_eq!(named.len(), 1, "{named:?}\n{}", p.tail(20));
    let json: serde_json::Value = serde_json::from_str(&p.stdout())
        .unwrap_or_else(|e| panic!("no --json summary ({e}): {}", p.tail(10)));
    let get = entry(&json, "GET", "/");
    assert!(get["num_requests"].as_u64().unwrap() > 0, "{json}");
    // Requests that could connect were served; the rest failed, counted.
    assert!(get["num_failures"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(status.code(), Some(1), "{}", p.tail(10));
}
