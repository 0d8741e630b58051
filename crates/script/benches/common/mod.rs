//! Shared by the benchmarks: run users of a script on one current-thread
//! runtime (as one worker core does) for a while and count what they did.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use script::{CoreRuntime, RuntimeConfig, ScriptSource};
use stats::RequestStats;
use tokio_util::sync::CancellationToken;

/// User + system CPU time of this process, from /proc (Linux only; 0
/// elsewhere).
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

/// (user, system) CPU seconds of this process.
pub fn cpu_split() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

pub fn interpreter() -> &'static str {
    if cfg!(feature = "lua54") {
        "Lua 5.4"
    } else {
        "LuaJIT"
    }
}

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `users` users of type "U" for `secs` (after a 0.5 s warm-up) and
/// returns recorded requests per second.
pub fn rate(code: &str, config: RuntimeConfig, users: usize, secs: f64) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let stats = Rc::new(RefCell::new(RequestStats::new(0)));
        let src = ScriptSource {
            path: "bench.lua".into(),
            code: code.into(),
        };
        let core = CoreRuntime::new(&src, config, stats.clone()).unwrap();
        let stop = CancellationToken::new();
        for _ in 0..users {
            tokio::task::spawn_local(core.run_user("U", stop.clone()).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = stats.borrow().num_requests();
        let start = Instant::now();
        let cpu0 = cpu_seconds();
        let split0 = cpu_split();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let n = stats.borrow().num_requests() - before;
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let split1 = cpu_split();
        eprintln!(
            "CPU user {:.2} s, system {:.2} s",
            split1.0 - split0.0,
            split1.1 - split0.1
        );
        // Other processes on a shared machine steal the core now and then;
        // requests per CPU-second of this process is the steadier figure.
        if cpu > 0.0 {
            eprintln!(
                "{n} requests in {elapsed:.2} s wall, {cpu:.2} s CPU: {:.0} per CPU-second",
                n as f64 / cpu
            );
        }
        stop.cancel();
        let failures = stats.borrow().num_failures();
        if failures > 0 {
            eprintln!("warning: {failures} failures");
        }
        n as f64 / elapsed
    })
}
