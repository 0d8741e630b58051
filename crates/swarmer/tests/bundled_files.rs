//! The files a script reads travel with it (issue #13): a worker started
//! in an empty folder runs a script whose data files and `require`d Lua
//! modules only the master has; a file read only at run time and not
//! named in `swarmer.files` is an error naming it even where it exists on
//! disk; a path or a module that leaves the script's folder, a module that
//! does not compile and files above the size limit are refused at load
//! (exit 2), named with file:line; a module edited between runs (now
//! requiring another) reaches the workers with the next run.

mod common;

use std::time::Duration;

use common::cluster::{Master, worker};
use common::{DemoTarget, Proc, TempDir, get_json, http_post_form, serial};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

/// Reads a CSV while it loads and a JSON file declared with
/// `swarmer.files` only in its task, and records what it read.
const SCRIPT: &str = r#"
local users = swarmer.data("data/users.csv")
swarmer.files { "late.json" }
local U = swarmer.user { name = "U", wait = swarmer.constant(0.05) }
U:task(function(self)
  if self.done then return end
  self.done = true
  for _, row in ipairs(users) do
    swarmer.record { type = "row", name = row.name .. "=" .. row.age, duration_ms = 1 }
  end
  local late = swarmer.data("late.json")
  swarmer.record { type = "late", name = late.word, duration_ms = 1 }
end)
"#;

