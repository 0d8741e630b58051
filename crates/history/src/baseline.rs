//! A baseline read from a file: the `--json` output of an earlier swarmer
//! run (Locust's per-entry field names), or a `swarmer history show --json`.

use std::path::Path;

use serde_json::Value;

use crate::HistoryError;
use crate::record::{AGGREGATED, EntryFigures, RunRecord};

/// The entries of the run a JSON file describes.
pub fn from_file(path: &Path) -> Result<Vec<EntryFigures>, HistoryError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| HistoryError::Baseline(format!("--baseline {shown}: cannot read it: {e}")))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        HistoryError::Baseline(format!(
            "--baseline {shown}: not a swarmer JSON output (not JSON: {e})"
        ))
    })?;
    from_json(&value).map_err(|why| {
        HistoryError::Baseline(format!(
            "--baseline {shown}: not a swarmer JSON output ({why})"
        ))
    })
}

/// The entries of a `--json` output or a recorded run; why not otherwise.
pub fn from_json(value: &Value) -> Result<Vec<EntryFigures>, String> {
    if value.get("entries").is_some() && value.get("script_hash").is_some() {
        let run: RunRecord =
            serde_json::from_value(value.clone()).map_err(|e| format!("a bad run record: {e}"))?;
        return Ok(run.entries);
    }
    let stats = value
        .get("stats")
        .and_then(Value::as_array)
        .ok_or("no \"stats\" list")?;
    let entries: Vec<EntryFigures> = stats
        .iter()
        .enumerate()
        .map(|(i, e)| entry(e).map_err(|why| format!("stats[{i}]: {why}")))
        .collect::<Result<_, _>>()?;
    if !entries
        .iter()
        .any(|e| e.method.is_empty() && e.name == AGGREGATED)
    {
        return Err("no Aggregated row in \"stats\"".into());
    }
    Ok(entries)
}

fn entry(e: &Value) -> Result<EntryFigures, String> {
    let text = |key: &str| {
        e.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(format!("no {key:?}"))
    };
    let number = |key: &str| {
        e.get(key)
            .and_then(Value::as_f64)
            .ok_or(format!("no number {key:?}"))
    };
    Ok(EntryFigures {
        method: text("method")?,
        name: text("name")?,
        requests: number("num_requests")? as u64,
        failures: number("num_failures")? as u64,
        avg_ms: number("avg_response_time")?,
        min_ms: number("min_response_time")?,
        max_ms: number("max_response_time")?,
        p50_ms: number("median_response_time")?,
        p95_ms: number("response_time_percentile_0.95")?,
        p99_ms: number("response_time_percentile_0.99")?,
        rps: number("total_rps")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_json_output_and_refuses_other_json() {
        let row = |method: &str, name: &str| {
            serde_json::json!({
                "method": method, "name": name, "num_requests": 10, "num_failures": 1,
                "avg_response_time": 5.0, "min_response_time": 1.0, "max_response_time": 9.0,
                "median_response_time": 4.0, "response_time_percentile_0.95": 8.0,
                "response_time_percentile_0.99": 9.0, "total_rps": 2.5
            })
        };
        let good = serde_json::json!({"stats": [row("GET", "/"), row("", "Aggregated")]});
        let entries = from_json(&good).unwrap();
        assert_eq!(entries[1].p95_ms, 8.0);
        assert_eq!(entries[0].requests, 10);
        assert!(
            from_json(&serde_json::json!({"a": 1}))
                .unwrap_err()
                .contains("stats")
        );
        let no_total = serde_json::json!({"stats": [row("GET", "/")]});
        assert!(from_json(&no_total).unwrap_err().contains("Aggregated"));
    }
}
