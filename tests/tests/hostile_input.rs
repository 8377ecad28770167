//! Hostile input at the public SCIM edge: every parser is bounded, so deep,
//! long or NUL-bearing requests get a SCIM 400 and change nothing, both
//! servers keep serving, and requests exactly at a limit still go through.
//! The limits are those of the adapter's `bounds` module.

use identity_lifecycle_tests::*;
use reqwest::StatusCode;
use serde_json::Value;

const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const BULK_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const CUSTOM: &str = "urn:example:params:scim:schemas:extension:hostile:1.0:User";
/// Filter nesting, comparisons and text accepted by the adapter.
const MAX_FILTER_DEPTH: usize = 32;
const MAX_FILTER_TERMS: usize = 64;
const MAX_FILTER_BYTES: usize = 8 * 1024;
/// Nesting of a whole JSON request body, the body itself being level 1.
const MAX_JSON_DEPTH: usize = 24;

/// How many users `slug` has, read from the database.
async fn user_count(stack: &Stack, slug: &str) -> String {
    stack
        .query_strings(&format!(
            "SELECT count(*) FROM users JOIN tenants USING (tenant_id) WHERE slug = '{slug}'"
        ))
        .await
        .concat()
}

/// A JSON value `levels` deep (objects and arrays alternating, an object
/// outermost), holding one string.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("leaf"), |inner, level| {
        if (levels - level) % 2 == 1 {
            json!({ "n": inner })
        } else {
            json!([inner])
        }
    })
}

/// A user whose body nests exactly `depth` levels, through its custom
/// extension (`depth` >= 3).
fn deep_user(user_name: &str, depth: usize) -> Value {
    let mut body = user(user_name);
    body["schemas"] = json!([USER_SCHEMA, CUSTOM]);
    body[CUSTOM] = json!({ "deep": nested(depth - 2) });
    body
}

/// Nesting depth of a JSON value, to keep the fixtures honest.
fn depth_of(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth_of).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

/// `userName pr and (userName pr or (… ))`: each level a new logical
/// operator, the costliest shape for the protobuf the service decodes.
fn alternating(levels: usize) -> String {
    let open: String = (0..levels)
        .map(|i| {
            if i % 2 == 0 {
                "userName pr and ("
            } else {
                "userName pr or ("
            }
        })
        .collect();
    format!("{open}userName pr{}", ")".repeat(levels))
}

