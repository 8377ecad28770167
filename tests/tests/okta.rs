//! Okta's provisioning traffic and its published "SCIM 2.0 SPEC Test" steps,
//! replayed through the adapter against the real service and database.

use identity_lifecycle_tests::*;
use reqwest::{Method, StatusCode};

fn okta_user(user_name: &str) -> serde_json::Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "Ada Lovelace",
        "locale": "en-US",
        "externalId": "00u1abcdEFGH",
        "groups": [],
        "password": "Sup3rSecret!",
        "active": true
    })
}

#[tokio::test]
async fn okta_test_connector_probes_users_and_groups() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);

    let users = scim.get("/Users?count=1&startIndex=1").await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);
    assert_eq!(
        users.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    assert_eq!(users.body["totalResults"], 0);
    assert!(
        users.body["startIndex"].is_u64(),
        "startIndex must be a number"
    );
    assert!(
        users.body["itemsPerPage"].is_u64(),
        "itemsPerPage must be a number"
    );
    assert!(
        users
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/scim+json"))
    );

    let groups = scim.get("/Groups?count=1&startIndex=1").await;
    assert_eq!(groups.status, StatusCode::OK, "{}", groups.body);
    assert_eq!(groups.body["totalResults"], 0);
    assert!(
        groups.body["Resources"]
            .as_array()
            .is_some_and(|r| r.is_empty())
    );
}

#[tokio::test]
async fn okta_full_user_lifecycle() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);

    // Lookup before create: nothing yet.
    let lookup = scim.filter_users(r#"userName eq "ada@example.com""#).await;
    assert_eq!(lookup.status, StatusCode::OK);
    assert_eq!(lookup.body["totalResults"], 0);

    // Create with application/json, as Okta sometimes sends.
    let created = scim
        .send_raw(
            Method::POST,
            "/Users",
            "application/json",
            okta_user("ada@example.com").to_string(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    let location = created.header("location").expect("Location header");
    assert!(
        location.ends_with(&format!("/scim/v2/Users/{id}")),
        "{location}"
    );
    assert_eq!(created.body["meta"]["location"], location);
    assert_eq!(created.body["meta"]["resourceType"], "User");
    let etag = created.header("etag").expect("ETag header").to_string();
    assert!(etag.starts_with("W/\""), "{etag}");
    assert_eq!(created.body["meta"]["version"], etag);
    assert!(
        created.body.get("password").is_none(),
        "password must never be returned"
    );
    assert_eq!(
        created.body["locale"], "en-US",
        "unknown attributes are kept"
    );
    assert_eq!(created.body["externalId"], "00u1abcdEFGH");
    assert_eq!(created.body["active"], true);

    // Re-create: 409 uniqueness, also with another case.
    scim.post("/Users", okta_user("ada@example.com"))
        .await
        .assert_error(409, Some("uniqueness"));
    scim.post("/Users", okta_user("ADA@Example.com"))
        .await
        .assert_error(409, Some("uniqueness"));

    // Upper-case userName filter finds the user; the Okta lookup shape pages with count=100.
    let found = scim
        .get("/Users?filter=userName%20eq%20%22ADA%40EXAMPLE.COM%22&startIndex=1&count=100")
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());

    // Get by id, with the list page of one.
    let fetched = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["userName"], "ada@example.com");
    let page = scim.get("/Users?count=1&startIndex=1").await;
    assert_eq!(page.body["totalResults"], 1);
    assert_eq!(page.body["itemsPerPage"], 1);
    assert_eq!(page.body["Resources"][0]["id"], id.as_str());

    // PUT a profile change (Okta sends the whole resource, with a stale formatted name).
    let mut profile = okta_user("ada@example.com");
    profile["id"] = json!(id);
    profile["name"] =
        json!({"givenName": "Augusta", "familyName": "King", "formatted": "Ada Lovelace"});
    let replaced = scim.put(&format!("/Users/{id}"), profile).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["name"]["givenName"], "Augusta");
    assert_ne!(
        replaced.header("etag"),
        Some(etag.as_str()),
        "a write changes the ETag"
    );

    // Internal services see the full name built from given + family, not the stale formatted.
    let internal = stack
        .users(&acme.token)
        .get_user(identity_proto::v1::GetUserRequest {
            tenant: String::new(),
            id: id.clone(),
            show_deleted: false,
        })
        .await
        .expect("gRPC GetUser")
        .into_inner();
    assert_eq!(internal.full_name, "Augusta King");

    // Deactivate the Okta way: pathless replace.
    let deactivated = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
    assert_eq!(deactivated.body["active"], false);
    let still_there = scim.filter_users(r#"userName eq "ada@example.com""#).await;
    assert_eq!(
        still_there.body["totalResults"], 1,
        "deactivated users are still found"
    );
    assert_eq!(still_there.body["Resources"][0]["active"], false);
    let inactive = scim.filter_users("active eq false").await;
    assert_eq!(inactive.body["totalResults"], 1);

    // Reactivate.
    let reactivated = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": true}}]),
        )
        .await;
    assert_eq!(reactivated.body["active"], true);

    // Integration-wizard apps deactivate with PUT.
    let mut put_inactive = okta_user("ada@example.com");
    put_inactive["active"] = json!(false);
    let put = scim.put(&format!("/Users/{id}"), put_inactive).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.body["active"], false);
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.body["active"],
        false
    );
}

#[tokio::test]
async fn okta_spec_test_negative_cases() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);

    // Unknown id: 404 with a SCIM error body that has detail and status "404".
    scim.get("/Users/00919288221112222")
        .await
        .assert_error(404, None);
    scim.get(&format!("/Users/{}", uuid::Uuid::new_v4()))
        .await
        .assert_error(404, None);

    // Unknown userName: 200 with zero results.
    let none = scim
        .filter_users(r#"userName eq "nobody-here@example.com""#)
        .await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.body["totalResults"], 0);

    // Authorization that is not a bearer token, a wrong token and no header at all.
    for authorization in [
        "non-token",
        "Bearer idl_not-a-real-token",
        "Basic dXNlcjpwYXNz",
    ] {
        let reply = Scim::reply(
            stack
                .http
                .get(scim.url("/Users"))
                .header("authorization", authorization),
        )
        .await;
        reply.assert_error(401, None);
    }
    Scim::reply(stack.http.get(scim.url("/Users")))
        .await
        .assert_error(401, None);
    Scim::reply(
        stack
            .http
            .get(scim.url("/Groups"))
            .header("authorization", "non-token"),
    )
    .await
    .assert_error(401, None);
}
