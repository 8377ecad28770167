//! `scim-adapter`: reads its configuration, binds, and serves until SIGTERM
//! or Ctrl-C, then drains (a second signal exits at once).

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use identity_proto::lifecycle::shutdown_signal;
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
    let export = match init_tracing(config.log_format) {
        Ok(export) => export,
        Err(e) => {
            eprintln!("scim-adapter: {e}");
            return ExitCode::from(2);
        }
    };
    let result = run(&config).await;
    if let Some(export) = export {
        // Flushing blocks until the collector answered: off the workers.
        let _ = tokio::task::spawn_blocking(move || export.shutdown()).await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "scim-adapter stopped");
            eprintln!("scim-adapter: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &Config) -> Result<(), StartupError> {
    let shutdown = shutdown_signal();
    let settings = config.load_settings()?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .map_err(|source| StartupError::Bind {
            addr: config.listen_addr.to_string(),
            source,
        })?;
    scim_adapter::serve(settings, listener, shutdown).await?;
    tracing::info!("scim-adapter shut down");
    Ok(())
}
