//! A run's history at run time: the store opened (and a stored baseline
//! found) before the run starts, so a bad database stops it with exit 2;
//! the regression checks at its end; recording it; and the task that
//! records the web UI's runs.

use std::sync::Mutex;
use std::time::Duration;

use history::{Check, EntryFigures, RunRecord, Store, regression_checks};
use master::MasterHandle;
use master::autoscale::Autoscale;
use master::recorder::ScriptMeta;
use tokio_util::sync::CancellationToken;

use crate::cli::BaselineSpec;
use crate::config::{Baseline, HistorySetup, usage};

pub struct Recording {
    store: Option<Store>,
    pub script: ScriptMeta,
    /// What the run is compared to: its label and its entries.
    baseline: Option<(String, Vec<EntryFigures>)>,
    limits: Vec<history::RegressionLimit>,
    /// The web UI's recorder, awaited on the way out so the run stopped
    /// by quitting is recorded too.
    ui_recorder: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How long quitting waits for the last run to be recorded (a connection
/// wait of the store is 5 s).
const FINISH_RECORDING: Duration = Duration::from_secs(8);

impl Recording {
    /// Opens the store and finds a stored baseline: any failure is a usage
    /// error (exit 2), before anything runs.
    pub async fn open(setup: &HistorySetup, script: ScriptMeta) -> anyhow::Result<Recording> {
        let store = match &setup.location {
            Some(location) => match Store::open(location).await {
                Ok(store) => Some(store),
                // A stored baseline needs it, default or not.
                Err(e) if setup.default_location && !needs_store(setup) => {
                    tracing::warn!(
                        "the run history is off: {e}; set --history PATH|URL to keep runs \
                         (or --no-history to silence this)"
                    );
                    None
                }
                Err(e) => {
                    return Err(usage(format!("{e} (--history PATH|URL, or --no-history)")).into());
                }
            },
            None => {
                tracing::info!("the run history is off: this run will not be recorded");
                None
            }
        };
        let baseline = match &setup.baseline {
            None => None,
            Some(Baseline::File { path, entries }) => Some((path.clone(), entries.clone())),
            Some(Baseline::Stored(spec)) => {
                let store = store
                    .as_ref()
                    .ok_or_else(|| usage("--baseline: no history"))?;
                Some(stored_baseline(store, spec, &script.name).await?)
            }
        };
        Ok(Recording {
            store,
            script,
            baseline,
            limits: setup.limits.clone(),
            ui_recorder: Mutex::new(None),
        })
    }

    pub fn has_limits(&self) -> bool {
        !self.limits.is_empty()
    }

    /// The regression checks of a finished run (none without limits).
    pub fn checks(&self, run: &RunRecord) -> Vec<Check> {
        match &self.baseline {
            Some((_, entries)) if self.has_limits() => {
                let base = history::record::aggregated_of(entries);
                regression_checks(&self.limits, &run.aggregated(), &base)
            }
            _ => Vec::new(),
        }
    }

    /// The headline figures against the baseline, when there is one (the
    /// regression checks follow in the verdict's table).
    pub fn baseline_summary(&self, run: &RunRecord) -> String {
        let Some((label, entries)) = &self.baseline else {
            return String::new();
        };
        let (now, base) = (run.aggregated(), history::record::aggregated_of(entries));
        let mut out = format!("Against baseline {label}:");
        for (name, b, n) in [("p95", base.p95_ms, now.p95_ms), ("rps", base.rps, now.rps)] {
            let change = history::compare::percent_change(b, n)
                .map_or("n/a".to_string(), |p| format!("{p:+.1}%"));
            out.push_str(&format!(" {name} {b:.2} -> {n:.2} ({change});"));
        }
        out.push_str(&format!(
            " fail_ratio {:.2}% -> {:.2}%\n",
            base.fail_ratio() * 100.0,
            now.fail_ratio() * 100.0
        ));
        out
    }

    /// Records a finished run; a failure is shown, never fatal (the run's
    /// files are written before this).
    pub async fn record(&self, run: &RunRecord) {
        let Some(store) = &self.store else { return };
        match store.record(run).await {
            Ok(id) => eprintln!(
                "run recorded in the history as #{id} ({})",
                store.location()
            ),
            Err(e) => eprintln!("error: the run was not recorded: {e}"),
        }
    }

    /// With the web UI: records each run when it stops, until the master's
    /// coordinator ends (not on Ctrl-C: the run it stops is still to come).
    pub fn record_ui_runs(&self, master: MasterHandle, autoscale: Option<Autoscale>) {
        if let Some(store) = &self.store {
            let task = tokio::spawn(master::recorder::run(
                master,
                store.clone(),
                self.script.clone(),
                autoscale,
                CancellationToken::new(),
            ));
            if let Ok(mut slot) = self.ui_recorder.lock() {
                *slot = Some(task);
            }
        }
    }

    /// Waits (bounded) for the web UI's recorder, once the coordinator has
    /// been told to stop: it records the last run, then ends with it.
    pub async fn finish(&self) {
        let task = self
            .ui_recorder
            .lock()
            .ok()
            .and_then(|mut slot| slot.take());
        if let Some(task) = task {
            let _ = tokio::time::timeout(FINISH_RECORDING, task).await;
        }
    }

    /// The store, for the web API.
    pub fn store(&self) -> Option<Store> {
        self.store.clone()
    }
}

fn needs_store(setup: &HistorySetup) -> bool {
    matches!(setup.baseline, Some(Baseline::Stored(_)))
}

async fn stored_baseline(
    store: &Store,
    spec: &BaselineSpec,
    script: &str,
) -> anyhow::Result<(String, Vec<EntryFigures>)> {
    let at = store.location();
    let found = match spec {
        BaselineSpec::Id(id) => store.get(*id).await,
        BaselineSpec::Last => store.latest(Some(script), false).await,
        BaselineSpec::LastPassed => store.latest(Some(script), true).await,
        // Read by `config` already; never sent here.
        BaselineSpec::File(path) => {
            return Err(usage(format!("--baseline {}: not a history run", path.display())).into());
        }
    }
    .map_err(|e| usage(format!("--baseline: {e}")))?;
    let Some(run) = found else {
        let what = match spec {
            BaselineSpec::Id(id) => format!("no run #{id}"),
            BaselineSpec::Last => format!("no recorded run of {script}"),
            _ => format!("no passed run of {script}"),
        };
        return Err(usage(format!("--baseline: {what} in the history at {at}")).into());
    };
    Ok((format!("#{} ({})", run.id, run.script), run.entries))
}
