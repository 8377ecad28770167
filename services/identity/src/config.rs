//! Command line and environment: every setting has a flag and an env var.

use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

/// The identity service: tenants, tokens and users in Postgres, over gRPC.
#[derive(Debug, Parser)]
#[command(name = "identity-service", version, about)]
pub(crate) struct Cli {
    /// Postgres connection URL, e.g. postgres://user:pass@host:5432/identity
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: String,

    /// Address the gRPC server listens on
    #[arg(long, env = "IDENTITY_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub(crate) grpc_addr: SocketAddr,

    /// Operator bearer token; when unset no operator exists
    #[arg(long, env = "IDENTITY_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) admin_token: Option<String>,

    /// Maximum number of pooled database connections
    #[arg(long, env = "IDENTITY_DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) db_pool_size: u32,

    /// Log output format (verbosity comes from RUST_LOG, default "info")
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Apply pending database migrations and exit
    Migrate,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Clap's multi-line error as one line: its message without usage hints.
pub(crate) fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:"))
        .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  --database-url <DATABASE_URL>\n\nUsage: identity-service --database-url <DATABASE_URL>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "the following required arguments were not provided: --database-url <DATABASE_URL>"
        );
    }
}
