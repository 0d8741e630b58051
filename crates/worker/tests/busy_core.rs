//! A core stuck in a long Lua call must not stall the engine's collections
//! (the session's heartbeats and reports wait on them), and what it counted
//! must arrive once the watchdog has interrupted it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use script::{LuaLimits, ScriptSource};
use worker::{Engine, EngineConfig};

mod support;

const SPIN_ONCE: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
local spun = false
U:task(function(self)
  swarmer.record { type = "t", name = "before", duration_ms = 0 }
  if not spun then
    spun = true
    while true do end
  end
end)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_busy_core_delays_its_numbers_but_never_loses_them() {
    let mut engine = Engine::start(EngineConfig {
        limits: LuaLimits {
            task_time: Duration::from_secs(1),
            ..LuaLimits::default()
        },
        stop_timeout: Duration::from_secs(10),
        ..support::one_core()
    })
    .unwrap();
    let src = ScriptSource {
        path: "spin.lua".into(),
        code: SPIN_ONCE.into(),
    };
    engine.load(&src, None, vec![], vec![]).await.unwrap();
    let users = BTreeMap::from([("U".to_string(), 1)]);
    engine
        .apply(&users, 0.0, std::time::Instant::now())
        .unwrap();

    let wait = Duration::from_millis(50);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut before, mut exceptions, mut late) = (0, Vec::new(), 0);
    while Instant::now() < deadline && (before < 2 || exceptions.is_empty()) {
        let asked = Instant::now();
        let c = engine.collect(wait).await.unwrap();
        // Never waits on the core beyond the bound, spinning or not.
        assert!(
            asked.elapsed() < wait + Duration::from_millis(500),
            "{:?}",
            asked.elapsed()
        );
        late += c.late_cores;
        before += c.stats.entry("t", "before").map_or(0, |e| e.num_requests);
        exceptions.extend(c.stats.exceptions().map(|e| e.message.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(late > 0, "the core was never late: did it spin?");
    assert!(
        before >= 2,
        "the sample recorded before the spin and later ones arrive: {before}"
    );
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    assert!(
        exceptions[0].starts_with("spin.lua:8: task ran for more than 1 s"),
        "{exceptions:?}"
    );
    engine.stop(Duration::from_secs(1)).await.unwrap();
}
