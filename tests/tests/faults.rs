//! Faults survived, on the real binaries as separate processes: kill -9 of
//! the service, a restart of PostgreSQL, two replicas of each process on
//! one database, and a rolling restart of every process, each under
//! concurrent SCIM writes. Each test prints what it attempted, what was
//! acknowledged (201), what was lost (acknowledged but absent afterwards)
//! and the other answers by status; docs/reliability.md keeps one run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use identity_lifecycle_tests::postgres::PrivatePostgres;
use identity_lifecycle_tests::process::{Process, free_addr, start_adapter, start_service};
use identity_lifecycle_tests::*;
use identity_proto::v1::token_service_client::TokenServiceClient;
use identity_proto::v1::{RevokeTokenRequest, revoke_token_request};
use reqwest::StatusCode;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tonic::transport::Channel;

/// The tests of this file each run several processes and eight writers;
/// on a small machine they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Concurrent writers, as the brief's IdP would run them.
const WRITERS: usize = 8;
/// The adapter's gRPC deadline in these tests: a request must be answered
/// within it (plus the margins below), whatever the fault.
const GRPC_TIMEOUT: &str = "5s";
/// The longest any answer may take: the deadline above, the adapter's
/// channel margin (1s) and room for a loaded machine. Past it a request
/// counts as hanging.
const HANG: Duration = Duration::from_secs(12);

/// One answered (or failed) user creation.
struct Outcome {
    user_name: String,
    class: String,
    sent: Instant,
    took: Duration,
}

/// Where writers send: the adapters' SCIM bases a load balancer would
/// pick from (round robin); the rolling-restart test keeps it to the ready ones.
type Targets = Arc<RwLock<Vec<String>>>;

/// The writers of one test, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    writers: Vec<JoinHandle<Vec<Outcome>>>,
}

impl Load {
    fn start(targets: Targets, token: &str, prefix: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let writers = (0..WRITERS)
            .map(|writer| {
                let (stop, targets, http) = (Arc::clone(&stop), Arc::clone(&targets), http.clone());
                let (token, prefix) = (token.to_owned(), prefix.to_owned());
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let target = {
                            let targets = targets.read().expect("targets");
                            (!targets.is_empty())
                                .then(|| targets[(writer + n) % targets.len()].clone())
                        };
                        let Some(target) = target else {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        };
                        let user_name = format!("{prefix}-{writer}-{n}@acme.example");
                        n += 1;
                        let sent = Instant::now();
                        let class = create(&http, &target, &token, &user_name).await;
                        outcomes.push(Outcome {
                            user_name,
                            class,
                            sent,
                            took: sent.elapsed(),
                        });
                    }
                    outcomes
                })
            })
            .collect();
        Load { stop, writers }
    }

    async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for writer in self.writers {
            all.extend(writer.await.expect("writer task"));
        }
        all
    }
}

/// Sends one creation and names its outcome: the status, with "bad" when
/// a 503/504/429 lacks the SCIM error body or Retry-After; or how the
/// transport failed.
async fn create(http: &reqwest::Client, scim_base: &str, token: &str, user_name: &str) -> String {
    let sent = http
        .post(format!("{scim_base}/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(user(user_name).to_string())
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) if e.is_connect() => return "refused".into(),
        Err(e) if e.is_timeout() => return "timeout".into(),
        Err(_) => return "transport".into(),
    };
    let status = response.status();
    let retry_after = response.headers().contains_key("retry-after");
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let retryable = [503, 504, 429].contains(&status.as_u16());
    let scim_error = body["schemas"][0] == ERROR_SCHEMA && body["status"] == status.as_str();
    if retryable && !(retry_after && scim_error) {
        return format!("{} without Retry-After or SCIM body", status.as_u16());
    }
    status.as_u16().to_string()
}

/// The numbers docs/reliability.md records.
struct Tally {
    attempted: usize,
    acknowledged: usize,
    lost: Vec<String>,
    by_class: BTreeMap<String, usize>,
    slowest: Duration,
}

