//! The HTTP client's flags end to end: `--resolve` aims a host name at the
//! demo target on 127.0.0.1, `--proxy` and `HTTP_PROXY` are obeyed, and bad `--resolve`/`--accept-encoding`
//! values, unreadable certificate files and a key that is not the
//! certificate's exit 2 naming the flag and the value.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{text, wait_with_deadline};

const BIN: &str = env!("CARGO_BIN_EXE_swarmer");

const SCRIPT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self) self.http:get("/") end)
"#;

fn run(args: &[&str], dir: &std::path::Path) -> Output {
    run_env(args, dir, &[])
}

fn run_env(args: &[&str], dir: &std::path::Path, env: &[(&str, &str)]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarmer");
    wait_with_deadline(child, Duration::from_secs(60))
}

/// The bundled demo target on a free port, killed when dropped.
struct DemoTarget {
    child: Child,
    port: u16,
}

impl DemoTarget {
    fn start() -> DemoTarget {
        let mut child = Command::new(BIN)
            .args(["demo-target", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn demo target");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
        DemoTarget { child, port }
    }
}

impl Drop for DemoTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `/` entry of a `--json` summary: (requests, failures), and the
/// errors of the run.
fn root_entry(out: &Output) -> (u64, u64, String) {
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout))
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    let entry = json["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "/")
        .unwrap_or_else(|| panic!("no entry for / in {json}"));
    (
        entry["num_requests"].as_u64().unwrap(),
        entry["num_failures"].as_u64().unwrap(),
        json["errors"].to_string(),
    )
}

#[test]
fn resolve_sends_a_host_name_to_the_given_address() {
    let target = DemoTarget::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.lua");
    std::fs::write(&script, SCRIPT).unwrap();
    let host = format!("http://example.test:{}", target.port);
    let resolve = format!("example.test:{}:127.0.0.1", target.port);
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
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (requests, failures, errors) = root_entry(&out);
    assert!(
        requests > 0 && failures == 0,
        "{requests} {failures} {errors}"
    );
}

/// The environment's proxy leaves loopback targets alone; `--proxy` takes
/// every request (here to a proxy that is not listening, which each
/// failure names); bad proxy settings exit 2 naming the flag or variable.
#[test]
fn proxies_from_the_flag_and_the_environment() {
    let target = DemoTarget::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.lua");
    std::fs::write(&script, SCRIPT).unwrap();
    let host = format!("http://127.0.0.1:{}", target.port);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_proxy = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let base = |extra: &[&str]| {
        let mut args = vec![
            "-f".to_string(),
            script.to_str().unwrap().to_string(),
            "--headless".into(),
            "-u".into(),
            "1".into(),
            "-r".into(),
            "10".into(),
            "-t".into(),
            "1s".into(),
            "-H".into(),
            host.clone(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    let args = base(&[]);
    let out = run_env(&strs(&args), dir.path(), &[("HTTP_PROXY", &dead_proxy)]);
    let (requests, failures, errors) = root_entry(&out);
    assert!(
        requests > 0 && failures == 0,
        "loopback went direct: {errors}"
    );

    let args = base(&["--proxy", &dead_proxy]);
    let out = run(&strs(&args), dir.path());
    let (requests, failures, errors) = root_entry(&out);
    assert!(
        requests > 0 && failures == requests,
        "{requests} {failures}"
    );
    assert!(errors.contains(&format!("proxy {dead_proxy}")), "{errors}");

    let args = base(&["--proxy", "socks5://p.test:1080"]);
    let out = run(&strs(&args), dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--proxy") && stderr.contains("socks5://p.test:1080"),
        "{stderr}"
    );

    let args = base(&[]);
    let out = run_env(&strs(&args), dir.path(), &[("HTTPS_PROXY", "ftp://p.test")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("HTTPS_PROXY") && stderr.contains("ftp://p.test"),
        "{stderr}"
    );
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
        ("--http-version", "3"),
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
