//! What the command line refuses before anything starts (issues 17.2, 15.2,
//! 15.5, 15.8), through the real binary: run rules worded as the web API
//! words them, secure defaults for the worker port and secrets, report
//! paths checked up front, a run that measured nothing failing, and a panic
//! ending the whole process.

mod common;

use std::time::{Duration, Instant};

use common::*;

const SCRIPT: &str = r#"
local Browse = swarmer.user { name = "Browse", wait = swarmer.constant(0.1) }
Browse:task(function(self) self.http:get("/") end)
"#;

/// A user whose task makes no request at all.
const IDLE_SCRIPT: &str = r#"
local Idle = swarmer.user { name = "Idle", wait = swarmer.constant(0.1) }
Idle:task(function(self) end)
"#;

const LONG: Duration = Duration::from_secs(30);

/// Runs the binary to its end: (exit code, everything it printed).
fn run(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut proc = Proc::swarmer_with_env("swarmer", dir.path(), args, env);
    let status = proc.wait_exit(LONG).expect("the process exits by itself");
    (status.code(), proc.lines().join("\n"))
}

/// The problem after "FIELD: " in a refusal, whichever way it came.
fn problem_after<'a>(text: &'a str, prefix: &str) -> &'a str {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix:?} in {text:?}"));
    text[at + prefix.len()..]
        .lines()
        .next()
        .unwrap_or("")
        .trim()
}

