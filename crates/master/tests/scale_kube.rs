//! The Kubernetes scaler's requests, checked exactly (verb, path, content
//! type, body) against a mocked API server behind `kube::Client::new`, and
//! how each kind of refusal (403, 404, 409, no connection) reaches the user.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use kube::client::Body;
use master::scale::{KubernetesScaler, ScaleError, ScaleStatus, Scaler};
use serde_json::{Value, json};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/load/deployments";

/// One request as the API server saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    path: String,
    content_type: Option<String>,
    body: String,
}

enum Reply {
    Json(u16, Value),
    Text(u16, &'static str),
    /// The connection fails: no HTTP answer at all.
    Broken,
}

#[derive(Clone, Default)]
struct Mock {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn new(replies: Vec<Reply>) -> Self {
        let mock = Mock::default();
        mock.replies.lock().unwrap().extend(replies);
        mock
    }

    fn client(&self, default_namespace: &str) -> kube::Client {
        let mock = self.clone();
        let service = tower::service_fn(move |req: http::Request<Body>| {
            let mock = mock.clone();
            async move { mock.answer(req).await }
        });
        kube::Client::new(service, default_namespace)
    }

    async fn answer(
        &self,
        req: http::Request<Body>,
    ) -> Result<http::Response<Body>, std::io::Error> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.expect("request body").to_bytes();
        self.seen.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_string()),
            body: String::from_utf8(body.to_vec()).unwrap(),
        });
        let reply = self.replies.lock().unwrap().pop_front();
        let (code, content_type, bytes) = match reply {
            Some(Reply::Json(code, value)) => {
                (code, "application/json", value.to_string().into_bytes())
            }
            Some(Reply::Text(code, text)) => (code, "text/plain", text.as_bytes().to_vec()),
            Some(Reply::Broken) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                ));
            }
            None => panic!(
                "the scaler sent a request nobody expected: {:?}",
                self.seen.lock().unwrap().last()
            ),
        };
        Ok(http::Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes))
            .unwrap())
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn left(&self) -> usize {
        self.replies.lock().unwrap().len()
    }
}

fn get(path: &str) -> Seen {
    Seen {
        method: "GET".into(),
        path: path.into(),
        content_type: None,
        body: String::new(),
    }
}

fn scale_object(replicas: i32) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "swarmer-worker", "namespace": "load"},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "selector": "app=swarmer-worker"}
    })
}

fn deployment(replicas: i32, ready: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "swarmer-worker", "namespace": "load"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "swarmer-worker"}},
            "template": {"metadata": {"labels": {"app": "swarmer-worker"}}, "spec": {"containers": []}}
        },
        "status": {"replicas": replicas, "readyReplicas": ready}
    })
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {}, "items": items})
}

fn hpa(name: &str, target: &str) -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "load"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "maxReplicas": 10
        }
    })
}

fn refusal(code: u16, reason: &str, message: &str) -> Reply {
    Reply::Json(
        code,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code
        }),
    )
}

fn scaler(mock: &Mock) -> KubernetesScaler {
    KubernetesScaler::new(
        mock.client("default"),
        "swarmer-worker",
        Some("load".into()),
    )
}

const HPA_LIST: &str = "/apis/autoscaling/v2/namespaces/load/horizontalpodautoscalers?";
const KEDA_LIST: &str = "/apis/keda.sh/v1alpha1/namespaces/load/scaledobjects?";

#[tokio::test]
async fn status_reads_scale_then_deployment_then_autoscalers_once() {
    let mock = Mock::new(vec![
        Reply::Json(200, scale_object(3)),
        Reply::Json(200, deployment(3, 2)),
        // No KEDA in this cluster: the API server answers a bare 404.
        Reply::Text(404, "404 page not found"),
        Reply::Json(
            200,
            list(
                "HorizontalPodAutoscalerList",
                vec![hpa("other", "api"), hpa("workers-hpa", "swarmer-worker")],
            ),
        ),
        Reply::Json(200, scale_object(3)),
        Reply::Json(200, deployment(3, 3)),
    ]);
    let scaler = scaler(&mock);
    let first = scaler.status().await.unwrap();
    assert_eq!(first.desired, 3);
    assert_eq!(first.ready, Some(2));
    let warning = first.warning.expect("the HPA is mentioned");
    assert!(
        warning.contains("HorizontalPodAutoscaler \"workers-hpa\""),
        "{warning}"
    );
    assert!(!warning.contains("\"other\""), "{warning}");
    // The autoscaler check is remembered: the second status asks less.
    let second = scaler.status().await.unwrap();
    assert_eq!((second.desired, second.ready), (3, Some(3)));
    assert_eq!(second.warning.as_deref(), Some(warning.as_str()));
    let scale_path = format!("{DEPLOYMENTS}/swarmer-worker/scale");
    let deployment_path = format!("{DEPLOYMENTS}/swarmer-worker");
    assert_eq!(
        mock.seen(),
        vec![
            get(&scale_path),
            get(&deployment_path),
            get(KEDA_LIST),
            get(HPA_LIST),
            get(&scale_path),
            get(&deployment_path),
        ]
    );
    assert_eq!(mock.left(), 0);
}

#[tokio::test]
async fn scale_sends_one_merge_patch_of_the_scale_subresource() {
    let mock = Mock::new(vec![Reply::Json(200, scale_object(5))]);
    scaler(&mock).scale(5).await.unwrap();
    let seen = mock.seen();
    assert_eq!(
        seen,
        vec![Seen {
            method: "PATCH".into(),
            path: format!("{DEPLOYMENTS}/swarmer-worker/scale?&fieldManager=swarmer"),
            content_type: Some("application/merge-patch+json".into()),
            body: r#"{"spec":{"replicas":5}}"#.into(),
        }]
    );
}

