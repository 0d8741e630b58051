//! The flags of autoscaling on generator saturation (`--autoscale MIN:MAX`
//! and its marks and windows), in a struct of their own flattened into the
//! run's flags; `config::autoscale` turns them into a checked policy.

use std::time::Duration;

use clap::Args;

use super::parse_duration;

#[derive(Debug, Args)]
pub struct AutoscaleArgs {
    /// With --scaler: keep between MIN and MAX workers, adding workers
    /// while their CPU stays above --autoscale-high during a run and going
    /// back to MIN when it ends, e.g. 2:10.
    #[arg(long, env = "SWARMER_AUTOSCALE", value_name = "MIN:MAX")]
    pub autoscale: Option<String>,
    /// The workers' average CPU (share of their cores) above which
    /// workers are added, once it has lasted --autoscale-window.
    #[arg(
        long,
        env = "SWARMER_AUTOSCALE_HIGH",
        value_name = "PERCENT",
        default_value = "80%",
        value_parser = parse_percent
    )]
    pub autoscale_high: f32,
    /// The average CPU below which, for --autoscale-low-window, workers are
    /// removed during a run.
    #[arg(
        long,
        env = "SWARMER_AUTOSCALE_LOW",
        value_name = "PERCENT",
        default_value = "30%",
        value_parser = parse_percent
    )]
    pub autoscale_low: f32,
    /// The average CPU a change aims for (enough workers to bring it there).
    #[arg(
        long,
        env = "SWARMER_AUTOSCALE_TARGET",
        value_name = "PERCENT",
        default_value = "60%",
        value_parser = parse_percent
    )]
    pub autoscale_target: f32,
    /// How long the CPU must stay above the high mark before workers are added.
    #[arg(
        long,
        env = "SWARMER_AUTOSCALE_WINDOW",
        value_name = "DURATION",
        default_value = "15s",
        value_parser = parse_duration
    )]
    pub autoscale_window: Duration,
    /// How long it must stay below the low mark before workers are removed
    /// during a run (default: four windows).
    #[arg(
        long,
        env = "SWARMER_AUTOSCALE_LOW_WINDOW",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub autoscale_low_window: Option<Duration>,
}

/// `80%` or `80`: a percentage from 1 to 100.
fn parse_percent(text: &str) -> Result<f32, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f32>() {
        Ok(p) if (1.0..=100.0).contains(&p) => Ok(p),
        Ok(_) => Err(format!("{text:?} is not between 1% and 100%")),
        Err(_) => Err(format!("{text:?} is not a percentage such as 80%")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("80%"), Ok(80.0));
        assert_eq!(parse_percent("75"), Ok(75.0));
        assert!(
            parse_percent("0%")
                .unwrap_err()
                .contains("between 1% and 100%")
        );
        assert!(parse_percent("high").unwrap_err().contains("80%"));
    }
}
