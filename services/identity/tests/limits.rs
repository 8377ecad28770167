//! The service under load and abuse: credentials on the SCIM edge, auth
//! before the work pool, statement timeouts, per-tenant caps, token rates.
//! Slow calls are made slow deterministically: the test holds an ACCESS
//! EXCLUSIVE lock on `users` from a connection of its own.

mod common;

use std::time::Duration;

use common::{OPERATOR, TestService, call, reason};
use identity_proto::v1::{
    CreateUserRequest, IssueTokenRequest, ListUsersRequest, TokenScope, User, WhoAmIRequest,
};
use identity_service::TokenRate;
use tonic::{Code, Request, Status};

/// A tonic client call with the SCIM edge marker.
fn edge_call<T>(token: &str, message: T) -> Request<T> {
    let mut request = call(token, message);
    request.metadata_mut().insert(
        "x-identity-edge",
        "scim".parse().unwrap_or_else(|e| panic!("{e}")),
    );
    request
}

fn retry_after(status: &Status) -> Option<u64> {
    status
        .metadata()
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A connection of the test's own to the service's database.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(connection);
    client
}

/// Holds ACCESS EXCLUSIVE on `users` until `COMMIT` on the returned client.
async fn lock_users(url: &str) -> tokio_postgres::Client {
    let client = connect(url).await;
    client
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap_or_else(|e| panic!("lock users: {e}"));
    client
}

/// Queries of other sessions waiting for a lock in the service's database.
async fn waiting_on_locks(observer: &tokio_postgres::Client) -> i64 {
    observer
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("pg_stat_activity: {e}"))
        .get(0)
}

/// Waits until `n` queries wait on a lock: the slow calls are in place.
/// Bounded, and no assertion depends on how long it took.
async fn until_waiting(observer: &tokio_postgres::Client, n: i64) {
    for _ in 0..500 {
        if waiting_on_locks(observer).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} queries never started waiting on the lock");
}

async fn issue(service: &TestService, tenant: &str, name: &str, scope: TokenScope) -> String {
    service
        .tokens()
        .issue_token(call(
            OPERATOR,
            IssueTokenRequest {
                tenant: tenant.into(),
                name: name.into(),
                scope: scope as i32,
                ..IssueTokenRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("issue {name}: {e}"))
        .into_inner()
        .secret
}

fn list(tenant: &str) -> ListUsersRequest {
    ListUsersRequest {
        tenant: tenant.into(),
        ..ListUsersRequest::default()
    }
}

#[tokio::test]
async fn scim_edge_accepts_scim_tokens_only() {
    let service = TestService::start().await;
    let scim = service.tenant_with_token("acme").await;
    let internal = issue(&service, "acme", "internal", TokenScope::Service).await;
    let mut auth = service.auth();

    for (name, token) in [("operator", OPERATOR), ("service token", internal.as_str())] {
        let refused = auth
            .who_am_i(edge_call(token, WhoAmIRequest {}))
            .await
            .err()
            .unwrap_or_else(|| panic!("{name} accepted on the SCIM edge"));
        assert_eq!(refused.code(), Code::Unauthenticated, "{name}: {refused:?}");
        assert_eq!(reason(&refused), "TOKEN_INVALID", "{name}");
        assert_eq!(
            refused.message(),
            "this credential is not accepted on the SCIM edge"
        );
        let refused = service
            .users()
            .list_users(edge_call(token, list("acme")))
            .await
            .err()
            .unwrap_or_else(|| panic!("{name} listed users on the SCIM edge"));
        assert_eq!(refused.code(), Code::Unauthenticated, "{name}: {refused:?}");
        // Without the marker the same credential keeps its powers.
        auth.who_am_i(call(token, WhoAmIRequest {}))
            .await
            .unwrap_or_else(|e| panic!("{name} without the marker: {e}"));
        service
            .users()
            .list_users(call(token, list("acme")))
            .await
            .unwrap_or_else(|e| panic!("{name} lists users without the marker: {e}"));
    }
    for request in [
        edge_call(&scim, WhoAmIRequest {}),
        call(&scim, WhoAmIRequest {}),
    ] {
        auth.who_am_i(request)
            .await
            .unwrap_or_else(|e| panic!("SCIM token: {e}"));
    }
    service
        .users()
        .list_users(edge_call(&scim, list("")))
        .await
        .unwrap_or_else(|e| panic!("SCIM token on the edge lists users: {e}"));
    service.stop().await;
}

#[tokio::test]
async fn a_statement_timeout_answers_unavailable_and_leaves_nothing_running() {
    let service = TestService::start_with(|settings| {
        settings.statement_timeout = Duration::from_millis(300);
    })
    .await;
    let token = service.tenant_with_token("acme").await;
    let locker = lock_users(service.database_url()).await;
    let observer = connect(service.database_url()).await;

    let listed = service
        .users()
        .list_users(call(&token, list("")))
        .await
        .err()
        .unwrap_or_else(|| panic!("listed users through an exclusive lock"));
    let created = service
        .users()
        .create_user(call(
            &token,
            CreateUserRequest {
                tenant: String::new(),
                user: Some(User {
                    user_name: "blocked@acme.example".into(),
                    ..User::default()
                }),
            },
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("created a user through an exclusive lock"));
    for status in [&listed, &created] {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(retry_after(status), Some(1), "{status:?}");
        assert!(!status.message().contains("canceling"), "{status:?}");
    }
    // Cancelled in Postgres, not only answered: nothing waits on the lock.
    assert_eq!(waiting_on_locks(&observer).await, 0);

    locker
        .batch_execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(waiting_on_locks(&observer).await, 0);
    service
        .users()
        .list_users(call(&token, list("")))
        .await
        .unwrap_or_else(|e| panic!("served once the lock is gone: {e}"));
    service.stop().await;
}

#[tokio::test]
async fn a_tenant_at_its_cap_is_refused_while_another_is_served() {
    let service = TestService::start_with(|settings| {
        settings.tenant_max_concurrent_requests = 2;
        settings.tenant_queue_timeout = Duration::from_millis(50);
    })
    .await;
    let noisy = service.tenant_with_token("noisy").await;
    let quiet = service.tenant_with_token("quiet").await;
    let locker = lock_users(service.database_url()).await;
    let observer = connect(service.database_url()).await;

    let slow: Vec<_> = (0..2)
        .map(|_| {
            let mut users = service.users();
            let request = call(&noisy, list(""));
            tokio::spawn(async move { users.list_users(request).await })
        })
        .collect();
    until_waiting(&observer, 2).await;

    let refused = service
        .auth()
        .who_am_i(call(&noisy, WhoAmIRequest {}))
        .await
        .err()
        .unwrap_or_else(|| panic!("a third concurrent call of a tenant capped at 2 was served"));
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "RATE_LIMITED");
    assert_eq!(retry_after(&refused), Some(1));

    service
        .auth()
        .who_am_i(call(&quiet, WhoAmIRequest {}))
        .await
        .unwrap_or_else(|e| panic!("another tenant is served: {e}"));
    service
        .auth()
        .who_am_i(call(OPERATOR, WhoAmIRequest {}))
        .await
        .unwrap_or_else(|e| panic!("the operator is not capped: {e}"));

    locker
        .batch_execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for call in slow {
        call.await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("the slow calls finish once the lock is gone: {e}"));
    }
    service
        .auth()
        .who_am_i(call(&noisy, WhoAmIRequest {}))
        .await
        .unwrap_or_else(|e| panic!("the tenant's slots are free again: {e}"));
    service.stop().await;
}

#[tokio::test]
async fn a_token_over_its_rate_is_refused() {
    let service = TestService::start_with(|settings| {
        settings.token_rate = Some(TokenRate {
            period: Duration::from_secs(3600),
            burst: 3,
        });
    })
    .await;
    let token = service.tenant_with_token("acme").await;
    let other = issue(&service, "acme", "other", TokenScope::Scim).await;
    let mut auth = service.auth();
    for n in 1..=3 {
        auth.who_am_i(call(&token, WhoAmIRequest {}))
            .await
            .unwrap_or_else(|e| panic!("call {n} of a burst of 3: {e}"));
    }
    let refused = auth
        .who_am_i(call(&token, WhoAmIRequest {}))
        .await
        .err()
        .unwrap_or_else(|| panic!("the 4th call of a burst of 3 was served"));
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "RATE_LIMITED");
    assert!(retry_after(&refused).is_some_and(|s| s > 1), "{refused:?}");
    auth.who_am_i(call(&other, WhoAmIRequest {}))
        .await
        .unwrap_or_else(|e| panic!("the limit is per token: {e}"));
    auth.who_am_i(call(OPERATOR, WhoAmIRequest {}))
        .await
        .unwrap_or_else(|e| panic!("the operator is not rate limited: {e}"));
    service.stop().await;
}

