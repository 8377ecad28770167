//! `identity-service`: applies pending migrations (waiting for the database
//! to answer), then serves gRPC until SIGTERM or Ctrl-C and drains.
//! `identity-service migrate` only migrates.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use identity_proto::lifecycle::{Drain, shutdown_signal};
use identity_proto::otel::{ExportError, TraceExport};
use identity_service::{ServiceSettings, StartupError, migrate_when_reachable, serve};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{Cli, Command, LogFormat, one_line, token_rate};

mod config;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            eprintln!("identity-service: {}", one_line(&err.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("identity-service: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The trace exporter's gRPC channel lives on the runtime.
    let export = match runtime.block_on(async { init_logging(cli.log_format) }) {
        Ok(export) => export,
        Err(err) => {
            eprintln!("identity-service: {err}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(run(cli));
    if let Some(export) = export {
        // The last spans reach the collector through the still running runtime.
        export.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("identity-service: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), StartupError> {
    // Installed first: a signal during start-up ends it (and waits for no drain).
    let mut shutdown = Box::pin(shutdown_signal());
    let tls = cli.tls().map_err(|e| StartupError::Config(e.to_string()))?;
    tokio::select! {
        migrated = migrate_when_reachable(&cli.database_url, cli.db_startup_timeout) => migrated?,
        () = &mut shutdown => return Ok(()),
    }
    if let Some(Command::Migrate) = cli.command {
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(cli.grpc_addr)
        .await
        .map_err(|e| StartupError::Listen {
            addr: cli.grpc_addr.to_string(),
            reason: e.to_string(),
        })?;
    let settings = ServiceSettings {
        admin_token: cli.admin_token,
        pool_size: cli.db_pool_size,
        auth_pool_size: cli.auth_pool_size,
        statement_timeout: cli.statement_timeout,
        request_timeout: cli.request_timeout,
        tenant_max_concurrent_requests: cli.tenant_max_concurrent_requests,
        tenant_queue_timeout: cli.tenant_queue_timeout,
        token_rate: token_rate(cli.token_rate_limit, cli.token_rate_burst),
        token_cache_ttl: cli.token_cache_ttl,
        drain: Drain {
            delay: cli.shutdown_delay,
            grace: cli.shutdown_grace,
        },
        tls,
        admin_addr: cli.admin_addr.0,
        watch_buffer: cli.watch_buffer as usize,
        watch_max_lag: cli.watch_max_lag,
        event_retention: cli.event_retention,
        event_prune_interval: cli.event_prune_interval,
        ..ServiceSettings::new(cli.database_url)
    };
    serve(settings, listener, shutdown).await
}

/// Installs the global subscriber (RUST_LOG filters the log, default
/// "info") and, when the OTEL_* variables ask for it, trace export; the
/// returned exporter must be shut down to flush the last spans.
fn init_logging(format: LogFormat) -> Result<Option<TraceExport>, ExportError> {
    let export = TraceExport::from_env("identity-service")?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal());
    let log = match format {
        LogFormat::Text => log.boxed(),
        LogFormat::Json => log
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(log.with_filter(filter))
        .with(export.as_ref().map(TraceExport::layer))
        .init();
    Ok(export)
}
