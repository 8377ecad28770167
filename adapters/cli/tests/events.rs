//! `identityctl events list|tail` end to end: the real binary against the
//! real identity service and SCIM adapter on a fresh Postgres database.
//!
//! Needs TEST_DATABASE_URL, an admin URL allowed to create databases;
//! scripts/test sets it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use identity_lifecycle_tests::{ADMIN_TOKEN, Stack, user};
use serde_json::Value;

/// A bound on how long the tail may take to print: a hang fails the test.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn list_shows_who_changed_what() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let id = scim.create_user(user("ada@acme.example")).await;
    let page = stack
        .identityctl(
            env!("CARGO_BIN_EXE_identityctl"),
            &["events", "list", "--tenant", "acme", "--resource-id", &id],
        )
        .await;
    let events = page["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{page}");
    let created = &events[0];
    assert_eq!(created["type"], "user-created");
    assert_eq!(created["resource_type"], "user");
    assert_eq!(created["actor"]["kind"], "token");
    assert_eq!(created["actor"]["token_name"], "e2e");
    assert_eq!(
        created["changes"]["userName"]["after"], "ada@acme.example",
        "{created}"
    );
    assert_eq!(page["next_page_token"], "");

    // The token's own issue is there too, by type, made by the operator.
    let issued = stack
        .identityctl(
            env!("CARGO_BIN_EXE_identityctl"),
            &[
                "events",
                "list",
                "--tenant",
                "acme",
                "--type",
                "token-issued",
            ],
        )
        .await;
    assert_eq!(issued["events"][0]["actor"]["kind"], "operator", "{issued}");
}

#[tokio::test]
async fn tail_prints_one_json_object_per_line() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    scim.create_user(user("first@acme.example")).await;
    let mut tail = Command::new(env!("CARGO_BIN_EXE_identityctl"))
        .args([
            "events",
            "tail",
            "--tenant",
            "acme",
            "--from",
            "0",
            "--type",
            "user-created",
            "--output",
            "json",
        ])
        .env("IDENTITY_GRPC_URL", &stack.grpc_url)
        .env("IDENTITY_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run identityctl events tail");
    let stdout = tail.stdout.take().expect("stdout");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut next = async || {
        let line = tokio::time::timeout(PATIENCE, lines.recv())
            .await
            .expect("a line in time")
            .expect("tail is running");
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let backlog = next().await;
    assert_eq!(
        backlog["changes"]["userName"]["after"],
        "first@acme.example"
    );
    scim.create_user(user("second@acme.example")).await;
    let live = next().await;
    assert_eq!(live["changes"]["userName"]["after"], "second@acme.example");
    assert_eq!(
        live["sequence"].as_u64(),
        backlog["sequence"].as_u64().map(|n| n + 1)
    );
    tail.kill().expect("stop tail");
    let _ = tail.wait();
}
