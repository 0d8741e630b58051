//! The scale routes against a fake `Scaler`: counts side by side, the form
//! and JSON validated before the scaler is called, scaler errors mapped to
//! statuses with plain messages, every action logged with who asked.

mod web_support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use master::scale::{ScaleError, Scaler};
use master::web::{LogBuffer, WebConfig};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;
use web_support::*;

fn config(scaler: &Arc<FakeScaler>) -> WebConfig {
    WebConfig {
        scaler: Some(scaler.clone() as Arc<dyn Scaler>),
        max_workers: 5,
        ..WebConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_desired_connected_and_ready() {
    let h = Harness::with_worker().await;
    let scaler = Arc::new(FakeScaler::default());
    *scaler.desired.lock().unwrap() = 3;
    let app = h.router(config(&scaler));
    let status = send(&app, get("/api/v1/workers/scale")).await.json();
    assert_eq!(
        status,
        json!({ "desired": 3, "connected": 1, "ready": 1, "scaler": "fake", "max_workers": 5, "warning": null, "autoscale": null })
    );

    let none = h.router(WebConfig::default());
    let status = send(&none, get("/api/v1/workers/scale")).await.json();
    assert_eq!(status["scaler"], json!(null));
    assert_eq!(status["desired"], json!(null));
    assert_eq!(status["connected"], 1);
    let put = send(
        &none,
        json("PUT", "/api/v1/workers/scale", json!({ "workers": 2 })),
    )
    .await;
    assert_eq!(put.status, 409);
    assert!(put.message().contains("scaling is not configured"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_counts_never_reach_the_scaler() {
    let h = Harness::new().await;
    let scaler = Arc::new(FakeScaler::default());
    let app = h.router(config(&scaler));
    let bad = [
        (json!({ "workers": -1 }), "must not be negative"),
        (json!({ "workers": 1.5 }), "must be a whole number"),
        (json!({ "workers": "abc" }), "must be a whole number"),
        (json!({ "workers": 6 }), "must be at most 5"),
        (json!({ "workers": null }), "is required"),
        (json!({ "count": 2 }), "is required"),
        (json!({ "workers": [2] }), "must be a whole number"),
    ];
    for (body, expected) in bad {
        let reply = send(&app, json("PUT", "/api/v1/workers/scale", body.clone())).await;
        assert_eq!(reply.status, 400, "{body}");
        let message = reply.message();
        assert!(message.starts_with("workers: "), "{message}");
        assert!(message.contains(expected), "{body}: {message}");
    }
    for body in [
        "worker_count=-1",
        "worker_count=1.5",
        "worker_count=abc",
        "worker_count=99",
        "",
    ] {
        let reply = send(&app, form("/rescale", body)).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(reply.message().starts_with("worker_count: "));
    }
    assert!(
        scaler.calls().is_empty(),
        "the scaler was called: {:?}",
        scaler.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_through_the_api_and_the_form() {
    let h = Harness::new().await;
    let scaler = Arc::new(FakeScaler::default());
    let app = h.router(WebConfig {
        base_path: "/swarmer".into(),
        ..config(&scaler)
    });
    let reply = send(
        &app,
        json(
            "PUT",
            "/swarmer/api/v1/workers/scale",
            json!({ "workers": 4 }),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["desired"], 4);
    assert_eq!(scaler.calls(), [4]);

    let reply = send(&app, form("/swarmer/rescale", "worker_count=0")).await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), "/swarmer/#workers");
    assert_eq!(scaler.calls(), [4, 0]);
    let status = send(&app, get("/swarmer/api/v1/workers/scale"))
        .await
        .json();
    assert_eq!(status["desired"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaler_errors_map_to_statuses() {
    let h = Harness::new().await;
    let scaler = Arc::new(FakeScaler::default());
    let app = h.router(config(&scaler));
    let cases = [
        (
            ScaleError::Forbidden("cannot patch deployments/scale in namespace load".into()),
            403,
        ),
        (
            ScaleError::NotFound("deployment swarmer-worker".into()),
            404,
        ),
        (ScaleError::Conflict("the object was modified".into()), 409),
        (ScaleError::Unreachable("connection refused".into()), 502),
        (ScaleError::Invalid("replicas must be >= 0".into()), 400),
        (ScaleError::Other("boom".into()), 500),
    ];
    for (error, status) in cases {
        *scaler.fail_with.lock().unwrap() = Some(error.clone());
        let reply = send(
            &app,
            json("PUT", "/api/v1/workers/scale", json!({ "workers": 2 })),
        )
        .await;
        assert_eq!(reply.status, status, "{error}");
        let message = reply.message();
        assert!(message.contains(&error.to_string()), "{message}");
    }
}

#[tokio::test]
async fn every_scale_action_is_logged_with_who_asked() {
    // tracing caches a callsite's interest process-wide, from the default
    // of whichever thread reaches it first: another test's thread with no
    // subscriber would cache "never" for the scale log line. A global
    // subscriber that wants everything makes every thread's answer yes.
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    let logs = LogBuffer::new(100);
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(logs.clone()));
    let h = Harness::new().await;
    let scaler = Arc::new(FakeScaler::default());
    *scaler.desired.lock().unwrap() = 2;
    let app = h.router(WebConfig {
        auth: Some(("alice".into(), "pw".into())),
        ..config(&scaler)
    });
    let credentials = base64::engine::general_purpose::STANDARD.encode("alice:pw");
    let request = Request::put("/api/v1/workers/scale")
        .header("authorization", format!("Basic {credentials}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"workers": 3}"#))
        .unwrap();
    assert_eq!(send(&app, request).await.status, 200);
    let lines = logs.since(0, 100);
    let line = lines
        .iter()
        .find(|l| l.target == "swarmer::scale")
        .expect("a scale log line");
    assert!(line.message.contains("from=2"), "{}", line.message);
    assert!(line.message.contains("to=3"), "{}", line.message);
    assert!(line.message.contains("by=alice"), "{}", line.message);
}

#[tokio::test]
async fn a_manual_scale_pauses_autoscaling_and_metrics_say_so() {
    let h = Harness::new().await;
    let scaler = Arc::new(FakeScaler::default());
    let autoscale = master::autoscale::Autoscale::new(master::autoscale::Policy::new(1, 4));
    let app = h.router(WebConfig {
        autoscale: Some(autoscale.clone()),
        ..config(&scaler)
    });
    let status = send(&app, get("/api/v1/workers/scale")).await.json();
    assert_eq!(status["autoscale"]["policy"]["max"], 4);
    assert_eq!(status["autoscale"]["paused"], json!(null));
    let metrics = send(&app, get("/metrics")).await.body;
    assert!(
        metrics.contains("swarmer_autoscale_decisions_total{direction=\"up\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("swarmer_autoscale_paused 0"), "{metrics}");

    let put = json("PUT", "/api/v1/workers/scale", json!({ "workers": 3 }));
    assert_eq!(send(&app, put).await.status, 200);
    let status = send(&app, get("/api/v1/workers/scale")).await.json();
    let paused = status["autoscale"]["paused"].as_str().unwrap_or_default();
    assert!(
        paused.starts_with("paused by a manual scale to 3 by ")
            && paused.ends_with("until the next run"),
        "{status}"
    );
    assert_eq!(autoscale.view().target, Some(3));
    let metrics = send(&app, get("/metrics")).await.body;
    assert!(metrics.contains("swarmer_autoscale_paused 1"), "{metrics}");
    assert!(
        metrics.contains("swarmer_autoscale_target_workers 3"),
        "{metrics}"
    );
}
