//! The run's verdict, resolved once: thresholds from `--threshold` (and
//! its environment variable and config-file key) followed by the script's
//! `swarmer.thresholds`, each parsed so a bad one is exit 2 naming the
//! expression and position; and whether crossing one aborts the run.
//! (`--junit` is an output file: see `outputs`.)

use std::time::Duration;

use script::ScriptInfo;
use verdict::Threshold;

use super::{UsageError, usage};
use crate::cli::VerdictArgs;

/// What judges a run, and whether a crossed threshold ends it.
#[derive(Debug, Clone, Default)]
pub struct VerdictConfig {
    /// The command line's, then the script's.
    pub thresholds: Vec<Threshold>,
    /// With `--threshold-abort`: end the run once a threshold is crossed
    /// this long after it started.
    pub abort_after: Option<Duration>,
}

pub fn resolve(args: &VerdictArgs, info: &ScriptInfo) -> Result<VerdictConfig, UsageError> {
    let mut thresholds = Vec::new();
    for text in &args.thresholds {
        let t = Threshold::parse(text).map_err(|e| usage(format!("--threshold: {e}")))?;
        thresholds.push(t);
    }
    thresholds.extend(info.thresholds.iter().cloned());
    if args.threshold_abort && thresholds.is_empty() {
        return Err(usage(
            "--threshold-abort needs a threshold to watch: pass --threshold EXPR \
             or declare swarmer.thresholds in the script",
        ));
    }
    Ok(VerdictConfig {
        thresholds,
        abort_after: args.threshold_abort.then_some(args.threshold_grace),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(thresholds: &[&str], abort: bool) -> VerdictArgs {
        VerdictArgs {
            thresholds: thresholds.iter().map(|s| s.to_string()).collect(),
            threshold_abort: abort,
            threshold_grace: Duration::from_secs(3),
            junit: None,
        }
    }

    fn info(thresholds: &[&str]) -> ScriptInfo {
        ScriptInfo {
            user_types: vec![],
            shape: None,
            thresholds: thresholds
                .iter()
                .map(|t| Threshold::parse(t).unwrap())
                .collect(),
        }
    }

    #[test]
    fn the_command_line_comes_first_then_the_script() {
        let v = resolve(&args(&["p95 < 1s"], true), &info(&["failures == 0"])).unwrap();
        let exprs: Vec<&str> = v.thresholds.iter().map(|t| t.expr.as_str()).collect();
        assert_eq!(exprs, ["p95 < 1s", "failures == 0"]);
        assert_eq!(v.abort_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn bad_expressions_and_an_abort_with_nothing_to_watch_are_usage_errors() {
        let e = resolve(&args(&["p95 < 1 parsec"], false), &info(&[])).unwrap_err();
        assert!(
            e.0.starts_with("--threshold: threshold \"p95 < 1 parsec\": at position 9:"),
            "{e}"
        );
        let e = resolve(&args(&[], true), &info(&[])).unwrap_err();
        assert!(e.0.contains("--threshold-abort needs a threshold"), "{e}");
        assert!(resolve(&args(&[], false), &info(&[])).is_ok());
    }
}
