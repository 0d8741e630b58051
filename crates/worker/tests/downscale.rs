//! A user removed by a downscale finishes its request within the stop
//! timeout, even when the previous run was cleared with no grace (the
//! session stops the old run's users at once before a new run): its
//! request is counted as served, never as "cancelled at stop".

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use script::ScriptSource;
use worker::{Engine, EngineConfig};

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_downscaled_user_finishes_its_request_after_a_cleared_run() {
    let (url, mut seen) = support::target(Some(Duration::from_millis(400))).await;
    let mut engine = Engine::start(EngineConfig {
        stop_timeout: Duration::from_secs(10),
        ..support::one_core()
    })
    .unwrap();
    // What the session does before every new run.
    engine.stop(Duration::ZERO).await.unwrap();
    let src = ScriptSource {
        path: "slow.lua".into(),
        code: format!(
            "local U = swarmer.user {{ name = 'U' }}\n\
             U:task(function(self) self.http:get('{url}/', {{ name = 'slow' }}) end)\n"
        ),
    };
    engine.load(&src, None, vec![], vec![]).await.unwrap();
    engine
        .apply(&BTreeMap::from([("U".to_string(), 1)]), 0.0, Instant::now())
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the user's request reached the target");
    // The downscale, while that request is on the wire.
    engine
        .apply(&BTreeMap::from([("U".to_string(), 0)]), 0.0, Instant::now())
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut served, mut failed) = (0, 0);
    while Instant::now() < deadline && served == 0 && failed == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let c = engine.collect(Duration::from_millis(200)).await.unwrap();
        if let Some(e) = c.stats.entry("GET", "slow") {
            served += e.num_requests - e.num_failures;
            failed += e.num_failures;
        }
    }
    assert_eq!(
        (served, failed),
        (1, 0),
        "the request in flight was served, not cut by the downscale"
    );
    engine.stop(Duration::from_secs(1)).await.unwrap();
}
