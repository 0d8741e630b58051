//! The Lua API apart from HTTP: loading errors, inspect, exceptions, tags,
//! sequential tasks, on_start/on_stop, data files, custom requests, pacing
//! and stopping.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::*;
use script::{CoreRuntime, RuntimeConfig, ScriptError, ScriptSource, TaskInfo, UserTypeInfo};
use stats::RequestStats;

const MAX: Duration = Duration::from_secs(10);

fn load_error(code: &str) -> String {
    match script::inspect(&source(code)) {
        Err(ScriptError::Load { message }) => message,
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[test]
fn syntax_error_names_file_and_line() {
    let msg = load_error("local U = swarmer.user {}\n\nU:task(function(self)\n  x = = 1\nend)\n");
    assert!(msg.starts_with("test.lua:4:"), "{msg}");
}

#[test]
fn runtime_errors_while_loading_name_file_and_line() {
    let msg = load_error("local U = swarmer.user {}\nlocal x = nil\nprint(x.y)\n");
    assert!(msg.starts_with("test.lua:3:"), "{msg}");
    let msg = load_error("local U = swarmer.user { wiat = 1 }\n");
    assert!(
        msg.starts_with("test.lua:1: swarmer.user: unknown option \"wiat\""),
        "{msg}"
    );
    let msg = load_error("local U = swarmer.user {}\nU:task(0, function() end)\n");
    assert!(
        msg.starts_with("test.lua:2: task weight must be a whole number >= 1"),
        "{msg}"
    );
    let msg = load_error("\nswarmer.user { wait = swarmer.between(3, 1) }\n");
    assert!(msg.starts_with("test.lua:2: swarmer.between"), "{msg}");
    let msg = load_error("swarmer.user { name = 'A' }\nswarmer.user { name = 'A' }\n");
    assert!(
        msg.contains("test.lua:2:") && msg.contains("already defined"),
        "{msg}"
    );
    let msg = load_error("swarmer.user { host = 'localhost:8080' }\n");
    assert!(msg.starts_with("test.lua:1: swarmer.user: host"), "{msg}");
}

#[test]
fn long_paths_are_not_shortened() {
    let path = format!(
        "/tmp/{}/deeply/nested/directory/for/the/script.lua",
        "x".repeat(40)
    );
    let src = ScriptSource {
        path: path.clone(),
        code: "swarmer.user {}\nerror('boom')\n".to_string(),
    };
    match script::inspect(&src) {
        Err(ScriptError::Load { message }) => {
            assert!(message.starts_with(&format!("{path}:2: boom")), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_user_types_is_an_error() {
    assert!(matches!(
        script::inspect(&source("local x = 1")),
        Err(ScriptError::NoUserTypes)
    ));
}

#[test]
fn inspect_lists_user_types() {
    let info = script::inspect(&source(
        r#"
local Shopper = swarmer.user { name = "Shopper", weight = 3, wait = swarmer.between(1, 3), host = "http://127.0.0.1:8080" }
Shopper:task(5, function(self) end)
Shopper:task { weight = 2, name = "item", tags = { "browse", "x" }, fn = function(self) end }
Shopper:task(function(self) end)
local Admin = swarmer.user { fixed_count = 2, wait = 1 }
Admin:task { fn = function(self) end, tags = "admin" }
"#,
    ))
    .unwrap();
    let task = |name: &str, weight, tags: &[&str]| TaskInfo {
        name: name.to_string(),
        weight,
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    assert_eq!(
        info.user_types,
        vec![
            UserTypeInfo {
                name: "Shopper".into(),
                weight: 3,
                fixed_count: None,
                host: Some("http://127.0.0.1:8080".into()),
                tasks: vec![
                    task("task1", 5, &[]),
                    task("item", 2, &["browse", "x"]),
                    task("task3", 1, &[])
                ],
                arrivals: None,
            },
            UserTypeInfo {
                name: "User2".into(),
                weight: 1,
                fixed_count: Some(2),
                host: None,
                tasks: vec![task("task1", 1, &["admin"])],
                arrivals: None,
            },
        ]
    );
}

#[test]
fn unknown_user_type() {
    let stats = Rc::new(RefCell::new(RequestStats::new(0)));
    let core = CoreRuntime::new(
        &source("swarmer.user { name = 'A' }"),
        RuntimeConfig::default(),
        stats,
    )
    .unwrap();
    match core.run_user("B", tokio_util::sync::CancellationToken::new()) {
        Err(ScriptError::UnknownUserType { name, known }) => {
            assert_eq!((name.as_str(), known.as_str()), ("B", "A"))
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn a_task_that_raises_is_recorded_and_the_user_goes_on() {
    let code = r#"
local U = swarmer.user { name = "U" }
local n = 0
U:task(function(self)
  n = n + 1
  if n > 6 then swarmer.sleep(1000) return end
  if n % 2 == 1 then
    error("kaboom")
  end
  local t = nil
  swarmer.record { type = "x", name = "ok", duration_ms = 1 }
  if n == 4 then swarmer.data("missing.csv") end
end)
"#;
    let stats = run_users(
        code,
        RuntimeConfig {
            node_id: "w1".into(),
            ..Default::default()
        },
        &[("U", 1)],
        |s| s.exceptions().map(|e| e.count).sum::<u64>() >= 4,
        MAX,
    );
    assert_eq!(count(&stats, "x", "ok"), (3, 0));
    let kaboom = stats
        .exceptions()
        .find(|e| e.message == "test.lua:8: kaboom")
        .expect("kaboom");
    assert_eq!(kaboom.count, 3);
    assert!(
        kaboom.traceback.contains("stack traceback"),
        "{}",
        kaboom.traceback
    );
    assert!(
        kaboom.traceback.contains("test.lua:8"),
        "{}",
        kaboom.traceback
    );
    assert!(kaboom.nodes.contains("w1"));
    let data = stats
        .exceptions()
        .find(|e| e.message.contains("missing.csv"))
        .expect("data error");
    assert!(
        data.message
            .starts_with("test.lua:12: swarmer.data(\"missing.csv\"): cannot read"),
        "{}",
        data.message
    );
}

#[test]
fn json_of_a_non_json_body_is_a_clear_error() {
    let addr = start_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  self.http:get("/"):json()
end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.exceptions().len() >= 1,
        MAX,
    );
    let ex = exceptions(&stats);
    assert!(
        ex[0].starts_with("test.lua:6: r:json(): the body of GET / (status 200) is not JSON"),
        "{ex:?}"
    );
    // The request itself still counts, as a success.
    assert_eq!(count(&stats, "GET", "/"), (1, 0));
}

#[test]
fn tags_and_exclude_tags_filter_tasks() {
    let code = r#"
local U = swarmer.user { name = "U" }
U:task { tags = { "a" }, fn = function() swarmer.record { type = "t", name = "a", duration_ms = 1 } swarmer.sleep(0.001) end }
U:task { tags = { "b" }, fn = function() swarmer.record { type = "t", name = "b", duration_ms = 1 } swarmer.sleep(0.001) end }
U:task { tags = { "a", "c" }, fn = function() swarmer.record { type = "t", name = "ac", duration_ms = 1 } swarmer.sleep(0.001) end }
U:task { fn = function() swarmer.record { type = "t", name = "none", duration_ms = 1 } swarmer.sleep(0.001) end }
"#;
    let names = |config: RuntimeConfig| {
        let stats = run_users(code, config, &[("U", 2)], |s| s.num_requests() >= 200, MAX);
        stats.entries().map(|e| e.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(RuntimeConfig::default()), ["a", "ac", "b", "none"]);
    assert_eq!(
        names(RuntimeConfig {
            tags: vec!["a".into()],
            ..Default::default()
        }),
        ["a", "ac"]
    );
    assert_eq!(
        names(RuntimeConfig {
            exclude_tags: vec!["c".into(), "b".into()],
            ..Default::default()
        }),
        ["a", "none"]
    );
    assert_eq!(
        names(RuntimeConfig {
            tags: vec!["a".into()],
            exclude_tags: vec!["c".into()],
            ..Default::default()
        }),
        ["a"]
    );
}

#[test]
fn a_user_without_tasks_idles_until_stopped() {
    let code = r#"
local U = swarmer.user { name = "U" }
function U:on_start() swarmer.record { type = "hook", name = "start", duration_ms = 0 } end
function U:on_stop() swarmer.record { type = "hook", name = "stop", duration_ms = 0 } end
U:task { tags = { "a" }, fn = function() swarmer.record { type = "t", name = "a", duration_ms = 1 } end }
"#;
    let config = RuntimeConfig {
        tags: vec!["zzz".into()],
        ..Default::default()
    };
    let start = Instant::now();
    let stats = run_users(
        code,
        config,
        &[("U", 2)],
        |_| false,
        Duration::from_millis(200),
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(count(&stats, "hook", "start"), (2, 0));
    assert_eq!(count(&stats, "hook", "stop"), (2, 0));
    assert_eq!(count(&stats, "t", "a"), (0, 0));
}

#[test]
fn sequential_tasks_run_in_order_weight_times() {
    let code = r#"
local U = swarmer.user { name = "U", sequential = true }
local order = {}
local function step(name)
  return function()
    order[#order + 1] = name
    if #order == 8 then
      local got = table.concat(order, ",")
      swarmer.record { type = "order", name = got, duration_ms = 0 }
    end
  end
end
U:task(1, step("a"))
U:task(2, step("b"))
U:task { name = "c", fn = step("c") }
"#;
    let stats = run_users(
        code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 1,
        MAX,
    );
    assert_eq!(count(&stats, "order", "a,b,b,c,a,b,b,c"), (1, 0));
}

#[test]
fn weighted_tasks_follow_their_weights() {
    let code = r#"
local U = swarmer.user { name = "U" }
U:task(3, function() swarmer.record { type = "t", name = "heavy", duration_ms = 0 } end)
U:task(1, function() swarmer.record { type = "t", name = "light", duration_ms = 0 } end)
"#;
    let stats = run_users(
        code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 4000,
        MAX,
    );
    let heavy = count(&stats, "t", "heavy").0 as f64;
    let light = count(&stats, "t", "light").0 as f64;
    let ratio = heavy / light;
    assert!((2.5..3.6).contains(&ratio), "ratio {ratio}");
}

#[test]
fn on_start_and_on_stop_run_once_per_user() {
    let code = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
function U:on_start()
  self.started = true
  swarmer.record { type = "hook", name = "start", duration_ms = 0 }
end
function U:helper() return self.user_type end
U:task(function(self)
  assert(self.started and self:helper() == "U" and self.id >= 1)
  swarmer.record { type = "t", name = "task", duration_ms = 0 }
end)
function U:on_stop()
  swarmer.record { type = "hook", name = "stop", duration_ms = 0 }
end
"#;
    let stats = run_users(
        code,
        RuntimeConfig::default(),
        &[("U", 3)],
        |s| count(s, "t", "task").0 >= 30,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(count(&stats, "hook", "start"), (3, 0));
    assert_eq!(count(&stats, "hook", "stop"), (3, 0));
}

#[test]
fn stop_cuts_sleeps_and_waits_short() {
    let code = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(1000) }
U:task(function(self)
  swarmer.record { type = "t", name = "before", duration_ms = 0 }
  swarmer.sleep(1000)
  swarmer.record { type = "t", name = "after", duration_ms = 0 }
end)
"#;
    let start = Instant::now();
    let stats = run_users(
        code,
        RuntimeConfig::default(),
        &[("U", 2)],
        |s| s.num_requests() >= 2,
        MAX,
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    // The task in progress finishes after its sleep is cut short.
    assert_eq!(count(&stats, "t", "before"), (2, 0));
    assert_eq!(count(&stats, "t", "after"), (2, 0));
}

#[test]
fn custom_records() {
    let code = r#"
local U = swarmer.user { name = "U" }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  local t0 = swarmer.now_ms()
  swarmer.record { type = "grpc", name = "Say", duration_ms = 12.5, length = 10 }
  swarmer.record { type = "grpc", name = "Say", duration_ms = 30, success = false, error = "boom" }
  swarmer.record { type = "grpc", name = "Say", duration_ms = 1, success = false }
  assert(swarmer.now_ms() >= t0)
end)
"#;
    let stats = run_users(
        code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 3,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(count(&stats, "grpc", "Say"), (3, 2));
    assert_eq!(error_count(&stats, "grpc", "Say", "boom"), 1);
    assert_eq!(error_count(&stats, "grpc", "Say", "failed"), 1);
    let e = stats.entry("grpc", "Say").unwrap();
    assert_eq!(e.total_content_length, 10);
    assert_eq!(e.max_response_time_us, 30_000);
    assert!(e.due_histogram.is_none());
}

#[test]
fn data_files_csv_and_json() {
    let dir = std::env::temp_dir().join(format!("swarmer-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("users.csv"),
        "name, password\nalice,a1\nbob,\"b,2\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("conf.json"),
        r#"{"items":[1,2,3],"nested":{"k":"v"},"none":null}"#,
    )
    .unwrap();
    let code = r#"
local users = swarmer.data("users.csv")
assert(#users == 2 and users[1].name == "alice" and users[2].password == "b,2")
local U = swarmer.user { name = "U" }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  local again = swarmer.data("users.csv")
  assert(again == users, "loaded once per core")
  local conf = swarmer.data("conf.json")
  assert(#conf.items == 3 and conf.items[3] == 3 and conf.nested.k == "v" and conf.none == nil)
  assert(swarmer.env("SWARMER_SURELY_UNSET_VAR", "dflt") == "dflt")
  assert(swarmer.env("SWARMER_SURELY_UNSET_VAR") == nil)
  local r = swarmer.random(3, 5)
  assert(r >= 3 and r <= 5 and math.floor(r) == r)
  local f = swarmer.random()
  assert(f >= 0 and f < 1)
  swarmer.log("logging", 1, true)
  swarmer.log.warn("careful")
  swarmer.record { type = "t", name = "done", duration_ms = 0 }
end)
"#;
    let config = RuntimeConfig {
        base_dir: Some(dir.clone()),
        ..Default::default()
    };
    let stats = run_users(code, config, &[("U", 2)], |s| s.num_requests() >= 2, MAX);
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(count(&stats, "t", "done"), (2, 0));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn paced_users_record_due_latency() {
    let addr = start_server();
    // Each iteration takes ~60 ms but is due every 20 ms: iterations start
    // later and later, and due latency grows past the response time.
    let code = with_host(
        r#"
local P = swarmer.user { name = "P", host = HOST, wait = swarmer.constant_throughput(50) }
P:task(function(self) self.http:get("/slow?ms=60", { name = "slow" }) end)
local Q = swarmer.user { name = "Q", host = HOST }
Q:task(function(self) self.http:get("/slow?ms=5", { name = "fast" }) swarmer.sleep(0.05) end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("P", 1), ("Q", 1)],
        |s| count(s, "GET", "slow").0 >= 6,
        MAX,
    );
    let slow = stats.entry("GET", "slow").unwrap();
    let due = slow
        .due_histogram
        .as_ref()
        .expect("paced requests carry due latency");
    assert!(
        due.max_us() > slow.max_response_time_us + 100_000,
        "due max {} vs {}",
        due.max_us(),
        slow.max_response_time_us
    );
    assert!(stats.entry("GET", "fast").unwrap().due_histogram.is_none());
}

#[test]
fn custom_wait_function() {
    let code = r#"
local U = swarmer.user { name = "U", wait = function(self) return 0.001 end }
U:task(function(self) swarmer.record { type = "t", name = "x", duration_ms = 0 } end)
"#;
    let stats = run_users(
        code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 10,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert!(count(&stats, "t", "x").0 >= 10);
}
