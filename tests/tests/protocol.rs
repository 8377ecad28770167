//! The rest of SCIM 2.0 over real HTTP: the full filter grammar, projection
//! honouring `returned`, sorting, cursor pagination (RFC 9865), ETag
//! preconditions, the three `.search` endpoints, `/Bulk`, and request
//! validation against the published schemas.

use identity_lifecycle_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const BULK_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// A request with extra headers, e.g. `If-Match`.
async fn send_with(
    stack: &Stack,
    token: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut request = stack
        .http
        .request(method, stack.scim(token).url(path))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    Scim::reply(request).await
}

/// GET with query parameters, URL-encoded.
async fn get_query(stack: &Stack, token: &str, path: &str, query: &[(&str, &str)]) -> Reply {
    let request = stack
        .http
        .get(stack.scim(token).url(path))
        .query(query)
        .bearer_auth(token);
    Scim::reply(request).await
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .map(|resources| {
            resources
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn user_names(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .map(|resources| {
            resources
                .iter()
                .filter_map(|r| r["userName"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn keys(resource: &Value) -> Vec<String> {
    let mut keys: Vec<String> = resource
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// Three users with distinct names, titles, departments and emails.
async fn people(scim: &Scim<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for (name, given, title, department, active) in [
        ("carol@example.com", "Carol", "Engineer", "R&D", true),
        ("alice@example.com", "Alice", "Manager", "Sales", true),
        ("bob@example.org", "Bob", "Engineer", "R&D", false),
    ] {
        let mut body = user(name);
        body["name"]["givenName"] = json!(given);
        body["title"] = json!(title);
        body["active"] = json!(active);
        body["schemas"] = json!([USER_SCHEMA, ENTERPRISE_SCHEMA]);
        body[ENTERPRISE_SCHEMA] =
            json!({"department": department, "employeeNumber": given.len().to_string()});
        body["emails"] = json!([
            {"value": name, "type": "work", "primary": true},
            {"value": format!("home-{name}"), "type": "home"}
        ]);
        ids.push(scim.create_user(body).await);
    }
    ids
}

#[tokio::test]
async fn filters_use_the_whole_grammar() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    people(&scim).await;

    let names = |reply: &Reply| {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let mut names = user_names(&reply.body);
        names.sort();
        names
    };
    let cases: [(&str, &[&str]); 10] = [
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            &["alice@example.com", "carol@example.com"],
        ),
        (
            r#"userName sw "a" or userName sw "b" and active eq false"#,
            &["alice@example.com", "bob@example.org"],
        ),
        (
            r#"(userName sw "a" or userName sw "b") and active eq true"#,
            &["alice@example.com"],
        ),
        (
            r#"not (userName ew ".org") and NAME.GIVENNAME ne "Carol""#,
            &["alice@example.com"],
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#,
            &["bob@example.org", "carol@example.com"],
        ),
        (r#"USERNAME EQ "ALICE@EXAMPLE.COM""#, &["alice@example.com"]),
        (
            r#"meta.created gt "2000-01-01T00:00:00Z" and active eq "False""#,
            &["bob@example.org"],
        ),
        (
            r#"emails.primary eq true and userName co "carol""#,
            &["carol@example.com"],
        ),
        (r#"externalId pr"#, &[]),
        (r#"meta.lastModified lt "2000-01-01T00:00:00Z""#, &[]),
    ];
    for (filter, expected) in cases {
        let reply = scim.filter_users(filter).await;
        assert_eq!(names(&reply), expected, "{filter}");
    }

    // Syntax errors are answered by the adapter, with the position.
    let reply = scim
        .filter_users(r#"userName eq "a" and (active eq true"#)
        .await;
    reply.assert_error(400, Some("invalidFilter"));
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("position 36")),
        "{}",
        reply.body
    );
    scim.filter_users(r#"emails[type eq "work""#)
        .await
        .assert_error(400, Some("invalidFilter"));
}

#[tokio::test]
async fn projection_honours_returned() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let mut body = user("proj@example.com");
    body["password"] = json!("hunter2");
    body["nickName"] = json!("P");

    // POST with attributes: only what was asked plus what is always returned.
    let created = get_query_post(
        &stack,
        &acme.token,
        "/Users",
        &[("attributes", "userName")],
        body,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(keys(&created.body), ["id", "meta", "schemas", "userName"]);
    assert_eq!(created.body["meta"], json!({"resourceType": "User"}));
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/Users/{id}");

    // excludedAttributes cannot remove what is always returned; password is never returned.
    let fetched = get_query(
        &stack,
        &acme.token,
        &path,
        &[("excludedAttributes", "id,schemas,meta,name,emails,password")],
    )
    .await;
    assert_eq!(fetched.body["id"], json!(id));
    assert!(fetched.body["schemas"].is_array());
    assert_eq!(fetched.body["meta"], json!({"resourceType": "User"}));
    assert!(fetched.body.get("name").is_none());
    assert!(fetched.body.get("password").is_none());
    assert_eq!(fetched.body["nickName"], "P");
    let all = scim.get(&path).await;
    assert!(all.body.get("password").is_none(), "{}", all.body);

    // PUT and PATCH responses are projected too.
    let mut replacement = all.body.clone();
    replacement["displayName"] = json!("Projected");
    let replaced = send_with(
        &stack,
        &acme.token,
        Method::PUT,
        &format!("{path}?attributes=displayName,name.givenName"),
        &[],
        Some(replacement),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(
        keys(&replaced.body),
        ["displayName", "id", "meta", "name", "schemas"]
    );
    assert_eq!(replaced.body["name"], json!({"givenName": "Given"}));
    let patched = send_with(
        &stack,
        &acme.token,
        Method::PATCH,
        &format!("{path}?excludedAttributes=emails,name"),
        &[],
        Some(json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["title"], "Boss");
    assert!(patched.body.get("emails").is_none());

    // Lists.
    let listed = get_query(
        &stack,
        &acme.token,
        "/Users",
        &[(
            "attributes",
            "urn:ietf:params:scim:schemas:core:2.0:User:title",
        )],
    )
    .await;
    assert_eq!(
        keys(&listed.body["Resources"][0]),
        ["id", "meta", "schemas", "title"]
    );
}

/// POST with query parameters.
async fn get_query_post(
    stack: &Stack,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Value,
) -> Reply {
    let request = stack
        .http
        .post(stack.scim(token).url(path))
        .query(query)
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(body.to_string());
    Scim::reply(request).await
}

#[tokio::test]
async fn sorting_is_stable_in_both_directions() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    people(&scim).await;

    let sorted = |query: Vec<(&'static str, &'static str)>| {
        let stack = &stack;
        let token = acme.token.clone();
        async move {
            let reply = get_query(stack, &token, "/Users", &query).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            user_names(&reply.body)
        }
    };
    assert_eq!(
        sorted(vec![("sortBy", "userName")]).await,
        ["alice@example.com", "bob@example.org", "carol@example.com"]
    );
    assert_eq!(
        sorted(vec![("sortBy", "USERNAME"), ("sortOrder", "DESCENDING")]).await,
        ["carol@example.com", "bob@example.org", "alice@example.com"]
    );
    assert_eq!(
        sorted(vec![
            ("sortBy", "name.givenName"),
            ("sortOrder", "ascending"),
            ("count", "2")
        ])
        .await,
        ["alice@example.com", "bob@example.org"]
    );
    // Ties (two engineers) are broken by id, so they never swap between requests.
    let by_title = sorted(vec![("sortBy", "title")]).await;
    assert_eq!(by_title[2], "alice@example.com");
    assert_eq!(sorted(vec![("sortBy", "title")]).await, by_title);

    let config = Scim::reply(stack.http.get(scim.url("/ServiceProviderConfig"))).await;
    assert_eq!(config.body["sort"]["supported"], true);
    get_query(
        &stack,
        &acme.token,
        "/Users",
        &[("sortBy", "userName"), ("sortOrder", "sideways")],
    )
    .await
    .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn cursor_pagination_walks_every_page() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(
            scim.create_user(user(&format!("page{n}@example.com")))
                .await,
        );
    }

    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    let mut page_ids: Vec<Vec<String>> = Vec::new();
    let mut previous: Vec<Option<String>> = Vec::new();
    loop {
        let reply = get_query(
            &stack,
            &acme.token,
            "/Users",
            &[("cursor", cursor.as_str()), ("count", "2")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        // RFC 9865 lets cursor pages omit a total that would need a count.
        assert!(reply.body.get("totalResults").is_none(), "{}", reply.body);
        assert!(reply.body.get("startIndex").is_none(), "{}", reply.body);
        assert_eq!(reply.body["itemsPerPage"], ids(&reply.body).len());
        seen.extend(ids(&reply.body));
        page_ids.push(ids(&reply.body));
        previous.push(reply.body["previousCursor"].as_str().map(str::to_string));
        pages += 1;
        match reply.body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
        assert!(pages < 10, "cursor pagination does not end");
    }
    assert_eq!(pages, 3);
    // A first page that holds every match tells the total without counting.
    let whole = get_query(
        &stack,
        &acme.token,
        "/Users",
        &[("cursor", ""), ("count", "10")],
    )
    .await;
    assert_eq!(whole.body["totalResults"], 5, "{}", whole.body);
    // Back from the last page with previousCursor: the same pages.
    assert_eq!(previous[0], None, "the first page has no previousCursor");
    for page in [2, 1] {
        let back = previous[page]
            .clone()
            .expect("previousCursor after the first page");
        let reply = get_query(
            &stack,
            &acme.token,
            "/Users",
            &[("cursor", back.as_str()), ("count", "2")],
        )
        .await;
        assert_eq!(ids(&reply.body), page_ids[page - 1], "page {page}");
    }
    let mut expected = created.clone();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);

    // The same walk through POST /Users/.search.
    let first = scim
        .post(
            "/Users/.search",
            json!({"schemas": [SEARCH_SCHEMA], "cursor": "", "count": 3}),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(ids(&first.body).len(), 3);
    let next = first.body["nextCursor"]
        .as_str()
        .expect("nextCursor")
        .to_string();
    let second = scim
        .post("/Users/.search", json!({"cursor": next, "count": 3}))
        .await;
    assert_eq!(ids(&second.body).len(), 2);
    assert!(second.body.get("nextCursor").is_none(), "{}", second.body);

    // Garbage and foreign cursors are invalidCursor; startIndex still works.
    for bad in ["not a cursor!", "AAAA"] {
        get_query(&stack, &acme.token, "/Users", &[("cursor", bad)])
            .await
            .assert_error(400, Some("invalidCursor"));
    }
    let indexed = get_query(
        &stack,
        &acme.token,
        "/Users",
        &[("startIndex", "4"), ("count", "10")],
    )
    .await;
    assert_eq!(indexed.body["startIndex"], 4);
    assert_eq!(ids(&indexed.body).len(), 2);
    assert!(indexed.body.get("nextCursor").is_none());

    let config = Scim::reply(stack.http.get(scim.url("/ServiceProviderConfig"))).await;
    let pagination = &config.body["pagination"];
    assert_eq!(pagination["cursor"], true);
    assert_eq!(pagination["index"], true);
    assert_eq!(pagination["defaultPaginationMethod"], "index");
    assert!(pagination["maxPageSize"].is_u64());
}

#[tokio::test]
async fn etags_make_writes_conditional() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let token = acme.token.as_str();
    let id = scim.create_user(user("etag@example.com")).await;
    let path = format!("/Users/{id}");
    let current = scim.get(&path).await;
    let etag = current.header("etag").expect("ETag").to_string();
    assert_eq!(current.body["meta"]["version"], json!(etag));

    // If-None-Match: 304 while unchanged, also for `*`.
    for value in [etag.as_str(), "*"] {
        let reply = send_with(
            &stack,
            token,
            Method::GET,
            &path,
            &[("if-none-match", value)],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{value}");
    }
    let reply = send_with(
        &stack,
        token,
        Method::GET,
        &path,
        &[("if-none-match", "W/\"999\"")],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    // A matching If-Match writes; afterwards the old ETag is stale everywhere.
    let patch = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "displayName", "value": "v2"}]});
    let patched = send_with(
        &stack,
        token,
        Method::PATCH,
        &path,
        &[("if-match", etag.as_str())],
        Some(patch.clone()),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_ne!(patched.header("etag"), Some(etag.as_str()));
    send_with(
        &stack,
        token,
        Method::PATCH,
        &path,
        &[("if-match", etag.as_str())],
        Some(patch),
    )
    .await
    .assert_error(412, Some("preconditionFailed"));
    send_with(
        &stack,
        token,
        Method::PUT,
        &path,
        &[("if-match", etag.as_str())],
        Some(user("etag@example.com")),
    )
    .await
    .assert_error(412, Some("preconditionFailed"));
    send_with(
        &stack,
        token,
        Method::DELETE,
        &path,
        &[("if-match", etag.as_str())],
        None,
    )
    .await
    .assert_error(412, Some("preconditionFailed"));
    assert_eq!(scim.get(&path).await.body["displayName"], "v2");
    // `*` matches whatever exists.
    let deleted = send_with(
        &stack,
        token,
        Method::DELETE,
        &path,
        &[("if-match", "*")],
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    // Groups too.
    let group = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Conditional"}),
        )
        .await;
    let group_path = format!("/Groups/{}", group.body["id"].as_str().expect("group id"));
    let group_etag = group.header("etag").expect("ETag").to_string();
    let rename = |name: &str| json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "displayName", "value": name}]});
    let renamed = send_with(
        &stack,
        token,
        Method::PATCH,
        &group_path,
        &[("if-match", group_etag.as_str())],
        Some(rename("C2")),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::NO_CONTENT);
    send_with(
        &stack,
        token,
        Method::PATCH,
        &group_path,
        &[("if-match", group_etag.as_str())],
        Some(rename("C3")),
    )
    .await
    .assert_error(412, Some("preconditionFailed"));
    // A PATCH that changes nothing still honours If-Match.
    let nothing = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": []}]});
    send_with(
        &stack,
        token,
        Method::PATCH,
        &group_path,
        &[("if-match", group_etag.as_str())],
        Some(nothing),
    )
    .await
    .assert_error(412, Some("preconditionFailed"));
    let fresh = scim.get(&group_path).await;
    let reply = send_with(
        &stack,
        token,
        Method::GET,
        &group_path,
        &[("if-none-match", fresh.header("etag").unwrap_or_default())],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn search_endpoints() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let people = people(&scim).await;
    let group = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineers", "members": [{"value": people[0]}, {"value": people[2]}]}),
        )
        .await;
    let group_id = group.body["id"].as_str().expect("group id").to_string();

    let users = scim
        .post(
            "/Users/.search",
            json!({
                "schemas": [SEARCH_SCHEMA],
                "filter": "title eq \"Engineer\"",
                "attributes": ["userName"],
                "sortBy": "userName",
                "sortOrder": "descending",
                "startIndex": 1,
                "count": 10
            }),
        )
        .await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);
    assert_eq!(
        user_names(&users.body),
        ["carol@example.com", "bob@example.org"]
    );
    assert_eq!(
        keys(&users.body["Resources"][0]),
        ["id", "meta", "schemas", "userName"]
    );

    let groups = scim
        .post(
            "/Groups/.search",
            json!({"schemas": [SEARCH_SCHEMA], "filter": "displayName eq \"engineers\"", "excludedAttributes": ["members"]}),
        )
        .await;
    assert_eq!(groups.status, StatusCode::OK, "{}", groups.body);
    assert_eq!(ids(&groups.body), std::slice::from_ref(&group_id));
    assert!(groups.body["Resources"][0].get("members").is_none());

    // The root search spans both types, users first, paged with startIndex.
    let all = scim
        .post("/.search", json!({"schemas": [SEARCH_SCHEMA]}))
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["totalResults"], 4);
    let resources = all.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let types: Vec<&str> = resources
        .iter()
        .filter_map(|r| r["meta"]["resourceType"].as_str())
        .collect();
    assert_eq!(types, ["User", "User", "User", "Group"]);
    assert_eq!(resources[3]["members"].as_array().map(Vec::len), Some(2));
    let page = scim
        .post("/.search", json!({"startIndex": 3, "count": 2}))
        .await;
    assert_eq!(page.body["startIndex"], 3);
    assert_eq!(page.body["totalResults"], 4);
    assert_eq!(ids(&page.body), [people[2].clone(), group_id.clone()]);

    // A filter on an attribute only groups have finds only groups.
    let only_groups = scim
        .post(
            "/.search",
            json!({"filter": "displayName eq \"Engineers\""}),
        )
        .await;
    assert_eq!(only_groups.status, StatusCode::OK, "{}", only_groups.body);
    let found = ids(&only_groups.body);
    assert!(found.contains(&group_id), "{}", only_groups.body);

    // sortBy orders each type; a type without the attribute is still listed.
    let sorted = scim
        .post(
            "/.search",
            json!({"sortBy": "userName", "sortOrder": "descending"}),
        )
        .await;
    assert_eq!(sorted.status, StatusCode::OK, "{}", sorted.body);
    assert_eq!(sorted.body["totalResults"], 4);
    assert_eq!(
        user_names(&sorted.body),
        ["carol@example.com", "bob@example.org", "alice@example.com"]
    );
    assert_eq!(ids(&sorted.body)[3], group_id);

    // Groups page with cursors too.
    scim.post("/Groups", json!({"displayName": "Second"})).await;
    let first = get_query(
        &stack,
        &acme.token,
        "/Groups",
        &[("cursor", ""), ("count", "1"), ("sortBy", "displayName")],
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(ids(&first.body), std::slice::from_ref(&group_id));
    let next = first.body["nextCursor"]
        .as_str()
        .expect("nextCursor")
        .to_string();
    let second = get_query(
        &stack,
        &acme.token,
        "/Groups",
        &[
            ("cursor", next.as_str()),
            ("count", "1"),
            ("sortBy", "displayName"),
        ],
    )
    .await;
    assert_eq!(second.body["Resources"][0]["displayName"], "Second");
    assert!(second.body.get("nextCursor").is_none(), "{}", second.body);

    scim.post("/.search", json!({"cursor": ""}))
        .await
        .assert_error(400, Some("invalidValue"));
    scim.post("/Users/.search", json!({"filter": "userName eq"}))
        .await
        .assert_error(400, Some("invalidFilter"));
    scim.post("/Users/.search", json!({"schemas": [USER_SCHEMA]}))
        .await
        .assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn bulk_with_references() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let existing = scim.create_user(user("existing@example.com")).await;

    // The group comes first and names users created later in the request.
    let reply = scim
        .post(
            "/Bulk",
            json!({
                "schemas": [BULK_SCHEMA],
                "Operations": [
                    {"method": "POST", "path": "/Groups", "bulkId": "g",
                     "data": {"schemas": [GROUP_SCHEMA], "displayName": "Bulk",
                              "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
                    {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("bulk1@example.com")},
                    {"method": "POST", "path": "/Users", "bulkId": "u2", "data": user("bulk2@example.com")},
                    {"method": "PATCH", "path": "/Users/bulkId:u1",
                     "data": {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "title", "value": "Bulk"}]}},
                    {"method": "DELETE", "path": format!("/Users/{existing}")},
                    {"method": "POST", "path": "/Users", "bulkId": "dup", "data": user("bulk1@example.com")},
                ]
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    let ops = reply.body["Operations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<&str> = ops.iter().filter_map(|o| o["status"].as_str()).collect();
    assert_eq!(
        statuses,
        ["201", "201", "201", "200", "204", "409"],
        "{}",
        reply.body
    );
    assert_eq!(ops[5]["response"]["scimType"], "uniqueness");
    let location = |op: &Value| op["location"].as_str().unwrap_or_default().to_string();
    let u1 = location(&ops[1])
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let group = scim
        .get(&location(&ops[0]).replace(&scim.url(""), ""))
        .await;
    assert_eq!(group.body["displayName"], "Bulk");
    assert_eq!(group.body["members"].as_array().map(Vec::len), Some(2));
    assert!(
        ops[0]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("W/"))
    );
    assert_eq!(
        scim.get(&format!("/Users/{u1}")).await.body["title"],
        "Bulk"
    );
    scim.get(&format!("/Users/{existing}"))
        .await
        .assert_error(404, None);

    // failOnErrors stops after that many errors; unresolved and circular references fail.
    let reply = scim
        .post(
            "/Bulk",
            json!({
                "schemas": [BULK_SCHEMA],
                "Operations": [
                    {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"displayName": "A", "members": [{"value": "bulkId:nowhere"}]}},
                    {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "B", "members": [{"value": "bulkId:c"}]}},
                    {"method": "POST", "path": "/Groups", "bulkId": "c", "data": {"displayName": "C", "members": [{"value": "bulkId:b"}]}},
                    {"method": "PUT", "path": "/Users/whatever", "version": "W/\"1\"", "data": user("x@example.com")},
                ]
            }),
        )
        .await;
    let ops = reply.body["Operations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<&str> = ops.iter().filter_map(|o| o["status"].as_str()).collect();
    assert_eq!(statuses, ["409", "409", "409", "404"], "{}", reply.body);
    let reply = scim
        .post(
            "/Bulk",
            json!({
                "schemas": [BULK_SCHEMA],
                "failOnErrors": 1,
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"displayName": "no userName"}},
                    {"method": "POST", "path": "/Users", "bulkId": "y", "data": user("never@example.com")},
                ]
            }),
        )
        .await;
    let ops = reply.body["Operations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(ops.len(), 1, "{}", reply.body);
    assert_eq!(ops[0]["status"], "400");
    assert_eq!(ops[0]["response"]["scimType"], "invalidValue");
    assert_eq!(
        scim.filter_users(r#"userName eq "never@example.com""#)
            .await
            .body["totalResults"],
        0
    );

    // Limits: more than maxOperations is 413, and they are advertised.
    let many: Vec<Value> = (0..1001)
        .map(|n| json!({"method": "DELETE", "path": format!("/Users/{n}")}))
        .collect();
    scim.post(
        "/Bulk",
        json!({"schemas": [BULK_SCHEMA], "Operations": many}),
    )
    .await
    .assert_error(413, None);
    let config = Scim::reply(stack.http.get(scim.url("/ServiceProviderConfig"))).await;
    assert_eq!(
        config.body["bulk"],
        json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 1024 * 1024})
    );
}

#[tokio::test]
async fn bulk_payload_limit_is_413() {
    let stack = Stack::start_with_body_limit(8 * 1024).await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let ops: Vec<Value> = (0..100)
        .map(|n| json!({"method": "POST", "path": "/Users", "bulkId": n.to_string(), "data": user(&format!("u{n}@example.com"))}))
        .collect();
    scim.post(
        "/Bulk",
        json!({"schemas": [BULK_SCHEMA], "Operations": ops}),
    )
    .await
    .assert_error(413, None);
    assert_eq!(scim.get("/Users").await.body["totalResults"], 0);
}

#[tokio::test]
async fn requests_are_validated_against_the_published_schemas() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);

    let bad_users = [
        json!({"schemas": [GROUP_SCHEMA], "userName": "a@example.com"}),
        json!({"schemas": USER_SCHEMA, "userName": "a@example.com"}),
        json!({"schemas": [USER_SCHEMA]}),
        json!({"schemas": [USER_SCHEMA], "userName": "a@example.com", "phoneNumbers": [{"value": 5}]}),
        json!({"schemas": [USER_SCHEMA], "userName": "a@example.com", "addresses": "Main Street"}),
        json!({"schemas": [USER_SCHEMA], "userName": "a@example.com", "x509Certificates": [{"value": true}]}),
        json!({"schemas": [USER_SCHEMA], "userName": "a@example.com", "title": ["a"]}),
    ];
    for body in bad_users {
        let reply = scim.post("/Users", body.clone()).await;
        reply.assert_error(400, Some("invalidValue"));
    }
    let reply = scim
        .post(
            "/Users",
            json!({"schemas": [USER_SCHEMA], "displayName": "x"}),
        )
        .await;
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("userName")),
        "{}",
        reply.body
    );
    scim.post("/Groups", json!({"schemas": [GROUP_SCHEMA]}))
        .await
        .assert_error(400, Some("invalidValue"));

    // Canonical values are suggestions; unknown attributes and extensions are
    // kept; read-only ones are ignored; names are canonicalised.
    let custom = "urn:example:params:scim:schemas:extension:acme:2.0:User";
    let created = scim
        .post(
            "/Users",
            json!({
                "schemas": [USER_SCHEMA, custom],
                "userName": "valid@example.com",
                "emails": [{"value": "valid@example.com", "type": "pager"}],
                "PhoneNumbers": [{"Value": "+1 555", "type": "satellite", "primary": "True"}],
                "groups": [{"value": "not-a-group"}],
                "meta": {"created": "1999-01-01T00:00:00Z"},
                "shoeSize": 44,
                custom: {"badge": 7},
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let body = &created.body;
    assert_eq!(body["emails"][0]["type"], "pager");
    assert_eq!(
        body["phoneNumbers"],
        json!([{"value": "+1 555", "type": "satellite", "primary": true}])
    );
    assert!(body.get("groups").is_none());
    assert_ne!(body["meta"]["created"], "1999-01-01T00:00:00Z");
    assert_eq!(body["shoeSize"], 44);
    assert_eq!(body[custom], json!({"badge": 7}));
    assert!(
        body["schemas"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(custom)))
    );

    // The published User schema describes what is validated.
    let schema = scim.get(&format!("/Schemas/{USER_SCHEMA}")).await;
    let names: Vec<&str> = schema.body["attributes"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    for name in [
        "userName",
        "nickName",
        "phoneNumbers",
        "addresses",
        "x509Certificates",
        "groups",
    ] {
        assert!(names.contains(&name), "{name} not published: {names:?}");
    }
}
