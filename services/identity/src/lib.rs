//! The identity service: tenants, their bearer tokens, their users and
//! groups in Postgres, served over gRPC (`identity.v1`).
//!
//! The binary applies migrations and then calls [`serve`]; end-to-end tests
//! call [`migrate`] and [`serve`] directly on sockets of their own.

mod api;
mod app;
mod attr;
mod auth;
mod catalog;
mod db;
mod events;
mod filter;
mod groups;
mod limits;
mod metrics;
mod patch;
mod people;
mod rpc;
mod schema;
mod server;
mod sort;
mod sql_spans;
mod startup;
mod status;
mod store;
mod telemetry;
mod tenants;
#[cfg(test)]
mod testing;
mod tokens;
mod users;

use std::net::SocketAddr;
use std::time::Duration;

use identity_proto::lifecycle::Drain;

pub use db::migrate;
pub use server::serve;
pub use startup::migrate_when_reachable;

/// What [`serve`] needs; the binary fills it from flags and environment.
#[derive(Clone)]
pub struct ServiceSettings {
    pub database_url: String,
    /// The operator credential; `None` means no operator exists.
    pub admin_token: Option<String>,
    pub pool_size: u32,
    /// Connections reserved for token lookups, so a flood of bogus tokens
    /// waits on these and never on the connections that do the work.
    pub auth_pool_size: u32,
    /// Postgres `statement_timeout` of every pooled connection: an
    /// abandoned request stops running in the database after this long.
    pub statement_timeout: Duration,
    /// The longest any call may run, whatever deadline its caller sent.
    pub request_timeout: Duration,
    /// Requests one tenant's tokens may have in flight at once.
    pub tenant_max_concurrent_requests: u32,
    /// How long a request over its tenant's cap waits for a slot before it
    /// is refused; it holds no database connection meanwhile.
    pub tenant_queue_timeout: Duration,
    /// Per-token rate limit; `None` (the default) means no limit.
    pub token_rate: Option<TokenRate>,
    /// How long a token lookup is reused (zero: never, at most one second):
    /// how late another replica may learn of a revocation.
    pub token_cache_ttl: Duration,
    /// How the server drains once its shutdown future completes.
    pub drain: Drain,
    /// TLS on the gRPC port (with client verification for mTLS); `None`
    /// serves plaintext.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// Where `/metrics` is served over HTTP; `None` serves no metrics.
    pub admin_addr: Option<SocketAddr>,
    /// Events a Watch buffers for its client beyond what the connection
    /// holds: bounds each watch's memory.
    pub watch_buffer: usize,
    /// How far behind the tenant's newest event a Watch client that does
    /// not read may fall before it is closed (RESOURCE_EXHAUSTED).
    pub watch_max_lag: u64,
    /// How long events are kept; older ones are pruned in the background.
    pub event_retention: Duration,
    /// How often a replica looks for events past the retention.
    pub event_prune_interval: Duration,
}

/// How long events are kept unless configured otherwise: 400 days, more
/// than a year of audit trail.
const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// A token may make `burst` calls at once, then one per `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenRate {
    pub period: Duration,
    pub burst: u32,
}

impl ServiceSettings {
    /// The defaults every flag has, on this database, with no operator.
    pub fn new(database_url: impl Into<String>) -> Self {
        ServiceSettings {
            database_url: database_url.into(),
            admin_token: None,
            pool_size: 16,
            auth_pool_size: 4,
            statement_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            tenant_max_concurrent_requests: 8,
            tenant_queue_timeout: Duration::from_secs(5),
            token_rate: None,
            token_cache_ttl: Duration::from_secs(1),
            drain: Drain {
                delay: Duration::from_secs(5),
                grace: Duration::from_secs(20),
            },
            tls: None,
            admin_addr: None,
            watch_buffer: 64,
            watch_max_lag: 10_000,
            event_retention: DEFAULT_EVENT_RETENTION,
            event_prune_interval: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for ServiceSettings {
    /// Secrets stay out of logs: the URL's password and the admin token are hidden.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSettings")
            .field("database", &db::redacted_target(&self.database_url))
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("pool_size", &self.pool_size)
            .field("auth_pool_size", &self.auth_pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("request_timeout", &self.request_timeout)
            .field(
                "tenant_max_concurrent_requests",
                &self.tenant_max_concurrent_requests,
            )
            .field("tenant_queue_timeout", &self.tenant_queue_timeout)
            .field("token_rate", &self.token_rate)
            .field("token_cache_ttl", &self.token_cache_ttl)
            .field("drain", &self.drain)
            .field("tls", &self.tls.is_some())
            .field("admin_addr", &self.admin_addr)
            .field("watch_buffer", &self.watch_buffer)
            .field("watch_max_lag", &self.watch_max_lag)
            .field("event_retention", &self.event_retention)
            .field("event_prune_interval", &self.event_prune_interval)
            .finish()
    }
}

/// Why the service could not start. Each message is one line that never
/// contains the database password.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot connect to the database at {target}: {reason}")]
    Database { target: String, reason: String },
    #[error("cannot apply migrations to the database at {target}: {reason}")]
    Migration { target: String, reason: String },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("the gRPC server failed: {0}")]
    Serve(String),
}
