//! Event retention end to end: a service with a short retention prunes its
//! old events in the background; a watcher or pager that had not read them
//! gets OUT_OF_RANGE (SEQUENCE_OUT_OF_RANGE), while watching from the newest
//! event, and writing, go on as before. A watch filtered by type loses its
//! place only when an event of its type is pruned.

use std::time::{Duration, Instant};

use identity_lifecycle_tests::events::*;
use identity_lifecycle_tests::*;
use identity_proto::v1::{Event, EventType, ListEventsRequest, WatchRequest, watch_request};
use tonic::{Code, Status};

/// Short, so the test waits seconds for pruning, yet long enough that the
/// events written after it are delivered before they are pruned too.
const RETENTION: Duration = Duration::from_secs(3);
const PRUNE_INTERVAL: Duration = Duration::from_millis(200);

/// The first page of the tenant's stored events.
async fn first_page(stack: &Stack, token: &str, size: i32) -> (Vec<Event>, String) {
    let page = stack
        .events(token)
        .list_events(ListEventsRequest {
            page_size: Some(size),
            ..ListEventsRequest::default()
        })
        .await
        .expect("list events")
        .into_inner();
    (page.events, page.next_page_token)
}

/// A Watch from `start` (None: from the oldest event kept).
fn starting(start: Option<watch_request::Start>) -> WatchRequest {
    WatchRequest {
        start,
        ..WatchRequest::default()
    }
}

/// OUT_OF_RANGE with the contract's reason. The reason travels in the
/// status details (a google.rpc.Status with an ErrorInfo), where protobuf
/// keeps strings as they are.
fn assert_out_of_range(status: &Status) {
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let details = String::from_utf8_lossy(status.details());
    assert!(
        details.contains("SEQUENCE_OUT_OF_RANGE") && details.contains("identity.v1"),
        "{status:?}"
    );
}

async fn scrape(url: &str) -> String {
    reqwest::get(url)
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text")
}

/// The value of an unlabelled sample in a scrape.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn pruned_positions_are_out_of_range_and_the_newest_keeps_working() {
    let admin = process::free_addr();
    let stack = Stack::start_with(
        |service| {
            service.event_retention = RETENTION;
            service.event_prune_interval = PRUNE_INTERVAL;
            service.admin_addr = Some(admin);
        },
        |_| {},
    )
    .await;
    let metrics = format!("http://{admin}/metrics");
    let (acme, reader) = acme_and_reader(&stack).await;
    for n in 0..5 {
        create_group(&stack, &acme.token, &format!("old-{n}")).await;
    }
    let (listed, page_token) = first_page(&stack, &reader, 2).await;
    assert_eq!(listed.len(), 2);
    assert!(!page_token.is_empty(), "more than one page of events");
    let (all, _) = first_page(&stack, &reader, 1000).await;
    let newest = all.last().expect("events were recorded").sequence;
    assert!(newest >= 5);
    // A watch that follows the tenant live is never out of range.
    let mut live = try_watch(stack.events(&reader), after(newest))
        .await
        .expect("watch from the newest");

    let deadline = Instant::now() + PATIENCE;
    while !first_page(&stack, &reader, 1000).await.0.is_empty() {
        assert!(Instant::now() < deadline, "the events were never pruned");
        tokio::time::sleep(PRUNE_INTERVAL).await;
    }
    assert!(
        sample(&scrape(&metrics).await, "identity_events_pruned_total") >= newest as f64,
        "every event was counted as pruned"
    );

    // Positions whose next events are gone, including the second page.
    for start in [from(0), from(1), from(newest - 1)] {
        let refused = try_watch(stack.events(&reader), starting(start))
            .await
            .expect_err("a pruned position is refused");
        assert_out_of_range(&refused);
        assert!(refused.message().contains("pruned"), "{refused:?}");
    }
    let second_page = stack
        .events(&reader)
        .list_events(ListEventsRequest {
            page_size: Some(2),
            page_token,
            ..ListEventsRequest::default()
        })
        .await
        .expect_err("a page after pruned events is refused");
    assert_out_of_range(&second_page);
    // Past the newest is out of range too, for another reason.
    let ahead = try_watch(stack.events(&reader), after(newest + 1))
        .await
        .expect_err("a position past the newest is refused");
    assert_out_of_range(&ahead);
    assert!(ahead.message().contains("past"), "{ahead:?}");

    // From the newest sequence, from now and from the oldest kept, watches
    // work; writes do, and reach every watcher.
    let mut resumed = try_watch(stack.events(&reader), after(newest))
        .await
        .expect("watch from the newest after pruning");
    let mut now = try_watch(
        stack.events(&reader),
        starting(Some(watch_request::Start::Now(true))),
    )
    .await
    .expect("watch from now after pruning");
    let mut oldest = try_watch(stack.events(&reader), starting(None))
        .await
        .expect("watch from the oldest kept after pruning");
    let group = create_group(&stack, &acme.token, "new").await;
    for stream in [&mut live, &mut resumed, &mut now, &mut oldest] {
        let event = &take(stream, 1).await[0];
        assert_eq!(event.sequence, newest + 1);
        assert_eq!(event.resource_id, group.id);
    }
    let (kept, _) = first_page(&stack, &reader, 1000).await;
    assert_eq!(sequences(&kept), vec![newest + 1]);
}

