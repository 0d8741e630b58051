//! A fake Kubernetes API server for the scaling tests: real HTTPS on
//! loopback with a certificate from a CA made for the test (so the client's
//! verification is exercised, not bypassed), reached through a kubeconfig
//! like any cluster.
//!
//! It serves one `apps/v1 Deployment` and its `autoscaling/v1 Scale`
//! subresource (GET and merge PATCH), lists HorizontalPodAutoscalers, and
//! answers 404 for anything else (as a cluster without KEDA does). Standing
//! in for the deployment controller, it starts real `swarmer --worker`
//! processes ("pods") as the replica count grows and sends SIGTERM to the
//! newest as it shrinks. Every request is recorded for assertions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

pub const TOKEN: &str = "fake-service-account-token";
/// A pod told to leave that has not after this long is killed, as the
/// kubelet does after terminationGracePeriodSeconds.
const GRACE: Duration = Duration::from_secs(15);

/// One request as the fake API server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: String,
}

/// How the controller starts a pod: `program --worker ...` joining
/// `127.0.0.1:master_port`.
#[derive(Clone)]
struct PodTemplate {
    program: PathBuf,
    master_port: u16,
    args: Vec<String>,
}

struct Pod {
    name: String,
    child: Child,
    terminating_since: Option<Instant>,
}

#[derive(Default)]
struct State {
    replicas: i32,
    requests: Vec<Seen>,
    forbid_patch: bool,
    hpas: Vec<String>,
    template: Option<PodTemplate>,
    pods: Vec<Pod>,
    started: u64,
    logs: PathBuf,
}

pub struct FakeKube {
    pub addr: SocketAddr,
    pub namespace: String,
    pub deployment: String,
    /// A kubeconfig that trusts this server's CA and uses [`TOKEN`].
    pub kubeconfig: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeKube {
    /// Serves `namespace/deployment` with `replicas`; the kubeconfig and
    /// pod logs go to `dir`. The kubeconfig's context names `namespace`.
    pub fn start(dir: &Path, namespace: &str, deployment: &str, replicas: i32) -> FakeKube {
        let (ca_pem, tls) = certificates();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(addr, &ca_pem, namespace)).unwrap();
        let state = Arc::new(Mutex::new(State {
            replicas,
            logs: dir.to_path_buf(),
            ..State::default()
        }));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let server = Server {
            state: state.clone(),
            base: format!("/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}"),
            hpa_path: format!(
                "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
            ),
            namespace: namespace.into(),
            deployment: deployment.into(),
        };
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(server.run(std_listener, tls, stop_rx));
        });
        FakeKube {
            addr,
            namespace: namespace.into(),
            deployment: deployment.into(),
            kubeconfig,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// From now on, keep as many `program --worker` pods running as the
    /// Deployment asks for, joining the master at `master_port`.
    pub fn run_workers(&self, program: &str, master_port: u16, args: &[&str]) {
        self.state.lock().unwrap().template = Some(PodTemplate {
            program: program.into(),
            master_port,
            args: args.iter().map(|a| a.to_string()).collect(),
        });
    }

    pub fn replicas(&self) -> i32 {
        self.state.lock().unwrap().replicas
    }

    /// Pods running and not terminating.
    pub fn ready(&self) -> usize {
        let state = self.state.lock().unwrap();
        state
            .pods
            .iter()
            .filter(|p| p.terminating_since.is_none())
            .count()
    }

    pub fn pods_alive(&self) -> usize {
        self.state.lock().unwrap().pods.len()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn patches(&self) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect()
    }

    /// Answer every PATCH with 403, as for a service account without the rule.
    pub fn forbid_patches(&self, forbid: bool) {
        self.state.lock().unwrap().forbid_patch = forbid;
    }

    /// An HPA named `name` targeting the Deployment.
    pub fn add_hpa(&self, name: &str) {
        self.state.lock().unwrap().hpas.push(name.into());
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for pod in &mut state.pods {
            super::send_signal("KILL", &format!("-{}", pod.child.id()));
            let _ = pod.child.wait();
        }
    }
}

/// A CA made for this server and a certificate for 127.0.0.1 it signed.
fn certificates() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fake-kube-ca");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key.into())
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

fn kubeconfig_yaml(addr: SocketAddr, ca_pem: &str, namespace: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: https://{addr}
    certificate-authority-data: {ca}
users:
- name: fake
  user:
    token: {TOKEN}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: {namespace}
current-context: fake
"
    )
}

#[derive(Clone)]
struct Server {
    state: Arc<Mutex<State>>,
    base: String,
    hpa_path: String,
    namespace: String,
    deployment: String,
}

type Reply = Response<Full<Bytes>>;

