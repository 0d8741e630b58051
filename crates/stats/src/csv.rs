//! Locust-compatible CSV rendering: `_stats.csv`, `_stats_history.csv`,
//! `_failures.csv` and `_exceptions.csv`, with Locust's exact headers, so
//! tools written for Locust's files read ours unchanged.
//!
//! Times are in milliseconds as Locust writes them; the median and the
//! percentiles are written by [`ms_figure`] (two significant digits below
//! 10 ms, where Locust's whole milliseconds would read 0 against a fast
//! target) and `N/A` for an entry without requests. Lines end in `\n`.

use crate::{PERCENTILES, RequestStats, StatsEntry};

/// Header of `_stats.csv`.
pub const STATS_HEADER: &str = "Type,Name,Request Count,Failure Count,Median Response Time,\
Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,\
Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";

/// Header line of `_stats_history.csv`, without a line terminator.
pub const STATS_HISTORY_HEADER: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,\
50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,\
Total Median Response Time,Total Average Response Time,Total Min Response Time,\
Total Max Response Time,Total Average Content Size";

/// Header of `_failures.csv`.
pub const FAILURES_HEADER: &str = "Method,Name,Error,Occurrences,First Seen,Last Seen";

/// Header of `_exceptions.csv`.
pub const EXCEPTIONS_HEADER: &str = "Count,Message,Traceback,Nodes";

/// The whole `_stats.csv`: header, one row per entry, `Aggregated` last.
/// Requests/s and Failures/s are totals since the start, as Locust writes.
pub fn stats_csv(stats: &RequestStats, now_ms: u64) -> String {
    let mut out = Rows::with_header(STATS_HEADER);
    let (start, total) = (stats.start_ms(), stats.total());
    for entry in stats.entries().chain(std::iter::once(total)) {
        let mut row = vec![entry.method.to_string(), entry.name.to_string()];
        row.extend([
            entry.num_requests.to_string(),
            entry.num_failures.to_string(),
            ms_figure(entry.median_response_time_ms()),
            entry.avg_response_time_ms().to_string(),
            entry.min_response_time_ms().to_string(),
            entry.max_response_time_ms().to_string(),
            entry.avg_content_length().to_string(),
            entry.total_rps(start, now_ms).to_string(),
            entry.total_fail_per_sec(start, now_ms).to_string(),
        ]);
        row.extend(percentile_fields(entry, |q| entry.percentile_ms(q)));
        out.push(&row);
    }
    out.finish()
}

/// Rows to append to `_stats_history.csv` at `now_ms` (no header): with
/// `full_history` one per entry, then always the `Aggregated` one.
///
/// As Locust, percentiles are over the current window with `full_history`
/// and since the start otherwise. Only the total keeps a window of response
/// times, so entries' rows use their since-the-start percentiles.
pub fn stats_history_rows(
    stats: &RequestStats,
    user_count: u64,
    now_ms: u64,
    full_history: bool,
) -> String {
    let mut out = Rows::new();
    let entries: Vec<&StatsEntry> = if full_history {
        stats.entries().collect()
    } else {
        Vec::new()
    };
    let rows = entries.into_iter().map(|e| (e, false));
    for (entry, is_total) in rows.chain(std::iter::once((stats.total(), true))) {
        let mut row = vec![
            (now_ms / 1000).to_string(),
            user_count.to_string(),
            entry.method.to_string(),
            entry.name.to_string(),
            format!("{:.6}", entry.current_rps(now_ms)),
            format!("{:.6}", entry.current_fail_per_sec(now_ms)),
        ];
        row.extend(percentile_fields(entry, |q| {
            if full_history && is_total {
                // Locust writes 0 when the window holds no response.
                stats
                    .current_response_time_percentile_ms(q, now_ms)
                    .unwrap_or(0.0)
            } else {
                entry.percentile_ms(q)
            }
        }));
        row.extend(totals_fields(entry));
        out.push(&row);
    }
    out.finish()
}

