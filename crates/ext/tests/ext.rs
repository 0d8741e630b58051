//! Script extensions as the master runs them (the `ext` crate):
//! declarations checked at load on every process, views with their own
//! state, actions with typed fields checked before the handler and
//! master-side HTTP, routes, hooks, time limits that stop runaway scripts,
//! and errors with the script's file and line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use ext::{CallContext, ExtConfig, ExtError, ExtHandle};
use serde_json::{Value, json};

/// A target on 127.0.0.1 port 0: `/status/N` answers status N, anything
/// else echoes the request as JSON (method, path, body). One request per
/// connection, which is all these tests send.
fn start_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |v| v.trim().parse().unwrap_or(0));
                        if buf.len() >= end + 4 + len {
                            let body = buf[end + 4..end + 4 + len].to_vec();
                            break (String::from_utf8_lossy(&buf[..end]).into_owned(), body);
                        }
                    }
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let mut words = head.split(' ');
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let (status, body) = match path.strip_prefix("/status/") {
                    Some(code) => (code.parse().unwrap_or(500), String::new()),
                    None => (
                        200u16,
                        json!({ "method": method, "path": path, "body": String::from_utf8_lossy(&body) })
                            .to_string(),
                    ),
                };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            });
        }
    });
    addr
}

fn host(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

const USERS: &str = r#"
local U = swarmer.user { name = "U" }
U:task(function(self) end)
"#;

fn src(code: &str) -> script::ScriptSource {
    script::ScriptSource {
        path: "ext_test.lua".into(),
        code: format!("{USERS}{code}"),
    }
}

/// The line of `needle` in the script as `src` builds it.
fn line_of(code: &str, needle: &str) -> usize {
    let full = format!("{USERS}{code}");
    full.lines().position(|l| l.contains(needle)).unwrap() + 1
}

async fn start(code: &str, timeout: Duration) -> ExtHandle {
    let config = ExtConfig {
        call_timeout: timeout,
        ..ExtConfig::default()
    };
    ext::start(&src(code), config)
        .await
        .expect("the script loads")
        .expect("the script declares extensions")
}

fn ctx(data: Value) -> CallContext {
    CallContext { data, host: None }
}

const VIEWS: &str = r#"
swarmer.ui.view { id = "ranking", title = "Ranking", render = function(ctx)
  ctx.state.renders = (ctx.state.renders or 0) + 1
  local rows = {}
  for _, e in ipairs(ctx.stats) do rows[#rows + 1] = { e.name, e.num_failures / e.num_requests } end
  table.sort(rows, function(a, b) return a[2] > b[2] end)
  return {
    figures = { { label = "Renders", value = ctx.state.renders } },
    tables = { { columns = { "Name", "Error rate" }, rows = rows } },
    charts = { { title = "c", series = { { label = "s", values = { 1, 2 } } } } },
  }
end }
swarmer.ui.action { id = "add", title = "Add", fields = {
    { name = "n", type = "number", min = 0, integer = true },
    { name = "mode", type = "choice", choices = { "a", "b" }, default = "a" },
    { name = "note", type = "text", required = false },
  }, run = function(args, ctx)
    ctx.state.total = (ctx.state.total or 0) + args.n
    return { ok = true, message = "added " .. args.n .. " (" .. args.mode .. ")", data = { total = ctx.state.total, note = args.note } }
  end }
swarmer.api.route("/item/{name}", function(req, ctx)
  return { name = req.params.name, q = req.query.q, users = ctx.run.user_count }
end)
local seen = {}
swarmer.on("test_start", function(event, ctx) seen[#seen + 1] = event.run_id end)
swarmer.api.route("/seen", function() return seen end)
"#;

#[tokio::test]
async fn views_actions_routes_and_hooks() {
    let ext = start(VIEWS, Duration::from_secs(5)).await;
    let cat = serde_json::to_value(ext.catalog()).unwrap();
    assert_eq!(
        cat["views"],
        json!([{ "id": "ranking", "title": "Ranking" }])
    );
    assert_eq!(cat["routes"], json!(["/item/{name}", "/seen"]));
    assert_eq!(cat["hooks"], json!(["test_start"]));
    assert_eq!(cat["actions"][0]["fields"][1]["choices"], json!(["a", "b"]));

    let stats = json!({ "stats": [
        { "name": "/a", "num_requests": 10, "num_failures": 1 },
        { "name": "/b", "num_requests": 10, "num_failures": 5 },
    ]});
    let view = ext.render("ranking", ctx(stats.clone())).await.unwrap();
    assert_eq!(view.tables[0].rows[0], vec![json!("/b"), json!(0.5)]);
    let again = ext.render("ranking", ctx(stats)).await.unwrap();
    assert_eq!(again.figures[0].value, json!(2), "the view keeps its state");

    let done = ext
        .act("add", json!({ "n": "3" }), ctx(json!({})))
        .await
        .unwrap();
    assert_eq!(done.message, "added 3 (a)");
    let done = ext
        .act(
            "add",
            json!({ "n": 4, "mode": "b", "note": "hi" }),
            ctx(json!({})),
        )
        .await
        .unwrap();
    assert_eq!(done.data, json!({ "total": 7, "note": "hi" }));
    let refused = ext.act("add", json!({ "n": -1 }), ctx(json!({}))).await;
    assert_eq!(
        refused.unwrap_err(),
        ExtError::Invalid {
            field: "n".into(),
            problem: "must be >= 0, got -1".into()
        }
    );

    let query = vec![("q".to_string(), "x y".to_string())];
    let data = ctx(json!({ "run": { "user_count": 5 } }));
    let out = ext.route("/item/a%2Fb", query, data).await.unwrap();
    assert_eq!(out, json!({ "name": "a/b", "q": "x y", "users": 5 }));
    let missing = ext.route("/nope", vec![], ctx(json!({}))).await;
    assert!(matches!(missing, Err(ExtError::NotFound { .. })));

    assert!(
        ext.emit("test_start", json!({ "run_id": 7 }), ctx(json!({})))
            .await
            .is_empty()
    );
    assert!(
        ext.emit("test_stop", json!({}), ctx(json!({})))
            .await
            .is_empty()
    );
    assert_eq!(
        ext.route("/seen", vec![], ctx(json!({}))).await.unwrap(),
        json!([7])
    );
}

#[tokio::test]
async fn script_errors_name_the_file_and_line() {
    let code = r#"
swarmer.ui.view { id = "broken", render = function(ctx)
  local x = nil
  return x.field
end }
swarmer.ui.view { id = "shape", render = function(ctx)
  return { tables = { { columns = { "a" }, rows = { { function() end } } } } }
end }
swarmer.ui.action { id = "fails", run = function() error("no target") end }
swarmer.on("test_stop", function() error("hook failed") end)
"#;
    let ext = start(code, Duration::from_secs(5)).await;
    let e = ext.render("broken", ctx(json!({}))).await.unwrap_err();
    let line = line_of(code, "return x.field");
    assert!(
        matches!(&e, ExtError::Script(m) if m.starts_with(&format!("ext_test.lua:{line}:"))),
        "{e}"
    );
    let e = ext
        .render("shape", ctx(json!({})))
        .await
        .unwrap_err()
        .to_string();
    let line = line_of(code, "id = \"shape\"");
    assert_eq!(
        e,
        format!(
            "ext_test.lua:{line}: view \"shape\": the function returned something unusable: the result.tables[1].rows[1][1]: a function is not data"
        )
    );
    let e = ext
        .act("fails", Value::Null, ctx(json!({})))
        .await
        .unwrap_err();
    let line = line_of(code, "no target");
    assert_eq!(e.to_string(), format!("ext_test.lua:{line}: no target"));
    let errors = ext.emit("test_stop", json!({}), ctx(json!({}))).await;
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().ends_with("hook failed"));
    // Statistics are recorded on workers; on the master the call says so.
    let code2 = r#"swarmer.ui.action { id = "count", run = function() swarmer.count("x") end }"#;
    let ext2 = start(code2, Duration::from_secs(5)).await;
    let e = ext2
        .act("count", Value::Null, ctx(json!({})))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("records statistics on workers"),
        "{e}"
    );
}

#[tokio::test]
async fn runaway_calls_are_stopped_and_the_engine_goes_on() {
    let code = r#"
swarmer.ui.view { id = "loop", render = function(ctx)
  while true do end
end }
swarmer.ui.view { id = "pcall-loop", render = function(ctx)
  while true do pcall(function() while true do end end) end
end }
swarmer.ui.view { id = "sleepy", render = function(ctx) swarmer.sleep(30) end }
swarmer.ui.view { id = "quick", render = function(ctx) return { note = "fine" } end }
"#;
    let ext = start(code, Duration::from_millis(300)).await;
    for id in ["loop", "pcall-loop", "sleepy"] {
        let started = Instant::now();
        let e = ext.render(id, ctx(json!({}))).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{id}");
        assert!(
            matches!(&e, ExtError::Timeout(m) if m.contains("was stopped")),
            "{id}: {e}"
        );
        assert!(e.to_string().starts_with("ext_test.lua:"), "{e}");
    }
    let view = ext.render("quick", ctx(json!({}))).await.unwrap();
    assert_eq!(view.note.as_deref(), Some("fine"));
}

#[tokio::test]
async fn a_slow_call_does_not_hold_up_the_others() {
    let code = r#"
swarmer.ui.action { id = "slow", run = function() swarmer.sleep(0.5) return "slept" end }
swarmer.ui.view { id = "quick", render = function() return { note = "fine" } end }
"#;
    let ext = start(code, Duration::from_secs(5)).await;
    let slow = tokio::spawn({
        let ext = ext.clone();
        async move { ext.act("slow", Value::Null, ctx(json!({}))).await }
    });
    until("the slow call in the queue", || ext.pending_calls() == 1).await;
    let started = Instant::now();
    ext.render("quick", ctx(json!({}))).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
    // The quick call was answered while the slow one was still sleeping,
    // not after it.
    assert!(!slow.is_finished(), "the slow call ended first");
    assert_eq!(slow.await.unwrap().unwrap().message, "slept");
}

#[tokio::test]
async fn actions_make_http_requests_from_the_master() {
    let addr = start_server();
    let code = r#"
swarmer.ui.action { id = "post", run = function(args, ctx)
  local r = ctx.http:post("/echo", { json = { reset = true } })
  local j = r:json()
  return { ok = r.status == 200, message = j.method .. " " .. j.path, data = { body = j.body } }
end }
swarmer.ui.action { id = "down", run = function(args, ctx)
  local r = ctx.http:get("/status/503")
  return { ok = r.ok, message = "status " .. r.status }
end }
"#;
    let ext = start(code, Duration::from_secs(5)).await;
    let with_host = || CallContext {
        data: json!({}),
        host: Some(host(addr)),
    };
    let out = ext.act("post", Value::Null, with_host()).await.unwrap();
    assert_eq!(out.message, "POST /echo");
    assert_eq!(out.data, json!({ "body": "{\"reset\":true}" }));
    let out = ext.act("down", Value::Null, with_host()).await.unwrap();
    assert!(!out.success);
    assert_eq!(out.message, "status 503");
    // Without a host a relative path has nowhere to go: a clear error.
    let e = ext
        .act("post", Value::Null, ctx(json!({})))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no host"), "{e}");
}

/// Master-side requests get the run's HTTP settings, not defaults: with
/// `--resolve ext.test:PORT:127.0.0.1` a host name no DNS knows (`.test`
/// is reserved) reaches the local server. (The default settings are not
/// tried: that would send a DNS query off the machine.)
#[tokio::test]
async fn ext_clients_honour_the_runs_resolve() {
    let addr = start_server();
    let code = r#"
swarmer.ui.action { id = "get", run = function(args, ctx)
  local r = ctx.http:get("/via-resolve")
  return { ok = r.status == 200, message = r.ok and r:json().path or tostring(r.error) }
end }
"#;
    let host = format!("http://ext.test:{}", addr.port());
    let call = || CallContext {
        data: json!({}),
        host: Some(host.clone()),
    };
    let resolve = script::HttpSettings {
        resolve: vec![
            http_client::HostOverride::parse_curl(&format!("ext.test:{}:127.0.0.1", addr.port()))
                .unwrap(),
        ],
        ..Default::default()
    };
    let config = ExtConfig {
        http: std::sync::Arc::new(resolve),
        ..ExtConfig::default()
    };
    let ext = start_with(code, config).await;
    let out = ext.act("get", Value::Null, call()).await.unwrap();
    assert!(out.success, "{}", out.message);
    assert_eq!(out.message, "/via-resolve");
}

#[tokio::test]
async fn bad_declarations_fail_the_load_with_file_and_line() {
    let cases = [
        (
            r#"swarmer.ui.view { id = "v", rendr = function() end }"#,
            "unknown option \"rendr\"",
        ),
        (
            r#"swarmer.ui.view { id = "a b", render = function() end }"#,
            "must be 1 to 64 letters",
        ),
        (
            r#"swarmer.ui.view { id = "v", render = function() end }
swarmer.ui.view { id = "v", render = function() end }"#,
            "already declared",
        ),
        (
            r#"swarmer.api.route("/views/x", function() end)"#,
            "reserved",
        ),
        (
            r#"swarmer.on("test_begin", function() end)"#,
            "unknown event \"test_begin\"",
        ),
        (
            r#"swarmer.ui.action { id = "a", fields = { { name = "n", type = "number", min = 5, max = 1 } }, run = function() end }"#,
            "min 5 is more than max 1",
        ),
        (
            r#"swarmer.ui.action { id = "a", fields = { { name = "c", type = "choice", choices = { "x" }, default = "y" } }, run = function() end }"#,
            "default: must be one of \"x\"",
        ),
        (r#"swarmer.count("x", 1.5)"#, "n must be a whole number"),
    ];
    for (code, expected) in cases {
        let e = script::inspect(&src(code)).unwrap_err().to_string();
        // The error is on the code's last line.
        let line = USERS.lines().count() + code.lines().count();
        assert!(
            e.starts_with(&format!("ext_test.lua:{line}")),
            "{code}: {e}"
        );
        assert!(e.contains(expected), "{code}: {e}");
    }
    // Checked when the master starts the extensions: the view must exist.
    let code = r#"swarmer.ui.action { id = "a", view = "nope", run = function() end }"#;
    let e = ext::start(&src(code), ExtConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("view \"nope\" is not declared"),
        "{e}"
    );
    // A script without extensions starts none.
    assert!(
        ext::start(&src(""), ExtConfig::default())
            .await
            .unwrap()
            .is_none()
    );
}

const SPIN: &str = r#"
swarmer.ui.view { id = "spin", render = function(ctx) while true do end end }
swarmer.ui.view { id = "nap", render = function(ctx)
  swarmer.sleep(0.6)
  return { note = "rested" }
end }
swarmer.ui.view { id = "quick", render = function(ctx) return { note = "fine" } end }
"#;

async fn start_with(code: &str, config: ExtConfig) -> ExtHandle {
    ext::start(&src(code), config)
        .await
        .expect("the script loads")
        .expect("the script declares extensions")
}

/// Waits until `cond` holds; fails the test after 10 s.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn abandoned_calls_are_cancelled() {
    // Six callers of a view that never ends give up after 100 ms (browser
    // tabs closed): their calls stop instead of each running to the 30 s
    // limit one after another.
    let ext = start(SPIN, Duration::from_secs(30)).await;
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let ext = ext.clone();
            tokio::spawn(async move {
                let call = ext.render("spin", ctx(json!({})));
                tokio::time::timeout(Duration::from_millis(100), call).await
            })
        })
        .collect();
    for c in callers {
        assert!(c.await.unwrap().is_err(), "the caller gave up");
    }
    until("the abandoned calls to end", || ext.pending_calls() == 0).await;
    let started = Instant::now();
    let view = ext.render("quick", ctx(json!({}))).await.unwrap();
    assert_eq!(view.note.as_deref(), Some("fine"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_full_queue_answers_busy_at_once() {
    let config = ExtConfig {
        call_timeout: Duration::from_millis(500),
        max_pending: 2,
        ..ExtConfig::default()
    };
    let ext = start_with(SPIN, config).await;
    let spinning: Vec<_> = (0..2)
        .map(|_| {
            let ext = ext.clone();
            tokio::spawn(async move { ext.render("spin", ctx(json!({}))).await })
        })
        .collect();
    until("two calls in the queue", || ext.pending_calls() == 2).await;
    let started = Instant::now();
    let e = ext.render("quick", ctx(json!({}))).await.unwrap_err();
    assert!(matches!(e, ExtError::Busy(2)), "{e}");
    assert!(started.elapsed() < Duration::from_millis(200));
    for s in spinning {
        let e = s.await.unwrap().unwrap_err();
        assert!(
            matches!(&e, ExtError::Timeout(m) if m.contains("was stopped")),
            "{e}"
        );
    }
    // The queue has room again.
    let view = ext.render("quick", ctx(json!({}))).await.unwrap();
    assert_eq!(view.note.as_deref(), Some("fine"));
}

#[tokio::test]
async fn each_call_is_limited_from_when_it_starts_running() {
    // Four calls that run to their 1 s limit are ahead of a call that needs
    // 0.6 s: it starts about 4 s after it was made and still has its whole
    // second (a limit counted from the request would have stopped it).
    let ext = start(SPIN, Duration::from_secs(1)).await;
    let spinning: Vec<_> = (0..4)
        .map(|_| {
            let ext = ext.clone();
            tokio::spawn(async move { ext.render("spin", ctx(json!({}))).await })
        })
        .collect();
    until("four calls in the queue", || ext.pending_calls() == 4).await;
    let started = Instant::now();
    let view = ext.render("nap", ctx(json!({}))).await.unwrap();
    assert_eq!(view.note.as_deref(), Some("rested"));
    assert!(started.elapsed() >= Duration::from_millis(3500));
    for s in spinning {
        let e = s.await.unwrap().unwrap_err();
        assert!(
            matches!(&e, ExtError::Timeout(m) if m.contains("was stopped")),
            "{e}"
        );
    }
}
