//! Lists on a real Postgres (TEST_DATABASE_URL), through real gRPC:
//! keyset pages in both directions with ties and NULLs, sorting, filters on
//! the attributes document, and PATCH's noTarget.

mod common;

use common::{TestService, call, reason};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression;
use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::{
    AttributePath, Comparison, CreateGroupRequest, CreateUserRequest, Email, EnterpriseUser,
    Filter, Group, ListGroupsRequest, ListGroupsResponse, ListUsersRequest, ListUsersResponse,
    Logical, Manager, Name, PatchOperation, PatchUserRequest, SortOrder, User, ValuePath,
};
use serde_json::{Value as Json, json};
use tonic::{Code, Status};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ACME: &str = "urn:example:params:scim:schemas:extension:acme:1.0:User";

fn path(schema: &str, attribute: &str, sub: &str) -> AttributePath {
    AttributePath {
        schema: schema.into(),
        attribute: attribute.into(),
        sub_attribute: sub.into(),
        value_filter: None,
    }
}

fn cmp_path(path: AttributePath, op: Operator, value: Json) -> Filter {
    Filter {
        expression: Some(Expression::Comparison(Box::new(Comparison {
            path: Some(Box::new(path)),
            operator: op as i32,
            value: Some(identity_proto::json_to_value(value)),
        }))),
    }
}

fn cmp(attribute: &str, sub: &str, op: Operator, value: Json) -> Filter {
    cmp_path(path("", attribute, sub), op, value)
}

fn value_path(attribute: &str, filter: Filter) -> Filter {
    Filter {
        expression: Some(Expression::ValuePath(Box::new(ValuePath {
            path: Some(Box::new(path("", attribute, ""))),
            filter: Some(Box::new(filter)),
        }))),
    }
}

fn and(operands: Vec<Filter>) -> Filter {
    Filter {
        expression: Some(Expression::And(Logical { operands })),
    }
}

fn order(attribute: &str, sub: &str, descending: bool) -> Option<SortOrder> {
    Some(SortOrder {
        path: Some(path("", attribute, sub)),
        descending,
    })
}

fn object(value: Json) -> serde_json::Map<String, Json> {
    match value {
        Json::Object(map) => map,
        other => panic!("object expected, got {other}"),
    }
}

struct Fixture {
    svc: TestService,
    token: String,
}

impl Fixture {
    async fn start(slug: &str) -> Fixture {
        let svc = TestService::start().await;
        let token = svc.tenant_with_token(slug).await;
        Fixture { svc, token }
    }

    async fn create(&self, user: User) -> User {
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
            .unwrap_or_else(|e| panic!("create: {e}"))
            .into_inner()
    }

