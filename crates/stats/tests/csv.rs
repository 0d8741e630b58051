//! Tests of the Locust-compatible CSV files: exact headers (copied from
//! Locust's files), `N/A` percentiles, the Aggregated row last, UTC times,
//! and quoting of awkward names.

use stats::csv::{
    STATS_HISTORY_HEADER, exceptions_csv, failures_csv, ms_figure, stats_csv, stats_history_rows,
    utc_timestamp,
};
use stats::{RequestStats, Sample};

/// 2026-11-23T08:54:30Z.
const T0: u64 = 1_795_424_070_000;

const LOCUST_STATS_HEADER: &str = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%";
const LOCUST_HISTORY_HEADER: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size";
const LOCUST_FAILURES_HEADER: &str = "Method,Name,Error,Occurrences,First Seen,Last Seen";
const LOCUST_EXCEPTIONS_HEADER: &str = "Count,Message,Traceback,Nodes";

fn sample<'a>(method: &'a str, name: &'a str, us: u64, error: Option<&'a str>) -> Sample<'a> {
    Sample {
        method,
        name,
        response_time_us: us,
        due_latency_us: None,
        content_length: 1000,
        error,
    }
}

fn parse(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn headers_are_locusts() {
    let empty = RequestStats::new(T0);
    assert_eq!(
        stats_csv(&empty, T0).lines().next(),
        Some(LOCUST_STATS_HEADER)
    );
    assert_eq!(STATS_HISTORY_HEADER, LOCUST_HISTORY_HEADER);
    assert_eq!(failures_csv(&empty), format!("{LOCUST_FAILURES_HEADER}\n"));
    assert_eq!(
        exceptions_csv(&empty),
        format!("{LOCUST_EXCEPTIONS_HEADER}\n")
    );
}

#[test]
fn empty_stats_have_only_an_aggregated_row_with_na_percentiles() {
    let csv = stats_csv(&RequestStats::new(T0), T0 + 1000);
    assert_eq!(
        csv,
        format!(
            "{LOCUST_STATS_HEADER}\n,Aggregated,0,0,0,0,0,0,0,0,0{}\n",
            ",N/A".repeat(11)
        )
    );
}

#[test]
fn stats_rows_then_aggregated_last() {
    let mut stats = RequestStats::new(T0);
    for i in 1..=100u64 {
        stats.record(&sample("GET", "/b", i * 1000, None), T0 + i * 10);
    }
    stats.record(&sample("POST", "/a", 4000, Some("HTTP 500")), T0);
    let rows = parse(&stats_csv(&stats, T0 + 10_000));
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1][..4], ["POST", "/a", "1", "1"]);
    assert_eq!(rows[2][..4], ["GET", "/b", "100", "0"]);
    assert_eq!(rows[3][..4], ["", "Aggregated", "101", "1"]);
    let b = &rows[2];
    assert_eq!(b[4], "50"); // median, whole ms
    assert_eq!(b[5], "50.5"); // average
    assert_eq!(b[6], "1"); // min
    assert_eq!(b[7], "100"); // max
    assert_eq!(b[8], "1000"); // average content size
    assert_eq!(b[9], "100"); // requests/s: 100 up to the last request at 1 s
    assert_eq!(b[10], "0");
    let percentiles: Vec<&str> = b[11..].iter().map(String::as_str).collect();
    assert_eq!(
        percentiles,
        [
            "50", "66", "75", "80", "90", "95", "98", "99", "100", "100", "100"
        ]
    );
    assert_eq!(rows[1][10], "1"); // failures/s (at least a second, as Locust)
    assert!(rows.iter().all(|r| r.len() == 22));
}

#[test]
fn fast_responses_keep_two_significant_digits() {
    assert_eq!(ms_figure(0.0), "0");
    assert_eq!(ms_figure(0.183), "0.18");
    assert_eq!(ms_figure(0.0421), "0.042");
    assert_eq!(ms_figure(3.46), "3.5");
    assert_eq!(ms_figure(2.0), "2");
    assert_eq!(ms_figure(9.97), "10");
    assert_eq!(ms_figure(123.4), "123");
    // Against a fast target the median and percentiles are not all 0.
    let mut stats = RequestStats::new(T0);
    for us in [150, 180, 200, 220, 250] {
        stats.record(&sample("GET", "/fast", us, None), T0);
    }
    let rows = parse(&stats_csv(&stats, T0 + 1000));
    let fast = &rows[1];
    let median: f64 = fast[4].parse().unwrap();
    assert!((0.19..=0.21).contains(&median), "median {}", fast[4]);
    let p100: f64 = fast[21].parse().unwrap();
    assert!((0.24..=0.26).contains(&p100), "p100 {}", fast[21]);
}

