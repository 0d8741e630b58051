//! `PUT /api/v1/script` through the binary, distributed: a master with
//! two worker processes (one joining after the upload). A broken script
//! is refused with its file:line and the old one keeps running; a good
//! one (requiring a module uploaded with it) is what the next run runs on
//! every worker, and the run history records it as the run's script.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::cluster::{Master, worker};
use common::{DemoTarget, TempDir, get_json, http_post_form, serial};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(30);

fn script(name: &str) -> String {
    format!(
        r#"
local U = swarmer.user {{ name = "U", wait = swarmer.constant(0.1) }}
U:task(1, function(self) self.http:get("/", {{ name = "{name}" }}) end)
"#
    )
}

/// PUT a JSON body: (status code, body).
fn put_json(url: &str, body: &Value) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http:// url");
    let (host, path) = rest.split_once('/').expect("a path");
    let body = body.to_string();
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "PUT /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (code, body.unwrap_or_default())
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

fn wait(url: &str, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + LONG;
    loop {
        let value = get_json(url);
        if pred(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "never {what}; last: {value:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post(url: &str, form: &str) {
    let (code, body) = http_post_form(url, form).expect("POST");
    assert_eq!(code, 200, "POST {url}: {body}");
}

#[test]
fn an_uploaded_script_runs_on_existing_and_newly_joined_workers() {
    let _serial = serial();
    let dir = TempDir::new("upload");
    let target = DemoTarget::start(dir.path());
    let first = dir.write("users.lua", &script("old"));
    let history = dir.path().join("history.db");
    let history = history.to_str().unwrap();
    let args = [
        "-f",
        &first,
        "-H",
        &target.url,
        "--web-host",
        "127.0.0.1",
        "--web-port",
        "0",
        "--stop-timeout",
        "5s",
        "--history",
        history,
    ];
    let master = Master::start(dir.path(), &args);
    let url = master.web_url();
    let stats = format!("{url}/stats/requests");
    let _w1 = worker(dir.path(), master.port, "w1", &["--cores", "1"]);
    wait(&stats, "w1 joined", |s| s["worker_count"] == 1);

    // Broken: refused with its file:line; the old script still runs.
    let broken = json!({"name": "fresh.lua", "text": "local U = swarmer.user {\n"});
    let (code, body) = put_json(&format!("{url}/api/v1/script"), &broken);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("fresh.lua:"), "{body}");
    let current = get_json(&format!("{url}/api/v1/script"));
    assert_eq!(current["name"], "users.lua", "{current}");

    // Good: the next run runs it. It requires an uploaded module, which
    // the workers (whose folder has none) get with it.
    let text = script("new").replace("\"new\"", "names.new");
    let text = format!("local names = require \"lib.names\"\n{text}");
    let good = json!({"name": "fresh.lua", "text": text, "files": {
        "data/ids.csv": "1\n2\n",
        "lib/names.lua": "return { new = \"new\" }\n",
    }});
    let (code, body) = put_json(&format!("{url}/api/v1/script"), &good);
    assert_eq!(code, 200, "{body}");
    post(&format!("{url}/swarm"), "user_count=2&spawn_rate=20");
    let s = wait(&stats, "the new script's requests", |s| {
        requests_named(s, "new") > 0
    });
    assert_eq!(requests_named(&s, "old"), 0, "{s:#}");
    post(&format!("{url}/stop"), "");
    wait(&stats, "the run stopped", |s| s["state"] == "stopped");

    // A worker that joins now gets it with its first plan.
    let _w2 = worker(dir.path(), master.port, "w2", &["--cores", "1"]);
    wait(&stats, "w2 joined", |s| s["worker_count"] == 2);
    post(&format!("{url}/stats/reset"), "");
    post(&format!("{url}/swarm"), "user_count=2&spawn_rate=20");
    let s = wait(&stats, "both workers running the new script", |s| {
        let workers = s["workers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        workers.len() == 2
            && workers
                .iter()
                .all(|w| w["state"] == "running" && w["user_count"] == 1)
            && requests_named(s, "new") > 0
    });
    assert_eq!(requests_named(&s, "old"), 0, "{s:#}");
    post(&format!("{url}/stop"), "");

    // The run history names the script each run ran.
    wait(&format!("{url}/api/v1/history"), "the runs recorded", |h| {
        let text = h.to_string();
        text.matches("fresh.lua").count() >= 2 && !text.contains("users.lua")
    });
}
