//! Command line and environment of the `scim-adapter` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use identity_proto::lifecycle::Drain;
use identity_proto::otel::{ExportError, TraceExport};
use identity_proto::tls::ClientFiles;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::{AdapterSettings, StartupError};

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

    /// Deadline of every gRPC call to the identity service, e.g. 15s or
    /// 500ms; a call past it is answered 504 with Retry-After.
    #[arg(long, env = "SCIM_GRPC_TIMEOUT", default_value = "15s", value_parser = identity_proto::parse_duration)]
    pub grpc_timeout: Duration,

    /// Time a client has to send a whole request head, from the accept or
    /// from the head's first byte; past it the connection is closed.
    #[arg(long, env = "SCIM_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = identity_proto::parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a keep-alive connection may wait for its next request before
    /// it is closed.
    #[arg(long, env = "SCIM_IDLE_TIMEOUT", default_value = "60s", value_parser = identity_proto::parse_duration)]
    pub idle_timeout: Duration,

    /// Largest request head (request line and headers), in bytes; larger
    /// ones get 431 and the connection is closed.
    #[arg(long, env = "SCIM_MAX_HEADER_BYTES", default_value_t = 65_536)]
    pub max_header_bytes: usize,

    /// Connections served at once; further ones wait in the listen backlog
    /// until one closes.
    #[arg(long, env = "SCIM_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// After SIGTERM, how long /readyz fails while requests are still
    /// served, so load balancers stop sending new ones (0s: none).
    #[arg(long, env = "SCIM_SHUTDOWN_DELAY", default_value = "5s", value_parser = identity_proto::parse_duration_or_zero)]
    pub shutdown_delay: Duration,

    /// After that delay, how long requests in flight may take to finish
    /// before they are cut and the process exits.
    #[arg(long, env = "SCIM_SHUTDOWN_GRACE", default_value = "20s", value_parser = identity_proto::parse_duration)]
    pub shutdown_grace: Duration,

    /// PEM file of the CA that signed the identity service's certificate;
    /// TLS to the service (IDENTITY_GRPC_URL must then be https://).
    #[arg(long, env = "IDENTITY_GRPC_CA")]
    pub grpc_ca: Option<PathBuf>,

    /// PEM file of the adapter's client certificate, for a service that
    /// requires mTLS (with --grpc-client-key and --grpc-ca).
    #[arg(long, env = "IDENTITY_GRPC_CLIENT_CERT")]
    pub grpc_client_cert: Option<PathBuf>,

    /// PEM file of the private key of --grpc-client-cert.
    #[arg(long, env = "IDENTITY_GRPC_CLIENT_KEY")]
    pub grpc_client_key: Option<PathBuf>,

    /// Log line format. Levels come from RUST_LOG (default "info").
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// The settings, with the TLS files read.
    pub fn load_settings(&self) -> Result<AdapterSettings, StartupError> {
        let tls = ClientFiles {
            ca: self.grpc_ca.as_deref(),
            cert: self.grpc_client_cert.as_deref(),
            key: self.grpc_client_key.as_deref(),
        }
        .load()?;
        Ok(AdapterSettings {
            tls,
            ..self.settings()
        })
    }

    /// The settings without TLS (which needs files read: see `load_settings`).
    pub fn settings(&self) -> AdapterSettings {
        AdapterSettings {
            public_url: self.public_url.clone(),
            max_body_bytes: self.max_body_bytes,
            grpc_timeout: self.grpc_timeout,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_header_bytes: self.max_header_bytes,
            max_connections: self.max_connections,
            drain: Drain {
                delay: self.shutdown_delay,
                grace: self.shutdown_grace,
            },
            ..AdapterSettings::new(self.identity_grpc_url.clone())
        }
    }
}

/// Installs the global subscriber; RUST_LOG filters the log, default
/// "info". Spans are also exported when the OTEL_* variables ask for it
/// (see `identity_proto::otel`); the returned exporter must be shut down to
/// flush them. Runs inside the Tokio runtime.
pub fn init_tracing(format: LogFormat) -> Result<Option<TraceExport>, ExportError> {
    let export = TraceExport::from_env("scim-adapter")?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only where a person reads a terminal, never in log files.
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let log = match format {
        LogFormat::Text => log.boxed(),
        LogFormat::Json => log.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(log.with_filter(filter))
        .with(export.as_ref().map(TraceExport::layer))
        .init();
    Ok(export)
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

    #[test]
    fn limits_have_defaults_and_parse() {
        let defaults = Config::try_parse_from(["scim-adapter"]).map(|c| c.settings());
        let new = AdapterSettings::new("http://127.0.0.1:50051");
        let defaults = defaults.ok();
        assert_eq!(defaults.as_ref().map(|s| s.drain), Some(new.drain));
        assert_eq!(
            defaults.as_ref().map(|s| (
                s.grpc_timeout,
                s.header_read_timeout,
                s.idle_timeout,
                s.max_header_bytes,
                s.max_connections
            )),
            Some((
                new.grpc_timeout,
                new.header_read_timeout,
                new.idle_timeout,
                new.max_header_bytes,
                new.max_connections
            ))
        );
        let config = Config::try_parse_from([
            "scim-adapter",
            "--grpc-timeout",
            "500ms",
            "--header-read-timeout",
            "2",
            "--idle-timeout",
            "30s",
            "--max-header-bytes",
            "8192",
            "--max-connections",
            "8",
        ])
        .map(|c| c.settings());
        assert_eq!(
            config.ok().map(|s| (
                s.grpc_timeout,
                s.header_read_timeout,
                s.idle_timeout,
                s.max_header_bytes,
                s.max_connections
            )),
            Some((
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(30),
                8192,
                8
            ))
        );
        for bad in ["soon", "-1s", "1.5s", ""] {
            assert!(
                Config::try_parse_from(["scim-adapter", "--grpc-timeout", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
