//! Lifecycle events end to end: real writes over SCIM and gRPC, a real
//! Postgres outbox and LISTEN/NOTIFY, and Watch streams read over gRPC.

use identity_lifecycle_tests::events::*;
use identity_lifecycle_tests::*;
use identity_proto::v1::{
    CreateGroupRequest, EventType, Group, ListEventsRequest, ResourceType, WatchRequest, actor,
    watch_request,
};
use reqwest::StatusCode;
use tonic::transport::Channel;

/// Small pages, so that listing a test's few dozen events goes through
/// several pages.
const SMALL_PAGE: i32 = 7;

#[tokio::test]
async fn concurrent_writers_get_gap_free_sequences_in_commit_order() {
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let base = newest(stack.events(&reader)).await;
    // Watching from here while the writers run: a watcher reads
    // `sequence > last seen`, so a number committed after a greater one
    // would be skipped and show as a gap here.
    let mut live = watch(stack.events(&reader), after(base)).await;
    const WRITERS: usize = 8;
    const EACH: usize = 6;
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let scim = stack.scim(&acme.token);
        writers.push(async move {
            create_users(&scim, &format!("w{writer}-"), EACH).await;
        });
    }
    futures::future::join_all(writers).await;
    let total = (WRITERS * EACH) as u64;
    let watched = take(&mut live, total as usize).await;
    assert_eq!(
        sequences(&watched),
        (base + 1..=base + total).collect::<Vec<_>>()
    );
    assert!(types(&watched).iter().all(|t| *t == EventType::UserCreated));

    let listed = all_events(
        stack.events(&reader),
        SMALL_PAGE,
        ListEventsRequest {
            resource_type: ResourceType::User as i32,
            ..ListEventsRequest::default()
        },
    )
    .await;
    assert_eq!(listed, watched, "ListEvents and Watch tell the same story");
    let first = &listed[0];
    assert_eq!(first.tenant, "acme");
    assert_eq!(first.resource_type(), ResourceType::User);
    let actor = first.actor.as_ref().expect("actor");
    assert_eq!(actor.kind(), actor::Kind::Token);
    assert_eq!(actor.token_name, "e2e");
    assert!(first.changes.contains_key("userName"), "{first:?}");
}

#[tokio::test]
async fn a_client_resumes_after_disconnect_without_gap_or_duplicate() {
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let base = newest(stack.events(&reader)).await;
    create_users(&scim, "before", 5).await;
    let mut first = watch(stack.events(&reader), after(base)).await;
    let seen = take(&mut first, 3).await;
    let last = seen.last().expect("three events").sequence;
    drop(first);
    create_users(&scim, "after", 4).await;
    let mut resumed = watch(stack.events(&reader), after(last)).await;
    let rest = take(&mut resumed, 6).await;
    assert_eq!(sequences(&rest), (last + 1..=last + 6).collect::<Vec<_>>());
    // And it follows live from there.
    scim.create_user(user("live@acme.example")).await;
    let live = take(&mut resumed, 1).await;
    assert_eq!(sequences(&live), vec![last + 7]);

    // Now means now: only what commits after the call.
    let mut now = watch(
        stack.events(&reader),
        WatchRequest {
            start: Some(watch_request::Start::Now(true)),
            ..WatchRequest::default()
        },
    )
    .await;
    scim.create_user(user("later@acme.example")).await;
    assert_eq!(sequences(&take(&mut now, 1).await), vec![last + 8]);

    // A position past the newest event is out of range.
    let Err(ahead) = try_watch(stack.events(&reader), after(1000)).await else {
        panic!("a position ahead of the newest event was accepted");
    };
    assert_eq!(ahead.code(), tonic::Code::OutOfRange, "{ahead:?}");
}

