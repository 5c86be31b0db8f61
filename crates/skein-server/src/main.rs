//! The `skein` binary: parse flags, set up logging, run the server until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use skein_server::config::{self, Overrides};
use tracing_subscriber::EnvFilter;

/// A Kafka-compatible broker. With no flags it listens on 127.0.0.1:9092 and keeps its data in ./data.
#[derive(Debug, Parser)]
#[command(name = "skein", version)]
struct Cli {
    /// YAML configuration file (Kafka setting names); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address the Kafka listener binds (default 127.0.0.1:9092).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address clients are told to connect to (default: --listen).
    #[arg(long, value_name = "HOST:PORT")]
    advertised_listener: Option<String>,
    /// Data directory (default ./data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Address of the /metrics, /health and /ready endpoints (default 127.0.0.1:9644).
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listen: Option<String>,
    /// This broker's node id (default 1).
    #[arg(long, value_name = "N")]
    node_id: Option<i32>,
    /// Any setting by its YAML (Kafka) name, e.g. `--override controller.quorum.voters=1@host:9093`;
    /// repeatable, overrides the file.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        advertised_listener: cli.advertised_listener,
        data_dir: cli.data_dir,
        metrics_listen: cli.metrics_listen,
        node_id: cli.node_id,
        settings: cli.overrides,
    };
    let config = match config::load(cli.config.as_deref(), overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("skein: {err}");
            return ExitCode::from(2);
        }
    };
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(64).build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("skein: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(skein_server::server::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "skein stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard limit: every client connection is a file, and the soft
/// default (often 1024) would refuse connections long before `max.connections`.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(err) = setrlimit(Resource::Nofile, raised) {
            eprintln!("skein: cannot raise the open-file limit from {:?}: {err}", limit.current);
        }
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                tracing::warn!("cannot install signal handlers; falling back to Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
