//! The command line resolved once: the parsed flags (with the environment
//! and the config file already folded in by `cli`) become one validated
//! [`Config`] before any listener is bound, worker started or file written.
//! Everything the user can get wrong is found here and is a [`UsageError`]
//! (exit 2); `roles` then only starts things.
//!
//! Here: the config's shape and its assembly; `secure` holds the listening
//! and secret rules, `outputs` the report files and their probe,
//! `thresholds` the verdict's conditions. The rules
//! of a run request are the master's ([`master::validate`]), shared with
//! the web forms and the API so all refuse the same values with the same
//! words.

mod autoscale;
mod history;
mod outputs;
mod secure;
mod thresholds;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ext::ExtConfig;
use master::profile::Profile;
use master::validate::{self, RunError, RunField};
use master::web::WebConfig;
use master::{MasterConfig, RunRequest};
use protocol::ScriptText;
use script::files::FileSet;
use script::{ScriptInfo, ScriptSource};
use worker::EngineConfig;
use worker::session::SessionConfig;

use crate::cli::{RunArgs, ScalerKind};

pub use history::{Baseline, HistorySetup};
pub use outputs::Outputs;
pub use thresholds::VerdictConfig;

/// "The user asked for something impossible": exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Heartbeats and reports further apart than this would make a lost worker
/// take hours to notice; far beyond them the timers' arithmetic overflows.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// The longest users may take to finish their task when stopping.
const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// One role, with everything it needs.
pub enum Config {
    /// The master and one in-process worker (the default).
    Standalone(Box<Control>),
    /// A master that remote or local worker processes join.
    Master(Box<Control>, Cluster),
    Worker(WorkerRole),
}

/// What a role that runs the test (standalone or master) needs.
pub struct Control {
    pub src: ScriptSource,
    pub info: ScriptInfo,
    pub master: MasterConfig,
    /// The in-process worker of standalone mode.
    pub engine: EngineConfig,
    pub session: SessionConfig,
    pub ext: ExtConfig,
    /// The run the flags ask for (headless, or the web's `--autostart`).
    pub request: RunRequest,
    pub mode: Mode,
    /// Start the bundled demo target and aim at it unless `-H` says otherwise.
    pub demo_target: bool,
    pub stop_timeout: Duration,
    /// Where the run is recorded and what it is compared to.
    pub history: HistorySetup,
}

pub enum Mode {
    Headless(Headless),
    /// `bind` is `host:port`; `web` lacks only what exists at run time
    /// (logs, scaler, extensions).
    Web {
        bind: String,
        web: WebConfig,
        autostart: bool,
    },
}

pub struct Headless {
    pub outputs: Outputs,
    pub reset_stats: bool,
    /// `--exit-code-on-error`, when given: with thresholds, failed requests
    /// then still fail the run (with this code) even if all thresholds hold.
    pub exit_code_on_error: Option<i32>,
    pub verdict: VerdictConfig,
    pub stop_timeout: Duration,
    pub expect_workers: usize,
    pub expect_workers_max_wait: Option<Duration>,
    /// `--autoscale`'s record, set by the master role once it starts the
    /// autoscaler: its decisions go into the summary and the HTML report.
    pub autoscale: Option<master::autoscale::Autoscale>,
}

/// The master role's worker port and scaling.
pub struct Cluster {
    /// `host:port` for workers.
    pub bind: String,
    pub scaler: Option<ScalerKind>,
    /// `--workers N`: local worker processes to start with the master.
    pub workers: Option<u32>,
    pub deployment: String,
    pub namespace: Option<String>,
    /// How local workers are started; their port is known once bound.
    pub local: LocalWorkers,
    /// `--autoscale MIN:MAX` and its marks, checked against the scaler.
    pub autoscale: Option<master::autoscale::Policy>,
}

pub struct LocalWorkers {
    /// Where they join: loopback unless the master listens on one address.
    pub host: String,
    pub cluster_token: Option<String>,
    pub heartbeat_interval: Duration,
    pub grace: Duration,
    pub extra_args: Vec<String>,
}

pub struct WorkerRole {
    pub engine: EngineConfig,
    pub session: SessionConfig,
    /// `host:port` of the master.
    pub master_addr: String,
}