#[tokio::test]
async fn watch_and_list_filter_by_type_and_resource_type() {
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let base = newest(stack.events(&reader)).await;
    let kept = scim.create_user(user("kept@acme.example")).await;
    let leaving = scim.create_user(user("leaving@acme.example")).await;
    set_active(&scim, &leaving, false).await;
    let group = create_group(&stack, &acme.token, "Engineering").await;
    let renamed = scim
        .patch(
            &format!("/Groups/{}", group.id),
            json!([
                {"op": "replace", "path": "displayName", "value": "Platform"},
                {"op": "add", "path": "members", "value": [{"value": kept}]}
            ]),
        )
        .await;
    assert!(renamed.status.is_success(), "{}", renamed.body);

    let mut deactivations = watch(
        stack.events(&reader),
        WatchRequest {
            types: vec![EventType::UserDeactivated as i32],
            ..after(base)
        },
    )
    .await;
    let got = take(&mut deactivations, 1).await;
    assert_eq!(got[0].resource_id, leaving);
    assert_eq!(got[0].sequence, base + 3);
    let active = &got[0].changes["active"];
    assert_eq!(
        active.before.as_ref().and_then(|v| v.kind.clone()),
        Some(prost_types::value::Kind::BoolValue(true))
    );
    assert_eq!(
        active.after.as_ref().and_then(|v| v.kind.clone()),
        Some(prost_types::value::Kind::BoolValue(false))
    );

    let mut groups = watch(
        stack.events(&reader),
        WatchRequest {
            resource_types: vec![ResourceType::Group as i32],
            ..after(base)
        },
    )
    .await;
    let group_events = take(&mut groups, 3).await;
    assert_eq!(
        types(&group_events),
        vec![
            EventType::GroupCreated,
            EventType::GroupUpdated,
            EventType::MemberAdded
        ]
    );
    assert_eq!(sequences(&group_events), vec![base + 4, base + 5, base + 6]);
    let members = group_events[2].changes["members"].after.clone();
    assert_eq!(
        members.map(identity_proto::value_to_json),
        Some(json!([kept]))
    );

    set_active(&scim, &leaving, true).await;
    let listed = all_events(
        stack.events(&reader),
        SMALL_PAGE,
        ListEventsRequest {
            resource_id: leaving.clone(),
            ..ListEventsRequest::default()
        },
    )
    .await;
    assert_eq!(
        types(&listed),
        vec![
            EventType::UserCreated,
            EventType::UserDeactivated,
            EventType::UserReactivated
        ]
    );
    let reactivations = all_events(
        stack.events(&reader),
        SMALL_PAGE,
        ListEventsRequest {
            types: vec![EventType::UserReactivated as i32],
            ..ListEventsRequest::default()
        },
    )
    .await;
    assert_eq!(sequences(&reactivations), vec![base + 7]);
}