fn entries(json: &Value) -> Vec<(String, String, u64)> {
    json["stats"]
        .as_array()
        .expect("stats")
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_string(),
                e["name"].as_str().unwrap().to_string(),
                e["num_requests"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_worker_in_an_empty_folder_runs_with_the_files_the_master_sent() {
    let _serial = serial();
    let master_dir = TempDir::new("bundle-master");
    let worker_dir = TempDir::new("bundle-worker");
    std::fs::create_dir_all(master_dir.path().join("data")).unwrap();
    master_dir.write("data/users.csv", "name,age\nalice,31\nbob,42\n");
    master_dir.write("late.json", r#"{"word":"carried"}"#);
    master_dir.write("users.lua", SCRIPT);
    let json = run_far(&master_dir, &worker_dir, "users.lua", &[]);
    assert_eq!(json["errors"].as_array().map(Vec::len), Some(0), "{json}");
    let got = entries(&json);
    for (method, name) in [("row", "alice=31"), ("row", "bob=42"), ("late", "carried")] {
        let n = got
            .iter()
            .find(|(m, n, _)| m == method && n == name)
            .map(|e| e.2);
        // Each of the two users records each once.
        assert_eq!(n, Some(2), "{method} {name} in {got:?}");
    }
    assert_eq!(got.len(), 4, "three entries and the total: {got:?}");
}

/// A headless run of `script` by a master in `master_dir` with one worker
/// in `worker_dir`, where nothing of the script is: its `--json` output,
/// once it ended with exit code 0 and no exception, the worker having
/// written nothing where it runs.
fn run_far(master_dir: &TempDir, worker_dir: &TempDir, script: &str, extra: &[&str]) -> Value {
    // The script is named relative to the master's folder, as a user
    // types it: the worker, elsewhere, has no such file.
    let mut args = vec![
        "-f",
        script,
        "--headless",
        "--json",
        "--only-summary",
        "--no-history",
        "--expect-workers",
        "1",
        "-u",
        "2",
        "-r",
        "10",
        "-t",
        "2s",
    ];
    args.extend_from_slice(extra);
    let mut master = Master::start(master_dir.path(), &args);
    let _w = worker(worker_dir.path(), master.port, "far", &["--cores", "1"]);
    let status = master.proc.wait_exit(LONG).expect("the run ends");
    assert_eq!(status.code(), Some(0), "{}", master.proc.tail(20));
    let json: Value = serde_json::from_str(&master.proc.stdout()).expect("--json output");
    assert_eq!(
        json["exceptions"].as_array().map(Vec::len),
        Some(0),
        "{json}"
    );
    assert_eq!(
        std::fs::read_dir(worker_dir.path()).unwrap().count(),
        0,
        "the worker wrote nothing where it runs"
    );
    json
}

/// A headless standalone run of `script` in `dir`; its output.
fn standalone(dir: &TempDir, script: &str) -> (Option<i32>, Proc) {
    let mut p = Proc::swarmer(
        "swarmer",
        dir.path(),
        &[
            "-f",
            script,
            "--headless",
            "--json",
            "--only-summary",
            "--no-history",
            "-u",
            "1",
            "-t",
            "1s",
        ],
    );
    let status = p.wait_exit(LONG).expect("swarmer exits");
    (status.code(), p)
}

#[test]
fn a_file_read_only_at_run_time_must_be_named_even_where_it_exists() {
    let _serial = serial();
    let dir = TempDir::new("bundle-undeclared");
    dir.write("late.csv", "a\n1\n");
    dir.write(
        "s.lua",
        r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.05) }
U:task(function(self)
  if self.done then return end
  self.done = true
  swarmer.data("late.csv")
end)
"#,
    );
    // The in-process worker reads the bundle too: what runs standalone
    // runs the same on a cluster.
    let (code, p) = standalone(&dir, "s.lua");
    assert_eq!(code, Some(1), "{}", p.tail(20));
    let json: Value = serde_json::from_str(&p.stdout()).expect("--json output");
    let errors = json["exceptions"].to_string();
    assert!(
        errors.contains(r#"swarmer.data(\"late.csv\"): \"late.csv\" did not come with the script"#)
            && errors.contains("swarmer.files"),
        "{errors}"
    );
}

#[test]
fn paths_out_of_the_folder_and_files_over_the_limit_are_refused_at_load() {
    let _serial = serial();
    let dir = TempDir::new("bundle-refused");
    let inner = dir.path().join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    dir.write("secret.csv", "a\n1\n");
    dir.write("inner/up.lua", "swarmer.data(\"../secret.csv\")\n");
    let (code, p) = standalone(&dir, "inner/up.lua");
    assert_eq!(code, Some(2), "{}", p.tail(20));
    p.expect_line(
        LONG,
        "inner/up.lua:1: swarmer.data(\"../secret.csv\"): \"../secret.csv\": the path leaves the script's folder",
    );

    let big = vec![b'x'; 13 * 1024 * 1024];
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    dir.write("heavy.lua", "\n\nswarmer.files { \"big.bin\" }\n");
    let (code, p) = standalone(&dir, "heavy.lua");
    assert_eq!(code, Some(2), "{}", p.tail(20));
    p.expect_line(
        LONG,
        "heavy.lua:3: swarmer.files: \"big.bin\": the script's files would weigh 13631488 bytes with it, above the limit of 12582912 bytes (12 MiB)",
    );
}

/// Requires a module beside it, a nested `dir.mod` and a package
/// (`pkg/init.lua`); the modules name the requests and say how many.
const MODULAR: &str = r#"
local paths = require "helpers"
local names = require "lib.names"
local plan = require "plan"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self)
  self.n = (self.n or 0) + 1
  if self.n > plan.per_user then swarmer.sleep(60) return end
  self.http:get(paths.item(self.n), { name = names.item })
end)
"#;

#[test]
fn a_worker_in_an_empty_folder_runs_a_script_with_the_modules_it_requires() {
    let _serial = serial();
    let master_dir = TempDir::new("modules-master");
    let worker_dir = TempDir::new("modules-worker");
    let target = DemoTarget::start(master_dir.path());
    for folder in ["lib", "plan"] {
        std::fs::create_dir_all(master_dir.path().join(folder)).unwrap();
    }
    master_dir.write("modular.lua", MODULAR);
    master_dir.write(
        "helpers.lua",
        "local names = require 'lib.names'\nreturn { item = function(n) return '/item/' .. n end }\n",
    );
    master_dir.write("lib/names.lua", "return { item = 'module item' }\n");
    master_dir.write("plan/init.lua", "return { per_user = 3 }\n");
    let json = run_far(
        &master_dir,
        &worker_dir,
        "modular.lua",
        &["-H", &target.url],
    );
    let got = entries(&json);
    let item = got
        .iter()
        .find(|(m, n, _)| m == "GET" && n == "module item");
    // Two users, three requests each; the target saw exactly those.
    assert_eq!(item.map(|e| e.2), Some(6), "{got:?}");
    assert_eq!(target.served(), 6);
}

