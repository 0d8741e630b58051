//! The HTTP client as scripts use it, against a local target: counts per
//! (method, name), failure grouping, catch_response, bodies, cookies,
//! redirects, timeouts, transport errors and HTTPS.

mod common;

use std::time::Duration;

use common::*;
use script::RuntimeConfig;

const MAX: Duration = Duration::from_secs(10);

#[test]
fn counts_names_and_failure_grouping() {
    let addr = start_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
local n = 0
U:task(function(self)
  if n >= 5 then swarmer.sleep(1000) return end
  n = n + 1
  self.http:get("/")
  self.http:get("/item/" .. n, { name = "/item/[id]" })
  self.http:get("/status/404")
  local r = self.http:get("/status/200")
  r:failure("bad on purpose")
  local r2 = self.http:post("/status/500")
  r2:success()
end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 25,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(count(&stats, "GET", "/"), (5, 0));
    assert_eq!(count(&stats, "GET", "/item/[id]"), (5, 0));
    assert_eq!(count(&stats, "GET", "/status/404"), (5, 5));
    assert_eq!(error_count(&stats, "GET", "/status/404", "HTTP 404"), 5);
    assert_eq!(count(&stats, "GET", "/status/200"), (5, 5));
    assert_eq!(
        error_count(&stats, "GET", "/status/200", "bad on purpose"),
        5
    );
    assert_eq!(count(&stats, "POST", "/status/500"), (5, 0));
    assert_eq!(stats.num_requests(), 25);
}

#[test]
fn several_users_count_exactly() {
    let addr = start_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
local done = 0
U:task(function(self)
  if done >= 200 then swarmer.sleep(1000) return end
  done = done + 1
  self.http:get("/")
end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 20)],
        |s| s.num_requests() >= 200,
        MAX,
    );
    assert_eq!(count(&stats, "GET", "/"), (200, 0));
}