#[tokio::test]
async fn deep_long_and_wide_filters_are_refused_with_any_token() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    scim.create_user(user("only@acme.example")).await;
    let count = user_count(&stack, "acme").await;

    // The request that used to overflow the adapter's stack, before any
    // token check: a few thousand '(' in ?filter=, raw in the URL.
    let deep = "(".repeat(3000);
    for token in ["x", acme.token.as_str()] {
        let client = stack.scim(token);
        for resource in ["/Users", "/Groups"] {
            let url = format!("{}?filter={deep}", client.url(resource));
            let reply = Scim::reply(stack.http.get(url).bearer_auth(token)).await;
            reply.assert_error(400, Some("invalidFilter"));
            stack.assert_serving().await;
        }
        // Any depth: 100,000 '(' in a .search body.
        let search = json!({"schemas": [SEARCH_SCHEMA], "filter": "(".repeat(100_000)});
        client
            .post("/Users/.search", search.clone())
            .await
            .assert_error(400, Some("invalidFilter"));
        client
            .post("/.search", search)
            .await
            .assert_error(400, Some("invalidFilter"));
        stack.assert_serving().await;
    }

    // One level past the limit, and nested `not`s.
    scim.filter_users(&alternating(MAX_FILTER_DEPTH + 1))
        .await
        .assert_error(400, Some("invalidFilter"));
    scim.filter_users(&format!(
        "{}userName pr",
        "not ".repeat(MAX_FILTER_DEPTH + 1)
    ))
    .await
    .assert_error(400, Some("invalidFilter"));
    stack.assert_serving().await;

    // Too many comparisons.
    let wide = vec!["userName pr"; MAX_FILTER_TERMS + 1].join(" or ");
    scim.filter_users(&wide)
        .await
        .assert_error(400, Some("invalidFilter"));
    stack.assert_serving().await;

    // Too long.
    let long = format!("userName eq \"{}\"", "x".repeat(MAX_FILTER_BYTES));
    scim.post(
        "/Users/.search",
        json!({"schemas": [SEARCH_SCHEMA], "filter": long}),
    )
    .await
    .assert_error(400, Some("invalidFilter"));
    stack.assert_serving().await;

    // NUL, escaped in the filter's string or raw in the URL.
    scim.filter_users("userName eq \"only\\u0000@acme.example\"")
        .await
        .assert_error(400, Some("invalidFilter"));
    scim.filter_users("userName eq only\u{0}")
        .await
        .assert_error(400, Some("invalidFilter"));
    stack.assert_serving().await;

    // Exactly at each limit, the real service answers.
    for filter in [
        alternating(MAX_FILTER_DEPTH),
        format!("{}userName pr", "not not ".repeat(MAX_FILTER_DEPTH / 2)),
        vec!["userName pr"; MAX_FILTER_TERMS].join(" and "),
    ] {
        let reply = scim.filter_users(&filter).await;
        assert_eq!(reply.status, StatusCode::OK, "{filter}: {}", reply.body);
        assert_eq!(reply.body["totalResults"], 1, "{filter}: {}", reply.body);
    }
    let reply = scim
        .post(
            "/Users/.search",
            json!({"schemas": [SEARCH_SCHEMA], "filter": alternating(MAX_FILTER_DEPTH)}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(user_count(&stack, "acme").await, count);
}

#[tokio::test]
async fn deep_patch_paths_and_long_parameters_are_refused() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let id = scim.create_user(user("patched@acme.example")).await;
    let path = format!("/Users/{id}");
    let before = scim.get(&path).await.body;

    // The PATCH path that used to overflow the stack, and others past a limit.
    for (target, scim_type) in [
        (format!("emails[{}", "(".repeat(3000)), "invalidPath"),
        (
            format!(
                "emails[{}value pr{}].value",
                "(".repeat(MAX_FILTER_DEPTH),
                ")".repeat(MAX_FILTER_DEPTH)
            ),
            "invalidPath",
        ),
        (
            format!("emails[value eq \"{}\"]", "x".repeat(2000)),
            "invalidPath",
        ),
        ("emails[value eq \"a\\u0000\"].type".into(), "invalidPath"),
    ] {
        scim.patch(
            &path,
            json!([{"op": "replace", "path": target, "value": "home"}]),
        )
        .await
        .assert_error(400, Some(scim_type));
        stack.assert_serving().await;
    }

    // Too many operations in one PATCH.
    let op = json!({"op": "replace", "path": "displayName", "value": "Many"});
    scim.patch(&path, Value::Array(vec![op; 1001]))
        .await
        .assert_error(400, Some("invalidValue"));
    stack.assert_serving().await;
    assert_eq!(scim.get(&path).await.body, before, "nothing changed");

    // A value filter as deep as allowed still patches.
    let at_limit = format!(
        "emails[{}value pr{}].type",
        "(".repeat(MAX_FILTER_DEPTH - 1),
        ")".repeat(MAX_FILTER_DEPTH - 1)
    );
    let reply = scim
        .patch(
            &path,
            json!([{"op": "replace", "path": at_limit, "value": "home"}]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["emails"][0]["type"], "home", "{}", reply.body);

    // Long or many attribute names, sortBy and cursor.
    let many = vec!["userName"; 101].join(",");
    let long_name = "a".repeat(300);
    for (query, scim_type) in [
        (format!("attributes={many}"), "invalidPath"),
        (format!("excludedAttributes={many}"), "invalidPath"),
        (format!("attributes={long_name}"), "invalidPath"),
        (format!("sortBy={long_name}"), "invalidPath"),
        (format!("cursor={}", "a".repeat(2000)), "invalidCursor"),
    ] {
        let reply = scim.get(&format!("/Users?{query}")).await;
        reply.assert_error(400, Some(scim_type));
        stack.assert_serving().await;
    }
    let reply = scim
        .get(&format!(
            "/Users?attributes={}",
            vec!["userName"; 100].join(",")
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn deep_json_bodies_are_refused_and_the_limit_goes_through() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);

    // Create: the ~40 levels that used to reach prost's limit, one past the
    // limit, then exactly at it.
    for depth in [40, MAX_JSON_DEPTH + 1] {
        let body = deep_user("deep@acme.example", depth);
        assert_eq!(depth_of(&body), depth);
        scim.post("/Users", body)
            .await
            .assert_error(400, Some("invalidSyntax"));
        stack.assert_serving().await;
    }
    assert_eq!(user_count(&stack, "acme").await, "0");
    let at_limit = deep_user("deep@acme.example", MAX_JSON_DEPTH);
    assert_eq!(depth_of(&at_limit), MAX_JSON_DEPTH);
    let created = scim.post("/Users", at_limit.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body[CUSTOM], at_limit[CUSTOM]);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("/Users/{id}");

    // PUT.
    scim.put(&path, deep_user("deep@acme.example", MAX_JSON_DEPTH + 1))
        .await
        .assert_error(400, Some("invalidSyntax"));
    stack.assert_serving().await;
    let reply = scim
        .put(&path, deep_user("deep@acme.example", MAX_JSON_DEPTH))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    // PATCH: the envelope takes 3 levels ({…}, Operations, the operation),
    // the value and the extension 2 more.
    let patch_value =
        |levels: usize| json!([{"op": "replace", "value": {CUSTOM: {"deep": nested(levels)}}}]);
    scim.patch(&path, patch_value(MAX_JSON_DEPTH - 4))
        .await
        .assert_error(400, Some("invalidSyntax"));
    stack.assert_serving().await;
    let before = scim.get(&path).await.body;
    let reply = scim.patch(&path, patch_value(MAX_JSON_DEPTH - 5)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_ne!(reply.body[CUSTOM], before[CUSTOM], "the PATCH applied");

    // Bulk: POST and PATCH inside the BulkRequest envelope.
    let bulk = |depth: usize| {
        let data = deep_user("bulk@acme.example", depth - 3);
        let patch = json!({"schemas": [PATCH_SCHEMA], "Operations": [
            {"op": "replace", "value": {CUSTOM: {"deep": nested(depth - 8)}}}]});
        json!({"schemas": [BULK_SCHEMA], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": data},
            {"method": "PATCH", "path": path, "data": patch},
        ]})
    };
    let over = bulk(MAX_JSON_DEPTH + 1);
    assert_eq!(depth_of(&over), MAX_JSON_DEPTH + 1);
    scim.post("/Bulk", over)
        .await
        .assert_error(400, Some("invalidSyntax"));
    stack.assert_serving().await;
    assert_eq!(user_count(&stack, "acme").await, "1");
    let at_limit = bulk(MAX_JSON_DEPTH);
    assert_eq!(depth_of(&at_limit), MAX_JSON_DEPTH);
    let reply = scim.post("/Bulk", at_limit).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let statuses: Vec<&str> = reply.body["Operations"]
        .as_array()
        .map(|ops| ops.iter().filter_map(|o| o["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(statuses, ["201", "200"], "{}", reply.body);

    // /Bulk's own limit on operations.
    let op = json!({"method": "DELETE", "path": "/Users/unknown"});
    scim.post(
        "/Bulk",
        json!({"schemas": [BULK_SCHEMA], "Operations": vec![op; 1001]}),
    )
    .await
    .assert_error(413, None);
    stack.assert_serving().await;
    assert_eq!(user_count(&stack, "acme").await, "2");
}

#[tokio::test]
async fn nul_characters_are_refused_naming_the_attribute() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let id = scim.create_user(user("clean@acme.example")).await;
    let path = format!("/Users/{id}");
    let before = scim.get(&path).await.body;

    let mut in_key = user("key@acme.example");
    in_key["schemas"] = json!([USER_SCHEMA, CUSTOM]);
    in_key[CUSTOM] = json!({"bad\u{0}key": 1});
    let mut in_email = user("email@acme.example");
    in_email["emails"][0]["value"] = json!("a\u{0}@acme.example");
    for (body, named) in [
        (user("a\u{0}b@acme.example"), "userName"),
        (in_key, "bad\\u0000key"),
        (in_email, "emails[0].value"),
    ] {
        let reply = scim.post("/Users", body).await;
        reply.assert_error(400, Some("invalidValue"));
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(named) && detail.contains("NUL"), "{detail}");
        stack.assert_serving().await;
    }
    scim.patch(
        &path,
        json!([{"op": "replace", "path": "displayName", "value": "x\u{0}"}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    scim.put(&path, user("clean\u{0}@acme.example"))
        .await
        .assert_error(400, Some("invalidValue"));
    stack.assert_serving().await;
    for target in ["/Users/a%00b", "/Groups/a%00b"] {
        scim.get(target).await.assert_error(404, None);
    }
    for target in [
        "/Users?sortBy=name%00x",
        "/Users?sortBy=urn:example%00x:attr",
        "/Users?attributes=urn:example%00x:attr",
    ] {
        scim.get(target)
            .await
            .assert_error(400, Some("invalidPath"));
    }
    stack.assert_serving().await;
    assert_eq!(user_count(&stack, "acme").await, "1");
    assert_eq!(scim.get(&path).await.body, before, "nothing changed");
}
