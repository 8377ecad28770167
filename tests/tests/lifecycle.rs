//! Delete and re-provision, tombstones for internal callers, the full-name
//! rule, lossless round trips, filters and the gRPC view of the same users.

use identity_lifecycle_tests::*;
use identity_proto::v1::{
    AttributePath, Filter, GetUserRequest, ListUsersRequest, PatchOperation, PatchUserRequest,
    comparison, filter,
};
use reqwest::StatusCode;
use tonic::Code;

#[tokio::test]
async fn delete_keeps_a_tombstone_and_frees_the_user_name() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let id = scim.create_user(user("leaver@example.com")).await;

    let deleted = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, serde_json::Value::Null);
    scim.get(&format!("/Users/{id}"))
        .await
        .assert_error(404, None);
    scim.delete(&format!("/Users/{id}"))
        .await
        .assert_error(404, None);
    assert_eq!(
        scim.filter_users(r#"userName eq "leaver@example.com""#)
            .await
            .body["totalResults"],
        0
    );

    // Internal services still find the tombstone, with the address obfuscated.
    let mut users = stack.users(&acme.token);
    let tombstone = users
        .get_user(GetUserRequest {
            tenant: String::new(),
            id: id.clone(),
            show_deleted: true,
        })
        .await
        .expect("tombstone readable with show_deleted")
        .into_inner();
    assert!(tombstone.delete_time.is_some());
    assert!(
        !format!("{tombstone:?}").contains("leaver@example.com"),
        "{tombstone:?}"
    );
    let hidden = users
        .get_user(GetUserRequest {
            tenant: String::new(),
            id: id.clone(),
            show_deleted: false,
        })
        .await
        .expect_err("deleted users are not found by default");
    assert_eq!(hidden.code(), Code::NotFound);

    // The same userName can be provisioned again, as a new user.
    let again = scim.create_user(user("leaver@example.com")).await;
    assert_ne!(again, id);
}

#[tokio::test]
async fn full_name_prefers_given_and_family_then_formatted_then_display_name() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let cases = [
        (
            json!({"givenName": "Grace", "familyName": "Hopper", "formatted": "Stale Name"}),
            "Grace Hopper",
        ),
        (json!({"givenName": "Grace"}), "Grace"),
        (
            json!({"formatted": "Rear Admiral Hopper"}),
            "Rear Admiral Hopper",
        ),
        (json!({}), "Amazing Grace"),
    ];
    let mut users = stack.users(&acme.token);
    for (n, (name, expected)) in cases.into_iter().enumerate() {
        let id = scim
            .create_user(json!({
                "schemas": [USER_SCHEMA],
                "userName": format!("grace{n}@example.com"),
                "displayName": "Amazing Grace",
                "name": name
            }))
            .await;
        let user = users
            .get_user(GetUserRequest {
                tenant: String::new(),
                id,
                show_deleted: false,
            })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(user.full_name, expected);
    }
}

#[tokio::test]
async fn unknown_attributes_and_extensions_round_trip() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let custom = "urn:example:params:scim:schemas:extension:acme:1.0:User";
    let mut body = user("roundtrip@example.com");
    body["schemas"] = json!([USER_SCHEMA, custom]);
    body["phoneNumbers"] = json!([{"value": "+44 20 7946 0000", "type": "work", "primary": true}]);
    body["addresses"] = json!([{"locality": "London", "country": "GB", "type": "work"}]);
    body["nickName"] = json!("Babbage");
    body[custom] = json!({"badge": 1234, "clearances": ["red", "blue"], "nested": {"ok": true}});
    let created = scim.post("/Users", body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let fetched = scim
        .get(&format!(
            "/Users/{}",
            created.body["id"].as_str().expect("id")
        ))
        .await;
    for key in ["phoneNumbers", "addresses", "nickName", custom] {
        assert_eq!(
            fetched.body[key], body[key],
            "{key} changed: {}",
            fetched.body
        );
    }
    assert!(
        fetched.body["schemas"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(custom))),
        "{}",
        fetched.body
    );
}

