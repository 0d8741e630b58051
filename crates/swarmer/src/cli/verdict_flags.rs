//! The flags of a run's verdict for CI (thresholds, aborting on them,
//! JUnit), in a struct of their own flattened into the run's flags, so the
//! verdict's options stay together however `--help` is grouped.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse_duration;

#[derive(Debug, Args)]
pub struct VerdictArgs {
    /// A condition the run must meet, e.g. "p95 < 300ms", "fail_ratio < 1%",
    /// "GET /item: p99 < 1s" (repeatable; in SWARMER_THRESHOLDS, separate
    /// several with ';'). With any threshold, they alone decide the exit
    /// code: 0 when all hold, 3 when any is crossed.
    #[arg(
        long = "threshold",
        alias = "thresholds",
        env = "SWARMER_THRESHOLDS",
        value_name = "EXPR",
        value_delimiter = ';',
        allow_hyphen_values = true
    )]
    pub thresholds: Vec<String>,
    /// End the run as soon as a threshold is crossed (after
    /// --threshold-grace); it then ends like a finished run and exits 3.
    #[arg(long, env = "SWARMER_THRESHOLD_ABORT")]
    pub threshold_abort: bool,
    /// With --threshold-abort: how long into the run thresholds may be
    /// crossed before it is aborted (early figures are noisy).
    #[arg(
        long,
        env = "SWARMER_THRESHOLD_GRACE",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_duration
    )]
    pub threshold_grace: Duration,
    /// Write the thresholds' results as JUnit XML (one testcase each).
    #[arg(long, env = "SWARMER_JUNIT", value_name = "FILE")]
    pub junit: Option<PathBuf>,
}
