//! Authentication and cross-site checks through the router: with auth on
//! nothing but /healthz answers without credentials; Basic, Bearer and the
//! token as a Basic password work; cross-site control requests from a
//! browser are refused before they reach the master; without auth, only
//! the Host names the server may be reached by are answered (DNS rebinding).

mod web_support;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use master::RunState;
use master::web::{CSRF_HEADER, WebConfig};
use web_support::*;

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn with_auth(method: &str, path: &str, authorization: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", authorization)
        .body(Body::empty())
        .unwrap()
}

fn secured() -> WebConfig {
    WebConfig {
        auth: Some(("alice".into(), "s3cret".into())),
        token: Some("tok-123".into()),
        max_workers: 10,
        ..WebConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_but_healthz_answers_without_credentials() {
    let h = Harness::new().await;
    let app = h.router(secured());
    for (method, path) in master::web::route_table() {
        let path = path.replace("{path}", "style.css");
        let request = Request::builder()
            .method(method)
            .uri(&path)
            .body(Body::empty())
            .unwrap();
        let reply = send(&app, request).await;
        if path == "/healthz" {
            assert_eq!(reply.status, 200);
            continue;
        }
        assert_eq!(reply.status, 401, "{method} {path}");
        assert!(
            reply.header("www-authenticate").starts_with("Basic"),
            "{path}"
        );
    }
    assert_eq!(send(&app, get("/unknown")).await.status, 401);
    assert_eq!(h.master.snapshot().state, RunState::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_credential() {
    let h = Harness::new().await;
    let app = h.router(secured());
    let good = [
        basic("alice", "s3cret"),
        "Bearer tok-123".to_string(),
        "bearer tok-123".to_string(),
        basic("anyone", "tok-123"),
    ];
    for auth in good {
        let reply = send(&app, with_auth("GET", "/stats/requests", &auth)).await;
        assert_eq!(reply.status, 200, "{auth}");
    }
    let bad = [
        basic("alice", "wrong"),
        basic("bob", "s3cret"),
        basic("alice", "s3cret2"),
        "Bearer tok-1234".to_string(),
        "Bearer s3cret".to_string(),
        "Basic !!!not-base64".to_string(),
        "Digest whatever".to_string(),
        "tok-123".to_string(),
    ];
    for auth in bad {
        let reply = send(&app, with_auth("GET", "/stats/requests", &auth)).await;
        assert_eq!(reply.status, 401, "{auth}");
        assert_eq!(reply.message(), "authentication required");
    }
    let token_only = h.router(WebConfig {
        token: Some("tok-123".into()),
        ..WebConfig::default()
    });
    let no = send(
        &token_only,
        with_auth("GET", "/", &basic("alice", "s3cret")),
    )
    .await;
    assert_eq!(no.status, 401);
    let yes = send(&token_only, with_auth("GET", "/", "Bearer tok-123")).await;
    assert_eq!(yes.status, 200);
}

/// A browser's control request, with the headers a browser would send.
/// The browsers below reach the UI by this name, as through a DNS name
/// the operator allowed.
fn named() -> WebConfig {
    WebConfig {
        allowed_hosts: vec!["swarmer.local".into()],
        ..WebConfig::default()
    }
}

fn browser_post(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::post(path)
        .header("host", "swarmer.local:8089")
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder
        .body(Body::from("user_count=1&spawn_rate=1"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_control_requests_are_refused() {
    let h = Harness::with_worker().await;
    let app = h.router(named());
    let refused = [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("origin", "http://swarmer.local:9999")],
        vec![("referer", "https://evil.example/page")],
        vec![("sec-fetch-site", "cross-site")],
        vec![(CSRF_HEADER, "guessed")],
    ];
    for headers in &refused {
        for path in ["/swarm", "/api/v1/run", "/stop", "/stats/reset", "/rescale"] {
            let reply = send(&app, browser_post(path, headers)).await;
            assert_eq!(reply.status, 403, "{path} {headers:?}: {}", reply.body);
            assert!(reply.message().contains("refused"));
        }
    }
    // The old GET forms of stop and reset change state too.
    let get_stop = Request::get("/stop")
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, get_stop).await.status, 403);
    assert_eq!(
        h.master.snapshot().state,
        RunState::Ready,
        "nothing started"
    );

    // Reading is not a control action.
    let read = Request::get("/stats/requests")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, read).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_token_and_non_browser_requests_pass() {
    let h = Harness::with_worker().await;
    let app = h.router(named());
    let token = send(&app, get("/api/v1/ui")).await.json()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let passing = [
        vec![("origin", "http://swarmer.local:8089")],
        vec![("referer", "http://swarmer.local:8089/#statistics")],
        vec![
            ("x-forwarded-host", "public.example"),
            ("origin", "https://public.example"),
        ],
        // A proxy that rewrites Host: the page's token still proves origin.
        vec![
            ("origin", "https://proxy.example"),
            (CSRF_HEADER, token.as_str()),
        ],
        vec![("sec-fetch-site", "same-origin")],
        // curl and CI scripts send none of these.
        vec![],
    ];
    for headers in &passing {
        let reply = send(&app, browser_post("/stats/reset", headers)).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);
    }
    let start = send(
        &app,
        browser_post("/swarm", &[("origin", "http://swarmer.local:8089")]),
    )
    .await;
    assert_eq!(start.status, 200, "{}", start.body);
    h.wait_for(|s| s.state.is_active()).await;
    send(&app, post("/stop")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_comes_before_the_cross_site_check() {
    let h = Harness::new().await;
    let app = h.router(secured());
    let mut request = browser_post("/stop", &[("origin", "https://evil.example")]);
    assert_eq!(send(&app, request).await.status, 401);
    request = browser_post("/stop", &[("origin", "https://evil.example")]);
    request
        .headers_mut()
        .insert("authorization", basic("alice", "s3cret").parse().unwrap());
    assert_eq!(send(&app, request).await.status, 403);
}

fn with_host(method: &str, path: &str, host: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused_without_auth() {
    let h = Harness::with_worker().await;
    let app = h.router(WebConfig {
        allowed_hosts: vec!["ui.example".into()],
        ..WebConfig::default()
    });
    // A rebinding page's request, even a "simple" cross-site-looking one
    // that the CSRF check alone would let through without Origin.
    let evil = send(&app, with_host("POST", "/swarm", "evil.example:8089")).await;
    assert_eq!(evil.status, 421, "{}", evil.body);
    let message = evil.message();
    assert!(
        message.contains("evil.example") && message.contains("--web-allowed-hosts"),
        "{message}"
    );
    let page = send(&app, with_host("GET", "/", "evil.example")).await;
    assert_eq!(page.status, 421);
    let unknown = send(&app, with_host("GET", "/nope", "evil.example")).await;
    assert_eq!(unknown.status, 421, "the fallback is guarded too");
    assert_eq!(h.master.snapshot().state, RunState::Ready);
    // Probes by any name, and every name we know.
    let probe = send(&app, with_host("GET", "/healthz", "evil.example")).await;
    assert_eq!(probe.status, 200);
    for host in [
        "ui.example:8089",
        "127.0.0.1:8089",
        "[::1]:8089",
        "localhost",
        "10.0.0.7",
    ] {
        let reply = send(&app, with_host("GET", "/api/v1/state", host)).await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.body);
    }
    // "*" turns the check off.
    let open = h.router(WebConfig {
        allowed_hosts: vec!["*".into()],
        ..WebConfig::default()
    });
    let any = send(&open, with_host("GET", "/api/v1/state", "evil.example")).await;
    assert_eq!(any.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_the_host_is_not_checked() {
    let h = Harness::new().await;
    let app = h.router(secured());
    let mut request = with_auth("GET", "/api/v1/state", &basic("alice", "s3cret"));
    request
        .headers_mut()
        .insert("host", "swarmer.corp.example".parse().unwrap());
    assert_eq!(send(&app, request).await.status, 200);
    let anonymous = send(&app, with_host("GET", "/api/v1/state", "evil.example")).await;
    assert_eq!(anonymous.status, 401, "credentials are still needed");
}
