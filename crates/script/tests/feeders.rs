//! `swarmer.feeder`: the per-core strategies (circular, sequential,
//! random), `unique` against a stand-in for the master's leases, and the
//! errors of bad options and of rows that run out.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{exceptions, run_users, source};
use script::{LeaseRequest, RuntimeConfig};

const MAX: Duration = Duration::from_secs(20);

/// Rows named by what each `next()` returned, in order, per feeder.
fn rows_by_name(stats: &stats::RequestStats) -> BTreeMap<String, u64> {
    stats
        .entries()
        .map(|e| (e.name.to_string(), e.num_requests))
        .collect()
}

#[test]
fn per_core_strategies_walk_wrap_stop_and_draw() {
    let code = r#"
local rows = { { n = "a" }, { n = "b" }, { n = "c" } }
local circ = swarmer.feeder(rows)
local seq = swarmer.feeder(rows, { strategy = "sequential", name = "seq" })
local rnd = swarmer.feeder(rows, { strategy = "random" })
assert(circ.name == "feeder 1" and circ.size == 3 and seq.name == "seq")
local U = swarmer.user { name = "U" }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  local walked = ""
  for _ = 1, 5 do walked = walked .. circ:next().n end
  swarmer.record { type = "circular", name = walked, duration_ms = 0 }
  for _ = 1, 200 do
    local n = rnd:next().n
    assert(n == "a" or n == "b" or n == "c", n)
  end
  for _ = 1, 3 do swarmer.record { type = "seq", name = seq:next().n, duration_ms = 0 } end
  swarmer.record { type = "t", name = "before the end", duration_ms = 0 }
  seq:next()
end)
"#;
    let stats = run_users(
        code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 5,
        MAX,
    );
    let rows = rows_by_name(&stats);
    assert_eq!(rows.get("abcab"), Some(&1), "{rows:?}");
    for n in ["a", "b", "c", "before the end"] {
        assert_eq!(rows.get(n), Some(&1), "{rows:?}");
    }
    assert_eq!(
        exceptions(&stats),
        ["test.lua:20: feeder \"seq\" (sequential): all 3 rows are used on this core"]
    );
}

/// Answers leases as the master does: the next `want` rows of `rows`.
fn lease_server() -> (script::LeaseSender, Arc<Mutex<u32>>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<LeaseRequest>();
    let given = Arc::new(Mutex::new(0u32));
    let count = given.clone();
    std::thread::spawn(move || {
        while let Some(req) = rx.blocking_recv() {
            let mut next = count.lock().unwrap();
            let first = *next;
            let end = (first + req.want).min(req.rows);
            *next = end;
            let _ = req.reply.send(Ok(first..end));
        }
    });
    (tx, given)
}

#[test]
fn a_unique_feeder_leases_rows_and_hands_each_out_once() {
    let code = r#"
local rows = {}
for i = 1, 25 do rows[i] = { n = tostring(i) } end
local acc = swarmer.feeder(rows, { strategy = "unique", name = "acc" })
local U = swarmer.user { name = "U", wait = swarmer.constant(0.001) }
U:task(function(self)
  swarmer.record { type = "row", name = acc:next().n, duration_ms = 0 }
end)
"#;
    let (leases, given) = lease_server();
    let config = RuntimeConfig {
        feeder_leases: Some(leases),
        ..Default::default()
    };
    let stats = run_users(
        code,
        config,
        &[("U", 6)],
        |s| s.exceptions().count() > 0 && s.num_requests() >= 25,
        MAX,
    );
    let rows = rows_by_name(&stats);
    assert_eq!(rows.len(), 25, "{rows:?}");
    assert!(
        rows.values().all(|&n| n == 1),
        "a row went out twice: {rows:?}"
    );
    assert_eq!(*given.lock().unwrap(), 25);
    let ex = exceptions(&stats);
    assert_eq!(
        ex,
        ["test.lua:7: feeder \"acc\" (unique): all 25 rows are used across the run"]
    );
}

#[test]
fn bad_feeder_options_are_named_at_load() {
    for (code, expected) in [
        (
            "swarmer.feeder({ 1 }, { strategy = \"shuffle\" })",
            "unknown strategy \"shuffle\"; use \"circular\", \"sequential\", \"random\" or \"unique\"",
        ),
        (
            "swarmer.feeder(\"users.csv\")",
            "rows must be an array (e.g. swarmer.data(\"users.csv\")), got a string",
        ),
        (
            "swarmer.feeder({}, { name = \"x\" })",
            "feeder \"x\" has no rows",
        ),
        (
            "swarmer.feeder({ 1 }, { strategi = \"unique\" })",
            "strategi",
        ),
    ] {
        let code =
            format!("{code}\nlocal U = swarmer.user {{ name = \"U\" }}\nU:task(function() end)");
        let err = script::inspect(&source(&code))
            .expect_err(&code)
            .to_string();
        assert!(err.starts_with("test.lua:1: swarmer.feeder"), "{err}");
        assert!(err.contains(expected), "{err}");
    }
}
