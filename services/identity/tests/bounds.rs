//! Hostile data through real gRPC on a real Postgres (TEST_DATABASE_URL):
//! what the service stores and returns is bounded, whoever calls it. Every
//! refusal is a clear INVALID_ARGUMENT that changes nothing, and the service
//! serves the next request.

mod common;

use std::collections::HashSet;

use common::{TestService, call, reason};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression;
use identity_proto::v1::member_change::Change;
use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::{
    AttributePath, Comparison, CreateGroupRequest, CreateUserRequest, Email, Filter,
    GetUserRequest, Group, ListGroupsRequest, ListMembersRequest, ListUsersRequest, Logical,
    MemberChange, MemberIds, Name, PatchGroupRequest, PatchOperation, PatchUserRequest,
    ReplaceUserRequest, SortOrder, User,
};
use serde_json::{Value as Json, json};
use tonic::{Code, Status};

fn path(attribute: &str) -> AttributePath {
    AttributePath {
        attribute: attribute.into(),
        ..AttributePath::default()
    }
}

fn cmp(attribute: &str, value: Json) -> Filter {
    Filter {
        expression: Some(Expression::Comparison(Box::new(Comparison {
            path: Some(Box::new(path(attribute))),
            operator: Operator::Eq as i32,
            value: Some(identity_proto::json_to_value(value)),
        }))),
    }
}

fn or(operands: Vec<Filter>) -> Filter {
    Filter {
        expression: Some(Expression::Or(Logical { operands })),
    }
}

fn not(inner: Filter) -> Filter {
    Filter {
        expression: Some(Expression::Not(Box::new(inner))),
    }
}

fn op(kind: Op, path: Option<AttributePath>, value: Json) -> PatchOperation {
    PatchOperation {
        op: kind as i32,
        path,
        value: (!value.is_null()).then(|| identity_proto::json_to_value(value)),
    }
}

fn bag(value: Json) -> Option<prost_types::Struct> {
    match value {
        Json::Object(map) => Some(identity_proto::json_to_struct(map)),
        _ => panic!("object expected"),
    }
}

