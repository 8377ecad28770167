//! Tenant administration end to end: each test sets a tenant up with the real
//! `identityctl` binary, then replays an identity provider's traffic over
//! real HTTP through the SCIM adapter, on the real identity service and a
//! fresh Postgres database (`identity_lifecycle_tests::Stack`). The flows
//! follow what SaaS vendors document: Aviator (SCIM switched off and on,
//! a new token each time), Aritma (provider-linked tokens, rotation without
//! a gap, tenant-addressed URLs), Aptible (tokens valid for one year).
//!
//! Needs TEST_DATABASE_URL, an admin URL allowed to create databases;
//! scripts/test sets it.

use std::process::Output;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use identity_lifecycle_tests::{ADMIN_TOKEN, Bearer, Reply, Scim, Stack, json, user};
use identity_proto::v1::auth_service_client::AuthServiceClient;
use identity_proto::v1::user_service_client::UserServiceClient;
use identity_proto::v1::{CreateUserRequest, ListUsersRequest, User, WhoAmIRequest};
use reqwest::StatusCode;
use serde_json::Value;

/// Runs `identityctl ARGS` against the stack's identity service with
/// IDENTITY_TOKEN = `token`.
async fn ctl(stack: &Stack, token: &str, args: &[&str]) -> Output {
    stack
        .identityctl_output(env!("CARGO_BIN_EXE_identityctl"), token, args)
        .await
}

/// Runs a command as the operator and returns its stdout, failing on a non-zero exit.
async fn operator(stack: &Stack, args: &[&str]) -> String {
    let output = ctl(stack, ADMIN_TOKEN, args).await;
    assert!(
        output.status.success(),
        "identityctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 stdout")
}

async fn operator_json(stack: &Stack, args: &[&str]) -> Value {
    stack
        .identityctl(env!("CARGO_BIN_EXE_identityctl"), args)
        .await
}

/// Runs a command as the operator that must fail; returns its one stderr line.
async fn operator_fails(stack: &Stack, args: &[&str]) -> String {
    let output = ctl(stack, ADMIN_TOKEN, args).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "identityctl {args:?}: {output:?}"
    );
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
    String::from_utf8_lossy(&output.stderr)
        .trim_end()
        .to_owned()
}

/// The secret `tokens issue` and `tenants enable-scim` print alone on their last line.
fn secret_of(stdout: &str) -> String {
    let secret = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        secret.starts_with("idl_"),
        "no secret on the last line: {stdout}"
    );
    secret
}

