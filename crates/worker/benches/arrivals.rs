//! Arrival timing on this machine: one core runs an arrival-driven type at
//! 1,000 and at 20,000 arrivals a second for 30 s (`SWARMER_BENCH_SECS` to
//! change it) and prints the delivered rate against the configured one, the
//! arrivals dropped, and the lateness of task starts against their due
//! times (p50/p99/max).
//!
//! Each task records one zero-length sample (`swarmer.record`), so what is
//! measured is the schedule, the pool and the core, not a target: a
//! recorded sample's due-time latency is exactly its task's lateness.
//!
//!   cargo bench -p worker --bench arrivals

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use script::{LuaLimits, ScriptSource};
use worker::{Engine, EngineConfig};

const RATES: [u32; 2] = [1_000, 20_000];

fn main() {
    let secs: u64 = std::env::var("SWARMER_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("arrivals: 1 core, {secs} s per rate");
    for rate in RATES {
        rt.block_on(measure(rate, Duration::from_secs(secs)));
    }
}

async fn measure(rate: u32, window: Duration) {
    let script = ScriptSource {
        path: "arrivals-bench.lua".into(),
        code: format!(
            r#"
local A = swarmer.user {{
  name = "A",
  arrivals = {{ rate = {rate}, per = "1s", pre_allocated = 100, max_users = 10000 }},
}}
A:task(function(self) swarmer.record {{ type = "arrival", name = "a", duration_ms = 0 }} end)
"#
        ),
    };
    let mut engine = Engine::start(EngineConfig {
        cores: 1,
        node_id: "bench".into(),
        insecure_tls: false,
        http: Default::default(),
        base_dir: None,
        limits: LuaLimits::default(),
        stop_timeout: std::time::Duration::from_secs(10),
    })
    .expect("engine");
    engine
        .load(&script, None, Vec::new(), Vec::new())
        .await
        .expect("load");
    let share = protocol::ArrivalShare {
        share: 1.0,
        pre_allocated: 100,
        max_users: 10_000,
        elapsed_ms: 0,
    };
    let started = Instant::now();
    engine
        .apply_arrivals(&BTreeMap::from([("A".to_string(), share)]))
        .expect("apply");
    tokio::time::sleep(window).await;
    // Stop at once: what the window delivered is what was recorded in it.
    engine.apply_arrivals(&BTreeMap::new()).expect("stop");
    let elapsed = started.elapsed().as_secs_f64();
    let collected = engine
        .collect(Duration::from_secs(10))
        .await
        .expect("collect");
    let stats = collected.stats;
    let entry = stats.entry("arrival", "a").expect("recorded arrivals");
    let delivered = entry.num_requests as f64 / elapsed;
    let pct = |q| entry.due_percentile_ms(q).unwrap_or(f64::NAN);
    println!(
        "rate {rate}/s: delivered {delivered:.1}/s over {elapsed:.2} s ({:+.2}%), {} arrivals, \
         {} dropped; lateness p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        (delivered / f64::from(rate) - 1.0) * 100.0,
        entry.num_requests,
        stats.dropped_iterations_total(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
    engine.stop(Duration::from_secs(5)).await.expect("stop");
}
