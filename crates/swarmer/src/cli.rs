//! The command line: Locust's flags where the concept is the same, each
//! also an environment variable `SWARMER_<FLAG>` and a key of the optional
//! config file (`swarmer.toml`, or `--config FILE`).
//!
//! Precedence is command line, then environment, then config file. The
//! config file is applied by turning its keys into arguments placed before
//! the real ones (clap lets a later occurrence win), skipping keys whose
//! environment variable is set.

mod autoscale;
mod http;
mod verdict_flags;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
pub use autoscale::AutoscaleArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};
pub use verdict_flags::VerdictArgs;

mod history;
pub use history::{BaselineSpec, HistoryAction, HistoryArgs, HistoryCommand};

#[derive(Debug, Parser)]
#[command(
    name = "swarmer",
    version,
    about = "Distributed load testing with Lua-scripted users",
    args_conflicts_with_subcommands = true,
    // Written out: clap's generated usage after a typo lists the flag it
    // suggests as if it were required ("Usage: swarmer --users <USERS>").
    override_usage = "swarmer [OPTIONS] -f SCRIPT [USER_TYPES]...\n       swarmer <COMMAND>"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten, next_help_heading = "Common")]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a small HTTP application to load-test (for the quickstart and tests).
    DemoTarget {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1", env = "SWARMER_DEMO_BIND")]
        bind: String,
        /// Port to listen on (0: any free one, printed at start).
        #[arg(long, default_value_t = 8080, env = "SWARMER_DEMO_PORT")]
        port: u16,
    },
    /// List what a script declares without running it: user types, tasks,
    /// weights, tags, waits, the load shape or arrivals, extensions.
    Inspect {
        /// The Lua script to list.
        #[arg(short = 'f', long = "script", visible_alias = "locustfile")]
        script: PathBuf,
        /// Print the listing as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read the run history: list, show ID, compare A B.
    History(HistoryCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScalerKind {
    Kubernetes,
    Local,
}

#[derive(Debug, Args)]
// Help headings: Common (the default for this struct), Load profile,
// Output, HTTP, Limits; the flattened structs bring Distributed,
// Kubernetes and Web UI.
pub struct RunArgs {
    /// The Lua script that defines the users (a worker may leave it out: the master sends it).
    #[arg(
        short = 'f',
        long = "script",
        visible_alias = "locustfile",
        env = "SWARMER_SCRIPT"
    )]
    pub script: Option<PathBuf>,
    /// User types to run (default: all the script defines).
    #[arg(value_name = "USER_TYPES")]
    pub user_types_pos: Vec<String>,
    /// User types to run, comma-separated (the same as the positional ones).
    #[arg(long = "user-types", env = "SWARMER_USER_TYPES", value_delimiter = ',')]
    pub user_types: Vec<String>,
    /// Peak number of concurrent users.
    #[arg(
        short = 'u',
        long,
        env = "SWARMER_USERS",
        allow_negative_numbers = true
    )]
    pub users: Option<u32>,
    /// The most users a run may ask for, here or in the web UI and API.
    #[arg(long, env = "SWARMER_MAX_USERS", help_heading = "Limits", default_value_t = master::validate::DEFAULT_MAX_USERS)]
    pub max_users: u32,
    /// Users started per second (over the whole run, not per core; at most 100000).
    #[arg(
        short = 'r',
        long,
        env = "SWARMER_SPAWN_RATE",
        allow_negative_numbers = true
    )]
    pub spawn_rate: Option<f64>,
    /// Stop after this long: 30s, 5m, 1h30m. Without it, run until Ctrl-C.
    #[arg(short = 't', long, env = "SWARMER_RUN_TIME", value_parser = parse_duration)]
    pub run_time: Option<Duration>,
    /// Users over time instead of -u/-r/-t: DURATION:USERS stages, each a
    /// linear ramp from the previous one's users, e.g. 30s:100,2m:100,30s:0
    /// (up to 100 users in 30 s, hold 2 min, down to 0); the run ends with them.
    #[arg(
        long,
        env = "SWARMER_STAGES",
        value_name = "STAGES",
        help_heading = "Load profile",
        allow_hyphen_values = true
    )]
    pub stages: Option<String>,
    /// Run a fixed count (-u/-r/-t) even though the script declares a
    /// load shape (`swarmer.shape`), which it otherwise follows.
    #[arg(long, env = "SWARMER_NO_SHAPE", help_heading = "Load profile")]
    pub no_shape: bool,
    /// Host to load-test, e.g. http://127.0.0.1:8080 (overrides the script's).
    #[arg(short = 'H', long, env = "SWARMER_HOST")]
    pub host: Option<String>,
    /// Run without the web UI and exit when the run ends.
    #[arg(long, env = "SWARMER_HEADLESS")]
    pub headless: bool,
    /// With the web UI, start a run at once (with -u, -r, -t).
    #[arg(long, env = "SWARMER_AUTOSTART", help_heading = "Web UI")]
    pub autostart: bool,
    /// Write Locust's CSV files: PREFIX_stats.csv, PREFIX_failures.csv,
    /// PREFIX_exceptions.csv at the end and PREFIX_stats_history.csv as
    /// the run goes.
    #[arg(
        long,
        env = "SWARMER_CSV",
        value_name = "PREFIX",
        help_heading = "Output"
    )]
    pub csv: Option<String>,
    /// Write every entry to the _stats_history.csv, not only the aggregated
    /// row; with the web UI, serve those rows at /stats/requests_full_history/csv.
    #[arg(long, env = "SWARMER_CSV_FULL_HISTORY", help_heading = "Output")]
    pub csv_full_history: bool,
    /// Write a self-contained HTML report here at the end.
    #[arg(long, env = "SWARMER_HTML", help_heading = "Output")]
    pub html: Option<PathBuf>,
    /// Print the final statistics as JSON.
    #[arg(long, env = "SWARMER_JSON", help_heading = "Output")]
    pub json: bool,
    /// Print nothing while the run goes (no live progress line), only the
    /// summary at the end.
    #[arg(long, env = "SWARMER_ONLY_SUMMARY", help_heading = "Output")]
    pub only_summary: bool,
    /// How long users may take to finish their task when stopping.
    #[arg(long, env = "SWARMER_STOP_TIMEOUT", help_heading = "Limits", default_value = "10s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// Exit code when any request or task failed (default 1). With
    /// thresholds, failures count only when this is given.
    #[arg(long, env = "SWARMER_EXIT_CODE_ON_ERROR", help_heading = "Output")]
    pub exit_code_on_error: Option<i32>,
    /// Only run tasks with one of these tags.
    #[arg(short = 'T', long, env = "SWARMER_TAGS", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Never run tasks with one of these tags.
    #[arg(short = 'E', long, env = "SWARMER_EXCLUDE_TAGS", value_delimiter = ',')]
    pub exclude_tags: Vec<String>,
    /// Reset statistics once all users have spawned.
    #[arg(long, env = "SWARMER_RESET_STATS", help_heading = "Output")]
    pub reset_stats: bool,
    /// Accept any TLS certificate from the target (test servers only).
    #[arg(long, env = "SWARMER_INSECURE", help_heading = "HTTP")]
    pub insecure: bool,
    /// Longest a task may run Lua code without yielding; it is then
    /// interrupted and counted as an exception, and the user goes on.
    #[arg(long, env = "SWARMER_TASK_TIME_LIMIT", help_heading = "Limits", default_value = "5s", value_parser = parse_limit)]
    pub task_time_limit: Duration,
    /// Longest loading the script may take before the run fails.
    #[arg(long, env = "SWARMER_LOAD_TIME_LIMIT", help_heading = "Limits", default_value = "30s", value_parser = parse_limit)]
    pub load_time_limit: Duration,
    /// Most memory each core's Lua state may allocate, in MB (0: no limit).
    #[arg(
        long,
        env = "SWARMER_LUA_MEMORY_LIMIT",
        default_value_t = 1024,
        help_heading = "Limits"
    )]
    pub lua_memory_limit: u64,
    /// Start the bundled demo target beside the run (on a free loopback port)
    /// and aim at it unless -H says otherwise: a load test with no setup.
    #[arg(long, env = "SWARMER_DEMO_TARGET")]
    pub demo_target: bool,
    /// Threads running users; 0 means one per CPU core.
    #[arg(
        long,
        env = "SWARMER_CORES",
        default_value_t = 0,
        help_heading = "Limits"
    )]
    pub cores: usize,

    #[command(flatten, next_help_heading = "Distributed")]
    pub cluster: ClusterArgs,
    #[command(flatten, next_help_heading = "Autoscaling")]
    pub autoscale: AutoscaleArgs,
    #[command(flatten, next_help_heading = "Web UI")]
    pub web: WebArgs,
    #[command(flatten, next_help_heading = "Verdict")]
    pub verdict: VerdictArgs,
    #[command(flatten, next_help_heading = "HTTP")]
    pub http: http::HttpArgs,
    #[command(flatten, next_help_heading = "Run history")]
    pub history: HistoryArgs,

    /// Log level: error, warn, info, debug, trace. Default: warn for a
    /// headless run, standalone or --master (its progress line and summary
    /// say enough), info otherwise.
    #[arg(short = 'L', long, env = "SWARMER_LOGLEVEL", help_heading = "Common")]
    pub loglevel: Option<String>,
    /// A TOML file of defaults (keys are the long flag names).
    #[arg(long, env = "SWARMER_CONFIG", help_heading = "Common")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Run as a master that workers join.
    #[arg(long, env = "SWARMER_MASTER", conflicts_with = "worker")]
    pub master: bool,
    /// Where the master listens for workers. Default: all interfaces with
    /// --cluster-token (or --open-cluster), else 127.0.0.1 only.
    #[arg(long, env = "SWARMER_MASTER_BIND_HOST")]
    pub master_bind_host: Option<String>,
    /// Port the master listens on for workers.
    #[arg(long, env = "SWARMER_MASTER_BIND_PORT", default_value_t = 5557)]
    pub master_bind_port: u16,
    /// Run as a worker of a master.
    #[arg(long, env = "SWARMER_WORKER")]
    pub worker: bool,
    /// The master a worker joins: its host name or address.
    #[arg(long, env = "SWARMER_MASTER_HOST", default_value = "127.0.0.1")]
    pub master_host: String,
    /// The master's worker port (its --master-bind-port).
    #[arg(long, env = "SWARMER_MASTER_PORT", default_value_t = 5557)]
    pub master_port: u16,
    /// Headless master: wait for this many workers before starting.
    #[arg(long, env = "SWARMER_EXPECT_WORKERS", default_value_t = 1)]
    pub expect_workers: usize,
    /// Give up waiting for --expect-workers after this long.
    #[arg(long, env = "SWARMER_EXPECT_WORKERS_MAX_WAIT", value_parser = parse_duration)]
    pub expect_workers_max_wait: Option<Duration>,
    /// This worker's id (default: host name plus a random suffix).
    #[arg(long, env = "SWARMER_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Shared secret workers must present to join.
    #[arg(long, env = "SWARMER_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
    /// Accept workers beyond loopback without --cluster-token (a trusted
    /// network only: any process that connects gets the script).
    #[arg(long, env = "SWARMER_OPEN_CLUSTER")]
    pub open_cluster: bool,
    /// How often master and workers tell each other they are alive; three
    /// missed in a row and the other side counts as lost.
    #[arg(long, env = "SWARMER_HEARTBEAT_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,
    /// How often workers send their statistics to the master.
    #[arg(long, env = "SWARMER_REPORT_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub report_interval: Duration,
    /// What changes the number of workers from the UI.
    #[arg(long, env = "SWARMER_SCALER", value_enum)]
    pub scaler: Option<ScalerKind>,
    /// The worker Deployment the Kubernetes scaler scales.
    #[arg(
        long,
        env = "SWARMER_WORKER_DEPLOYMENT",
        default_value = "swarmer-worker",
        help_heading = "Kubernetes"
    )]
    pub worker_deployment: String,
    /// Namespace of the worker Deployment (default: the pod's own).
    #[arg(long, env = "SWARMER_NAMESPACE", help_heading = "Kubernetes")]
    pub namespace: Option<String>,
    /// The largest worker count the scale form accepts.
    #[arg(long, env = "SWARMER_MAX_WORKERS", default_value_t = 100)]
    pub max_workers: u32,
    /// With --scaler local: start this many worker processes.
    #[arg(long, env = "SWARMER_WORKERS")]
    pub workers: Option<u32>,
}

