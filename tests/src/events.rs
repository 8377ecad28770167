//! What the lifecycle-event tests (tests/events*.rs) share, so that each
//! test reads as its scenario: opening Watch streams and reading them with
//! a bound on the wait, listing a tenant's events across pages, the
//! projections the assertions compare, and the set-up they start from (a
//! tenant with a SCIM token and a service-scope reader, in process or with
//! the binaries as processes).

use std::net::SocketAddr;
use std::time::Duration;

use identity_proto::v1::event_service_client::EventServiceClient;
use identity_proto::v1::{
    CreateGroupRequest, Event, EventType, Group, ListEventsRequest, WatchRequest, watch_request,
};
use reqwest::StatusCode;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use crate::process::{Process, channel, free_addr, start_adapter, start_service};
use crate::{
    Bearer, Scim, Stack, Tenant, TestDatabase, create_tenant, fresh_database, issue_service_token,
    json, user,
};

/// Long enough for any delivery on a loaded machine; a bound, not a speed
/// assertion: a test that waits this long has failed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The page size for listings that only want every event: few round trips
/// even for the thousands of events some tests make.
pub const LARGE_PAGE: i32 = 1000;

/// An event service client sending a bearer token, as [`Stack::events`]
/// returns it.
pub type Events = EventServiceClient<InterceptedService<Channel, Bearer>>;

/// An event client on a channel of the test's own making (another
/// replica, a service process, narrow HTTP/2 windows).
pub fn event_client(channel: Channel, token: &str) -> Events {
    EventServiceClient::with_interceptor(channel, Bearer::new(token))
}

/// The Watch start that resumes after `sequence`, as a client that kept
/// its position does.
pub fn from(sequence: u64) -> Option<watch_request::Start> {
    Some(watch_request::Start::AfterSequence(sequence))
}

/// A Watch of every event after `sequence`, unfiltered.
pub fn after(sequence: u64) -> WatchRequest {
    WatchRequest {
        start: from(sequence),
        ..WatchRequest::default()
    }
}

/// Opens a Watch and leaves a refusal to the test to check.
pub async fn try_watch(
    mut events: Events,
    request: WatchRequest,
) -> Result<Streaming<Event>, Status> {
    events.watch(request).await.map(tonic::Response::into_inner)
}

/// Opens a Watch that must be accepted.
pub async fn watch(events: Events, request: WatchRequest) -> Streaming<Event> {
    try_watch(events, request).await.expect("watch")
}

/// The next `count` events of `stream`, each within [`PATIENCE`], so that
/// a missing event fails the test instead of hanging it.
pub async fn take(stream: &mut Streaming<Event>, count: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let next = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap_or_else(|_| panic!("no event after {} of {count}", events.len()))
            .expect("watch stream failed")
            .expect("watch stream ended");
        events.push(next);
    }
    events
}

/// Every stored event `request` selects, following the next-page tokens
/// in pages of `page_size` (small ones make a test go through the paging).
pub async fn all_events(
    mut events: Events,
    page_size: i32,
    request: ListEventsRequest,
) -> Vec<Event> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = events
            .list_events(ListEventsRequest {
                page_token: page_token.clone(),
                page_size: Some(page_size),
                ..request.clone()
            })
            .await
            .expect("list events")
            .into_inner();
        all.extend(page.events);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// The tenant's newest sequence (0 before any event): setting a tenant up
/// (its tokens) records events too, so tests count from here.
pub async fn newest(events: Events) -> u64 {
    all_events(events, LARGE_PAGE, ListEventsRequest::default())
        .await
        .last()
        .map_or(0, |event| event.sequence)
}

pub fn sequences(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.sequence).collect()
}

pub fn types(events: &[Event]) -> Vec<EventType> {
    events.iter().map(Event::r#type).collect()
}

/// Creates a group without members over gRPC: one GROUP_CREATED event,
/// cheaper than a user over SCIM.
pub async fn create_group(stack: &Stack, token: &str, name: &str) -> Group {
    stack
        .groups(token)
        .create_group(CreateGroupRequest {
            group: Some(Group {
                display_name: name.to_string(),
                ..Group::default()
            }),
            ..CreateGroupRequest::default()
        })
        .await
        .expect("create group")
        .into_inner()
}

/// Deactivates (`false`) or reactivates a user over SCIM PATCH, as an
/// identity provider does, asserting that it was done.
pub async fn set_active(scim: &Scim<'_>, id: &str, active: bool) {
    let reply = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": active}]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// Creates `count` users `{prefix}{n}@acme.example` over SCIM, one after
/// another, and returns their ids in order.
pub async fn create_users(scim: &Scim<'_>, prefix: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        ids.push(
            scim.create_user(user(&format!("{prefix}{n}@acme.example")))
                .await,
        );
    }
    ids
}

/// Creates a user over SCIM and returns the answer as it came, or the
/// error when none did: for writes to a service that may be killed.
pub async fn post_user(
    http: &reqwest::Client,
    scim_base: &str,
    token: &str,
    user_name: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{scim_base}/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(user(user_name).to_string())
        .send()
        .await
}

/// The tenant "acme" with its SCIM token, and a service-scope token
/// "reader" of it: the writer and the event consumer of most tests.
pub async fn acme_and_reader(stack: &Stack) -> (Tenant, String) {
    let acme = stack.tenant("acme").await;
    let reader = stack.issue_service_token("acme", "reader").await;
    (acme, reader)
}

/// The identity service and the SCIM adapter as separate processes on a
/// fresh database, with the tenant "acme" and a service-scope token of
/// it: for tests that kill, restart or add processes, or run a consumer
/// binary against them. Fields drop in order: the processes are stopped
/// before their database goes.
pub struct ProcessStack {
    pub adapter: Process,
    pub service: Process,
    pub database: TestDatabase,
    pub grpc: SocketAddr,
    pub scim: SocketAddr,
    pub tenant: Tenant,
    /// The service-scope token, named as [`ProcessStack::start`] was told.
    pub reader: String,
}

impl ProcessStack {
    /// Starts the service, then the adapter with extra `adapter_env`, and
    /// sets up the tenant with a service token called `reader`.
    pub async fn start(adapter_env: &[(&str, String)], reader: &str) -> ProcessStack {
        let database = fresh_database().await;
        let grpc = free_addr();
        let service = start_service(database.url(), grpc, &[]).await;
        let scim = free_addr();
        let adapter = start_adapter(&format!("http://{grpc}"), scim, adapter_env).await;
        let tenant = create_tenant(&channel(grpc), "acme").await;
        let reader = issue_service_token(&channel(grpc), "acme", reader).await;
        ProcessStack {
            adapter,
            service,
            database,
            grpc,
            scim,
            tenant,
            reader,
        }
    }

    /// The adapter's SCIM base URL.
    pub fn scim_base(&self) -> String {
        format!("http://{}/scim/v2", self.scim)
    }

    /// An event client of the service process with `token`.
    pub fn events(&self, token: &str) -> Events {
        event_client(channel(self.grpc), token)
    }
}
