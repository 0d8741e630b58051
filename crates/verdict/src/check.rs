//! The result type every renderer reads: a [`Check`] per threshold or
//! regression check, gathered in a [`Verdict`] that decides the exit code.
//!
//! Regression checks (a run compared with a baseline) are made elsewhere
//! and pushed in as checks of kind [`CheckKind::Regression`]: the console
//! table, the JSON and the JUnit file render both kinds alike.

use serde::{Deserialize, Serialize};

use crate::expr::number_text;

/// Where a check comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Threshold,
    Regression,
}

/// One judged condition: `observed OP limit` in `unit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub kind: CheckKind,
    /// The condition as the user wrote it, e.g. "p95 < 300ms".
    pub expr: String,
    /// The stats row it looked at, e.g. "Aggregated" or "GET /item".
    pub scope: String,
    /// `None` when there was nothing to measure (no request in scope):
    /// such a check does not hold, since it proves nothing.
    pub observed: Option<f64>,
    /// The comparison, "<", "<=", ">", ">=" or "==".
    pub op: String,
    pub limit: f64,
    /// "ms", "%", "/s" or "" (a count).
    pub unit: String,
    pub ok: bool,
}

/// The process exit code when every check holds.
pub const EXIT_PASSED: i32 = 0;
/// The process exit code when any check is crossed.
pub const EXIT_CROSSED: i32 = 3;

impl Check {
    /// "observed 412 ms, limit < 300 ms" (the JUnit failure message).
    pub fn observed_vs_limit(&self) -> String {
        format!(
            "observed {}, limit {} {}",
            self.observed_text(),
            self.op,
            value_text(self.limit, &self.unit)
        )
    }

    /// The observed value with its unit, or "no data".
    pub fn observed_text(&self) -> String {
        self.observed
            .map_or_else(|| "no data".into(), |v| value_text(v, &self.unit))
    }

    /// A one-word status: "ok", "CROSSED" or "no data".
    pub fn status(&self) -> &'static str {
        match (self.ok, self.observed) {
            (true, _) => "ok",
            (false, None) => "no data",
            (false, Some(_)) => "CROSSED",
        }
    }
}

/// A value with its unit and at most 2 decimals: "412.35 ms", "0.5%", "12".
pub fn value_text(v: f64, unit: &str) -> String {
    let n = number_text((v * 100.0).round() / 100.0);
    match unit {
        "" => n,
        "%" | "/s" => format!("{n}{unit}"),
        u => format!("{n} {u}"),
    }
}

/// All the checks of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub checks: Vec<Check>,
}

impl Verdict {
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Whether every check holds (true when there is none).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    pub fn crossed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }

    /// With checks, they alone decide: [`EXIT_PASSED`] or [`EXIT_CROSSED`].
    /// `None` without any: the caller's own rule applies.
    pub fn exit_code(&self) -> Option<i32> {
        if self.checks.is_empty() {
            None
        } else if self.passed() {
            Some(EXIT_PASSED)
        } else {
            Some(EXIT_CROSSED)
        }
    }
}
