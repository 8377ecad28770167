//! Connection pool, embedded migrations and the errors every store shares.

use std::time::Duration;

use diesel::ConnectionError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, PoolableConnection, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StartupError;
use crate::sql_spans::SqlSpans;

/// Embedded at build time; build.rs reruns the build when the folder changes.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Serialises concurrent migrators (several replicas starting at once).
const MIGRATION_LOCK_KEY: i64 = 0x0069_646c_5f6d_6967;

/// How long a request waits for a pooled connection before UNAVAILABLE.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) type Pool = diesel_async::pooled_connection::bb8::Pool<AsyncPgConnection>;
pub(crate) type Conn<'a> =
    diesel_async::pooled_connection::bb8::PooledConnection<'a, AsyncPgConnection>;

/// Storage failures that are not a domain outcome.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A deadlock or serialization failure: running the transaction again
    /// may succeed.
    #[error("the request collided with concurrent changes; retry it")]
    Conflict(String),
    /// Cancelled by `statement_timeout`: the database was too slow or a
    /// lock was held too long.
    #[error("the database did not answer in time; retry later")]
    TimedOut(String),
    #[error("database error: {0}")]
    Internal(String),
}

/// Postgres reports these with SQLSTATEs that diesel folds into
/// `DatabaseErrorKind::Unknown`, so only the (server-side English) message
/// tells them apart: 40P01 and 57014.
const DEADLOCK_MESSAGE: &str = "deadlock detected";
const STATEMENT_TIMEOUT_MESSAGE: &str = "canceling statement due to statement timeout";
/// The server ending sessions as it stops or restarts (57P01, 57P02,
/// 57P03): the call failed for want of a database, as when it is down.
const SERVER_STOPPING_MESSAGES: [&str; 4] = [
    "terminating connection due to administrator command",
    "terminating connection due to crash of another server process",
    "the database system is shutting down",
    "the database system is starting up",
];

impl From<DieselError> for StoreError {
    fn from(err: DieselError) -> Self {
        match &err {
            DieselError::DatabaseError(
                DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
                _,
            ) => StoreError::Unavailable(err.to_string()),
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                StoreError::Conflict(err.to_string())
            }
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message() == DEADLOCK_MESSAGE =>
            {
                StoreError::Conflict(err.to_string())
            }
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if SERVER_STOPPING_MESSAGES.contains(&info.message()) =>
            {
                StoreError::Unavailable(err.to_string())
            }
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message() == STATEMENT_TIMEOUT_MESSAGE =>
            {
                StoreError::TimedOut(err.to_string())
            }
            _ => StoreError::Internal(err.to_string()),
        }
    }
}

/// A domain error that may wrap a [`StoreError`], so a write can be
/// retried when only a collision with another transaction failed it.
pub(crate) trait MaybeConflict {
    fn is_conflict(&self) -> bool;
}

