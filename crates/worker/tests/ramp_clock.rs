//! A ramp follows the clock of the plan's arrival, not of the end of the
//! script's load: a script that takes 400 ms to load, ramped at 100 users
//! a second, has about 40 users right after loading, not a handful
//! (bench/ramp.sh saw workers 70 ms behind the master's plan for this).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use script::ScriptSource;
use worker::Engine;

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_ramp_makes_up_the_load_time() {
    let mut engine = Engine::start(support::one_core()).unwrap();
    let src = ScriptSource {
        path: "slow_load.lua".into(),
        code: "local t = os.clock()\n\
               while os.clock() - t < 0.4 do end\n\
               local U = swarmer.user { name = 'U', wait = swarmer.constant(1) }\n\
               U:task(function(self) end)\n"
            .into(),
    };
    let received = Instant::now();
    engine.load(&src, None, vec![], vec![]).await.unwrap();
    let loaded = received.elapsed();
    engine
        .apply(&BTreeMap::from([("U".to_string(), 1000)]), 100.0, received)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // What is due when the count is asked for: a collect that waits its turn
    // on a loaded machine must not raise the bar it is measured against.
    let asked = received.elapsed();
    let due = (asked.as_secs_f64() * 100.0) as u32;
    let c = engine.collect(Duration::from_secs(2)).await.unwrap();
    let made_up = (loaded.as_secs_f64() * 100.0) as u32;
    assert!(made_up >= 35, "the load took {loaded:?}");
    assert!(
        c.user_count() + 5 >= due.min(1000) && c.user_count() >= made_up,
        "{} users, {due} due after {asked:?} (load {loaded:?})",
        c.user_count(),
    );
}
