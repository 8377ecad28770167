//! Command line and environment of the `scim-adapter` binary.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

use crate::AdapterSettings;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// SCIM 2.0 adapter: serves /scim/v2 over HTTP and calls the identity service over gRPC.
#[derive(Debug, Parser)]
#[command(name = "scim-adapter", version, about)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "SCIM_LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// URL of the identity service's gRPC endpoint.
    #[arg(
        long,
        env = "IDENTITY_GRPC_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub identity_grpc_url: String,

    /// External base URL used in meta.location and Location headers,
    /// e.g. https://scim.example.com [default: http://<listen addr>]
    #[arg(long, env = "SCIM_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "SCIM_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,

    /// Log line format. Levels come from RUST_LOG (default "info").
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    pub fn settings(&self) -> AdapterSettings {
        AdapterSettings {
            public_url: self.public_url.clone(),
            max_body_bytes: self.max_body_bytes,
            ..AdapterSettings::new(self.identity_grpc_url.clone())
        }
    }
}

/// Installs the global subscriber; RUST_LOG filters, default "info".
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only where a person reads a terminal, never in log files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Config::command().debug_assert();
    }

    #[test]
    fn flags_parse() {
        let config = Config::try_parse_from([
            "scim-adapter",
            "--listen-addr",
            "127.0.0.1:9000",
            "--max-body-bytes",
            "10",
            "--log-format",
            "json",
        ]);
        let config = config.map(|c| (c.listen_addr.port(), c.max_body_bytes, c.log_format));
        assert_eq!(config.ok(), Some((9000, 10, LogFormat::Json)));
        assert!(Config::try_parse_from(["scim-adapter", "--listen-addr", "nope"]).is_err());
    }
}
