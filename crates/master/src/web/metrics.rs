//! `GET /metrics` in Prometheus' text exposition format (version 0.0.4).
//!
//! Hand-written: the format is a few lines per family and a client library
//! would add a registry we would have to keep in sync with the snapshot.
//! Per-entry series leave out the `Aggregated` row so that `sum()` over
//! them is not doubled; the run-wide figures have their own families.
//!
//! Names follow Prometheus' conventions and pass `promtool check metrics`:
//! units spelled out (`_per_second`, `_seconds`, `_bytes`), counters end in
//! `_total`. The rate gauges were once `swarmer_current_rps`,
//! `swarmer_total_current_rps` and `swarmer_total_current_fail_per_sec`
//! (promtool refuses abbreviated units); dashboards need the new names.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use protocol::WorkerState;

use super::state::Shared;
use crate::snapshot::views;
use crate::{RunState, Snapshot};

const QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 1.0];

pub async fn metrics(State(app): State<Shared>) -> Response {
    let mut text = render(&app.master.snapshot());
    if let Some(autoscale) = &app.config.autoscale {
        autoscale_families(&mut text, &autoscale.view());
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub fn render(snap: &Snapshot) -> String {
    let mut out = String::new();
    entry_families(&mut out, snap);
    run_families(&mut out, snap);
    dropped_family(&mut out, snap);
    threshold_families(&mut out, snap);
    out
}

/// Each threshold as judged now: 1 while it holds, 0 while crossed (or
/// without data), and the value it observed. Only listed when the run has
/// thresholds, so a run without any exposes no empty families.
fn threshold_families(out: &mut String, snap: &Snapshot) {
    if snap.checks.is_empty() {
        return;
    }
    let labels = |c: &verdict::Check| {
        format!(
            "kind=\"{}\",scope=\"{}\",expr=\"{}\"",
            match c.kind {
                verdict::CheckKind::Threshold => "threshold",
                verdict::CheckKind::Regression => "regression",
            },
            escape(&c.scope),
            escape(&c.expr)
        )
    };
    family(
        out,
        "swarmer_threshold_ok",
        "gauge",
        "1 while the threshold holds, 0 while it is crossed or has no data.",
    );
    for c in &snap.checks {
        let _ = writeln!(
            out,
            "swarmer_threshold_ok{{{}}} {}",
            labels(c),
            u8::from(c.ok)
        );
    }
    family(
        out,
        "swarmer_threshold_observed",
        "gauge",
        "The value the threshold observed now, in its unit (ms, percent, per second or a count).",
    );
    for c in &snap.checks {
        if let Some(v) = c.observed {
            let _ = writeln!(out, "swarmer_threshold_observed{{{}}} {v}", labels(c));
        }
    }
}

/// The open model's dropped arrivals, per user type (always listed, so a
/// rate() over it starts at zero rather than at the first drop).
fn dropped_family(out: &mut String, snap: &Snapshot) {
    family(
        out,
        "swarmer_dropped_iterations_total",
        "counter",
        "Arrivals that found no idle user and no room to add one.",
    );
    for (user_type, n) in snap.stats.dropped_iterations() {
        let _ = writeln!(
            out,
            "swarmer_dropped_iterations_total{{user_type=\"{}\"}} {n}",
            escape(user_type)
        );
    }
}

/// `--autoscale`: its decisions by direction (both always listed, so a
/// rate() starts at zero) and the count it last asked for.
fn autoscale_families(out: &mut String, view: &crate::autoscale::View) {
    family(
        out,
        "swarmer_autoscale_decisions_total",
        "counter",
        "Worker counts the autoscaler asked the scaler for, by direction.",
    );
    for (direction, n) in [("up", view.decisions_up), ("down", view.decisions_down)] {
        let _ = writeln!(
            out,
            "swarmer_autoscale_decisions_total{{direction=\"{direction}\"}} {n}"
        );
    }
    family(
        out,
        "swarmer_autoscale_paused",
        "gauge",
        "1 while a manual scale pauses autoscaling (until the next run).",
    );
    let _ = writeln!(
        out,
        "swarmer_autoscale_paused {}",
        u8::from(view.paused.is_some())
    );
    if let Some(target) = view.target {
        family(
            out,
            "swarmer_autoscale_target_workers",
            "gauge",
            "The worker count the autoscaler (or a manual scale) last asked for.",
        );
        let _ = writeln!(out, "swarmer_autoscale_target_workers {target}");
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn entry_families(out: &mut String, snap: &Snapshot) {
    let entries: Vec<_> = snap.stats.entries().collect();
    let labels: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "method=\"{}\",name=\"{}\"",
                escape(&e.method),
                escape(&e.name)
            )
        })
        .collect();
    family(
        out,
        "swarmer_requests_total",
        "counter",
        "Requests completed, per method and name.",
    );
    for (e, l) in entries.iter().zip(&labels) {
        let _ = writeln!(out, "swarmer_requests_total{{{l}}} {}", e.num_requests);
    }
    family(
        out,
        "swarmer_failures_total",
        "counter",
        "Requests that failed, per method and name.",
    );
    for (e, l) in entries.iter().zip(&labels) {
        let _ = writeln!(out, "swarmer_failures_total{{{l}}} {}", e.num_failures);
    }
    family(
        out,
        "swarmer_response_time_seconds",
        "summary",
        "Response times since the run started (or stats were reset).",
    );
    for (e, l) in entries.iter().zip(&labels) {
        for q in QUANTILES {
            let value = e.percentile_ms(q) / 1000.0;
            let _ = writeln!(
                out,
                "swarmer_response_time_seconds{{{l},quantile=\"{q}\"}} {value}"
            );
        }
        let sum = e.total_response_time_us as f64 / 1e6;
        let _ = writeln!(out, "swarmer_response_time_seconds_sum{{{l}}} {sum}");
        let _ = writeln!(
            out,
            "swarmer_response_time_seconds_count{{{l}}} {}",
            e.num_requests
        );
    }
    family(
        out,
        "swarmer_content_bytes_total",
        "counter",
        "Response bytes received, per method and name.",
    );
    for (e, l) in entries.iter().zip(&labels) {
        let _ = writeln!(
            out,
            "swarmer_content_bytes_total{{{l}}} {}",
            e.total_content_length
        );
    }
    family(
        out,
        "swarmer_current_requests_per_second",
        "gauge",
        "Requests per second now (Locust's 10 s window).",
    );
    for (e, l) in entries.iter().zip(&labels) {
        let _ = writeln!(
            out,
            "swarmer_current_requests_per_second{{{l}}} {}",
            views::current_rps(e, snap)
        );
    }
}

fn run_families(out: &mut String, snap: &Snapshot) {
    let total = snap.stats.total();
    let gauges: [(&str, &str, f64); 8] = [
        (
            "swarmer_users",
            "Users running now.",
            f64::from(snap.user_count),
        ),
        (
            "swarmer_target_users",
            "Users the run asks for.",
            f64::from(snap.target_users),
        ),
        (
            "swarmer_spawn_rate",
            "The run's spawn rate, users per second.",
            snap.spawn_rate,
        ),
        (
            "swarmer_target_rate",
            "Arrivals per second the run's arrival-driven user types ask for now.",
            snap.target_rate,
        ),
        (
            "swarmer_total_current_requests_per_second",
            "All requests per second now.",
            views::current_rps(total, snap),
        ),
        (
            "swarmer_total_current_failures_per_second",
            "All failures per second now.",
            views::current_fail_per_sec(total, snap),
        ),
        (
            "swarmer_fail_ratio",
            "Failed requests / requests.",
            snap.stats.fail_ratio(),
        ),
        (
            "swarmer_lost_workers",
            "Workers lost during this run.",
            f64::from(snap.lost_workers),
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    family(
        out,
        "swarmer_workers",
        "gauge",
        "Workers by state; lost ones are not live.",
    );
    let states = [
        WorkerState::Ready,
        WorkerState::Spawning,
        WorkerState::Running,
        WorkerState::Stopping,
        WorkerState::Lost,
    ];
    for state in states {
        let n = snap.workers.iter().filter(|w| w.state == state).count();
        let _ = writeln!(out, "swarmer_workers{{state=\"{}\"}} {n}", state.as_str());
    }
    family(
        out,
        "swarmer_run_state",
        "gauge",
        "1 for the run's current state.",
    );
    let run_states = [
        RunState::Ready,
        RunState::Spawning,
        RunState::Running,
        RunState::Stopping,
        RunState::Stopped,
    ];
    for state in run_states {
        let v = u8::from(snap.state == state);
        let _ = writeln!(out, "swarmer_run_state{{state=\"{}\"}} {v}", state.as_str());
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_snapshot() -> Snapshot {
        Snapshot {
            state: RunState::Running,
            run_id: 1,
            host: None,
            target_users: 0,
            spawn_rate: 0.0,
            target_rate: 0.0,
            user_count: 0,
            users_by_type: Default::default(),
            run_started_ms: None,
            run_time_ms: None,
            workers: Vec::new(),
            worker_count: 0,
            lost_workers: 0,
            saturated_workers: Vec::new(),
            user_types: Vec::new(),
            run_user_types: Vec::new(),
            stats: stats::RequestStats::new(0),
            now_ms: 0,
            coordinator_busy_us: 0,
            profile: None,
            checks: Vec::new(),
            rate_plan: Vec::new(),
            stop_error: None,
            run_script: None,
        }
    }

    #[test]
    fn dropped_iterations_are_a_counter_per_user_type() {
        let mut stats = stats::RequestStats::new(0);
        stats.record_dropped("Api", 7);
        stats.record_dropped("Se\"arch", 1);
        let mut out = String::new();
        let mut snap = empty_snapshot();
        snap.stats = stats;
        dropped_family(&mut out, &snap);
        assert!(
            out.contains("# TYPE swarmer_dropped_iterations_total counter"),
            "{out}"
        );
        assert!(
            out.contains("swarmer_dropped_iterations_total{user_type=\"Api\"} 7\n"),
            "{out}"
        );
        assert!(out.contains("{user_type=\"Se\\\"arch\"} 1\n"), "{out}");
    }

    #[test]
    fn thresholds_are_gauges_with_escaped_labels() {
        let mut snap = empty_snapshot();
        assert!(!render(&snap).contains("swarmer_threshold_ok"));
        snap.checks = vec![verdict::Check {
            kind: verdict::CheckKind::Threshold,
            expr: "p95 < 300ms".into(),
            scope: "GET /a\"b".into(),
            observed: Some(412.5),
            op: "<".into(),
            limit: 300.0,
            unit: "ms".into(),
            ok: false,
        }];
        let out = render(&snap);
        let labels = r#"{kind="threshold",scope="GET /a\"b",expr="p95 < 300ms"}"#;
        assert!(
            out.contains(&format!("swarmer_threshold_ok{labels} 0")),
            "{out}"
        );
        assert!(
            out.contains(&format!("swarmer_threshold_observed{labels} 412.5")),
            "{out}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
