//! The processes' own lifecycle, on the real binaries: a SIGTERM drain
//! (readiness off, a delay, the listener closed, requests in flight
//! finished, exit 0), a second signal that exits at once, and a service
//! that waits for its database and migrates under a lock.

use std::time::{Duration, Instant};

use identity_lifecycle_tests::postgres::PrivatePostgres;
use identity_lifecycle_tests::process::{Process, free_addr, health, start_adapter, start_service};
use identity_lifecycle_tests::*;
use reqwest::StatusCode;
use tokio_postgres::NoTls;
use tonic_health::pb::health_check_response::ServingStatus;

/// Every service the identity service reports health for.
const SERVICES: [&str; 6] = [
    "",
    "identity.v1.UserService",
    "identity.v1.GroupService",
    "identity.v1.TenantService",
    "identity.v1.TokenService",
    "identity.v1.AuthService",
];

/// Polls `check` every 50 ms until it holds; panics after `limit`.
async fn eventually<F, R>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> R,
    R: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection of the test's own holding `users` locked, so that a user
/// creation stays in flight until the test lets it go.
async fn lock_users(database_url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock users");
    client
}

/// Waits until some statement of this database waits on a lock.
async fn until_blocked(locker: &tokio_postgres::Client) {
    let blocked = || async {
        let rows = locker
            .query(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                 WHERE NOT l.granted AND d.datname = current_database()",
                &[],
            )
            .await
            .expect("read pg_locks");
        rows[0].get::<_, i64>(0) > 0
    };
    eventually(
        "a request waits on the lock",
        Duration::from_secs(10),
        blocked,
    )
    .await;
}