#[derive(Debug, Args)]
pub struct WebArgs {
    /// Address the web UI listens on.
    #[arg(long, env = "SWARMER_WEB_HOST", default_value = "0.0.0.0")]
    pub web_host: String,
    /// Port the web UI listens on (0: any free one, printed at start).
    #[arg(long, env = "SWARMER_WEB_PORT", default_value_t = 8089)]
    pub web_port: u16,
    /// Serve the UI under this prefix, e.g. /swarmer (behind an ingress).
    #[arg(long, env = "SWARMER_WEB_BASE_PATH", default_value = "")]
    pub web_base_path: String,
    /// Protect the UI and API with HTTP Basic auth: USER:PASSWORD.
    #[arg(long, env = "SWARMER_WEB_AUTH", hide_env_values = true)]
    pub web_auth: Option<String>,
    /// A bearer token accepted by the UI and API.
    #[arg(long, env = "SWARMER_WEB_TOKEN", hide_env_values = true)]
    pub web_token: Option<String>,
    /// Without auth, the host names the UI answers to besides IP addresses,
    /// localhost and --web-host (comma-separated; "*.example.com" for
    /// subdomains; "*" for any). Guards against DNS rebinding.
    #[arg(long, env = "SWARMER_WEB_ALLOWED_HOSTS", value_delimiter = ',')]
    pub web_allowed_hosts: Vec<String>,
}

