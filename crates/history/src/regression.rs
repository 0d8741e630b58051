//! `--max-regression p95=10%,rps=-5%,fail_ratio=+0.5%`: how far each figure
//! of the Aggregated row may move from the baseline's, turned into checks.
//!
//! The sign says which way a move is tolerated: a positive limit (or none)
//! caps a rise (`p95=10%`: at most 10% slower), a negative one caps a fall
//! (`rps=-5%`: at most 5% fewer requests per second). Times and rates move
//! by percent of the baseline; `fail_ratio`, itself a percentage, moves by
//! percentage points (`fail_ratio=+0.5%`: from 1% to at most 1.5%).

use crate::HistoryError;
use crate::compare::figure;
use crate::record::{AGGREGATED, Check, EntryFigures};
use verdict::CheckKind;

/// The figures a limit may name, with the field each reads.
const FIGURES: [(&str, &str); 10] = [
    ("p50", "p50_ms"),
    ("p95", "p95_ms"),
    ("p99", "p99_ms"),
    ("avg", "avg_ms"),
    ("min", "min_ms"),
    ("max", "max_ms"),
    ("rps", "rps"),
    ("fail_ratio", "fail_ratio"),
    ("failures", "failures"),
    ("requests", "requests"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct RegressionLimit {
    /// As written: `p95`.
    pub figure: String,
    /// The signed change allowed, in percent (points for `fail_ratio`).
    pub percent: f64,
}

impl RegressionLimit {
    /// Parses the whole flag value: comma-separated `FIGURE=[+|-]N%`.
    pub fn parse_list(text: &str) -> Result<Vec<RegressionLimit>, HistoryError> {
        let limits: Vec<_> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect::<Result<_, _>>()?;
        if limits.is_empty() {
            return Err(HistoryError::Limit(
                "empty; expected FIGURE=N% pairs such as p95=10%,rps=-5%".into(),
            ));
        }
        Ok(limits)
    }

    fn parse(item: &str) -> Result<RegressionLimit, HistoryError> {
        let bad = |why: String| HistoryError::Limit(format!("{item:?}: {why}"));
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| bad("expected FIGURE=N%, e.g. p95=10%".into()))?;
        let name = name.trim();
        if !FIGURES.iter().any(|(n, _)| *n == name) {
            let known: Vec<_> = FIGURES.iter().map(|(n, _)| *n).collect();
            return Err(bad(format!(
                "unknown figure {name:?}; one of {}",
                known.join(", ")
            )));
        }
        let value = value.trim();
        let number = value
            .strip_suffix('%')
            .ok_or_else(|| bad(format!("{value:?} needs a % (of the baseline's value)")))?;
        let percent: f64 = number
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite())
            .ok_or_else(|| bad(format!("{number:?} is not a number")))?;
        Ok(RegressionLimit {
            figure: name.to_string(),
            percent,
        })
    }

    fn field(&self) -> &'static str {
        FIGURES
            .iter()
            .find(|(n, _)| *n == self.figure)
            .map_or("", |(_, f)| f)
    }

    /// How the verdict shows this figure: a factor from the stored value
    /// and the unit (`fail_ratio` is stored as a fraction, shown in %).
    fn shown_as(&self) -> (f64, &'static str) {
        match self.figure.as_str() {
            "fail_ratio" => (100.0, "%"),
            "rps" => (1.0, "/s"),
            "failures" | "requests" => (1.0, ""),
            _ => (1.0, "ms"),
        }
    }

    /// Caps a fall (`>=`) rather than a rise (`<=`).
    fn caps_fall(&self) -> bool {
        self.percent < 0.0
    }

    /// The expression shown: `p95 <= +10% vs baseline`.
    pub fn expr(&self) -> String {
        let op = if self.caps_fall() { ">=" } else { "<=" };
        let sign = if self.percent >= 0.0 { "+" } else { "" };
        format!("{} {op} {sign}{}% vs baseline", self.figure, self.percent)
    }

    /// The absolute limit for a baseline value.
    pub fn limit(&self, baseline: f64) -> f64 {
        if self.figure == "fail_ratio" {
            baseline + self.percent / 100.0
        } else {
            baseline * (1.0 + self.percent / 100.0)
        }
    }
}

/// The checks of `limits` on the Aggregated rows of a run and its baseline.
pub fn regression_checks(
    limits: &[RegressionLimit],
    run: &EntryFigures,
    baseline: &EntryFigures,
) -> Vec<Check> {
    limits
        .iter()
        .map(|l| {
            let observed = figure(run, l.field());
            let limit = l.limit(figure(baseline, l.field()));
            let ok = if l.caps_fall() {
                observed >= limit
            } else {
                observed <= limit
            };
            let (factor, unit) = l.shown_as();
            Check {
                kind: CheckKind::Regression,
                expr: l.expr(),
                scope: AGGREGATED.into(),
                observed: Some(observed * factor),
                op: if l.caps_fall() { ">=" } else { "<=" }.into(),
                limit: limit * factor,
                unit: unit.into(),
                ok,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::empty_entry;

    fn total(p95: f64, rps: f64, requests: u64, failures: u64) -> EntryFigures {
        let mut e = empty_entry("", AGGREGATED);
        (e.p95_ms, e.rps, e.requests, e.failures) = (p95, rps, requests, failures);
        e
    }

    #[test]
    fn parses_signed_percentages() {
        let l = RegressionLimit::parse_list("p95=10%, rps=-5%,fail_ratio=+0.5%").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].expr(), "p95 <= +10% vs baseline");
        assert_eq!(l[1].expr(), "rps >= -5% vs baseline");
        assert_eq!(l[2].expr(), "fail_ratio <= +0.5% vs baseline");
    }

    #[test]
    fn bad_limits_name_the_problem() {
        for (text, needle) in [
            ("p95", "FIGURE=N%"),
            ("p42=10%", "unknown figure"),
            ("p95=10", "needs a %"),
            ("p95=ten%", "not a number"),
            ("p95=inf%", "not a number"),
            ("", "empty"),
        ] {
            let err = RegressionLimit::parse_list(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn checks_against_the_baseline() {
        let limits = RegressionLimit::parse_list("p95=10%,rps=-5%,fail_ratio=+0.5%").unwrap();
        let base = total(100.0, 200.0, 1000, 10);
        let same = regression_checks(&limits, &base, &base);
        assert!(same.iter().all(|c| c.ok), "{same:?}");
        let worse = regression_checks(&limits, &total(111.0, 189.0, 1000, 16), &base);
        assert!(worse.iter().all(|c| !c.ok), "{worse:?}");
        assert!((worse[0].limit - 110.0).abs() < 1e-9);
        assert!((worse[1].limit - 190.0).abs() < 1e-9);
        assert!((worse[2].limit - 1.5).abs() < 1e-9, "fail_ratio in %");
        assert_eq!(
            (worse[0].unit.as_str(), worse[2].unit.as_str()),
            ("ms", "%")
        );
        assert_eq!(worse[2].scope, "Aggregated");
    }
}