impl Config {
    pub fn resolve(args: &RunArgs) -> Result<Config, UsageError> {
        let token = secure::secret(
            args.cluster.cluster_token.as_deref(),
            "--cluster-token",
            "SWARMER_CLUSTER_TOKEN",
        )?;
        check_durations(args)?;
        if args.cluster.worker {
            return Ok(Config::Worker(worker_role(args, token)?));
        }
        if args.cluster.master {
            let cluster = cluster(args, token.as_deref())?;
            let control = control(args, token, Some(args.cluster.expect_workers))?;
            return Ok(Config::Master(Box::new(control), cluster));
        }
        if args.cluster.scaler.is_some()
            || args.cluster.workers.is_some()
            || args.autoscale.autoscale.is_some()
        {
            return Err(usage(
                "--scaler and --workers need --master (so does --autoscale): scaled workers join a \
                 master's worker port (for example: swarmer --master --scaler local --workers 4 -f SCRIPT)",
            ));
        }
        Ok(Config::Standalone(Box::new(control(args, token, None)?)))
    }
}

fn check_durations(args: &RunArgs) -> Result<(), UsageError> {
    let limits = [
        (
            "--heartbeat-interval",
            args.cluster.heartbeat_interval,
            MAX_INTERVAL,
        ),
        (
            "--report-interval",
            args.cluster.report_interval,
            MAX_INTERVAL,
        ),
        ("--stop-timeout", args.stop_timeout, MAX_STOP_TIMEOUT),
    ];
    for (flag, value, max) in limits {
        if value > max {
            return Err(usage(format!(
                "{flag}: must be at most {}, got {}",
                humantime::format_duration(max),
                humantime::format_duration(value)
            )));
        }
    }
    Ok(())
}

/// The script, what it defines and the files it reads (which travel with
/// it), or a usage error naming file and line.
fn load_script(args: &RunArgs) -> Result<(ScriptSource, ScriptInfo, FileSet), UsageError> {
    let Some(path) = &args.script else {
        return Err(usage(
            "no script given: pass -f SCRIPT (for example -f examples/quickstart.lua)",
        ));
    };
    let src = ScriptSource::read(&path.to_string_lossy()).map_err(|e| usage(e.to_string()))?;
    let (info, files) = inspect_interruptibly(&src, lua_limits(args))?;
    Ok((src, info, files))
}

/// Loads the script off this thread, bounded by the load time limit, and
/// obeys the first Ctrl-C meanwhile: a script that loops while it loads
/// must neither hang nor need a second signal.
fn inspect_interruptibly(
    src: &ScriptSource,
    limits: script::LuaLimits,
) -> Result<(ScriptInfo, FileSet), UsageError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("cannot start the async runtime: {e}")))?;
    let probe = src.clone();
    let outcome = rt.block_on(async {
        let inspecting =
            tokio::task::spawn_blocking(move || script::inspect_bundle(&probe, limits));
        tokio::select! {
            info = inspecting => match info {
                Ok(info) => info.map_err(|e| usage(e.to_string())),
                Err(e) => Err(usage(format!("loading {} failed: {e}", src.path))),
            },
            _ = tokio::signal::ctrl_c() => {
                Err(usage(format!("interrupted while loading {}", src.path)))
            }
        }
    });
    // Do not wait for a load that was interrupted: the process exits.
    rt.shutdown_background();
    outcome
}

