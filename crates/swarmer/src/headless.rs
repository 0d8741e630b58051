//! A headless run: wait for workers, start, show the live view, stop on
//! the run time, Ctrl-C or a crossed threshold (`--threshold-abort`), then
//! print the summary, write the files and turn the verdict into the exit
//! code.

use std::time::{Duration, Instant};

use anyhow::Context;
use master::{MasterHandle, RunRequest, RunState, Snapshot};
use verdict::{EXIT_CROSSED, Verdict};

use crate::config::{Headless, Outputs, VerdictConfig, usage};
use crate::{console, output};

pub async fn run(
    config: &Headless,
    request: RunRequest,
    master: MasterHandle,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<i32> {
    wait_for_workers(config, &master, &shutdown).await?;
    master
        .start_run(request)
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
    // The master judged the thresholds on this final snapshot; checks of
    // other kinds (a baseline's regressions) join the verdict here.
    let verdict = Verdict {
        checks: snap.checks.clone(),
    };
    report(out, &master, &snap, &verdict)?;
    Ok(exit_code(config, &snap, &verdict, aborted))
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

/// With thresholds (or other checks), they alone decide, unless
/// `--exit-code-on-error` was given: then failures still fail the run.
/// Without, Locust's rule: any failure or exception fails it.
fn exit_code(config: &Headless, snap: &Snapshot, verdict: &Verdict, aborted: bool) -> i32 {
    let failed = snap.stats.num_failures() > 0 || snap.stats.exceptions().len() > 0;
    let nothing = snap.stats.num_requests() == 0;
    if nothing {
        // Nothing was measured: whatever went wrong (a target that never
        // answered in time, a script whose tasks make no request), this run
        // proves nothing and must not pass a CI gate.
        eprintln!("error: no request completed during the run, so there is nothing to judge");
    }
    if aborted {
        // The final figures may have recovered; the run still failed.
        eprintln!("the run was aborted on a crossed threshold (--threshold-abort)");
    }
    if let Some(code) = verdict.exit_code() {
        if aborted || code != verdict::EXIT_PASSED {
            return EXIT_CROSSED;
        }
        return match config.exit_code_on_error {
            Some(on_error) if failed => on_error,
            _ => code,
        };
    }
    let on_error = config.exit_code_on_error.unwrap_or(1);
    if nothing {
        on_error.max(1)
    } else if failed {
        on_error
    } else {
        0
    }
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
    out: &Outputs,
    master: &MasterHandle,
    snap: &Snapshot,
    verdict: &Verdict,
) -> anyhow::Result<()> {
    let now = snap.now_ms;
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::final_json(snap, verdict))?
        );
        // stdout is the JSON document; people still see the verdict.
        if !verdict.is_empty() {
            eprint!("Thresholds\n{}", verdict::render::table(verdict));
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
        if !verdict.is_empty() {
            print!("Thresholds\n{}", verdict::render::table(verdict));
        }
    }
    if let Some(prefix) = &out.csv {
        output::write_final_csv(prefix, snap).context("writing CSV files")?;
    }
    if let Some(path) = &out.html {
        output::write_html(path, snap, verdict, &master.history())?;
    }
    if let Some(path) = &out.junit {
        output::write_junit(path, verdict)?;
    }
    Ok(())
}
