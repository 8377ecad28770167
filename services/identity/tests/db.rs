//! Service tests on a real Postgres (TEST_DATABASE_URL), through real gRPC.

mod common;

use common::{OPERATOR, TestService, call, reason};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression;
use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::principal::Kind;
use identity_proto::v1::revoke_token_request::Token as Which;
use identity_proto::v1::{
    AttributePath, Comparison, CreateUserRequest, DeleteUserRequest, Email, EnterpriseUser, Filter,
    GetTenantRequest, GetUserRequest, IssueTokenRequest, ListTokensRequest, ListUsersRequest,
    Logical, Manager, Name, PatchOperation, PatchUserRequest, ReplaceUserRequest,
    RevokeTokenRequest, User, ValuePath, WhoAmIRequest,
};
use serde_json::json;
use tonic::Code;

fn user(user_name: &str) -> User {
    User {
        user_name: user_name.into(),
        ..User::default()
    }
}

fn path(schema: &str, attribute: &str, sub: &str) -> AttributePath {
    AttributePath {
        schema: schema.into(),
        attribute: attribute.into(),
        sub_attribute: sub.into(),
        value_filter: None,
    }
}

fn cmp(attribute: &str, sub: &str, op: Operator, value: serde_json::Value) -> Filter {
    Filter {
        expression: Some(Expression::Comparison(Box::new(Comparison {
            path: Some(Box::new(path("", attribute, sub))),
            operator: op as i32,
            value: Some(identity_proto::json_to_value(value)),
        }))),
    }
}