#[test]
fn awkward_names_are_quoted() {
    let mut stats = RequestStats::new(T0);
    let name = "/search?q=a,b \"c\"\nnext";
    stats.record(&sample("GET", name, 1000, Some("bad, \"very\" bad")), T0);
    stats.record_exception("x, y", "line 1\nline \"2\"", "w1", T0);
    stats.record_exception("x, y", "line 1\nline \"2\"", "w0", T0);
    let rows = parse(&stats_csv(&stats, T0));
    assert_eq!(rows[1][1], name);
    assert!(stats_csv(&stats, T0).contains("\"/search?q=a,b \"\"c\"\"\nnext\""));
    let rows = parse(&failures_csv(&stats));
    assert_eq!(rows[1][..4], ["GET", name, "bad, \"very\" bad", "1"]);
    let rows = parse(&exceptions_csv(&stats));
    assert_eq!(rows[1], ["2", "x, y", "line 1\nline \"2\"", "w0, w1"]);
}

#[test]
fn failures_have_utc_first_and_last_seen() {
    let mut stats = RequestStats::new(T0);
    stats.record(&sample("GET", "/", 1, Some("timeout")), T0 + 999);
    stats.record(&sample("GET", "/", 1, Some("timeout")), T0 + 61_000);
    assert_eq!(
        failures_csv(&stats),
        format!(
            "{LOCUST_FAILURES_HEADER}\nGET,/,timeout,2,2026-11-23T08:54:30Z,2026-11-23T08:55:31Z\n"
        )
    );
}

#[test]
fn utc_timestamps_across_calendar_edges() {
    for (unix_s, text) in [
        (0, "1970-01-01T00:00:00Z"),
        (1_795_424_070, "2026-11-23T08:54:30Z"),
        (951_868_799, "2000-02-29T23:59:59Z"),
        (4_107_542_400, "2100-03-01T00:00:00Z"),
        (946_641_600, "1999-12-31T12:00:00Z"),
        (1_709_164_801, "2024-02-29T00:00:01Z"),
    ] {
        assert_eq!(utc_timestamp(unix_s * 1000 + 999), text);
    }
    // Absurd input still formats rather than panicking.
    assert!(utc_timestamp(u64::MAX).ends_with('Z'));
}

#[test]
fn history_rows_without_and_with_full_history() {
    let mut stats = RequestStats::new(T0);
    for k in 0..20u64 {
        stats.record(&sample("GET", "/a", 2000, None), T0 + k * 1000);
        stats.record(&sample("GET", "/b", 8000, Some("e")), T0 + k * 1000);
    }
    let now = T0 + 20_000;
    let rows = parse(&stats_history_rows(&stats, 7, now, false));
    assert_eq!(rows.len(), 1);
    let agg = &rows[0];
    assert_eq!(agg.len(), LOCUST_HISTORY_HEADER.split(',').count());
    assert_eq!(agg[..4], ["1795424090", "7", "", "Aggregated"]);
    assert_eq!(agg[4], "2.000000"); // current RPS, Locust's "%2f"
    assert_eq!(agg[5], "1.000000");
    assert_eq!(agg[17..19], ["40", "20"]);

    let rows = parse(&stats_history_rows(&stats, 7, now, true));
    let names: Vec<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(names, ["/a", "/b", "Aggregated"]);
    assert_eq!(rows[0][4], "1.000000");
    assert_eq!(rows[0][6], "2"); // p50 of /a
    assert_eq!(rows[1][16], "8"); // p100 of /b
}

#[test]
fn history_rows_of_an_idle_run_say_na() {
    let rows = parse(&stats_history_rows(&RequestStats::new(T0), 0, T0, true));
    assert_eq!(rows.len(), 1);
    assert!(rows[0][6..17].iter().all(|p| p == "N/A"));
    assert_eq!(rows[0][17..], ["0", "0", "0", "0", "0", "0", "0"]);
}
