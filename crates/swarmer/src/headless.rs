//! A headless run: wait for workers, start, show the live view, stop on
//! the run time, Ctrl-C or a crossed threshold (`--threshold-abort`), then
//! print the summary, write the files, and return the exit code the
//! summary's last line names (`outcome`).

use std::time::{Duration, Instant};

use anyhow::Context;
use master::ext::Extensions;
use master::{MasterHandle, RunRequest, RunState, Snapshot};
use verdict::Verdict;

use crate::config::{Headless, VerdictConfig, usage};
use crate::outcome::Outcome;
use crate::recording::Recording;
use crate::{console, output};

pub async fn run(
    config: &Headless,
    request: RunRequest,
    master: MasterHandle,
    ext: Option<&Extensions>,
    recording: &Recording,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<i32> {
    wait_for_workers(config, &master, &shutdown).await?;
    // Refused (a bad shape function included) before anything started.
    master::ext::start_run(&master, ext, request.clone())
        .await
        .map_err(|e| usage(e.to_string()))?;
    let out = &config.outputs;
    let mut history_csv = match &out.csv {
        Some(prefix) => Some(output::HistoryCsv::create(prefix, out.csv_full_history)?),
        None => None,
    };
    let mut reset_done = !config.reset_stats;
    let mut aborted = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_print = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let snap = master.snapshot();
        if snap.state == RunState::Stopped {
            break;
        }
        if !reset_done && snap.state == RunState::Running {
            master.reset_stats().await.ok();
            reset_done = true;
        }
        if let Some(csv) = &mut history_csv {
            csv.append(&snap)?;
        }
        if !out.only_summary && last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            eprintln!("{}", console::live_line(&snap));
        }
        if let Some(c) = crossed_after_grace(&config.verdict, &snap) {
            eprintln!(
                "threshold crossed: {}: {} ({}); --threshold-abort ends the run",
                c.scope,
                c.expr,
                c.observed_vs_limit()
            );
            aborted = true;
            break;
        }
    }
    if shutdown.is_cancelled() {
        eprintln!(
            "stopping: users finish their task within {:?} (Ctrl-C again to quit at once)",
            config.stop_timeout
        );
    }
    let snap = finish(&master, config.stop_timeout).await;
    conclude(config, &master, recording, &request, &snap, aborted).await
}

/// Judges the finished run (thresholds and a baseline's regression checks
/// in one verdict), writes the outputs, records it, and returns the exit
/// code the summary's last line names.
async fn conclude(
    config: &Headless,
    master: &MasterHandle,
    recording: &Recording,
    request: &RunRequest,
    snap: &Snapshot,
    aborted: bool,
) -> anyhow::Result<i32> {
    let out = &config.outputs;
    // The master judged the thresholds on this final snapshot; a
    // baseline's regression checks join them, so one verdict decides.
    let points = master.history();
    let mut record =
        master::recorder::record_of(snap, &points, &recording.script, Some(request), "");
    if let Some(autoscale) = &config.autoscale {
        record.scaling = autoscale.scaling_of_run(snap.run_id);
    }
    let mut verdict = Verdict {
        checks: snap.checks.clone(),
    };
    for check in recording.checks(&record) {
        verdict.push(check);
    }
    let outcome = Outcome::judge(&snap.stats, &verdict, config.exit_code_on_error, aborted);
    record.checks = verdict.checks.clone();
    record.verdict = if outcome.exit_code == 0 {
        "passed"
    } else {
        "failed"
    }
    .into();
    // The files first: a history that fails must not lose them.
    let written = report(master, config, &points, snap, &verdict, recording, &record);
    recording.record(&record).await;
    if outcome.requests == 0 {
        // Nothing was measured: whatever went wrong (a target that never
        // answered in time, a script whose tasks make no request), this run
        // proves nothing and must not pass a CI gate.
        eprintln!("error: no request completed during the run, so there is nothing to judge");
    }
    // The summary's last line; stdout stays pure JSON with --json.
    if out.json {
        eprintln!("{}", outcome.words());
    } else {
        println!("{}", outcome.words());
    }
    written?;
    Ok(outcome.exit_code)
}