    async fn list(&self, request: ListUsersRequest) -> Result<ListUsersResponse, Status> {
        self.svc
            .users()
            .list_users(call(&self.token, request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The user names a filter selects, in the list's order.
    async fn names(&self, filter: Filter) -> Vec<String> {
        self.list(ListUsersRequest {
            filter: Some(filter),
            ..ListUsersRequest::default()
        })
        .await
        .unwrap_or_else(|e| panic!("list: {e}"))
        .users
        .into_iter()
        .map(|u| u.user_name)
        .collect()
    }

    async fn sorted(&self, order_by: Option<SortOrder>) -> Vec<String> {
        self.list(ListUsersRequest {
            order_by,
            ..ListUsersRequest::default()
        })
        .await
        .unwrap_or_else(|e| panic!("list: {e}"))
        .users
        .into_iter()
        .map(|u| u.user_name)
        .collect()
    }
}

fn user(user_name: &str) -> User {
    User {
        user_name: user_name.into(),
        ..User::default()
    }
}

/// Walks a list with `size`-row pages: forward from the first page to the
/// last through next tokens, then back through previous tokens. Returns
/// the ids read forward; checks that going back reads them in reverse and
/// that the ends carry no token.
async fn walk(f: &Fixture, base: &ListUsersRequest, size: i32) -> Vec<String> {
    let mut forward = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    let last = loop {
        let page = f
            .list(ListUsersRequest {
                page_size: Some(size),
                page_token: token.clone(),
                ..base.clone()
            })
            .await
            .unwrap_or_else(|e| panic!("page {pages}: {e}"));
        if pages == 0 {
            assert!(
                page.previous_page_token.is_empty(),
                "the first page has no previous"
            );
        } else {
            assert!(
                !page.previous_page_token.is_empty(),
                "page {pages} has a previous"
            );
        }
        assert!(page.users.len() <= size as usize);
        forward.extend(page.users.iter().map(|u| u.id.clone()));
        pages += 1;
        assert!(pages < 100, "paging does not end");
        if page.next_page_token.is_empty() {
            break page;
        }
        token = page.next_page_token;
    };
    let mut backward: Vec<String> = last.users.iter().rev().map(|u| u.id.clone()).collect();
    let mut token = last.previous_page_token;
    while !token.is_empty() {
        let page = f
            .list(ListUsersRequest {
                page_size: Some(size),
                page_token: token,
                ..base.clone()
            })
            .await
            .unwrap_or_else(|e| panic!("previous page: {e}"));
        assert_eq!(page.users.len(), size as usize, "previous pages are full");
        assert!(
            !page.next_page_token.is_empty(),
            "a previous page has a next"
        );
        backward.extend(page.users.iter().rev().map(|u| u.id.clone()));
        token = page.previous_page_token;
    }
    backward.reverse();
    assert_eq!(backward, forward, "going back reads the same rows");
    forward
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_pages_walk_both_ways_through_ties_and_nulls() {
    let f = Fixture::start("paging").await;
    let display_names = [
        Some("b"),
        Some("a"),
        Some("B"),
        Some("c"),
        None,
        Some("a"),
        None,
        Some("A"),
        Some("c"),
        Some("b"),
        None,
    ];
    let mut rows: Vec<(Option<String>, String)> = Vec::new();
    for (i, display) in display_names.iter().enumerate() {
        let created = f
            .create(User {
                display_name: display.map(Into::into),
                ..user(&format!("u{i:02}"))
            })
            .await;
        rows.push((display.map(str::to_lowercase), created.id));
    }
    // RFC 7644 §3.4.2.3: case-insensitive, NULLs last ascending; ties by id.
    rows.sort_by(|a, b| (a.0.is_none(), &a.0, &a.1).cmp(&(b.0.is_none(), &b.0, &b.1)));
    let ascending: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    let mut descending = ascending.clone();
    descending.reverse();

    for size in [1, 2, 3, 4, 11, 20] {
        let asc = ListUsersRequest {
            order_by: order("displayName", "", false),
            ..ListUsersRequest::default()
        };
        assert_eq!(walk(&f, &asc, size).await, ascending, "ascending by {size}");
        let desc = ListUsersRequest {
            order_by: order("displayName", "", true),
            ..ListUsersRequest::default()
        };
        assert_eq!(
            walk(&f, &desc, size).await,
            descending,
            "descending by {size}"
        );
    }

    // A first page at an offset (SCIM startIndex) links back to the start.
    let base = ListUsersRequest {
        order_by: order("displayName", "", false),
        ..ListUsersRequest::default()
    };
    let at_offset = f
        .list(ListUsersRequest {
            offset: 4,
            page_size: Some(3),
            ..base.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ids = |users: &[User]| users.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&at_offset.users), ascending[4..7]);
    assert_eq!(at_offset.total_size, Some(11));
    let back = f
        .list(ListUsersRequest {
            page_token: at_offset.previous_page_token.clone(),
            page_size: Some(3),
            ..base.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&back.users), ascending[1..4]);
    let start = f
        .list(ListUsersRequest {
            page_token: back.previous_page_token.clone(),
            page_size: Some(3),
            ..base.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&start.users), ascending[..1]);
    assert!(start.previous_page_token.is_empty());
    let onward = f
        .list(ListUsersRequest {
            page_token: at_offset.next_page_token.clone(),
            page_size: Some(3),
            offset: 0,
            ..base.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&onward.users), ascending[7..10]);

    // Creation order (the default) walks the same way.
    let created = walk(&f, &ListUsersRequest::default(), 4).await;
    let everything = f
        .list(ListUsersRequest::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created, ids(&everything.users));
    assert!(everything.next_page_token.is_empty() && everything.previous_page_token.is_empty());

    // Count only: no rows, no tokens.
    let count = f
        .list(ListUsersRequest {
            page_size: Some(0),
            ..ListUsersRequest::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((count.users.len(), count.total_size), (0, Some(11)));
    assert!(count.next_page_token.is_empty());

    // The total: counted unless the page shows it, and not at all when the
    // caller can do without it.
    let total = |request: ListUsersRequest| {
        let f = &f;
        async move {
            f.list(request)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .total_size
        }
    };
    let optional = ListUsersRequest {
        total_optional: true,
        ..base.clone()
    };
    let sized = |size: i32, offset: i64, template: &ListUsersRequest| ListUsersRequest {
        page_size: Some(size),
        offset,
        ..template.clone()
    };
    // A short page from the start, or with rows from an offset, ends the matches.
    assert_eq!(total(sized(20, 0, &optional)).await, Some(11));
    assert_eq!(total(sized(20, 9, &optional)).await, Some(11));
    // Full pages and pages past the end would need a count.
    assert_eq!(total(sized(3, 0, &optional)).await, None);
    assert_eq!(total(sized(3, 20, &optional)).await, None);
    assert_eq!(total(sized(3, 0, &base)).await, Some(11));
    assert_eq!(total(sized(3, 20, &base)).await, Some(11));
    // Token pages: counted only for a caller that wants the total.
    let after = ListUsersRequest {
        page_token: at_offset.next_page_token.clone(),
        ..sized(3, 0, &base)
    };
    assert_eq!(total(after.clone()).await, Some(11));
    assert_eq!(
        total(ListUsersRequest {
            total_optional: true,
            ..after
        })
        .await,
        None
    );
    // Count only counts even so.
    assert_eq!(total(sized(0, 0, &optional)).await, Some(11));
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_tokens_only_continue_their_own_query() {
    let f = Fixture::start("cursors").await;
    for i in 0..5 {
        f.create(User {
            active: Some(i % 2 == 0),
            ..user(&format!("c{i}"))
        })
        .await;
    }
    let base = ListUsersRequest {
        filter: Some(cmp("active", "", Operator::Eq, json!(true))),
        order_by: order("userName", "", false),
        page_size: Some(1),
        ..ListUsersRequest::default()
    };
    let first = f.list(base.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.total_size, Some(3));
    let token = first.next_page_token.clone();
    let second = f
        .list(ListUsersRequest {
            page_token: token.clone(),
            ..base.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.users[0].user_name, "c2");

    let mut altered = token.clone().into_bytes();
    altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
    let misuses = [
        ListUsersRequest {
            filter: Some(cmp("active", "", Operator::Eq, json!(false))),
            page_token: token.clone(),
            ..base.clone()
        },
        ListUsersRequest {
            order_by: order("userName", "", true),
            page_token: token.clone(),
            ..base.clone()
        },
        ListUsersRequest {
            order_by: None,
            page_token: token.clone(),
            ..base.clone()
        },
        ListUsersRequest {
            show_deleted: true,
            page_token: token.clone(),
            ..base.clone()
        },
        ListUsersRequest {
            page_token: String::from_utf8(altered).unwrap_or_default(),
            ..base.clone()
        },
        ListUsersRequest {
            page_token: "b2Zmc2V0OjI".into(),
            ..base.clone()
        },
        ListUsersRequest {
            page_token: "%%%".into(),
            ..base.clone()
        },
    ];
    for (i, request) in misuses.into_iter().enumerate() {
        let err = f
            .list(request)
            .await
            .err()
            .unwrap_or_else(|| panic!("misuse {i} was accepted"));
        assert_eq!(err.code(), Code::InvalidArgument, "misuse {i}");
        assert_eq!(reason(&err), "INVALID_CURSOR", "misuse {i}: {err:?}");
    }
    // Another tenant cannot continue this tenant's list.
    let other = f.svc.tenant_with_token("cursors-other").await;
    let err = f
        .svc
        .users()
        .list_users(call(
            &other,
            ListUsersRequest {
                page_token: token,
                ..base.clone()
            },
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("another tenant's token was accepted"));
    assert_eq!(reason(&err), "INVALID_CURSOR");
    // A page size may change between pages.
    let rest = f
        .list(ListUsersRequest {
            page_token: first.next_page_token,
            page_size: Some(10),
            ..base.clone()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rest.users
            .iter()
            .map(|u| u.user_name.as_str())
            .collect::<Vec<_>>(),
        ["c2", "c4"]
    );
    // Sorting by something that cannot be sorted on is INVALID_VALUE.
    let err = f
        .list(ListUsersRequest {
            order_by: order("name", "", false),
            ..ListUsersRequest::default()
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("sorting by name was accepted"));
    assert_eq!(reason(&err), "INVALID_VALUE");
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_reach_the_attributes_document() {
    let f = Fixture::start("documents").await;
    let ada = f
        .create(User {
            attributes: Some(identity_proto::json_to_struct(object(json!({
                "Title": "Countess",
                "userType": "Employee",
                "phoneNumbers": [
                    {"value": "+44 20 7946 0000", "type": "work", "primary": "True"},
                    {"value": "+44 7700 900000", "type": "mobile"}
                ],
                "addresses": [{"locality": "London", "country": "GB", "type": "home", "postalCode": "SW1A"}],
                "x509Certificates": [{"value": "MIIBaDa"}],
                ACME: {"badge": 1234, "team": "Engines", "flags": {"night": true}}
            })))),
            ..user("ada")
        })
        .await;
    let grace = f
        .create(User {
            attributes: Some(identity_proto::json_to_struct(object(json!({
                "title": "Rear Admiral",
                "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
                "addresses": [{"locality": "Arlington", "type": "work"}],
                ACME: {"badge": "77", "team": "Compilers"}
            })))),
            enterprise: Some(EnterpriseUser {
                department: Some("Navy".into()),
                manager: Some(Manager {
                    value: ada.id.clone(),
                    display_name: String::new(),
                }),
                ..EnterpriseUser::default()
            }),
            emails: vec![Email {
                value: "grace@navy.example".into(),
                r#type: Some("work".into()),
                primary: true,
                display: None,
            }],
            ..user("grace")
        })
        .await;
    f.create(user("plain")).await;
    // Stored under the schema's names, with booleans as booleans.
    let stored = ada
        .attributes
        .map(identity_proto::struct_to_json)
        .unwrap_or_default();
    assert_eq!(stored.get("title"), Some(&json!("Countess")));
    assert_eq!(stored["phoneNumbers"][0]["primary"], json!(true));

    let cases: Vec<(Filter, Vec<&str>)> = vec![
        (
            cmp("title", "", Operator::Eq, json!("COUNTESS")),
            vec!["ada"],
        ),
        (
            cmp("title", "", Operator::Co, json!("admiral")),
            vec!["grace"],
        ),
        (
            cmp("title", "", Operator::Pr, Json::Null),
            vec!["ada", "grace"],
        ),
        (cmp("title", "", Operator::Lt, json!("d")), vec!["ada"]),
        (
            cmp("userType", "", Operator::Ne, json!("employee")),
            vec!["grace", "plain"],
        ),
        (
            cmp("phoneNumbers", "value", Operator::Sw, json!("+44")),
            vec!["ada"],
        ),
        (
            value_path(
                "phoneNumbers",
                and(vec![
                    cmp("type", "", Operator::Eq, json!("work")),
                    cmp("primary", "", Operator::Eq, json!(true)),
                ]),
            ),
            vec!["ada"],
        ),
        (
            cmp("phoneNumbers", "", Operator::Pr, Json::Null),
            vec!["ada", "grace"],
        ),
        (
            cmp("addresses", "locality", Operator::Eq, json!("arlington")),
            vec!["grace"],
        ),
        (
            value_path(
                "addresses",
                cmp("postalCode", "", Operator::Sw, json!("sw1")),
            ),
            vec!["ada"],
        ),
        (
            cmp("x509Certificates", "value", Operator::Eq, json!("MIIBaDa")),
            vec!["ada"],
        ),
        (
            cmp("x509Certificates", "value", Operator::Eq, json!("miibada")),
            vec![],
        ),
        (
            cmp_path(path(ACME, "badge", ""), Operator::Eq, json!(1234)),
            vec!["ada"],
        ),
        (
            cmp_path(path(ACME, "badge", ""), Operator::Eq, json!("77")),
            vec!["grace"],
        ),
        (
            cmp_path(path(ACME, "team", ""), Operator::Sw, json!("eng")),
            vec!["ada"],
        ),
        (
            cmp_path(path(ACME, "team", ""), Operator::Ne, json!("engines")),
            vec!["grace", "plain"],
        ),
        (
            cmp_path(path(ACME, "flags", "night"), Operator::Eq, json!(true)),
            vec!["ada"],
        ),
        (
            cmp_path(path(ACME, "team", ""), Operator::Pr, Json::Null),
            vec!["ada", "grace"],
        ),
        (
            cmp("schemas", "", Operator::Eq, json!(ENTERPRISE)),
            vec!["grace"],
        ),
        (
            cmp("schemas", "", Operator::Eq, json!(ACME)),
            vec!["ada", "grace"],
        ),
        (
            cmp_path(
                path(ENTERPRISE, "manager", "displayName"),
                Operator::Pr,
                Json::Null,
            ),
            vec![],
        ),
        (
            cmp_path(
                path(ENTERPRISE, "manager", "value"),
                Operator::Eq,
                json!(ada.id),
            ),
            vec!["grace"],
        ),
        (
            cmp("meta", "resourceType", Operator::Eq, json!("User")),
            vec!["ada", "grace", "plain"],
        ),
        (
            cmp("meta", "version", Operator::Eq, json!("W/\"1\"")),
            vec!["ada", "grace", "plain"],
        ),
        (
            cmp("emails", "primary", Operator::Eq, json!(true)),
            vec!["grace"],
        ),
    ];
    for (filter, expected) in cases {
        let mut names = f.names(filter.clone()).await;
        names.sort();
        assert_eq!(names, expected, "{filter:?}");
    }

    // The manager's display name is the full-name rule over the manager.
    f.svc
        .users()
        .patch_user(call(
            &f.token,
            PatchUserRequest {
                id: ada.id.clone(),
                operations: vec![PatchOperation {
                    op: Op::Replace as i32,
                    path: Some(path("", "name", "")),
                    value: Some(identity_proto::json_to_value(
                        json!({"givenName": "Ada", "familyName": "Lovelace"}),
                    )),
                }],
                ..PatchUserRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("patch: {e}"));
    assert_eq!(
        f.names(cmp_path(
            path(ENTERPRISE, "manager", "displayName"),
            Operator::Eq,
            json!("ada lovelace")
        ))
        .await,
        ["grace"]
    );
    assert_eq!(
        f.names(cmp("name", "", Operator::Pr, Json::Null)).await,
        ["ada"]
    );

    // Memberships, from the user's side and the group's.
    let group = f
        .svc
        .groups()
        .create_group(call(
            &f.token,
            CreateGroupRequest {
                tenant: String::new(),
                group: Some(Group {
                    display_name: "Pioneers".into(),
                    ..Group::default()
                }),
                member_ids: vec![grace.id.clone()],
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("group: {e}"))
        .into_inner();
    assert_eq!(
        f.names(cmp("groups", "value", Operator::Eq, json!(group.id)))
            .await,
        ["grace"]
    );
    assert_eq!(
        f.names(value_path(
            "groups",
            cmp("display", "", Operator::Eq, json!("pioneers"))
        ))
        .await,
        ["grace"]
    );
    let groups = f
        .svc
        .groups()
        .list_groups(call(
            &f.token,
            ListGroupsRequest {
                filter: Some(cmp("members", "display", Operator::Eq, json!("GRACE"))),
                ..ListGroupsRequest::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("groups: {e}"))
        .into_inner();
    assert_eq!(groups.groups.len(), 1);

    // Filters that cannot apply are INVALID_FILTER.
    for bad in [
        cmp("title", "", Operator::Eq, json!(["a"])),
        cmp("shoeSize", "", Operator::Eq, json!("44")),
        cmp_path(path(ACME, "badge", ""), Operator::Gt, json!(1)),
        cmp("x509Certificates", "value", Operator::Lt, json!("M")),
        cmp("phoneNumbers", "primary", Operator::Gt, json!(true)),
    ] {
        let err = f
            .list(ListUsersRequest {
                filter: Some(bad.clone()),
                ..ListUsersRequest::default()
            })
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad:?} was accepted"));
        assert_eq!(reason(&err), "INVALID_FILTER", "{bad:?}");
    }
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorting_follows_the_attribute_rules() {
    let f = Fixture::start("sorting").await;
    let email = |value: &str, primary: bool| Email {
        value: value.into(),
        r#type: None,
        primary,
        display: None,
    };
    let bag = |title: Option<&str>, team: &str| {
        let mut bag = object(json!({ACME: {"team": team}}));
        if let Some(title) = title {
            bag.insert("title".into(), json!(title));
        }
        Some(identity_proto::json_to_struct(bag))
    };
    f.create(User {
        emails: vec![email("z@x", false), email("b@x", true)],
        attributes: bag(Some("beta"), "b"),
        active: Some(false),
        ..user("one")
    })
    .await;
    f.create(User {
        emails: vec![email("c@x", false), email("a@x", false)],
        attributes: bag(None, "C"),
        ..user("two")
    })
    .await;
    f.create(User {
        attributes: bag(Some("Alpha"), "a"),
        ..user("three")
    })
    .await;
    // emails: the primary value, else the first; users without sort last.
    assert_eq!(
        f.sorted(order("emails", "", false)).await,
        ["one", "two", "three"]
    );
    assert_eq!(
        f.sorted(order("emails", "value", true)).await,
        ["three", "two", "one"]
    );
    // title: case-insensitive, NULLs last ascending and first descending.
    assert_eq!(
        f.sorted(order("title", "", false)).await,
        ["three", "one", "two"]
    );
    assert_eq!(
        f.sorted(order("title", "", true)).await,
        ["two", "one", "three"]
    );
    assert_eq!(
        f.sorted(order("userName", "", true)).await,
        ["two", "three", "one"]
    );
    assert_eq!(f.sorted(order("active", "", false)).await[0], "one");
    assert_eq!(
        f.sorted(order("meta", "created", true)).await,
        ["three", "two", "one"]
    );

    // Groups sort and page the same way.
    let mut ids = Vec::new();
    for name in ["delta", "Alpha", "charlie", "Bravo"] {
        let group = f
            .svc
            .groups()
            .create_group(call(
                &f.token,
                CreateGroupRequest {
                    tenant: String::new(),
                    group: Some(Group {
                        display_name: name.into(),
                        ..Group::default()
                    }),
                    member_ids: Vec::new(),
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("group: {e}"))
            .into_inner();
        ids.push(group.id);
    }
    let list_groups = |page_token: String| {
        let mut client = f.svc.groups();
        let token = f.token.clone();
        async move {
            client
                .list_groups(call(
                    &token,
                    ListGroupsRequest {
                        page_size: Some(3),
                        page_token,
                        order_by: Some(SortOrder {
                            path: Some(path("", "displayName", "")),
                            descending: true,
                        }),
                        ..ListGroupsRequest::default()
                    },
                ))
                .await
                .unwrap_or_else(|e| panic!("groups: {e}"))
                .into_inner()
        }
    };
    let names = |page: &ListGroupsResponse| {
        page.groups
            .iter()
            .map(|g| g.display_name.clone())
            .collect::<Vec<_>>()
    };
    let first = list_groups(String::new()).await;
    assert_eq!(names(&first), ["delta", "charlie", "Bravo"]);
    let second = list_groups(first.next_page_token.clone()).await;
    assert_eq!(names(&second), ["Alpha"]);
    assert!(second.next_page_token.is_empty());
    let back = list_groups(second.previous_page_token.clone()).await;
    assert_eq!(names(&back), names(&first));
    assert!(back.previous_page_token.is_empty());
    f.svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_value_filters_that_match_nothing() {
    let f = Fixture::start("no-target").await;
    let ada = f
        .create(User {
            name: Some(Name {
                given_name: Some("Ada".into()),
                ..Name::default()
            }),
            attributes: Some(identity_proto::json_to_struct(object(json!({
                "addresses": [{"type": "home", "locality": "London"}]
            })))),
            ..user("ada")
        })
        .await;
    let patch = |operations: Vec<PatchOperation>| {
        let mut client = f.svc.users();
        let token = f.token.clone();
        let id = ada.id.clone();
        async move {
            client
                .patch_user(call(
                    &token,
                    PatchUserRequest {
                        id,
                        operations,
                        ..PatchUserRequest::default()
                    },
                ))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let filtered = |attribute: &str, attr: &str, value: &str, sub: &str| AttributePath {
        value_filter: Some(Box::new(cmp(attr, "", Operator::Eq, json!(value)))),
        ..path("", attribute, sub)
    };
    let op = |op: Op, path: AttributePath, value: Option<Json>| PatchOperation {
        op: op as i32,
        path: Some(path),
        value: value.map(identity_proto::json_to_value),
    };
    // remove and (non-equality) replace with nothing selected: noTarget,
    // and the whole request changes nothing.
    for operations in [
        vec![
            op(Op::Replace, path("", "title", ""), Some(json!("Countess"))),
            op(Op::Remove, filtered("addresses", "type", "work", ""), None),
        ],
        vec![op(
            Op::Remove,
            filtered("emails", "type", "work", "value"),
            None,
        )],
    ] {
        let err = patch(operations)
            .await
            .err()
            .unwrap_or_else(|| panic!("no error"));
        assert_eq!(reason(&err), "NO_TARGET", "{err:?}");
    }
    // replace/add through an equality on type creates the element (Entra).
    let out = patch(vec![
        op(
            Op::Replace,
            filtered("addresses", "type", "work", "locality"),
            Some(json!("Paris")),
        ),
        op(
            Op::Add,
            filtered("emails", "type", "work", "value"),
            Some(json!("ada@work.example")),
        ),
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let bag = out
        .attributes
        .map(identity_proto::struct_to_json)
        .unwrap_or_default();
    assert_eq!(
        bag.get("addresses"),
        Some(
            &json!([{"type": "home", "locality": "London"}, {"type": "work", "locality": "Paris"}])
        )
    );
    assert!(
        bag.get("title").is_none(),
        "the failed request changed nothing"
    );
    assert_eq!(out.emails.len(), 1);
    assert_eq!(out.etag, "2");
    f.svc.stop().await;
}
