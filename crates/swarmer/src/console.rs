//! What a headless run prints: a live line and table while it runs, and
//! the summary at the end, laid out like Locust's so its users can read it.
//! Times are in ms with the precision the data has (`stats::csv::ms_figure`,
//! the same figures as the CSV files): a fast target does not read as 0.

use std::fmt::Write as _;

use master::Snapshot;
use stats::csv::ms_figure;
use stats::{PERCENTILES, RequestStats, StatsEntry};

/// The live view: elapsed against run time (with a bar when known), users,
/// throughput, failures and the slow end of the latency distribution.
pub fn live_line(snap: &Snapshot) -> String {
    let elapsed_ms = snap
        .run_started_ms
        .map_or(0, |s| snap.now_ms.saturating_sub(s));
    let total = snap.stats.total();
    let now = snap.now_ms;
    let clock = match snap.run_time_ms {
        Some(run_ms) => {
            let done = (elapsed_ms as f64 / run_ms.max(1) as f64).clamp(0.0, 1.0);
            let filled = (done * 20.0).round() as usize;
            format!(
                "[{}{}] {} / {}",
                "#".repeat(filled),
                "-".repeat(20 - filled),
                clock_text(elapsed_ms),
                clock_text(run_ms)
            )
        }
        None => format!("{} (Ctrl-C to stop)", clock_text(elapsed_ms)),
    };
    let pct = |q| {
        snap.stats
            .current_response_time_percentile_ms(q, now)
            .map_or("-".into(), ms_text)
    };
    format!(
        "{clock}  users {}/{}  rps {:.1}  failures {} ({:.1}%)  p50 {}  p95 {}  p99 {}",
        snap.user_count,
        snap.target_users,
        total.current_rps(now),
        total.num_failures,
        total.fail_ratio() * 100.0,
        pct(0.5),
        pct(0.95),
        pct(0.99),
    )
}

fn clock_text(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

fn ms_text(ms: f64) -> String {
    format!("{}ms", ms_figure(ms))
}

/// Locust's request table: one row per (method, name), then Aggregated.
pub fn stats_table(stats: &RequestStats, now_ms: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<40} {:>9} {:>14} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s"
    );
    let rule = "-".repeat(130);
    let _ = writeln!(out, "{rule}");
    for e in stats.entries() {
        row(&mut out, e, now_ms, stats.start_ms());
    }
    let _ = writeln!(out, "{rule}");
    row(&mut out, stats.total(), now_ms, stats.start_ms());
    out
}

fn row(out: &mut String, e: &StatsEntry, now_ms: u64, start_ms: u64) {
    let fails = format!("{}({:.2}%)", e.num_failures, e.fail_ratio() * 100.0);
    let _ = writeln!(
        out,
        "{:<8} {:<40} {:>9} {:>14} {:>8} {:>8} {:>8} {:>8} {:>9.2} {:>9.2}",
        e.method,
        truncate(&e.name, 40),
        e.num_requests,
        fails,
        ms_figure(e.avg_response_time_ms()),
        ms_figure(e.min_response_time_ms()),
        ms_figure(e.max_response_time_ms()),
        ms_figure(e.median_response_time_ms()),
        e.total_rps(start_ms, now_ms),
        e.total_fail_per_sec(start_ms, now_ms),
    );
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let cut: String = s.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}

/// The percentile table; rows measured from when a paced request was due
/// are added beside, marked so nobody mistakes one figure for the other.
pub fn percentile_table(stats: &RequestStats) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<8} {:<40}", "Type", "Name");
    for q in PERCENTILES {
        let _ = write!(out, " {:>7}", format!("{}%", q * 100.0));
    }
    let _ = writeln!(out, " {:>8}", "# reqs");
    let mut has_due = false;
    for e in stats.entries().chain(std::iter::once(stats.total())) {
        percentile_row(&mut out, e, &e.name, |q| Some(e.percentile_ms(q)));
        has_due |= e.due_percentile_ms(0.5).is_some();
    }
    if has_due {
        let _ = writeln!(
            out,
            "\nResponse time percentiles measured from when each paced request was due \
             (includes waiting caused by a slow target; see coordinated omission):"
        );
        for e in stats.entries().chain(std::iter::once(stats.total())) {
            if e.due_percentile_ms(0.5).is_some() {
                percentile_row(&mut out, e, &format!("{} (from due)", e.name), |q| {
                    e.due_percentile_ms(q)
                });
            }
        }
    }
    out
}

fn percentile_row(
    out: &mut String,
    e: &StatsEntry,
    name: &str,
    value: impl Fn(f64) -> Option<f64>,
) {
    let _ = write!(out, "{:<8} {:<40}", e.method, truncate(name, 40));
    for q in PERCENTILES {
        let cell = match value(q) {
            Some(v) if e.num_requests > 0 => ms_figure(v),
            _ => "N/A".into(),
        };
        let _ = write!(out, " {cell:>7}");
    }
    let _ = writeln!(out, " {:>8}", e.num_requests);
}

/// Failure groups, and the open model's dropped arrivals (a run that
/// dropped work did not make the load it was asked for).
pub fn failures_table(stats: &RequestStats) -> String {
    let mut out = dropped_table(stats);
    if stats.errors().is_empty() {
        return out;
    }
    let _ = writeln!(out, "Error report\n{:>12}  Error", "# occurrences");
    for (key, entry) in stats.errors() {
        let _ = writeln!(
            out,
            "{:>12}  {} {}: {}",
            entry.occurrences, key.method, key.name, key.error
        );
    }
    out
}

/// Arrivals that found no idle user and no room in the pool, per type.
fn dropped_table(stats: &RequestStats) -> String {
    let mut out = String::new();
    let total = stats.dropped_iterations_total();
    if total == 0 {
        return out;
    }
    let _ = writeln!(
        out,
        "Dropped iterations: {total} (arrivals with no idle user and no room to add one)"
    );
    for (user_type, n) in stats.dropped_iterations() {
        let _ = writeln!(out, "{n:>12}  {user_type}");
    }
    out
}

pub fn exceptions_table(stats: &RequestStats) -> String {
    let mut out = String::new();
    for ex in stats.exceptions() {
        let _ = writeln!(out, "{} x {}\n{}\n", ex.count, ex.message, ex.traceback);
    }
    if !out.is_empty() {
        out.insert_str(0, "Exceptions\n");
    }
    out
}
