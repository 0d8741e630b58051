//! `GET`/`PUT /api/v1/script` end to end on a real master with real
//! in-process workers: a script that does not load is refused with its
//! file:line and the old one stays; bad paths, sizes and encodings are
//! refused by name; a good script is used by the next run on the workers
//! already there and on one that joins later; a run going refuses the
//! change; the extensions follow the script; the change needs the run's
//! credentials and is listed with who made it.

mod web_support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use master::web::WebConfig;
use serde_json::json;
use web_support::*;

const AUTH: (&str, &str) = ("alice", "s3cret");

fn basic() -> String {
    let pair = format!("{}:{}", AUTH.0, AUTH.1);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// An authenticated JSON request.
fn authed(method: &str, path: &str, body: serde_json::Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, basic())
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn authed_get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, basic())
        .body(Body::empty())
        .unwrap()
}

/// A script of one user type, `Fresh`, that requests `/item/fresh` under
/// the name "fresh", and declares a view and a threshold.
fn fresh_script(target: std::net::SocketAddr) -> String {
    format!(
        r#"
local Fresh = swarmer.user {{ name = "Fresh", host = "http://{target}", wait = swarmer.constant(0.05) }}
Fresh:task(function(self) self.http:get("/item/fresh", {{ name = "fresh" }}) end)
swarmer.ui.view {{ id = "fresh-view", title = "Fresh", render = function(ctx) return {{ note = "fresh" }} end }}
swarmer.thresholds {{ "requests > 0" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_is_checked_then_used_by_the_next_run_on_every_worker() {
    let h = Harness::with_worker().await;
    let app = h.router(WebConfig {
        auth: Some((AUTH.0.into(), AUTH.1.into())),
        ..WebConfig::default()
    });
    let before = send(&app, authed_get("/api/v1/script")).await.json();
    assert_eq!(before["name"], "web_test.lua");
    assert_eq!(before["user_types"], json!(["Browse", "Buy"]));

    // The same credentials as starting a run.
    let anonymous = json(
        "PUT",
        "/api/v1/script",
        json!({"name": "x.lua", "text": "return"}),
    );
    assert_eq!(send(&app, anonymous).await.status, StatusCode::UNAUTHORIZED);

    // A script that does not load: refused with its file:line, nothing changes.
    let broken = json!({"name": "shop.lua", "text": "local Shop = swarmer.user { name = \"Shop\" }\nShop:task(function(self) end\n"});
    let reply = send(&app, authed("PUT", "/api/v1/script", broken)).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert!(reply.message().contains("shop.lua:"), "{}", reply.body);

    let good = fresh_script(h.target);
    refuse_bad_input(&app, &good).await;
    let after = send(&app, authed_get("/api/v1/script")).await.json();
    assert_eq!(
        after["hash"], before["hash"],
        "a refused script changes nothing"
    );
    assert_eq!(after["changes"], json!([]));

    // A good one, with a text and a binary file.
    let upload = json!({"name": "fresh.lua", "text": good,
        "files": {"data/users.csv": "alice\n", "data/key.bin": {"base64": "AP8="}}});
    let reply = send(&app, authed("PUT", "/api/v1/script", upload)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let now = send(&app, authed_get("/api/v1/script")).await.json();
    assert_eq!(now["name"], "fresh.lua");
    assert_eq!(now["user_types"], json!(["Fresh"]));
    assert_ne!(now["hash"], before["hash"]);
    assert_eq!(
        now["files"],
        json!([{"path": "data/key.bin", "bytes": 2}, {"path": "data/users.csv", "bytes": 6}])
    );
    let change = &now["changes"][0];
    assert!(
        change["who"].as_str().unwrap().starts_with("alice"),
        "{now}"
    );
    assert_eq!(change["hash"], now["hash"]);
    // Its extensions replaced the old (none): the view is a tab now.
    let ext = send(&app, authed_get("/api/v1/ext")).await.json();
    assert_eq!(ext["views"][0]["id"], "fresh-view", "{ext}");
    let ui = send(&app, authed_get("/api/v1/ui")).await.json();
    assert_eq!(ui["user_types"][0]["name"], "Fresh");

    next_runs_use_it(&h, &app, &good).await;
}

/// Bad paths, sizes and encodings: each refused, naming the problem.
async fn refuse_bad_input(app: &axum::Router, good: &str) {
    // Bad input, each refused by name.
    let cases = [
        (
            json!({"name": "s.lua", "text": good, "files": {"../users.csv": "a"}}),
            StatusCode::BAD_REQUEST,
            "leaves the script's folder",
        ),
        (
            json!({"name": "s.lua", "text": good, "files": {"/etc/users.csv": "a"}}),
            StatusCode::BAD_REQUEST,
            "absolute",
        ),
        (
            json!({"name": "s.lua", "text": good, "files": {"big.csv": "x".repeat(master::upload::MAX_FILE_BYTES + 1)}}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "big.csv",
        ),
        (
            json!({"name": "s.lua", "text": good, "files": {"b.bin": {"base64": "%%"}}}),
            StatusCode::BAD_REQUEST,
            "b.bin",
        ),
        // Modules: one that does not compile, one outside the upload.
        (
            json!({"name": "s.lua", "text": format!("require 'lib.bad'\n{good}"),
                "files": {"lib/bad.lua": "\nx = = 1\n"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "s.lua:1: require \"lib.bad\": lib/bad.lua:2:",
        ),
        (
            json!({"name": "s.lua", "text": format!("require '../up'\n{good}")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "s.lua:1: require \"../up\": the module leaves the script's folder",
        ),
    ];
    for (body, status, names) in cases {
        let reply = send(app, authed("PUT", "/api/v1/script", body)).await;
        assert_eq!(reply.status, status, "{}", reply.body);
        assert!(reply.message().contains(names), "{}", reply.body);
    }
    let not_utf8 = Request::put("/api/v1/script")
        .header(header::AUTHORIZATION, basic())
        .body(Body::from(
            b"{\"name\":\"s.lua\",\"text\":\"\xff\"}".to_vec(),
        ))
        .unwrap();
    let reply = send(app, not_utf8).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.message().contains("not UTF-8"), "{}", reply.body);
}

/// The runs after the change run it, on the worker that was there and on
/// one that joins later; a run going refuses another change.
async fn next_runs_use_it(h: &Harness, app: &axum::Router, good: &str) {
    // The next run runs it on the worker that was there.
    let run = json!({"users": 2, "spawn_rate": 100});
    let reply = send(app, authed("POST", "/api/v1/run", run.clone())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    h.wait_for(|s| {
        s.stats
            .entries()
            .any(|e| e.name == "fresh" && e.num_requests > 0)
    })
    .await;
    let snap = h.master.snapshot();
    let judged: Vec<&str> = snap.checks.iter().map(|c| c.expr.as_str()).collect();
    assert_eq!(judged, ["requests > 0"], "the new script's thresholds");
    assert!(
        snap.stats.entries().all(|e| e.name == "fresh"),
        "only the new script runs"
    );

    // While it runs, the script cannot change.
    let again = json!({"name": "other.lua", "text": good});
    let reply = send(app, authed("PUT", "/api/v1/script", again)).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert!(reply.message().contains("stop it"), "{}", reply.body);

    // A worker that joins later gets it too (by hash, with its plan).
    send(app, authed("POST", "/api/v1/run/stop", json!({}))).await;
    h.wait_for(|s| s.state == master::RunState::Stopped).await;
    h.attach_worker("late-worker");
    h.wait_for(|s| s.worker_count == 2).await;
    let reply = send(app, authed("POST", "/api/v1/run", run)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let snap = h
        .wait_for(|s| {
            s.workers.len() == 2
                && s.workers.iter().all(|w| w.user_count == 1)
                && s.users_by_type.get("Fresh") == Some(&2)
        })
        .await;
    assert_eq!(snap.users_by_type.len(), 1, "{:?}", snap.users_by_type);
    assert_eq!(
        snap.run_script.as_ref().map(|s| s.name.as_str()),
        Some("fresh.lua")
    );
}
