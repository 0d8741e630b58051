//! `r.timings`: the phases of a request. A fresh connection shows its
//! connect (and TLS) time, a reused one none; time to first byte covers
//! the server's wait; the phases never add up to more than the response
//! time. The stats keep the same phases per entry, and none for an entry
//! that is not HTTP.

mod common;

use std::time::Duration;

use common::*;
use script::RuntimeConfig;

const SCRIPT: &str = r#"
local U = swarmer.user { name = "U", host = HOST }
local function check(r, what, ok)
  if not ok then
    local t = r.timings
    r:failure(string.format("%s: dns %.3f connect %.3f tls %.3f ttfb %.3f receive %.3f elapsed %.3f",
      what, t.dns, t.connect, t.tls, t.ttfb, t.receive, r.elapsed_ms))
  end
end
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  local first = self.http:get("/slow?ms=40", { name = "first" })
  local t = first.timings
  check(first, "fresh", t.connect > 0 and t.ttfb >= 40 and (TLS == false or t.tls > 0))
  local sum = t.dns + t.connect + t.tls + t.ttfb + t.receive
  check(first, "sum", sum <= first.elapsed_ms + 0.001)
  local again = self.http:get("/", { name = "reused" })
  t = again.timings
  check(again, "reused", t.dns == 0 and t.connect == 0 and t.tls == 0 and t.ttfb > 0)
  swarmer.record { type = "DB", name = "query", duration_ms = 3 }
end)
"#;

fn run(tls: bool) {
    let (addr, scheme) = if tls {
        (start_tls_server(), "https")
    } else {
        (start_server(), "http")
    };
    let code = SCRIPT
        .replace("HOST", &format!("\"{scheme}://localhost:{}\"", addr.port()))
        .replace("TLS", if tls { "true" } else { "false" });
    let config = RuntimeConfig {
        insecure_tls: true,
        ..Default::default()
    };
    let stats = run_users(
        &code,
        config,
        &[("U", 1)],
        |s| s.num_requests() >= 3 || s.exceptions().next().is_some(),
        Duration::from_secs(10),
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    let errors: Vec<String> = stats.errors().keys().map(|k| k.error.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(count(&stats, "GET", "first"), (1, 0));
    assert_eq!(count(&stats, "GET", "reused"), (1, 0));
    let phases = |name: &str| {
        let entry = stats.entry("GET", name).expect(name);
        let phases = entry.phases.as_ref().expect("an HTTP entry has phases");
        let [connect, tls, ttfb] = phases.percentiles_ms().map(|(_, p)| p.p50);
        (connect, tls, ttfb)
    };
    let (connect, tls_ms, ttfb) = phases("first");
    assert!(connect > 0.0 && ttfb >= 39.0, "{connect} {ttfb}");
    assert_eq!(tls_ms > 0.0, tls, "{tls_ms}");
    let (connect, tls_ms, ttfb) = phases("reused");
    assert!(
        connect == 0.0 && tls_ms == 0.0 && ttfb > 0.0,
        "{connect} {tls_ms} {ttfb}"
    );
    let record = stats.entry("DB", "query").expect("the recorded entry");
    assert!(record.phases.is_none(), "swarmer.record has no phases");
}

#[test]
fn phases_over_plain_http() {
    run(false);
}

#[test]
fn phases_over_tls() {
    run(true);
}
