//! Bad worker counts are refused by the master's API with a message naming
//! the problem, and nothing is sent to the cluster: checked against the
//! fake Kubernetes API server, which records every request it receives.
//! Scaling is a control action: it needs the same credentials as starting
//! a run, and a cross-site form post is refused before it reaches the scaler.

mod common;
mod support;

use std::time::Duration;

use support::fake_kube::FakeKube;
use support::{Master, TempDir, http, http_with};

#[test]
fn bad_counts_are_refused_without_a_call_to_the_scaler() {
    let dir = TempDir::new("scale-validation");
    let kube = FakeKube::start(dir.path(), "load", "swarmer-worker", 1);
    let kubeconfig = kube.kubeconfig.to_string_lossy().into_owned();
    let flags = ["--scaler", "kubernetes", "--max-workers", "10"];
    let master = Master::start(&dir, &flags, &[("KUBECONFIG", &kubeconfig)]);

    let bad_json = [
        (r#"{"workers": -1}"#, "workers"),
        (r#"{"workers": 1.5}"#, "workers"),
        (r#"{"workers": "abc"}"#, "workers"),
        (r#"{"workers": 11}"#, "workers"),
        (r#"{}"#, "workers"),
    ];
    for (body, field) in bad_json {
        let (code, reply) = master.put_scale(body);
        assert_eq!(code, 400, "PUT {body}: {reply}");
        let message = reply["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "PUT {body}: {reply}");
    }
    let url = format!("{}/rescale", master.web);
    let form = "application/x-www-form-urlencoded";
    for body in [
        "worker_count=-1",
        "worker_count=1.5",
        "worker_count=abc",
        "worker_count=11",
    ] {
        let (code, reply) = http("POST", &url, form, body).unwrap();
        assert_eq!(code, 400, "POST /rescale {body}: {reply}");
        assert!(
            reply.contains("worker_count"),
            "POST /rescale {body}: {reply}"
        );
    }
    assert!(
        kube.patches().is_empty(),
        "a bad count reached the cluster: {:?}",
        kube.patches()
    );
    assert_eq!(kube.replicas(), 1);

    // The largest allowed count goes through.
    let (code, reply) = master.put_scale(r#"{"workers": 10}"#);
    assert_eq!(code, 200, "{reply}");
    assert_eq!(kube.patches().len(), 1);
    assert_eq!(kube.replicas(), 10);
}

#[test]
fn without_a_scaler_the_api_says_scaling_is_not_configured() {
    let dir = TempDir::new("scale-none");
    let master = Master::start(&dir, &[], &[]);
    let status = master.scale();
    assert_eq!(status["scaler"], serde_json::Value::Null, "{status}");
    let (code, reply) = master.put_scale(r#"{"workers": 2}"#);
    assert_eq!(code, 409, "{reply}");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(message.contains("scaling is not configured"), "{reply}");
}

#[test]
fn scaling_needs_the_same_authentication_as_a_run_and_refuses_cross_site_posts() {
    use base64::Engine as _;
    let dir = TempDir::new("scale-auth");
    let kube = FakeKube::start(dir.path(), "load", "swarmer-worker", 1);
    let kubeconfig = kube.kubeconfig.to_string_lossy().into_owned();
    let flags = ["--scaler", "kubernetes", "--web-auth", "admin:pw"];
    let master = Master::start(&dir, &flags, &[("KUBECONFIG", &kubeconfig)]);
    let put = format!("{}/api/v1/workers/scale", master.web);
    let json = ("Content-Type", "application/json");

    let (code, reply) = http_with("PUT", &put, &[json], r#"{"workers": 2}"#).unwrap();
    assert_eq!(code, 401, "{reply}");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:pw")
    );
    let auth = ("Authorization", basic.as_str());
    // A page on another site posting the Locust form with the browser's
    // stored credentials.
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let evil = ("Origin", "http://attacker.example");
    let rescale = format!("{}/rescale", master.web);
    let (code, reply) = http_with("POST", &rescale, &[form, auth, evil], "worker_count=9").unwrap();
    assert_eq!(code, 403, "{reply}");
    assert!(kube.patches().is_empty(), "{:?}", kube.patches());

    let (code, reply) = http_with("PUT", &put, &[json, auth], r#"{"workers": 2}"#).unwrap();
    assert_eq!(code, 200, "{reply}");
    assert_eq!(kube.replicas(), 2);
    // Logged with from, to and who asked.
    let line = master.proc.expect_line(Duration::from_secs(10), "to=2");
    assert!(
        line.contains("from=1") && line.contains("to=2") && line.contains("by=admin"),
        "{line}"
    );
}