/// The tokens `tokens list --show-revoked` shows, by name.
async fn listed_token(stack: &Stack, tenant: &str, name: &str) -> Value {
    let listed = operator_json(
        stack,
        &["tokens", "list", "--tenant", tenant, "--show-revoked"],
    )
    .await;
    listed["tokens"]
        .as_array()
        .and_then(|tokens| tokens.iter().find(|t| t["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("token {name} not listed: {listed}"))
}

/// The adapter's public base URL, without `/scim/v2`.
fn public_url(stack: &Stack) -> String {
    stack.scim_base.trim_end_matches("/scim/v2").to_owned()
}

/// GET `url` with the token as bearer (no Authorization header without one).
async fn get(stack: &Stack, url: &str, token: Option<&str>) -> Reply {
    let mut request = stack.http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Scim::reply(request).await
}

async fn post(stack: &Stack, url: &str, token: &str, body: Value) -> Reply {
    Scim::reply(
        stack
            .http
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string()),
    )
    .await
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {value}"))
}

/// Aviator: "If you ever lose the bearer token, click Disable SCIM, then
/// Enable SCIM again to generate a new one. Existing users will not be
/// affected." Disabling revokes every SCIM token at once and nothing else.
#[tokio::test]
async fn aviator_disable_then_enable_scim_issues_a_fresh_token() {
    let stack = Stack::start().await;
    let created = operator(&stack, &["tenants", "create", "aviator"]).await;
    assert!(
        created.contains("scim:") && created.contains("enabled"),
        "{created}"
    );
    let okta = secret_of(
        &operator(
            &stack,
            &["tokens", "issue", "--tenant", "aviator", "--name", "okta"],
        )
        .await,
    );
    let service = secret_of(
        &operator(
            &stack,
            &[
                "tokens", "issue", "--tenant", "aviator", "--name", "billing", "--scope", "service",
            ],
        )
        .await,
    );
    let scim = stack.scim(&okta);
    scim.create_user(user("ada@aviator.example")).await;
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);

    let disabled = operator_json(&stack, &["tenants", "disable-scim", "aviator"]).await;
    assert_eq!(disabled["scim_enabled"], false, "{disabled}");
    // The IdP's token is refused from the next request on, as a SCIM 401.
    let refused = scim.get("/Users").await;
    refused.assert_error(401, None);
    assert!(refused.header("www-authenticate").is_some());
    // Users stay, and service tokens keep working.
    let users = stack
        .users(ADMIN_TOKEN)
        .list_users(ListUsersRequest {
            tenant: "aviator".into(),
            ..ListUsersRequest::default()
        })
        .await
        .expect("the operator lists the users")
        .into_inner();
    assert_eq!(users.total_size, Some(1));
    assert_eq!(users.users[0].user_name, "ada@aviator.example");
    let by_service = stack
        .users(&service)
        .list_users(ListUsersRequest::default())
        .await
        .expect("service tokens are untouched");
    assert_eq!(by_service.into_inner().total_size, Some(1));
    assert!(listed_token(&stack, "aviator", "okta").await["revoke_time"].is_string());
    assert!(listed_token(&stack, "aviator", "billing").await["revoke_time"].is_null());
    // Even a SCIM token whose revocation went missing is refused while SCIM is off.
    stack
        .query_strings("UPDATE tokens SET revoked_at = NULL WHERE name = 'okta'")
        .await;
    scim.get("/Users").await.assert_error(401, None);
    stack
        .query_strings("UPDATE tokens SET revoked_at = now() WHERE name = 'okta'")
        .await;
    // Idempotent.
    let again = operator(&stack, &["tenants", "disable-scim", "aviator"]).await;
    assert!(
        again.contains("scim:") && again.contains("disabled"),
        "{again}"
    );

    // No SCIM token can be issued while SCIM is off.
    let error = operator_fails(
        &stack,
        &["tokens", "issue", "--tenant", "aviator", "--name", "okta-2"],
    )
    .await;
    assert!(
        error.starts_with("error: failed precondition: SCIM is disabled for tenant 'aviator'"),
        "{error}"
    );
    // Discovery needs no token.
    let config = get(
        &stack,
        &format!("{}/ServiceProviderConfig", stack.scim_base),
        None,
    )
    .await;
    assert_eq!(config.status, StatusCode::OK, "{}", config.body);

    // Enable SCIM again: a fresh token, shown once, sees the same users.
    let enabled = operator(&stack, &["tenants", "enable-scim", "aviator"]).await;
    assert!(
        enabled.starts_with("enabled SCIM for tenant aviator and issued SCIM token scim\n"),
        "{enabled}"
    );
    let fresh = secret_of(&enabled);
    assert_ne!(fresh, okta);
    let listed = stack.scim(&fresh).get("/Users").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["totalResults"], 1);
    stack
        .scim(&okta)
        .get("/Users")
        .await
        .assert_error(401, None);
    let tenant = operator_json(&stack, &["tenants", "get", "aviator"]).await;
    assert_eq!(tenant["scim_enabled"], true);
    // A second enable-scim under a live token's name changes nothing.
    let taken = operator_fails(&stack, &["tenants", "enable-scim", "aviator"]).await;
    assert!(taken.starts_with("error: already exists: "), "{taken}");
    let json = operator_json(
        &stack,
        &[
            "tenants",
            "enable-scim",
            "aviator",
            "--token-name",
            "okta-2",
        ],
    )
    .await;
    assert_eq!(json["tenant"]["scim_enabled"], true);
    assert_eq!(json["token"]["scope"], "scim");
    let second = json["secret"].as_str().expect("secret").to_owned();
    assert_eq!(
        stack.scim(&second).get("/Users").await.status,
        StatusCode::OK
    );
}

