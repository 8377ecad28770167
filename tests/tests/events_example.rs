//! The example consumer (`examples/deprovision-watcher`) run for real: its
//! binary against a real service, adapter and Postgres, deprovisionings
//! made over SCIM, and the watcher stopped by SIGTERM and by kill -9 and
//! started again on the same state file. Each run must print exactly the
//! events it has not printed before, and follow a service restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use identity_lifecycle_tests::events::{PATIENCE, ProcessStack, create_users, set_active};
use identity_lifecycle_tests::process::{Process, start_service};
use identity_lifecycle_tests::*;
use identity_proto::v1::{EventType, ListEventsRequest};
use reqwest::StatusCode;
use serde_json::Value;

/// Deletes a user over SCIM, asserting that it was done.
async fn delete_user(scim: &Scim<'_>, id: &str) {
    let reply = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
}

/// One event as the watcher printed it: (sequence, type, user id).
type Printed = (u64, String, String);

/// The events a watcher process has printed so far (its JSON lines; its
/// notes on stderr share the log and are skipped).
fn printed(watcher: &Process) -> Vec<Printed> {
    watcher
        .log()
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            let event: Value = serde_json::from_str(line).expect("a JSON event line");
            (
                event["sequence"].as_u64().expect("sequence"),
                event["type"].as_str().expect("type").to_owned(),
                event["user_id"].as_str().expect("user_id").to_owned(),
            )
        })
        .collect()
}