#[test]
fn transport_error_is_a_failure() {
    let port = closed_port();
    let code = format!(
        r#"
local U = swarmer.user {{ name = "U" }}
local n = 0
U:task(function(self)
  if n >= 2 then swarmer.sleep(1000) return end
  n = n + 1
  local r = self.http:get("http://127.0.0.1:{port}/x")
  assert(r.status == 0 and not r.ok and r.error, "expected a transport error")
end)
"#
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 2,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    let url = format!("http://127.0.0.1:{port}/x");
    assert_eq!(count(&stats, "GET", &url), (2, 2));
    let (key, _) = stats.errors().iter().next().unwrap();
    assert!(key.error.contains("refused"), "{}", key.error);
}

#[test]
fn headers_query_form_json_and_body_arrive_as_sent() {
    let addr = start_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
local n = 0
U:task(function(self)
  if n >= 1 then swarmer.sleep(1000) return end
  n = n + 1
  local e = self.http:get("/echo", { headers = { ["X-Test"] = "yes", ["X-Num"] = 7 }, query = { b = "2 3", a = 1 } }):json()
  assert(e.headers["x-test"] == "yes", "header")
  assert(e.headers["x-num"] == "7", "numeric header")
  assert(e.query == "a=1&b=2+3", "query " .. e.query)
  assert(e.headers["user-agent"]:match("^swarmer/"), "user agent")

  e = self.http:post("/echo", { form = { user = "d&mo", tags = { "x", "y" } } }):json()
  assert(e.method == "POST")
  assert(e.body == "tags=x&tags=y&user=d%26mo", "form " .. e.body)
  assert(e.headers["content-type"] == "application/x-www-form-urlencoded")

  e = self.http:put("/echo", { json = { a = 1, list = { 1, 2 }, s = "x" } }):json()
  local back = swarmer.json.decode(e.body)
  assert(back.a == 1 and back.list[2] == 2 and back.s == "x", "json " .. e.body)
  assert(e.headers["content-type"] == "application/json")

  e = self.http:patch("/echo", { body = "raw\0bytes", headers = { ["content-type"] = "text/plain" } }):json()
  assert(e.method == "PATCH" and e.body == "raw\0bytes" and e.headers["content-type"] == "text/plain")

  local r = self.http:request("delete", "/echo?x=1", { query = { y = 2 } })
  assert(r:json().method == "DELETE", r.body)
  assert(r:json().query == "x=1&y=2", r.body)
  assert(r.headers["content-type"] == "application/json")
  assert(r:header("Content-Type") == "application/json")
  assert(r.url == HOST .. "/echo?x=1&y=2", r.url)
  assert(r.ok and r.status == 200 and r.elapsed_ms >= 0 and #r.body > 0 and r.error == nil)

  r = self.http:head("/")
  assert(r.status == 200 and r.body == "")
  r = self.http:options("/echo")
  assert(r:json().method == "OPTIONS")
end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 7,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(count(&stats, "GET", "/echo?a=1&b=2+3"), (1, 0));
    assert_eq!(count(&stats, "DELETE", "/echo?x=1&y=2"), (1, 0));
    assert_eq!(stats.num_requests(), 7);
}

#[test]
fn cookies_are_kept_per_user() {
    let addr = start_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
function U:on_start()
  local r = self.http:get("/cart")
  assert(r.status == 401, "no cookie yet")
  r:success()
  self.http:post("/login", { form = { user = "user" .. self.id } })
end
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  local r = self.http:get("/cart")
  assert(r:json().user == "user" .. self.id, "cart of " .. self.id .. " is " .. r.body)
end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 3)],
        |s| count(s, "GET", "/cart").0 >= 6,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(count(&stats, "GET", "/cart"), (6, 0));
    assert_eq!(count(&stats, "POST", "/login"), (3, 0));
}

#[test]
fn redirects_are_followed_unless_disabled() {
    let addr = start_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  local r = self.http:get("/redirect/3")
  assert(r.status == 200 and r.body == "arrived", "followed")
  assert(r.url == HOST .. "/redirect/0", r.url)
  r = self.http:get("/redirect/2", { allow_redirects = false })
  assert(r.status == 302 and r.headers.location == "/redirect/1")
  local e = self.http:post("/see-other", { json = { a = 1 }, headers = { ["x-keep"] = "1" } }):json()
  assert(e.method == "GET" and e.body == "" and e.headers["content-type"] == nil and e.headers["x-keep"] == "1",
    "303 turns into a GET without body")
  r = self.http:get("/redirect/11")
  assert(r.error and r.error:match("too many redirects"), tostring(r.error))
end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 3,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(count(&stats, "GET", "/redirect/3"), (1, 0));
    assert_eq!(count(&stats, "GET", "/redirect/2"), (1, 0));
    assert_eq!(count(&stats, "GET", "/redirect/11"), (1, 1));
}

#[test]
fn per_request_timeout() {
    let addr = start_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  local r = self.http:get("/slow?ms=3000", { timeout = 0.2, name = "slow" })
  assert(r.status == 0 and r.elapsed_ms < 1000, "timed out quickly: " .. r.elapsed_ms)
end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 1,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(error_count(&stats, "GET", "slow", "timeout after 0.2s"), 1);
}

#[test]
fn host_override_and_missing_host() {
    let addr = start_server();
    let code = r#"
local A = swarmer.user { name = "A", host = "http://127.0.0.1:1" }
A:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  self.http:get("/")
end)
local B = swarmer.user { name = "B" }
B:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  self.http:get("/")
end)
"#;
    // -H wins over the script's host, and gives B one.
    let config = RuntimeConfig {
        host: Some(host(addr)),
        ..Default::default()
    };
    let stats = run_users(
        code,
        config,
        &[("A", 1), ("B", 1)],
        |s| s.num_requests() >= 2,
        MAX,
    );
    assert_eq!(count(&stats, "GET", "/"), (2, 0));
    // Without -H, B's relative path is a script error naming the line.
    let stats = run_users(
        code,
        RuntimeConfig::default(),
        &[("B", 1)],
        |s| s.exceptions().len() >= 1,
        MAX,
    );
    let ex = exceptions(&stats);
    assert!(ex[0].starts_with("test.lua:12: GET /: no host"), "{ex:?}");
}

