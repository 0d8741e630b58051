//! End-to-end tests of headless standalone runs: the real binary against
//! the demo target, both started on loopback port 0, checking what a user
//! of the command line sees (exact counts, failures, CSV files, exit codes,
//! script errors, Ctrl-C).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{text, wait_with_deadline};

const BIN: &str = env!("CARGO_BIN_EXE_swarmer");

/// A demo target on a free port, killed when dropped.
struct Target {
    child: Child,
    url: String,
}

impl Target {
    fn start() -> Self {
        let mut child = Command::new(BIN)
            .args(["demo-target", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn demo target");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read address");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("address on the line")
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        Self { child, url }
    }

    fn served(&self) -> u64 {
        let body = http_get(&format!("{}/stats", self.url));
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        v["served"].as_u64().expect("served count")
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP GET over std, so the test needs no client crate.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn script(dir: &Path, name: &str, code: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, code).expect("write script");
    path
}

/// Runs the binary to completion with a deadline.
fn run(args: &[&str], dir: &Path) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarmer");
    wait_with_deadline(child, Duration::from_secs(60))
}

fn json_of(out: &Output) -> serde_json::Value {
    let stdout = text(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{}", text(&out.stderr)))
}

fn entry<'a>(json: &'a serde_json::Value, method: &str, name: &str) -> &'a serde_json::Value {
    json["stats"]
        .as_array()
        .expect("stats array")
        .iter()
        .find(|e| e["method"] == method && e["name"] == name)
        .unwrap_or_else(|| panic!("no entry {method} {name} in {json}"))
}

const MIXED: &str = r#"
local Shop = swarmer.user { name = "Shop", wait = swarmer.constant(0.005) }
Shop:task(3, function(self) self.http:get("/") end)
Shop:task(1, function(self) self.http:get("/status/404", { name = "/missing" }) end)
Shop:task(1, function(self)
  swarmer.record { type = "queue", name = "publish", duration_ms = 2.5, success = true, length = 10 }
end)
"#;

#[test]
fn counts_are_exact_and_failures_grouped() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let s = script(dir.path(), "mixed.lua", MIXED);
    let out = run(
        &[
            "-f",
            s.to_str().unwrap(),
            "--headless",
            "-u",
            "4",
            "-r",
            "100",
            "-t",
            "2s",
            "-H",
            &target.url,
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "failures mean exit 1: {}",
        text(&out.stderr)
    );
    let json = json_of(&out);
    let root = entry(&json, "GET", "/")["num_requests"].as_u64().unwrap();
    let missing = entry(&json, "GET", "/missing");
    let missing_n = missing["num_requests"].as_u64().unwrap();
    assert!(root > 0 && missing_n > 0, "{json}");
    assert_eq!(
        missing["num_failures"], missing["num_requests"],
        "every 404 fails"
    );
    assert_eq!(entry(&json, "GET", "/")["num_failures"], 0);
    // Every HTTP request swarmer counted reached the target, and vice versa.
    assert_eq!(root + missing_n, target.served(), "{json}");
    let custom = entry(&json, "queue", "publish");
    assert!(custom["num_requests"].as_u64().unwrap() > 0);
    assert_eq!(
        custom["avg_response_time"].as_f64().unwrap().round(),
        3.0,
        "2.5 ms recorded (1% histogram error)"
    );
    // HTTP entries carry their phases (ms); a custom one has none.
    let phases = &entry(&json, "GET", "/")["phases"];
    assert!(phases["ttfb"]["p50"].as_f64().unwrap() > 0.0, "{json}");
    assert!(phases["connect"]["p99"].as_f64().is_some(), "{json}");
    assert!(custom.get("phases").is_none(), "{custom}");
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(
        errors.len(),
        1,
        "one group for one (method, name, error): {errors:?}"
    );
    assert_eq!(errors[0]["name"], "/missing");
    assert!(errors[0]["error"].as_str().unwrap().contains("404"));
    assert_eq!(errors[0]["occurrences"], missing["num_failures"]);
}