/// Waits until `watcher` printed `count` events (and its state file holds
/// the last one's sequence, so a kill loses nothing), and returns them.
async fn printed_and_saved(watcher: &mut Process, count: usize, state: &Path) -> Vec<Printed> {
    let started = Instant::now();
    loop {
        let events = printed(watcher);
        let saved = std::fs::read_to_string(state).unwrap_or_default();
        if events.len() >= count
            && events
                .last()
                .is_some_and(|(sequence, ..)| saved.trim() == sequence.to_string())
        {
            return events;
        }
        assert!(
            watcher.running(),
            "the watcher exited; its output:\n{}",
            watcher.log()
        );
        assert!(
            started.elapsed() < PATIENCE,
            "{count} events not printed and saved; state {saved:?}, output:\n{}",
            watcher.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start_watcher(grpc: SocketAddr, token: &str, state: &Path) -> Process {
    Process::spawn(
        "deprovision-watcher",
        &[
            ("IDENTITY_GRPC_URL", format!("http://{grpc}")),
            ("IDENTITY_TOKEN", token.to_owned()),
            ("IDENTITY_TENANT", "acme".to_owned()),
            ("DEPROVISION_STATE_FILE", state.display().to_string()),
            ("DEPROVISION_OUTPUT", "json".to_owned()),
        ],
    )
}

fn expect(events: &[Printed], wanted: &[(&str, &str)]) {
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|(_, kind, id)| (kind.as_str(), id.as_str()))
        .collect();
    assert_eq!(got, wanted);
}

fn state_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("idl-watcher-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("state directory");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_resumes_exactly_after_sigterm_kill_9_and_a_service_restart() {
    let mut stack = ProcessStack::start(&[], "deprovision-watcher").await;
    let (grpc, reader) = (stack.grpc, stack.reader.clone());
    let (http, scim_base, token) = (
        reqwest::Client::new(),
        stack.scim_base(),
        stack.tenant.token.clone(),
    );
    let idp = Scim::at(&http, &scim_base, &token);
    let users = create_users(&idp, "u", 8).await;
    let dir = state_dir();
    let state = dir.join("acme.seq");

    // First run, no state file: from the oldest event; creations are
    // filtered out, deprovisionings printed.
    let mut first = start_watcher(grpc, &reader, &state);
    set_active(&idp, &users[0], false).await;
    delete_user(&idp, &users[1]).await;
    let one = printed_and_saved(&mut first, 2, &state).await;
    expect(
        &one,
        &[("user-deactivated", &users[0]), ("user-deleted", &users[1])],
    );
    first.signal("TERM");
    let status = first.exit_within(PATIENCE).await;
    assert_eq!(status.code(), Some(0), "{}", first.log());
    assert_eq!(printed(&first), one, "nothing more after SIGTERM");

    // Deprovisionings while it is stopped are printed by the next run, and
    // nothing of the first run again.
    set_active(&idp, &users[2], false).await;
    set_active(&idp, &users[3], false).await;
    let mut second = start_watcher(grpc, &reader, &state);
    printed_and_saved(&mut second, 2, &state).await;

    // The service is killed and restarted under it: it resumes by itself.
    stack.service.kill_9().await;
    stack.service = start_service(stack.database.url(), grpc, &[]).await;
    delete_user(&idp, &users[4]).await;
    let two = printed_and_saved(&mut second, 3, &state).await;
    expect(
        &two,
        &[
            ("user-deactivated", &users[2]),
            ("user-deactivated", &users[3]),
            ("user-deleted", &users[4]),
        ],
    );
    assert!(
        second.log().contains("resuming after sequence"),
        "the service restart ended its stream: {}",
        second.log()
    );

    // kill -9 of the watcher itself, with its last event saved.
    second.kill_9().await;
    set_active(&idp, &users[5], false).await;
    delete_user(&idp, &users[6]).await;
    let mut third = start_watcher(grpc, &reader, &state);
    printed_and_saved(&mut third, 2, &state).await;
    // One more, live: had the restart repeated anything, it would show
    // before this one.
    set_active(&idp, &users[7], false).await;
    let three = printed_and_saved(&mut third, 3, &state).await;
    expect(
        &three,
        &[
            ("user-deactivated", &users[5]),
            ("user-deleted", &users[6]),
            ("user-deactivated", &users[7]),
        ],
    );

    // Together the runs printed each deprovisioning exactly once, as the
    // service lists them.
    let listed = stack
        .events(&reader)
        .list_events(ListEventsRequest {
            types: vec![
                EventType::UserDeactivated as i32,
                EventType::UserDeprovisioned as i32,
                EventType::UserDeleted as i32,
            ],
            ..ListEventsRequest::default()
        })
        .await
        .expect("list events")
        .into_inner()
        .events;
    let all: Vec<u64> = one.iter().chain(&two).chain(&three).map(|e| e.0).collect();
    assert_eq!(
        all,
        listed.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        "every deprovisioning printed once, in order"
    );
    drop(third);
    drop(stack);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_example_stops_with_advice_when_it_cannot_go_on() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let reader = stack
        .issue_service_token("acme", "deprovision-watcher")
        .await;
    let grpc: SocketAddr = stack
        .grpc_url
        .trim_start_matches("http://")
        .parse()
        .expect("gRPC address");
    let dir = state_dir();

    // A position the service does not have (here: ahead of its newest
    // event, as after a restore of an older backup).
    let state = dir.join("ahead.seq");
    std::fs::write(&state, "1000\n").expect("write the state file");
    let mut ahead = start_watcher(grpc, &reader, &state);
    let status = ahead.exit_within(PATIENCE).await;
    assert_eq!(status.code(), Some(1), "{}", ahead.log());
    let log = ahead.log();
    assert!(
        log.contains("no longer stores the events after sequence 1000"),
        "{log}"
    );
    assert!(log.contains(&state.display().to_string()), "{log}");
    assert_eq!(
        std::fs::read_to_string(&state).expect("state"),
        "1000\n",
        "the position is left for the operator"
    );

    // A SCIM token may not read events: refused at once, not retried.
    let mut scim = start_watcher(grpc, &acme.token, &dir.join("scim.seq"));
    let status = scim.exit_within(PATIENCE).await;
    assert_eq!(status.code(), Some(1), "{}", scim.log());
    assert!(scim.log().contains("PermissionDenied"), "{}", scim.log());
    let _ = std::fs::remove_dir_all(dir);
}
