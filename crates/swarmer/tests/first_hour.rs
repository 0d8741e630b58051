//! What a newcomer meets in the first hour, checked on the real binary:
//! `--help` describes every flag, a typo's usage line, the console summary's
//! precision and its verdict line, logs without escape codes in a pipe (and
//! with colours on a terminal unless `NO_COLOR`), the quiet default of a
//! headless run (standalone or `--master`), the README's distributed recipe with `--demo-target`, the
//! advice when every connection is refused, `swarmer inspect`, and a
//! `/metrics` that `promtool check metrics` accepts.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{BIN, Proc, TempDir, free_port, http_get, poll, text, wait_with_deadline};

const LONG: Duration = Duration::from_secs(90);

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.lua")
}

/// Runs the binary to its end with no `SWARMER_*` variables and no
/// `NO_COLOR` (so nothing hides a colour that should not be there).
fn run(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("SWARMER_") {
            cmd.env_remove(key);
        }
    }
    wait_with_deadline(cmd.spawn().expect("start swarmer"), LONG)
}

/// `--help`'s flags and whether each has words after it: clap prints the
/// description on the flag's line or indented on the next; `[env: …]` or
/// `[default: …]` alone is no description.
fn undescribed_flags(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut missing = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if !(trimmed.starts_with('-') && (2..=6).contains(&indent)) {
            continue;
        }
        let same_line = trimmed.split_once("  ").map(|(_, rest)| rest.trim());
        let described = match same_line {
            Some(rest) if !rest.is_empty() => !rest.starts_with('['),
            _ => lines.get(i + 1).is_some_and(|next| {
                let next_trimmed = next.trim_start();
                next.len() - next_trimmed.len() > indent
                    && !next_trimmed.starts_with('-')
                    && !next_trimmed.starts_with('[')
            }),
        };
        if !described {
            missing.push(trimmed.to_string());
        }
    }
    missing
}

#[test]
fn every_flag_in_help_has_a_description_under_a_heading() {
    let dir = TempDir::new("help");
    let out = run(dir.path(), &["--help"]);
    let help = text(&out.stdout);
    assert!(out.status.success(), "{help}");
    assert!(help.matches("--").count() > 40, "not the full help: {help}");
    let missing = undescribed_flags(&help);
    assert!(
        missing.is_empty(),
        "flags without a description: {missing:#?}"
    );
    for heading in [
        "Common:",
        "Web UI:",
        "Distributed:",
        "Output:",
        "HTTP:",
        "Kubernetes:",
    ] {
        assert!(
            help.contains(&format!("\n{heading}\n")),
            "no {heading} group"
        );
    }
    assert!(
        !help.contains("(default: one per core) [default: 0]"),
        "--cores contradicts its default"
    );
    // The checker itself must catch a bare flag.
    let bare = "Options:\n      --csv <PREFIX>\n          [env: SWARMER_CSV=]\n";
    assert_eq!(undescribed_flags(bare).len(), 1);
}

