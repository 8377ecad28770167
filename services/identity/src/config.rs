//! Command line and environment: every setting has a flag and an env var.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use identity_proto::tls::{ServerFiles, TlsError};

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

    /// Database connections reserved for token lookups, apart from the pool
    /// that does the work
    #[arg(long, env = "IDENTITY_AUTH_POOL_SIZE", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) auth_pool_size: u32,

    /// Postgres statement_timeout of every connection (e.g. 10s, 500ms, 2m)
    #[arg(long, env = "IDENTITY_STATEMENT_TIMEOUT", default_value = "10s",
          value_parser = identity_proto::parse_duration)]
    pub(crate) statement_timeout: Duration,

    /// Longest time any call may run, whatever deadline its caller sent
    #[arg(long, env = "IDENTITY_REQUEST_TIMEOUT", default_value = "30s",
          value_parser = identity_proto::parse_duration)]
    pub(crate) request_timeout: Duration,

    /// Requests one tenant's tokens may have in flight at once; more wait
    /// (see --tenant-queue-timeout), then get RESOURCE_EXHAUSTED
    #[arg(long, env = "IDENTITY_TENANT_MAX_CONCURRENT_REQUESTS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) tenant_max_concurrent_requests: u32,

    /// How long a request over its tenant's cap waits for a slot
    #[arg(long, env = "IDENTITY_TENANT_QUEUE_TIMEOUT", default_value = "5s",
          value_parser = identity_proto::parse_duration)]
    pub(crate) tenant_queue_timeout: Duration,

    /// Calls per second one tenant token may make on average; 0 means no limit
    #[arg(long, env = "IDENTITY_TOKEN_RATE_LIMIT", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub(crate) token_rate_limit: u32,

    /// Calls one tenant token may make at once before the rate limit applies
    #[arg(long, env = "IDENTITY_TOKEN_RATE_BURST", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) token_rate_burst: u32,

    /// How long a token lookup is reused before the database is asked
    /// again (0s: never; at most 1s): how late other replicas may learn of
    /// a revocation. The replica that revokes applies it at once
    #[arg(long, env = "IDENTITY_TOKEN_CACHE_TTL", default_value = "1s",
          value_parser = token_cache_ttl)]
    pub(crate) token_cache_ttl: Duration,

    /// How long start-up keeps trying to reach the database (with backoff)
    /// before it gives up
    #[arg(long, env = "IDENTITY_DB_STARTUP_TIMEOUT", default_value = "60s",
          value_parser = identity_proto::parse_duration)]
    pub(crate) db_startup_timeout: Duration,

    /// After SIGTERM, how long health reports NOT_SERVING while calls are
    /// still served, so load balancers stop sending new ones (0s: none)
    #[arg(long, env = "IDENTITY_SHUTDOWN_DELAY", default_value = "5s",
          value_parser = identity_proto::parse_duration_or_zero)]
    pub(crate) shutdown_delay: Duration,

    /// After that delay, how long calls in flight may take to finish before
    /// they are cut and the process exits
    #[arg(long, env = "IDENTITY_SHUTDOWN_GRACE", default_value = "20s",
          value_parser = identity_proto::parse_duration)]
    pub(crate) shutdown_grace: Duration,
    /// Address of the admin HTTP server, which serves Prometheus metrics at
    /// /metrics apart from the gRPC port; "off" serves none
    #[arg(long, env = "IDENTITY_ADMIN_ADDR", default_value = "0.0.0.0:9090",
          value_parser = admin_addr)]
    pub(crate) admin_addr: AdminAddr,

    /// PEM file of the gRPC server's certificate (chain); with --tls-key,
    /// the port speaks TLS only
    #[arg(long, env = "IDENTITY_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// PEM file of the private key of --tls-cert
    #[arg(long, env = "IDENTITY_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,

    /// PEM file of the CA(s) that callers' certificates must chain to:
    /// mTLS, a caller without such a certificate is refused
    #[arg(long, env = "IDENTITY_TLS_CLIENT_CA")]
    pub(crate) tls_client_ca: Option<PathBuf>,
    /// Events a Watch buffers for its client beyond what the connection
    /// holds; bounds each watch's memory
    #[arg(long, env = "IDENTITY_WATCH_BUFFER", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) watch_buffer: u32,

    /// How many events past a Watch client's position the tenant may run
    /// while the client does not read, before it is closed
    /// (RESOURCE_EXHAUSTED) to resume by sequence
    #[arg(long, env = "IDENTITY_WATCH_MAX_LAG", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) watch_max_lag: u64,

    /// How long lifecycle events are kept (e.g. 400d, 90d, 12h); older ones
    /// are pruned in the background, and a Watch from a pruned position
    /// gets OUT_OF_RANGE
    #[arg(long, env = "IDENTITY_EVENT_RETENTION", default_value = "400d",
          value_parser = identity_proto::parse_duration)]
    pub(crate) event_retention: Duration,

    /// How often each replica prunes events past the retention (one
    /// replica at a time, in small batches)
    #[arg(long, env = "IDENTITY_EVENT_PRUNE_INTERVAL", default_value = "1m",
          value_parser = identity_proto::parse_duration)]
    pub(crate) event_prune_interval: Duration,

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