impl MaybeConflict for StoreError {
    fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

/// Runs a whole write transaction (an expression yielding a future of
/// `Result<_, E: MaybeConflict>`), and once more if it lost a deadlock or a
/// serialization conflict: Postgres rolled it back, so a second run starts
/// clean. A second conflict is answered (UNAVAILABLE with retry-after).
/// A macro, not a function taking a closure: the expression borrows the
/// connection afresh on each run, and the RPC future stays `Send`.
macro_rules! retry_conflict {
    ($write:expr) => {
        match $write.await {
            Err(err) if $crate::db::MaybeConflict::is_conflict(&err) => {
                tracing::debug!("write collided with a concurrent transaction: retrying once");
                $write.await
            }
            done => done,
        }
    };
}
pub(crate) use retry_conflict;

impl From<bb8::RunError<PoolError>> for StoreError {
    fn from(err: bb8::RunError<PoolError>) -> Self {
        match err {
            bb8::RunError::TimedOut => {
                StoreError::Unavailable("timed out waiting for a connection".into())
            }
            bb8::RunError::User(e) => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// Takes a connection from the pool.
pub(crate) async fn conn(pool: &Pool) -> Result<Conn<'_>, StoreError> {
    Ok(pool.get().await?)
}

/// True when `err` is a unique violation of the named index.
pub(crate) fn is_unique_violation(err: &DieselError, index: &str) -> bool {
    matches!(err, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
        if info.constraint_name() == Some(index))
}

/// Opens the pool after one direct connection, whose error explains what is
/// wrong where a pool would only time out.
/// Every connection gets `statement_timeout`, so no statement outlives an
/// abandoned request by more than that.
pub(crate) async fn connect_pool(
    database_url: &str,
    size: u32,
    statement_timeout: Duration,
) -> Result<Pool, StartupError> {
    if size == 0 {
        return Err(StartupError::Config(
            "the database pool size must be at least 1".into(),
        ));
    }
    let timeout_ms = statement_timeout.as_millis();
    if timeout_ms == 0 {
        return Err(StartupError::Config(
            "the statement timeout must be at least 1ms".into(),
        ));
    }
    establish(database_url).await?;
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.custom_setup = Box::new(move |url| {
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.set_instrumentation(SqlSpans::default());
            // Generic plans from the first execution: a custom plan per call
            // is planned anew every time, and Postgres keeps choosing custom
            // plans for a statement whose generic estimate looks worse (an
            // array of ids it cannot see), while statistics it lacks (a new
            // tenant, a table autovacuum has not analyzed yet) mislead exactly
            // the custom plans. Every query here is shaped so that the generic
            // plan is the right one.
            let set = format!(
                "SET statement_timeout = {timeout_ms}; SET plan_cache_mode = force_generic_plan"
            );
            diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &set)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    // A checkout asks the driver, not the server: the default `SELECT 1` on
    // every checkout was one more round trip on every request. A connection
    // the server closed is known closed to its driver and is not handed out;
    // one that breaks in use is dropped when it comes back.
    config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
        let broken = PoolableConnection::is_broken(conn);
        Box::pin(async move {
            if broken {
                Err(DieselError::DatabaseError(
                    DatabaseErrorKind::ClosedConnection,
                    Box::new("the connection is closed".to_owned()),
                ))
            } else {
                Ok(())
            }
        })
    }));
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Pool::builder()
        .max_size(size)
        .connection_timeout(CHECKOUT_TIMEOUT)
        .retry_connection(false)
        .build(manager)
        .await
        .map_err(|e| StartupError::Database {
            target: redacted_target(database_url),
            reason: scrub(database_url, &e.to_string()),
        })
}

/// Connects through tokio-postgres directly: its error chain says why
/// (e.g. "connection refused"), which diesel-async's own message drops.
async fn establish(database_url: &str) -> Result<AsyncPgConnection, StartupError> {
    let config: tokio_postgres::Config = database_url.parse().map_err(|e| {
        StartupError::Config(format!(
            "invalid DATABASE_URL: {}",
            scrub(database_url, &innermost_cause(&e))
        ))
    })?;
    let failed = |reason: String| StartupError::Database {
        target: redacted_target(database_url),
        reason: scrub(database_url, &reason),
    };
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| failed(innermost_cause(&e)))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection)
        .await
        .map_err(|e| failed(innermost_cause(&e)))
}

/// Applies every pending embedded migration to the database at `database_url`.
pub async fn migrate(database_url: &str) -> Result<(), StartupError> {
    let conn = establish(database_url).await?;
    let fail = |reason: String| StartupError::Migration {
        target: redacted_target(database_url),
        reason: scrub(database_url, &reason),
    };
    // The wrapper blocks on the runtime, so it must live on a blocking thread.
    let applied = tokio::task::spawn_blocking(move || {
        use diesel::connection::SimpleConnection;
        let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> =
            AsyncConnectionWrapper::from(conn);
        wrapper
            .batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
            .map_err(|e| e.to_string())?;
        let result = wrapper
            .run_pending_migrations(MIGRATIONS)
            .map(|done| done.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| e.to_string());
        wrapper
            .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
            .map_err(|e| e.to_string())?;
        result
    })
    .await
    .map_err(|e| fail(e.to_string()))?
    .map_err(fail)?;
    if applied.is_empty() {
        tracing::info!("database schema is up to date");
    } else {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    Ok(())
}

/// `host:port` of a connection string, without user or password.
pub(crate) fn redacted_target(database_url: &str) -> String {
    let url = database_url.trim();
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"));
    let (host, port) = match rest {
        Some(rest) => {
            let authority = rest.split(['/', '?']).next().unwrap_or_default();
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            split_host_port(host_port)
        }
        None => {
            let value = |key: &str| {
                url.split_whitespace()
                    .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
                    .map(str::to_owned)
            };
            (value("host"), value("port"))
        }
    };
    format!(
        "{}:{}",
        host.filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into()),
        port.filter(|p| !p.is_empty())
            .unwrap_or_else(|| "5432".into())
    )
}

fn split_host_port(host_port: &str) -> (Option<String>, Option<String>) {
    // A bracketed IPv6 host keeps its colons.
    let port_sep = match host_port.rfind(']') {
        Some(end) => host_port[end..].find(':').map(|i| i + end),
        None => host_port.rfind(':'),
    };
    match port_sep {
        Some(i) => (
            Some(host_port[..i].to_owned()),
            Some(host_port[i + 1..].to_owned()),
        ),
        None => (Some(host_port.to_owned()), None),
    }
}