#[tokio::test]
async fn bogus_tokens_are_refused_while_every_work_connection_is_busy() {
    let service = TestService::start_with(|settings| {
        settings.pool_size = 1;
        settings.auth_pool_size = 1;
    })
    .await;
    let token = service.tenant_with_token("acme").await;
    let locker = lock_users(service.database_url()).await;
    let observer = connect(service.database_url()).await;
    let mut users = service.users();
    let request = call(&token, list(""));
    let slow = tokio::spawn(async move { users.list_users(request).await });
    until_waiting(&observer, 1).await;

    // The only work connection is held; a well-formed but unknown token of
    // the same tenant is still looked up and refused, not queued for it.
    let tenant_hex = &token[4..36];
    let forged = format!("idl_{tenant_hex}_{}", "A".repeat(43));
    for bogus in [forged.as_str(), "not-a-token"] {
        let refused = service
            .auth()
            .who_am_i(call(bogus, WhoAmIRequest {}))
            .await
            .err()
            .unwrap_or_else(|| panic!("bogus token accepted"));
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    }

    locker
        .batch_execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    slow.await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("the slow call finishes: {e}"));
    service.stop().await;
}

#[tokio::test]
async fn a_call_past_the_server_bound_is_ended_and_its_statement_cancelled() {
    let service = TestService::start_with(|settings| {
        settings.request_timeout = Duration::from_millis(200);
        settings.statement_timeout = Duration::from_secs(1);
    })
    .await;
    let token = service.tenant_with_token("acme").await;
    let locker = lock_users(service.database_url()).await;
    let observer = connect(service.database_url()).await;

    // No client deadline: the server's own bound ends the call.
    let ended = service
        .users()
        .list_users(call(&token, list("")))
        .await
        .err()
        .unwrap_or_else(|| panic!("listed users through an exclusive lock"));
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
    assert_eq!(retry_after(&ended), Some(1), "{ended:?}");
    // The abandoned statement is then ended by statement_timeout, while
    // the lock is still held.
    for _ in 0..500 {
        if waiting_on_locks(&observer).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(waiting_on_locks(&observer).await, 0);

    locker
        .batch_execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    service
        .users()
        .list_users(call(&token, list("")))
        .await
        .unwrap_or_else(|e| panic!("served once the lock is gone: {e}"));
    service.stop().await;
}