impl Cli {
    /// The server's TLS files, read.
    pub(crate) fn tls(&self) -> Result<Option<tonic::transport::ServerTlsConfig>, TlsError> {
        ServerFiles {
            cert: self.tls_cert.as_deref(),
            key: self.tls_key.as_deref(),
            client_ca: self.tls_client_ca.as_deref(),
        }
        .load()
    }
}

/// Where the admin HTTP server listens, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdminAddr(pub(crate) Option<SocketAddr>);

fn admin_addr(text: &str) -> Result<AdminAddr, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(AdminAddr(None));
    }
    text.trim()
        .parse()
        .map(|addr| AdminAddr(Some(addr)))
        .map_err(|_| format!("'{text}' is neither host:port (e.g. 0.0.0.0:9090) nor off"))
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

/// A duration of at most a second, the promise a revocation keeps; zero
/// (which other duration flags refuse) turns the cache off.
fn token_cache_ttl(text: &str) -> Result<Duration, String> {
    let ttl = identity_proto::parse_duration_or_zero(text)?;
    if ttl > Duration::from_secs(1) {
        return Err(format!("{text} is longer than 1s"));
    }
    Ok(ttl)
}

/// The per-token rate of the flags: `per_second` 0 means no limit.
pub(crate) fn token_rate(per_second: u32, burst: u32) -> Option<identity_service::TokenRate> {
    (per_second > 0).then(|| identity_service::TokenRate {
        period: Duration::from_secs(1) / per_second,
        burst,
    })
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
    fn defaults_match_the_settings_constructor() {
        let cli = Cli::try_parse_from(["identity-service", "--database-url", "postgres://x/y"])
            .unwrap_or_else(|e| panic!("{e}"));
        let defaults = identity_service::ServiceSettings::new("postgres://x/y");
        assert_eq!(cli.db_pool_size, defaults.pool_size);
        assert_eq!(cli.auth_pool_size, defaults.auth_pool_size);
        assert_eq!(cli.statement_timeout, defaults.statement_timeout);
        assert_eq!(cli.request_timeout, defaults.request_timeout);
        assert_eq!(
            cli.tenant_max_concurrent_requests,
            defaults.tenant_max_concurrent_requests
        );
        assert_eq!(cli.tenant_queue_timeout, defaults.tenant_queue_timeout);
        assert_eq!(cli.token_cache_ttl, defaults.token_cache_ttl);
        assert_eq!(cli.shutdown_delay, defaults.drain.delay);
        assert_eq!(cli.shutdown_grace, defaults.drain.grace);
        assert_eq!(cli.watch_buffer as usize, defaults.watch_buffer);
        assert_eq!(cli.watch_max_lag, defaults.watch_max_lag);
        assert_eq!(cli.event_retention, defaults.event_retention);
        assert_eq!(
            cli.event_retention,
            Duration::from_secs(400 * 24 * 60 * 60),
            "the issue's default"
        );
        assert_eq!(cli.event_prune_interval, defaults.event_prune_interval);
        assert_eq!(
            token_rate(cli.token_rate_limit, cli.token_rate_burst),
            defaults.token_rate
        );
    }

    #[test]
    fn token_cache_ttl_is_at_most_a_second() {
        assert_eq!(token_cache_ttl("0s"), Ok(Duration::ZERO));
        assert_eq!(token_cache_ttl("1s"), Ok(Duration::from_secs(1)));
        assert!(token_cache_ttl("2s").is_err());
        assert!(
            Cli::try_parse_from([
                "identity-service",
                "--database-url",
                "postgres://x/y",
                "--token-cache-ttl",
                "5s"
            ])
            .is_err()
        );
    }

    #[test]
    fn admin_addr_is_an_address_or_off() {
        assert_eq!(admin_addr("off"), Ok(AdminAddr(None)));
        assert_eq!(
            admin_addr("127.0.0.1:9090"),
            Ok(AdminAddr(Some(([127, 0, 0, 1], 9090).into())))
        );
        assert!(admin_addr("9090").is_err());
        let cli = Cli::try_parse_from(["identity-service", "--database-url", "postgres://x/y"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.admin_addr, AdminAddr(Some(([0, 0, 0, 0], 9090).into())));
    }

    #[test]
    fn token_rate_from_flags() {
        assert_eq!(token_rate(0, 20), None);
        assert_eq!(
            token_rate(4, 20),
            Some(identity_service::TokenRate {
                period: Duration::from_millis(250),
                burst: 20
            })
        );
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