#[test]
fn clean_run_exits_zero_and_writes_locust_csv() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let s = script(
        dir.path(),
        "ok.lua",
        "local U = swarmer.user { name = 'U', wait = swarmer.constant(0.01) }\nU:task(1, function(self) self.http:get('/item/1', { name = '/item/[id]' }) end)\n",
    );
    let out = run(
        &[
            "-f",
            s.to_str().unwrap(),
            "--headless",
            "-u",
            "2",
            "-r",
            "10",
            "-t",
            "3s",
            "-H",
            &target.url,
            "--csv",
            "out",
            "--only-summary",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Aggregated") && stdout.contains("/item/[id]"),
        "{stdout}"
    );
    assert!(
        !text(&out.stderr).contains("users 2/2"),
        "--only-summary hides the live view"
    );

    let stats = std::fs::read_to_string(dir.path().join("out_stats.csv")).unwrap();
    let lines: Vec<&str> = stats.lines().collect();
    assert_eq!(
        lines[0],
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
    );
    assert!(lines[1].starts_with("GET,/item/[id],"), "{stats}");
    assert!(lines.last().unwrap().starts_with(",Aggregated,"), "{stats}");

    let history = std::fs::read_to_string(dir.path().join("out_stats_history.csv")).unwrap();
    assert!(
        history.starts_with("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%"),
        "{history}"
    );
    assert!(
        history.lines().count() >= 3,
        "one row per second while running: {history}"
    );
    let failures = std::fs::read_to_string(dir.path().join("out_failures.csv")).unwrap();
    assert_eq!(
        failures.trim(),
        "Method,Name,Error,Occurrences,First Seen,Last Seen"
    );
    let exceptions = std::fs::read_to_string(dir.path().join("out_exceptions.csv")).unwrap();
    assert_eq!(exceptions.trim(), "Count,Message,Traceback,Nodes");
}

#[test]
fn exit_code_on_error_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let s = script(
        dir.path(),
        "fail.lua",
        "local U = swarmer.user { name = 'U', wait = swarmer.constant(0.05) }\nU:task(1, function(self) self.http:get('/status/500') end)\n",
    );
    let out = run(
        &[
            "-f",
            s.to_str().unwrap(),
            "--headless",
            "-u",
            "1",
            "-r",
            "1",
            "-t",
            "1s",
            "-H",
            &target.url,
            "--exit-code-on-error",
            "3",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

#[test]
fn a_task_that_raises_is_counted_and_the_user_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let s = script(
        dir.path(),
        "raise.lua",
        "local U = swarmer.user { name = 'U', wait = swarmer.constant(0.01) }\nU:task(1, function(self)\n  self.http:get('/')\n  error('boom')\nend)\n",
    );
    let out = run(
        &[
            "-f",
            s.to_str().unwrap(),
            "--headless",
            "-u",
            "1",
            "-r",
            "1",
            "-t",
            "2s",
            "-H",
            &target.url,
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "an exception is a failure: {}",
        text(&out.stderr)
    );
    let json = json_of(&out);
    let requests = entry(&json, "GET", "/")["num_requests"].as_u64().unwrap();
    assert!(requests > 5, "the user kept going after raising: {json}");
    let ex = &json["exceptions"][0];
    assert!(
        ex["msg"].as_str().unwrap().contains("raise.lua:4"),
        "file:line of the error: {ex}"
    );
    assert!(ex["msg"].as_str().unwrap().contains("boom"), "{ex}");
    assert_eq!(
        ex["count"].as_u64().unwrap(),
        requests,
        "one exception per task run"
    );
    assert!(!ex["traceback"].as_str().unwrap().is_empty(), "{ex}");
}

#[test]
fn a_script_that_does_not_load_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "broken.lua",
        "local U = swarmer.user { name = 'U' }\n\nU:task(1, function(self)\n  self.http:get('/'\nend)\n",
    );
    let out = run(
        &[
            "-f",
            s.to_str().unwrap(),
            "--headless",
            "-u",
            "1",
            "-t",
            "1s",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("broken.lua:"), "names the file: {stderr}");
    assert!(
        stderr.contains(":5:") || stderr.contains(":4:"),
        "names the line: {stderr}"
    );

    let out = run(&["-f", "nope.lua", "--headless"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nope.lua"),
        "{}",
        text(&out.stderr)
    );
}

/// A user type's client certificate is read at load, relative to the
/// script: a missing file exits 2 naming the option and the file.
#[test]
fn a_user_types_missing_client_certificate_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "mtls.lua",
        "local U = swarmer.user { name = 'U', client_cert = 'certs/me.pem' }\nU:task(function(self) end)\n",
    );
    let out = run(
        &[
            "-f",
            s.to_str().unwrap(),
            "--headless",
            "-u",
            "1",
            "-t",
            "1s",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let expected = dir.path().join("certs").join("me.pem");
    assert!(
        stderr.contains("client_cert") && stderr.contains(expected.to_str().unwrap()),
        "{stderr}"
    );
}

#[test]
fn bad_flags_exit_2_naming_the_flag_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "ok.lua",
        "local U = swarmer.user { name = 'U' }\nU:task(1, function(self) end)\n",
    );
    let path = s.to_str().unwrap();
    for (args, flag, value) in [
        (vec!["-u", "-5"], "--users", "-5"),
        (vec!["-u", "many"], "--users", "many"),
        (vec!["-r", "0"], "--spawn-rate", "0"),
        (vec!["-t", "soon"], "--run-time", "soon"),
        (vec!["--user-types", "Nobody"], "Nobody", "Nobody"),
    ] {
        let mut all = vec!["-f", path, "--headless"];
        all.extend(args.iter().copied());
        let out = run(&all, dir.path());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(value),
            "{args:?} should name {flag} and {value}: {stderr}"
        );
    }
}