#[tokio::test]
async fn scaling_to_zero_is_a_patch_like_any_other() {
    let mock = Mock::new(vec![Reply::Json(200, scale_object(0))]);
    scaler(&mock).scale(0).await.unwrap();
    assert_eq!(mock.seen()[0].body, r#"{"spec":{"replicas":0}}"#);
}

#[tokio::test]
async fn forbidden_names_the_missing_rbac_rule() {
    let said = "deployments.apps \"swarmer-worker\" is forbidden: User \"system:serviceaccount:load:swarmer-master\" \
                cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"load\"";
    let mock = Mock::new(vec![refusal(403, "Forbidden", said)]);
    let err = scaler(&mock).scale(4).await.unwrap_err();
    let ScaleError::Forbidden(text) = &err else {
        panic!("expected Forbidden, got {err:?}");
    };
    assert!(
        text.starts_with(
            "the service account cannot patch deployments/scale \"swarmer-worker\" in namespace \"load\": \
             add a Role rule {apiGroups: [\"apps\"], resources: [\"deployments/scale\"], \
             resourceNames: [\"swarmer-worker\"], verbs: [\"get\",\"patch\",\"update\"]}"
        ),
        "{text}"
    );
    // The server's own words name the identity that lacks the rule.
    assert!(
        text.contains("system:serviceaccount:load:swarmer-master"),
        "{text}"
    );
    assert!(err.to_string().starts_with("forbidden: "));
}

#[tokio::test]
async fn forbidden_on_read_says_get() {
    let mock = Mock::new(vec![refusal(403, "Forbidden", "no")]);
    let err = scaler(&mock).status().await.unwrap_err();
    assert!(
        matches!(&err, ScaleError::Forbidden(t) if t.starts_with("the service account cannot get deployments/scale")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_deployment_is_not_found_with_name_and_namespace() {
    let mock = Mock::new(vec![refusal(
        404,
        "NotFound",
        "deployments.apps \"swarmer-worker\" not found",
    )]);
    let err = scaler(&mock).status().await.unwrap_err();
    let ScaleError::NotFound(text) = &err else {
        panic!("expected NotFound, got {err:?}");
    };
    assert!(
        text.starts_with("the Deployment \"swarmer-worker\" does not exist in namespace \"load\""),
        "{text}"
    );
    assert!(text.contains("--worker-deployment"), "{text}");
}

#[tokio::test]
async fn a_conflict_says_try_again() {
    let mock = Mock::new(vec![refusal(
        409,
        "Conflict",
        "the object has been modified",
    )]);
    let err = scaler(&mock).scale(2).await.unwrap_err();
    let ScaleError::Conflict(text) = &err else {
        panic!("expected Conflict, got {err:?}");
    };
    assert!(
        text.contains("try again") && text.contains("the object has been modified"),
        "{text}"
    );
}

#[tokio::test]
async fn no_connection_is_unreachable() {
    let mock = Mock::new(vec![Reply::Broken]);
    let err = scaler(&mock).scale(2).await.unwrap_err();
    let ScaleError::Unreachable(text) = &err else {
        panic!("expected Unreachable, got {err:?}");
    };
    assert!(text.contains("connection refused"), "{text}");
}

#[tokio::test]
async fn optional_reads_that_are_forbidden_do_not_break_status() {
    // A Role with only the deployments/scale rule: no ready count, no
    // autoscaler check, but the desired count is still shown.
    let mock = Mock::new(vec![
        Reply::Json(200, scale_object(2)),
        refusal(403, "Forbidden", "cannot get deployments"),
        refusal(403, "Forbidden", "cannot list scaledobjects"),
        refusal(403, "Forbidden", "cannot list horizontalpodautoscalers"),
    ]);
    let status = scaler(&mock).status().await.unwrap();
    assert_eq!(
        status,
        ScaleStatus {
            desired: 2,
            ready: None,
            warning: None
        }
    );
}

#[tokio::test]
async fn a_keda_scaled_object_is_named_instead_of_its_hpa() {
    let scaled_object = json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "workers-keda", "namespace": "load"},
        "spec": {"scaleTargetRef": {"name": "swarmer-worker"}}
    });
    let mut keda_hpa = hpa("keda-hpa-workers-keda", "swarmer-worker");
    keda_hpa["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "name": "workers-keda", "uid": "1", "controller": true
    }]);
    let mock = Mock::new(vec![
        Reply::Json(200, scale_object(1)),
        Reply::Json(200, deployment(1, 1)),
        Reply::Json(200, list("ScaledObjectList", vec![scaled_object])),
        Reply::Json(200, list("HorizontalPodAutoscalerList", vec![keda_hpa])),
    ]);
    let warning = scaler(&mock).status().await.unwrap().warning.unwrap();
    assert!(
        warning.starts_with("the KEDA ScaledObject \"workers-keda\" also scales"),
        "{warning}"
    );
    assert!(!warning.contains("HorizontalPodAutoscaler"), "{warning}");
}

#[tokio::test]
async fn the_namespace_defaults_to_the_clients() {
    let mock = Mock::new(vec![Reply::Json(200, scale_object(1))]);
    let scaler = KubernetesScaler::new(mock.client("pods-own"), "swarmer-worker", None);
    assert_eq!(scaler.namespace(), "pods-own");
    scaler.scale(1).await.unwrap();
    assert!(
        mock.seen()[0]
            .path
            .starts_with("/apis/apps/v1/namespaces/pods-own/deployments/swarmer-worker/scale"),
        "{:?}",
        mock.seen()
    );
}
