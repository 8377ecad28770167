//! Runs the real `identityctl` binary against a real identity service (in this
//! process, on a loopback socket) backed by its own fresh Postgres database.
//!
//! Needs TEST_DATABASE_URL, an admin URL allowed to create databases; scripts/test sets it.
//! The database is a clone of the migrated template (`identity-test-db`), dropped with the service.

use std::process::{Command, Output};

use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use identity_test_db::TestDatabase;

const ADMIN_TOKEN: &str = "cli-test-operator-token-0123456789";

/// A running identity service on a fresh, migrated database; stopped and dropped on drop.
struct Service {
    /// Runs the service; dropping it stops the service before the database goes.
    _runtime: Runtime,
    url: String,
    _database: TestDatabase,
    stop: Option<oneshot::Sender<()>>,
}

impl Service {
    fn start() -> Service {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (database, url, stop) = runtime.block_on(async {
            let database =
                TestDatabase::migrated(|url| async move { identity_service::migrate(&url).await })
                    .await;
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
            let url = format!("http://{}", listener.local_addr().expect("gRPC address"));
            let (stop, stopped) = oneshot::channel::<()>();
            let settings = identity_service::ServiceSettings {
                admin_token: Some(ADMIN_TOKEN.to_owned()),
                pool_size: 4,
                ..identity_service::ServiceSettings::new(database.url())
            };
            tokio::spawn(async move {
                identity_service::serve(settings, listener, async move {
                    let _ = stopped.await;
                })
                .await
                .expect("identity service");
            });
            (database, url, stop)
        });
        Service {
            _runtime: runtime,
            url,
            _database: database,
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
        // The database is dropped after this, once the service was told to stop.
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
    let service = Service::start();

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
    let service = Service::start();
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
