//! Runs the real `identityctl` binary against a real identity service (in this
//! process, on a loopback socket) backed by its own fresh Postgres database.
//!
//! Needs TEST_DATABASE_URL, an admin URL allowed to create databases; scripts/test sets it.
//! The database is named `idl_test_<IDL_TEST_RUN>_cli_<pid>` so scripts/test drops leftovers.

use std::process::{Command, Output};

use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

const ADMIN_TOKEN: &str = "cli-test-operator-token-0123456789";

fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "TEST_DATABASE_URL is not set: run the tests with scripts/test, or set it to an \
             admin connection URL such as postgres://postgres@127.0.0.1:5432/postgres"
        )
    })
}

fn with_database(admin_url: &str, database: &str) -> String {
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL names a database");
    format!("{base}/{database}")
}

async fn admin_sql(sql: &str) {
    let (client, connection) =
        tokio_postgres::connect(&admin_database_url(), tokio_postgres::NoTls)
            .await
            .expect("connect to TEST_DATABASE_URL");
    let driver = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    drop(client);
    let _ = driver.await;
}

/// A running identity service on a fresh, migrated database; stopped and dropped on drop.
struct Service {
    runtime: Runtime,
    url: String,
    database: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Service {
    fn start(name: &str) -> Service {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let run = std::env::var("IDL_TEST_RUN").unwrap_or_else(|_| "local".to_owned());
        let database = format!("idl_test_{run}_cli_{name}_{}", std::process::id());
        let (url, stop) = runtime.block_on(async {
            // Two statements: CREATE DATABASE refuses to run inside a multi-statement batch.
            admin_sql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await;
            admin_sql(&format!("CREATE DATABASE {database}")).await;
            let database_url = with_database(&admin_database_url(), &database);
            identity_service::migrate(&database_url)
                .await
                .expect("migrate the test database");
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
            let url = format!("http://{}", listener.local_addr().expect("gRPC address"));
            let (stop, stopped) = oneshot::channel::<()>();
            let settings = identity_service::ServiceSettings {
                admin_token: Some(ADMIN_TOKEN.to_owned()),
                pool_size: 4,
                ..identity_service::ServiceSettings::new(database_url)
            };
            tokio::spawn(async move {
                identity_service::serve(settings, listener, async move {
                    let _ = stopped.await;
                })
                .await
                .expect("identity service");
            });
            (url, stop)
        });
        Service {
            runtime,
            url,
            database,
            stop: Some(stop),
        }
    }

    /// Runs `identityctl ARGS` with IDENTITY_TOKEN = `token` (none when `None`).
    fn ctl(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_identityctl"));
        command
            .args(args)
            .env("IDENTITY_GRPC_URL", &self.url)
            .env_remove("IDENTITY_TOKEN");
        if let Some(token) = token {
            command.env("IDENTITY_TOKEN", token);
        }
        command.output().expect("run identityctl")
    }

    /// Runs a command as the operator and returns its stdout, failing on a non-zero exit.
    fn operator(&self, args: &[&str]) -> String {
        let output = self.ctl(Some(ADMIN_TOKEN), args);
        assert!(
            output.status.success(),
            "identityctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    fn operator_json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        serde_json::from_str(&self.operator(&args)).expect("one JSON document on stdout")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let database = self.database.clone();
        self.runtime.block_on(admin_sql(&format!(
            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
        )));
    }
}

/// The stderr of a failed command: exactly one line starting with `error: `.
fn error_line(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "exit status of {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
    stderr.trim_end().to_owned()
}

#[test]
fn operator_manages_tenants_and_tokens() {
    let service = Service::start("flow");

    let created = service.operator(&["tenants", "create", "acme", "--display-name", "Acme"]);
    assert!(created.starts_with("created tenant acme\n"), "{created}");
    let tenant = service.operator_json(&["tenants", "get", "acme"]);
    assert_eq!(tenant["slug"], "acme");
    assert_eq!(tenant["display_name"], "Acme");
    let listed = service.operator_json(&["tenants", "list"]);
    assert_eq!(listed["tenants"][0]["id"], tenant["id"]);
    assert!(service.operator(&["tenants", "list"]).contains("acme"));

    // Text output: metadata first, the secret alone on the last line.
    let issued = service.operator(&[
        "tokens", "issue", "--tenant", "acme", "--name", "okta", "--ttl", "90d",
    ]);
    let secret = issued.lines().last().expect("a last line").to_owned();
    assert!(secret.starts_with("idl_"), "{issued}");
    assert!(issued.contains("okta") && issued.contains("expires:"));

    // JSON output carries the secret too, once.
    let entra = service.operator_json(&["tokens", "issue", "--tenant", "acme", "--name", "entra"]);
    let entra_secret = entra["secret"].as_str().expect("secret").to_owned();
    assert_eq!(entra["token"]["name"], "entra");

    // Listings never show a secret.
    let list_text = service.operator(&["tokens", "list", "--tenant", "acme"]);
    let list_json = service.operator(&["tokens", "list", "--tenant", "acme", "-o", "json"]);
    for listing in [&list_text, &list_json] {
        assert!(!listing.contains(&secret) && !listing.contains(&entra_secret));
        assert!(listing.contains("okta") && listing.contains("entra"));
    }

    // A tenant token may read its own tenant, until it is revoked.
    assert!(
        service
            .ctl(Some(&secret), &["tenants", "get", "acme"])
            .status
            .success()
    );
    let revoked =
        service.operator_json(&["tokens", "revoke", "--tenant", "acme", "--name", "okta"]);
    assert!(revoked["revoke_time"].is_string(), "{revoked}");
    let refused = service.ctl(Some(&secret), &["tenants", "get", "acme"]);
    assert!(error_line(&refused).starts_with("error: unauthenticated: "));

    // Revoking by id works as well; revoked tokens show up only with --show-revoked.
    let entra_id = entra["token"]["id"].as_str().expect("token id");
    service.operator(&["tokens", "revoke", "--tenant", "acme", "--id", entra_id]);
    let live = service.operator_json(&["tokens", "list", "--tenant", "acme"]);
    assert_eq!(live["tokens"].as_array().map(Vec::len), Some(0));
    let all = service.operator_json(&["tokens", "list", "--tenant", "acme", "--show-revoked"]);
    assert_eq!(all["tokens"].as_array().map(Vec::len), Some(2));
}

#[test]
fn failures_are_one_clear_line() {
    let service = Service::start("errors");
    service.operator(&["tenants", "create", "acme"]);

    let duplicate = service.ctl(Some(ADMIN_TOKEN), &["tenants", "create", "acme"]);
    assert!(error_line(&duplicate).starts_with("error: already exists: "));

    let missing = service.ctl(Some(ADMIN_TOKEN), &["tenants", "get", "nobody-here"]);
    assert!(error_line(&missing).starts_with("error: not found: "));

    let secret = service
        .operator(&["tokens", "issue", "--tenant", "acme", "--name", "scim"])
        .lines()
        .last()
        .expect("secret")
        .to_owned();
    let denied = service.ctl(Some(&secret), &["tenants", "list"]);
    assert!(error_line(&denied).starts_with("error: permission denied: "));

    let anonymous = service.ctl(None, &["tenants", "list"]);
    assert!(
        error_line(&anonymous).ends_with("(IDENTITY_TOKEN is not set; export the operator token)")
    );

    let usage = service.ctl(Some(ADMIN_TOKEN), &["tokens", "revoke", "--tenant", "acme"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn unreachable_service_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_identityctl"))
        .args(["tenants", "list"])
        .env("IDENTITY_GRPC_URL", format!("http://127.0.0.1:{port}"))
        .env("IDENTITY_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run identityctl");
    assert_eq!(
        error_line(&output),
        format!(
            "error: cannot reach the identity service at http://127.0.0.1:{port}: connection refused"
        )
    );
}