#[tokio::test]
async fn filters_cover_operators_and_logic() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    for (name, given, family, active) in [
        ("alice@example.com", "Alice", "Anders", true),
        ("bob@example.org", "Bob", "Berg", false),
        ("carol@example.com", "Carol", "Berg", true),
    ] {
        scim.create_user(json!({
            "userName": name,
            "externalId": format!("ext-{given}"),
            "displayName": format!("{given} {family}"),
            "name": {"givenName": given, "familyName": family},
            "emails": [{"value": name, "type": "work", "primary": true}],
            "active": active
        }))
        .await;
    }
    let cases: &[(&str, u64)] = &[
        (r#"userName eq "ALICE@example.com""#, 1),
        (r#"userName ne "alice@example.com""#, 2),
        (r#"userName co "example""#, 3),
        (r#"userName sw "b""#, 1),
        (r#"userName ew ".com""#, 2),
        ("externalId pr", 3),
        ("displayName pr", 3),
        (r#"name.familyName eq "berg""#, 2),
        (r#"name.givenName sw "ca""#, 1),
        (r#"emails.value ew "example.org""#, 1),
        (r#"emails[type eq "work" and value co "carol"]"#, 1),
        ("active eq true", 2),
        (r#"active eq false or name.givenName eq "Alice""#, 2),
        (r#"name.familyName eq "Berg" and not (active eq false)"#, 1),
        (
            r#"(userName sw "a" or userName sw "b") and active eq true"#,
            1,
        ),
        (r#"meta.lastModified gt "2000-01-01T00:00:00Z""#, 3),
        (r#"meta.lastModified lt "2000-01-01T00:00:00Z""#, 0),
        (r#"externalId eq "ext-alice""#, 0),
    ];
    for (filter, expected) in cases {
        let reply = scim.filter_users(filter).await;
        assert_eq!(reply.status, StatusCode::OK, "{filter}: {}", reply.body);
        assert_eq!(
            reply.body["totalResults"], *expected,
            "{filter}: {}",
            reply.body
        );
    }

    // Paging with startIndex and count.
    let page = scim.get("/Users?startIndex=2&count=1").await;
    assert_eq!(page.body["totalResults"], 3);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["itemsPerPage"], 1);
    let none = scim.get("/Users?count=0").await;
    assert_eq!(none.body["totalResults"], 3);
    assert_eq!(none.body["Resources"].as_array().map_or(0, Vec::len), 0);
}

#[tokio::test]
async fn grpc_callers_use_the_same_lifecycle() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let id = scim.create_user(user("grpc@example.com")).await;
    let mut users = stack.users(&acme.token);

    let found = users
        .list_users(ListUsersRequest {
            filter: Some(equals("userName", "GRPC@example.com")),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(found.total_size, Some(1));
    let etag = found.users[0].etag.clone();

    // A conditional patch with a stale etag is refused and changes nothing.
    let deactivate = |etag: String| PatchUserRequest {
        tenant: String::new(),
        id: id.clone(),
        operations: vec![PatchOperation {
            op: identity_proto::v1::patch_operation::Op::Replace as i32,
            path: Some(AttributePath {
                attribute: "active".into(),
                ..Default::default()
            }),
            value: Some(identity_proto::json_to_value(json!(false))),
        }],
        etag,
    };
    let stale = users
        .patch_user(deactivate("999".into()))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::FailedPrecondition);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.body["active"], true);

    let patched = users
        .patch_user(deactivate(etag))
        .await
        .expect("patch")
        .into_inner();
    assert_eq!(patched.active, Some(false));
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.body["active"],
        false
    );

    // Invalid filters over gRPC are INVALID_ARGUMENT.
    let bad = users
        .list_users(ListUsersRequest {
            filter: Some(equals("shoeSize", "44")),
            ..Default::default()
        })
        .await
        .expect_err("unknown attribute");
    assert_eq!(bad.code(), Code::InvalidArgument);
}

fn equals(attribute: &str, value: &str) -> Filter {
    Filter {
        expression: Some(filter::Expression::Comparison(Box::new(
            identity_proto::v1::Comparison {
                path: Some(Box::new(AttributePath {
                    attribute: attribute.into(),
                    ..Default::default()
                })),
                operator: comparison::Operator::Eq as i32,
                value: Some(identity_proto::json_to_value(json!(value))),
            },
        ))),
    }
}