/// The "Total ..." tail of a history row.
fn totals_fields(entry: &StatsEntry) -> [String; 7] {
    [
        entry.num_requests.to_string(),
        entry.num_failures.to_string(),
        ms_figure(entry.median_response_time_ms()),
        entry.avg_response_time_ms().to_string(),
        entry.min_response_time_ms().to_string(),
        entry.max_response_time_ms().to_string(),
        entry.avg_content_length().to_string(),
    ]
}

/// The whole `_failures.csv`, one row per (method, name, error) group.
pub fn failures_csv(stats: &RequestStats) -> String {
    let mut out = Rows::with_header(FAILURES_HEADER);
    for (key, group) in stats.errors() {
        out.push(&[
            key.method.to_string(),
            key.name.to_string(),
            key.error.to_string(),
            group.occurrences.to_string(),
            utc_timestamp(group.first_seen_ms),
            utc_timestamp(group.last_seen_ms),
        ]);
    }
    out.finish()
}

/// The whole `_exceptions.csv`; nodes joined by ", " as Locust does.
pub fn exceptions_csv(stats: &RequestStats) -> String {
    let mut out = Rows::with_header(EXCEPTIONS_HEADER);
    for exc in stats.exceptions() {
        let nodes: Vec<&str> = exc.nodes.iter().map(String::as_str).collect();
        out.push(&[
            exc.count.to_string(),
            exc.message.clone(),
            exc.traceback.clone(),
            nodes.join(", "),
        ]);
    }
    out.finish()
}

/// Percentile columns: `N/A` without requests, [`ms_figure`] otherwise.
fn percentile_fields(
    entry: &StatsEntry,
    value_ms: impl Fn(f64) -> f64,
) -> impl Iterator<Item = String> {
    let has_requests = entry.num_requests > 0;
    PERCENTILES.iter().map(move |&q| {
        if has_requests {
            ms_figure(value_ms(q))
        } else {
            "N/A".to_owned()
        }
    })
}

/// A response time in ms with the precision the histogram has: whole ms
/// from 10 ms up, two significant digits below (`0.18`, `3.5`, `0.042`),
/// trailing zeros dropped (`2`, not `2.0`). Shared by the CSV files and the
/// console tables, so both say the same.
pub fn ms_figure(ms: f64) -> String {
    if !ms.is_finite() || ms <= 0.0 {
        return "0".to_owned();
    }
    if ms >= 9.95 {
        return format!("{}", ms.round() as u64);
    }
    // Digits after the point for two significant ones; below 1 us the
    // histogram holds nothing finer, so three decimals at most.
    let decimals = (1 - ms.log10().floor() as i32).clamp(1, 3) as usize;
    let text = format!("{ms:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() { "0" } else { text }.to_owned()
}

/// Unix ms as `YYYY-MM-DDTHH:MM:SSZ` (UTC, second precision).
pub fn utc_timestamp(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day);
/// Howard Hinnant's `civil_from_days`, restricted to non-negative days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Accumulates CSV records; quoting (commas, quotes, newlines) is the `csv`
/// crate's job.
struct Rows {
    writer: ::csv::Writer<Vec<u8>>,
}

impl Rows {
    fn new() -> Self {
        let writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::Any(b'\n'))
            .flexible(true)
            .from_writer(Vec::new());
        Self { writer }
    }

    fn with_header(header: &str) -> Self {
        let mut rows = Self::new();
        rows.push(&header.split(',').collect::<Vec<_>>());
        rows
    }

    fn push<S: AsRef<[u8]>>(&mut self, fields: &[S]) {
        // Writing into a Vec cannot fail.
        let _ = self.writer.write_record(fields);
    }

    fn finish(self) -> String {
        let bytes = self.writer.into_inner().unwrap_or_default();
        // Every field came from a &str, so the bytes are UTF-8.
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }
}