/// The first threshold crossed (with data) once the grace has passed, when
/// `--threshold-abort` asks to end the run on one.
fn crossed_after_grace<'a>(v: &VerdictConfig, snap: &'a Snapshot) -> Option<&'a verdict::Check> {
    let grace = v.abort_after?;
    let started = snap.run_started_ms?;
    if !snap.state.is_active() || snap.now_ms.saturating_sub(started) < grace.as_millis() as u64 {
        return None;
    }
    snap.checks.iter().find(|c| !c.ok && c.observed.is_some())
}

async fn wait_for_workers(
    config: &Headless,
    master: &MasterHandle,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let expect = config.expect_workers;
    let wait = master.wait_for(|s| s.worker_count >= expect.max(1));
    let max_wait = config.expect_workers_max_wait.unwrap_or(Duration::MAX);
    tokio::select! {
        r = tokio::time::timeout(max_wait, wait) => match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                let have = master.snapshot().worker_count;
                Err(usage(format!(
                    "only {have} of {expect} workers connected within --expect-workers-max-wait {max_wait:?}"
                )).into())
            }
        },
        _ = shutdown.cancelled() => Err(usage("interrupted while waiting for workers").into()),
    }
}

/// Stops the run (if the run time did not already) and waits for every
/// worker's final report, so the summary counts everything.
async fn finish(master: &MasterHandle, stop_timeout: Duration) -> std::sync::Arc<Snapshot> {
    let _ = master.stop_run().await;
    let patience = stop_timeout + Duration::from_secs(10);
    let stopped = master.wait_for(|s| s.state == RunState::Stopped);
    match tokio::time::timeout(patience, stopped).await {
        Ok(Ok(snap)) => snap,
        _ => master.snapshot(),
    }
}

fn report(
    master: &MasterHandle,
    config: &Headless,
    points: &[master::HistoryPoint],
    snap: &Snapshot,
    verdict: &Verdict,
    recording: &Recording,
    record: &history::RunRecord,
) -> anyhow::Result<()> {
    let out = &config.outputs;
    let now = snap.now_ms;
    let autoscaled = config
        .autoscale
        .as_ref()
        .map_or_else(Vec::new, |a| a.events_of_run(snap.run_id));
    if out.json {
        let mut json = output::final_json(snap, verdict);
        if recording.has_limits() {
            let regressions: Vec<_> = verdict
                .checks
                .iter()
                .filter(|c| c.kind == verdict::CheckKind::Regression)
                .collect();
            json["regressions"] = serde_json::to_value(regressions)?;
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
        // stdout is the JSON document; people still see the verdict.
        if !verdict.is_empty() {
            eprint!("{}", recording.baseline_summary(record));
            eprint!("Checks\n{}", verdict::render::table(verdict));
        }
    } else {
        println!("{}", console::stats_table(&snap.stats, now));
        println!("Response time percentiles (approximated)");
        println!("{}", console::percentile_table(&snap.stats));
        print!("{}", console::failures_table(&snap.stats));
        print!("{}", console::exceptions_table(&snap.stats));
        if snap.lost_workers > 0 {
            println!(
                "{} worker(s) were lost during the run; their last unreported second is missing",
                snap.lost_workers
            );
        }
        if !snap.saturated_workers.is_empty() {
            println!(
                "Figures taken with saturated generators: {} used over 90% of their CPU \
                 (latencies include their own queueing); add workers or use --autoscale",
                snap.saturated_workers.join(", ")
            );
        }
        for event in &autoscaled {
            match &event.error {
                None => println!("Autoscaling: {}", event.message),
                Some(e) => println!("Autoscaling: {} (refused: {e})", event.message),
            }
        }
        print!("{}", recording.baseline_summary(record));
        if !verdict.is_empty() {
            print!("Checks\n{}", verdict::render::table(verdict));
        }
    }
    if let Some(prefix) = &out.csv {
        output::write_final_csv(prefix, snap).context("writing CSV files")?;
    }
    if let Some(path) = &out.html {
        output::write_html(path, master, snap, verdict, points, &autoscaled)?;
    }
    if let Some(path) = &out.junit {
        output::write_junit(path, verdict)?;
    }
    Ok(())
}