/// The innermost cause, e.g. "connection refused" rather than a chain of wrappers.
fn innermost_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut source = err;
    while let Some(next) = source.source() {
        source = next;
    }
    let text = source.to_string();
    let text = text.strip_prefix("FATAL: ").unwrap_or(&text);
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => err.to_string(),
    }
}

/// Removes the password of `database_url` from a message, should a driver echo it.
fn scrub(database_url: &str, message: &str) -> String {
    match password(database_url) {
        Some(pw) if !pw.is_empty() => message.replace(pw, "***"),
        _ => message.to_owned(),
    }
}

fn password(database_url: &str) -> Option<&str> {
    let rest = database_url
        .strip_prefix("postgres://")
        .or_else(|| database_url.strip_prefix("postgresql://"));
    match rest {
        Some(rest) => {
            let authority = rest.split(['/', '?']).next()?;
            let (userinfo, _) = authority.rsplit_once('@')?;
            Some(userinfo.split_once(':')?.1)
        }
        None => database_url
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix("password=")),
    }
}

/// Declares a SQL statement as a type of its own. Diesel caches a prepared
/// statement per connection by its type, so each connection plans it once;
/// a `sql_query` is planned on every call, and for our short statements
/// planning cost about as much as running them. The text comes in pieces
/// around the parameters: the first piece, then after each field (bound in
/// the order the fields are declared, with the SQL type after `as`) the
/// piece that follows it. A statement borrowing its parameters is declared
/// with the lifetime `<'a>`.
macro_rules! prepared_statement {
    ($(#[$doc:meta])* $name:ident -> $sql_type:ty [$text:expr $(,)?]) => {
        $(#[$doc])*
        struct $name;

        impl diesel::query_builder::QueryId for $name {
            type QueryId = $name;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        $crate::db::prepared_statement!(@text $name, $sql_type, {} [$text]);
    };
    (
        $(#[$doc:meta])*
        $name:ident<'a> -> $sql_type:ty {
            $($field:ident: $rust:ty as $bind:ty),* $(,)?
        }
        [$first:expr $(, $rest:expr)* $(,)?]
    ) => {
        $(#[$doc])*
        struct $name<'a> {
            $($field: $rust),*
        }

        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        $crate::db::prepared_statement!(
            @text $name<'_>, $sql_type, { $($field as $bind),* } [$first $(, $rest)*]
        );
    };
    (
        $(#[$doc:meta])*
        $name:ident -> $sql_type:ty {
            $($field:ident: $rust:ty as $bind:ty),* $(,)?
        }
        [$first:expr $(, $rest:expr)* $(,)?]
    ) => {
        $(#[$doc])*
        struct $name {
            $($field: $rust),*
        }

        impl diesel::query_builder::QueryId for $name {
            type QueryId = $name;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        $crate::db::prepared_statement!(
            @text $name, $sql_type, { $($field as $bind),* } [$first $(, $rest)*]
        );
    };
    (
        @text $self_type:ty, $sql_type:ty, { $($field:ident as $bind:ty),* }
        [$first:expr $(, $rest:expr)*]
    ) => {
        impl diesel::query_builder::Query for $self_type {
            type SqlType = $sql_type;
        }

        impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for $self_type {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
            ) -> diesel::QueryResult<()> {
                out.push_sql($first);
                $(
                    out.push_bind_param::<$bind, _>(&self.$field)?;
                    out.push_sql($rest);
                )*
                Ok(())
            }
        }
    };
}

pub(crate) use prepared_statement;

#[cfg(test)]
mod tests {
    use super::*;
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

    fn admin_url() -> String {
        std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| panic!("TEST_DATABASE_URL is not set: these tests need Postgres"))
    }

    async fn connect() -> AsyncPgConnection {
        AsyncPgConnection::establish(&admin_url())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    }

    /// Takes advisory lock `second` while holding `first`, then ends the
    /// transaction (a deadlock victim must roll back to free the other).
    async fn lock_both(
        mut conn: AsyncPgConnection,
        first: i64,
        second: i64,
        both_hold_first: std::sync::Arc<tokio::sync::Barrier>,
    ) -> Result<usize, DieselError> {
        conn.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({first})"))
            .await?;
        both_hold_first.wait().await;
        let taken = diesel::sql_query(format!("SELECT pg_advisory_xact_lock({second})"))
            .execute(&mut conn)
            .await;
        let end = if taken.is_ok() { "COMMIT" } else { "ROLLBACK" };
        conn.batch_execute(end).await?;
        taken
    }

    #[tokio::test]
    async fn a_real_deadlock_is_a_conflict() {
        let a = 0x7e57_0000_0000 + i64::from(rand::random::<u32>());
        let b = a + 1;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let one = tokio::spawn(lock_both(connect().await, a, b, barrier.clone()));
        let two = tokio::spawn(lock_both(connect().await, b, a, barrier));
        let results = [one.await, two.await].map(|r| r.unwrap_or_else(|e| panic!("{e}")));
        let errors: Vec<StoreError> = results
            .into_iter()
            .filter_map(Result::err)
            .map(StoreError::from)
            .collect();
        assert_eq!(errors.len(), 1, "exactly one deadlock victim: {errors:?}");
        assert!(errors[0].is_conflict(), "{errors:?}");
    }

    #[tokio::test]
    async fn a_statement_timeout_is_timed_out() {
        let mut conn = connect().await;
        conn.batch_execute("SET statement_timeout = 50")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let err = diesel::sql_query("SELECT pg_sleep(30)")
            .execute(&mut conn)
            .await
            .err()
            .unwrap_or_else(|| panic!("pg_sleep(30) outlived a 50ms statement timeout"));
        assert!(matches!(StoreError::from(err), StoreError::TimedOut(_)));
    }

    #[derive(diesel::QueryableByName)]
    struct Backend {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }

    #[tokio::test]
    async fn a_session_the_server_ends_is_unavailable() {
        let mut victim = connect().await;
        let mut admin = connect().await;
        let backend: Backend = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result(&mut victim)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // What a fast shutdown or restart of the server does to every session.
        diesel::sql_query(format!("SELECT pg_terminate_backend({})", backend.pid))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let err = diesel::sql_query("SELECT 1")
            .execute(&mut victim)
            .await
            .err()
            .unwrap_or_else(|| panic!("a terminated session answered"));
        let err = StoreError::from(err);
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }

    #[tokio::test]
    async fn every_pooled_connection_has_the_statement_timeout() {
        let pool = connect_pool(&admin_url(), 2, Duration::from_millis(1234))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut first = conn(&pool).await.unwrap_or_else(|e| panic!("{e}"));
        let mut second = conn(&pool).await.unwrap_or_else(|e| panic!("{e}"));
        for conn in [&mut first, &mut second] {
            let shown: Setting = diesel::sql_query("SHOW statement_timeout")
                .get_result(&mut **conn)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(shown.statement_timeout, "1234ms");
        }
    }

    #[tokio::test]
    async fn conflicts_are_retried_once() {
        let runs = std::sync::atomic::AtomicU32::new(0);
        let write = |fail_until: u32| {
            let run = runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                if run < fail_until {
                    Err(StoreError::Conflict("deadlock detected".into()))
                } else {
                    Ok(run)
                }
            }
        };
        assert!(matches!(retry_conflict!(write(1)), Ok(1)));
        runs.store(0, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            retry_conflict!(write(5)),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            std::sync::atomic::AtomicU32::load(&runs, std::sync::atomic::Ordering::Relaxed),
            2
        );
        runs.store(0, std::sync::atomic::Ordering::Relaxed);
        let internal = retry_conflict!(async {
            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err::<(), _>(StoreError::Internal("syntax".into()))
        });
        assert!(matches!(internal, Err(StoreError::Internal(_))));
        assert_eq!(
            std::sync::atomic::AtomicU32::load(&runs, std::sync::atomic::Ordering::Relaxed),
            1
        );
    }

    #[test]
    fn target_never_shows_credentials() {
        assert_eq!(
            redacted_target("postgres://app:s3cret@db.example:6432/identity?sslmode=disable"),
            "db.example:6432"
        );
        assert_eq!(
            redacted_target("postgresql://postgres@127.0.0.1/x"),
            "127.0.0.1:5432"
        );
        assert_eq!(redacted_target("postgres://[::1]:5433/x"), "[::1]:5433");
        assert_eq!(
            redacted_target("host=db port=7000 user=a password=pw"),
            "db:7000"
        );
        assert_eq!(redacted_target("postgres:///x"), "localhost:5432");
    }

    #[test]
    fn scrub_hides_password() {
        assert_eq!(
            scrub("postgres://u:hunter2@h/db", "auth failed for hunter2"),
            "auth failed for ***"
        );
        assert_eq!(scrub("host=h password=pw", "pw leaked"), "*** leaked");
        assert_eq!(scrub("postgres://u@h/db", "no secret"), "no secret");
    }
}