/// A user creation sent through the adapter at `scim_base` on its own
/// task; its status once it is answered.
fn create_in_background(
    scim_base: &str,
    token: &str,
    user_name: &str,
) -> tokio::task::JoinHandle<reqwest::Result<StatusCode>> {
    let request = reqwest::Client::new()
        .post(format!("{scim_base}/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(user(user_name).to_string())
        .timeout(Duration::from_secs(30));
    tokio::spawn(async move { Ok(request.send().await?.status()) })
}

async fn user_exists(database_url: &str, user_name: &str) -> bool {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    let rows = client
        .query("SELECT 1 FROM users WHERE user_name = $1", &[&user_name])
        .await
        .expect("query users");
    !rows.is_empty()
}

struct Running {
    database: TestDatabase,
    service: Process,
    grpc_url: String,
    adapter: Process,
    scim_base: String,
    readyz: String,
    token: String,
}

/// A service and an adapter process on a fresh database, with these extra
/// settings, and a tenant's token.
async fn start(service_env: &[(&str, String)], adapter_env: &[(&str, String)]) -> Running {
    let database = fresh_database().await;
    let grpc = free_addr();
    let service = start_service(database.url(), grpc, service_env).await;
    let grpc_url = format!("http://{grpc}");
    let scim = free_addr();
    let adapter = start_adapter(&grpc_url, scim, adapter_env).await;
    let channel = tonic::transport::Channel::from_shared(grpc_url.clone())
        .expect("gRPC url")
        .connect_lazy();
    let token = create_tenant(&channel, "acme").await.token;
    Running {
        database,
        service,
        grpc_url,
        adapter,
        scim_base: format!("http://{scim}/scim/v2"),
        readyz: format!("http://{scim}/readyz"),
        token,
    }
}

async fn readyz(url: &str) -> Option<StatusCode> {
    let reply = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    reply.ok().map(|r| r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_service() {
    let mut stack = start(
        &[
            ("IDENTITY_SHUTDOWN_DELAY", "2s".into()),
            ("IDENTITY_SHUTDOWN_GRACE", "20s".into()),
        ],
        &[],
    )
    .await;
    assert_eq!(readyz(&stack.readyz).await, Some(StatusCode::OK));
    let locker = lock_users(stack.database.url()).await;
    let in_flight = create_in_background(&stack.scim_base, &stack.token, "inflight@acme.example");
    until_blocked(&locker).await;

    stack.service.signal("TERM");
    // 1. Readiness goes false while the server still answers.
    for service in SERVICES {
        let url = stack.grpc_url.clone();
        eventually(
            &format!("health of {service:?} is NOT_SERVING"),
            Duration::from_secs(2),
            || {
                let url = url.clone();
                async move { matches!(health(&url, service).await, Ok(ServingStatus::NotServing)) }
            },
        )
        .await;
    }
    assert_eq!(
        readyz(&stack.readyz).await,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        "the adapter follows the service's health"
    );
    // 2. After the delay the listener is closed; the held call goes on.
    let url = stack.grpc_url.clone();
    eventually("the gRPC port refuses", Duration::from_secs(5), || {
        let url = url.clone();
        async move { health(&url, "").await.is_err() }
    })
    .await;
    assert!(
        stack.service.running(),
        "the service waits for its call in flight"
    );

    locker.batch_execute("COMMIT").await.expect("unlock users");
    let answered = in_flight.await.expect("request task");
    assert_eq!(
        answered.expect("the call in flight is answered"),
        StatusCode::CREATED
    );
    let status = stack.service.exit_within(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", stack.service.log());
    assert!(user_exists(stack.database.url(), "inflight@acme.example").await);
    let log = stack.service.log();
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(log.contains("identity service stopped"), "{log}");
    assert!(stack.adapter.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_drains_the_adapter() {
    let mut stack = start(
        &[],
        &[
            ("SCIM_SHUTDOWN_DELAY", "2s".into()),
            ("SCIM_SHUTDOWN_GRACE", "20s".into()),
        ],
    )
    .await;
    let locker = lock_users(stack.database.url()).await;
    let in_flight = create_in_background(&stack.scim_base, &stack.token, "inflight@acme.example");
    until_blocked(&locker).await;

    stack.adapter.signal("INT");
    let readyz_url = stack.readyz.clone();
    eventually("/readyz fails", Duration::from_secs(2), || {
        let url = readyz_url.clone();
        async move { readyz(&url).await == Some(StatusCode::SERVICE_UNAVAILABLE) }
    })
    .await;
    // Liveness holds while draining: the process is fine, only leaving.
    let healthz = stack.readyz.replace("/readyz", "/healthz");
    assert_eq!(readyz(&healthz).await, Some(StatusCode::OK));
    eventually("the HTTP port refuses", Duration::from_secs(5), || {
        let url = readyz_url.clone();
        async move { readyz(&url).await.is_none() }
    })
    .await;
    assert!(
        stack.adapter.running(),
        "the adapter waits for its request in flight"
    );

    locker.batch_execute("COMMIT").await.expect("unlock users");
    let answered = in_flight.await.expect("request task");
    assert_eq!(
        answered.expect("the request in flight is answered"),
        StatusCode::CREATED
    );
    let status = stack.adapter.exit_within(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", stack.adapter.log());
    assert!(user_exists(stack.database.url(), "inflight@acme.example").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let mut stack = start(
        &[("IDENTITY_SHUTDOWN_DELAY", "60s".into())],
        &[("SCIM_SHUTDOWN_DELAY", "60s".into())],
    )
    .await;
    for (process, second) in [(&mut stack.service, "INT"), (&mut stack.adapter, "TERM")] {
        process.signal("TERM");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(process.running(), "the first signal starts a 60s drain");
        process.signal(second);
        let status = process.exit_within(Duration::from_secs(5)).await;
        let expected = if second == "INT" { 130 } else { 143 };
        assert_eq!(status.code(), Some(expected), "{}", process.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_cut_by_the_grace_period_still_exits() {
    let mut stack = start(
        &[
            ("IDENTITY_SHUTDOWN_DELAY", "0s".into()),
            ("IDENTITY_SHUTDOWN_GRACE", "1s".into()),
        ],
        &[],
    )
    .await;
    let locker = lock_users(stack.database.url()).await;
    let in_flight = create_in_background(&stack.scim_base, &stack.token, "cut@acme.example");
    until_blocked(&locker).await;
    stack.service.signal("TERM");
    let status = stack.service.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", stack.service.log());
    assert!(stack.service.log().contains("grace period over"));
    // The cut call is answered by the adapter, not left hanging.
    let answered = in_flight.await.expect("request task").expect("answered");
    assert!(answered.is_server_error(), "{answered}");
    locker
        .batch_execute("ROLLBACK")
        .await
        .expect("unlock users");
}

/// The service started before its database: it retries (logging the
/// host:port, never the password), then migrates and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_waits_for_its_database() {
    let postgres = PrivatePostgres::init().await;
    let grpc = free_addr();
    // A password in the URL must not be logged (trust auth ignores it).
    let url = postgres
        .url("postgres")
        .replace("postgres@", "postgres:hunter2-secret@");
    let mut service = Process::spawn(
        "identity-service",
        &[
            ("DATABASE_URL", url),
            ("IDENTITY_GRPC_ADDR", grpc.to_string()),
            ("IDENTITY_DB_STARTUP_TIMEOUT", "60s".into()),
        ],
    );
    let target = postgres.url("").replace("postgres://postgres@", "");
    let target = target.trim_end_matches('/').to_owned();
    let log_has_retries = || {
        let log = service.log();
        log.contains("database not reachable yet") && log.contains("attempt=2")
    };
    let started = Instant::now();
    while !log_has_retries() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no retries logged: {}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(service.running());
    assert!(
        health(&format!("http://{grpc}"), "").await.is_err(),
        "not serving before migrations"
    );

    postgres.start().await;
    let grpc_url = format!("http://{grpc}");
    eventually("SERVING once migrated", Duration::from_secs(30), || {
        let url = grpc_url.clone();
        async move { matches!(health(&url, "").await, Ok(ServingStatus::Serving)) }
    })
    .await;
    let log = service.log();
    assert!(
        log.contains(&target),
        "the log names host:port {target}: {log}"
    );
    assert!(!log.contains("hunter2"), "the password leaked: {log}");
    assert!(!log.contains("postgres://"), "the URL leaked: {log}");
    assert!(log.contains("applied migrations"), "{log}");
}

/// Without a database the service gives up after its start-up timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_gives_up_after_its_startup_timeout() {
    let nowhere = free_addr();
    let mut service = Process::spawn(
        "identity-service",
        &[
            ("DATABASE_URL", format!("postgres://postgres@{nowhere}/x")),
            ("IDENTITY_GRPC_ADDR", free_addr().to_string()),
            ("IDENTITY_DB_STARTUP_TIMEOUT", "2s".into()),
        ],
    );
    let status = service.exit_within(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(1), "{}", service.log());
    assert!(service.log().contains("giving up"), "{}", service.log());
}

/// Replicas starting at once migrate one at a time (an advisory lock):
/// each succeeds and every migration is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_take_turns() {
    let database = TestDatabase::empty("concurrent_migrate").await;
    let migrators: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url().to_owned();
            tokio::spawn(async move { identity_service::migrate(&url).await })
        })
        .collect();
    for migrator in migrators {
        let outcome = migrator.await.expect("migrator task");
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    let (client, connection) = tokio_postgres::connect(database.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT version) FROM __diesel_schema_migrations",
            &[],
        )
        .await
        .expect("read the migrations table");
    let (all, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(all, distinct);
    assert!(all >= 4, "every migration applied: {all}");
}
