//! PATCH completeness (RFC 7644 §3.5.2) through the adapter: merging adds,
//! value-filtered replace and remove, primary exclusivity, noTarget and
//! mutability, and the documented Entra deviation.

use identity_lifecycle_tests::*;
use reqwest::StatusCode;

#[tokio::test]
async fn multi_valued_attributes_follow_rfc_7644() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let mut body = user("pat@example.com");
    body["phoneNumbers"] = json!([{"value": "+1 555 0100", "type": "work", "primary": true}]);
    body["addresses"] = json!([{"type": "home", "locality": "Leeds"}]);
    let id = scim.create_user(body).await;
    let path = format!("/Users/{id}");

    // add merges into a multi-valued attribute, without exact duplicates.
    let merged = scim
        .patch(
            &path,
            json!([{"op": "add", "path": "phoneNumbers", "value": [
                {"value": "+1 555 0100", "type": "work", "primary": true},
                {"value": "+1 555 0199", "type": "mobile"}
            ]}]),
        )
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(
        merged.body["phoneNumbers"].as_array().map(Vec::len),
        Some(2),
        "{}",
        merged.body
    );

    // primary: true on one value clears it on the others.
    let primary = scim
        .patch(
            &path,
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].primary", "value": true}]),
        )
        .await;
    assert_eq!(primary.status, StatusCode::OK, "{}", primary.body);
    let phones = primary.body["phoneNumbers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let primaries: Vec<_> = phones.iter().filter(|p| p["primary"] == true).collect();
    assert_eq!(primaries.len(), 1, "{}", primary.body);
    assert_eq!(primaries[0]["type"], "mobile");

    // replace and remove through a value filter on a sub-attribute.
    let moved = scim
        .patch(
            &path,
            json!([
                {"op": "replace", "path": "addresses[type eq \"home\"].locality", "value": "York"},
                {"op": "remove", "path": "phoneNumbers[value eq \"+1 555 0100\"]"}
            ]),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["addresses"][0]["locality"], "York");
    assert_eq!(
        moved.body["phoneNumbers"].as_array().map(Vec::len),
        Some(1),
        "{}",
        moved.body
    );

    // A filter that matches nothing: noTarget on remove and on replace of a non-type filter,
    // and nothing changes.
    let before = scim.get(&path).await;
    scim.patch(
        &path,
        json!([{"op": "remove", "path": "phoneNumbers[type eq \"fax\"]"}]),
    )
    .await
    .assert_error(400, Some("noTarget"));
    scim.patch(
        &path,
        json!([{"op": "replace", "path": "phoneNumbers[value eq \"+0 000\"].type", "value": "fax"}]),
    )
    .await
    .assert_error(400, Some("noTarget"));
    // Read-only attributes: mutability.
    scim.patch(
        &path,
        json!([{"op": "add", "path": "groups", "value": [{"value": id}]}]),
    )
    .await
    .assert_error(400, Some("mutability"));
    assert_eq!(scim.get(&path).await.header("etag"), before.header("etag"));

    // The Entra deviation: an equality filter on `type` creates the element.
    let created = scim
        .patch(
            &path,
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].locality", "value": "Hull"}]),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let addresses = created.body["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        addresses
            .iter()
            .any(|a| a["type"] == "work" && a["locality"] == "Hull"),
        "{}",
        created.body
    );
}
