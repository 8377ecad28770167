//! The identity service: tenants, their bearer tokens, their users and
//! groups in Postgres, served over gRPC (`identity.v1`).
//!
//! The binary applies migrations and then calls [`serve`]; end-to-end tests
//! call [`migrate`] and [`serve`] directly on sockets of their own.

mod attr;
mod auth;
mod catalog;
mod db;
mod filter;
mod groups;
mod paging;
mod patch;
mod people;
mod rpc;
mod schema;
mod server;
mod sort;
mod status;
mod tenants;
mod tokens;
mod users;

pub use db::migrate;
pub use server::serve;

/// What [`serve`] needs; the binary fills it from flags and environment.
#[derive(Clone)]
pub struct ServiceSettings {
    pub database_url: String,
    /// The operator credential; `None` means no operator exists.
    pub admin_token: Option<String>,
    pub pool_size: u32,
}

impl ServiceSettings {
    /// The defaults every flag has, on this database, with no operator.
    pub fn new(database_url: impl Into<String>) -> Self {
        ServiceSettings {
            database_url: database_url.into(),
            admin_token: None,
            pool_size: 16,
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
