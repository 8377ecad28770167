//! Access and membership events end to end: ACCESS_CHANGED when a write
//! changes a user's effective roles or organizations (memberships, renames,
//! policy changes, deprovisioning), MEMBER_REMOVED when a user's deletion
//! or deprovisioning ends memberships, and the SCIM request id on events;
//! also when the write races a policy change or runs on a replica whose
//! token cache still holds the policy from before it.

use std::time::Duration;

use identity_lifecycle_tests::events::{
    LARGE_PAGE, acme_and_reader, all_events, create_users, sequences, set_active, types,
};
use identity_lifecycle_tests::*;
use identity_proto::v1::tenant_service_client::TenantServiceClient;
use identity_proto::v1::{
    AddMembersRequest, DeleteMode, DeprovisionAction, Event, EventType, GroupMapping,
    GroupMappings, ListEventsRequest, PolicyUpdate, RemoveMembersRequest, ResourceType,
    UpdateTenantRequest,
};
use reqwest::StatusCode;
use serde_json::Value;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The tenant's events after sequence `base`, asserting that the whole
/// stored sequence runs from 1 without a gap.
async fn events_after(stack: &Stack, token: &str, base: u64) -> Vec<Event> {
    let events = all_events(
        stack.events(token),
        LARGE_PAGE,
        ListEventsRequest::default(),
    )
    .await;
    assert_eq!(
        sequences(&events),
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "sequences must be gap-free"
    );
    events.into_iter().filter(|e| e.sequence > base).collect()
}

/// The tenant's newest sequence, checking the whole sequence on the way.
async fn newest(stack: &Stack, token: &str) -> u64 {
    events_after(stack, token, 0)
        .await
        .last()
        .map_or(0, |e| e.sequence)
}