impl Server {
    async fn run(
        self,
        listener: std::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => self.reconcile(),
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let (acceptor, server) = (acceptor.clone(), self.clone());
                    tokio::spawn(async move {
                        // A client that does not trust the CA fails here; fine.
                        let Ok(stream) = acceptor.accept(tcp).await else { return };
                        let service = hyper::service::service_fn(move |req| {
                            let server = server.clone();
                            async move { Ok::<_, std::convert::Infallible>(server.answer(req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    }

    async fn answer(&self, req: Request<Incoming>) -> Reply {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            content_type: (parts.headers.get("content-type"))
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let authorized = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {TOKEN}"));
        if !authorized {
            return status_reply(401, "Unauthorized", "Unauthorized");
        }
        let mut state = self.state.lock().unwrap();
        state.requests.push(seen.clone());
        let path = parts.uri.path();
        match (seen.method.as_str(), path) {
            ("GET", p) if p == format!("{}/scale", self.base) => {
                json_reply(200, self.scale(&state))
            }
            ("PATCH", p) if p == format!("{}/scale", self.base) => {
                self.patch_scale(&mut state, &seen)
            }
            ("GET", p) if p == self.base => json_reply(200, self.deployment_object(&state)),
            ("GET", p) if p == self.hpa_path => json_reply(200, self.hpa_list(&state)),
            _ => text_reply(404, "404 page not found"),
        }
    }

    fn patch_scale(&self, state: &mut State, seen: &Seen) -> Reply {
        if state.forbid_patch {
            let message = format!(
                "deployments.apps \"{}\" is forbidden: User \"system:serviceaccount:{}:swarmer-master\" \
                 cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"{}\"",
                self.deployment, self.namespace, self.namespace
            );
            return status_reply(403, "Forbidden", &message);
        }
        if seen.content_type.as_deref() != Some("application/merge-patch+json") {
            return status_reply(415, "UnsupportedMediaType", "expected a merge patch");
        }
        let patch: Value = serde_json::from_str(&seen.body).unwrap_or_default();
        let Some(replicas) = patch["spec"]["replicas"].as_i64() else {
            return status_reply(422, "Invalid", "spec.replicas must be an integer");
        };
        state.replicas = replicas as i32;
        json_reply(200, self.scale(state))
    }

    fn scale(&self, state: &State) -> Value {
        json!({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": self.deployment, "namespace": self.namespace},
            "spec": {"replicas": state.replicas},
            "status": {"replicas": state.pods.len(), "selector": "app=swarmer-worker"}
        })
    }

    fn deployment_object(&self, state: &State) -> Value {
        let ready = state
            .pods
            .iter()
            .filter(|p| p.terminating_since.is_none())
            .count();
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": self.deployment, "namespace": self.namespace},
            "spec": {
                "replicas": state.replicas,
                "selector": {"matchLabels": {"app": "swarmer-worker"}},
                "template": {"metadata": {"labels": {"app": "swarmer-worker"}}, "spec": {"containers": []}}
            },
            "status": {"replicas": state.pods.len(), "readyReplicas": ready}
        })
    }

    fn hpa_list(&self, state: &State) -> Value {
        let items: Vec<Value> = (state.hpas.iter())
            .map(|name| {
                json!({
                    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": name, "namespace": self.namespace},
                    "spec": {
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.deployment},
                        "maxReplicas": 10
                    }
                })
            })
            .collect();
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList", "metadata": {}, "items": items})
    }

    /// The deployment controller's job: as many live pods as replicas,
    /// the newest told to leave first.
    fn reconcile(&self) {
        let mut state = self.state.lock().unwrap();
        state.pods.retain_mut(|p| match p.child.try_wait() {
            Ok(None) => {
                if p.terminating_since.is_some_and(|t| t.elapsed() > GRACE) {
                    let _ = p.child.kill();
                }
                true
            }
            _ => false,
        });
        let Some(template) = state.template.clone() else {
            return;
        };
        let want = state.replicas.max(0) as usize;
        let live = |s: &State| {
            s.pods
                .iter()
                .filter(|p| p.terminating_since.is_none())
                .count()
        };
        while live(&state) > want {
            let pod = (state.pods.iter_mut().rev())
                .find(|p| p.terminating_since.is_none())
                .unwrap();
            super::send_signal("TERM", &pod.child.id().to_string());
            pod.terminating_since = Some(Instant::now());
        }
        while live(&state) < want {
            state.started += 1;
            let name = format!("{}-{}", self.deployment, state.started);
            let child = start_pod(&template, &name, &state.logs);
            state.pods.push(Pod {
                name,
                child,
                terminating_since: None,
            });
        }
    }
}

fn start_pod(template: &PodTemplate, name: &str, logs: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
    let mut cmd = Command::new(&template.program);
    cmd.args([
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--worker-id",
        name,
    ])
    .args(["--master-port", &template.master_port.to_string()])
    .args(&template.args)
    .process_group(0)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(log);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("SWARMER_")) {
            cmd.env_remove(key);
        }
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start pod {name}: {e}"))
}

fn json_reply(code: u16, value: Value) -> Reply {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap()
}

fn text_reply(code: u16, text: &str) -> Reply {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(text.to_string())))
        .unwrap()
}

/// A `Status` object, as the API server sends with every refusal.
fn status_reply(code: u16, reason: &str, message: &str) -> Reply {
    json_reply(
        code,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code
        }),
    )
}
