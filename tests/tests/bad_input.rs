//! Every client mistake gets a SCIM error with the right status and scimType,
//! and changes nothing. Discovery endpoints describe what is implemented.

use identity_lifecycle_tests::*;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn malformed_requests_are_clear_errors_and_change_nothing() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let id = scim.create_user(user("keep@example.com")).await;
    let path = format!("/Users/{id}");
    let before = scim.get(&path).await;

    // Bodies that are not JSON, or not a user.
    scim.send_raw(
        Method::POST,
        "/Users",
        "application/scim+json",
        "{not json".into(),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    scim.send_raw(
        Method::PATCH,
        &path,
        "application/scim+json",
        "[1, 2".into(),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    scim.post(
        "/Users",
        json!({"schemas": [USER_SCHEMA], "displayName": "No Name"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    scim.post("/Users", json!({"userName": ""}))
        .await
        .assert_error(400, Some("invalidValue"));
    scim.post(
        "/Users",
        json!({"userName": "typed@example.com", "active": "maybe"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    scim.put(&path, json!({"displayName": "no userName"}))
        .await
        .assert_error(400, Some("invalidValue"));

    // Filters.
    for filter in [
        r#"userName eq"#,
        r#"userName xx "a""#,
        r#"(userName eq "a""#,
        r#"userName eq "unterminated"#,
        r#"and userName eq "a""#,
        r#"shoeSize eq "44""#,
    ] {
        scim.filter_users(filter)
            .await
            .assert_error(400, Some("invalidFilter"));
    }

    // PATCH mistakes, each in a request that would otherwise change the user.
    let bad_patches = [
        (
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "name..givenName", "value": "x"}]),
            "invalidPath",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "id", "value": "another-id"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "meta.created", "value": "2000-01-01T00:00:00Z"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": ""}]),
            "invalidValue",
        ),
        (
            json!([{"op": "launch", "path": "active", "value": false}]),
            "invalidSyntax",
        ),
    ];
    for (operations, scim_type) in bad_patches {
        let mut with_change =
            vec![json!({"op": "replace", "path": "displayName", "value": "Changed"})];
        with_change.extend(operations.as_array().cloned().unwrap_or_default());
        scim.patch(&path, json!(with_change))
            .await
            .assert_error(400, Some(scim_type));
    }
    scim.send(
        Method::PATCH,
        &path,
        Some(json!({"schemas": [PATCH_SCHEMA]})),
    )
    .await
    .assert_error(400, None);

    // A PUT that would take another user's name is a conflict.
    scim.create_user(user("taken@example.com")).await;
    let mut clash = user("TAKEN@example.com");
    clash["id"] = json!(id);
    scim.put(&path, clash)
        .await
        .assert_error(409, Some("uniqueness"));

    // Nothing above changed the user.
    let after = scim.get(&path).await;
    assert_eq!(after.body, before.body);
    assert_eq!(after.header("etag"), before.header("etag"));
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let stack = Stack::start_with_body_limit(4 * 1024).await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let mut body = user("big@example.com");
    body["nickName"] = json!("x".repeat(8 * 1024));
    scim.post("/Users", body).await.assert_error(413, None);
    assert_eq!(scim.get("/Users").await.body["totalResults"], 0);
}

#[tokio::test]
async fn discovery_describes_what_is_implemented() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);

    // ServiceProviderConfig needs no authentication.
    let config = Scim::reply(stack.http.get(scim.url("/ServiceProviderConfig"))).await;
    assert_eq!(config.status, StatusCode::OK, "{}", config.body);
    let body = &config.body;
    assert_eq!(body["patch"]["supported"], true);
    assert_eq!(body["filter"]["supported"], true);
    assert!(body["filter"]["maxResults"].is_u64());
    for feature in ["bulk", "changePassword", "sort", "etag"] {
        assert!(
            body[feature]["supported"].is_boolean(),
            "{feature} missing: {body}"
        );
    }
    assert!(body["bulk"]["maxOperations"].is_u64(), "{body}");
    assert!(body["bulk"]["maxPayloadSize"].is_u64(), "{body}");
    assert_eq!(body["changePassword"]["supported"], false);
    assert!(
        body["authenticationSchemes"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    let types = scim.get("/ResourceTypes").await;
    assert_eq!(types.status, StatusCode::OK, "{}", types.body);
    let text = types.body.to_string();
    assert!(
        text.contains("/Users") && text.contains(ENTERPRISE_SCHEMA),
        "{text}"
    );

    let schemas = scim.get("/Schemas").await;
    assert_eq!(schemas.status, StatusCode::OK, "{}", schemas.body);
    let text = schemas.body.to_string();
    assert!(
        text.contains(USER_SCHEMA) && text.contains(ENTERPRISE_SCHEMA),
        "{text}"
    );
    assert!(text.contains("userName"), "{text}");

    // Other methods on discovery endpoints: 405 with a SCIM error.
    for endpoint in ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"] {
        scim.send(Method::POST, endpoint, Some(json!({})))
            .await
            .assert_error(405, None);
    }
}
