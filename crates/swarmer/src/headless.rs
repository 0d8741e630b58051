//! A headless run: wait for workers, start, show the live view, stop on
//! the run time or Ctrl-C, then print the summary and write the files.

use std::time::{Duration, Instant};

use anyhow::Context;
use master::{MasterHandle, RunRequest, RunState, Snapshot};

use crate::cli::RunArgs;
use crate::roles::usage;
use crate::{console, output};

/// The run the flags ask for.
pub fn run_request(args: &RunArgs) -> anyhow::Result<RunRequest> {
    Ok(RunRequest {
        users: args.users.unwrap_or(1),
        spawn_rate: args.spawn_rate.unwrap_or(1.0),
        host: args.host.clone(),
        run_time: args.run_time,
        user_types: args.selected_user_types(),
    })
}

pub async fn run(
    args: &RunArgs,
    master: MasterHandle,
    expect_workers: usize,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<i32> {
    wait_for_workers(args, &master, expect_workers, &shutdown).await?;
    master
        .start_run(run_request(args)?)
        .await
        .map_err(|e| usage(e.to_string()))?;
    let mut history_csv = match &args.csv {
        Some(prefix) => Some(output::HistoryCsv::create(prefix, args.csv_full_history)?),
        None => None,
    };
    let mut reset_done = !args.reset_stats;
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
        if !args.only_summary && last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            eprintln!("{}", console::live_line(&snap));
        }
    }
    if shutdown.is_cancelled() {
        eprintln!(
            "stopping: users finish their task within {:?} (Ctrl-C again to quit at once)",
            args.stop_timeout
        );
    }
    let snap = finish(&master, args.stop_timeout).await;
    report(args, &master, &snap)?;
    let failed = snap.stats.num_failures() > 0 || snap.stats.exceptions().len() > 0;
    Ok(if failed { args.exit_code_on_error } else { 0 })
}

async fn wait_for_workers(
    args: &RunArgs,
    master: &MasterHandle,
    expect: usize,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let wait = master.wait_for(|s| s.worker_count >= expect.max(1));
    let max_wait = args
        .cluster
        .expect_workers_max_wait
        .unwrap_or(Duration::MAX);
    tokio::select! {
        r = tokio::time::timeout(max_wait, wait) => match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                let have = master.snapshot().worker_count;
                Err(usage(format!(
                    "only {have} of {expect} workers connected within --expect-workers-max-wait {max_wait:?}"
                )))
            }
        },
        _ = shutdown.cancelled() => Err(usage("interrupted while waiting for workers")),
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

fn report(args: &RunArgs, master: &MasterHandle, snap: &Snapshot) -> anyhow::Result<()> {
    let now = snap.now_ms;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::final_json(snap))?
        );
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
    }
    if let Some(prefix) = &args.csv {
        output::write_final_csv(prefix, snap).context("writing CSV files")?;
    }
    if let Some(path) = &args.html {
        output::write_html(path, snap, &master.history())?;
    }
    Ok(())
}
