//! LuaJIT against Lua 5.4 under swarmer's own engine: users whose task
//! suspends its coroutine once (the shape of every HTTP task, without the
//! network), and users whose task is heavy on tables and strings.
//!
//! cargo bench -p script --bench lua_engine
//! cargo bench -p script --no-default-features --features lua54 --bench lua_engine

mod common;

use script::RuntimeConfig;

const TRIVIAL: &str = r#"
local U = swarmer.user { name = "U" }
U:task(function(self)
  swarmer.sleep(0)
  swarmer.record { type = "t", name = "trivial", duration_ms = 1 }
end)
"#;

const HEAVY: &str = r#"
local U = swarmer.user { name = "U" }
U:task(function(self)
  local parts = {}
  for i = 1, 50 do parts[i] = string.format("item-%d:%s", i, tostring(i * 3)) end
  local s = table.concat(parts, ",")
  local total = 0
  for w in s:gmatch("[^,]+") do total = total + #w end
  local t = { user = self.id, items = parts, n = total, nested = { a = 1, b = { c = "x" } } }
  local keys = 0
  for k, v in pairs(t) do keys = keys + 1 end
  s = s:gsub("item", "x"):upper()
  local q = swarmer.json.encode({ name = s:sub(1, 20), n = total, keys = keys })
  local back = swarmer.json.decode(q)
  swarmer.sleep(0)
  swarmer.record { type = "t", name = "heavy", duration_ms = 1, length = #back.name }
end)
"#;

fn main() {
    let secs = common::env_or("SWARMER_BENCH_SECS", 3.0);
    let users = common::env_or("SWARMER_BENCH_USERS", 50);
    for (label, code) in [
        ("trivial task", TRIVIAL),
        ("table/string-heavy task", HEAVY),
    ] {
        let r = common::rate(code, RuntimeConfig::default(), users, secs);
        println!(
            "{:<8} {label:<24} {r:>10.0} tasks/s ({users} users, one core)",
            common::interpreter()
        );
    }
}