#[test]
fn a_typo_does_not_make_users_look_required() {
    let dir = TempDir::new("typo");
    let out = run(dir.path(), &["--userz", "3"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let usage = stderr
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_else(|| panic!("no usage line: {stderr}"));
    assert!(!usage.contains("--users"), "{usage}");
    assert!(stderr.contains("'--users'"), "the tip stays: {stderr}");
}

/// A headless standalone run against the demo target, with CSV files.
fn demo_run(dir: &Path, extra: &[&str]) -> Output {
    let script = quickstart();
    let prefix = dir.join("out");
    let mut args = vec![
        "-f",
        script.to_str().unwrap(),
        "--demo-target",
        "--headless",
        "-u",
        "5",
        "-r",
        "5",
        "-t",
        "3s",
        "--csv",
        prefix.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(dir, &args)
}

/// The `Aggregated` row of a CSV file, by column name.
fn aggregated(csv: &str) -> std::collections::HashMap<String, String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let row = lines
        .find(|l| l.starts_with(",Aggregated,"))
        .unwrap_or_else(|| panic!("no Aggregated row: {csv}"));
    header
        .iter()
        .zip(row.split(','))
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_summary_has_the_data_precision_and_ends_with_its_verdict() {
    let _serial = common::serial();
    let dir = TempDir::new("summary");
    let out = demo_run(dir.path(), &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let csv = std::fs::read_to_string(dir.path().join("out_stats.csv")).expect("stats csv");
    let agg = aggregated(&csv);
    // The fastest of a few dozen loopback requests takes well under 10 ms:
    // whole milliseconds would print it as 0.
    let table_row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("Aggregated"))
        .unwrap_or_else(|| panic!("no Aggregated row: {stdout}"));
    let min_cell = table_row.split_whitespace().nth(4).expect("min column");
    let min_ms: f64 = min_cell.parse().expect("a number");
    assert!(min_ms > 0.0 && min_cell != "0", "{table_row}");
    let median: f64 = agg["Median Response Time"].parse().expect("median");
    assert!(median > 0.0, "the CSV median reads 0: {csv}");
    assert!(agg["50%"] != "0", "{csv}");

    let requests = &agg["Request Count"];
    let failures = &agg["Failure Count"];
    let code = out.status.code().expect("an exit code");
    let expected = if failures == "0" {
        format!("all {requests} requests succeeded → exit code {code}")
    } else {
        format!("{failures} of {requests} requests failed → exit code {code}")
    };
    assert_eq!(stdout.lines().last(), Some(expected.as_str()), "{stderr}");
    assert_eq!(code, if failures == "0" { 0 } else { 1 });
}

#[test]
fn a_default_headless_run_prints_progress_and_summary_without_escapes() {
    let _serial = common::serial();
    let dir = TempDir::new("quiet");
    let out = demo_run(dir.path(), &[]);
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in a pipe: {stderr:?}"
    );
    let noise: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with('['))
        .filter(|l| l.contains(" INFO ") || l.contains("workers:") || l.contains("joined"))
        .collect();
    assert!(noise.is_empty(), "more than progress: {noise:#?}");
    // A progress line, whatever point of the ramp a busy machine let it
    // catch.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with('[') && l.contains(" users ")),
        "{stderr}"
    );

    // -L info still tells everything, and still without colours.
    let out = demo_run(dir.path(), &["-L", "info"]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(" INFO "), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in a pipe: {stderr:?}"
    );
}

