//! Shared fixtures of the web tests: a master running a real Lua script,
//! an in-process worker (the real engine over the in-memory link), a small
//! HTTP target on loopback port 0, and helpers to send requests to the
//! router without a socket.
#![allow(dead_code)]

pub mod browser;
pub mod contrast;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing;
use http_body_util::BodyExt;
use master::scale::{BoxFuture, ScaleError, ScaleStatus, Scaler};
use master::web::WebConfig;
use master::{MasterConfig, MasterHandle, Snapshot};
use protocol::ScriptText;
use script::ScriptSource;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Every wait in these tests is bounded by this.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// Two user types, so user-type selection and `/tasks` have something to
/// show; `Buy` fails on purpose so failures fill in.
pub const SCRIPT: &str = r#"
local Browse = swarmer.user { name = "Browse", weight = 3, host = HOST, wait = swarmer.constant(0.05) }
Browse:task(3, function(self) self.http:get("/") end)
Browse:task { weight = 1, name = "item", fn = function(self)
  self.http:get("/item/" .. swarmer.random(1, 9), { name = "/item/[id]" })
end }
local Buy = swarmer.user { name = "Buy", weight = 1, host = HOST, wait = swarmer.constant(0.1) }
Buy:task(function(self) self.http:post("/checkout") end)
"#;

/// A target that answers `/` and `/item/{id}` with 200 and `/checkout`
/// with 500, on 127.0.0.1 port 0, until the test's runtime ends.
pub async fn start_target() -> SocketAddr {
    let app = Router::new()
        .route("/", routing::get(|| async { "hello" }))
        .route("/item/{id}", routing::get(|| async { "item" }))
        .route(
            "/checkout",
            routing::post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "sold out") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

pub struct Harness {
    pub master: MasterHandle,
    pub shutdown: CancellationToken,
    pub target: SocketAddr,
    /// The script the master runs (HOST replaced by the target's URL).
    pub src: ScriptSource,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves `master`'s web UI on a port of its own until `shutdown`; returns
/// its address with the base path, ending in `/`.
pub async fn serve_web(
    master: &MasterHandle,
    config: WebConfig,
    shutdown: &CancellationToken,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}{}/",
        listener.local_addr().unwrap(),
        config.base_path
    );
    tokio::spawn(master::web::run(
        listener,
        master.clone(),
        config,
        shutdown.clone(),
    ));
    url
}

impl Harness {
    /// A master with the test script and no worker.
    pub async fn new() -> Self {
        Self::with_script(SCRIPT).await
    }

    /// A master with the test script, no worker, judging these thresholds.
    pub async fn with_thresholds(thresholds: &[&str]) -> Self {
        let interval = Duration::from_millis(250);
        Self::start(SCRIPT, thresholds, interval, interval).await
    }

    /// A master with `script` (its `HOST` replaced by the target's URL)
    /// and no worker.
    pub async fn with_script(script: &str) -> Self {
        let interval = Duration::from_millis(250);
        Self::with_intervals(script, interval, interval).await
    }

    /// [`Harness::with_script`] with the master's heartbeat (its tick)
    /// and the workers' report interval as given.
    pub async fn with_intervals(script: &str, heartbeat: Duration, report: Duration) -> Self {
        Self::start(script, &[], heartbeat, report).await
    }

    async fn start(
        script: &str,
        thresholds: &[&str],
        heartbeat: Duration,
        report: Duration,
    ) -> Self {
        let target = start_target().await;
        let code = script.replace("HOST", &format!("\"http://{target}\""));
        let src = ScriptSource {
            path: "web_test.lua".into(),
            code: code.clone(),
        };
        let info = script::inspect(&src).expect("the test script loads");
        let config = MasterConfig {
            script: ScriptText {
                path: src.path.clone(),
                code,
                files: Vec::new(),
            },
            heartbeat_interval: heartbeat,
            report_interval: report,
            missed_heartbeats: 8,
            token: None,
            stop_timeout: Duration::from_secs(2),
            tags: vec![],
            exclude_tags: vec![],
            host: None,
            max_users: master::validate::DEFAULT_MAX_USERS,
            thresholds: thresholds
                .iter()
                .map(|t| verdict::Threshold::parse(t).expect("a valid threshold"))
                .collect(),
        };
        let shutdown = CancellationToken::new();
        let (master, _task) = master::start(config, info, shutdown.clone());
        Self {
            master,
            shutdown,
            target,
            src,
        }
    }

    /// A master with one in-process worker connected.
    pub async fn with_worker() -> Self {
        let harness = Self::new().await;
        harness.attach_worker("web-test-worker");
        harness.wait_for(|s| s.worker_count == 1).await;
        harness
    }

