//! The one way every crate's tests get a database.
//!
//! Each test process migrates one template database the first time it needs
//! one and clones it (`CREATE DATABASE … TEMPLATE`) per test, which costs a
//! file copy instead of a migration run. Every database is named
//! `idl_test_<run>_…`, where `<run>` is `IDL_TEST_RUN` (set by `scripts/test`),
//! so a run that is killed midway leaves nothing the script cannot find and
//! drop. A [`TestDatabase`] is dropped `WITH (FORCE)` when the value is.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{Mutex, OnceCell};

/// The Postgres server every test database lives on, as an admin URL.
/// Tests refuse to pass silently without one.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "TEST_DATABASE_URL is not set: run the tests with scripts/test, or set it to an \
             admin connection URL such as postgres://postgres@127.0.0.1:5432/postgres"
        )
    })
}

/// This run's id: `IDL_TEST_RUN`, or a random one per process.
pub fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        std::env::var("IDL_TEST_RUN")
            .unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string()[..12].to_string())
    })
}

/// `admin` with its database name replaced by `database`; query parameters stay.
pub fn database_url(admin: &str, database: &str) -> String {
    let (scheme, rest) = admin
        .split_once("://")
        .unwrap_or_else(|| panic!("TEST_DATABASE_URL must be a postgres:// URL"));
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    match rest.split_once('?') {
        Some((_, query)) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

/// Runs `sql` on the admin connection; panics with the statement on failure.
pub async fn admin_sql(sql: &str) {
    let (client, connection) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL: {e}"));
    let driver = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    drop(client);
    let _ = driver.await;
}

/// A database of this run, dropped `WITH (FORCE)` when the value is dropped,
/// also when the test panics.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// A new empty database, for tests of the migrations themselves.
    pub async fn empty(label: &str) -> TestDatabase {
        let name = unique_name(label);
        admin_sql(&format!("CREATE DATABASE {name}")).await;
        TestDatabase::named(name)
    }

    /// A new database with every migration applied: a clone of this
    /// process's template, which `migrate` (given the template's URL) builds
    /// the first time. Every caller in one process must pass the same
    /// migration.
    pub async fn migrated<M, F, E>(migrate: M) -> TestDatabase
    where
        M: FnOnce(String) -> F,
        F: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        // CREATE DATABASE … TEMPLATE refuses while another clone reads the template.
        static CLONING: Mutex<()> = Mutex::const_new(());
        let template = template(migrate).await;
        let name = unique_name("db");
        let _cloning = CLONING.lock().await;
        admin_sql(&format!("CREATE DATABASE {name} TEMPLATE {template}")).await;
        TestDatabase::named(name)
    }

    fn named(name: String) -> TestDatabase {
        let url = database_url(&admin_url(), &name);
        TestDatabase { name, url }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // A thread of its own: Drop may run inside a runtime, where blocking is refused.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls).await
                {
                    let driver = tokio::spawn(connection);
                    let _ = client.batch_execute(&sql).await;
                    drop(client);
                    let _ = driver.await;
                }
            });
        })
        .join();
    }
}

/// `idl_test_<run>_<pid>_<label>_<n>`: unique within the run, findable by the script.
fn unique_name(label: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "idl_test_{}_{}_{label}_{}",
        run_id(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The migrated template of this process, made once.
async fn template<M, F, E>(migrate: M) -> &'static str
where
    M: FnOnce(String) -> F,
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("idl_test_{}_tmpl_{}", run_id(), std::process::id());
            admin_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            admin_sql(&format!("CREATE DATABASE {name}")).await;
            migrate(database_url(&admin_url(), &name))
                .await
                .unwrap_or_else(|e| panic!("migrating the template database {name}: {e}"));
            name
        })
        .await
}
