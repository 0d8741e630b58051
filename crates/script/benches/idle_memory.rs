//! Resident memory per idle user: 1,000 then 10,000 users of a type that
//! waits 60 s between tasks, on one current-thread runtime; the difference
//! divided by 9,000 is what one more idle user costs (Lua table, HTTP
//! client shell, future and timer; no coroutine is held while waiting).
//!
//! cargo bench -p script --bench idle_memory

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use script::{CoreRuntime, RuntimeConfig, ScriptSource};
use stats::RequestStats;
use tokio_util::sync::CancellationToken;

const IDLE: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(60), host = "http://127.0.0.1:9" }
function U:on_start() self.cart = {} end
U:task(function(self) self.visits = (self.visits or 0) + 1 end)
"#;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let stats = Rc::new(RefCell::new(RequestStats::new(0)));
        let src = ScriptSource {
            path: "idle.lua".into(),
            code: IDLE.into(),
        };
        let core = CoreRuntime::new(&src, RuntimeConfig::default(), stats).unwrap();
        let stop = CancellationToken::new();
        let mut spawned = 0;
        let mut at = Vec::new();
        for target in [1_000usize, 10_000] {
            while spawned < target {
                tokio::task::spawn_local(core.run_user("U", stop.clone()).unwrap());
                spawned += 1;
            }
            // Let every user run on_start and its first task, then wait.
            tokio::time::sleep(Duration::from_millis(300)).await;
            at.push((target, rss_bytes(), core.lua_memory()));
        }
        let (n0, rss0, lua0) = at[0];
        let (n1, rss1, lua1) = at[1];
        let per_user = (rss1 - rss0) as f64 / (n1 - n0) as f64;
        let lua_per_user = (lua1 - lua0) as f64 / (n1 - n0) as f64;
        println!(
            "{}: RSS {:.1} MiB at {n0} users, {:.1} MiB at {n1}: {:.0} bytes ({:.1} KiB) per idle user, of which Lua heap {:.0} bytes",
            common::interpreter(),
            rss0 as f64 / 1048576.0,
            rss1 as f64 / 1048576.0,
            per_user,
            per_user / 1024.0,
            lua_per_user
        );
        stop.cancel();
    });
}
