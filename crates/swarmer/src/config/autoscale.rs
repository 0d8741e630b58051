//! `--autoscale MIN:MAX` and its companion flags resolved into the master's
//! [`Policy`], refused (exit 2, naming the flag and value) before anything
//! starts when they cannot work: MIN above MAX, MAX above `--max-workers`
//! (the most any scaler is asked for), no scaler, marks in the wrong order.

use std::time::Duration;

use master::autoscale::Policy;

use super::{UsageError, usage};
use crate::cli::{AutoscaleArgs, ScalerKind};

/// The policy, or `None` without `--autoscale`.
pub fn policy(
    args: &AutoscaleArgs,
    scaler: Option<ScalerKind>,
    max_workers: u32,
) -> Result<Option<Policy>, UsageError> {
    let Some(text) = &args.autoscale else {
        return Ok(None);
    };
    let flag = format!("--autoscale {text}");
    let (min, max) = range(text).ok_or_else(|| {
        usage(format!(
            "{flag}: expected MIN:MAX, two whole numbers of workers such as 2:10"
        ))
    })?;
    if min > max {
        return Err(usage(format!(
            "{flag}: MIN ({min}) is more than MAX ({max})"
        )));
    }
    if max == 0 {
        return Err(usage(format!("{flag}: MAX must be at least 1")));
    }
    if max > max_workers {
        return Err(usage(format!(
            "{flag}: MAX ({max}) is more than --max-workers {max_workers}, the most the scaler may be asked for"
        )));
    }
    if scaler.is_none() {
        return Err(usage(format!(
            "{flag} needs a scaler to add workers: --scaler local or --scaler kubernetes"
        )));
    }
    let (low, target, high) = (
        args.autoscale_low,
        args.autoscale_target,
        args.autoscale_high,
    );
    if !(low < target && target < high) {
        return Err(usage(format!(
            "--autoscale-low ({low}%) < --autoscale-target ({target}%) < --autoscale-high ({high}%) must hold"
        )));
    }
    let window = args.autoscale_window;
    if window < Duration::from_millis(100) {
        return Err(usage(format!(
            "--autoscale-window {}: must be at least 100ms",
            humantime::format_duration(window)
        )));
    }
    let low_window = args.autoscale_low_window.unwrap_or(window * 4);
    let mut policy = Policy::new(min, max);
    policy.high_pct = high;
    policy.low_pct = low;
    policy.target_pct = target;
    policy.window_ms = window.as_millis() as u64;
    policy.low_window_ms = low_window.as_millis().max(1) as u64;
    Ok(Some(policy))
}

fn range(text: &str) -> Option<(u32, u32)> {
    let (min, max) = text.split_once(':')?;
    Some((min.trim().parse().ok()?, max.trim().parse().ok()?))
}