#[test]
fn refused_connections_are_explained_once() {
    let _serial = common::serial();
    let dir = TempDir::new("refused");
    let port = free_port();
    let host = format!("http://127.0.0.1:{port}");
    let script = quickstart();
    let out = run(
        dir.path(),
        &[
            "-f",
            script.to_str().unwrap(),
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "4s",
            "-H",
            &host,
        ],
    );
    let stderr = text(&out.stderr);
    let hint = format!("nothing is listening at 127.0.0.1:{port}");
    assert_eq!(stderr.matches(&hint).count(), 1, "{stderr}");
    let line = stderr.lines().find(|l| l.contains(&hint)).unwrap();
    assert!(
        line.contains("-H") && line.contains("--demo-target"),
        "{line}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_readme_distributed_recipe_runs_against_the_demo_target() {
    let _serial = common::serial();
    let dir = TempDir::new("recipe");
    let script = quickstart();
    let port = free_port().to_string();
    let out = run(
        dir.path(),
        &[
            "-f",
            script.to_str().unwrap(),
            "--master",
            "--master-bind-port",
            &port,
            "--scaler",
            "local",
            "--workers",
            "2",
            "--expect-workers",
            "2",
            "--demo-target",
            "--headless",
            "-u",
            "6",
            "-r",
            "6",
            "-t",
            "3s",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!stderr.contains("refused"), "{stderr}");
    assert!(!stdout.contains("refused"), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("all ") || last.contains(" requests failed "),
        "{stdout}"
    );
    assert!(!last.starts_with("no request"), "{stdout}\n{stderr}");
    // The workers' own lines are marked as theirs.
    let from_workers: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("the master asked this worker to quit"))
        .collect();
    assert_eq!(from_workers.len(), 2, "{stderr}");
    assert!(
        from_workers.iter().all(|l| l.starts_with("[worker ")),
        "{from_workers:#?}"
    );
}

#[test]
fn a_headless_master_is_as_quiet_as_a_standalone_run() {
    let _serial = common::serial();
    let dir = TempDir::new("quiet-master");
    let script = quickstart();
    let port = free_port().to_string();
    let master = |extra: &[&str]| {
        let mut args = vec![
            "-f",
            script.to_str().unwrap(),
            "--master",
            "--master-bind-port",
            &port,
            "--scaler",
            "local",
            "--workers",
            "1",
            "--demo-target",
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "2s",
        ];
        args.extend_from_slice(extra);
        run(dir.path(), &args)
    };
    // The master's own lines: its workers' (prefixed) keep their level.
    let own = |stderr: &str| -> Vec<String> {
        stderr
            .lines()
            .filter(|l| !l.starts_with("[worker "))
            .map(str::to_string)
            .collect()
    };
    let out = master(&[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let noise: Vec<String> = own(&stderr)
        .into_iter()
        .filter(|l| l.contains(" INFO "))
        .collect();
    assert!(noise.is_empty(), "more than progress: {noise:#?}");
    assert!(stderr.contains("users 2/2"), "no progress line: {stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("Aggregated")),
        "no summary: {stdout}"
    );

    // -L info still tells what the master does.
    let out = master(&["-L", "info"]);
    let stderr = text(&out.stderr);
    assert!(
        own(&stderr).iter().any(|l| l.contains(" INFO ")),
        "{stderr}"
    );
}

/// `--html` from the binary: the report of a run that ended (0 users at
/// the end) shows its peak users, what was asked for, the script, and the
/// verdict the console's last line gives.
#[test]
fn the_html_report_has_the_peak_users_and_the_verdict() {
    let _serial = common::serial();
    let dir = TempDir::new("html-report");
    let path = dir.path().join("report.html");
    let out = demo_run(dir.path(), &["--html", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    let html = std::fs::read_to_string(&path).expect("the report is written");
    let card = |id: &str| {
        let start = html.find(&format!("id=\"{id}\"")).expect(id);
        let strong = &html[start..];
        let value = &strong[strong.find("<strong>").unwrap() + 8..];
        value[..value.find("</strong>").unwrap()].replace("&#x2f;", "/")
    };
    let peak: u32 = card("card-peak-users").parse().expect("a number");
    assert!(peak > 0, "peak users {peak}");
    assert_eq!(card("card-spawn-rate"), "5 users/s");
    assert_eq!(card("card-run-time"), "3s");
    assert!(html.contains("quickstart.lua"), "the script's path");
    let words = stdout.lines().last().unwrap_or_default();
    let words = words.split(" →").next().unwrap();
    let verdict = &html[html.find("id=\"verdict\"").expect("a verdict line")..];
    let verdict = &verdict[..verdict.find("</p>").unwrap()];
    assert!(verdict.contains(words), "{verdict} vs {words}");
}

/// `/metrics` of a live run, with traffic, through Prometheus' own linter.
#[test]
fn metrics_pass_promtool() {
    let promtool = Path::new("/usr/bin/promtool");
    let promtool = if promtool.exists() {
        promtool.to_path_buf()
    } else if let Some(found) = which("promtool") {
        found
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("promtool is missing (Debian package prometheus); CI must check /metrics");
    } else {
        eprintln!("skipped: promtool is not installed (Debian package prometheus)");
        return;
    };
    let _serial = common::serial();
    let dir = TempDir::new("promtool");
    let script = quickstart();
    let proc = Proc::swarmer(
        "ui",
        dir.path(),
        &[
            "-f",
            script.to_str().unwrap(),
            "--demo-target",
            "--autostart",
            "-u",
            "3",
            "-r",
            "3",
            "--web-host",
            "127.0.0.1",
            "--web-port",
            "0",
        ],
    );
    let line = proc.expect_line(LONG, "web UI at ");
    let url = line
        .split("web UI at ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("a URL")
        .trim_end_matches('/')
        .to_string();
    let metrics = poll(LONG, || {
        let (code, body) = http_get(&format!("{url}/metrics")).ok()?;
        (code == 200 && body.contains("swarmer_requests_total{")).then_some(body)
    })
    .unwrap_or_else(|| panic!("no requests in /metrics: {}", proc.tail(20)));
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    use std::io::Write;
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("feed promtool");
    let out = wait_with_deadline(check, LONG);
    assert!(
        out.status.success(),
        "promtool: {}{}\n{metrics}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}

#[test]
fn inspect_lists_what_a_script_declares() {
    let dir = TempDir::new("inspect");
    let script = dir.write(
        "s.lua",
        "local Shop = swarmer.user { name = 'Shop', weight = 3, wait = swarmer.between(1, 2), \
           host = 'http://127.0.0.1:9' }\n\
         Shop:task { name = 'buy', weight = 2, tags = { 'cart', 'slow' }, fn = function(self) end }\n\
         Shop:task(1, function(self) end)\n\
         local Api = swarmer.user { name = 'Api', sequential = true, wait = swarmer.constant_pacing(2) }\n\
         Api:task(1, function(self) end)\n\
         swarmer.shape { stages = { { duration = '10s', users = 5 }, { duration = '5s', users = 0 } } }\n\
         swarmer.api.route('/ranking', function(req, ctx) return {} end)\n\
         swarmer.on('test_start', function(event, ctx) end)\n",
    );
    let out = run(dir.path(), &["inspect", "-f", &script]);
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for needle in [
        "Shop  weight 3  wait between(1, 2)  host http://127.0.0.1:9",
        "task buy  weight 2  tags cart, slow",
        "task task2  weight 1",
        "Api  weight 1  wait constant_pacing(2)  sequential",
        "Load shape: stages 10s:5, 5s:0",
        "routes:  /ranking",
        "hooks:   test_start",
    ] {
        assert!(listing.contains(needle), "no {needle:?} in\n{listing}");
    }

    let out = run(dir.path(), &["inspect", "-f", &script, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let shop = &json["user_types"][0];
    assert_eq!(shop["name"], "Shop");
    assert_eq!(shop["wait"], "between(1, 2)");
    assert_eq!(
        shop["tasks"][0]["tags"],
        serde_json::json!(["cart", "slow"])
    );
    assert_eq!(json["user_types"][1]["sequential"], true);
    assert_eq!(json["shape"]["kind"], "stages");
    assert_eq!(json["extensions"]["routes"][0], "/ranking");

    let broken = dir.write("broken.lua", "local x = \n\nswarmer.user {");
    let out = run(dir.path(), &["inspect", "-f", &broken]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("broken.lua:"),
        "{}",
        text(&out.stderr)
    );
}

/// On a terminal (a pty from util-linux's `script`), logs are coloured
/// unless `NO_COLOR` is set: the check that hides escapes from pipes must
/// not hide colours from people, and must obey no-color.org.
#[test]
fn a_terminal_gets_colours_unless_no_color() {
    let Some(script) = which("script") else {
        eprintln!("skipped: util-linux's `script` is not installed (no pty to test with)");
        return;
    };
    let _serial = common::serial();
    let dir = TempDir::new("tty");
    let command = format!(
        "{BIN} -f {} --headless -u 1 -r 1 -t 1s -H http://127.0.0.1:{} -L info",
        quickstart().display(),
        free_port()
    );
    let on_a_terminal = |no_color: Option<&str>| {
        let mut cmd = Command::new(&script);
        cmd.args(["-qec", &command, "/dev/null"])
            .current_dir(dir.path())
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        text(&wait_with_deadline(cmd.spawn().expect("start script"), LONG).stdout)
    };
    let coloured = on_a_terminal(None);
    assert!(
        coloured.contains("\u{1b}["),
        "no colour on a terminal: {coloured}"
    );
    let plain = on_a_terminal(Some("1"));
    assert!(plain.contains("INFO"), "{plain}");
    assert!(!plain.contains('\u{1b}'), "NO_COLOR ignored: {plain:?}");
}