impl Tally {
    /// Counts `outcomes` and looks every acknowledged user up in the database.
    async fn of(outcomes: &[Outcome], database_url: &str) -> Tally {
        let acknowledged: Vec<String> = outcomes
            .iter()
            .filter(|o| o.class == "201")
            .map(|o| o.user_name.clone())
            .collect();
        let (client, connection) = tokio_postgres::connect(database_url, NoTls)
            .await
            .expect("connect to check the acknowledged writes");
        tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT user_name FROM users WHERE user_name = ANY($1) AND deleted_at IS NULL",
                &[&acknowledged],
            )
            .await
            .expect("look the acknowledged users up");
        let present: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        let mut by_class = BTreeMap::new();
        for outcome in outcomes {
            *by_class.entry(outcome.class.clone()).or_insert(0) += 1;
        }
        Tally {
            attempted: outcomes.len(),
            acknowledged: acknowledged.len(),
            lost: acknowledged
                .into_iter()
                .filter(|name| !present.contains(name))
                .collect(),
            by_class,
            slowest: outcomes.iter().map(|o| o.took).max().unwrap_or_default(),
        }
    }

    fn print(&self, test: &str) {
        println!(
            "{test}: attempted={} acknowledged={} lost={} slowest={:?} by status={:?}",
            self.attempted,
            self.acknowledged,
            self.lost.len(),
            self.slowest,
            self.by_class
        );
    }

    /// The outcomes other than those allowed, for an assertion's message.
    fn unexpected(&self, allowed: &[&str]) -> BTreeMap<&str, usize> {
        self.by_class
            .iter()
            .filter(|(class, _)| !allowed.contains(&class.as_str()))
            .map(|(class, count)| (class.as_str(), *count))
            .collect()
    }
}

fn acked_after(outcomes: &[Outcome], after: Instant) -> usize {
    outcomes
        .iter()
        .filter(|o| o.class == "201" && o.sent > after)
        .count()
}

fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("gRPC url")
        .connect_lazy()
}

fn adapter_env() -> Vec<(&'static str, String)> {
    vec![("SCIM_GRPC_TIMEOUT", GRPC_TIMEOUT.into())]
}