impl RunArgs {
    pub fn selected_user_types(&self) -> Vec<String> {
        let mut all = self.user_types_pos.clone();
        all.extend(self.user_types.iter().cloned());
        all
    }
}

/// Parses `30s`, `5m`, `1h30m`, or plain seconds (`90`), as Locust does.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}; expected a duration such as 30s, 5m or 1h30m"))
}

/// A time limit: a duration, never zero (that would interrupt everything).
fn parse_limit(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

/// The real arguments with the config file's defaults placed in front.
pub fn args_with_config() -> anyhow::Result<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    let explicit =
        config_path_from(&args).or_else(|| std::env::var("SWARMER_CONFIG").ok().map(PathBuf::from));
    let path = match explicit {
        Some(p) => Some(p),
        None => Some(PathBuf::from("swarmer.toml")).filter(|p| p.exists()),
    };
    let Some(path) = path else { return Ok(args) };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
    let mut out = vec![args[0].clone()];
    out.extend(config_args(&table, &path)?);
    out.extend(args.into_iter().skip(1));
    Ok(out)
}

fn config_path_from(args: &[String]) -> Option<PathBuf> {
    let pos = args
        .iter()
        .position(|a| a == "--config" || a.starts_with("--config="))?;
    match args[pos].strip_prefix("--config=") {
        Some(v) => Some(PathBuf::from(v)),
        None => args.get(pos + 1).map(PathBuf::from),
    }
}

