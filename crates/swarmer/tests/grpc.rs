//! gRPC end to end through the binary against a tonic server on loopback
//! (`grpc_support`): unary and server-streaming calls, metadata both
//! ways, a deadline that expires and an error status, where what the
//! server counted equals what swarmer counted; the same over TLS; a worker in an empty
//! folder runs with the .proto only the master has; a broken .proto fails
//! the load with its file and line; an unknown method or field and a
//! value of the wrong type are exceptions naming them.

mod common;
mod grpc_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cluster::Master;
use common::{BIN, TempDir, serial, text, wait_with_deadline};
use grpc_support::Server;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

/// Each user makes five rounds of every kind of call, then idles, so the
/// counts are exact whatever the run's length.
const SCRIPT: &str = r#"
swarmer.files { "proto/hello.proto" }
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
function U:on_start()
  self.g = assert(self.grpc:connect(swarmer.env("GRPC_URL"), {
    proto = "proto/hello.proto", metadata = { ["x-echo"] = "from connect" },
  }))
  self.n = 0
end
U:task(function(self)
  if self.n >= 5 then swarmer.sleep(0.2) return end
  self.n = self.n + 1
  local r = self.g:invoke("hello.Greeter/SayHello", { name = "u" .. self.id, tags = { "a" } })
  assert(r.status == 0 and r.message.message == "hello u" .. self.id, r.error)
  local seen = {}
  local s = self.g:stream("hello.Greeter/StreamHellos", { name = "s", count = 3 }, function(m)
    seen[#seen + 1] = m.index
  end, { name = "hellos stream" })
  assert(s.status == 0 and s.count == 3 and seen[3] == 3, s.error)
  local e = self.g:invoke("hello.Greeter/EchoMetadata", {}, { metadata = { ["x-echo"] = "ping" } })
  assert(e.message.message == "ping" and e.headers["x-answer"] == "42", "metadata echo")
  local slow = self.g:invoke("hello.Greeter/Slow", { count = 2000 }, { timeout = 0.05, name = "slow" })
  assert(slow.status == 4 and slow.status_name == "DEADLINE_EXCEEDED", slow.error)
  local l = self.g:invoke("hello.Greeter/Lookup", { name = "nobody" })
  assert(l.status == 5 and l.message == nil, l.error)
end)
"#;

/// (requests, failures) of an entry, (0, 0) when absent.
fn entry(json: &Value, method: &str, name: &str) -> (u64, u64) {
    json["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == method && e["name"] == name)
        .map_or((0, 0), |e| {
            (
                e["num_requests"].as_u64().unwrap(),
                e["num_failures"].as_u64().unwrap(),
            )
        })
}

fn strings(json: &Value, list: &str, key: &str) -> Vec<String> {
    json[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[key].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A folder with the script and examples/proto/hello.proto beside it.
fn project(label: &str, script: &str) -> TempDir {
    let dir = TempDir::new(label);
    std::fs::create_dir_all(dir.path().join("proto")).unwrap();
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/proto/hello.proto");
    std::fs::copy(proto, dir.path().join("proto/hello.proto")).unwrap();
    dir.write("s.lua", script);
    dir
}

/// A headless standalone run in `dir`: exit code and `--json` output.
fn run(dir: &TempDir, url: &str, users: &str, secs: &str) -> (Option<i32>, Value, String) {
    run_with(dir, url, users, secs, &[])
}

fn run_with(
    dir: &TempDir,
    url: &str,
    users: &str,
    secs: &str,
    extra: &[&str],
) -> (Option<i32>, Value, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .args([
            "-f",
            "s.lua",
            "--headless",
            "--json",
            "--only-summary",
            "--no-history",
        ])
        .args(["-u", users, "-r", "100", "-t", secs])
        .args(extra)
        .env("GRPC_URL", url)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = wait_with_deadline(cmd.spawn().expect("spawn swarmer"), LONG);
    let json = serde_json::from_str(&text(&out.stdout)).unwrap_or(Value::Null);
    (out.status.code(), json, text(&out.stderr))
}

#[test]
fn unary_streaming_metadata_deadlines_and_errors_count_as_the_server_counted() {
    let _serial = serial();
    let server = Server::start();
    let dir = project("grpc-calls", SCRIPT);
    let (code, json, err) = run(&dir, &server.url, "2", "4s");
    // Failures (the deadline, NOT_FOUND) make the exit code 1.
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(strings(&json, "exceptions", "msg"), Vec::<String>::new());
    let calls = |m: &str| (server.wait_count(m, 10), 0);
    assert_eq!(
        entry(&json, "GRPC", "hello.Greeter/SayHello"),
        calls("SayHello")
    );
    assert_eq!(entry(&json, "GRPC", "hellos stream"), calls("StreamHellos"));
    assert_eq!(
        entry(&json, "GRPC", "hello.Greeter/EchoMetadata"),
        calls("EchoMetadata")
    );
    assert_eq!(
        entry(&json, "GRPC", "slow"),
        (server.wait_count("Slow", 10), 10)
    );
    assert_eq!(
        entry(&json, "GRPC", "hello.Greeter/Lookup"),
        (server.wait_count("Lookup", 10), 10)
    );
    assert_eq!(server.counts.get("SayHello"), 10);
    let authority = server.url.trim_start_matches("http://");
    assert_eq!(
        entry(&json, "GRPC", &format!("connect {authority}")),
        (2, 0)
    );
    let errors = strings(&json, "errors", "error");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("NOT_FOUND: no such user nobody"))
            && errors.iter().any(|e| e.contains("DEADLINE_EXCEEDED")),
        "{errors:?}"
    );
}

#[test]
fn calls_go_over_tls_when_the_url_says_https() {
    let _serial = serial();
    let server = Server::start_tls();
    let script = r#"
swarmer.files { "proto/hello.proto" }
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
function U:on_start()
  self.g = assert(self.grpc:connect(swarmer.env("GRPC_URL"), { proto = "proto/hello.proto" }))
  self.n = 0
end
U:task(function(self)
  if self.n >= 3 then swarmer.sleep(0.2) return end
  self.n = self.n + 1
  local r = self.g:invoke("hello.Greeter/SayHello", { name = "tls" })
  assert(r.status == 0 and r.message.message == "hello tls", r.error)
end)
"#;
    let dir = project("grpc-tls", script);
    let (code, json, err) = run_with(&dir, &server.url, "2", "2s", &["--insecure"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(strings(&json, "exceptions", "msg"), Vec::<String>::new());
    assert_eq!(
        entry(&json, "GRPC", "hello.Greeter/SayHello"),
        (server.wait_count("SayHello", 6), 0)
    );
    assert_eq!(server.counts.get("SayHello"), 6);
}

#[test]
fn a_worker_that_never_saw_the_proto_runs_it() {
    let _serial = serial();
    let server = Server::start();
    let master_dir = project("grpc-master", SCRIPT);
    let worker_dir = TempDir::new("grpc-worker");
    let mut master = Master::start(
        master_dir.path(),
        &[
            "-f",
            "s.lua",
            "--headless",
            "--json",
            "--only-summary",
            "--no-history",
            "--expect-workers",
            "1",
            "-u",
            "1",
            "-r",
            "10",
            "-t",
            "3s",
        ],
    );
    // Started in an empty folder: the proto comes from the master.
    let port = master.port.to_string();
    let _w = common::Proc::swarmer_with_env(
        "worker",
        worker_dir.path(),
        &[
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            &port,
            "--cores",
            "1",
        ],
        &[("GRPC_URL", server.url.as_str())],
    );
    let status = master.proc.wait_exit(LONG).expect("the run ends");
    assert_eq!(status.code(), Some(1), "{}", master.proc.tail(20));
    let json: Value = serde_json::from_str(&master.proc.stdout()).expect("--json");
    assert_eq!(strings(&json, "exceptions", "msg"), Vec::<String>::new());
    assert_eq!(
        entry(&json, "GRPC", "hello.Greeter/SayHello"),
        (server.wait_count("SayHello", 5), 0)
    );
    assert_eq!(server.counts.get("SayHello"), 5);
}

#[test]
fn a_broken_proto_fails_the_load_with_its_file_and_line() {
    let _serial = serial();
    let dir = project("grpc-badproto", "swarmer.files { \"proto/bad.proto\" }\n");
    dir.write(
        "proto/bad.proto",
        "syntax = \"proto3\";\npackage bad;\nmessage M { string name = ; }\n",
    );
    let (code, _, err) = run(&dir, "http://127.0.0.1:1", "1", "1s");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("s.lua:1: swarmer.files: ") && err.contains("bad.proto:3:"),
        "{err}"
    );
}

#[test]
fn unknown_methods_and_fields_and_wrong_types_are_exceptions_naming_them() {
    let _serial = serial();
    let server = Server::start();
    let script = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
function U:on_start()
  self.g = assert(self.grpc:connect(swarmer.env("GRPC_URL"), { proto = "proto/hello.proto" }))
  self.step = 0
end
U:task(function(self)
  self.step = self.step + 1
  if self.step == 1 then self.g:invoke("hello.Greeter/Nope", {}) end
  if self.step == 2 then self.g:invoke("hello.Greeter/SayHello", { nme = "x" }) end
  if self.step == 3 then self.g:invoke("hello.Greeter/SayHello", { count = "three" }) end
  if self.step == 4 then self.g:invoke("hello.Nobody/SayHello", {}) end
  swarmer.sleep(0.2)
end)
"#;
    let dir = project(
        "grpc-badinput",
        &format!("swarmer.files {{ \"proto/hello.proto\" }}\n{script}"),
    );
    let (code, json, err) = run(&dir, &server.url, "1", "2s");
    assert_eq!(code, Some(1), "{err}");
    let msgs = strings(&json, "exceptions", "msg").join("\n");
    for needle in [
        "g:invoke: unknown method Nope of hello.Greeter; it has: SayHello, StreamHellos",
        "hello.HelloRequest has no field \"nme\"; its fields: name, count, tags",
        "hello.HelloRequest.count: expected a 32-bit integer, got \"three\"",
        "unknown service hello.Nobody; the protos define: hello.Greeter",
    ] {
        assert!(msgs.contains(needle), "{needle} not in {msgs}");
    }
    assert_eq!(server.counts.get("SayHello"), 0, "nothing bad was sent");
}