/// The bounds on a Lua state: a task's time, the load's time, memory.
fn lua_limits(args: &RunArgs) -> script::LuaLimits {
    script::LuaLimits {
        task_time: args.task_time_limit,
        load_time: args.load_time_limit,
        memory_bytes: usize::try_from(args.lua_memory_limit.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
    }
}

/// A broken rule of a run request, named by its flag.
fn run_rule(e: RunError) -> UsageError {
    let flag = match e.field() {
        RunField::Users => "--users",
        RunField::SpawnRate => "--spawn-rate",
        RunField::RunTime => "--run-time",
        RunField::UserTypes => "--user-types",
        RunField::Stages => "--stages",
    };
    usage(format!("{flag}: {e}"))
}

fn run_request(args: &RunArgs, info: &ScriptInfo) -> Result<RunRequest, UsageError> {
    let request = RunRequest {
        users: args.users.unwrap_or(1),
        spawn_rate: args.spawn_rate.unwrap_or(1.0),
        host: args.host.clone(),
        run_time: args.run_time,
        user_types: args.selected_user_types(),
        profile: profile(args, info)?,
    };
    validate::run_request(&request, info, args.max_users).map_err(run_rule)?;
    Ok(request)
}

/// The run's load profile: `--stages`, else the script's shape unless
/// `--no-shape`; either is refused beside -u/-r/-t, which it replaces.
fn profile(args: &RunArgs, info: &ScriptInfo) -> Result<Option<Profile>, UsageError> {
    let fixed = [
        ("-u/--users", args.users.is_some()),
        ("-r/--spawn-rate", args.spawn_rate.is_some()),
        ("-t/--run-time", args.run_time.is_some()),
    ];
    let fixed_flag = fixed.iter().find(|(_, given)| *given).map(|(flag, _)| flag);
    let Some(text) = &args.stages else {
        let shape = info.shape.as_ref().filter(|_| !args.no_shape);
        return match (shape, fixed_flag) {
            (None, _) => Ok(None),
            (Some(_), Some(flag)) => Err(usage(format!(
                "the script declares a load shape (swarmer.shape), so {flag} needs --no-shape \
                 to run a fixed count instead"
            ))),
            // A shape function is asked for its numbers when the run
            // starts (`master::ext::start_run`).
            (Some(shape), None) => Ok(Some(master::profile::from_script(shape))),
        };
    };
    if let Some(flag) = fixed_flag {
        return Err(usage(format!(
            "--stages and {flag} cannot be used together: the stages set the users over time \
             and end the run when they end"
        )));
    }
    let stages = master::profile::parse_stages(text)
        .map_err(|e| usage(format!("--stages {text:?}: {e}")))?;
    Ok(Some(Profile::Stages(stages)))
}

fn control(
    args: &RunArgs,
    token: Option<String>,
    expect_workers: Option<usize>,
) -> Result<Control, UsageError> {
    let (src, info, files) = load_script(args)?;
    let request = run_request(args, &info)?;
    let verdict = thresholds::resolve(&args.verdict, &info)?;
    let history = history::resolve(&args.history, args.headless)?;
    let mode = if args.headless {
        let outputs = Outputs {
            csv: args.csv.clone(),
            csv_full_history: args.csv_full_history,
            html: args.html.clone(),
            junit: args.verdict.junit.clone(),
            json: args.json,
            only_summary: args.only_summary,
        };
        outputs.probe()?;
        Mode::Headless(Headless {
            outputs,
            reset_stats: args.reset_stats,
            exit_code_on_error: args.exit_code_on_error,
            verdict: verdict.clone(),
            stop_timeout: args.stop_timeout,
            expect_workers: expect_workers.unwrap_or(1),
            expect_workers_max_wait: args.cluster.expect_workers_max_wait,
            autoscale: None,
        })
    } else {
        // A run started from the UI has no end of its own to act on:
        // refuse what would otherwise be silently ignored.
        let headless_only = [
            ("--threshold-abort", args.verdict.threshold_abort),
            ("--junit", args.verdict.junit.is_some()),
        ];
        if let Some((flag, _)) = headless_only.iter().find(|(_, given)| *given) {
            return Err(usage(format!(
                "{flag} needs --headless: with the web UI, thresholds show as live badges instead"
            )));
        }
        web_mode(args)?
    };
    let master = MasterConfig {
        script: ScriptText {
            path: src.path.clone(),
            code: src.code.clone(),
            files: master::script_files::bundle_files(&files),
        },
        heartbeat_interval: args
            .cluster
            .heartbeat_interval
            .max(Duration::from_millis(10)),
        report_interval: args.cluster.report_interval.max(Duration::from_millis(10)),
        missed_heartbeats: 3,
        token: token.clone(),
        stop_timeout: args.stop_timeout,
        tags: args.tags.clone(),
        exclude_tags: args.exclude_tags.clone(),
        host: args.host.clone(),
        max_users: args.max_users,
        thresholds: verdict.thresholds,
    };
    let engine = engine_config(args, "local")?;
    Ok(Control {
        session: session_config(args, "local".into(), token),
        ext: ExtConfig {
            insecure_tls: args.insecure,
            base_dir: script_dir(args),
            http: engine.http.clone(),
            ..Default::default()
        },
        engine,
        src,
        info,
        master,
        request,
        mode,
        demo_target: args.demo_target,
        stop_timeout: args.stop_timeout,
        history,
    })
}

fn web_mode(args: &RunArgs) -> Result<Mode, UsageError> {
    let base = args.web.web_base_path.trim_end_matches('/');
    if !base.is_empty() && !base.starts_with('/') {
        return Err(usage(format!(
            "--web-base-path must start with '/', got {base:?}"
        )));
    }
    let web = WebConfig {
        base_path: base.to_string(),
        auth: secure::web_auth(args.web.web_auth.as_deref())?,
        token: secure::secret(
            args.web.web_token.as_deref(),
            "--web-token",
            "SWARMER_WEB_TOKEN",
        )?,
        max_workers: args.cluster.max_workers,
        // The name the UI was bound to is one it may be reached by.
        allowed_hosts: [
            args.web.web_allowed_hosts.as_slice(),
            std::slice::from_ref(&args.web.web_host),
        ]
        .concat(),
        limits: master::web::ServeLimits::default(),
        full_history: args.csv_full_history,
        ..WebConfig::default()
    };
    Ok(Mode::Web {
        bind: format!("{}:{}", args.web.web_host, args.web.web_port),
        web,
        autostart: args.autostart,
    })
}

fn cluster(args: &RunArgs, token: Option<&str>) -> Result<Cluster, UsageError> {
    let c = &args.cluster;
    let host = secure::master_bind_host(c.master_bind_host.as_deref(), token, c.open_cluster)?;
    if let Some(n) = c.workers {
        if c.scaler != Some(ScalerKind::Local) {
            return Err(usage(
                "--workers starts local worker processes: it needs --scaler local",
            ));
        }
        if n > c.max_workers {
            return Err(usage(format!(
                "--workers {n} is more than --max-workers {}",
                c.max_workers
            )));
        }
    }
    let autoscale = autoscale::policy(&args.autoscale, c.scaler, c.max_workers)?;
    if let (Some(n), Some(p)) = (c.workers, &autoscale)
        && (n < p.min || n > p.max)
    {
        return Err(usage(format!(
            "--workers {n} is outside --autoscale {}:{}",
            p.min, p.max
        )));
    }
    // Children join over loopback unless the master listens on one address only.
    let child_host = match host.as_str() {
        "0.0.0.0" | "::" | "[::]" => "127.0.0.1".to_string(),
        bound => bound.to_string(),
    };
    Ok(Cluster {
        bind: format!("{host}:{}", c.master_bind_port),
        scaler: c.scaler,
        workers: c.workers,
        deployment: c.worker_deployment.clone(),
        namespace: c.namespace.clone(),
        local: LocalWorkers {
            host: child_host,
            cluster_token: token.map(str::to_string),
            heartbeat_interval: c.heartbeat_interval,
            grace: args.stop_timeout + Duration::from_secs(5),
            extra_args: local_worker_args(args),
        },
        autoscale,
    })
}

fn worker_role(args: &RunArgs, token: Option<String>) -> Result<WorkerRole, UsageError> {
    let id = args
        .cluster
        .worker_id
        .clone()
        .unwrap_or_else(default_worker_id);
    Ok(WorkerRole {
        engine: engine_config(args, &id)?,
        session: session_config(args, id, token),
        master_addr: format!("{}:{}", args.cluster.master_host, args.cluster.master_port),
    })
}

fn script_dir(args: &RunArgs) -> Option<PathBuf> {
    args.script
        .as_deref()
        .and_then(Path::parent)
        .map(PathBuf::from)
}

fn engine_config(args: &RunArgs, node_id: &str) -> Result<EngineConfig, UsageError> {
    Ok(EngineConfig {
        cores: args.cores,
        node_id: node_id.to_string(),
        insecure_tls: args.insecure,
        http: args.http.settings()?.into(),
        base_dir: script_dir(args),
        limits: lua_limits(args),
        stop_timeout: args.stop_timeout,
    })
}

fn session_config(args: &RunArgs, worker_id: String, token: Option<String>) -> SessionConfig {
    SessionConfig {
        worker_id,
        incarnation: rand::random(),
        token,
        stop_timeout: args.stop_timeout,
        missed_heartbeats: 3,
    }
}

/// The host name plus a short random suffix, like Locust's.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}_{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// The master's settings that also shape a worker.
fn local_worker_args(args: &RunArgs) -> Vec<String> {
    let mut out = vec![format!(
        "--stop-timeout={}ms",
        args.stop_timeout.as_millis()
    )];
    if let Some(level) = &args.loglevel {
        out.push(format!("--loglevel={level}"));
    }
    if args.cores != 0 {
        out.push(format!("--cores={}", args.cores));
    }
    if args.insecure {
        out.push("--insecure".into());
    }
    out.extend(args.http.worker_args());
    // Workers get the script from the master, but read data files next to it.
    if let Some(script) = &args.script {
        out.push(format!("--script={}", script.display()));
    }
    out
}
