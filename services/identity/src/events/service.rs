//! `identity.v1.EventService`: `ListEvents` pages the stored events;
//! `Watch` replays them from a position and then follows the tenant live.
//!
//! A watch is a task of its own (a [`Pump`]) that reads the table in
//! sequence order and hands events to the client through a bounded channel,
//! so its memory is bounded whatever the client does. It holds no database
//! connection and no tenant slot between reads. While its client does not
//! read, the channel stays full and the pump waits; once the tenant's
//! newest event is more than `max_lag` past the event it holds, the client
//! is closed with RESOURCE_EXHAUSTED, and resumes by sequence.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use identity_proto::v1::event_service_server::EventService;
use identity_proto::v1::{
    AttributeChange, Event, EventType, ListEventsRequest, ListEventsResponse, ResourceType,
    WatchRequest, actor, watch_request,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tonic::codegen::tokio_stream::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::hub::Hub;
use super::store::{self, EventRow, Selection};
use super::{Actor, EventError, require_reader};
use crate::app::AppState;
use crate::auth::TenantRef;
use crate::metrics::{EventMetrics, WatcherGauge};
use crate::rpc::{keyset_page_size, timestamp, traced};

/// `identity.v1.EventService`.
pub(crate) struct EventApi {
    state: Arc<AppState>,
    hub: Arc<Hub>,
}

impl EventApi {
    pub(crate) fn new(state: Arc<AppState>, hub: Arc<Hub>) -> Self {
        EventApi { state, hub }
    }
}

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;

/// How many sequence numbers a watcher reads at once.
const SCAN: u64 = 500;

fn to_proto(row: EventRow, tenant: &TenantRef) -> Event {
    let actor = match row.actor() {
        Actor::Operator => identity_proto::v1::Actor {
            kind: actor::Kind::Operator as i32,
            ..Default::default()
        },
        Actor::Token { id, name, provider } => identity_proto::v1::Actor {
            kind: actor::Kind::Token as i32,
            token_id: id.to_string(),
            token_name: name,
            provider,
        },
    };
    let changes = match &row.changes {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(name, side)| {
                let value = |key: &str| side.get(key).cloned().map(identity_proto::json_to_value);
                (
                    name.clone(),
                    AttributeChange {
                        before: value("before"),
                        after: value("after"),
                    },
                )
            })
            .collect(),
        _ => Default::default(),
    };
    Event {
        tenant: tenant.slug.clone(),
        sequence: row.sequence.max(0) as u64,
        r#type: row.kind() as i32,
        resource_type: row.resource() as i32,
        resource_id: row.resource_id.to_string(),
        actor: Some(actor),
        request_id: row.request_id,
        trace_id: row.trace_id,
        time: Some(timestamp(row.occurred_at)),
        changes,
    }
}

fn event_types(values: &[i32]) -> Result<Vec<EventType>, EventError> {
    values
        .iter()
        .map(|&v| match EventType::try_from(v) {
            Ok(EventType::Unspecified) | Err(_) => {
                Err(EventError::Invalid(format!("unknown event type {v}")))
            }
            Ok(kind) => Ok(kind),
        })
        .collect()
}

fn resource_types(values: &[i32]) -> Result<Vec<ResourceType>, EventError> {
    values
        .iter()
        .map(|&v| match ResourceType::try_from(v) {
            Ok(ResourceType::Unspecified) | Err(_) => {
                Err(EventError::Invalid(format!("unknown resource type {v}")))
            }
            Ok(kind) => Ok(kind),
        })
        .collect()
}

fn optional_id(field: &str, text: &str) -> Result<Option<Uuid>, EventError> {
    if text.is_empty() {
        return Ok(None);
    }
    Uuid::try_parse(text)
        .map(Some)
        .map_err(|_| EventError::Invalid(format!("{field} is not an id: '{text}'")))
}

fn time(
    field: &str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<chrono::Utc>>, EventError> {
    value
        .map(|t| {
            u32::try_from(t.nanos)
                .ok()
                .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
                .ok_or_else(|| EventError::Invalid(format!("{field} is not a valid time")))
        })
        .transpose()
}

const CURSOR_TAG: &str = "after:";

fn encode_cursor(sequence: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_TAG}{sequence}"))
}

/// The sequence a page starts after; an empty token is the first page.
fn decode_cursor(token: &str) -> Result<u64, EventError> {
    if token.is_empty() {
        return Ok(0);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| EventError::Cursor)?;
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.strip_prefix(CURSOR_TAG))
        .and_then(|n| n.parse().ok())
        .ok_or(EventError::Cursor)
}

