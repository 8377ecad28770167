//! Overload and stalls seen through the SCIM edge: a noisy tenant, a token
//! over its rate and a stalled statement are answered 429 or 503 with a SCIM
//! body and `Retry-After`, never 500, while other tenants are served.

use std::time::Duration;

use identity_lifecycle_tests::*;
use identity_service::TokenRate;
use reqwest::StatusCode;

/// A SCIM error with this status and a `Retry-After` of whole seconds.
fn assert_retry_after(reply: &Reply, status: u16) {
    reply.assert_error(status, None);
    let seconds = reply.header("retry-after").map(str::parse::<u64>);
    assert!(matches!(seconds, Some(Ok(1..))), "{:?}", reply.headers);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_over_its_cap_gets_429_while_another_is_served() {
    let stack = Stack::start_with(
        |service| {
            service.tenant_max_concurrent_requests = 1;
            service.tenant_queue_timeout = Duration::from_millis(200);
        },
        |_| {},
    )
    .await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let id = scim.create_user(user("held@acme.example")).await;

    // Acme's one slot is taken by a PATCH waiting on a row lock the test holds.
    let locker = stack.connect().await;
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM users WHERE user_id = '{id}' FOR UPDATE"
        ))
        .await
        .expect("lock acme's user");
    let held = {
        let url = scim.url(&format!("/Users/{id}"));
        let request = stack.http.patch(url).bearer_auth(&acme.token).json(&json!({
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Held"}]
        }));
        tokio::spawn(async move { Scim::reply(request).await })
    };
    // The PATCH is in when the lock has a waiter.
    for _ in 0..200 {
        let waiting = stack
            .query_strings("SELECT count(*) FROM pg_locks WHERE NOT granted")
            .await;
        if waiting.first().is_some_and(|n| n != "0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    assert_retry_after(&scim.get("/Users").await, 429);
    // Other tenants are not starved by acme.
    stack.assert_serving().await;

    locker.batch_execute("ROLLBACK").await.expect("unlock");
    let done = held.await.expect("the held PATCH");
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["displayName"], "Held");
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429() {
    let stack = Stack::start_with(
        |service| {
            service.token_rate = Some(TokenRate {
                period: Duration::from_secs(3600),
                burst: 3,
            })
        },
        |_| {},
    )
    .await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    for _ in 0..3 {
        assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    }
    assert_retry_after(&scim.get("/Users").await, 429);
    // Each token has its own budget.
    stack.assert_serving().await;
}

#[tokio::test]
async fn a_statement_timeout_is_a_503_and_nothing_keeps_running() {
    let stack = Stack::start_with(
        |service| service.statement_timeout = Duration::from_secs(1),
        |_| {},
    )
    .await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let locker = stack.connect().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock users");
    assert_retry_after(&scim.get("/Users").await, 503);
    // The cancelled statement no longer waits behind the lock.
    let waiting = stack
        .query_strings("SELECT count(*) FROM pg_locks WHERE NOT granted")
        .await;
    assert_eq!(waiting, ["0"]);
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    stack.assert_serving().await;
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
}
