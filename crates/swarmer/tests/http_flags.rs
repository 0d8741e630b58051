//! The HTTP client's flags end to end: `--resolve` aims a host name at the
//! demo target on 127.0.0.1, and bad `--resolve`/`--accept-encoding`
//! values, unreadable certificate files and a key that is not the
//! certificate's exit 2 naming the flag and the value.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{text, wait_with_deadline};

const BIN: &str = env!("CARGO_BIN_EXE_swarmer");

const SCRIPT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self) self.http:get("/") end)
"#;

fn run(args: &[&str], dir: &std::path::Path) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarmer");
    wait_with_deadline(child, Duration::from_secs(60))
}

#[test]
fn resolve_sends_a_host_name_to_the_given_address() {
    let mut target = Command::new(BIN)
        .args(["demo-target", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo target");
    let mut line = String::new();
    BufReader::new(target.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.lua");
    std::fs::write(&script, SCRIPT).unwrap();
    let host = format!("http://example.test:{port}");
    let resolve = format!("example.test:{port}:127.0.0.1");
    let out = run(
        &[
            "-f",
            script.to_str().unwrap(),
            "--headless",
            "-u",
            "1",
            "-r",
            "10",
            "-t",
            "1s",
            "-H",
            &host,
            "--resolve",
            &resolve,
            "--json",
        ],
        dir.path(),
    );
    let _ = target.kill();
    let _ = target.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let entry = json["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "/")
        .unwrap_or_else(|| panic!("no entry for / in {json}"));
    assert!(entry["num_requests"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(entry["num_failures"], 0, "{json}");
}

#[test]
fn bad_http_flags_exit_2_naming_the_flag_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.lua");
    std::fs::write(&script, SCRIPT).unwrap();
    for (flag, value) in [
        ("--resolve", "example.test:443"),
        ("--resolve", "example.test:443:nowhere"),
        ("--resolve", "example.test:port:127.0.0.1"),
        ("--accept-encoding", "gzip\u{1}"),
    ] {
        let out = run(
            &[
                "-f",
                script.to_str().unwrap(),
                "--headless",
                "-H",
                "http://127.0.0.1:9",
                flag,
                value,
            ],
            dir.path(),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        let shown = format!("{value:?}");
        assert!(
            stderr.contains(flag) && stderr.contains(&shown),
            "{flag} {value} should be named: {stderr}"
        );
    }
}

#[test]
fn bad_certificate_files_exit_2_naming_the_flag_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.lua");
    std::fs::write(&script, SCRIPT).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["client".to_string()]).unwrap();
    let cert = dir.path().join("client.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    let other_key = dir.path().join("other.key");
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&other_key, other.serialize_pem()).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let missing = dir.path().join("missing.pem");
    let cases: [(Vec<String>, &str, String); 3] = [
        (
            vec!["--ca-cert".into(), path(&missing)],
            "--ca-cert",
            path(&missing),
        ),
        (
            vec!["--ca-cert".into(), path(&script)],
            "--ca-cert",
            path(&script),
        ),
        (
            vec![
                "--client-cert".into(),
                path(&cert),
                "--client-key".into(),
                path(&other_key),
            ],
            "--client-key",
            path(&other_key),
        ),
    ];
    for (flags, flag, value) in cases {
        let mut args = vec![
            "-f".to_string(),
            path(&script),
            "--headless".into(),
            "-H".into(),
            "http://127.0.0.1:9".into(),
        ];
        args.extend(flags);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, dir.path());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(&value),
            "{args:?} should name {flag} and {value}: {stderr}"
        );
    }
}