    /// Links a real worker engine (one core) through the in-memory pair.
    /// Aborting the returned task cuts the link without a goodbye.
    pub fn attach_worker(&self, id: &str) -> tokio::task::JoinHandle<worker::SessionEnd> {
        attach_worker(&self.master, &self.shutdown, id)
    }

    pub async fn wait_for(&self, pred: impl FnMut(&Snapshot) -> bool) -> Arc<Snapshot> {
        tokio::time::timeout(MAX_WAIT, self.master.wait_for(pred))
            .await
            .expect("the master reached the expected state in time")
            .expect("the master is running")
    }

    pub fn router(&self, config: WebConfig) -> Router {
        master::web::router(self.master.clone(), config)
    }

    pub fn default_router(&self) -> Router {
        self.router(WebConfig {
            max_workers: 10,
            ..WebConfig::default()
        })
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `message` of an error body, which must have Locust's shape.
    pub fn message(&self) -> String {
        let json = self.json();
        assert_eq!(json["success"], false, "{}", self.body);
        json["message"].as_str().unwrap_or_default().to_string()
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = tokio::time::timeout(MAX_WAIT, router.clone().oneshot(request))
        .await
        .expect("the router answered in time")
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Sends `request()` until `done` holds for the reply, polling within
/// [`MAX_WAIT`], and returns that reply; panics with `what` and the last
/// body otherwise. For state the master publishes on its own clock (the
/// history, the stats), where sleeping a guessed time could pass or fail
/// by luck.
pub async fn send_until(
    router: &Router,
    what: &str,
    request: impl Fn() -> Request<Body>,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    loop {
        let reply = send(router, request()).await;
        if done(&reply) {
            return reply;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out waiting for {what}; last reply {}: {}",
                reply.status, reply.body
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub fn post(path: &str) -> Request<Body> {
    Request::post(path).body(Body::empty()).unwrap()
}

pub fn form(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub fn json(method: &str, path: &str, body: serde_json::Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A scaler that records what it was asked and answers as told.
#[derive(Default)]
pub struct FakeScaler {
    pub calls: Mutex<Vec<u32>>,
    pub desired: Mutex<u32>,
    pub fail_with: Mutex<Option<ScaleError>>,
}

impl FakeScaler {
    pub fn calls(&self) -> Vec<u32> {
        self.calls.lock().unwrap().clone()
    }
}

impl Scaler for FakeScaler {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn status(&self) -> BoxFuture<'_, Result<ScaleStatus, ScaleError>> {
        Box::pin(async move {
            Ok(ScaleStatus {
                desired: *self.desired.lock().unwrap(),
                ready: Some(1),
                warning: None,
            })
        })
    }

    fn scale(&self, workers: u32) -> BoxFuture<'_, Result<(), ScaleError>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(workers);
            if let Some(e) = self.fail_with.lock().unwrap().clone() {
                return Err(e);
            }
            *self.desired.lock().unwrap() = workers;
            Ok(())
        })
    }
}

/// Links a real worker engine (one core) to `master` through the in-memory
/// pair, as standalone mode does. Aborting the task cuts the link without a
/// goodbye. Shared by every web test harness.
pub fn attach_worker(
    master: &MasterHandle,
    shutdown: &CancellationToken,
    id: &str,
) -> tokio::task::JoinHandle<worker::SessionEnd> {
    let (m_end, w_end) = protocol::memory::pair();
    master.attach(m_end);
    let config = worker::SessionConfig {
        worker_id: id.to_string(),
        incarnation: rand::random(),
        token: None,
        stop_timeout: Duration::from_secs(2),
        missed_heartbeats: 8,
    };
    let engine_config = worker::EngineConfig {
        cores: 1,
        node_id: id.to_string(),
        insecure_tls: false,
        http: Default::default(),
        base_dir: None,
        limits: Default::default(),
        stop_timeout: Duration::from_secs(2),
    };
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let mut engine = worker::Engine::start(engine_config).expect("engine starts");
        let mut outbox = worker::session::Outbox::default();
        worker::session::run(w_end, &mut engine, &mut outbox, &config, &shutdown).await
    })
}

/// Drives one Chromium session through `steps`, and closes it even when a
/// step fails, so no browser outlives the test.
pub async fn with_browser<F, Fut>(
    chromium: &std::path::Path,
    chromedriver: &std::path::Path,
    profile: &std::path::Path,
    steps: F,
) where
    F: FnOnce(fantoccini::Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::FutureExt;
    let driver = browser::start_driver(chromedriver).await;
    let client = browser::open_browser(&driver, chromium, profile).await;
    let result = std::panic::AssertUnwindSafe(steps(client.clone()))
        .catch_unwind()
        .await;
    let _ = client.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
