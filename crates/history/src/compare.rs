//! Two runs side by side: per entry (matched by method and name), each
//! figure in both, the difference and the percent change.

use serde::Serialize;

use crate::record::{EntryFigures, RunRecord, RunSummary};

/// The figures a comparison shows, in order.
pub const FIGURES: [&str; 9] = [
    "requests",
    "failures",
    "fail_ratio",
    "avg_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "rps",
];

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: RunSummary,
    pub b: RunSummary,
    /// Entries of B in B's order, then those only A had; the aggregated row last.
    pub entries: Vec<EntryDelta>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryDelta {
    pub method: String,
    pub name: String,
    /// Missing in a run that did not have this entry.
    pub in_a: bool,
    pub in_b: bool,
    pub figures: Vec<FigureDelta>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FigureDelta {
    pub figure: &'static str,
    pub a: f64,
    pub b: f64,
    /// `b - a`.
    pub delta: f64,
    /// `(b - a) / a` in percent; None when A is 0 (no base to compare to).
    pub percent: Option<f64>,
}

/// One figure of an entry by its name in [`FIGURES`].
pub fn figure(e: &EntryFigures, name: &str) -> f64 {
    match name {
        "requests" => e.requests as f64,
        "failures" => e.failures as f64,
        "fail_ratio" => e.fail_ratio(),
        "avg_ms" => e.avg_ms,
        "p50_ms" => e.p50_ms,
        "p95_ms" => e.p95_ms,
        "p99_ms" => e.p99_ms,
        "max_ms" => e.max_ms,
        "min_ms" => e.min_ms,
        "rps" => e.rps,
        _ => f64::NAN,
    }
}

/// `(b - a) / a` in percent, None when `a` is 0.
pub fn percent_change(a: f64, b: f64) -> Option<f64> {
    (a != 0.0).then(|| (b - a) / a * 100.0)
}

impl Comparison {
    pub fn new(a: &RunRecord, b: &RunRecord) -> Comparison {
        let key = |e: &EntryFigures| (e.method.clone(), e.name.clone());
        let mut keys: Vec<(String, String)> = b.entries.iter().map(key).collect();
        for e in &a.entries {
            if !keys.contains(&key(e)) {
                keys.push(key(e));
            }
        }
        // The aggregated row last, wherever either run had it.
        keys.sort_by_key(|(m, n)| m.is_empty() && n == crate::AGGREGATED);
        let find = |run: &RunRecord, k: &(String, String)| {
            run.entries.iter().find(|e| key(e) == *k).cloned()
        };
        let entries = keys
            .iter()
            .map(|k| {
                let (ea, eb) = (find(a, k), find(b, k));
                let empty = crate::record::empty_entry(&k.0, &k.1);
                let (fa, fb) = (ea.as_ref().unwrap_or(&empty), eb.as_ref().unwrap_or(&empty));
                EntryDelta {
                    method: k.0.clone(),
                    name: k.1.clone(),
                    in_a: ea.is_some(),
                    in_b: eb.is_some(),
                    figures: FIGURES
                        .iter()
                        .map(|&f| {
                            let (va, vb) = (figure(fa, f), figure(fb, f));
                            FigureDelta {
                                figure: f,
                                a: va,
                                b: vb,
                                delta: vb - va,
                                percent: percent_change(va, vb),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        Comparison {
            a: a.summary(),
            b: b.summary(),
            entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::empty_entry;

    fn run(entries: Vec<EntryFigures>) -> RunRecord {
        RunRecord {
            id: 1,
            started_ms: 0,
            ended_ms: 1,
            script: "s.lua".into(),
            script_hash: String::new(),
            host: String::new(),
            profile: Default::default(),
            verdict: "passed".into(),
            entries,
            checks: vec![],
            intervals: vec![],
            scaling: vec![],
        }
    }

    #[test]
    fn deltas_and_percent_per_entry_with_aggregated_last() {
        let mut total_a = empty_entry("", "Aggregated");
        total_a.p95_ms = 100.0;
        total_a.rps = 50.0;
        let mut total_b = total_a.clone();
        total_b.p95_ms = 120.0;
        total_b.rps = 40.0;
        let only_a = empty_entry("GET", "/old");
        let only_b = empty_entry("GET", "/new");
        let c = Comparison::new(&run(vec![only_a, total_a]), &run(vec![total_b, only_b]));
        let names: Vec<_> = c.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["/new", "/old", "Aggregated"]);
        let total = &c.entries[2];
        let p95 = total.figures.iter().find(|f| f.figure == "p95_ms").unwrap();
        assert_eq!((p95.delta, p95.percent), (20.0, Some(20.0)));
        let rps = total.figures.iter().find(|f| f.figure == "rps").unwrap();
        assert_eq!(rps.percent, Some(-20.0));
        assert!(!c.entries[0].in_a && c.entries[0].in_b);
        let zero = c.entries[0]
            .figures
            .iter()
            .find(|f| f.figure == "rps")
            .unwrap();
        assert_eq!(zero.percent, None);
    }
}
