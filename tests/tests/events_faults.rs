//! Lifecycle events under faults, on the real binaries as separate
//! processes: a watcher following a tenant while the service is killed
//! with kill -9 under concurrent writes and restarted on the same database,
//! and a write killed inside its transaction. docs/reliability.md keeps
//! what they show.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use identity_lifecycle_tests::events::*;
use identity_lifecycle_tests::process::{channel, free_addr, start_adapter, start_service};
use identity_lifecycle_tests::*;
use identity_proto::v1::{Event, EventType, ListEventsRequest};
use reqwest::StatusCode;
use tokio::task::JoinHandle;

/// Both tests run several processes; on a small machine, one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WRITERS: usize = 4;

/// The advisory lock key the killed-transaction test holds event inserts on.
const HOLD_KEY: i64 = 7_100_001;

/// The sequencer's advisory lock key (`SEQUENCE_LOCK_KEY` in
/// services/identity/src/events/store.rs): holding it stops every round.
const SEQUENCE_LOCK_KEY: i64 = 0x0069_646c_5f65_7673;

async fn sql(database_url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

/// What a resuming watcher saw.
#[derive(Default)]
struct Seen {
    events: Vec<Event>,
    /// How each stream ended before the last, by status code.
    breaks: Vec<String>,
}

/// Follows the tenant from after `base` as a client should: on any end of
/// the stream it reconnects with the last sequence it received, until it
/// has received `until` (once the test knows it).
fn follow(
    grpc: SocketAddr,
    token: String,
    base: u64,
    seen: Arc<Mutex<Seen>>,
    mut until: tokio::sync::watch::Receiver<Option<u64>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client = event_client(channel(grpc), &token);
        let mut last = base;
        let done = |last: u64, until: &tokio::sync::watch::Receiver<Option<u64>>| {
            until.borrow().is_some_and(|target| last >= target)
        };
        while !done(last, &until) {
            let ended = match try_watch(client.clone(), after(last)).await {
                Ok(mut stream) => loop {
                    tokio::select! {
                        next = stream.message() => match next {
                            Ok(Some(event)) => {
                                last = event.sequence;
                                seen.lock().expect("seen").events.push(event);
                            }
                            Ok(None) => break "ended without status".to_owned(),
                            Err(status) => break format!("{:?}", status.code()),
                        },
                        _ = until.changed() => {}
                    }
                    if done(last, &until) {
                        return;
                    }
                },
                Err(status) => format!("{:?} (connecting)", status.code()),
            };
            seen.lock().expect("seen").breaks.push(ended);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// SCIM creations by concurrent writers until stopped; each returns the
/// userNames it sent with their statuses (0: no answer).
fn write_users(
    scim_base: String,
    token: String,
    stop: Arc<AtomicBool>,
) -> Vec<JoinHandle<Vec<(String, u16)>>> {
    let http = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .expect("HTTP client");
    (0..WRITERS)
        .map(|writer| {
            write_users_as(
                http.clone(),
                scim_base.clone(),
                token.clone(),
                Arc::clone(&stop),
                format!("w{writer}-"),
            )
        })
        .collect()
}

/// One writer of [`write_users`]: users `{prefix}{n}@acme.example` until
/// stopped, pausing after a write that failed (the service is away: do
/// not spin).
fn write_users_as(
    http: reqwest::Client,
    scim_base: String,
    token: String,
    stop: Arc<AtomicBool>,
    prefix: String,
) -> JoinHandle<Vec<(String, u16)>> {
    tokio::spawn(async move {
        let mut sent = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let user_name = format!("{prefix}{n}@acme.example");
            n += 1;
            let status = post_user(&http, &scim_base, &token, &user_name)
                .await
                .map_or(0, |r| r.status().as_u16());
            if status != 201 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sent.push((user_name, status));
        }
        sent
    })
}

/// Waits until the watcher has received `count` events.
async fn until_seen(seen: &Arc<Mutex<Seen>>, count: usize, what: &str) {
    let started = Instant::now();
    while seen.lock().expect("seen").events.len() < count {
        assert!(started.elapsed() < PATIENCE, "{what}: not {count} events");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Once the writes are over: tells the [`follow`]ing watcher the tenant's
/// newest sequence, waits until it has received it, and returns that
/// sequence with everything the watcher saw.
async fn catch_up(
    stack: &ProcessStack,
    set_until: &tokio::sync::watch::Sender<Option<u64>>,
    watcher: JoinHandle<()>,
    seen: &Mutex<Seen>,
) -> (u64, Seen) {
    let last = newest(stack.events(&stack.reader)).await;
    set_until.send(Some(last)).expect("the watcher listens");
    tokio::time::timeout(PATIENCE, watcher)
        .await
        .expect("the watcher catches up")
        .expect("watcher task");
    (last, std::mem::take(&mut *seen.lock().expect("seen")))
}

fn user_name_of(event: &Event) -> String {
    event
        .changes
        .get("userName")
        .and_then(|change| change.after.clone())
        .map(identity_proto::value_to_json)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watcher_resumes_after_kill_9_of_the_service_under_writes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut stack = ProcessStack::start(&[("SCIM_GRPC_TIMEOUT", "5s".to_owned())], "reader").await;
    let grpc = stack.grpc;
    let base = newest(stack.events(&stack.reader)).await;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let (set_until, until) = tokio::sync::watch::channel(None);
    let watcher = follow(grpc, stack.reader.clone(), base, Arc::clone(&seen), until);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = write_users(
        stack.scim_base(),
        stack.tenant.token.clone(),
        Arc::clone(&stop),
    );

    // A steady stream first, then the kill in the middle of it.
    until_seen(&seen, 30, "before the kill").await;
    stack.service.kill_9().await;
    let at_kill = seen.lock().expect("seen").events.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _restarted = start_service(stack.database.url(), grpc, &[]).await;
    until_seen(&seen, at_kill + 30, "after the restart").await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for writer in writers {
        sent.extend(writer.await.expect("writer"));
    }

    let (last, seen) = catch_up(&stack, &set_until, watcher, &seen).await;
    let acknowledged: Vec<&str> = sent
        .iter()
        .filter(|(_, status)| *status == 201)
        .map(|(name, _)| name.as_str())
        .collect();
    println!(
        "kill -9 of the service under a watch: events={} (sequences {}..={last}), writes sent={} acknowledged={}, stream ends={:?}",
        seen.events.len(),
        base + 1,
        sent.len(),
        acknowledged.len(),
        seen.breaks
    );
    assert!(
        !seen.breaks.is_empty(),
        "the kill ended the watcher's stream"
    );
    let sequences: Vec<u64> = seen.events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        (base + 1..=last).collect::<Vec<_>>(),
        "every committed event once, in order, without gaps"
    );
    assert!(
        seen.events
            .iter()
            .all(|e| e.r#type() == EventType::UserCreated)
    );
    let created: std::collections::HashSet<String> = seen.events.iter().map(user_name_of).collect();
    assert_eq!(created.len(), seen.events.len(), "one event per user");
    let missing: Vec<&&str> = acknowledged
        .iter()
        .filter(|name| !created.contains(**name))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged without an event: {missing:?}"
    );
    // And no event without its change: the users the events name are
    // exactly the tenant's users.
    let rows = sql(stack.database.url())
        .await
        .query(
            "SELECT user_name FROM users u JOIN tenants t USING (tenant_id) WHERE t.slug = 'acme'",
            &[],
        )
        .await
        .expect("the tenant's users");
    let stored: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(stored, created, "users and their creation events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_killed_inside_its_transaction_leaves_neither_change_nor_event() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut stack = ProcessStack::start(&[], "reader").await;
    let grpc = stack.grpc;
    let scim_base = stack.scim_base();
    let http = reqwest::Client::new();
    let created = post_user(&http, &scim_base, &stack.tenant.token, "held@acme.example")
        .await
        .expect("create");
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<serde_json::Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let base = newest(stack.events(&stack.reader)).await;
    let deactivate = |http: reqwest::Client| {
        let url = format!("{scim_base}/Users/{id}");
        let token = stack.tenant.token.clone();
        async move {
            http.patch(url)
                .bearer_auth(token)
                .header("content-type", "application/scim+json")
                .body(
                    json!({"schemas": [PATCH_SCHEMA], "Operations": [
                        {"op": "replace", "path": "active", "value": false}
                    ]})
                    .to_string(),
                )
                .send()
                .await
                .map(|r| r.status())
        }
    };

    // The write must block inside its own transaction, after its change
    // and inside its event insert: a trigger on the pending events waits for
    // a shared advisory lock the test holds exclusively from its own
    // session. (Writers take no shared row any more, so nothing else of
    // the service's would hold the write there.)
    let holder = sql(stack.database.url()).await;
    holder
        .batch_execute(&format!(
            "CREATE FUNCTION hold_events() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_advisory_xact_lock_shared({HOLD_KEY}); RETURN NULL; END $$; \
             CREATE TRIGGER hold_events AFTER INSERT ON pending_events \
             FOR EACH STATEMENT EXECUTE FUNCTION hold_events(); \
             SELECT pg_advisory_lock({HOLD_KEY});"
        ))
        .await
        .expect("hold event inserts");
    let write = tokio::spawn(deactivate(http.clone()));
    let observer = sql(stack.database.url()).await;
    let started = Instant::now();
    loop {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the write never waited on the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.service.kill_9().await;
    let answered = write.await.expect("write task");
    assert!(
        answered.is_err() || answered.as_ref().is_ok_and(|s| !s.is_success()),
        "the killed write was not acknowledged: {answered:?}"
    );
    holder
        .batch_execute(&format!(
            "SELECT pg_advisory_unlock({HOLD_KEY}); DROP TRIGGER hold_events ON pending_events;"
        ))
        .await
        .expect("release event inserts");
    // The killed service's connection finishes its statement, finds its
    // client gone and rolls back; wait until no transaction is left open.
    let started = Instant::now();
    loop {
        let open: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND xact_start IS NOT NULL",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the killed write's transaction stays open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let _restarted = start_service(stack.database.url(), grpc, &[]).await;
    let active: bool = observer
        .query_one(
            "SELECT active FROM users WHERE user_id = $1::text::uuid",
            &[&id],
        )
        .await
        .expect("the user")
        .get(0);
    assert!(active, "the killed deactivation left no change");
    assert_eq!(
        newest(stack.events(&stack.reader)).await,
        base,
        "and no event"
    );
    let recorded: i64 = observer
        .query_one(
            "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM pending_events)",
            &[],
        )
        .await
        .expect("count events")
        .get(0);
    assert_eq!(
        recorded as u64, base,
        "no event row either, pending or numbered"
    );
    // The number it would have taken goes to the next write: no gap.
    assert_eq!(
        deactivate(http).await.expect("deactivate again"),
        StatusCode::OK
    );
    let events = stack
        .events(&stack.reader)
        .list_events(ListEventsRequest {
            resource_id: id.clone(),
            ..ListEventsRequest::default()
        })
        .await
        .expect("list events")
        .into_inner()
        .events;
    let story: Vec<(u64, EventType)> = events.iter().map(|e| (e.sequence, e.r#type())).collect();
    assert_eq!(
        story,
        vec![
            (story[0].0, EventType::UserCreated),
            (base + 1, EventType::UserDeactivated)
        ]
    );
}

/// The tenant's numbered events' sequences.
async fn stored_sequences(client: &tokio_postgres::Client) -> Vec<i64> {
    client
        .query(
            "SELECT sequence FROM events e JOIN tenants t USING (tenant_id) \
             WHERE t.slug = 'acme' ORDER BY sequence",
            &[],
        )
        .await
        .expect("the tenant's events")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// How many of the tenant's events wait for their number.
async fn pending_count(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pending_events e JOIN tenants t USING (tenant_id) \
             WHERE t.slug = 'acme'",
            &[],
        )
        .await
        .expect("the tenant's pending events")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_left_pending_by_a_killed_service_are_numbered_and_replicas_share_one_sequence() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut stack = ProcessStack::start(&[], "reader").await;
    let grpc = stack.grpc;
    let base = newest(stack.events(&stack.reader)).await;
    let observer = sql(stack.database.url()).await;

    // The test takes the sequencer's lock: writes commit, nothing numbers
    // their events, and the service is killed with them pending.
    let holder = sql(stack.database.url()).await;
    holder
        .batch_execute(&format!("SELECT pg_advisory_lock({SEQUENCE_LOCK_KEY})"))
        .await
        .expect("hold the sequencer");
    let http = reqwest::Client::new();
    const PENDING: usize = 20;
    for n in 0..PENDING {
        let status = post_user(
            &http,
            &stack.scim_base(),
            &stack.tenant.token,
            &format!("pending-{n}@acme.example"),
        )
        .await
        .expect("create")
        .status();
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(
        pending_count(&observer).await,
        PENDING as i64,
        "acknowledged writes left their events pending"
    );
    assert_eq!(
        stored_sequences(&observer).await.len() as u64,
        base,
        "none of them numbered"
    );
    stack.service.kill_9().await;
    holder
        .batch_execute(&format!("SELECT pg_advisory_unlock({SEQUENCE_LOCK_KEY})"))
        .await
        .expect("release the sequencer");

    // Two replicas on the database; the restarted one numbers the pending
    // events at start-up, without a read asking for them.
    let _restarted = start_service(stack.database.url(), grpc, &[]).await;
    let grpc_b = free_addr();
    let _replica = start_service(stack.database.url(), grpc_b, &[]).await;
    let scim_b = free_addr();
    let _adapter_b = start_adapter(&format!("http://{grpc_b}"), scim_b, &[]).await;
    let started = Instant::now();
    loop {
        let stored = stored_sequences(&observer).await;
        if pending_count(&observer).await == 0 {
            let expected: Vec<i64> = (1..=(base as i64 + PENDING as i64)).collect();
            assert_eq!(stored, expected, "numbered after the others, without gaps");
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the pending events were never numbered: {stored:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Concurrent writers through both replicas, and a watcher on one.
    let numbered = base + PENDING as u64;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (set_until, until) = tokio::sync::watch::channel(None);
    let watcher = follow(
        grpc_b,
        stack.reader.clone(),
        numbered,
        Arc::clone(&seen),
        until,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = write_users(
        stack.scim_base(),
        stack.tenant.token.clone(),
        Arc::clone(&stop),
    );
    // Other names than the first writers'.
    writers.push(write_users_as(
        reqwest::Client::new(),
        format!("http://{scim_b}/scim/v2"),
        stack.tenant.token.clone(),
        Arc::clone(&stop),
        "b-".to_owned(),
    ));
    until_seen(&seen, 60, "through both replicas").await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for writer in writers {
        sent.extend(writer.await.expect("writer"));
    }
    assert!(
        sent.iter()
            .any(|(name, status)| name.starts_with("b-") && *status == 201)
            && sent
                .iter()
                .any(|(name, status)| name.starts_with('w') && *status == 201),
        "both replicas wrote"
    );
    let (last, seen) = catch_up(&stack, &set_until, watcher, &seen).await;
    let sequences: Vec<u64> = seen.events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        (numbered + 1..=last).collect::<Vec<_>>(),
        "every event once, in order, without gaps"
    );
    assert_eq!(
        stored_sequences(&observer).await,
        (1..=last as i64).collect::<Vec<_>>(),
        "no gap"
    );
    assert_eq!(pending_count(&observer).await, 0, "nothing left pending");
    let created: std::collections::HashSet<String> = seen.events.iter().map(user_name_of).collect();
    let acknowledged: std::collections::HashSet<String> = sent
        .iter()
        .filter(|(_, status)| *status == 201)
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(created, acknowledged, "one event per acknowledged user");
}
