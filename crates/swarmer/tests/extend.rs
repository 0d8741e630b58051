//! End to end through the binary: `swarmer -f examples/extend.lua
//! --demo-target --autostart` serves the example's extensions: the view
//! ranking the endpoints by error rate, the action resetting the demo
//! target (arguments checked first, logged with who asked), the JSON
//! route, the hooks (which saw the run start), and the counters recorded
//! on the worker in every place entries show.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use common::{Proc, TempDir, get_json, http_get, poll, serial};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(30);

fn example() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/extend.lua");
    path.canonicalize().unwrap().to_string_lossy().into_owned()
}

/// POST a JSON body: (status, parsed body).
fn post_json(url: &str, body: &str) -> (u16, Value) {
    let rest = url.strip_prefix("http://").expect("an http:// url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {resp}"));
    (status, json)
}

fn error_pcts(view: &Value) -> Vec<f64> {
    view["tables"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[4].as_f64().unwrap())
        .collect()
}

#[test]
fn the_example_extends_the_ui() {
    let _serial = serial();
    let dir = TempDir::new("extend");
    let script = example();
    let args = [
        "-f",
        &script,
        "--demo-target",
        "--autostart",
        "-u",
        "5",
        "-r",
        "5",
        "--web-host",
        "127.0.0.1",
        "--web-port",
        "0",
    ];
    let proc = Proc::swarmer("standalone", dir.path(), &args);
    let line = proc.expect_line(LONG, "web UI at ");
    let url = line
        .split("web UI at ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let url = url.trim_end_matches('/').to_string();

    let ext = get_json(&format!("{url}/api/v1/ext"));
    assert_eq!(ext["views"][0]["id"], "error-rate");
    assert_eq!(ext["actions"][0]["id"], "reset-target");
    assert_eq!(ext["routes"], serde_json::json!(["/ranking"]));
    assert_eq!(ext["hooks"].as_array().unwrap().len(), 4);

    // The ranking fills in as the run goes: every endpoint, worst first.
    let view_url = format!("{url}/api/v1/ext/views/error-rate");
    let view = poll(LONG, || {
        let view = get_json(&view_url);
        let rows = view["tables"][0]["rows"].as_array()?.len();
        (rows >= 4).then_some(view)
    })
    .unwrap_or_else(|| panic!("the ranking never filled: {}", get_json(&view_url)));
    let pcts = error_pcts(&view);
    assert!(
        pcts.windows(2).all(|w| w[0] >= w[1]),
        "not ranked: {pcts:?}"
    );
    let rows = view["tables"][0]["rows"].as_array().unwrap();
    let home = rows.iter().find(|r| r[1] == "GET /").expect("GET / ranked");
    assert_eq!(home[4].as_f64(), Some(0.0), "GET / never fails: {rows:?}");
    assert_eq!(*pcts.last().unwrap(), 0.0);

    // The route, and the hook that saw the run start.
    let ranking = poll(LONG, || {
        let r = get_json(&format!("{url}/api/v1/ext/ranking?limit=2"));
        (r["runs_started"] == 1).then_some(r)
    })
    .expect("the test_start hook ran");
    assert_eq!(ranking["endpoints"].as_array().unwrap().len(), 2);
    proc.expect_line(LONG, "Run 1 started with 5 users");

    // The action: checked arguments, then a real reset of the demo target.
    let action = format!("{url}/api/v1/ext/actions/reset-target");
    let (status, refused) = post_json(&action, r#"{"confirm": "maybe"}"#);
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["field"], "confirm");
    let (status, done) = post_json(
        &action,
        r#"{"confirm": "yes", "note": "from the e2e test"}"#,
    );
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["success"], true, "{done}");
    let before = done["data"]["served_before"].as_u64().unwrap();
    assert!(before > 0, "{done}");
    let host = get_json(&format!("{url}/api/v1/state"))["host"]
        .as_str()
        .unwrap()
        .to_string();
    let served = get_json(&format!("{host}/stats"))["served"]
        .as_u64()
        .unwrap();
    assert!(
        served < before,
        "the target was reset: {served} >= {before}"
    );
    proc.expect_line(LONG, "action reset-target requested by anonymous");
    proc.expect_line(LONG, "demo target reset: from the e2e test");

    // Counters recorded on the worker, wherever entries show.
    let stats = get_json(&format!("{url}/stats/requests"));
    let counters: Vec<&Value> = stats["stats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "COUNT")
        .collect();
    assert!(
        counters.iter().any(|e| e["name"] == "items viewed"),
        "{stats}"
    );
    let (_, csv) = http_get(&format!("{url}/stats/requests/csv")).unwrap();
    assert!(csv.contains("COUNT,items viewed,"), "{csv}");
    let (_, metrics) = http_get(&format!("{url}/metrics")).unwrap();
    assert!(metrics.contains("method=\"COUNT\",name=\"items viewed\""));
}
