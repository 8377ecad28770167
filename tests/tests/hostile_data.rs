//! Hostile data over the public SCIM edge: NUL characters, over-long lists
//! and pages too large for one gRPC message get clear answers, never a 500,
//! and both servers keep serving every tenant.

use std::collections::HashSet;

use identity_lifecycle_tests::*;

#[tokio::test]
async fn nul_characters_are_invalid_values_naming_the_attribute() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);

    let reply = scim.post("/Users", json!({"userName": "a\u{0}b"})).await;
    reply.assert_error(400, Some("invalidValue"));
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("userName")),
        "{}",
        reply.body
    );
    stack.assert_serving().await;

    let id = scim.create_user(user("keep@example.com")).await;
    let path = format!("/Users/{id}");
    let before = scim.get(&path).await;
    scim.patch(
        &path,
        json!([{"op": "add", "path": "urn:example:ext:tags", "value": ["ok", "a\u{0}"]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    scim.put(
        &path,
        json!({"userName": "keep@example.com", "displayName": "\u{0}"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_eq!(scim.get(&path).await.body, before.body, "nothing changed");

    scim.post("/Groups", json!({"displayName": "x\u{0}"}))
        .await
        .assert_error(400, Some("invalidValue"));
    scim.filter_users(r#"userName eq "keep\u0000""#)
        .await
        .assert_error(400, Some("invalidFilter"));
    stack.assert_serving().await;
}

#[tokio::test]
async fn multi_valued_attributes_hold_at_most_a_thousand_values() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let emails: Vec<_> = (0..1001)
        .map(|i| json!({"value": format!("a{i}@example.com")}))
        .collect();
    let reply = scim
        .post(
            "/Users",
            json!({"userName": "ada@example.com", "emails": emails}),
        )
        .await;
    reply.assert_error(400, Some("invalidValue"));
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("at most 1000")),
        "{}",
        reply.body
    );
    stack.assert_serving().await;
}

#[tokio::test]
async fn pages_too_large_for_one_message_are_cut_not_failed() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    // 30 users of ~200 KiB: 6 MiB, over the 4 MiB one gRPC message holds.
    let blob = "z".repeat(200 * 1024);
    let mut all = HashSet::new();
    for i in 0..30 {
        let mut body = user(&format!("u{i:02}@example.com"));
        body["urn:example:ext"] = json!({"blob": blob});
        all.insert(scim.create_user(body).await);
    }
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let reply = scim
            .get(&format!("/Users?count=100&startIndex={start}"))
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.body["detail"]);
        assert_eq!(reply.body["totalResults"], 30);
        let page = reply.body["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(reply.body["itemsPerPage"], page.len());
        if page.is_empty() {
            break;
        }
        assert!(page.len() < 30, "a page of {} users", page.len());
        seen.extend(
            page.iter()
                .filter_map(|u| u["id"].as_str().map(str::to_owned)),
        );
        start += page.len();
    }
    assert_eq!(seen.len(), 30, "every user exactly once");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), all);
    stack.assert_serving().await;
}
