//! Fixtures of the extension tests: a master whose script declares views,
//! actions, routes and hooks (with its extensions started as the binary
//! starts them), one in-process worker, and a target on loopback that
//! counts what it serves and can be reset (as `swarmer demo-target` can).
//! Needs `mod web_support;` declared before it in the test file.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing;
use ext::ExtConfig;
use master::ext::Extensions;
use master::web::WebConfig;
use master::{MasterConfig, MasterHandle, Snapshot};
use protocol::ScriptText;
use script::ScriptSource;
use tokio_util::sync::CancellationToken;

use crate::web_support::MAX_WAIT;

pub const SCRIPT_PATH: &str = "web_ext.lua";

/// `Browse` users: `/` works, `/checkout` always fails, one item in three
/// fails; every item seen is counted with `swarmer.count`. The
/// extensions rank the error rate per endpoint, reset the target, fail on
/// purpose, and record the run events their hooks see.
pub const SCRIPT: &str = r#"
local Browse = swarmer.user { name = "Browse", host = HOST, wait = swarmer.constant(0.02) }
Browse:task(3, function(self) self.http:get("/") end)
Browse:task(function(self) self.http:post("/checkout") end)
Browse:task(2, function(self)
  local id = swarmer.random(1, 9)
  self.http:get("/item/" .. id, { name = "/item/[id]" })
  swarmer.count("items seen")
end)

local function ranking(ctx)
  local rows = {}
  for _, e in ipairs(ctx.stats) do
    if e.method ~= "COUNT" and e.num_requests > 0 then
      rows[#rows + 1] = { e.method .. " " .. e.name, e.num_requests, e.num_failures,
                          math.floor(1000 * e.num_failures / e.num_requests) / 10 }
    end
  end
  table.sort(rows, function(a, b) return a[4] > b[4] end)
  return rows
end

swarmer.ui.view { id = "error-rate", title = "Error rate", render = function(ctx)
  local rows = ranking(ctx)
  ctx.state.renders = (ctx.state.renders or 0) + 1
  return {
    figures = {
      { label = "Worst endpoint", value = rows[1] and rows[1][1] or "none", tone = "bad" },
      { label = "Renders", value = ctx.state.renders },
      { label = "Markup stays text", value = "<img src=x onerror=alert(1)>" },
    },
    tables = { { title = "Ranking", columns = { "Endpoint", "Requests", "Failures", "Error %" }, rows = rows } },
    charts = { { title = "Error % by rank", series = { { label = "Error %", values = (function()
      local v = {} for i, r in ipairs(rows) do v[i] = r[4] end return v end)() } } } },
  }
end }

swarmer.ui.view { id = "broken", title = "Broken", render = function(ctx)
  local missing = nil
  return missing.field
end }

swarmer.ui.action { id = "reset-target", title = "Reset target", view = "error-rate",
  description = "Sets the target's request counter back to zero.",
  fields = {
    { name = "confirm", type = "choice", choices = { "yes", "no" } },
    { name = "n", type = "number", min = 0, integer = true, default = 1 },
    { name = "note", type = "text", required = false, max_length = 20 },
  },
  run = function(args, ctx)
    if args.confirm ~= "yes" then return { ok = false, message = "Not confirmed" } end
    local r = ctx.http:post("/reset")
    return { ok = r.ok, message = "Target reset: " .. r.body, data = r:json() }
  end }

swarmer.ui.action { id = "fail", title = "Always fails", run = function(args, ctx)
  error("this action always fails")
end }