async fn list(svc: &TestService, token: &str, filter: Option<Filter>) -> Vec<String> {
    svc.users()
        .list_users(call(
            token,
            ListUsersRequest {
                filter,
                ..ListUsersRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("list: {e}"))
        .into_inner()
        .users
        .into_iter()
        .map(|u| u.user_name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_user_name_yield_exactly_one_user() {
    let svc = TestService::start().await;
    let token = svc.tenant_with_token("race").await;
    let attempts = (0..12).map(|i| {
        let mut client = svc.users();
        let token = token.clone();
        // Same name, different case: the index is case-insensitive.
        let name = if i % 2 == 0 {
            "Racer@Example.com"
        } else {
            "racer@example.COM"
        };
        tokio::spawn(async move {
            client
                .create_user(call(
                    &token,
                    CreateUserRequest {
                        tenant: String::new(),
                        user: Some(user(name)),
                    },
                ))
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let mut created = 0;
    for result in results {
        match result.unwrap_or_else(|e| panic!("task: {e}")) {
            Ok(_) => created += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
                assert_eq!(reason(&status), "UNIQUENESS");
            }
        }
    }
    assert_eq!(created, 1);
    assert_eq!(list(&svc, &token, None).await.len(), 1);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated() {
    let svc = TestService::start().await;
    let a = svc.tenant_with_token("tenant-a").await;
    let b = svc.tenant_with_token("tenant-b").await;
    let created = svc
        .users()
        .create_user(call(
            &a,
            CreateUserRequest {
                tenant: "tenant-a".into(),
                user: Some(user("shared@example.com")),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(created.tenant, "tenant-a");

    let get = svc
        .users()
        .get_user(call(
            &b,
            GetUserRequest {
                id: created.id.clone(),
                ..GetUserRequest::default()
            },
        ))
        .await;
    assert_eq!(get.err().map(|s| s.code()), Some(Code::NotFound));
    let filter = cmp("userName", "", Operator::Eq, json!("shared@example.com"));
    assert!(list(&svc, &b, Some(filter.clone())).await.is_empty());
    let delete = svc
        .users()
        .delete_user(call(
            &b,
            DeleteUserRequest {
                id: created.id.clone(),
                ..DeleteUserRequest::default()
            },
        ))
        .await;
    assert_eq!(delete.err().map(|s| s.code()), Some(Code::NotFound));

    // Naming the other tenant is refused outright: the token is no
    // credential there.
    let cross = svc
        .users()
        .list_users(call(
            &b,
            ListUsersRequest {
                tenant: "tenant-a".into(),
                ..ListUsersRequest::default()
            },
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("cross-tenant list succeeded"));
    assert_eq!(cross.code(), Code::Unauthenticated);
    assert_eq!(reason(&cross), "TOKEN_INVALID");
    assert_eq!(
        cross.message(),
        "this token is not valid for tenant 'tenant-a'"
    );
    let tenant = svc
        .tenants()
        .get_tenant(call(
            &b,
            GetTenantRequest {
                slug: "tenant-a".into(),
            },
        ))
        .await;
    assert_eq!(tenant.err().map(|s| s.code()), Some(Code::Unauthenticated));

    // The same userName is free in the other tenant. (The operator adds it:
    // claim protection keeps B's identity provider from claiming A's person.)
    svc.users()
        .create_user(call(
            OPERATOR,
            CreateUserRequest {
                tenant: "tenant-b".into(),
                user: Some(user("SHARED@example.com")),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(list(&svc, &a, Some(filter)).await, ["shared@example.com"]);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_lifecycle() {
    let svc = TestService::start().await;
    let token = svc.tenant_with_token("life").await;
    let mut users = svc.users();
    let create = |u: User| CreateUserRequest {
        tenant: String::new(),
        user: Some(u),
    };

    let boss = users
        .create_user(call(
            &token,
            create(User {
                name: Some(Name {
                    given_name: Some("Grace".into()),
                    family_name: Some("Hopper".into()),
                    ..Name::default()
                }),
                ..user("grace")
            }),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    let ada = users
        .create_user(call(
            &token,
            create(User {
                external_id: Some("00uAda".into()),
                display_name: Some("Ada".into()),
                emails: vec![Email {
                    value: "ada@home.example".into(),
                    r#type: Some("home".into()),
                    primary: true,
                    display: None,
                }],
                enterprise: Some(EnterpriseUser {
                    department: Some("R&D".into()),
                    manager: Some(Manager {
                        value: boss.id.clone(),
                        display_name: String::new(),
                    }),
                    ..EnterpriseUser::default()
                }),
                attributes: Some(identity_proto::json_to_struct(
                    json!({"locale": "en-GB", "title": "Countess"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                )),
                ..user("ada@example.com")
            }),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(ada.etag, "1");
    assert_eq!(ada.active, Some(true));
    assert_eq!(ada.full_name, "Ada");
    let manager = ada.enterprise.as_ref().and_then(|e| e.manager.clone());
    assert_eq!(manager.map(|m| m.display_name), Some("Grace Hopper".into()));

    // Invalid manager and a malformed id.
    let bad = users
        .create_user(call(
            &token,
            create(User {
                enterprise: Some(EnterpriseUser {
                    manager: Some(Manager {
                        value: uuid::Uuid::new_v4().to_string(),
                        display_name: String::new(),
                    }),
                    ..EnterpriseUser::default()
                }),
                ..user("nobody")
            }),
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("unknown manager accepted"));
    assert_eq!(
        (bad.code(), reason(&bad).as_str()),
        (Code::InvalidArgument, "INVALID_VALUE")
    );
    let missing = users
        .get_user(call(
            &token,
            GetUserRequest {
                id: "00919288221112222".into(),
                ..GetUserRequest::default()
            },
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("malformed id found"));
    assert_eq!(missing.code(), Code::NotFound);

    // Filters compile to SQL that Postgres accepts and evaluates as SCIM says.
    let by_email = Filter {
        expression: Some(Expression::ValuePath(Box::new(ValuePath {
            path: Some(Box::new(path("", "emails", ""))),
            filter: Some(Box::new(cmp("type", "", Operator::Eq, json!("HOME")))),
        }))),
    };
    assert_eq!(
        list(&svc, &token, Some(by_email)).await,
        ["ada@example.com"]
    );
    let either = Filter {
        expression: Some(Expression::Or(Logical {
            operands: vec![
                cmp("externalId", "", Operator::Eq, json!("00uada")),
                Filter {
                    expression: Some(Expression::Not(Box::new(cmp(
                        "displayName",
                        "",
                        Operator::Pr,
                        serde_json::Value::Null,
                    )))),
                },
            ],
        })),
    };
    assert_eq!(list(&svc, &token, Some(either)).await, ["grace"]);
    let recent = cmp(
        "meta",
        "lastModified",
        Operator::Gt,
        json!("2000-01-01T00:00:00Z"),
    );
    assert_eq!(list(&svc, &token, Some(recent)).await.len(), 2);
    let unknown = users
        .list_users(call(
            &token,
            ListUsersRequest {
                filter: Some(cmp("shoeSize", "", Operator::Eq, json!(9))),
                ..ListUsersRequest::default()
            },
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("unknown attribute accepted"));
    assert_eq!(reason(&unknown), "INVALID_FILTER");
    assert!(unknown.message().contains("shoeSize"));

    // Paging: stable order, total, tokens.
    let page = users
        .list_users(call(
            &token,
            ListUsersRequest {
                page_size: Some(1),
                ..ListUsersRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!((page.users.len(), page.total_size), (1, Some(2)));
    assert_eq!(page.users[0].user_name, "grace");
    let next = users
        .list_users(call(
            &token,
            ListUsersRequest {
                page_size: Some(1),
                page_token: page.next_page_token,
                ..ListUsersRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(next.users[0].user_name, "ada@example.com");
    assert!(next.next_page_token.is_empty());

    // PATCH with an etag precondition, Entra-style shapes.
    let patch = |etag: &str, operations| PatchUserRequest {
        tenant: String::new(),
        id: ada.id.clone(),
        operations,
        etag: etag.into(),
    };
    let work_email = PatchOperation {
        op: Op::Replace as i32,
        path: Some(AttributePath {
            value_filter: Some(Box::new(cmp("type", "", Operator::Eq, json!("work")))),
            ..path("", "emails", "value")
        }),
        value: Some(identity_proto::json_to_value(json!("ada@work.example"))),
    };
    let deactivate = PatchOperation {
        op: Op::Replace as i32,
        path: Some(path("", "active", "")),
        value: Some(identity_proto::json_to_value(json!(false))),
    };
    let patched = users
        .patch_user(call(&token, patch("1", vec![work_email, deactivate])))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(patched.etag, "2");
    assert_eq!(patched.active, Some(false));
    assert_eq!(patched.emails.len(), 2);
    let stale = users
        .patch_user(call(&token, patch("W/\"1\"", vec![])))
        .await
        .err()
        .unwrap_or_else(|| panic!("stale etag accepted"));
    assert_eq!(
        (stale.code(), reason(&stale).as_str()),
        (Code::FailedPrecondition, "ETAG_MISMATCH")
    );
    let read_only = users
        .patch_user(call(
            &token,
            patch(
                "",
                vec![PatchOperation {
                    op: Op::Remove as i32,
                    path: Some(path("", "id", "")),
                    value: None,
                }],
            ),
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("id removal accepted"));
    assert_eq!(reason(&read_only), "MUTABILITY");
    // A rejected patch changed nothing.
    let unchanged = users
        .get_user(call(
            &token,
            GetUserRequest {
                id: ada.id.clone(),
                ..GetUserRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(unchanged.etag, "2");

    // PUT clears what it does not give; userName clashes are UNIQUENESS.
    let clash = users
        .replace_user(call(
            &token,
            ReplaceUserRequest {
                tenant: String::new(),
                user: Some(User {
                    id: ada.id.clone(),
                    ..user("GRACE")
                }),
                etag: String::new(),
            },
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("userName clash accepted"));
    assert_eq!(
        (clash.code(), reason(&clash).as_str()),
        (Code::AlreadyExists, "UNIQUENESS")
    );
    let replaced = users
        .replace_user(call(
            &token,
            ReplaceUserRequest {
                tenant: String::new(),
                user: Some(User {
                    id: ada.id.clone(),
                    ..user("ada@example.com")
                }),
                etag: "2".into(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(replaced.etag, "3");
    assert_eq!(replaced.active, Some(true));
    assert!(replaced.emails.is_empty() && replaced.enterprise.is_none());
    assert!(replaced.attributes.is_none() && replaced.external_id.is_none());
    assert_eq!(replaced.create_time, ada.create_time);

    // DELETE leaves an obfuscated tombstone and frees the userName.
    users
        .delete_user(call(
            &token,
            DeleteUserRequest {
                tenant: String::new(),
                id: ada.id.clone(),
                etag: "3".into(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let gone = users
        .get_user(call(
            &token,
            GetUserRequest {
                id: ada.id.clone(),
                ..GetUserRequest::default()
            },
        ))
        .await;
    assert_eq!(gone.err().map(|s| s.code()), Some(Code::NotFound));
    let tombstone = users
        .get_user(call(
            &token,
            GetUserRequest {
                tenant: String::new(),
                id: ada.id.clone(),
                show_deleted: true,
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(tombstone.delete_time.is_some());
    // Nothing of the address stays (the placeholder holds the id, whose hex
    // may spell "ada" by chance, so the domain is what is checked).
    assert!(
        !tombstone.user_name.contains("example.com"),
        "{}",
        tombstone.user_name
    );
    users
        .create_user(call(&token, create(user("Ada@Example.com"))))
        .await
        .unwrap_or_else(|e| panic!("re-create after delete: {e}"));
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_authenticate_until_revoked_or_expired() {
    let svc = TestService::start().await;
    let token = svc.tenant_with_token("tok").await;
    let who = svc
        .auth()
        .who_am_i(call(&token, WhoAmIRequest {}))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    match who.kind {
        Some(Kind::Tenant(t)) => {
            assert_eq!((t.tenant.as_str(), t.token_name.as_str()), ("tok", "test"))
        }
        other => panic!("unexpected principal {other:?}"),
    }
    let operator = svc.auth().who_am_i(call(OPERATOR, WhoAmIRequest {})).await;
    assert!(matches!(
        operator.map(|r| r.into_inner().kind),
        Ok(Some(Kind::Operator(true)))
    ));

    // Names are unique among live tokens; tenants cannot manage tokens.
    let issue = |name: &str, ttl| IssueTokenRequest {
        tenant: "tok".into(),
        name: name.into(),
        ttl,
        ..IssueTokenRequest::default()
    };
    let dup = svc
        .tokens()
        .issue_token(call(OPERATOR, issue("test", None)))
        .await
        .err()
        .unwrap_or_else(|| panic!("duplicate name accepted"));
    assert_eq!(
        (dup.code(), reason(&dup).as_str()),
        (Code::AlreadyExists, "UNIQUENESS")
    );
    let denied = svc
        .tokens()
        .issue_token(call(&token, issue("mine", None)))
        .await;
    assert_eq!(denied.err().map(|s| s.code()), Some(Code::PermissionDenied));

    let short = svc
        .tokens()
        .issue_token(call(
            OPERATOR,
            issue(
                "short",
                Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 1,
                }),
            ),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    // The prefix shows the start of the random part, never the whole secret.
    let prefix = short
        .token
        .as_ref()
        .map(|t| t.prefix.clone())
        .unwrap_or_default();
    let random = &short.secret[short.secret.len() - 43..];
    assert!(
        prefix.len() == 12 && random.starts_with(&prefix[4..]),
        "{prefix}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let expired = svc
        .auth()
        .who_am_i(call(&short.secret, WhoAmIRequest {}))
        .await
        .err()
        .unwrap_or_else(|| panic!("expired token accepted"));
    assert_eq!(
        (expired.code(), reason(&expired).as_str()),
        (Code::Unauthenticated, "TOKEN_EXPIRED")
    );

    let listed = svc
        .tokens()
        .list_tokens(call(
            OPERATOR,
            ListTokensRequest {
                tenant: "tok".into(),
                show_revoked: false,
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(listed.tokens.len(), 2);

    svc.tokens()
        .revoke_token(call(
            OPERATOR,
            RevokeTokenRequest {
                tenant: "tok".into(),
                token: Some(Which::Name("test".into())),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let revoked = svc
        .auth()
        .who_am_i(call(&token, WhoAmIRequest {}))
        .await
        .err()
        .unwrap_or_else(|| panic!("revoked token accepted"));
    assert_eq!(
        (revoked.code(), reason(&revoked).as_str()),
        (Code::Unauthenticated, "TOKEN_INVALID")
    );
    // The name is free again once revoked.
    svc.tokens()
        .issue_token(call(OPERATOR, issue("test", None)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for bad in ["", "non-token", "Bearer idl_x"] {
        let status = svc
            .auth()
            .who_am_i(call(bad, WhoAmIRequest {}))
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    let svc = TestService::start().await;
    for service in [
        "",
        "identity.v1.UserService",
        "identity.v1.GroupService",
        "identity.v1.TokenService",
    ] {
        let status = svc
            .health()
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    svc.stop().await;
}

/// Token lookups are reused for at most the cache's TTL (one second by
/// default): the replica that revokes refuses at once, another replica
/// once the TTL has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_replica_within_the_token_cache_ttl() {
    let first = TestService::start().await;
    let second = first.replica().await;
    let token = first.tenant_with_token("rolling").await;
    for replica in [&first, &second] {
        replica
            .auth()
            .who_am_i(call(&token, WhoAmIRequest {}))
            .await
            .unwrap_or_else(|e| panic!("the fresh token is refused: {e}"));
    }
    first
        .tokens()
        .revoke_token(call(
            OPERATOR,
            RevokeTokenRequest {
                tenant: "rolling".into(),
                token: Some(Which::Name("test".into())),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = first
        .auth()
        .who_am_i(call(&token, WhoAmIRequest {}))
        .await
        .err()
        .unwrap_or_else(|| panic!("the revoking replica still accepts the token"));
    assert_eq!(refused.code(), Code::Unauthenticated);
    let ttl = identity_service::ServiceSettings::new("").token_cache_ttl;
    tokio::time::sleep(ttl + std::time::Duration::from_millis(50)).await;
    let refused = second
        .auth()
        .who_am_i(call(&token, WhoAmIRequest {}))
        .await
        .err()
        .unwrap_or_else(|| panic!("another replica accepts the token past the cache TTL"));
    assert_eq!(refused.code(), Code::Unauthenticated);
    second.stop().await;
    first.stop().await;
}

/// The lead's end-to-end tests may run on a current-thread runtime.
#[tokio::test]
async fn migrate_runs_twice_on_a_current_thread_runtime() {
    let db = common::TestDatabase::empty("migrate").await;
    identity_service::migrate(db.url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    identity_service::migrate(db.url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn unreachable_database_is_one_line_without_password() {
    let settings = identity_service::ServiceSettings {
        pool_size: 2,
        ..identity_service::ServiceSettings::new("postgres://app:hunter2@127.0.0.1:1/identity")
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = identity_service::serve(settings, listener, std::future::pending())
        .await
        .err()
        .unwrap_or_else(|| panic!("serve started without a database"))
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2") && !err.contains('\n'), "{err}");
    let migrate_err = identity_service::migrate("postgres://app:hunter2@127.0.0.1:1/identity")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        !migrate_err.is_empty() && !migrate_err.contains("hunter2"),
        "{migrate_err}"
    );
}
