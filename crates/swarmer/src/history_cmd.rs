//! `swarmer history list | show ID | compare A B`: the recorded runs as
//! tables, or as JSON with `--json`, read from the same store runs write.

use history::compare::Comparison;
use history::{Location, RunRecord, RunSummary, ScaleEvent, Store};

use crate::cli::{HistoryAction, HistoryCommand};
use crate::config::usage;

pub async fn run(command: HistoryCommand) -> anyhow::Result<i32> {
    let location = match &command.history {
        Some(text) => Location::parse(text).map_err(|e| usage(e.to_string()))?,
        None => Location::default_for_user().ok_or_else(|| {
            usage("no history location: set --history PATH|URL (no $HOME or $XDG_STATE_HOME)")
        })?,
    };
    if let Location::Sqlite(path) = &location {
        // Reading must not create an empty history where none was.
        if !path.exists() {
            return Err(usage(format!(
                "no run history at {}: no run has been recorded there yet (--history PATH|URL)",
                path.display()
            ))
            .into());
        }
    }
    let store = Store::open(&location)
        .await
        .map_err(|e| usage(e.to_string()))?;
    let json = command.json;
    let text = match command.action {
        HistoryAction::List { script, limit } => {
            let runs = store.list(script.as_deref(), limit).await?;
            if json {
                serde_json::to_string_pretty(&runs)?
            } else {
                list_table(&runs)
            }
        }
        HistoryAction::Show { id } => {
            let run = get(&store, id).await?;
            if json {
                serde_json::to_string_pretty(&run)?
            } else {
                show_text(&run)
            }
        }
        HistoryAction::Compare { a, b } => {
            let (a, b) = (get(&store, a).await?, get(&store, b).await?);
            let comparison = Comparison::new(&a, &b);
            if json {
                serde_json::to_string_pretty(&comparison)?
            } else {
                compare_text(&comparison)
            }
        }
    };
    println!("{}", text.trim_end());
    Ok(0)
}

async fn get(store: &Store, id: i64) -> anyhow::Result<RunRecord> {
    store.get(id).await?.ok_or_else(|| {
        usage(format!(
            "no run #{id} in the history at {}",
            store.location()
        ))
        .into()
    })
}

fn when(ms: i64) -> String {
    stats::csv::utc_timestamp(u64::try_from(ms).unwrap_or(0))
}

fn list_table(runs: &[RunSummary]) -> String {
    let mut out = format!(
        "{:>6}  {:<20}  {:<24}  {:<28}  {:<26}  {:>9}  {:>9}  {:<7}  Workers scaled\n",
        "Id", "When", "Script", "Host", "Users/profile", "RPS", "p95 (ms)", "Verdict"
    );
    for r in runs {
        let line = format!(
            "{:>6}  {:<20}  {:<24}  {:<28}  {:<26}  {:>9.2}  {:>9.1}  {:<7}  {}",
            r.id,
            when(r.started_ms),
            r.script,
            r.host,
            r.profile.label(),
            r.rps,
            r.p95_ms,
            r.verdict,
            ScaleEvent::path(&r.scaling)
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if runs.is_empty() {
        out.push_str("(no runs recorded yet)\n");
    }
    out
}

fn show_text(run: &RunRecord) -> String {
    let secs = (run.ended_ms - run.started_ms) as f64 / 1000.0;
    let mut out = format!(
        "Run #{}: {} against {}\nStarted {}, lasted {secs:.1}s, {}\nScript hash {}\nVerdict: {}\n\n",
        run.id,
        run.script,
        run.host,
        when(run.started_ms),
        run.profile.label(),
        run.script_hash,
        run.verdict
    );
    out.push_str(&format!(
        "{:<40} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "Name", "Requests", "Fails", "Avg", "p50", "p95", "p99", "RPS"
    ));
    for e in &run.entries {
        out.push_str(&format!(
            "{:<40} {:>9} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.2}\n",
            e.label(),
            e.requests,
            e.failures,
            e.avg_ms,
            e.p50_ms,
            e.p95_ms,
            e.p99_ms,
            e.rps
        ));
    }
    if !run.checks.is_empty() {
        let checks = verdict::Verdict {
            checks: run.checks.clone(),
        };
        out.push_str(&format!("\nChecks\n{}", verdict::render::table(&checks)));
    }
    if !run.scaling.is_empty() {
        out.push_str("\nScaling\n");
        for e in &run.scaling {
            let at = (e.time_ms - run.started_ms) as f64 / 1000.0;
            let refused = e
                .error
                .as_ref()
                .map_or(String::new(), |why| format!(" (refused: {why})"));
            out.push_str(&format!("{at:>8.1}s  {}{refused}\n", e.message));
        }
    }
    out.push_str(&format!(
        "\n{} per-second points recorded\n",
        run.intervals.len()
    ));
    out
}

fn compare_text(c: &Comparison) -> String {
    let mut out = format!(
        "A: #{} {} ({}), B: #{} {} ({})\n",
        c.a.id,
        c.a.script,
        when(c.a.started_ms),
        c.b.id,
        c.b.script,
        when(c.b.started_ms)
    );
    for e in &c.entries {
        let label = if e.method.is_empty() {
            e.name.clone()
        } else {
            format!("{} {}", e.method, e.name)
        };
        let presence = match (e.in_a, e.in_b) {
            (true, false) => " (only in A)",
            (false, true) => " (only in B)",
            _ => "",
        };
        out.push_str(&format!(
            "\n{label}{presence}\n  {:<12} {:>12} {:>12} {:>12} {:>9}\n",
            "", "A", "B", "Delta", "Change"
        ));
        for f in &e.figures {
            let change = f.percent.map_or("n/a".to_string(), |p| format!("{p:+.1}%"));
            out.push_str(&format!(
                "  {:<12} {:>12.3} {:>12.3} {:>+12.3} {:>9}\n",
                f.figure, f.a, f.b, f.delta, change
            ));
        }
    }
    out
}
