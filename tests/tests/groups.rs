//! Groups and memberships over SCIM and gRPC: every PATCH shape Okta and
//! Entra send, uniqueness, projection, and membership cleanup.

use identity_lifecycle_tests::*;
use identity_proto::v1::{GetUserRequest, ListMembersRequest, ListUserGroupsRequest};
use reqwest::StatusCode;
use serde_json::Value;

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTRA_GROUP_SCHEMA: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .filter_map(|m| m["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

async fn users(scim: &Scim<'_>, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        ids.push(
            scim.create_user(user(&format!("member{n}@example.com")))
                .await,
        );
    }
    ids
}

#[tokio::test]
async fn okta_group_push() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let u = users(&scim, 3).await;

    // Okta creates the group with no members.
    let created = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineering", "members": []}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("group id").to_string();
    let path = format!("/Groups/{id}");
    assert!(
        created
            .header("location")
            .is_some_and(|l| l.ends_with(&path))
    );
    assert!(created.header("etag").is_some());
    assert_eq!(created.body["meta"]["resourceType"], "Group");

    // Every push: pathless replace with id and displayName echoed.
    let renamed = scim
        .patch(
            &path,
            json!([{"op": "replace", "value": {"id": id, "displayName": "Engineering Team"}}]),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::NO_CONTENT, "{}", renamed.body);
    assert_eq!(renamed.body, Value::Null);
    assert_eq!(
        scim.get(&path).await.body["displayName"],
        "Engineering Team"
    );

    // Add members with a value array (display included, as Okta sends it).
    let added = scim
        .patch(
            &path,
            json!([{"op": "add", "path": "members", "value": [
                {"value": u[0], "display": "member0@example.com"},
                {"value": u[1], "display": "member1@example.com"}
            ]}]),
        )
        .await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{}", added.body);
    let group = scim.get(&path).await.body;
    assert_eq!(member_ids(&group), sorted(&[&u[0], &u[1]]));
    let first = &group["members"][0];
    assert_eq!(first["type"], "User");
    assert!(
        first["$ref"]
            .as_str()
            .is_some_and(|r| r.contains("/scim/v2/Users/"))
    );
    assert!(first["display"].is_string());

    // Remove one by filter plus add another, in one request.
    let swapped = scim
        .patch(
            &path,
            json!([
                {"op": "remove", "path": format!("members[value eq \"{}\"]", u[0])},
                {"op": "add", "path": "members", "value": [{"value": u[2], "display": "member2"}]}
            ]),
        )
        .await;
    assert_eq!(swapped.status, StatusCode::NO_CONTENT, "{}", swapped.body);
    assert_eq!(
        member_ids(&scim.get(&path).await.body),
        sorted(&[&u[1], &u[2]])
    );

    // Replace the whole member list.
    let replaced = scim
        .patch(
            &path,
            json!([{"op": "replace", "path": "members", "value": [{"value": u[0]}]}]),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::NO_CONTENT, "{}", replaced.body);
    assert_eq!(member_ids(&scim.get(&path).await.body), sorted(&[&u[0]]));

    // The user sees its group; internal services too.
    let member = scim.get(&format!("/Users/{}", u[0])).await.body;
    assert_eq!(member["groups"][0]["value"], id.as_str(), "{member}");
    assert_eq!(member["groups"][0]["display"], "Engineering Team");
    let groups = stack
        .groups(&acme.token)
        .list_user_groups(ListUserGroupsRequest {
            tenant: String::new(),
            user_id: u[0].clone(),
        })
        .await
        .expect("ListUserGroups")
        .into_inner();
    assert_eq!(groups.groups.len(), 1);

    // Unlink: DELETE the group; the users stay.
    assert_eq!(scim.delete(&path).await.status, StatusCode::NO_CONTENT);
    scim.get(&path).await.assert_error(404, None);
    let member = scim.get(&format!("/Users/{}", u[0])).await;
    assert_eq!(member.status, StatusCode::OK);
    assert!(
        member.body["groups"].as_array().is_none_or(Vec::is_empty),
        "{}",
        member.body
    );
}

