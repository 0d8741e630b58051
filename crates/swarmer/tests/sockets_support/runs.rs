//! Headless runs of the binary for the socket tests and what they print
//! (`--json`): entries, failures and exceptions. A run sees no proxy
//! variable of the machine's environment, only those a test sets, so the
//! proxy tests (and every other socket test) mean the same on any machine.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{BIN, text, wait_with_deadline};

/// The variables that choose a proxy (upper and lower case).
const PROXY_VARS: [&str; 4] = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"];

/// A headless run of `script` for `secs` seconds with `users` users that
/// exits with `code` (1: failures or exceptions); returns its `--json`
/// output.
pub fn run(
    script: &Path,
    (users, secs, code): (u32, u32, i32),
    extra: &[&str],
    env: &[(&str, String)],
) -> Value {
    let out = run_raw(script, users, secs, extra, env);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    serde_json::from_str(&text(&out.stdout))
        .unwrap_or_else(|e| panic!("--json output: {e}: {}", text(&out.stdout)))
}

pub fn run_raw(
    script: &Path,
    users: u32,
    secs: u32,
    extra: &[&str],
    env: &[(&str, String)],
) -> Output {
    let (u, t) = (users.to_string(), format!("{secs}s"));
    let mut cmd = Command::new(BIN);
    cmd.arg("-f").arg(script);
    cmd.args([
        "--headless",
        "-u",
        &u,
        "-r",
        "100",
        "-t",
        &t,
        "--json",
        "--no-history",
    ])
    .args(extra);
    for var in PROXY_VARS {
        cmd.env_remove(var).env_remove(var.to_ascii_lowercase());
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    wait_with_deadline(cmd.spawn().expect("spawn swarmer"), Duration::from_secs(90))
}

/// (requests, failures) of an entry, (0, 0) when absent.
pub fn entry(json: &Value, method: &str, name: &str) -> (u64, u64) {
    json["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == method && e["name"] == name)
        .map_or((0, 0), |e| {
            (
                e["num_requests"].as_u64().unwrap(),
                e["num_failures"].as_u64().unwrap(),
            )
        })
}

pub fn errors(json: &Value) -> Vec<String> {
    json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}: {}", e["method"], e["name"], e["error"]))
        .collect()
}

pub fn exceptions(json: &Value) -> Vec<String> {
    json["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["msg"].as_str().unwrap().to_string())
        .collect()
}
