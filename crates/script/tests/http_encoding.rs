//! What goes on the wire for a script's URLs (percent-encoding of spaces
//! and non-ASCII text) and what comes back compressed: a raw server that
//! answers exactly the bytes a test chooses and sees the request line as
//! sent.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::*;
use script::RuntimeConfig;

const MAX: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1:0 that answers each request with
/// `answer(request head)`: (extra header lines, body bytes).
fn raw_server(answer: impl Fn(&str) -> (String, Vec<u8>) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        // Raw bytes shown as \xNN, so the test sees what was sent.
                        let head: String = buf[..end]
                            .iter()
                            .flat_map(|&b| std::ascii::escape_default(b))
                            .map(char::from)
                            .collect();
                        buf.drain(..end + 4);
                        let (headers, body) = answer(&head);
                        let mut out = format!(
                            "HTTP/1.1 200 OK\r\n{headers}Content-Length: {}\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        out.extend_from_slice(&body);
                        if stream.write_all(&out).is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// Runs one user of `code` once through its task (it sets `self.done`).
fn run_once(code: &str, config: RuntimeConfig, requests: u64) -> stats::RequestStats {
    run_users(
        code,
        config,
        &[("U", 1)],
        |s| s.num_requests() >= requests || s.exceptions().next().is_some(),
        MAX,
    )
}

#[test]
fn spaces_and_non_ascii_are_percent_encoded_on_the_request_line() {
    let addr = raw_server(|head| {
        let line = head.split("\\r\\n").next().unwrap_or("").to_string();
        (String::new(), line.into_bytes())
    });
    let code = with_host(
        &format!(
            r#"
local U = swarmer.user {{ name = "U", host = HOST }}
local function expect(r, want)
  if r.body ~= want then r:failure(r.body) end
end
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  expect(self.http:get("/café x?q=naïve y", {{ name = "rel" }}),
    "GET /caf%C3%A9%20x?q=na%C3%AFve%20y HTTP/1.1")
  expect(self.http:get("http://{addr}/a b/日本?x=1%2F2", {{ name = "abs" }}),
    "GET /a%20b/%E6%97%A5%E6%9C%AC?x=1%2F2 HTTP/1.1")
  expect(self.http:get("/100%/x", {{ name = "pct", query = {{ k = "v w" }} }}),
    "GET /100%25/x?k=v+w HTTP/1.1")
end)
"#
        ),
        addr,
    );
    let stats = run_once(&code, RuntimeConfig::default(), 3);
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    let errors: Vec<String> = stats.errors().keys().map(|k| k.error.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    for name in ["rel", "abs", "pct"] {
        assert_eq!(count(&stats, "GET", name), (1, 0), "{name}");
    }
}

const JSON: &str = r#"{"hello": "world", "padding": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The value of a header in an escaped head, or "-".
fn header_of(head: &str, name: &str) -> String {
    head.split("\\r\\n")
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "-".into())
}

/// `/gzip`, `/deflate`, `/br`, `/zstd`: the JSON so encoded; `/corrupt`:
/// a gzip body cut short; `/ae`: the `Accept-Encoding` received.
fn compressing_server() -> SocketAddr {
    raw_server(|head| {
        let target = head.split(' ').nth(1).unwrap_or("").to_string();
        let data = JSON.as_bytes();
        let coded = |coding: &str, body: Vec<u8>| (format!("Content-Encoding: {coding}\r\n"), body);
        match target.as_str() {
            "/gzip" => coded("gzip", gzip(data)),
            "/deflate" => {
                use std::io::Write;
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                coded("deflate", e.finish().unwrap())
            }
            "/br" => {
                let mut out = Vec::new();
                brotli::BrotliCompress(&mut &data[..], &mut out, &Default::default()).unwrap();
                coded("br", out)
            }
            "/zstd" => coded(
                "zstd",
                ruzstd::encoding::compress_to_vec(
                    data,
                    ruzstd::encoding::CompressionLevel::Fastest,
                ),
            ),
            "/corrupt" => {
                let mut g = gzip(data);
                g.truncate(g.len() / 2);
                coded("gzip", g)
            }
            "/ae" => (
                String::new(),
                header_of(head, "accept-encoding").into_bytes(),
            ),
            _ => (String::new(), b"plain".to_vec()),
        }
    })
}

#[test]
fn compressed_bodies_are_decoded_and_counted_decoded() {
    let addr = compressing_server();
    let code = with_host(
        r#"
local U = swarmer.user { name = "U", host = HOST }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  for _, c in ipairs({ "gzip", "deflate", "br", "zstd" }) do
    local r = self.http:get("/" .. c)
    local ok, j = pcall(r.json, r)
    if not ok or j.hello ~= "world" then
      r:failure("not decoded")
    elseif r.wire_size >= #r.body or r.wire_size == 0 then
      r:failure("wire_size " .. r.wire_size .. " for " .. #r.body)
    end
  end
  local r = self.http:get("/corrupt")
  if r.ok or r.status ~= 200 then r:failure("corrupt body passed") end
  -- The user goes on after the failure.
  self.http:get("/plain")
end)
"#,
        addr,
    );
    let stats = run_once(&code, RuntimeConfig::default(), 6);
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    for c in ["gzip", "deflate", "br", "zstd"] {
        let path = format!("/{c}");
        assert_eq!(
            count(&stats, "GET", &path),
            (1, 0),
            "{c}: {:?}",
            stats.errors()
        );
        // Locust counts the decoded size.
        let e = stats.entry("GET", &path).unwrap();
        assert_eq!(e.total_content_length, JSON.len() as u64, "{c}");
    }
    assert_eq!(count(&stats, "GET", "/corrupt"), (1, 1));
    let (key, _) = stats
        .errors()
        .iter()
        .find(|(k, _)| k.name == "/corrupt")
        .unwrap();
    assert!(
        key.error.starts_with("invalid gzip response body"),
        "{}",
        key.error
    );
    assert_eq!(count(&stats, "GET", "/plain"), (1, 0));
}

#[test]
fn accept_encoding_by_default_and_its_opt_outs() {
    let addr = compressing_server();
    let code = with_host(
        r#"
local function expect(r, want)
  if r.body ~= want then r:failure(r.body) end
end
local U = swarmer.user { name = "U", host = HOST }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  expect(self.http:get("/ae", { name = "default" }), DEFAULT)
  expect(self.http:get("/ae", { name = "off", accept_encoding = false }), "-")
  expect(self.http:get("/ae", { name = "set", accept_encoding = "gzip" }), "gzip")
  expect(self.http:get("/ae", { name = "header", headers = { ["Accept-Encoding"] = "br" } }), "br")
end)
local Plain = swarmer.user { name = "Plain", host = HOST, accept_encoding = false }
Plain:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  expect(self.http:get("/ae", { name = "type-off" }), "-")
  expect(self.http:get("/ae", { name = "type-off-request-on", accept_encoding = true }),
    "gzip, deflate, br, zstd")
  -- Asked for nothing, a gzip body is still decoded.
  local r = self.http:get("/gzip", { name = "type-off-gzip" })
  if r:json().hello ~= "world" then r:failure("not decoded") end
end)
"#,
        addr,
    );
    let run = |config: RuntimeConfig, default: &str| {
        let code = code.replace("DEFAULT", &format!("{default:?}"));
        let stats = run_users(
            &code,
            config,
            &[("U", 1), ("Plain", 1)],
            |s| s.num_requests() >= 7 || s.exceptions().next().is_some(),
            MAX,
        );
        assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
        let errors: Vec<String> = stats
            .errors()
            .keys()
            .map(|k| format!("{}: {}", k.name, k.error))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(stats.num_requests(), 7);
    };
    run(RuntimeConfig::default(), "gzip, deflate, br, zstd");
    // The run's flag changes the default, not what the script set.
    let config = RuntimeConfig {
        http: http_client::Settings {
            accept_encoding: Some(http::HeaderValue::from_static("zstd")),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    };
    run(config, "zstd");
    let config = RuntimeConfig {
        http: http_client::Settings {
            accept_encoding: None,
            ..Default::default()
        }
        .into(),
        ..Default::default()
    };
    run(config, "-");
}
