//! The `swarmer` binary: parses the command line and runs one role.
//! Everything else lives in the library crates.

#![forbid(unsafe_code)]

mod cli;
mod config;
mod console;
mod demo_target;
mod headless;
mod hints;
mod history_cmd;
mod inspect;
mod outcome;
mod output;
mod parent;
mod recording;
mod roles;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::config::{Config, UsageError};

/// mimalloc: its thread-local free lists suit the small, short-lived
/// objects of every request (the response, its Lua userdata, buffers).
/// Against glibc's malloc, alternating runs of bench/run.sh's throughput
/// test: 2.67 against 2.86 us of user time per request (medians of 6), 6%
/// more requests per CPU-second; idle users cost 5.4 KiB instead of 4.7.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    exit_on_panic();
    let code = match cli::args_with_config() {
        Ok(args) => run(Cli::parse_from(args)),
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

/// A panic anywhere (a task, a core thread) ends the process with a
/// message and exit code 101, as `panic = "abort"` would but with a line
/// that says so: tokio would otherwise catch a task's panic and leave the
/// rest running without it, e.g. a web UI in front of a dead coordinator.
fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        eprintln!("error: internal error (a bug in swarmer): {info}; exiting");
        std::process::exit(101);
    }));
}

/// What the command line asks for.
enum Job {
    DemoTarget { bind: String, port: u16 },
    History(cli::HistoryCommand),
    Role(Config),
}

fn run(cli: Cli) -> i32 {
    let logs = init_logging(&log_filter(&cli));
    // Every check of what the user asked for, before any side effect.
    let job = match cli.command {
        // Loads the script only: no runtime, nothing started.
        Some(Command::Inspect { script, json }) => {
            return inspect::run(&script, json).unwrap_or_else(|e| {
                eprintln!("error: {e}");
                2
            });
        }
        Some(Command::DemoTarget { bind, port }) => Job::DemoTarget { bind, port },
        Some(Command::History(command)) => Job::History(command),
        None => match Config::resolve(&cli.run) {
            Ok(config) => Job::Role(config),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        debug_panic_for_tests();
        match job {
            Job::DemoTarget { bind, port } => demo_target(&bind, port, shutdown).await,
            Job::History(command) => history_cmd::run(command).await,
            Job::Role(Config::Worker(role)) => roles::worker(role, shutdown).await,
            Job::Role(Config::Master(control, cluster)) => {
                roles::master(*control, cluster, logs, shutdown).await
            }
            Job::Role(Config::Standalone(control)) => {
                roles::standalone(*control, logs, shutdown).await
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) if e.is::<UsageError>() => {
            eprintln!("error: {e}");
            2
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Debug builds only: `SWARMER_DEBUG_PANIC_IN_TASK=1` panics in a spawned
/// task, so a test can check that a panic ends the whole process.
fn debug_panic_for_tests() {
    #[cfg(debug_assertions)]
    if std::env::var_os("SWARMER_DEBUG_PANIC_IN_TASK").is_some() {
        tokio::spawn(async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            panic!("SWARMER_DEBUG_PANIC_IN_TASK asked for a panic");
        });
    }
}

async fn demo_target(bind: &str, port: u16, shutdown: CancellationToken) -> anyhow::Result<i32> {
    let listener = tokio::net::TcpListener::bind((bind, port))
        .await
        .map_err(|e| config::usage(format!("cannot listen on {bind}:{port}: {e}")))?;
    // Tests start it on port 0 and read the address from this line.
    println!("demo target listening on http://{}", listener.local_addr()?);
    demo_target::run(listener, shutdown).await?;
    Ok(0)
}

/// SIGINT or SIGTERM starts a graceful shutdown; a second one exits at once.
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; Ctrl-C will kill the process");
        return;
    };
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if round == 0 {
            shutdown.cancel();
        } else {
            eprintln!("second interrupt: exiting now");
            std::process::exit(130);
        }
    }
}

/// What `-L` asks for, or the default: a headless run (standalone or
/// `--master`) shows only its progress line, its summary, warnings and the
/// script's own `swarmer.log` lines (the rest is `-L info`); a worker or
/// the web UI tell at info what they are doing, which is their progress.
fn log_filter(cli: &Cli) -> String {
    if let Some(level) = &cli.run.loglevel {
        return level.clone();
    }
    let run = &cli.run;
    let headless = cli.command.is_none() && run.headless && !run.cluster.worker;
    if headless {
        "warn,script=info".into()
    } else {
        "info".into()
    }
}

/// Colour only for a terminal, and never when `NO_COLOR` is set to
/// anything (no-color.org): escape codes are noise in a pipe or a file.
fn log_colours() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}

/// Logs go to stderr and into a ring the web UI's Logs tab reads.
fn init_logging(filter: &str) -> master::web::LogBuffer {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWARMER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let logs = master::web::LogBuffer::new(2000);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(log_colours())
                .with_target(false),
        )
        .with(logs.clone())
        .init();
    logs
}