#[tokio::test]
async fn a_refused_write_leaves_no_event() {
    let stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let base = newest(stack.events(&reader)).await;
    scim.create_user(user("taken@acme.example")).await;
    let again = scim.post("/Users", user("taken@acme.example")).await;
    again.assert_error(409, Some("uniqueness"));
    let unknown_member = stack
        .groups(&acme.token)
        .create_group(CreateGroupRequest {
            group: Some(Group {
                display_name: "Ghosts".into(),
                ..Group::default()
            }),
            member_ids: vec![uuid::Uuid::new_v4().to_string()],
            ..CreateGroupRequest::default()
        })
        .await;
    assert!(unknown_member.is_err(), "{unknown_member:?}");
    let stale = scim
        .send(
            reqwest::Method::DELETE,
            "/Users/00000000-0000-4000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    // The next write takes the next number: nothing was used up between.
    scim.create_user(user("next@acme.example")).await;
    let events = all_events(
        stack.events(&reader),
        SMALL_PAGE,
        ListEventsRequest::default(),
    )
    .await;
    assert_eq!(sequences(&events), (1..=base + 2).collect::<Vec<_>>());
    assert_eq!(
        types(&events[base as usize..]),
        vec![EventType::UserCreated, EventType::UserCreated]
    );
    assert_eq!(
        stack.query_strings("SELECT count(*) FROM events").await,
        vec![(base + 2).to_string()]
    );
}

#[tokio::test]
async fn scim_tokens_may_not_read_events() {
    let stack = Stack::start().await;
    let acme = stack.tenant("acme").await;
    for denied in [
        stack
            .events(&acme.token)
            .list_events(ListEventsRequest::default())
            .await
            .err(),
        stack
            .events(&acme.token)
            .watch(WatchRequest::default())
            .await
            .err(),
    ] {
        let status = denied.expect("a SCIM token is refused");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    }
    // The operator names the tenant and reads: the issue of its token.
    let listed = stack
        .events(ADMIN_TOKEN)
        .list_events(ListEventsRequest {
            tenant: "acme".into(),
            ..ListEventsRequest::default()
        })
        .await
        .expect("the operator reads events")
        .into_inner()
        .events;
    assert_eq!(types(&listed), vec![EventType::TokenIssued]);
    let actor = listed[0].actor.as_ref().expect("actor");
    assert_eq!(actor.kind(), actor::Kind::Operator);
    assert_eq!(
        listed[0].changes["name"]
            .after
            .clone()
            .map(identity_proto::value_to_json),
        Some(json!("e2e"))
    );
    assert!(!listed[0].changes.contains_key("secret"));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_resumes() {
    const MAX_LAG: u64 = 50;
    let stack = Stack::start_with(
        |service| {
            service.watch_buffer = 2;
            service.watch_max_lag = MAX_LAG;
        },
        |_| {},
    )
    .await;
    let (acme, reader) = acme_and_reader(&stack).await;
    // A client whose HTTP/2 windows are small, so the server's buffers fill
    // after a few events instead of megabytes.
    let narrow = Channel::from_shared(stack.grpc_url.clone())
        .expect("gRPC url")
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .expect("connect");
    let mut stream = watch(event_client(narrow, &reader), after(0)).await;
    // The client reads nothing while the tenant writes well past the lag.
    const WRITES: u64 = 300;
    let total = newest(stack.events(&reader)).await + WRITES;
    for n in 0..WRITES {
        create_group(&stack, &acme.token, &format!("group-{n}")).await;
    }
    let mut received = Vec::new();
    let status = loop {
        match tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("the slow client is closed in time")
        {
            Ok(Some(event)) => received.push(event.sequence),
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("too slowly"), "{status:?}");
    assert!(
        (received.len() as u64) < total,
        "closed before it could read everything"
    );
    assert_eq!(received, (1..=received.len() as u64).collect::<Vec<_>>());
    // Resuming from the last sequence received delivers the rest.
    let last = received.last().copied().unwrap_or(0);
    let mut resumed = watch(stack.events(&reader), after(last)).await;
    let rest = take(&mut resumed, (total - last) as usize).await;
    assert_eq!(sequences(&rest), (last + 1..=total).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_client_resumes_on_another_replica() {
    let mut stack = Stack::start().await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let base = newest(stack.events(&reader)).await;
    create_users(&scim, "first", 3).await;
    // The first replica serves SCIM's writes and the first watch.
    let mut first = watch(stack.events(&reader), after(base)).await;
    let seen = take(&mut first, 2).await;
    drop(first);
    let replica = stack.start_replica().await;
    let mut resumed = try_watch(event_client(replica, &reader), after(seen[1].sequence))
        .await
        .expect("watch on the replica");
    assert_eq!(sequences(&take(&mut resumed, 1).await), vec![base + 3]);
    // Writes through the first replica reach the second one's watcher live.
    let scim = stack.scim(&acme.token);
    create_users(&scim, "later", 3).await;
    assert_eq!(
        sequences(&take(&mut resumed, 3).await),
        vec![base + 4, base + 5, base + 6]
    );
}