/// Asserts an INVALID_ARGUMENT with `reason` whose message contains `text`.
fn refused<T: std::fmt::Debug>(result: Result<T, Status>, reason_: &str, text: &str) {
    let status = result.expect_err("the request must be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason(&status), reason_, "{status:?}");
    assert!(
        status.message().contains(text),
        "{text:?} not in {status:?}"
    );
}

struct Fixture {
    svc: TestService,
    token: String,
}

impl Fixture {
    async fn start() -> Fixture {
        let svc = TestService::start().await;
        let token = svc.tenant_with_token("acme").await;
        Fixture { svc, token }
    }

    async fn try_create(&self, user: User) -> Result<User, Status> {
        self.svc
            .users()
            .create_user(call(
                &self.token,
                CreateUserRequest {
                    tenant: String::new(),
                    user: Some(user),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn create(&self, user: User) -> User {
        self.try_create(user).await.expect("create user")
    }

    async fn get(&self, id: &str) -> User {
        self.svc
            .users()
            .get_user(call(
                &self.token,
                GetUserRequest {
                    id: id.into(),
                    ..GetUserRequest::default()
                },
            ))
            .await
            .expect("get user")
            .into_inner()
    }

    async fn patch(&self, id: &str, operations: Vec<PatchOperation>) -> Result<User, Status> {
        self.svc
            .users()
            .patch_user(call(
                &self.token,
                PatchUserRequest {
                    id: id.into(),
                    operations,
                    ..PatchUserRequest::default()
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn list(&self, request: ListUsersRequest) -> Result<Vec<User>, Status> {
        self.svc
            .users()
            .list_users(call(&self.token, request))
            .await
            .map(|r| r.into_inner().users)
    }

    async fn try_group(&self, group: Group, member_ids: Vec<String>) -> Result<Group, Status> {
        self.svc
            .groups()
            .create_group(call(
                &self.token,
                CreateGroupRequest {
                    tenant: String::new(),
                    group: Some(group),
                    member_ids,
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn patch_group(
        &self,
        id: &str,
        operations: Vec<PatchOperation>,
    ) -> Result<Group, Status> {
        self.send_patch_group(PatchGroupRequest {
            id: id.into(),
            operations,
            ..PatchGroupRequest::default()
        })
        .await
    }

    /// A PATCH that adds these users to group `id`.
    async fn add_members(&self, id: &str, user_ids: Vec<String>) -> Result<Group, Status> {
        self.send_patch_group(PatchGroupRequest {
            id: id.into(),
            member_changes: vec![MemberChange {
                change: Some(Change::Add(MemberIds { user_ids })),
            }],
            ..PatchGroupRequest::default()
        })
        .await
    }

    async fn send_patch_group(&self, request: PatchGroupRequest) -> Result<Group, Status> {
        self.svc
            .groups()
            .patch_group(call(&self.token, request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The service still answers after a hostile request.
    async fn assert_serving(&self) {
        self.list(ListUsersRequest::default())
            .await
            .expect("the service still lists users");
    }
}

fn user(user_name: &str) -> User {
    User {
        user_name: user_name.into(),
        ..User::default()
    }
}

fn email(value: &str) -> Email {
    Email {
        value: value.into(),
        ..Email::default()
    }
}

#[tokio::test]
async fn nul_characters_are_refused_on_every_user_write() {
    let f = Fixture::start().await;
    let nul = "a\u{0}b";
    let cases: Vec<(User, &str)> = vec![
        (
            user(nul),
            "userName contains a NUL character, which cannot be stored",
        ),
        (
            User {
                external_id: Some(nul.into()),
                ..user("x@example.com")
            },
            "externalId contains a NUL",
        ),
        (
            User {
                name: Some(Name {
                    given_name: Some(nul.into()),
                    ..Name::default()
                }),
                ..user("x@example.com")
            },
            "name.givenName contains a NUL",
        ),
        (
            User {
                emails: vec![email(nul)],
                ..user("x@example.com")
            },
            "emails.value contains a NUL",
        ),
        (
            User {
                attributes: bag(json!({"urn:example:ext": {"deep": [{"x": nul}]}})),
                ..user("x@example.com")
            },
            "urn:example:ext.deep.x contains a NUL",
        ),
        (
            User {
                attributes: bag(json!({"urn:example:ext": {nul: 1}})),
                ..user("x@example.com")
            },
            "the attribute name 'urn:example:ext.a\u{0}b' contains a NUL",
        ),
        (
            User {
                attributes: bag(json!({"phoneNumbers": [{"value": nul}]})),
                ..user("x@example.com")
            },
            "phoneNumbers.value contains a NUL",
        ),
    ];
    for (bad, message) in cases {
        refused(f.try_create(bad).await, "INVALID_VALUE", message);
    }
    assert!(
        f.list(ListUsersRequest::default())
            .await
            .expect("list")
            .is_empty()
    );

    let ada = f.create(user("ada@example.com")).await;
    let replace = f
        .svc
        .users()
        .replace_user(call(
            &f.token,
            ReplaceUserRequest {
                user: Some(User {
                    id: ada.id.clone(),
                    display_name: Some(nul.into()),
                    ..user("ada@example.com")
                }),
                ..ReplaceUserRequest::default()
            },
        ))
        .await;
    refused(replace, "INVALID_VALUE", "displayName contains a NUL");
    let patches = [
        (
            op(Op::Replace, Some(path("userName")), json!(nul)),
            "userName contains a NUL",
        ),
        (
            op(Op::Add, Some(path("emails")), json!([{"value": nul}])),
            "emails.value contains a NUL",
        ),
        (
            op(
                Op::Add,
                Some(AttributePath {
                    schema: "urn:example:ext".into(),
                    ..AttributePath::default()
                }),
                json!({"k": [nul]}),
            ),
            "urn:example:ext.k contains a NUL",
        ),
        (
            op(Op::Add, Some(path("nick\u{0}Name")), json!("x")),
            "contains a NUL",
        ),
    ];
    for (patch, message) in patches {
        refused(
            f.patch(&ada.id, vec![patch]).await,
            "INVALID_VALUE",
            message,
        );
    }
    assert_eq!(f.get(&ada.id).await, ada, "refused writes change nothing");
    f.assert_serving().await;
}

#[tokio::test]
async fn nul_characters_are_refused_on_every_group_write() {
    let f = Fixture::start().await;
    let nul = "a\u{0}b";
    let cases = [
        (
            Group {
                display_name: nul.into(),
                ..Group::default()
            },
            "displayName contains a NUL",
        ),
        (
            Group {
                display_name: "Admins".into(),
                external_id: Some(nul.into()),
                ..Group::default()
            },
            "externalId contains a NUL",
        ),
        (
            Group {
                display_name: "Admins".into(),
                attributes: bag(json!({"urn:example:ext": {"owner": nul}})),
                ..Group::default()
            },
            "urn:example:ext.owner contains a NUL",
        ),
    ];
    for (bad, message) in cases {
        refused(f.try_group(bad, Vec::new()).await, "INVALID_VALUE", message);
    }
    let bad_member = f
        .try_group(
            Group {
                display_name: "Admins".into(),
                ..Group::default()
            },
            vec![nul.into()],
        )
        .await;
    refused(bad_member, "INVALID_VALUE", "is not a user of this tenant");

    let group = f
        .try_group(
            Group {
                display_name: "Admins".into(),
                ..Group::default()
            },
            Vec::new(),
        )
        .await
        .expect("create group");
    refused(
        f.patch_group(
            &group.id,
            vec![op(Op::Replace, Some(path("displayName")), json!(nul))],
        )
        .await,
        "INVALID_VALUE",
        "displayName contains a NUL",
    );
    refused(
        f.add_members(&group.id, vec![nul.to_owned()]).await,
        "INVALID_VALUE",
        "is not a user of this tenant",
    );
    let listed = f
        .svc
        .groups()
        .list_groups(call(&f.token, ListGroupsRequest::default()))
        .await
        .expect("list groups")
        .into_inner()
        .groups;
    assert_eq!(listed, [group], "refused writes change nothing");
}

#[tokio::test]
async fn nul_characters_in_filters_and_sort_paths_are_refused() {
    let f = Fixture::start().await;
    f.create(user("ada@example.com")).await;
    let filtered = |filter| ListUsersRequest {
        filter: Some(filter),
        ..ListUsersRequest::default()
    };
    refused(
        f.list(filtered(cmp("userName", json!("ada\u{0}")))).await,
        "INVALID_FILTER",
        "a filter value contains a NUL character",
    );
    refused(
        f.list(filtered(cmp("urn:example:ext\u{0}", json!("x"))))
            .await,
        "INVALID_FILTER",
        "attribute name contains a NUL",
    );
    let groups = f
        .svc
        .groups()
        .list_groups(call(
            &f.token,
            ListGroupsRequest {
                filter: Some(cmp("displayName", json!("\u{0}"))),
                ..ListGroupsRequest::default()
            },
        ))
        .await;
    refused(groups, "INVALID_FILTER", "NUL");
    let sorted = f
        .list(ListUsersRequest {
            order_by: Some(SortOrder {
                path: Some(AttributePath {
                    schema: "urn:example:ext".into(),
                    attribute: "a\u{0}".into(),
                    ..AttributePath::default()
                }),
                descending: false,
            }),
            ..ListUsersRequest::default()
        })
        .await;
    refused(sorted, "INVALID_VALUE", "attribute name contains a NUL");
    // A tenant slug never reaches SQL unless it could be one: the operator
    // naming "ac\0me" is told no such tenant exists.
    let unknown = f
        .svc
        .users()
        .list_users(call(
            common::OPERATOR,
            ListUsersRequest {
                tenant: "ac\u{0}me".into(),
                ..ListUsersRequest::default()
            },
        ))
        .await
        .expect_err("no tenant has that slug");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    f.assert_serving().await;
}

fn many_terms(n: usize) -> Filter {
    or((0..n)
        .map(|i| cmp("userName", json!(format!("u{i}@example.com"))))
        .collect())
}

#[tokio::test]
async fn filters_are_bounded_in_depth_and_terms() {
    let f = Fixture::start().await;
    let ada = f.create(user("ada@example.com")).await;
    let filtered = |filter| ListUsersRequest {
        filter: Some(filter),
        ..ListUsersRequest::default()
    };
    let mut deep = cmp("userName", json!("ada@example.com"));
    for _ in 0..32 {
        deep = not(not(deep));
    }
    // 64 levels of `not`: below prost's recursion limit, over the filter's.
    refused(
        f.list(filtered(deep)).await,
        "INVALID_FILTER",
        "nested more than 32 levels deep",
    );
    let mut at_limit = cmp("userName", json!("ada@example.com"));
    for _ in 0..16 {
        at_limit = not(not(at_limit));
    }
    assert_eq!(
        f.list(filtered(at_limit)).await.expect("32 levels").len(),
        1
    );
    refused(
        f.list(filtered(many_terms(65))).await,
        "INVALID_FILTER",
        "more than 64 comparisons",
    );
    assert!(f.list(filtered(many_terms(64))).await.is_ok());

    // PATCH value filters: the same bounds, answered as an invalid path.
    let filtered_path = |filter| AttributePath {
        value_filter: Some(Box::new(filter)),
        ..path("emails")
    };
    refused(
        f.patch(
            &ada.id,
            vec![op(
                Op::Remove,
                Some(filtered_path(many_terms(65))),
                Json::Null,
            )],
        )
        .await,
        "INVALID_PATH",
        "more than 64 comparisons",
    );
    let mut deep = cmp("value", json!("x"));
    for _ in 0..17 {
        deep = not(not(deep));
    }
    refused(
        f.patch(
            &ada.id,
            vec![op(Op::Remove, Some(filtered_path(deep)), Json::Null)],
        )
        .await,
        "INVALID_PATH",
        "nested more than 32 levels deep",
    );
    let group = f
        .try_group(
            Group {
                display_name: "Admins".into(),
                ..Group::default()
            },
            Vec::new(),
        )
        .await
        .expect("group");
    let members_path = AttributePath {
        value_filter: Some(Box::new(many_terms(65))),
        ..path("members")
    };
    refused(
        f.patch_group(
            &group.id,
            vec![op(Op::Remove, Some(members_path), Json::Null)],
        )
        .await,
        "INVALID_PATH",
        "more than 64 comparisons",
    );
    f.assert_serving().await;
}

#[tokio::test]
async fn multi_valued_attributes_and_resources_have_documented_limits() {
    let f = Fixture::start().await;
    let emails = |n: usize| -> Vec<Email> {
        (0..n)
            .map(|i| email(&format!("a{i}@example.com")))
            .collect()
    };
    refused(
        f.try_create(User {
            emails: emails(1001),
            ..user("ada@example.com")
        })
        .await,
        "INVALID_VALUE",
        "emails has 1001 values; at most 1000 are allowed",
    );
    let phones: Vec<Json> = (0..1001)
        .map(|i| json!({"value": format!("+1{i}")}))
        .collect();
    refused(
        f.try_create(User {
            attributes: bag(json!({"phoneNumbers": phones})),
            ..user("ada@example.com")
        })
        .await,
        "INVALID_VALUE",
        "phoneNumbers has 1001 values",
    );
    refused(
        f.try_create(User {
            attributes: bag(json!({"urn:example:ext": {"tags": vec![1; 1001]}})),
            ..user("ada@example.com")
        })
        .await,
        "INVALID_VALUE",
        "urn:example:ext.tags has 1001 values",
    );
    let big = "x".repeat(256 * 1024);
    refused(
        f.try_create(User {
            attributes: bag(json!({"urn:example:ext": {"blob": big}})),
            ..user("ada@example.com")
        })
        .await,
        "INVALID_VALUE",
        "at most 262144 are allowed",
    );
    let mut deep = json!(1);
    for _ in 0..30 {
        deep = json!({"d": deep});
    }
    refused(
        f.try_create(User {
            attributes: bag(json!({"urn:example:ext": deep})),
            ..user("ada@example.com")
        })
        .await,
        "INVALID_VALUE",
        "nested more than 24 levels deep",
    );
    refused(
        f.try_group(
            Group {
                display_name: "Big".into(),
                attributes: bag(json!({"description": "y".repeat(256 * 1024)})),
                ..Group::default()
            },
            Vec::new(),
        )
        .await,
        "INVALID_VALUE",
        "the group would take",
    );
    assert!(
        f.list(ListUsersRequest::default())
            .await
            .expect("list")
            .is_empty()
    );

    let full = f
        .create(User {
            emails: emails(1000),
            ..user("ada@example.com")
        })
        .await;
    assert_eq!(full.emails.len(), 1000);
    refused(
        f.patch(
            &full.id,
            vec![op(
                Op::Add,
                Some(path("emails")),
                json!([{"value": "new@example.com"}]),
            )],
        )
        .await,
        "INVALID_VALUE",
        "emails has 1001 values",
    );
    assert_eq!(f.get(&full.id).await, full, "refused writes change nothing");
    f.assert_serving().await;
}

#[tokio::test]
async fn patch_adds_and_removes_a_thousand_emails() {
    let f = Fixture::start().await;
    let ada = f
        .create(User {
            emails: vec![email("a0@example.com")],
            ..user("ada@example.com")
        })
        .await;
    // 999 new values and the existing one in another spelling, then the
    // 999 again as a second operation: duplicates are skipped.
    let mut values: Vec<Json> = (1..1000)
        .map(|i| json!({"value": format!("a{i}@example.com")}))
        .collect();
    values.push(json!({"Value": "a0@example.com"}));
    let again: Vec<Json> = (1..1000)
        .map(|i| json!({"VALUE": format!("a{i}@example.com"), "primary": false}))
        .collect();
    let patched = f
        .patch(
            &ada.id,
            vec![
                op(Op::Add, Some(path("emails")), json!(values)),
                op(Op::Add, Some(path("emails")), json!(again)),
            ],
        )
        .await
        .expect("add 999 emails");
    let expected: Vec<String> = (0..1000).map(|i| format!("a{i}@example.com")).collect();
    let got: Vec<String> = patched.emails.iter().map(|e| e.value.clone()).collect();
    assert_eq!(got, expected, "each value once, in the order added");

    // Remove by value, in any case: every even one.
    let unwanted: Vec<Json> = (0..1000)
        .step_by(2)
        .map(|i| json!({"value": format!("A{i}@EXAMPLE.COM")}))
        .collect();
    let patched = f
        .patch(
            &ada.id,
            vec![op(Op::Remove, Some(path("emails")), json!(unwanted))],
        )
        .await
        .expect("remove 500 emails");
    let got: Vec<String> = patched.emails.iter().map(|e| e.value.clone()).collect();
    let odd: Vec<String> = (1..1000)
        .step_by(2)
        .map(|i| format!("a{i}@example.com"))
        .collect();
    assert_eq!(got, odd);
}

/// Users inserted straight into the database: their creation is not under test.
async fn seed_users(svc: &TestService, count: usize) -> Vec<String> {
    let mut conn = AsyncPgConnection::establish(svc.database_url())
        .await
        .expect("connect to the test database");
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let rows: Vec<Id> = diesel::sql_query(format!(
        "INSERT INTO users (tenant_id, user_id, user_name)
         SELECT t.tenant_id, gen_random_uuid(), 'seed' || n || '@example.com'
         FROM tenants t, generate_series(1, {count}) AS n WHERE t.slug = 'acme'
         RETURNING user_id::text AS id"
    ))
    .load(&mut conn)
    .await
    .expect("seed users");
    rows.into_iter().map(|row| row.id).collect()
}

#[tokio::test]
async fn one_group_patch_adds_ten_thousand_members() {
    let f = Fixture::start().await;
    let ids = seed_users(&f.svc, 10_000).await;
    let group = f
        .try_group(
            Group {
                display_name: "Everyone".into(),
                ..Group::default()
            },
            ids[..10].to_vec(),
        )
        .await
        .expect("group");
    // Every id twice, and the first ten already members.
    let twice: Vec<String> = ids.iter().chain(ids.iter()).cloned().collect();
    f.add_members(&group.id, twice)
        .await
        .expect("add 10,000 members");
    let mut seen = HashSet::new();
    let mut token = String::new();
    loop {
        let page = f
            .svc
            .groups()
            .list_members(call(
                &f.token,
                ListMembersRequest {
                    group_id: group.id.clone(),
                    page_token: token,
                    ..ListMembersRequest::default()
                },
            ))
            .await
            .expect("list members")
            .into_inner();
        for member in page.members {
            assert!(seen.insert(member.user_id), "each member once");
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids.into_iter().collect::<HashSet<_>>());
}

#[tokio::test]
async fn pages_of_huge_users_fit_the_default_message_limit() {
    let f = Fixture::start().await;
    // 30 users of ~200 KiB: 6 MiB, over the 4 MiB a default client decodes.
    let blob = "z".repeat(200 * 1024);
    let mut all = HashSet::new();
    for i in 0..30 {
        let created = f
            .create(User {
                attributes: bag(json!({"urn:example:ext": {"blob": blob}})),
                ..user(&format!("u{i:02}@example.com"))
            })
            .await;
        all.insert(created.id);
    }
    let order = Some(SortOrder {
        path: Some(path("userName")),
        descending: false,
    });
    let list = |offset: i64, page_token: String| ListUsersRequest {
        page_size: Some(100),
        offset,
        page_token,
        order_by: order.clone(),
        ..ListUsersRequest::default()
    };

    // By token, forward, then back from the last page.
    let mut forward = Vec::new();
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = f
            .svc
            .users()
            .list_users(call(&f.token, list(0, token)))
            .await
            .expect("a page of huge users is answered")
            .into_inner();
        assert_eq!(page.total_size, Some(30));
        assert!(
            !page.users.is_empty() && page.users.len() < 30,
            "{}",
            page.users.len()
        );
        forward.extend(page.users.iter().map(|u| u.id.clone()));
        pages.push(page.previous_page_token.clone());
        if page.next_page_token.is_empty() {
            token = page.previous_page_token;
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(forward.len(), 30, "every user exactly once");
    assert_eq!(forward.iter().cloned().collect::<HashSet<_>>(), all);
    let mut backward = Vec::new();
    while !token.is_empty() {
        let page = f
            .svc
            .users()
            .list_users(call(&f.token, list(0, token)))
            .await
            .expect("a previous page")
            .into_inner();
        backward.splice(0..0, page.users.iter().map(|u| u.id.clone()));
        token = page.previous_page_token;
    }
    let last_page = forward.len() - backward.len();
    assert!(last_page > 0 && last_page < 30);
    assert_eq!(
        backward,
        forward[..backward.len()],
        "the same order backwards"
    );

    // By offset, as SCIM's startIndex pages.
    let mut by_offset = Vec::new();
    loop {
        let users = f
            .list(list(by_offset.len() as i64, String::new()))
            .await
            .expect("an offset page");
        if users.is_empty() {
            break;
        }
        by_offset.extend(users.into_iter().map(|u| u.id));
    }
    assert_eq!(by_offset, forward);
    assert!(pages.len() > 1);
}
