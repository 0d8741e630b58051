//! The `swarmer` binary: parses the command line and runs one role.
//! Everything else lives in the library crates.

mod cli;
mod console;
mod demo_target;
mod headless;
mod output;
mod parent;
mod roles;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::roles::UsageError;

/// mimalloc: its thread-local free lists suit the small, short-lived
/// objects of every request (the response, its Lua userdata, buffers).
/// Against glibc's malloc, alternating runs of bench/run.sh's throughput
/// test: 2.67 against 2.86 us of user time per request (medians of 6), 6%
/// more requests per CPU-second; idle users cost 5.4 KiB instead of 4.7.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = match cli::args_with_config() {
        Ok(args) => run(Cli::parse_from(args)),
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> i32 {
    let logs = init_logging(&cli.run.loglevel);
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
        match cli.command {
            Some(Command::DemoTarget { bind, port }) => demo_target(&bind, port, shutdown).await,
            None if cli.run.cluster.worker => roles::worker(cli.run, shutdown).await,
            None if cli.run.cluster.master => roles::master(cli.run, logs, shutdown).await,
            None => roles::standalone(cli.run, logs, shutdown).await,
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

async fn demo_target(bind: &str, port: u16, shutdown: CancellationToken) -> anyhow::Result<i32> {
    let listener = tokio::net::TcpListener::bind((bind, port))
        .await
        .map_err(|e| roles::usage(format!("cannot listen on {bind}:{port}: {e}")))?;
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

/// Logs go to stderr and into a ring the web UI's Logs tab reads.
fn init_logging(level: &str) -> master::web::LogBuffer {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWARMER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let logs = master::web::LogBuffer::new(2000);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(logs.clone())
        .init();
    logs
}