#[test]
fn ctrl_c_stops_cleanly_and_still_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    let s = script(
        dir.path(),
        "forever.lua",
        "local U = swarmer.user { name = 'U', wait = swarmer.constant(0.01) }\nU:task(1, function(self) self.http:get('/') end)\nfunction U:on_stop() swarmer.record { type = 'user', name = 'stopped', duration_ms = 1, success = true } end\n",
    );
    let child = Command::new(BIN)
        .args([
            "-f",
            s.to_str().unwrap(),
            "--headless",
            "-u",
            "3",
            "-r",
            "100",
            "-H",
            &target.url,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every user is running (3 users at 100/s make ~300 requests a second)
    // before the Ctrl-C, so each of them must run on_stop.
    let deadline = Instant::now() + Duration::from_secs(20);
    while target.served() < 60 {
        assert!(Instant::now() < deadline, "the run never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_with_deadline(child, Duration::from_secs(15));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "stops promptly: {:?}",
        sent.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = json_of(&out);
    let requests = entry(&json, "GET", "/")["num_requests"].as_u64().unwrap();
    assert_eq!(
        requests,
        target.served(),
        "every request made before Ctrl-C is in the summary"
    );
    assert_eq!(
        entry(&json, "user", "stopped")["num_requests"],
        3,
        "on_stop ran once per user"
    );
}

#[test]
fn config_file_and_environment_supply_flags() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start();
    script(
        dir.path(),
        "cfg.lua",
        "local U = swarmer.user { name = 'U', wait = swarmer.constant(0.05) }\nU:task(1, function(self) self.http:get('/') end)\n",
    );
    std::fs::write(
        dir.path().join("swarmer.toml"),
        format!("script = \"cfg.lua\"\nheadless = true\nusers = 2\nrun-time = \"30s\"\nhost = \"{}\"\njson = true\n", target.url),
    )
    .unwrap();
    // The environment beats the file: the run lasts 1 s, not 30.
    let child = Command::new(BIN)
        .env("SWARMER_RUN_TIME", "1s")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_deadline(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        entry(&json_of(&out), "GET", "/")["num_requests"]
            .as_u64()
            .unwrap()
            > 0
    );
    // And the command line beats the environment.
    let out = run(&["-t", "soon"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(2),
        "the flag, not the file, was parsed: {}",
        text(&out.stderr)
    );
}