/// Aritma: provider-linked tokens, rotation without a provisioning gap
/// ("create the new token first, update your IdP configuration, then delete
/// the old token") and a SCIM endpoint that names the tenant.
#[tokio::test]
async fn aritma_provider_tokens_rotate_without_gap_on_tenant_urls() {
    let stack = Stack::start().await;
    operator(&stack, &["tenants", "create", "aritma"]).await;
    operator(&stack, &["tenants", "create", "other"]).await;
    let entra = [
        "--provider",
        "azuread",
        "--provider-display-name",
        "Entra ID",
    ];
    let mut args = vec!["tokens", "issue", "--tenant", "aritma", "--name", "entra-1"];
    args.extend(entra);
    let old = secret_of(&operator(&stack, &args).await);
    let mut args = vec!["tokens", "issue", "--tenant", "aritma", "--name", "entra-2"];
    args.extend(entra);
    let issued = operator_json(&stack, &args).await;
    let new = issued["secret"].as_str().expect("secret").to_owned();
    assert_eq!(issued["token"]["provider"], "azuread");
    let other = secret_of(
        &operator(
            &stack,
            &["tokens", "issue", "--tenant", "other", "--name", "okta"],
        )
        .await,
    );

    // Listings show the provider and never a secret.
    let text = operator(&stack, &["tokens", "list", "--tenant", "aritma"]).await;
    let json = operator(
        &stack,
        &["tokens", "list", "--tenant", "aritma", "--output", "json"],
    )
    .await;
    for listing in [&text, &json] {
        assert!(
            !listing.contains(&old) && !listing.contains(&new),
            "a secret leaked: {listing}"
        );
    }
    assert!(text.contains("azuread (Entra ID)"), "{text}");
    let tokens: Value = serde_json::from_str(&json).expect("JSON");
    for token in tokens["tokens"].as_array().expect("tokens") {
        assert_eq!(token["provider"], "azuread");
        assert_eq!(token["provider_display_name"], "Entra ID");
        assert_eq!(token["scope"], "scim");
        assert!(token.get("secret").is_none());
    }

    // Both live tokens work at once; revoking the old one stops it on its
    // very next request while the new one goes on.
    assert_eq!(stack.scim(&old).get("/Users").await.status, StatusCode::OK);
    assert_eq!(stack.scim(&new).get("/Users").await.status, StatusCode::OK);
    operator(
        &stack,
        &[
            "tokens", "revoke", "--tenant", "aritma", "--name", "entra-1",
        ],
    )
    .await;
    stack.scim(&old).get("/Users").await.assert_error(401, None);
    assert_eq!(stack.scim(&new).get("/Users").await.status, StatusCode::OK);

    // The tenant-addressed endpoint: locations stay in the form called.
    let public = public_url(&stack);
    let base = format!("{public}/tenants/aritma/scim/v2");
    let created = post(
        &stack,
        &format!("{base}/Users"),
        &new,
        user("grace@aritma.example"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let location = format!("{base}/Users/{id}");
    assert_eq!(created.body["meta"]["location"], location.as_str());
    assert_eq!(created.header("location"), Some(location.as_str()));
    let listed = get(&stack, &format!("{base}/Users"), Some(&new)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["totalResults"], 1);
    assert!(
        listed.body["Resources"][0]["meta"]["location"]
            .as_str()
            .is_some_and(|l| l.starts_with(&format!("{base}/Users/"))),
        "{}",
        listed.body
    );
    let group = post(
        &stack,
        &format!("{base}/Groups"),
        &new,
        json!({"displayName": "Engineering", "members": [{"value": id}]}),
    )
    .await;
    assert_eq!(group.status, StatusCode::CREATED, "{}", group.body);
    assert_eq!(group.body["members"][0]["$ref"], location.as_str());
    // The plain form is unchanged: the token says which tenant.
    let plain = stack.scim(&new).get(&format!("/Users/{id}")).await;
    assert_eq!(
        plain.body["meta"]["location"],
        format!("{public}/scim/v2/Users/{id}")
    );

    // Another tenant's token is no credential here: 401 with a SCIM Error.
    let foreign = get(&stack, &format!("{base}/Users"), Some(&other)).await;
    foreign.assert_error(401, None);
    assert_eq!(
        foreign.body["detail"],
        "this token is not valid for tenant 'aritma'"
    );
    // Nor is a revoked one.
    get(&stack, &format!("{base}/Users"), Some(&old))
        .await
        .assert_error(401, None);
    // A malformed slug names no endpoint.
    get(
        &stack,
        &format!("{public}/tenants/Aritma/scim/v2/Users"),
        Some(&new),
    )
    .await
    .assert_error(404, None);
    // Discovery is public in this form too.
    let config = get(&stack, &format!("{base}/ServiceProviderConfig"), None).await;
    assert_eq!(config.status, StatusCode::OK, "{}", config.body);
    assert_eq!(
        config.body["meta"]["location"],
        format!("{base}/ServiceProviderConfig")
    );
}

/// Aptible: "the SCIM token has a validity of one year"; an expired token
/// gets a 401 that says so.
#[tokio::test]
async fn aptible_tokens_last_a_year_and_expire() {
    let stack = Stack::start().await;
    operator(&stack, &["tenants", "create", "aptible"]).await;
    let issued = operator_json(
        &stack,
        &["tokens", "issue", "--tenant", "aptible", "--name", "okta"],
    )
    .await;
    let expires = time(&issued["token"]["expire_time"]);
    let year = Utc::now() + TimeDelta::days(365);
    assert!(
        (expires - year).num_seconds().abs() < 120,
        "expires {expires}, expected about {year}"
    );

    let short = secret_of(
        &operator(
            &stack,
            &[
                "tokens", "issue", "--tenant", "aptible", "--name", "short", "--ttl", "1s",
            ],
        )
        .await,
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let refused = stack.scim(&short).get("/Users").await;
    refused.assert_error(401, None);
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired")),
        "{}",
        refused.body
    );
}

/// `tokens list` shows when each token last authenticated a call, written
/// at most once a minute per token.
#[tokio::test]
async fn last_use_is_listed() {
    let stack = Stack::start().await;
    operator(&stack, &["tenants", "create", "acme"]).await;
    let used = secret_of(
        &operator(
            &stack,
            &["tokens", "issue", "--tenant", "acme", "--name", "used"],
        )
        .await,
    );
    operator(
        &stack,
        &["tokens", "issue", "--tenant", "acme", "--name", "idle"],
    )
    .await;
    assert!(listed_token(&stack, "acme", "used").await["last_use_time"].is_null());

    let before = Utc::now() - TimeDelta::seconds(5);
    assert_eq!(stack.scim(&used).get("/Users").await.status, StatusCode::OK);
    let token = listed_token(&stack, "acme", "used").await;
    let last_use = time(&token["last_use_time"]);
    assert!(
        last_use >= before && last_use <= Utc::now() + TimeDelta::seconds(5),
        "{token}"
    );
    assert!(listed_token(&stack, "acme", "idle").await["last_use_time"].is_null());
    let text = operator(&stack, &["tokens", "list", "--tenant", "acme"]).await;
    assert!(
        text.lines().next().is_some_and(|h| h.contains("LAST USED")),
        "{text}"
    );

    // Within the minute, more calls do not write the row again.
    let stored = "SELECT last_used_at::text FROM tokens WHERE name = 'used'";
    let first = stack.query_strings(stored).await;
    assert_eq!(stack.scim(&used).get("/Users").await.status, StatusCode::OK);
    assert_eq!(stack.query_strings(stored).await, first);
}

/// Revocation, the SCIM switch and policy changes hold on every replica once
/// the token cache's TTL has passed: replicas share nothing but Postgres.
#[tokio::test]
async fn changes_take_effect_on_every_replica_within_the_token_cache_ttl() {
    let settle = || {
        let ttl = identity_service::ServiceSettings::new("").token_cache_ttl;
        tokio::time::sleep(ttl + std::time::Duration::from_millis(100))
    };
    let mut stack = Stack::start().await;
    let replica = stack.start_replica().await;
    operator(&stack, &["tenants", "create", "replicas"]).await;
    let issue = |name: &'static str, scope: &'static str| {
        let stack = &stack;
        async move {
            secret_of(
                &operator(
                    stack,
                    &[
                        "tokens", "issue", "--tenant", "replicas", "--name", name, "--scope", scope,
                    ],
                )
                .await,
            )
        }
    };
    let okta = issue("okta", "scim").await;
    let entra = issue("entra", "scim").await;
    let service = issue("billing", "service").await;
    let who_am_i = |token: String| {
        let replica = replica.clone();
        async move {
            AuthServiceClient::with_interceptor(replica, Bearer::new(&token))
                .who_am_i(WhoAmIRequest {})
                .await
        }
    };
    who_am_i(okta.clone())
        .await
        .expect("the replica accepts a live token");

    // Revoked through the first replica, refused by the other on the next call.
    operator(
        &stack,
        &["tokens", "revoke", "--tenant", "replicas", "--name", "okta"],
    )
    .await;
    settle().await;
    let refused = who_am_i(okta.clone()).await.expect_err("revoked");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    stack
        .scim(&okta)
        .get("/Users")
        .await
        .assert_error(401, None);

    // A policy set through one replica applies on the other.
    operator(
        &stack,
        &[
            "tenants",
            "update",
            "replicas",
            "--lowercase-identifiers",
            "true",
        ],
    )
    .await;
    settle().await;
    let created = UserServiceClient::with_interceptor(replica.clone(), Bearer::new(&service))
        .create_user(CreateUserRequest {
            tenant: String::new(),
            user: Some(User {
                user_name: "Ada@Replicas.Example".into(),
                ..User::default()
            }),
        })
        .await
        .expect("the service token creates a user on the replica")
        .into_inner();
    assert_eq!(created.user_name, "ada@replicas.example");

    // SCIM switched off through one replica: the other refuses SCIM tokens.
    operator(&stack, &["tenants", "disable-scim", "replicas"]).await;
    settle().await;
    let refused = who_am_i(entra).await.expect_err("SCIM is off");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    who_am_i(service)
        .await
        .expect("service tokens outlive the SCIM switch");
}
