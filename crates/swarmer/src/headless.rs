//! A headless run: wait for workers, start, show the live view, stop on
//! the run time or Ctrl-C, then print the summary and write the files.

use std::time::{Duration, Instant};

use anyhow::Context;
use master::{MasterHandle, RunRequest, RunState, Snapshot};

use crate::config::{Headless, Outputs, usage};
use crate::recording::Recording;
use crate::{console, output};

pub async fn run(
    config: &Headless,
    request: RunRequest,
    master: MasterHandle,
    recording: &Recording,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<i32> {
    wait_for_workers(config, &master, &shutdown).await?;
    master
        .start_run(request.clone())
        .await
        .map_err(|e| usage(e.to_string()))?;
    let out = &config.outputs;
    let mut history_csv = match &out.csv {
        Some(prefix) => Some(output::HistoryCsv::create(prefix, out.csv_full_history)?),
        None => None,
    };
    let mut reset_done = !config.reset_stats;
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
    }
    if shutdown.is_cancelled() {
        eprintln!(
            "stopping: users finish their task within {:?} (Ctrl-C again to quit at once)",
            config.stop_timeout
        );
    }
    let snap = finish(&master, config.stop_timeout).await;
    let points = master.history();
    let mut record =
        master::recorder::record_of(&snap, &points, &recording.script, Some(&request), "");
    record.checks = recording.checks(&record);
    let code = exit_code(config, &snap, &record.checks);
    record.verdict = if code == 0 { "passed" } else { "failed" }.into();
    // The files first: a history that fails must not lose them.
    let written = report(out, &master, &snap, recording, &record);
    recording.record(&record).await;
    written?;
    Ok(code)
}

/// Locust's rule (any failure fails the run), then exit 3 when a
/// regression check is crossed.
fn exit_code(config: &Headless, snap: &Snapshot, checks: &[history::Check]) -> i32 {
    if snap.stats.num_requests() == 0 {
        // Nothing was measured: whatever went wrong (a target that never
        // answered in time, a script whose tasks make no request), this run
        // proves nothing and must not pass a CI gate.
        eprintln!("error: no request completed during the run, so there is nothing to judge");
        return config.exit_code_on_error.max(1);
    }
    if checks.iter().any(|c| !c.ok) {
        eprintln!("error: the run regressed against its baseline (see the regression checks)");
        return REGRESSION_EXIT_CODE;
    }
    let failed = snap.stats.num_failures() > 0 || snap.stats.exceptions().len() > 0;
    if failed { config.exit_code_on_error } else { 0 }
}

/// A crossed regression check (as for a crossed threshold).
const REGRESSION_EXIT_CODE: i32 = 3;

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
    out: &Outputs,
    master: &MasterHandle,
    snap: &Snapshot,
    recording: &Recording,
    record: &history::RunRecord,
) -> anyhow::Result<()> {
    let now = snap.now_ms;
    if out.json {
        let mut json = output::final_json(snap);
        if recording.has_limits() {
            json["regressions"] = serde_json::to_value(&record.checks)?;
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
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
        print!("{}", recording.baseline_summary(record));
    }
    if let Some(prefix) = &out.csv {
        output::write_final_csv(prefix, snap).context("writing CSV files")?;
    }
    if let Some(path) = &out.html {
        output::write_html(path, snap, &master.history())?;
    }
    Ok(())
}
