//! No script can stall or exhaust a core: a task that never yields is
//! interrupted and counted, a load that never ends fails with a message, a
//! state that allocates without bound gets a clear error, and a core holds
//! far more users than mlua's reference stack (about 8,000 handles) allows.

mod common;

use std::time::{Duration, Instant};

use common::*;
use script::{LuaLimits, RuntimeConfig, ScriptError};

fn limits(task_ms: u64, load_ms: u64, memory_bytes: usize) -> RuntimeConfig {
    RuntimeConfig {
        limits: LuaLimits {
            task_time: Duration::from_millis(task_ms),
            load_time: Duration::from_millis(load_ms),
            memory_bytes,
        },
        ..Default::default()
    }
}

#[test]
fn a_task_that_never_yields_is_interrupted_and_the_user_goes_on() {
    // The first task spins (a JIT-compiled loop with no call in it), the
    // ones after it record: the user must get past the spin.
    let code = r#"
local U = swarmer.user { name = "U" }
local spun = false
U:task(function(self)
  if not spun then
    spun = true
    while true do end
  end
  swarmer.record { type = "t", name = "after", duration_ms = 0 }
  swarmer.sleep(0.01)
end)
"#;
    let started = Instant::now();
    let stats = run_users(
        code,
        limits(300, 30_000, 0),
        &[("U", 1)],
        |s| s.num_requests() >= 3,
        Duration::from_secs(20),
    );
    let ex = exceptions(&stats);
    assert_eq!(ex.len(), 1, "{ex:?}");
    assert!(
        ex[0].starts_with("test.lua:7:") && ex[0].contains("task ran for more than 0.3 s"),
        "{ex:?}"
    );
    assert!(count(&stats, "t", "after").0 >= 3);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn catching_the_interruption_does_not_keep_the_core() {
    let code = r#"
local U = swarmer.user { name = "U" }
local n = 0
U:task(function(self)
  n = n + 1
  if n == 1 then
    for _ = 1, 3 do pcall(function() while true do end end) end
  end
  swarmer.record { type = "t", name = "after", duration_ms = 0 }
  swarmer.sleep(0.01)
end)
"#;
    let stats = run_users(
        code,
        limits(200, 30_000, 0),
        &[("U", 1)],
        |s| s.num_requests() >= 2,
        Duration::from_secs(20),
    );
    assert!(count(&stats, "t", "after").0 >= 2);
}

#[test]
fn a_script_that_loops_while_loading_fails_within_the_limit() {
    let started = Instant::now();
    let src = source("local x = 0\nwhile true do x = x + 1 end\n");
    let err = script::CoreRuntime::new(&src, limits(5_000, 300, 0), Default::default());
    let Err(ScriptError::Load { message }) = err else {
        panic!("expected a load error");
    };
    assert!(
        message.starts_with("test.lua:2:")
            && message.contains("loading the script ran for more than 0.3 s"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_state_past_its_memory_limit_gets_a_clear_error() {
    let code = r#"
local U = swarmer.user { name = "U" }
U:task(function(self)
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 64) .. i end
end)
"#;
    let stats = run_users(
        code,
        limits(30_000, 30_000, 64 << 20),
        &[("U", 1)],
        |s| s.exceptions().next().is_some(),
        Duration::from_secs(20),
    );
    let ex = exceptions(&stats);
    assert!(!ex.is_empty());
    assert!(
        ex[0].starts_with("test.lua:5: the Lua state holds")
            && ex[0].contains("past its memory limit of 64 MB (--lua-memory-limit)"),
        "{ex:?}"
    );
}

#[test]
fn a_core_runs_more_users_than_the_lua_reference_stack_holds() {
    // Every user is inside a task (holding a coroutine) and has its table:
    // 20,000 users used to fail from about 7,700 on with "out of Lua stack".
    let code = r#"
local U = swarmer.user { name = "U" }
U:task(function(self)
  swarmer.record { type = "t", name = "started", duration_ms = 0 }
  swarmer.sleep(3600)
end)
"#;
    let users = 20_000;
    let stats = run_users(
        code,
        RuntimeConfig::default(),
        &[("U", users)],
        |s| s.num_requests() >= users as u64,
        Duration::from_secs(60),
    );
    assert!(
        exceptions(&stats).is_empty(),
        "{:?}",
        exceptions(&stats).first()
    );
    assert_eq!(count(&stats, "t", "started").0, users as u64);
}