/// A watch of deactivations, the deprovisioning consumer's, from `start`.
fn deactivations(start: Option<watch_request::Start>) -> WatchRequest {
    WatchRequest {
        start,
        types: vec![EventType::UserDeactivated as i32],
        ..WatchRequest::default()
    }
}

#[tokio::test]
async fn a_filtered_watch_keeps_its_place_until_an_event_of_its_kind_is_pruned() {
    let stack = Stack::start_with(
        |service| {
            service.event_retention = RETENTION;
            service.event_prune_interval = PRUNE_INTERVAL;
        },
        |_| {},
    )
    .await;
    let (acme, reader) = acme_and_reader(&stack).await;
    let scim = stack.scim(&acme.token);
    let ids = create_users(&scim, "quiet", 3).await;
    set_active(&scim, &ids[0], false).await;
    let mut first = watch(stack.events(&reader), deactivations(None)).await;
    let seen = take(&mut first, 1).await[0].sequence;
    // Events of other kinds after the consumer's position.
    set_active(&scim, &ids[0], true).await;
    scim.create_user(user("later@acme.example")).await;
    let newest = newest(stack.events(&reader)).await;
    assert!(
        newest > seen + 1,
        "events of other kinds follow the deactivation"
    );

    let deadline = Instant::now() + PATIENCE;
    while !first_page(&stack, &reader, 1000).await.0.is_empty() {
        assert!(Instant::now() < deadline, "the events were never pruned");
        tokio::time::sleep(PRUNE_INTERVAL).await;
    }

    // Unfiltered, the consumer's position lost the events after it.
    let refused = try_watch(stack.events(&reader), after(seen))
        .await
        .expect_err("an unfiltered watch from a pruned position is refused");
    assert_out_of_range(&refused);
    // Filtered to deactivations, it missed none: it resumes and follows.
    let mut resumed = try_watch(stack.events(&reader), deactivations(from(seen)))
        .await
        .expect("a filtered watch whose kind lost nothing resumes");
    set_active(&scim, &ids[1], false).await;
    let next = &take(&mut resumed, 1).await[0];
    assert_eq!(next.r#type(), EventType::UserDeactivated);
    assert_eq!(next.resource_id, ids[1]);
    assert!(next.sequence > newest);
    // From before the pruned deactivation, it lost one.
    let refused = try_watch(stack.events(&reader), deactivations(from(seen - 1)))
        .await
        .expect_err("a filtered watch whose kind lost an event is refused");
    assert_out_of_range(&refused);
    assert!(refused.message().contains("pruned"), "{refused:?}");
}
