//! Scaling through Kubernetes, end to end: a fake API server over real
//! HTTPS (reached through a kubeconfig, its certificate verified) stands in
//! for the cluster and its deployment controller, starting and stopping
//! real `swarmer --worker` processes as the replica count changes.
//!
//! One test drives the scaler in-process against a master started from the
//! library; the other drives the `swarmer --master --scaler kubernetes`
//! binary through its own API (`/api/v1/workers/scale`).

mod common;
mod support;

use std::sync::Arc;
use std::time::Duration;

use master::scale::{KubernetesScaler, ScaleError, Scaler};
use support::fake_kube::FakeKube;
use support::{BIN, Master, TempDir, library_master, wait_connected};
use tokio_util::sync::CancellationToken;

const WORKER_ARGS: &[&str] = &["--cores", "1"];

async fn scaler_for(kube: &FakeKube, kubeconfig: &std::path::Path) -> KubernetesScaler {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .unwrap();
    KubernetesScaler::from_config(config, kube.deployment.clone(), None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scaler_moves_real_workers_through_a_fake_cluster() {
    let dir = TempDir::new("scale-kube-lib");
    let kube = FakeKube::start(dir.path(), "load", "swarmer-worker", 2);
    kube.add_hpa("workers-hpa");
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let (handle, port) = library_master(&shutdown).await;
    let scaler: Arc<dyn Scaler> = Arc::new(scaler_for(&kube, &kube.kubeconfig).await);
    kube.run_workers(BIN, port, WORKER_ARGS);
    wait_connected(&handle, 2).await;

    let status = scaler.status().await.unwrap();
    assert_eq!(status.desired, 2);
    let warning = status.warning.expect("the HPA is mentioned");
    assert!(warning.contains("\"workers-hpa\""), "{warning}");

    scaler.scale(4).await.unwrap();
    wait_connected(&handle, 4).await;
    scaler.scale(1).await.unwrap();
    scaler.scale(3).await.unwrap();
    wait_connected(&handle, 3).await;
    // It stays there: the pods told to leave are gone, none come back.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(handle.snapshot().worker_count, 3);
    }
    let status = scaler.status().await.unwrap();
    assert_eq!((status.desired, status.ready), (3, Some(3)));

    kube.forbid_patches(true);
    let err = scaler.scale(5).await.unwrap_err();
    assert!(
        matches!(&err, ScaleError::Forbidden(t) if t.contains("add a Role rule")),
        "{err:?}"
    );
    assert_eq!(kube.replicas(), 3);
}

#[tokio::test]
async fn the_api_server_certificate_is_always_verified() {
    let dir = TempDir::new("scale-kube-tls");
    let kube = FakeKube::start(dir.path(), "load", "swarmer-worker", 1);
    // A kubeconfig that asks to skip verification and names no CA: the
    // server's certificate is from a CA nobody trusts, so this must fail.
    let text = std::fs::read_to_string(&kube.kubeconfig).unwrap();
    let insecure: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("certificate-authority-data:") {
                "    insecure-skip-tls-verify: true".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.write("insecure-kubeconfig", &insecure);
    let scaler = scaler_for(&kube, std::path::Path::new(&path)).await;
    let err = scaler.scale(2).await.unwrap_err();
    let ScaleError::Unreachable(text) = &err else {
        panic!("expected Unreachable, got {err:?}");
    };
    assert!(text.contains("certificate"), "{text}");
    assert!(kube.requests().is_empty(), "nothing reached the server");
    assert_eq!(kube.replicas(), 1);
}

#[test]
fn kubernetes_churn_through_the_master_api() {
    let dir = TempDir::new("scale-kube-bin");
    let kube = FakeKube::start(dir.path(), "load", "swarmer-worker", 2);
    let kubeconfig = kube.kubeconfig.to_string_lossy().into_owned();
    // No --namespace: it comes from the kubeconfig's context, as a pod's
    // comes from its service account.
    let flags = [
        "--scaler",
        "kubernetes",
        "--worker-deployment",
        "swarmer-worker",
    ];
    let mut master = Master::start(&dir, &flags, &[("KUBECONFIG", &kubeconfig)]);
    kube.run_workers(BIN, master.worker_port, WORKER_ARGS);
    master.wait_scale("2 workers", support::WAIT, |s| {
        s["connected"] == 2 && s["desired"] == 2
    });
    assert_eq!(master.scale()["scaler"], "kubernetes");

    for n in [4, 1, 3] {
        let (code, reply) = master.put_scale(&format!(r#"{{"workers": {n}}}"#));
        assert_eq!(code, 200, "PUT {n}: {reply}");
        if n == 4 {
            master.wait_scale("4 workers", support::WAIT, |s| {
                s["connected"] == 4 && s["desired"] == 4
            });
        }
    }
    master.wait_scale("3 workers", support::WAIT, |s| {
        s["connected"] == 3 && s["desired"] == 3 && s["ready"] == 3
    });
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(master.scale()["connected"], 3);
    }
    assert_eq!(master.get_json("/stats/requests")["worker_count"], 3);

    // What went to the cluster is exactly what `kubectl scale` sends.
    let patches = kube.patches();
    let bodies: Vec<&str> = patches.iter().map(|p| p.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            r#"{"spec":{"replicas":4}}"#,
            r#"{"spec":{"replicas":1}}"#,
            r#"{"spec":{"replicas":3}}"#
        ]
    );
    for p in &patches {
        assert_eq!(
            p.path,
            "/apis/apps/v1/namespaces/load/deployments/swarmer-worker/scale?&fieldManager=swarmer"
        );
        assert_eq!(
            p.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
    }

    kube.forbid_patches(true);
    let (code, reply) = master.put_scale(r#"{"workers": 5}"#);
    assert_eq!(code, 403, "{reply}");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "the service account cannot patch deployments/scale \"swarmer-worker\" in namespace \"load\": add a Role rule"
        ),
        "{reply}"
    );
    assert_eq!(kube.replicas(), 3);

    master.proc.signal("TERM");
    let status = master.proc.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "master exit: {status:?}"
    );
}