swarmer.api.route("/ranking", function(req, ctx)
  local limit = tonumber(req.query.limit or "100")
  local rows, out = ranking(ctx), {}
  for i = 1, math.min(limit, #rows) do out[i] = { endpoint = rows[i][1], error_pct = rows[i][4] } end
  return out
end)

local events = {}
swarmer.on("test_start", function(e) events[#events + 1] = "start " .. e.run_id end)
swarmer.on("test_stop", function(e) events[#events + 1] = "stop " .. e.run_id end)
swarmer.on("worker_joined", function(e) events[#events + 1] = "joined " .. e.worker_id end)
swarmer.on("worker_left", function(e) events[#events + 1] = "left " .. e.worker_id .. " " .. e.reason end)
swarmer.api.route("/events", function() return events end)
"#;

/// What the script's `BROKEN` view raises, as the line it is on.
pub fn line_of(needle: &str) -> usize {
    SCRIPT.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// A target: `/` 200, `/item/{id}` 200 except ids divisible by 3 (404),
/// `/checkout` 500, `POST /reset` zeroes the count of requests served and
/// answers `{"served_before": n}`, `GET /stats` answers `{"served": n}`.
pub struct Target {
    pub addr: SocketAddr,
    pub served: Arc<AtomicU64>,
}

pub async fn start_target() -> Target {
    let served = Arc::new(AtomicU64::new(0));
    let count = |served: Arc<AtomicU64>| {
        move || {
            served.fetch_add(1, Ordering::Relaxed);
        }
    };
    let (a, b, c) = (
        count(served.clone()),
        count(served.clone()),
        count(served.clone()),
    );
    let reset = served.clone();
    let app = Router::new()
        .route(
            "/",
            routing::get(move || async move {
                a();
                "hello"
            }),
        )
        .route(
            "/item/{id}",
            routing::get(
                move |axum::extract::Path(id): axum::extract::Path<u32>| async move {
                    b();
                    if id % 3 == 0 {
                        (StatusCode::NOT_FOUND, "gone")
                    } else {
                        (StatusCode::OK, "item")
                    }
                },
            ),
        )
        .route(
            "/checkout",
            routing::post(move || async move {
                c();
                (StatusCode::INTERNAL_SERVER_ERROR, "sold out")
            }),
        )
        .route(
            "/reset",
            routing::post(move || async move {
                let before = reset.swap(0, Ordering::Relaxed);
                axum::Json(serde_json::json!({ "served_before": before }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Target { addr, served }
}

pub struct ExtHarness {
    pub master: MasterHandle,
    pub ext: Extensions,
    pub shutdown: CancellationToken,
    pub target: Target,
}

impl Drop for ExtHarness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl ExtHarness {
    /// The master with [`SCRIPT`], its extensions and one worker.
    pub async fn start() -> ExtHarness {
        let target = start_target().await;
        let code = SCRIPT.replace("HOST", &format!("\"http://{}\"", target.addr));
        let src = ScriptSource {
            path: SCRIPT_PATH.into(),
            code: code.clone(),
        };
        let info = script::inspect(&src).expect("the test script loads");
        let config = MasterConfig {
            script: ScriptText {
                path: src.path.clone(),
                code,
                files: Vec::new(),
            },
            heartbeat_interval: Duration::from_millis(250),
            report_interval: Duration::from_millis(250),
            missed_heartbeats: 8,
            token: None,
            stop_timeout: Duration::from_secs(2),
            tags: vec![],
            exclude_tags: vec![],
            host: None,
            max_users: master::validate::DEFAULT_MAX_USERS,
            thresholds: vec![],
        };
        let shutdown = CancellationToken::new();
        let (master, _task) = master::start(config, info, shutdown.clone());
        let ext_config = ExtConfig {
            call_timeout: Duration::from_secs(5),
            ..ExtConfig::default()
        };
        let ext = Extensions::start(&src, ext_config, master.clone())
            .await
            .expect("the extensions load")
            .expect("the script declares extensions");
        let h = ExtHarness {
            master,
            ext,
            shutdown,
            target,
        };
        h.attach_worker("web-ext-worker");
        h.wait_for(|s| s.worker_count == 1).await;
        h
    }

    pub fn attach_worker(&self, id: &str) -> tokio::task::JoinHandle<worker::SessionEnd> {
        crate::web_support::attach_worker(&self.master, &self.shutdown, id)
    }

    pub async fn wait_for(&self, pred: impl FnMut(&Snapshot) -> bool) -> Arc<Snapshot> {
        tokio::time::timeout(MAX_WAIT, self.master.wait_for(pred))
            .await
            .expect("the master reached the expected state in time")
            .expect("the master is running")
    }

    /// A web config serving the extensions, with `base` as base path.
    pub fn config(&self, base: &str) -> WebConfig {
        WebConfig {
            base_path: base.into(),
            max_workers: 4,
            ext: Some(self.ext.clone()),
            ..WebConfig::default()
        }
    }

    pub fn router(&self, config: WebConfig) -> Router {
        master::web::router(self.master.clone(), config)
    }

    /// Starts a run of 4 users through `app` and waits until every
    /// endpoint has requests and failures have come in.
    pub async fn run(&self, app: &Router, base: &str) {
        let url = format!("{base}/api/v1/run");
        let body = serde_json::json!({ "users": 4, "spawn_rate": 100 });
        let started =
            crate::web_support::send(app, crate::web_support::json("POST", &url, body)).await;
        assert_eq!(started.status, 200, "{}", started.body);
        self.wait_for(|s| {
            s.stats.entries().filter(|e| e.num_requests >= 3).count() >= 4
                && s.stats.num_failures() > 5
        })
        .await;
    }
}