/// Waits until writers acknowledged `count` more creations than `now`, so
/// a recovery is seen, not assumed; bounded.
async fn until_acknowledged(targets: &Targets, token: &str, what: &str) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut n = 0;
    loop {
        let target = targets.read().expect("targets").first().cloned();
        if let Some(target) = target {
            n += 1;
            let name = format!("probe-{n}-{}@acme.example", uuid::Uuid::new_v4().simple());
            if create(&http, &target, token, &name).await == "201" {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: no 201 within 30s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_service_under_writes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let database = fresh_database().await;
    let grpc = free_addr();
    let mut service = start_service(database.url(), grpc, &[]).await;
    let scim = free_addr();
    let _adapter = start_adapter(&format!("http://{grpc}"), scim, &adapter_env()).await;
    let token = create_tenant(&channel(grpc), "acme").await.token;
    let targets: Targets = Arc::new(RwLock::new(vec![format!("http://{scim}/scim/v2")]));

    let load = Load::start(Arc::clone(&targets), &token, "kill9");
    tokio::time::sleep(Duration::from_secs(2)).await;
    service.kill_9().await;
    let outage = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarting = Instant::now();
    let restarted = start_service(database.url(), grpc, &[]).await;
    let back = Instant::now();
    until_acknowledged(&targets, &token, "the adapter recovers by itself").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcomes = load.finish().await;
    drop(restarted);

    let tally = Tally::of(&outcomes, database.url()).await;
    tally.print("kill -9 of the service");
    let during: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.sent > outage && o.sent + o.took < restarting)
        .collect();
    assert!(!during.is_empty(), "requests were sent during the outage");
    for outcome in &during {
        assert_eq!(
            outcome.class, "503",
            "during the outage: {}",
            outcome.user_name
        );
    }
    assert!(
        tally.unexpected(&["201", "503"]).is_empty(),
        "{:?}",
        tally.by_class
    );
    assert!(
        acked_after(&outcomes, back) > 0,
        "writes acknowledged after the restart"
    );
    assert_eq!(tally.lost, Vec::<String>::new(), "acknowledged but missing");
    assert!(tally.slowest < HANG, "slowest answer {:?}", tally.slowest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_under_writes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let postgres = PrivatePostgres::init().await;
    postgres.start().await;
    let database_url = postgres.url("postgres");
    let grpc = free_addr();
    let mut service = start_service(&database_url, grpc, &[]).await;
    let scim = free_addr();
    let mut adapter = start_adapter(&format!("http://{grpc}"), scim, &adapter_env()).await;
    let token = create_tenant(&channel(grpc), "acme").await.token;
    let targets: Targets = Arc::new(RwLock::new(vec![format!("http://{scim}/scim/v2")]));

    let load = Load::start(Arc::clone(&targets), &token, "pgrestart");
    tokio::time::sleep(Duration::from_secs(2)).await;
    postgres.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    postgres.start().await;
    let back = Instant::now();
    until_acknowledged(&targets, &token, "the service recovers by itself").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcomes = load.finish().await;

    let tally = Tally::of(&outcomes, &database_url).await;
    tally.print("restart of PostgreSQL");
    assert!(
        service.running(),
        "the service lived through it:\n{}",
        service.log()
    );
    assert!(adapter.running(), "the adapter lived through it");
    assert!(
        tally.unexpected(&["201", "503", "504"]).is_empty(),
        "{:?}",
        tally.by_class
    );
    assert!(
        tally.by_class.contains_key("503"),
        "the outage was seen: {:?}",
        tally.by_class
    );
    assert!(
        acked_after(&outcomes, back) > 0,
        "writes acknowledged after the restart"
    );
    assert_eq!(tally.lost, Vec::<String>::new(), "acknowledged but missing");
    assert!(tally.slowest < HANG, "a request hung: {:?}", tally.slowest);
}

/// Two services and two adapters on one database.
struct Replicas {
    /// Stopped before their database is dropped.
    _processes: Vec<Process>,
    _database: TestDatabase,
    grpc: [SocketAddr; 2],
    scim: [String; 2],
}

impl Replicas {
    async fn start(service_env: &[(&str, String)]) -> Replicas {
        let database = fresh_database().await;
        let grpc = [free_addr(), free_addr()];
        let mut processes = Vec::new();
        let mut scim = Vec::new();
        for addr in grpc {
            processes.push(start_service(database.url(), addr, service_env).await);
            let listen = free_addr();
            processes.push(start_adapter(&format!("http://{addr}"), listen, &adapter_env()).await);
            scim.push(format!("http://{listen}/scim/v2"));
        }
        Replicas {
            _database: database,
            grpc,
            scim: [scim[0].clone(), scim[1].clone()],
            _processes: processes,
        }
    }
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_of_each_keep_the_rules() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let replicas = Replicas::start(&[]).await;
    let token = create_tenant(&channel(replicas.grpc[0]), "acme")
        .await
        .token;
    let http = reqwest::Client::new();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();

    // Uniqueness: the same userName sent 8 times at once through both
    // adapters is created once; the others are 409 uniqueness.
    for round in 0..5 {
        let name = format!("same-{round}@acme.example");
        let attempts = (0..WRITERS).map(|i| {
            let url = format!("{}/Users", replicas.scim[i % 2]);
            let (http, token, body) = (http.clone(), token.clone(), user(&name));
            async move {
                send(&http, reqwest::Method::POST, &url, &token, Some(body))
                    .await
                    .0
            }
        });
        let statuses = futures::future::join_all(attempts).await;
        for status in &statuses {
            *by_status.entry(status.as_u16()).or_insert(0) += 1;
        }
        let created = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        let conflicts = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!(
            (created, conflicts),
            (1, WRITERS - 1),
            "{name}: {statuses:?}"
        );
    }

    // Membership: members added at once through both adapters all stay.
    let (status, group) = send(
        &http,
        reqwest::Method::POST,
        &format!("{}/Groups", replicas.scim[0]),
        &token,
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "both"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let group_id = group["id"].as_str().expect("group id").to_owned();
    let mut members = Vec::new();
    for i in 0..WRITERS {
        let (status, created) = send(
            &http,
            reqwest::Method::POST,
            &format!("{}/Users", replicas.scim[i % 2]),
            &token,
            Some(user(&format!("member-{i}@acme.example"))),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        members.push(created["id"].as_str().expect("user id").to_owned());
    }
    let adds = members.iter().enumerate().map(|(i, id)| {
        let url = format!("{}/Groups/{group_id}", replicas.scim[i % 2]);
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": id}]}
        ]});
        let (http, token) = (http.clone(), token.clone());
        async move {
            send(&http, reqwest::Method::PATCH, &url, &token, Some(body))
                .await
                .0
        }
    });
    for status in futures::future::join_all(adds).await {
        *by_status.entry(status.as_u16()).or_insert(0) += 1;
        assert!(status.is_success(), "member add: {status}");
    }
    for scim in &replicas.scim {
        let (_, read) = send(
            &http,
            reqwest::Method::GET,
            &format!("{scim}/Groups/{group_id}"),
            &token,
            None,
        )
        .await;
        let mut seen: Vec<String> = read["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|m| m["value"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        seen.sort();
        let mut expected = members.clone();
        expected.sort();
        assert_eq!(seen, expected, "members read through {scim}");
    }

    // Revocation: a token revoked through one service stops working
    // through the other adapter and service within the token cache TTL
    // (1s) — a bound the operators are promised, not a speed measure.
    let second = issue_token(&channel(replicas.grpc[0]), "acme", "second").await;
    let users_b = format!("{}/Users", replicas.scim[1]);
    let (status, _) = send(&http, reqwest::Method::GET, &users_b, &second, None).await;
    assert_eq!(status, StatusCode::OK, "the token works through replica B");
    TokenServiceClient::with_interceptor(channel(replicas.grpc[0]), Bearer::new(ADMIN_TOKEN))
        .revoke_token(RevokeTokenRequest {
            tenant: "acme".into(),
            token: Some(revoke_token_request::Token::Name("second".into())),
        })
        .await
        .expect("revoke through replica A");
    let revoked = Instant::now();
    loop {
        let (status, _) = send(&http, reqwest::Method::GET, &users_b, &second, None).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked.elapsed() < Duration::from_secs(3),
            "the revoked token still works through replica B"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "two replicas of each: uniqueness, membership and revocation held; by status={by_status:?}; revocation seen by the other replica after {:?}",
        revoked.elapsed()
    );
    let (status, _) = send(&http, reqwest::Method::GET, &users_b, &token, None).await;
    assert_eq!(status, StatusCode::OK, "the first token still works");
}

/// A load balancer's view: every 100 ms, the adapters whose /readyz
/// answers 200 become the targets.
fn balance(adapters: Vec<String>, targets: Targets, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .expect("HTTP client");
        while !stop.load(Ordering::Relaxed) {
            let mut ready = Vec::new();
            for scim in &adapters {
                let readyz = scim.replace("/scim/v2", "/readyz");
                if http
                    .get(&readyz)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
                {
                    ready.push(scim.clone());
                }
            }
            *targets.write().expect("targets") = ready;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_every_process_under_writes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let database = fresh_database().await;
    let drain_service = [
        ("IDENTITY_SHUTDOWN_DELAY", "2s".to_owned()),
        ("IDENTITY_SHUTDOWN_GRACE", "10s".to_owned()),
    ];
    let mut drain_adapter = adapter_env();
    drain_adapter.extend([
        ("SCIM_SHUTDOWN_DELAY", "2s".to_owned()),
        ("SCIM_SHUTDOWN_GRACE", "10s".to_owned()),
    ]);
    let grpc = [free_addr(), free_addr()];
    let scim = [free_addr(), free_addr()];
    let mut services = Vec::new();
    let mut adapters = Vec::new();
    for i in 0..2 {
        services.push(start_service(database.url(), grpc[i], &drain_service).await);
        adapters.push(start_adapter(&format!("http://{}", grpc[i]), scim[i], &drain_adapter).await);
    }
    let token = create_tenant(&channel(grpc[0]), "acme").await.token;
    let bases: Vec<String> = scim.iter().map(|a| format!("http://{a}/scim/v2")).collect();
    let targets: Targets = Arc::new(RwLock::new(bases.clone()));
    let stop_balancing = Arc::new(AtomicBool::new(false));
    let balancer = balance(bases, Arc::clone(&targets), Arc::clone(&stop_balancing));

    let load = Load::start(Arc::clone(&targets), &token, "rolling");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..2 {
        services[i].signal("TERM");
        let status = services[i].exit_within(Duration::from_secs(20)).await;
        assert_eq!(status.code(), Some(0), "{}", services[i].log());
        services[i] = start_service(database.url(), grpc[i], &drain_service).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for i in 0..2 {
        adapters[i].signal("TERM");
        let status = adapters[i].exit_within(Duration::from_secs(20)).await;
        assert_eq!(status.code(), Some(0), "{}", adapters[i].log());
        adapters[i] = start_adapter(&format!("http://{}", grpc[i]), scim[i], &drain_adapter).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let outcomes = load.finish().await;
    stop_balancing.store(true, Ordering::Relaxed);
    balancer.await.expect("balancer task");

    let tally = Tally::of(&outcomes, database.url()).await;
    tally.print("rolling restart of every process");
    assert_eq!(tally.lost, Vec::<String>::new(), "acknowledged but missing");
    assert!(
        tally.unexpected(&["201"]).is_empty(),
        "{:?}",
        tally.by_class
    );
    assert!(tally.slowest < HANG, "slowest answer {:?}", tally.slowest);
}