#[tonic::async_trait]
impl EventService for EventApi {
    type WatchStream = WatchStream;

    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        traced("ListEvents", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.scoped_call(&metadata, &req.tenant).await?;
            require_reader(&caller).map_err(EventError::from)?;
            let resources = if req.resource_type == 0 {
                Vec::new()
            } else {
                resource_types(&[req.resource_type])?
            };
            let selection = Selection {
                types: event_types(&req.types)?,
                resources,
                resource_id: optional_id("resource_id", &req.resource_id)?,
                actor_token_id: optional_id("actor_token_id", &req.actor_token_id)?,
                since: time("start_time", req.start_time)?,
                until: time("end_time", req.end_time)?,
            };
            let size = keyset_page_size(req.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
            let after = decode_cursor(&req.page_token)?;
            // A caller reads its own acknowledged writes.
            store::settle(&mut conn).await.map_err(EventError::from)?;
            let mut rows = store::read(&mut conn, tenant.id, &selection, after, None, size + 1)
                .await
                .map_err(EventError::from)?;
            // A later page whose start was pruned meanwhile would skip events.
            if after > 0 {
                let bounds = store::bounds(&mut conn, tenant.id, &selection)
                    .await
                    .map_err(EventError::from)?;
                if bounds.pruned_after(after) {
                    return Err(EventError::Pruned {
                        after,
                        first: bounds.first_kept(),
                    }
                    .into());
                }
            }
            let more = rows.len() as i64 > size;
            rows.truncate(size as usize);
            let next_page_token = match rows.last() {
                Some(last) if more => encode_cursor(last.sequence.max(0) as u64),
                _ => String::new(),
            };
            Ok(ListEventsResponse {
                events: rows.into_iter().map(|row| to_proto(row, &tenant)).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn watch(&self, request: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        traced("Watch", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.scoped_call(&metadata, &req.tenant).await?;
            require_reader(&caller).map_err(EventError::from)?;
            let selection = Selection {
                types: event_types(&req.types)?,
                resources: resource_types(&req.resource_types)?,
                ..Selection::default()
            };
            // `now` and a replay start after every acknowledged write.
            store::settle(&mut conn).await.map_err(EventError::from)?;
            let bounds = store::bounds(&mut conn, tenant.id, &selection)
                .await
                .map_err(EventError::from)?;
            let position = match req.start {
                None => bounds.first_kept() - 1,
                Some(watch_request::Start::Now(_)) => bounds.newest,
                Some(watch_request::Start::AfterSequence(after)) => {
                    if after > bounds.newest {
                        return Err(EventError::NotReached {
                            after,
                            newest: bounds.newest,
                        }
                        .into());
                    }
                    if bounds.pruned_after(after) {
                        return Err(EventError::Pruned {
                            after,
                            first: bounds.first_kept(),
                        }
                        .into());
                    }
                    after
                }
            };
            // The watch holds neither this connection nor the tenant's slot.
            drop(conn);
            let (events, received) = mpsc::channel(self.hub.limits.buffer.max(1));
            let (close, closed) = oneshot::channel();
            let pump = Pump {
                state: Arc::clone(&self.state),
                metrics: self.hub.metrics.clone(),
                gauge: self.hub.metrics.watcher(),
                newest: bounds.newest,
                notices: self.hub.subscribe(),
                stopping: self.hub.stopping(),
                max_lag: self.hub.limits.max_lag,
                poll_interval: self.hub.limits.poll_interval,
                tenant,
                selection,
                position,
                events,
            };
            tokio::spawn(pump.run(close));
            Ok(WatchStream {
                events: received,
                closed,
                done: false,
            })
        })
        .await
    }
}

/// The events of one watch as the client reads them. A closing status
/// overtakes the events still buffered: the client resumes from the last
/// sequence it received, so skipping them loses nothing.
pub(crate) struct WatchStream {
    events: mpsc::Receiver<Event>,
    closed: oneshot::Receiver<Status>,
    done: bool,
}

impl Stream for WatchStream {
    type Item = Result<Event, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(closing) = Pin::new(&mut self.closed).poll(cx) {
            self.done = true;
            return Poll::Ready(closing.ok().map(Err));
        }
        self.events.poll_recv(cx).map(|event| event.map(Ok))
    }
}

/// Why a pump stopped.
enum End {
    /// The client went away: nobody to tell.
    ClientGone,
    Closed(Status),
}

impl From<EventError> for End {
    fn from(err: EventError) -> Self {
        End::Closed(err.into())
    }
}

/// One watch: reads the tenant's events after `position` and hands them to
/// the client, then waits for news.
struct Pump {
    state: Arc<AppState>,
    metrics: EventMetrics,
    /// This watch in the open watches and their lag, until it ends.
    gauge: WatcherGauge,
    /// The tenant's newest sequence as far as this watch knows.
    newest: u64,
    notices: broadcast::Receiver<super::hub::Notice>,
    stopping: watch::Receiver<bool>,
    max_lag: u64,
    poll_interval: std::time::Duration,
    tenant: TenantRef,
    selection: Selection,
    /// Every event up to here was handed over (or filtered out).
    position: u64,
    events: mpsc::Sender<Event>,
}

impl Pump {
    async fn run(mut self, close: oneshot::Sender<Status>) {
        let end = self.follow().await;
        if let End::Closed(status) = end {
            tracing::debug!(tenant = %self.tenant.slug, code = ?status.code(), "watch closed");
            let _ = close.send(status);
        }
    }

    async fn follow(&mut self) -> End {
        loop {
            if let Err(end) = self.catch_up().await {
                return end;
            }
            if let Err(end) = self.wait_for_news().await {
                return end;
            }
        }
    }

    /// Hands over every selected event up to the tenant's newest; closes
    /// the watch (OUT_OF_RANGE) when events it has not handed over were
    /// pruned.
    async fn catch_up(&mut self) -> Result<(), End> {
        let newest = {
            let mut conn = self
                .state
                .background_conn()
                .await
                .map_err(EventError::from)?;
            store::newest(&mut conn, self.tenant.id)
                .await
                .map_err(EventError::from)?
        };
        self.learn(newest, self.position);
        while self.position < newest {
            let upto = newest.min(self.position + SCAN);
            let rows = {
                let mut conn = self
                    .state
                    .background_conn()
                    .await
                    .map_err(EventError::from)?;
                let rows = store::read(
                    &mut conn,
                    self.tenant.id,
                    &self.selection,
                    self.position,
                    Some(upto),
                    SCAN as i64,
                )
                .await
                .map_err(EventError::from)?;
                // Checked after the read: if no event of the watch's kinds
                // after its position has been pruned by now, the read saw
                // every one of them.
                let bounds = store::bounds(&mut conn, self.tenant.id, &self.selection)
                    .await
                    .map_err(EventError::from)?;
                if bounds.pruned_after(self.position) {
                    return Err(EventError::Pruned {
                        after: self.position,
                        first: bounds.first_kept(),
                    }
                    .into());
                }
                rows
            };
            for row in rows {
                let sequence = row.sequence.max(0) as u64;
                let event = to_proto(row, &self.tenant);
                self.hand_over(event, sequence).await?;
                self.learn(self.newest, sequence);
            }
            self.position = upto;
            self.learn(self.newest, self.position);
        }
        Ok(())
    }

    /// Notes the tenant's `newest` sequence and how far this watch, which
    /// has handed over up to `at`, is behind it.
    fn learn(&mut self, newest: u64, at: u64) {
        self.newest = self.newest.max(newest);
        self.gauge.set_lag(self.newest.saturating_sub(at));
    }

    /// Waits for room in the client's buffer; closes a client that lets the
    /// tenant's events run more than `max_lag` past `sequence`.
    async fn hand_over(&mut self, event: Event, sequence: u64) -> Result<(), End> {
        loop {
            tokio::select! {
                permit = self.events.reserve() => {
                    let permit = permit.map_err(|_| End::ClientGone)?;
                    self.metrics.delivered.inc();
                    permit.send(event);
                    return Ok(());
                }
                notice = self.notices.recv() => {
                    let newest = match notice {
                        Ok(notice) if notice.tenant == self.tenant.id => notice.sequence,
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => {
                            return Err(EventError::ShuttingDown.into());
                        }
                    };
                    // Fields, not `learn`: the reservation borrows `events`.
                    self.newest = self.newest.max(newest);
                    self.gauge.set_lag(self.newest.saturating_sub(sequence.saturating_sub(1)));
                    if newest.saturating_sub(sequence) > self.max_lag {
                        self.metrics.too_slow.inc();
                        return Err(EventError::TooSlow { max_lag: self.max_lag }.into());
                    }
                }
                _ = self.stopping.changed() => return Err(EventError::ShuttingDown.into()),
            }
        }
    }

    /// Returns when the tenant may have a new event: a notice past the
    /// position, missed notices, or the fallback poll's interval.
    async fn wait_for_news(&mut self) -> Result<(), End> {
        let poll = tokio::time::sleep(self.poll_interval);
        tokio::pin!(poll);
        loop {
            if *self.stopping.borrow() {
                return Err(EventError::ShuttingDown.into());
            }
            tokio::select! {
                notice = self.notices.recv() => match notice {
                    Ok(notice) if notice.tenant == self.tenant.id
                        && notice.sequence > self.position => {
                        self.learn(notice.sequence, self.position);
                        return Ok(());
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return Ok(()),
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(EventError::ShuttingDown.into());
                    }
                },
                () = &mut poll => return Ok(()),
                () = self.events.closed() => return Err(End::ClientGone),
                _ = self.stopping.changed() => return Err(EventError::ShuttingDown.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor("").ok(), Some(0));
        assert_eq!(decode_cursor(&encode_cursor(41)).ok(), Some(41));
        assert!(decode_cursor("garbage!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("after:-1")).is_err());
    }

    #[test]
    fn unknown_types_are_refused() {
        assert!(event_types(&[0]).is_err());
        assert!(event_types(&[999]).is_err());
        assert_eq!(
            event_types(&[EventType::UserCreated as i32]).ok(),
            Some(vec![EventType::UserCreated])
        );
        assert!(resource_types(&[0]).is_err());
    }
}