#[test]
fn https_verifies_certificates_unless_insecure() {
    let addr = start_tls_server();
    let code = format!(
        r#"
local U = swarmer.user {{ name = "U", host = "https://localhost:{}" }}
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  self.http:get("/")
  self.http:get("/item/3")
end)
"#,
        addr.port()
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 2,
        MAX,
    );
    assert_eq!(count(&stats, "GET", "/"), (1, 1));
    let (key, _) = stats.errors().iter().next().unwrap();
    assert!(
        key.error.to_lowercase().contains("certificate"),
        "{}",
        key.error
    );

    let config = RuntimeConfig {
        insecure_tls: true,
        ..Default::default()
    };
    let stats = run_users(&code, config, &[("U", 1)], |s| s.num_requests() >= 2, MAX);
    assert_eq!(count(&stats, "GET", "/"), (1, 0));
    assert_eq!(count(&stats, "GET", "/item/3"), (1, 0));
}

#[test]
fn repeated_urls_keep_their_names() {
    let addr = start_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  self.http:get("/item/1")
  self.http:get("/item/1")
  self.http:get("/item/1", { name = "one" })
  self.http:get("/item/1", { query = { a = 1 } })
  self.http:get("/item/1")
  self.http:get(HOST .. "/item/1")
  self.http:post("/item/1")
end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 7,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(count(&stats, "GET", "/item/1"), (3, 0));
    assert_eq!(count(&stats, "GET", "one"), (1, 0));
    assert_eq!(count(&stats, "GET", "/item/1?a=1"), (1, 0));
    assert_eq!(
        count(&stats, "GET", &format!("{}/item/1", host(addr))),
        (1, 0)
    );
    assert_eq!(count(&stats, "POST", "/item/1"), (1, 1));
}

/// The response object as scripts see it: its fields and methods, what
/// mlua's userdata showed (no metatable, nil for unknown fields, no
/// assignment), and that it outlives later requests and full collections.
#[test]
fn response_objects_keep_their_surface_and_outlive_collections() {
    let addr = start_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
local n = 0
U:task(function(self)
  if n >= 2 then swarmer.sleep(1000) return end
  n = n + 1
  local first = self.http:get("/status/201")
  first:failure("on purpose")
  local kept = {}
  for i = 1, 50 do kept[i] = self.http:get("/status/404") end
  collectgarbage("collect")
  collectgarbage("collect")
  assert(type(first) == "userdata", type(first))
  assert(first.status == 201 and first.ok == true, tostring(first.status))
  assert(first.error == nil and first.proto == "HTTP/1.1", tostring(first.proto))
  assert(type(first.body) == "string" and first.wire_size == #first.body)
  assert(type(first.headers) == "table" and type(first.timings.ttfb) == "number")
  assert(first.elapsed_ms >= 0 and first.url:match("/status/201$"), first.url)
  assert(tostring(first):match("^<Response 201 http://.*/status/201>$"), tostring(first))
  assert(getmetatable(first) == false)
  assert(first.nonexistent == nil)
  assert(not pcall(function() first.status = 5 end))
  assert(type(first:header("content-length")) == "string")
  assert(first:header("x-nope") == nil)
  local ok, err = pcall(first.success)
  assert(not ok and tostring(err):match("expected a response"), tostring(err))
  ok, err = pcall(first.success, {})
  assert(not ok and tostring(err):match("got a table"), tostring(err))
  for i = 1, 50 do assert(kept[i].status == 404 and not kept[i].ok) end
  ok, err = pcall(function() kept[1]:failure("again") end)
  assert(not ok and tostring(err):match("already recorded"), tostring(err))
end)
"#,
        addr,
    );
    let stats = run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= 102,
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    assert_eq!(count(&stats, "GET", "/status/201"), (2, 2));
    assert_eq!(error_count(&stats, "GET", "/status/201", "on purpose"), 2);
    assert_eq!(count(&stats, "GET", "/status/404"), (100, 100));
}
