//! `scim-adapter`: reads its configuration, binds, and serves until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use scim_adapter::StartupError;
use scim_adapter::config::{Config, init_tracing};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            // clap's message spans several lines; operators get its first.
            let text = e.to_string();
            eprintln!(
                "scim-adapter: {}",
                text.lines().next().unwrap_or("invalid configuration")
            );
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    match run(&config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "scim-adapter stopped");
            eprintln!("scim-adapter: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &Config) -> Result<(), StartupError> {
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .map_err(|source| StartupError::Bind {
            addr: config.listen_addr.to_string(),
            source,
        })?;
    scim_adapter::serve(config.settings(), listener, shutdown_signal()).await?;
    tracing::info!("scim-adapter shut down");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM, whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}
