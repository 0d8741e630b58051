//! Proxies end to end, through a forward proxy of the test's own on
//! loopback: plain HTTP goes to it with the absolute URL and its
//! credentials, HTTPS through one CONNECT tunnel per connection (reused
//! while the connection lives), a refused tunnel is a failure naming the
//! proxy's answer, and a request's own `proxy` option overrides the run's.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::proxy::start_proxy;
use common::*;
use script::RuntimeConfig;
use script::http_settings::Proxies;

const MAX: Duration = Duration::from_secs(10);

fn config(proxies: Proxies) -> RuntimeConfig {
    RuntimeConfig {
        insecure_tls: true,
        http: script::HttpSettings {
            proxies: Arc::new(proxies),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    }
}

/// A user that requests `url` `n` times, failing the request unless the
/// target saw `Host: want_host` and no proxy credentials.
fn script(url: &str, want_host: &str, n: u64, opts: &str) -> String {
    format!(
        r#"
local U = swarmer.user {{ name = "U" }}
U:task(function(self)
  self.n = (self.n or 0) + 1
  if self.n > {n} then swarmer.sleep(1000) return end
  local r = self.http:get("{url}", {{ name = "req"{opts} }})
  if not r.ok then return end
  local h = r:json().headers
  if h.host ~= "{want_host}" then r:failure("Host " .. tostring(h.host)) end
  if h["proxy-authorization"] then r:failure("the origin saw the proxy credentials") end
end)
"#
    )
}

fn run(code: &str, config: RuntimeConfig, n: u64) -> stats::RequestStats {
    run_users(code, config, &[("U", 1)], |s| s.num_requests() >= n, MAX)
}

fn errors(stats: &stats::RequestStats) -> Vec<String> {
    stats.errors().keys().map(|k| k.error.to_string()).collect()
}

#[test]
fn plain_http_goes_through_the_proxy_with_its_credentials() {
    let target = start_server();
    let (proxy, seen) = start_proxy(Some("Basic dTpw"));
    let host = format!("shop.test:{}", target.port());
    let code = script(&format!("http://{host}/echo"), &host, 5, "");
    let proxies = Proxies::explicit(&format!("http://u:p@{proxy}"), None).unwrap();
    let stats = run(&code, config(proxies), 5);
    assert_eq!(count(&stats, "GET", "req"), (5, 0), "{:?}", errors(&stats));
    assert_eq!(seen.forwarded(), 5, "every request passed the proxy");
    assert_eq!(seen.refused(), 0);
    assert_eq!(
        *seen.last_target.lock().unwrap(),
        format!("http://{host}/echo")
    );
}

#[test]
fn https_goes_through_one_connect_tunnel_per_connection() {
    let target = start_tls_server();
    let (proxy, seen) = start_proxy(Some("Basic dTpw"));
    let host = format!("localhost:{}", target.port());
    let code = script(&format!("https://{host}/echo"), &host, 5, "");
    let proxies = Proxies::explicit(&format!("http://u:p@{proxy}"), None).unwrap();
    let stats = run(&code, config(proxies), 5);
    assert_eq!(count(&stats, "GET", "req"), (5, 0), "{:?}", errors(&stats));
    assert_eq!(seen.tunnels(), 1, "the tunnelled connection is kept alive");
    assert_eq!(seen.forwarded(), 0, "nothing in the clear");
    assert_eq!(*seen.last_target.lock().unwrap(), host);
}

#[test]
fn a_refused_tunnel_is_a_failure_naming_the_answer() {
    let target = start_tls_server();
    let (proxy, seen) = start_proxy(Some("Basic dTpw"));
    let url = format!("https://localhost:{}/echo", target.port());
    let code = script(&url, "-", 2, "");
    // No credentials: the proxy answers 407.
    let proxies = Proxies::explicit(&format!("http://{proxy}"), None).unwrap();
    let stats = run(&code, config(proxies), 2);
    assert_eq!(count(&stats, "GET", "req"), (2, 2));
    let errs = errors(&stats);
    assert!(
        errs.iter().any(|e| e.contains("refused with 407")
            && e.contains(&format!("proxy http://{proxy}"))),
        "{errs:?}"
    );
    assert_eq!(seen.refused(), 2);
}

#[test]
fn a_request_can_choose_its_own_proxy_or_none() {
    let target = start_server();
    let (run_proxy, run_seen) = start_proxy(None);
    let (own_proxy, own_seen) = start_proxy(None);
    let host = format!("127.0.0.1:{}", target.port());
    let url = format!("http://{host}/echo");
    let proxies = || Proxies::explicit(&format!("http://{run_proxy}"), None).unwrap();
    let own = format!(r#", proxy = "http://{own_proxy}""#);
    let stats = run(&script(&url, &host, 3, &own), config(proxies()), 3);
    assert_eq!(count(&stats, "GET", "req"), (3, 0), "{:?}", errors(&stats));
    assert_eq!((own_seen.forwarded(), run_seen.forwarded()), (3, 0));
    let stats = run(
        &script(&url, &host, 3, ", proxy = false"),
        config(proxies()),
        3,
    );
    assert_eq!(count(&stats, "GET", "req"), (3, 0), "{:?}", errors(&stats));
    assert_eq!(run_seen.forwarded(), 0, "proxy = false goes direct");
}

#[test]
fn a_bad_proxy_option_is_a_script_error_naming_it() {
    let target = start_server();
    let code = script(
        &format!("http://127.0.0.1:{}/echo", target.port()),
        "-",
        1,
        r#", proxy = "socks5://p.test:1080""#,
    );
    let stats = run_users(
        &code,
        config(Proxies::none()),
        &[("U", 1)],
        |s| s.exceptions().next().is_some(),
        MAX,
    );
    let ex = exceptions(&stats);
    assert!(
        ex.iter()
            .any(|e| e.contains("proxy") && e.contains("socks5://p.test:1080")),
        "{ex:?}"
    );
}
