//! Microsoft Entra ID's request shapes: both PATCH dialects, PascalCase
//! attribute names, string booleans, manager forms and Test Connection.

use identity_lifecycle_tests::*;
use reqwest::StatusCode;

fn entra_user(user_name: &str, external_id: &str) -> serde_json::Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "externalId": external_id,
        "UserName": user_name,
        "Active": true,
        "displayName": "Jo Young",
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Jo Young", "familyName": "Young", "givenName": "Jo"},
        "emails": [{"Primary": true, "type": "work", "value": user_name}],
        "roles": [],
        "title": null,
        ENTERPRISE_SCHEMA: {"employeeNumber": "E-1", "department": "Finance"}
    })
}

#[tokio::test]
async fn entra_test_connection_and_lenient_create() {
    let stack = Stack::start().await;
    let contoso = stack.tenant("contoso").await;
    let scim = stack.scim(&contoso.token);

    // Test Connection: a random GUID on the matching attribute, unquoted as Entra may send it.
    let probe = scim
        .filter_users(&format!("externalId eq {}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(probe.status, StatusCode::OK, "{}", probe.body);
    assert_eq!(probe.body["totalResults"], 0);

    let created = scim
        .post("/Users", entra_user("jyoung@contoso.com", "jyoung"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body["userName"], "jyoung@contoso.com",
        "PascalCase names are accepted"
    );
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["emails"][0]["primary"], true);
    assert!(created.body.get("title").is_none(), "null means absent");
    assert_eq!(created.body[ENTERPRISE_SCHEMA]["employeeNumber"], "E-1");
    assert!(
        created.body["schemas"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(ENTERPRISE_SCHEMA))),
        "{}",
        created.body
    );

    // Unquoted externalId lookup; externalId is case-exact.
    assert_eq!(
        scim.filter_users("externalId eq jyoung").await.body["totalResults"],
        1
    );
    assert_eq!(
        scim.filter_users(r#"externalId eq "JYOUNG""#).await.body["totalResults"],
        0
    );
    // and-combined lookup as Entra sends it.
    let both = scim
        .filter_users(r#"userName eq "JYoung@contoso.com" and externalId eq "jyoung""#)
        .await;
    assert_eq!(both.body["totalResults"], 1);
}

#[tokio::test]
async fn entra_default_dialect_patch() {
    let stack = Stack::start().await;
    let contoso = stack.tenant("contoso").await;
    let scim = stack.scim(&contoso.token);
    let id = scim
        .create_user(entra_user("jyoung@contoso.com", "jyoung"))
        .await;
    let path = format!("/Users/{id}");

    // Capitalised ops and booleans as strings.
    let off = scim
        .patch(
            &path,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(off.body["active"], false);
    let on = scim
        .patch(
            &path,
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        )
        .await;
    assert_eq!(on.body["active"], true);

    // Several operations in one request, including a value-filtered path that
    // creates the element and enterprise URN paths.
    let reply = scim
        .patch(
            &path,
            json!([
                {"op": "Replace", "path": "displayName", "value": "Jo M. Young"},
                {"op": "Add", "path": "emails[type eq \"home\"].value", "value": "jo@home.example"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "jo.young@contoso.com"},
                {"op": "Add", "path": format!("{ENTERPRISE_SCHEMA}:department"), "value": "Treasury"},
                {"op": "Replace", "path": "name.givenName", "value": "Joanna"}
            ]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let emails = reply.body["emails"].as_array().expect("emails");
    assert_eq!(emails.len(), 2, "{}", reply.body);
    assert!(
        emails
            .iter()
            .any(|e| e["type"] == "home" && e["value"] == "jo@home.example")
    );
    assert!(
        emails
            .iter()
            .any(|e| e["type"] == "work" && e["value"] == "jo.young@contoso.com")
    );
    assert_eq!(reply.body[ENTERPRISE_SCHEMA]["department"], "Treasury");
    assert_eq!(reply.body["name"]["givenName"], "Joanna");
    assert_eq!(reply.body["displayName"], "Jo M. Young");
}

#[tokio::test]
async fn entra_new_dialect_pathless_replace_with_dotted_and_urn_keys() {
    let stack = Stack::start().await;
    let contoso = stack.tenant("contoso").await;
    let scim = stack.scim(&contoso.token);
    let id = scim
        .create_user(entra_user("jyoung@contoso.com", "jyoung"))
        .await;

    let reply = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{
                "op": "replace",
                "value": {
                    "displayName": "Joanna Young",
                    "name.givenName": "Joanna",
                    "name.familyName": "Young-Smith",
                    "active": false,
                    format!("{ENTERPRISE_SCHEMA}:employeeNumber"): "E-42",
                    "urn:ietf:params:scim:schemas:core:2.0:User:externalId": "jyoung-2"
                }
            }]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["displayName"], "Joanna Young");
    assert_eq!(reply.body["name"]["givenName"], "Joanna");
    assert_eq!(reply.body["name"]["familyName"], "Young-Smith");
    assert_eq!(
        reply.body["name"]["formatted"], "Jo Young",
        "untouched sub-attributes stay"
    );
    assert_eq!(reply.body["active"], false);
    assert_eq!(reply.body[ENTERPRISE_SCHEMA]["employeeNumber"], "E-42");
    assert_eq!(reply.body[ENTERPRISE_SCHEMA]["department"], "Finance");
    assert_eq!(reply.body["externalId"], "jyoung-2");

    // Deactivated users are still returned by GET and by filter.
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        scim.filter_users("externalId eq jyoung-2").await.body["totalResults"],
        1
    );
}

#[tokio::test]
async fn entra_manager_shapes() {
    let stack = Stack::start().await;
    let contoso = stack.tenant("contoso").await;
    let scim = stack.scim(&contoso.token);
    let boss = scim
        .create_user(entra_user("boss@contoso.com", "boss"))
        .await;
    let other_boss = scim
        .create_user(entra_user("boss2@contoso.com", "boss2"))
        .await;
    let id = scim
        .create_user(entra_user("jyoung@contoso.com", "jyoung"))
        .await;
    let path = format!("/Users/{id}");
    let manager_path = format!("{ENTERPRISE_SCHEMA}:manager");

    let shapes = [
        json!([{"op": "Add", "path": "manager", "value": [{"$ref": null, "value": boss}]}]),
        json!([{"op": "replace", "path": manager_path, "value": other_boss}]),
        json!([{"op": "Replace", "path": manager_path, "value": {"value": boss}}]),
    ];
    let expected = [&boss, &other_boss, &boss];
    for (operations, manager) in shapes.into_iter().zip(expected) {
        let reply = scim.patch(&path, operations.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{operations}: {}", reply.body);
        assert_eq!(
            reply.body[ENTERPRISE_SCHEMA]["manager"]["value"],
            manager.as_str(),
            "{operations}: {}",
            reply.body
        );
    }

    // "" removes the manager, and so does null.
    let cleared = scim
        .patch(
            &path,
            json!([{"op": "Replace", "path": manager_path, "value": ""}]),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert!(
        cleared.body[ENTERPRISE_SCHEMA].get("manager").is_none(),
        "{}",
        cleared.body
    );
    scim.patch(
        &path,
        json!([{"op": "Add", "path": "manager", "value": boss}]),
    )
    .await;
    let nulled = scim
        .patch(
            &path,
            json!([{"op": "Replace", "path": "manager", "value": null}]),
        )
        .await;
    assert_eq!(nulled.status, StatusCode::OK, "{}", nulled.body);
    assert!(
        nulled.body[ENTERPRISE_SCHEMA].get("manager").is_none(),
        "{}",
        nulled.body
    );

    // A manager that is not a user of this tenant is refused and changes nothing.
    let before = scim.get(&path).await;
    scim.patch(
        &path,
        json!([{"op": "Replace", "path": "manager", "value": uuid::Uuid::new_v4().to_string()}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_eq!(scim.get(&path).await.header("etag"), before.header("etag"));
}

#[tokio::test]
async fn entra_member_style_remove_and_remove_by_filter() {
    let stack = Stack::start().await;
    let contoso = stack.tenant("contoso").await;
    let scim = stack.scim(&contoso.token);
    let mut body = entra_user("jyoung@contoso.com", "jyoung");
    body["emails"] = json!([
        {"value": "jyoung@contoso.com", "type": "work", "primary": true},
        {"value": "jo@home.example", "type": "home"}
    ]);
    body["phoneNumbers"] = json!([{"value": "+1 555 0100", "type": "work"}]);
    let id = scim.create_user(body).await;

    let reply = scim
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Remove", "path": "emails[type eq \"home\"]"},
                {"op": "remove", "path": "phoneNumbers"}
            ]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body["emails"].as_array().map(Vec::len),
        Some(1),
        "{}",
        reply.body
    );
    assert!(reply.body.get("phoneNumbers").is_none(), "{}", reply.body);
}