#[tokio::test]
async fn entra_group_provisioning() {
    let stack = Stack::start().await;
    let contoso = stack.tenant("contoso").await;
    let scim = stack.scim(&contoso.token);
    let u = users(&scim, 3).await;

    // Entra creates with its extra schema and no members, then looks it up by displayName.
    let created = scim
        .post(
            "/Groups",
            json!({
                "schemas": [GROUP_SCHEMA, ENTRA_GROUP_SCHEMA],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "Finance",
                "members": []
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/Groups/{id}");
    let found = scim
        .get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22finance%22")
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    assert!(
        found.body["Resources"][0].get("members").is_none(),
        "{}",
        found.body
    );

    // Duplicate displayName, any case: 409.
    scim.post("/Groups", json!({"displayName": "FINANCE"}))
        .await
        .assert_error(409, Some("uniqueness"));

    // Default dialect: capitalised ops, member arrays for add and remove.
    let added = scim
        .patch(
            &path,
            json!([{"op": "Add", "path": "members", "value": [{"value": u[0]}, {"value": u[1]}, {"value": u[2]}]}]),
        )
        .await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{}", added.body);
    let removed = scim
        .patch(
            &path,
            json!([{"op": "Remove", "path": "members", "value": [{"value": u[1]}]}]),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert_eq!(
        member_ids(&scim.get(&path).await.body),
        sorted(&[&u[0], &u[2]])
    );

    // Adding an existing member and removing a non-member are no-ops.
    let noop = scim
        .patch(
            &path,
            json!([
                {"op": "Add", "path": "members", "value": [{"value": u[0]}]},
                {"op": "Remove", "path": "members", "value": [{"value": u[1]}]}
            ]),
        )
        .await;
    assert_eq!(noop.status, StatusCode::NO_CONTENT, "{}", noop.body);
    assert_eq!(
        member_ids(&scim.get(&path).await.body),
        sorted(&[&u[0], &u[2]])
    );

    // Replace displayName and externalId by path; with attributes asked, 200 and the projection.
    let projected = scim
        .send(
            reqwest::Method::PATCH,
            &format!("{path}?attributes=displayName"),
            Some(json!({"schemas": [PATCH_SCHEMA], "Operations": [
                {"op": "Replace", "path": "displayName", "value": "Finance EMEA"},
                {"op": "Replace", "path": "externalId", "value": "fin-emea"}
            ]})),
        )
        .await;
    assert_eq!(projected.status, StatusCode::OK, "{}", projected.body);
    assert_eq!(projected.body["displayName"], "Finance EMEA");
    assert_eq!(projected.body["id"], id.as_str());
    assert!(
        projected.body.get("members").is_none(),
        "{}",
        projected.body
    );
    assert!(
        projected.body.get("externalId").is_none(),
        "{}",
        projected.body
    );

    // Filters on members and externalId.
    for (filter, expected) in [
        (format!("members[value eq \"{}\"]", u[0]), 1),
        (format!("members.value eq \"{}\"", u[1]), 0),
        ("externalId eq \"fin-emea\"".to_string(), 1),
        (format!("id eq \"{id}\""), 1),
    ] {
        let reply = scim
            .get(&format!(
                "/Groups?filter={}",
                filter.replace(' ', "%20").replace('"', "%22")
            ))
            .await;
        assert_eq!(
            reply.body["totalResults"], expected,
            "{filter}: {}",
            reply.body
        );
    }

    // Remove without a value removes every member.
    let cleared = scim
        .patch(&path, json!([{"op": "remove", "path": "members"}]))
        .await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT, "{}", cleared.body);
    assert!(member_ids(&scim.get(&path).await.body).is_empty());
}

#[tokio::test]
async fn membership_rules_and_cleanup() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let other = stack.tenant("other").await;
    let scim = stack.scim(&acme.token);
    let u = users(&scim, 2).await;
    let foreign = stack
        .scim(&other.token)
        .create_user(user("foreign@example.com"))
        .await;

    let created = scim
        .post(
            "/Groups",
            json!({"displayName": "Ops", "members": [{"value": u[0]}, {"value": u[1]}]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/Groups/{id}");
    let before = scim.get(&path).await;

    // Unknown or foreign member ids: 400 invalidValue, and the whole PATCH changes nothing.
    for bad in [
        foreign.clone(),
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_string(),
    ] {
        scim.patch(
            &path,
            json!([
                {"op": "replace", "path": "displayName", "value": "Changed"},
                {"op": "add", "path": "members", "value": [{"value": bad}]}
            ]),
        )
        .await
        .assert_error(400, Some("invalidValue"));
    }
    let after = scim.get(&path).await;
    assert_eq!(after.body, before.body);

    // A deactivated user stays a member; a deleted one leaves every group.
    scim.patch(
        &format!("/Users/{}", u[0]),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;
    assert_eq!(
        member_ids(&scim.get(&path).await.body),
        sorted(&[&u[0], &u[1]])
    );
    assert_eq!(
        scim.delete(&format!("/Users/{}", u[1])).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(member_ids(&scim.get(&path).await.body), sorted(&[&u[0]]));

    // PUT replaces the member set; excludedAttributes=members on GET skips it.
    let put = scim
        .put(
            &path,
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": []}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert!(member_ids(&scim.get(&path).await.body).is_empty());
    let lean = scim
        .get(&format!("{path}?excludedAttributes=members"))
        .await;
    assert!(lean.body.get("members").is_none());
    assert_eq!(lean.body["displayName"], "Ops");

    // The deleted user's tombstone has no groups.
    let tombstone = stack
        .users(&acme.token)
        .get_user(GetUserRequest {
            tenant: String::new(),
            id: u[1].clone(),
            show_deleted: true,
        })
        .await
        .expect("tombstone")
        .into_inner();
    assert!(tombstone.groups.is_empty());
}

#[tokio::test]
async fn concurrent_member_adds_lose_nothing_and_big_groups_page() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);
    let u = users(&scim, 30).await;
    let id = scim
        .post("/Groups", json!({"displayName": "Everyone"}))
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/Groups/{id}");

    let patches = u.iter().map(|member| {
        let scim = stack.scim(&acme.token);
        let path = path.clone();
        async move {
            scim.patch(
                &path,
                json!([{"op": "add", "path": "members", "value": [{"value": member}]}]),
            )
            .await
            .status
        }
    });
    let statuses = futures::future::join_all(patches).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::NO_CONTENT),
        "{statuses:?}"
    );
    let group = scim.get(&path).await.body;
    assert_eq!(member_ids(&group).len(), 30);

    // gRPC pages members with a stable order and no duplicates.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = stack
            .groups(&acme.token)
            .list_members(ListMembersRequest {
                tenant: String::new(),
                group_id: id.clone(),
                page_size: Some(7),
                page_token: token.clone(),
            })
            .await
            .expect("ListMembers")
            .into_inner();
        seen.extend(page.members.into_iter().map(|m| m.user_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected = u.clone();
    expected.sort();
    assert_eq!(seen, expected);
}
