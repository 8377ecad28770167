//! Lifecycle events: what changed in a tenant, who changed it and through
//! which request. Every write records its events in its own transaction
//! ([`store::record`]) as pending, and the [`sequencer`] numbers them per
//! tenant without gaps, in order for each resource; `Watch` replays them
//! and follows new ones ([`hub`] carries Postgres notifications to the
//! watchers), `ListEvents` pages them for audit; [`prune`] deletes them
//! once they are older than the retention.

pub(crate) mod access;
pub(crate) mod hub;
pub(crate) mod prune;
pub(crate) mod sequencer;
pub(crate) mod service;
pub(crate) mod store;

use identity_proto::v1::{EventType, ResourceType};
use serde_json::{Map, Value as Json};
use tonic::metadata::MetadataMap;
use uuid::Uuid;

use crate::auth::{AuthError, Caller};
use crate::db::StoreError;

/// Why an event read failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Invalid(String),
    #[error("invalid page_token")]
    Cursor,
    /// Events after the position asked for, of the kinds the reader
    /// selects, were pruned by retention: the client missed them for good
    /// and must resynchronise.
    #[error(
        "events after sequence {after} are no longer stored (pruned by retention): the \
         tenant's events are kept from sequence {first} on; read the current state again, \
         then watch from there or from now"
    )]
    Pruned { after: u64, first: u64 },
    /// The position asked for is past the tenant's newest event.
    #[error("sequence {after} is past the tenant's newest event ({newest})")]
    NotReached { after: u64, newest: u64 },
    /// The client did not read while the tenant's events ran on.
    #[error(
        "the client reads too slowly: more than {max_lag} events behind; \
         reconnect with after_sequence set to the last sequence received"
    )]
    TooSlow { max_lag: u64 },
    #[error(
        "the service is shutting down; reconnect with after_sequence set to the last sequence \
         received"
    )]
    ShuttingDown,
}

/// Who made a change, as an event records it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Actor {
    Operator,
    Token {
        id: Uuid,
        name: String,
        provider: String,
    },
}

/// Where a write comes from: its actor and the request's ids.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub actor: Actor,
    pub request_id: String,
    pub trace_id: String,
}

/// The longest `x-request-id` kept; a longer one is cut.
const MAX_REQUEST_ID: usize = 128;

impl Origin {
    /// The caller's identity and the request's `x-request-id` and W3C
    /// `traceparent` trace id, when present and well-formed.
    pub(crate) fn of(caller: &Caller, metadata: &MetadataMap) -> Origin {
        let actor = match caller {
            Caller::Operator => Actor::Operator,
            Caller::Tenant {
                token_id,
                token_name,
                provider,
                ..
            } => Actor::Token {
                id: *token_id,
                name: token_name.clone(),
                provider: provider.clone(),
            },
        };
        let text = |key: &str| metadata.get(key).and_then(|v| v.to_str().ok());
        let request_id = text("x-request-id")
            .map(|id| {
                id.trim()
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(MAX_REQUEST_ID)
                    .collect()
            })
            .unwrap_or_default();
        let trace_id = text("traceparent")
            .and_then(trace_id_of)
            .unwrap_or_default();
        Origin {
            actor,
            request_id,
            trace_id,
        }
    }
}

/// The trace id of a `traceparent` header (version-traceid-parentid-flags):
/// 32 lowercase hex digits, not all zero.
fn trace_id_of(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let _version = parts.next()?;
    let trace = parts.next()?;
    let valid = trace.len() == 32
        && trace
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && trace.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_owned())
}

/// Whether the caller may read the tenant's events: the operator and
/// service tokens; an identity provider's SCIM token may not.
pub(crate) fn require_reader(caller: &Caller) -> Result<(), AuthError> {
    if caller.is_scim() {
        return Err(AuthError::Denied(
            "SCIM tokens may not read events: use a service token".into(),
        ));
    }
    Ok(())
}

/// An event before it has its sequence number.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub kind: EventType,
    pub resource: ResourceType,
    pub resource_id: Uuid,
    /// `{"attribute": {"before": …, "after": …}}`.
    pub changes: Map<String, Json>,
}

impl Draft {
    pub(crate) fn new(kind: EventType, resource: ResourceType, resource_id: Uuid) -> Draft {
        Draft {
            kind,
            resource,
            resource_id,
            changes: Map::new(),
        }
    }

    pub(crate) fn with_changes(mut self, changes: Map<String, Json>) -> Draft {
        self.changes = changes;
        self
    }
}

/// The top-level attributes whose values differ between two documents,
/// each as `{"before": …, "after": …}` (a side is absent where the
/// attribute was). `id` is never a change.
pub(crate) fn diff(before: &Map<String, Json>, after: &Map<String, Json>) -> Map<String, Json> {
    let mut changes = Map::new();
    let names = before
        .keys()
        .chain(after.keys().filter(|k| !before.contains_key(*k)));
    for name in names {
        if name == "id" {
            continue;
        }
        let (old, new) = (before.get(name), after.get(name));
        if old != new {
            changes.insert(name.clone(), change(old.cloned(), new.cloned()));
        }
    }
    changes
}

/// One attribute's change.
pub(crate) fn change(before: Option<Json>, after: Option<Json>) -> Json {
    let mut side = Map::new();
    if let Some(before) = before {
        side.insert("before".into(), before);
    }
    if let Some(after) = after {
        side.insert("after".into(), after);
    }
    Json::Object(side)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn diff_names_only_what_changed() {
        let before = object(json!({"id": "1", "userName": "a", "active": true, "title": "x"}));
        let after = object(json!({"id": "2", "userName": "a", "active": false, "nickName": "n"}));
        assert_eq!(
            Json::Object(diff(&before, &after)),
            json!({
                "active": {"before": true, "after": false},
                "title": {"before": "x"},
                "nickName": {"after": "n"},
            })
        );
        assert!(diff(&before, &before).is_empty());
    }

    #[test]
    fn trace_ids() {
        assert_eq!(
            trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id_of("00-XYZ-1-1"), None);
        assert_eq!(trace_id_of("garbage"), None);
    }

    #[test]
    fn request_ids_are_printable_and_bounded() {
        let mut metadata = MetadataMap::new();
        let long = format!("req {}", "x".repeat(400));
        metadata.insert("x-request-id", long.parse().unwrap_or_else(|_| panic!()));
        let origin = Origin::of(&Caller::Operator, &metadata);
        assert_eq!(origin.request_id.len(), MAX_REQUEST_ID);
        assert!(!origin.request_id.contains(' '));
        assert_eq!(origin.actor, Actor::Operator);
        assert_eq!(origin.trace_id, "");
    }
}