#[test]
fn modules_that_escape_are_missing_or_do_not_compile_are_refused_at_load() {
    let _serial = serial();
    let dir = TempDir::new("modules-refused");
    std::fs::create_dir_all(dir.path().join("inner")).unwrap();
    std::fs::create_dir_all(dir.path().join("lib")).unwrap();
    dir.write("secret.lua", "return {}\n");
    dir.write("inner/up.lua", "\nlocal s = require \"../secret\"\n");
    let (code, p) = standalone(&dir, "inner/up.lua");
    assert_eq!(code, Some(2), "{}", p.tail(20));
    p.expect_line(
        LONG,
        "inner/up.lua:2: require \"../secret\": the module leaves the script's folder (through \"..\")",
    );

    dir.write(
        "missing.lua",
        "local a = 1\nlocal m = require \"lib.nope\"\n",
    );
    let (code, p) = standalone(&dir, "missing.lua");
    assert_eq!(code, Some(2), "{}", p.tail(20));
    p.expect_line(
        LONG,
        "missing.lua:2: require \"lib.nope\": no such module in the script's folder (looked for lib/nope.lua and lib/nope/init.lua)",
    );

    dir.write("lib/broken.lua", "local t = {\n  a = = 1,\n}\nreturn t\n");
    dir.write("syntax.lua", "\n\nlocal b = require \"lib.broken\"\n");
    let (code, p) = standalone(&dir, "syntax.lua");
    assert_eq!(code, Some(2), "{}", p.tail(20));
    p.expect_line(
        LONG,
        "syntax.lua:3: require \"lib.broken\": lib/broken.lua:2: unexpected symbol near '='",
    );
}

/// The stats rows of `url`'s `/stats/requests` named `name`, once some are.
fn wait_for_entry(url: &str, name: &str) -> Value {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let stats = get_json(&format!("{url}/stats/requests"));
        let rows = stats["stats"].as_array().cloned().unwrap_or_default();
        if rows.iter().any(|e| e["name"] == name) {
            return stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {name:?} in {stats:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn post(url: &str, form: &str) {
    let (code, body) = http_post_form(url, form).expect("POST");
    assert_eq!(code, 200, "POST {url}: {body}");
}

#[test]
fn a_module_edited_between_runs_reaches_the_workers_with_the_next_run() {
    let _serial = serial();
    let master_dir = TempDir::new("modules-edit-master");
    let worker_dir = TempDir::new("modules-edit-worker");
    master_dir.write(
        "s.lua",
        r#"
local names = require "names"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.05) }
U:task(function(self)
  if self.done then return end
  self.done = true
  swarmer.record { type = "mod", name = names.name, duration_ms = 1 }
end)
"#,
    );
    master_dir.write("names.lua", "return { name = 'first' }\n");
    let master = Master::start(
        master_dir.path(),
        &["-f", "s.lua", "--web-host", "127.0.0.1", "--web-port", "0"],
    );
    let url = master.web_url();
    let _w = worker(worker_dir.path(), master.port, "far", &["--cores", "1"]);
    let joined = std::time::Instant::now() + LONG;
    while get_json(&format!("{url}/stats/requests"))["worker_count"] != 1 {
        assert!(
            std::time::Instant::now() < joined,
            "the worker never joined"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    post(&format!("{url}/swarm"), "user_count=1&spawn_rate=10");
    wait_for_entry(&url, "first");
    post(&format!("{url}/stop"), "");
    let stopped = std::time::Instant::now() + LONG;
    while get_json(&format!("{url}/stats/requests"))["state"] != "stopped" {
        assert!(std::time::Instant::now() < stopped, "the run never stopped");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Edited: it now requires a module the first run never sent.
    master_dir.write(
        "names.lua",
        "local more = require 'more'\nreturn { name = 'second' .. more.tail }\n",
    );
    master_dir.write("more.lua", "return { tail = '+more' }\n");
    post(&format!("{url}/stats/reset"), "");
    post(&format!("{url}/swarm"), "user_count=1&spawn_rate=10");
    let stats = wait_for_entry(&url, "second+more");
    assert_eq!(
        stats["errors"].as_array().map(Vec::len),
        Some(0),
        "{stats:#}"
    );
}