#[test]
fn the_command_line_and_the_api_refuse_the_same_runs_with_the_same_words() {
    let dir = TempDir::new("same-words");
    let script = dir.write("s.lua", SCRIPT);
    let web = Proc::swarmer(
        "web",
        dir.path(),
        &["-f", &script, "--web-host", "127.0.0.1", "--web-port", "0"],
    );
    let line = web.expect_line(LONG, "web UI at ");
    let url = line
        .split("web UI at ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("a URL")
        .trim_end_matches('/')
        .to_string();
    // (command-line flags, the CLI's flag, form body, JSON body, the API's field)
    let cases = [
        (
            vec!["-r", "0"],
            "--spawn-rate",
            "user_count=1&spawn_rate=0",
            r#"{"users":1,"spawn_rate":0}"#,
            "spawn_rate",
        ),
        (
            vec!["-r", "-1"],
            "--spawn-rate",
            "user_count=1&spawn_rate=-1",
            r#"{"users":1,"spawn_rate":-1}"#,
            "spawn_rate",
        ),
        (
            vec!["-r", "1e308"],
            "--spawn-rate",
            "user_count=1&spawn_rate=1e308",
            r#"{"users":1,"spawn_rate":1e308}"#,
            "spawn_rate",
        ),
        (
            vec!["-t", "0"],
            "--run-time",
            "user_count=1&spawn_rate=1&run_time=0",
            r#"{"users":1,"spawn_rate":1,"run_time":0}"#,
            "run_time",
        ),
        (
            vec!["-t", "18446744073709551615"],
            "--run-time",
            "user_count=1&spawn_rate=1&run_time=18446744073709551615",
            r#"{"users":1,"spawn_rate":1,"run_time":18446744073709551615}"#,
            "run_time",
        ),
        (
            vec!["-u", "4294967295"],
            "--users",
            "user_count=4294967295&spawn_rate=1",
            r#"{"users":4294967295,"spawn_rate":1}"#,
            "users",
        ),
        (
            vec!["--user-types", "Ghost"],
            "--user-types",
            "user_count=1&spawn_rate=1&user_classes=Ghost",
            r#"{"users":1,"spawn_rate":1,"user_types":["Ghost"]}"#,
            "user_types",
        ),
    ];
    for (flags, flag, form, json, field) in cases {
        let mut args = vec![
            "-f",
            script.as_str(),
            "--headless",
            "-H",
            "http://127.0.0.1:9",
        ];
        args.extend(flags.iter().copied());
        let (code, cli_text) = run(&dir, &args, &[]);
        assert_eq!(code, Some(2), "{flags:?}: {cli_text}");
        let cli = problem_after(&cli_text, &format!("error: {flag}: "));

        let (status, body) = http_post_form(&format!("{url}/swarm"), form).expect("POST /swarm");
        assert_eq!(status, 400, "{form}: {body}");
        let form_field = match field {
            "users" => "user_count",
            "user_types" => "user_classes",
            other => other,
        };
        let form_message = message(&body);
        let by_form = problem_after(&form_message, &format!("{form_field}: "));

        let (status, body) = http_post_form(&format!("{url}/api/v1/run"), json).expect("POST");
        assert_eq!(status, 400, "{json}: {body}");
        let json_message = message(&body);
        let by_json = problem_after(&json_message, &format!("{field}: "));

        assert!(!cli.is_empty(), "{flags:?}: {cli_text}");
        assert_eq!(cli, by_form, "{flags:?} against {form}");
        assert_eq!(cli, by_json, "{flags:?} against {json}");
    }
}

fn message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn report_paths_are_checked_before_the_run_starts() {
    let dir = TempDir::new("outputs");
    let script = dir.write("s.lua", SCRIPT);
    let missing = dir.path().join("no/such/folder/run").display().to_string();
    let here = dir.path().display().to_string();
    let cases = [
        (vec!["--csv", missing.as_str()], "--csv"),
        (vec!["--html", here.as_str()], "is a directory"),
    ];
    for (flags, expected) in cases {
        let mut args = vec![
            "-f",
            &script,
            "--headless",
            "--demo-target",
            "-t",
            "1h",
            "-u",
            "1",
        ];
        args.extend(flags.iter().copied());
        let started = Instant::now();
        let (code, text) = run(&dir, &args, &[]);
        assert_eq!(code, Some(2), "{flags:?}: {text}");
        assert!(text.contains(expected), "{flags:?}: {text}");
        assert!(!text.contains("run 1:"), "the run must not start: {text}");
        assert!(
            started.elapsed() < LONG,
            "refused at once, not after the run"
        );
    }
}

#[test]
fn a_run_in_which_no_request_completed_does_not_pass() {
    let dir = TempDir::new("no-requests");
    let script = dir.write("idle.lua", IDLE_SCRIPT);
    let args = [
        "-f",
        &script,
        "--headless",
        "-u",
        "2",
        "-r",
        "10",
        "-t",
        "2s",
    ];
    let (code, text) = run(&dir, &args, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no request completed"), "{text}");
}

#[test]
fn the_worker_port_stays_on_loopback_without_a_token() {
    let dir = TempDir::new("secure");
    let script = dir.write("s.lua", SCRIPT);
    let base = [
        "-f",
        script.as_str(),
        "--master",
        "--master-bind-port",
        "0",
        "--web-port",
        "0",
        "--web-host",
        "127.0.0.1",
    ];
    let master = Proc::swarmer("master", dir.path(), &base);
    let line = master.expect_line(LONG, "waiting for workers on");
    assert!(line.contains("127.0.0.1:"), "{line}");
    drop(master);

    let open = [&base[..], &["--master-bind-host", "0.0.0.0"]].concat();
    let (code, text) = run(&dir, &open, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("--cluster-token") && text.contains("--open-cluster"),
        "{text}"
    );

    let with_token = [&base[..], &["--cluster-token", "s3cret"]].concat();
    let master = Proc::swarmer("master", dir.path(), &with_token);
    let line = master.expect_line(LONG, "waiting for workers on");
    assert!(line.contains("0.0.0.0:"), "{line}");
}

#[test]
fn empty_secrets_are_refused() {
    let dir = TempDir::new("secrets");
    let script = dir.write("s.lua", SCRIPT);
    let base = [
        "-f",
        script.as_str(),
        "--web-port",
        "0",
        "--web-host",
        "127.0.0.1",
    ];
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            &[],
            &[("SWARMER_WEB_TOKEN", "")],
            "SWARMER_WEB_TOKEN) is empty",
        ),
        (&["--web-auth", "admin:"], &[], "empty password"),
        (&[], &[("SWARMER_WEB_AUTH", "admin:")], "empty password"),
        (
            &["--cluster-token="],
            &[],
            "--cluster-token (or SWARMER_CLUSTER_TOKEN) is empty",
        ),
    ];
    for (flags, env, expected) in cases {
        let args = [&base[..], flags].concat();
        let (code, text) = run(&dir, &args, env);
        assert_eq!(code, Some(2), "{flags:?} {env:?}: {text}");
        assert!(text.contains(expected), "{flags:?} {env:?}: {text}");
    }
}

#[test]
fn a_panic_in_any_task_ends_the_process() {
    let dir = TempDir::new("panic");
    let script = dir.write("s.lua", SCRIPT);
    let args = [
        "-f",
        script.as_str(),
        "--web-port",
        "0",
        "--web-host",
        "127.0.0.1",
    ];
    let (code, text) = run(&dir, &args, &[("SWARMER_DEBUG_PANIC_IN_TASK", "1")]);
    assert_eq!(code, Some(101), "{text}");
    assert!(text.contains("internal error"), "{text}");
}