fn config_args(table: &toml::Table, path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        let env = format!("SWARMER_{}", flag.to_uppercase().replace('-', "_"));
        if std::env::var_os(&env).is_some() || flag == "config" {
            continue;
        }
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for v in values {
            match v {
                toml::Value::Boolean(true) => out.push(format!("--{flag}")),
                toml::Value::Boolean(false) => {}
                toml::Value::String(s) => out.push(format!("--{flag}={s}")),
                toml::Value::Integer(i) => out.push(format!("--{flag}={i}")),
                toml::Value::Float(f) => out.push(format!("--{flag}={f}")),
                _ => bail!(
                    "{}: the value of {key:?} must be a string, number, boolean or a list of them",
                    path.display()
                ),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_locust() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").unwrap_err().contains("30s"));
    }

    #[test]
    fn config_keys_become_flags() {
        let table: toml::Table =
            "users = 5\nheadless = true\ntags = [\"a\", \"b\"]\nhost = \"http://x\""
                .parse()
                .unwrap();
        let args = config_args(&table, std::path::Path::new("t.toml")).unwrap();
        assert!(args.contains(&"--users=5".to_string()));
        assert!(args.contains(&"--headless".to_string()));
        assert!(args.contains(&"--tags=a".to_string()) && args.contains(&"--tags=b".to_string()));
        assert!(args.contains(&"--host=http://x".to_string()));
    }
}
