//! What the history keeps of one finished run: plain data, independent of
//! the master's types, so the store, the CLI, the API and a baseline read
//! from an earlier `--json` file all speak the same shape.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The name the aggregated row carries, as in Locust's tables.
pub const AGGREGATED: &str = "Aggregated";

/// One finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Given by the store when recorded; 0 before.
    pub id: i64,
    pub started_ms: i64,
    pub ended_ms: i64,
    /// The script's file name (no directory: the same script run from two
    /// checkouts is the same test).
    pub script: String,
    /// SHA-256 of the script's text, hex: tells an edited script apart.
    pub script_hash: String,
    pub host: String,
    pub profile: Profile,
    /// `passed` or `failed`.
    pub verdict: String,
    /// Every entry, the aggregated row last.
    pub entries: Vec<EntryFigures>,
    /// Thresholds and regression checks with their results.
    pub checks: Vec<Check>,
    /// The per-interval (per-second) history of the run.
    pub intervals: Vec<Interval>,
    /// How the workers were scaled during (and just after) the run, oldest
    /// first; empty without autoscaling and in records from before it.
    #[serde(default)]
    pub scaling: Vec<ScaleEvent>,
}

/// One change of the worker count asked for during a run: an autoscale
/// decision as it was carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleEvent {
    /// When it was asked for (ms since the epoch, as `started_ms`).
    pub time_ms: i64,
    pub from: u32,
    pub to: u32,
    /// "scaled 3 → 5: average worker CPU 91% for 15 s".
    pub message: String,
    /// Why the scaler refused, when it did (the count did not change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ScaleEvent {
    /// The counts the run went through, as a table shows them: `1 → 3 → 1`
    /// (refused requests left out); empty when nothing changed.
    pub fn path(events: &[ScaleEvent]) -> String {
        let done: Vec<&ScaleEvent> = events.iter().filter(|e| e.error.is_none()).collect();
        let Some(first) = done.first() else {
            return String::new();
        };
        let mut path = first.from.to_string();
        for e in done {
            path.push_str(&format!(" → {}", e.to));
        }
        path
    }
}

/// How the run's users were asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// `fixed` (-u/-r/-t), `stages` (--stages or a declared shape) or
    /// `shape` (a script's shape function).
    pub kind: String,
    /// The peak users asked for.
    pub users: u32,
    pub spawn_rate: f64,
    pub run_time_ms: Option<u64>,
    /// `DURATION:USERS` stages, as given, when `kind` is `stages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<String>,
}

impl Profile {
    /// A short label for tables: `10 users @ 2/s, 30s` or `stages 30s:10,…`.
    pub fn label(&self) -> String {
        match self.kind.as_str() {
            "stages" => match &self.stages {
                Some(s) => format!("stages {s}"),
                None => format!("stages, peak {}", self.users),
            },
            "shape" => format!("shape, peak {}", self.users),
            _ => {
                let mut label = format!("{} users @ {}/s", self.users, self.spawn_rate);
                if let Some(ms) = self.run_time_ms {
                    label.push_str(&format!(", {}s", ms as f64 / 1000.0));
                }
                label
            }
        }
    }
}

/// One row of the statistics table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryFigures {
    pub method: String,
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub avg_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub rps: f64,
}

impl EntryFigures {
    /// The label a table shows: `GET /item` or `Aggregated`.
    pub fn label(&self) -> String {
        if self.method.is_empty() {
            self.name.clone()
        } else {
            format!("{} {}", self.method, self.name)
        }
    }

    pub fn fail_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 / self.requests as f64
        }
    }
}

/// A threshold or regression check and its outcome: the verdict crate's,
/// so a run's checks are stored, shown and compared as they were judged.
pub use verdict::Check;

/// One point of the run's per-second history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub time_ms: u64,
    pub users: u32,
    pub rps: f64,
    pub fail_per_sec: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// One line of `history list`: a run without its entries and intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: i64,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub script: String,
    pub script_hash: String,
    pub host: String,
    pub profile: Profile,
    pub requests: u64,
    pub failures: u64,
    pub rps: f64,
    pub p95_ms: f64,
    pub verdict: String,
    /// The run's scaling, for a table's "workers" column.
    #[serde(default)]
    pub scaling: Vec<ScaleEvent>,
}

impl RunRecord {
    /// The aggregated row (an empty one if the run had none).
    pub fn aggregated(&self) -> EntryFigures {
        aggregated_of(&self.entries)
    }

    pub fn summary(&self) -> RunSummary {
        let total = self.aggregated();
        RunSummary {
            id: self.id,
            started_ms: self.started_ms,
            ended_ms: self.ended_ms,
            script: self.script.clone(),
            script_hash: self.script_hash.clone(),
            host: self.host.clone(),
            profile: self.profile.clone(),
            requests: total.requests,
            failures: total.failures,
            rps: total.rps,
            p95_ms: total.p95_ms,
            verdict: self.verdict.clone(),
            scaling: self.scaling.clone(),
        }
    }
}

/// The aggregated row among `entries` (an empty one if none).
pub fn aggregated_of(entries: &[EntryFigures]) -> EntryFigures {
    entries
        .iter()
        .find(|e| e.method.is_empty() && e.name == AGGREGATED)
        .cloned()
        .unwrap_or_else(|| empty_entry("", AGGREGATED))
}

pub(crate) fn empty_entry(method: &str, name: &str) -> EntryFigures {
    EntryFigures {
        method: method.into(),
        name: name.into(),
        requests: 0,
        failures: 0,
        avg_ms: 0.0,
        min_ms: 0.0,
        max_ms: 0.0,
        p50_ms: 0.0,
        p95_ms: 0.0,
        p99_ms: 0.0,
        rps: 0.0,
    }
}

/// The hex SHA-256 of a script's text.
pub fn script_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