/// `changes[name]` as `{"before": …, "after": …}` JSON (absent sides null).
fn changed(event: &Event, name: &str) -> Value {
    let change = event
        .changes
        .get(name)
        .unwrap_or_else(|| panic!("{:?} has no change of {name}", event.r#type()));
    let side = |v: &Option<prost_types::Value>| {
        v.clone()
            .map(identity_proto::value_to_json)
            .unwrap_or(Value::Null)
    };
    json!({"before": side(&change.before), "after": side(&change.after)})
}

/// The ACCESS_CHANGED events among `events`, by user id.
fn access_changes(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| e.r#type() == EventType::AccessChanged)
        .collect()
}

async fn update_policy(stack: &Stack, slug: &str, policy: PolicyUpdate) {
    update_policy_with(stack.tenants(ADMIN_TOKEN), slug, policy).await;
}

/// [`update_policy`] through `tenants`, an operator's client of any replica.
async fn update_policy_with(
    mut tenants: TenantServiceClient<InterceptedService<Channel, Bearer>>,
    slug: &str,
    policy: PolicyUpdate,
) {
    tenants
        .update_tenant(UpdateTenantRequest {
            slug: slug.to_string(),
            policy: Some(policy),
            ..UpdateTenantRequest::default()
        })
        .await
        .expect("update tenant policy");
}

fn mapping(group: &str, role: &str, organization: &str) -> GroupMappings {
    GroupMappings {
        mappings: vec![GroupMapping {
            group: group.into(),
            role: role.into(),
            organization: organization.into(),
        }],
    }
}

async fn scim_group(scim: &Scim<'_>, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let reply = scim
        .post(
            "/Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name,
                "members": members,
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().expect("group id").to_string()
}

#[tokio::test]
async fn membership_of_a_mapped_group_changes_access() {
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    update_policy(
        &stack,
        "acme",
        PolicyUpdate {
            default_role: Some("member".into()),
            group_mappings: Some(mapping("Engineering", "developer", "R&D")),
            ..PolicyUpdate::default()
        },
    )
    .await;
    let scim = stack.scim(&acme.token);
    let base = newest(&stack, &reader).await;
    let ada = scim.create_user(user("ada@acme.example")).await;
    let created = events_after(&stack, &reader, base).await;
    assert_eq!(
        types(&created),
        [EventType::UserCreated, EventType::AccessChanged]
    );
    assert_eq!(
        changed(&created[1], "roles"),
        json!({"before": [], "after": ["member"]})
    );

    let engineering = scim_group(&scim, "Engineering", &[]).await;
    let base = newest(&stack, &reader).await;
    let added = scim
        .patch(
            &format!("/Groups/{engineering}"),
            json!([{"op": "add", "path": "members", "value": [{"value": ada}]}]),
        )
        .await;
    assert!(added.status.is_success(), "{}", added.body);
    let events = events_after(&stack, &reader, base).await;
    assert_eq!(
        types(&events),
        [EventType::MemberAdded, EventType::AccessChanged]
    );
    assert_eq!(events[0].resource_id, engineering);
    assert_eq!(events[1].resource_type(), ResourceType::User);
    assert_eq!(events[1].resource_id, ada);
    assert_eq!(
        changed(&events[1], "roles"),
        json!({"before": ["member"], "after": ["developer", "member"]})
    );
    assert_eq!(
        changed(&events[1], "organizations"),
        json!({"before": [], "after": ["R&D"]})
    );

    // A second add of the same member moves nothing and changes nothing.
    let base = newest(&stack, &reader).await;
    stack
        .groups(&reader)
        .add_members(AddMembersRequest {
            group_id: engineering.clone(),
            user_ids: vec![ada.clone()],
            ..AddMembersRequest::default()
        })
        .await
        .expect("add members");
    assert!(events_after(&stack, &reader, base).await.is_empty());

    // A rename that stops the mapping applying takes the access away.
    let renamed = scim
        .patch(
            &format!("/Groups/{engineering}"),
            json!([{"op": "replace", "path": "displayName", "value": "Sales"}]),
        )
        .await;
    assert!(renamed.status.is_success(), "{}", renamed.body);
    let events = events_after(&stack, &reader, base).await;
    assert_eq!(
        types(&events),
        [EventType::GroupUpdated, EventType::AccessChanged]
    );
    assert_eq!(
        changed(&events[1], "roles"),
        json!({"before": ["developer", "member"], "after": ["member"]})
    );

    // Renamed back, then the member removed over gRPC.
    let base = newest(&stack, &reader).await;
    let back = scim
        .patch(
            &format!("/Groups/{engineering}"),
            json!([{"op": "replace", "path": "displayName", "value": "engineering"}]),
        )
        .await;
    assert!(back.status.is_success(), "{}", back.body);
    stack
        .groups(&reader)
        .remove_members(RemoveMembersRequest {
            group_id: engineering.clone(),
            user_ids: vec![ada.clone()],
            ..RemoveMembersRequest::default()
        })
        .await
        .expect("remove members");
    let events = events_after(&stack, &reader, base).await;
    assert_eq!(
        types(&events),
        [
            EventType::GroupUpdated,
            EventType::AccessChanged,
            EventType::MemberRemoved,
            EventType::AccessChanged
        ]
    );
    assert_eq!(
        changed(&events[3], "organizations"),
        json!({"before": ["R&D"], "after": []})
    );

    // Deleting a group that gave access takes it from its members.
    let bob = scim.create_user(user("bob@acme.example")).await;
    let platform = scim_group(&scim, "Engineering-2", &[&bob]).await;
    let base = newest(&stack, &reader).await;
    update_policy(
        &stack,
        "acme",
        PolicyUpdate {
            group_mappings: Some(mapping(&platform, "operator", "")),
            ..PolicyUpdate::default()
        },
    )
    .await;
    let deleted = scim.delete(&format!("/Groups/{platform}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let events = events_after(&stack, &reader, base).await;
    assert_eq!(
        types(&events),
        [
            EventType::TenantUpdated,
            EventType::AccessChanged,
            EventType::GroupDeleted,
            EventType::AccessChanged
        ]
    );
    assert_eq!(events[1].resource_id, bob);
    assert_eq!(
        changed(&events[3], "roles"),
        json!({"before": ["member", "operator"], "after": ["member"]})
    );
}

#[tokio::test]
async fn a_policy_change_changes_the_access_of_members_only() {
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let members = create_users(&scim, "m", 3).await;
    let outsider = scim.create_user(user("out@acme.example")).await;
    let member_refs: Vec<&str> = members.iter().map(String::as_str).collect();
    scim_group(&scim, "Engineering", &member_refs).await;
    scim_group(&scim, "Admins", &[&members[0]]).await;
    let base = newest(&stack, &reader).await;

    update_policy(
        &stack,
        "acme",
        PolicyUpdate {
            group_mappings: Some(mapping("ENGINEERING", "developer", "")),
            synthetic_groups: Some(true),
            ..PolicyUpdate::default()
        },
    )
    .await;
    let events = events_after(&stack, &reader, base).await;
    assert_eq!(events[0].r#type(), EventType::TenantUpdated);
    // "Admins" exists already: only "Users" is made.
    let made: Vec<&Event> = events
        .iter()
        .filter(|e| e.r#type() == EventType::GroupCreated)
        .collect();
    assert_eq!(made.len(), 1);
    assert_eq!(
        changed(made[0], "displayName"),
        json!({"before": null, "after": "Users"})
    );
    let access = access_changes(&events);
    let mut users: Vec<&str> = access.iter().map(|e| e.resource_id.as_str()).collect();
    users.sort_unstable();
    let mut expected = member_refs.clone();
    expected.sort_unstable();
    assert_eq!(users, expected, "one ACCESS_CHANGED per member");
    assert!(!users.contains(&outsider.as_str()));
    for event in &access {
        let roles = changed(event, "roles");
        if event.resource_id == members[0] {
            assert_eq!(
                roles,
                json!({"before": [], "after": ["admin", "developer"]})
            );
        } else {
            assert_eq!(roles, json!({"before": [], "after": ["developer"]}));
        }
        assert!(!event.changes.contains_key("organizations"));
    }

    // A change that maps the same: no access changes.
    let base = newest(&stack, &reader).await;
    update_policy(
        &stack,
        "acme",
        PolicyUpdate {
            group_mappings: Some(mapping("engineering", "developer", "")),
            default_role: Some("member".into()),
            ..PolicyUpdate::default()
        },
    )
    .await;
    let events = events_after(&stack, &reader, base).await;
    assert_eq!(types(&events), [EventType::TenantUpdated]);
}

#[tokio::test]
async fn deprovisioning_that_ends_membership_removes_members_and_access() {
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    update_policy(
        &stack,
        "acme",
        PolicyUpdate {
            default_role: Some("member".into()),
            deprovision: Some(DeprovisionAction::DeprovisionRemoveMembership as i32),
            group_mappings: Some(mapping("Engineering", "developer", "")),
            ..PolicyUpdate::default()
        },
    )
    .await;
    let scim = stack.scim(&acme.token);
    let ada = scim.create_user(user("ada@acme.example")).await;
    let engineering = scim_group(&scim, "Engineering", &[&ada]).await;
    let other = scim_group(&scim, "Book club", &[&ada]).await;
    let base = newest(&stack, &reader).await;

    set_active(&scim, &ada, false).await;
    let events = events_after(&stack, &reader, base).await;
    assert_eq!(
        types(&events),
        [
            EventType::UserDeprovisioned,
            EventType::MemberRemoved,
            EventType::MemberRemoved,
            EventType::AccessChanged
        ]
    );
    let mut groups: Vec<&str> = events[1..3]
        .iter()
        .map(|e| {
            assert_eq!(e.resource_type(), ResourceType::Group);
            assert_eq!(
                changed(e, "members"),
                json!({"before": [ada], "after": null})
            );
            e.resource_id.as_str()
        })
        .collect();
    groups.sort_unstable();
    let mut expected = [engineering.as_str(), other.as_str()];
    expected.sort_unstable();
    assert_eq!(groups, expected);
    assert_eq!(events[3].resource_id, ada);
    assert_eq!(
        changed(&events[3], "roles"),
        json!({"before": ["developer", "member"], "after": []})
    );

    // Reactivation makes the user a member again, with the default role.
    let base = newest(&stack, &reader).await;
    set_active(&scim, &ada, true).await;
    let events = events_after(&stack, &reader, base).await;
    assert_eq!(
        types(&events),
        [EventType::UserReactivated, EventType::AccessChanged]
    );
    assert_eq!(
        changed(&events[1], "roles"),
        json!({"before": [], "after": ["member"]})
    );
}

#[tokio::test]
async fn deleting_a_member_removes_it_from_its_groups() {
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let soft = scim.create_user(user("soft@acme.example")).await;
    let hard = scim.create_user(user("hard@acme.example")).await;
    let group = scim_group(&scim, "Engineering", &[&soft, &hard]).await;

    for (id, mode) in [(&soft, DeleteMode::Soft), (&hard, DeleteMode::Hard)] {
        update_policy(
            &stack,
            "acme",
            PolicyUpdate {
                delete_mode: Some(mode as i32),
                ..PolicyUpdate::default()
            },
        )
        .await;
        let base = newest(&stack, &reader).await;
        let deleted = scim.delete(&format!("/Users/{id}")).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
        let events = events_after(&stack, &reader, base).await;
        assert_eq!(
            types(&events),
            [EventType::UserDeleted, EventType::MemberRemoved],
            "{mode:?}"
        );
        assert_eq!(events[1].resource_id, group);
        assert_eq!(
            changed(&events[1], "members"),
            json!({"before": [id], "after": null})
        );
    }
    let read = scim.get(&format!("/Groups/{group}")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert!(read.body.get("members").is_none_or(|m| m == &json!([])));
}

/// Creates a user over SCIM, sending `request_id` as its X-Request-Id.
async fn create_with_request_id(
    stack: &Stack,
    token: &str,
    request_id: &str,
    user_name: &str,
) -> Reply {
    Scim::reply(
        stack
            .http
            .post(stack.scim(token).url("/Users"))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .header("X-Request-Id", request_id)
            .body(user(user_name).to_string()),
    )
    .await
}

#[tokio::test]
async fn scim_request_ids_reach_events_and_responses() {
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let base = newest(&stack, &reader).await;

    let sent =
        create_with_request_id(&stack, &acme.token, "e2e-req-0001", "ada@acme.example").await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.header("x-request-id"), Some("e2e-req-0001"));

    // None sent, or one that is not sane: the adapter makes one up.
    let made = scim.post("/Users", user("bob@acme.example")).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let made_id = made
        .header("x-request-id")
        .expect("a request id")
        .to_owned();
    assert!(!made_id.is_empty());
    let spaced =
        create_with_request_id(&stack, &acme.token, "has spaces in it", "cy@acme.example").await;
    assert_eq!(spaced.status, StatusCode::CREATED, "{}", spaced.body);
    let replaced = spaced.header("x-request-id").expect("a request id");
    assert_ne!(replaced, "has spaces in it");
    assert_ne!(replaced, made_id);

    let events = events_after(&stack, &reader, base).await;
    let ids: Vec<&str> = events.iter().map(|e| e.request_id.as_str()).collect();
    assert_eq!(ids, ["e2e-req-0001", made_id.as_str(), replaced]);

    // An error answer carries it too.
    let missing = Scim::reply(
        stack
            .http
            .get(scim.url("/Users/00000000-0000-0000-0000-000000000000"))
            .bearer_auth(&acme.token)
            .header("X-Request-Id", "e2e-req-0002"),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("x-request-id"), Some("e2e-req-0002"));
}

#[tokio::test]
async fn a_policy_change_on_a_large_group_records_every_change_in_order() {
    // More members than one statement of the event outbox takes (5,000).
    const MEMBERS: usize = 6_001;
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let outsider = scim.create_user(user("out@acme.example")).await;
    let group = scim_group(&scim, "Engineering", &[]).await;
    // Seeded in SQL: through SCIM this many users would take minutes.
    let db = stack.connect().await;
    db.batch_execute(&format!(
        "WITH tenant AS (SELECT tenant_id FROM tenants WHERE slug = 'acme'), \
         made AS ( \
             INSERT INTO users (tenant_id, user_id, user_name) \
             SELECT tenant.tenant_id, gen_random_uuid(), 'seed' || n || '@acme.example' \
             FROM tenant, generate_series(1, {MEMBERS}) AS n \
             RETURNING tenant_id, user_id) \
         INSERT INTO group_members (tenant_id, group_id, user_id) \
         SELECT tenant_id, '{group}', user_id FROM made; \
         UPDATE groups SET member_count = {MEMBERS} WHERE group_id = '{group}';"
    ))
    .await
    .expect("seed members");
    let base = newest(&stack, &reader).await;

    update_policy(
        &stack,
        "acme",
        PolicyUpdate {
            group_mappings: Some(mapping("Engineering", "developer", "")),
            ..PolicyUpdate::default()
        },
    )
    .await;
    let events = events_after(&stack, &reader, base).await;
    assert_eq!(events.len(), 1 + MEMBERS);
    assert_eq!(events[0].r#type(), EventType::TenantUpdated);
    let mut users: Vec<&str> = events[1..]
        .iter()
        .map(|e| {
            assert_eq!(e.r#type(), EventType::AccessChanged);
            assert_eq!(
                changed(e, "roles"),
                json!({"before": [], "after": ["developer"]})
            );
            e.resource_id.as_str()
        })
        .collect();
    users.sort_unstable();
    users.dedup();
    assert_eq!(users.len(), MEMBERS, "one event per member");
    assert!(!users.contains(&outsider.as_str()));
}

/// The token cache's TTL in the tests below: the longest the service
/// allows, so a replica's copy of the policy stays old as long as it can.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);

/// The roles the last ACCESS_CHANGED of `user` among `events` gives.
fn last_roles(events: &[Event], user: &str) -> Value {
    let last = access_changes(events)
        .into_iter()
        .rfind(|e| e.resource_id == user)
        .unwrap_or_else(|| panic!("no ACCESS_CHANGED of {user}"));
    changed(last, "roles")["after"].clone()
}

/// A member added on a replica whose token cache still holds the policy
/// from before a change that maps the group: the write computes access
/// under the policy as committed, so the user's ACCESS_CHANGED arrives.
/// (The change's own ACCESS_CHANGED ran before the user was a member.)
#[tokio::test]
async fn a_member_added_under_a_stale_cached_policy_gains_the_mapped_role() {
    let mut stack =
        Stack::start_with(|service| service.token_cache_ttl = TOKEN_CACHE_TTL, |_| {}).await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let other = stack.start_replica().await;
    let scim = stack.scim(&acme.token);
    let ada = scim.create_user(user("ada@acme.example")).await;
    let engineering = scim_group(&scim, "Engineering", &[]).await;
    let base = newest(&stack, &reader).await;

    // The SCIM token's lookup expires, so the next call caches it (with
    // the policy as it is now) for a whole TTL on the first replica.
    tokio::time::sleep(TOKEN_CACHE_TTL).await;
    let warmed = scim.get(&format!("/Groups/{engineering}")).await;
    assert_eq!(warmed.status, StatusCode::OK, "{}", warmed.body);
    let changed_at = std::time::Instant::now();
    update_policy_with(
        TenantServiceClient::with_interceptor(other, Bearer::new(ADMIN_TOKEN)),
        "acme",
        PolicyUpdate {
            group_mappings: Some(mapping("Engineering", "developer", "")),
            ..PolicyUpdate::default()
        },
    )
    .await;
    let added = scim
        .patch(
            &format!("/Groups/{engineering}"),
            json!([{"op": "add", "path": "members", "value": [{"value": ada}]}]),
        )
        .await;
    assert!(added.status.is_success(), "{}", added.body);
    eprintln!(
        "policy change to member add: {:?} (the cached policy is old for {TOKEN_CACHE_TTL:?})",
        changed_at.elapsed()
    );

    let events = events_after(&stack, &reader, base).await;
    assert_eq!(
        types(&events),
        [
            EventType::TenantUpdated,
            EventType::MemberAdded,
            EventType::AccessChanged
        ]
    );
    assert_eq!(events[2].resource_id, ada);
    assert_eq!(
        changed(&events[2], "roles"),
        json!({"before": [], "after": ["developer"]})
    );
}

/// Member adds racing a policy change that maps their group: whichever
/// commits first, each member's last ACCESS_CHANGED gives the mapped role.
#[tokio::test]
async fn member_adds_racing_a_policy_change_all_end_with_the_mapped_role() {
    const USERS: usize = 12;
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let users = create_users(&scim, "racer", USERS).await;
    let engineering = scim_group(&scim, "Engineering", &[]).await;
    let base = newest(&stack, &reader).await;

    let adds = users.iter().map(|id| {
        let mut groups = stack.groups(&reader);
        let request = AddMembersRequest {
            group_id: engineering.clone(),
            user_ids: vec![id.clone()],
            ..AddMembersRequest::default()
        };
        async move { groups.add_members(request).await.expect("add members") }
    });
    let change = update_policy(
        &stack,
        "acme",
        PolicyUpdate {
            group_mappings: Some(mapping("Engineering", "developer", "")),
            ..PolicyUpdate::default()
        },
    );
    futures::future::join(futures::future::join_all(adds), change).await;

    let events = events_after(&stack, &reader, base).await;
    for id in &users {
        assert_eq!(last_roles(&events, id), json!(["developer"]), "{id}");
    }
}
