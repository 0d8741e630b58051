//! The verdict of a headless run: the exit code it returns and the words
//! that end its summary ("17 of 625 requests failed → exit code 1"). Kept
//! apart and small so that another reason to fail (a threshold) adds a
//! field and a clause here, and the words always follow the code returned.

use stats::RequestStats;

/// What the run's statistics say, and the exit code that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub requests: u64,
    pub failed_requests: u64,
    /// Errors raised by tasks (Lua errors), all occurrences.
    pub task_errors: u64,
    pub exit_code: i32,
}

impl Verdict {
    /// A run with no request at all proves nothing, so it never passes,
    /// whatever `--exit-code-on-error` says (0 is raised to 1).
    pub fn judge(stats: &RequestStats, exit_code_on_error: i32) -> Verdict {
        let requests = stats.num_requests();
        let failed_requests = stats.num_failures();
        let task_errors = stats.exceptions().map(|e| e.count).sum();
        let exit_code = if requests == 0 {
            exit_code_on_error.max(1)
        } else if failed_requests > 0 || task_errors > 0 {
            exit_code_on_error
        } else {
            0
        };
        Verdict {
            requests,
            failed_requests,
            task_errors,
            exit_code,
        }
    }

    /// One line: what failed, then the exit code actually returned.
    pub fn words(&self) -> String {
        let what = match (self.requests, self.failed_requests, self.task_errors) {
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
        format!("{what} → exit code {}", self.exit_code)
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

    fn verdict(requests: u64, failed_requests: u64, task_errors: u64, code: i32) -> String {
        Verdict {
            requests,
            failed_requests,
            task_errors,
            exit_code: code,
        }
        .words()
    }

    #[test]
    fn words_name_the_failures_and_the_code() {
        assert_eq!(
            verdict(625, 17, 0, 1),
            "17 of 625 requests failed → exit code 1"
        );
        assert_eq!(verdict(1, 0, 0, 0), "all 1 request succeeded → exit code 0");
        assert_eq!(
            verdict(9, 0, 2, 1),
            "9 requests succeeded but tasks raised 2 errors → exit code 1"
        );
        assert_eq!(verdict(0, 0, 0, 1), "no request completed → exit code 1");
    }

    #[test]
    fn the_code_follows_the_statistics() {
        let mut stats = RequestStats::new(0);
        assert_eq!(Verdict::judge(&stats, 0).exit_code, 1, "nothing measured");
        let ok = stats::Sample {
            method: "GET",
            name: "/",
            response_time_us: 100,
            due_latency_us: None,
            content_length: 0,
            error: None,
        };
        stats.record(&ok, 0);
        assert_eq!(Verdict::judge(&stats, 7).exit_code, 0);
        stats.record(
            &stats::Sample {
                error: Some("HTTP 500"),
                ..ok
            },
            0,
        );
        let v = Verdict::judge(&stats, 7);
        assert_eq!((v.requests, v.failed_requests, v.exit_code), (2, 1, 7));
    }
}
