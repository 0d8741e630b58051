//! The outcome of a headless run: the exit code it returns and the words
//! that end its summary ("17 of 625 requests failed → exit code 1"). One
//! place decides the code, so the words always follow the code returned.
//!
//! The rule: when the run has checks (thresholds, regressions), they alone
//! decide (0 or 3), and request failures count only through them unless
//! `--exit-code-on-error` was given. Without checks, Locust's rule: any
//! failure or task error fails the run. A run with no request at all
//! proves nothing, so without checks it never passes.

use stats::RequestStats;
use verdict::{EXIT_CROSSED, EXIT_PASSED, Verdict};

/// What the run's statistics and checks say, and the exit code that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub requests: u64,
    pub failed_requests: u64,
    /// Errors raised by tasks (Lua errors), all occurrences.
    pub task_errors: u64,
    /// `(crossed, all)` checks, when the run had any.
    pub checks: Option<(usize, usize)>,
    /// The run was ended early by `--threshold-abort`.
    pub aborted: bool,
    pub exit_code: i32,
}

impl Outcome {
    pub fn judge(
        stats: &RequestStats,
        verdict: &Verdict,
        exit_code_on_error: Option<i32>,
        aborted: bool,
    ) -> Outcome {
        let requests = stats.num_requests();
        let failed_requests = stats.num_failures();
        let task_errors = stats.exceptions().map(|e| e.count).sum();
        let failed = failed_requests > 0 || task_errors > 0;
        let exit_code = match verdict.exit_code() {
            Some(code) if aborted || code != EXIT_PASSED => EXIT_CROSSED,
            Some(code) => match exit_code_on_error {
                Some(on_error) if failed => on_error,
                _ => code,
            },
            None => {
                let on_error = exit_code_on_error.unwrap_or(1);
                if requests == 0 {
                    on_error.max(1)
                } else if failed {
                    on_error
                } else {
                    0
                }
            }
        };
        Outcome {
            requests,
            failed_requests,
            task_errors,
            checks: (!verdict.is_empty())
                .then(|| (verdict.crossed().count(), verdict.checks.len())),
            aborted,
            exit_code,
        }
    }

    /// One line: what failed, then the exit code actually returned.
    pub fn words(&self) -> String {
        let requests = match (self.requests, self.failed_requests, self.task_errors) {
            (0, _, _) => "no request completed".to_string(),
            (n, 0, 0) => format!("all {n} {} succeeded", plural(n, "request")),
            (n, 0, e) => format!(
                "{n} {} succeeded but tasks raised {e} {}",
                plural(n, "request"),
                plural(e, "error")
            ),
            (n, f, 0) => format!("{f} of {n} {} failed", plural(n, "request")),
            (n, f, e) => format!(
                "{f} of {n} {} failed and tasks raised {e} {}",
                plural(n, "request"),
                plural(e, "error")
            ),
        };
        let checks = match self.checks {
            None => String::new(),
            // The final figures may have recovered; the run still failed.
            Some((crossed, all)) if self.aborted => format!(
                "; aborted on a crossed threshold ({crossed} of {all} {} crossed at the end)",
                plural(all as u64, "check")
            ),
            Some((0, all)) => format!("; all {all} {} held", plural(all as u64, "check")),
            Some((crossed, all)) => {
                format!(
                    "; {crossed} of {all} {} crossed",
                    plural(all as u64, "check")
                )
            }
        };
        format!("{requests}{checks} → exit code {}", self.exit_code)
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict::{Check, CheckKind};

    fn outcome(
        requests: u64,
        failed: u64,
        errors: u64,
        checks: Option<(usize, usize)>,
        code: i32,
    ) -> String {
        Outcome {
            requests,
            failed_requests: failed,
            task_errors: errors,
            checks,
            aborted: false,
            exit_code: code,
        }
        .words()
    }

    #[test]
    fn words_name_the_failures_the_checks_and_the_code() {
        assert_eq!(
            outcome(625, 17, 0, None, 1),
            "17 of 625 requests failed → exit code 1"
        );
        assert_eq!(
            outcome(1, 0, 0, None, 0),
            "all 1 request succeeded → exit code 0"
        );
        assert_eq!(
            outcome(9, 0, 2, None, 1),
            "9 requests succeeded but tasks raised 2 errors → exit code 1"
        );
        assert_eq!(
            outcome(0, 0, 0, None, 1),
            "no request completed → exit code 1"
        );
        assert_eq!(
            outcome(625, 17, 0, Some((0, 2)), 0),
            "17 of 625 requests failed; all 2 checks held → exit code 0"
        );
        assert_eq!(
            outcome(625, 0, 0, Some((1, 3)), 3),
            "all 625 requests succeeded; 1 of 3 checks crossed → exit code 3"
        );
    }

    fn check(ok: bool) -> Check {
        Check {
            kind: CheckKind::Threshold,
            expr: "p95 < 300ms".into(),
            scope: "Aggregated".into(),
            observed: Some(if ok { 100.0 } else { 500.0 }),
            op: "<".into(),
            limit: 300.0,
            unit: "ms".into(),
            ok,
        }
    }

    #[test]
    fn the_code_follows_the_statistics_and_the_checks() {
        let none = Verdict::default();
        let mut stats = RequestStats::new(0);
        let judge = |s: &RequestStats, v: &Verdict, on_error, aborted| {
            Outcome::judge(s, v, on_error, aborted).exit_code
        };
        assert_eq!(judge(&stats, &none, Some(0), false), 1, "nothing measured");
        let ok = stats::Sample {
            method: "GET",
            name: "/",
            response_time_us: 100,
            due_latency_us: None,
            content_length: 0,
            error: None,
        };
        stats.record(&ok, 0);
        assert_eq!(judge(&stats, &none, Some(7), false), 0);
        let failed = stats::Sample {
            error: Some("HTTP 500"),
            ..ok
        };
        stats.record(&failed, 0);
        assert_eq!(judge(&stats, &none, Some(7), false), 7);
        assert_eq!(judge(&stats, &none, None, false), 1);
        // With checks, they alone decide unless --exit-code-on-error is given.
        let held = Verdict {
            checks: vec![check(true)],
        };
        let crossed = Verdict {
            checks: vec![check(true), check(false)],
        };
        assert_eq!(judge(&stats, &held, None, false), 0);
        assert_eq!(judge(&stats, &held, Some(5), false), 5);
        assert_eq!(
            judge(&stats, &held, None, true),
            3,
            "aborted on a threshold"
        );
        assert_eq!(judge(&stats, &crossed, Some(5), false), 3);
        let o = Outcome::judge(&stats, &crossed, None, false);
        assert_eq!(o.checks, Some((1, 2)));
    }
}
