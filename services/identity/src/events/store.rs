//! Event rows: recorded inside the writing transaction, read by sequence.
//!
//! # Sequence numbers: gap-free, in commit order
//!
//! [`record`] is the last statement of every writing transaction. It takes
//! the tenant's next numbers by updating the tenant's `event_sequences` row
//! (an upsert, so a tenant's first event makes the row), which keeps that
//! row locked until the transaction ends:
//! - a second writer of the tenant that reaches [`record`] meanwhile waits
//!   on the row lock. When the first commits, the second's UPDATE re-reads
//!   the committed row (READ COMMITTED re-checks the newest version of a
//!   row it waited for) and takes the numbers after the first's; when the
//!   first rolls back, its numbers were never committed and the second
//!   takes them: no gap, no duplicate (the primary key would refuse one).
//! - The first's commit is visible before its row lock is released, and the
//!   second can only commit after taking that lock. So a transaction that
//!   commits sequence n + 1 commits after the one of n, and any snapshot
//!   that sees n + 1 sees n: a reader that follows `sequence > last seen`
//!   never skips a number that is filled in later.
//! - Only the tail of concurrent writers of one tenant is serialised: the
//!   lock is taken by the last statement, and held for the commit alone.
//!   Every other lock a write takes comes before it, so waiting on it closes
//!   no cycle (no deadlock); other tenants never wait.
//!
//! A write that touches many users (a policy change on a large tenant)
//! records its events in one call: statements of up to [`BATCH`] events
//! each, every one taking the numbers after the one before while the first
//! already holds the row lock, so the numbers stay gap-free and the whole
//! call still commits as one.
//!
//! Each statement sends one `pg_notify` on [`CHANNEL`] naming its last
//! sequence (a watcher reads everything up to a notice's sequence), which
//! Postgres delivers at commit and drops on rollback; see [`super::hub`].

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{self, Array, Jsonb, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use identity_proto::v1::{EventType, ResourceType};
use serde_json::Value as Json;
use uuid::Uuid;

use super::{Actor, Draft, Origin};
use crate::db::StoreError;
use crate::schema::{event_sequences, events};

/// The notification channel; the payload is `<tenant id>:<sequence>`.
pub(crate) const CHANNEL: &str = "identity_events";

/// Events inserted by one statement: bounds the arrays one statement binds.
const BATCH: usize = 5_000;

/// `events.actor_kind` values.
const ACTOR_OPERATOR: &str = "operator";
const ACTOR_TOKEN: &str = "token";

/// Records `drafts` in the caller's transaction, numbered in order after the
/// tenant's last event, and notifies watchers at commit. The last
/// statements of the transaction (see the module comment).
pub(crate) async fn record(
    tx: &mut AsyncPgConnection,
    tenant: Uuid,
    origin: &Origin,
    drafts: &[Draft],
) -> Result<(), StoreError> {
    for batch in drafts.chunks(BATCH) {
        insert(tx, tenant, origin, batch).await?;
    }
    Ok(())
}

/// One statement of [`record`]: `drafts` (not empty) numbered after the
/// tenant's last event, and one notice naming the last of them.
async fn insert(
    tx: &mut AsyncPgConnection,
    tenant: Uuid,
    origin: &Origin,
    drafts: &[Draft],
) -> Result<(), StoreError> {
    let types: Vec<&str> = drafts.iter().map(|d| d.kind.as_str_name()).collect();
    let resources: Vec<&str> = drafts.iter().map(|d| d.resource.as_str_name()).collect();
    let ids: Vec<Uuid> = drafts.iter().map(|d| d.resource_id).collect();
    let changes: Vec<Json> = drafts
        .iter()
        .map(|d| Json::Object(d.changes.clone()))
        .collect();
    let (kind, token_id, token_name, provider) = match &origin.actor {
        Actor::Operator => (ACTOR_OPERATOR, None, "", ""),
        Actor::Token { id, name, provider } => {
            (ACTOR_TOKEN, Some(*id), name.as_str(), provider.as_str())
        }
    };
    diesel::sql_query(format!(
        "WITH numbers AS ( \
             INSERT INTO event_sequences (tenant_id, last_sequence) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE \
                 SET last_sequence = event_sequences.last_sequence + excluded.last_sequence \
             RETURNING last_sequence), \
         inserted AS ( \
             INSERT INTO events (tenant_id, sequence, event_type, resource_type, resource_id, \
                 changes, actor_kind, actor_token_id, actor_token_name, actor_provider, \
                 request_id, trace_id) \
             SELECT $1, numbers.last_sequence - $2 + d.n, d.event_type, d.resource_type, \
                 d.resource_id, d.changes, $7, $8, $9, $10, $11, $12 \
             FROM numbers, unnest($3::text[], $4::text[], $5::uuid[], $6::jsonb[]) \
                 WITH ORDINALITY AS d(event_type, resource_type, resource_id, changes, n)) \
         SELECT pg_notify('{CHANNEL}', $1::text || ':' || last_sequence) FROM numbers"
    ))
    .bind::<sql_types::Uuid, _>(tenant)
    .bind::<sql_types::BigInt, _>(drafts.len() as i64)
    .bind::<Array<Text>, _>(&types)
    .bind::<Array<Text>, _>(&resources)
    .bind::<Array<sql_types::Uuid>, _>(&ids)
    .bind::<Array<Jsonb>, _>(&changes)
    .bind::<Text, _>(kind)
    .bind::<sql_types::Nullable<sql_types::Uuid>, _>(token_id)
    .bind::<Text, _>(token_name)
    .bind::<Text, _>(provider)
    .bind::<Text, _>(&origin.request_id)
    .bind::<Text, _>(&origin.trace_id)
    .execute(tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub(crate) struct EventRow {
    pub sequence: i64,
    pub event_type: String,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub actor_kind: String,
    pub actor_token_id: Option<Uuid>,
    pub actor_token_name: String,
    pub actor_provider: String,
    pub request_id: String,
    pub trace_id: String,
    pub occurred_at: DateTime<Utc>,
    pub changes: Json,
}

impl EventRow {
    pub(crate) fn kind(&self) -> EventType {
        EventType::from_str_name(&self.event_type).unwrap_or(EventType::Unspecified)
    }

    pub(crate) fn resource(&self) -> ResourceType {
        ResourceType::from_str_name(&self.resource_type).unwrap_or(ResourceType::Unspecified)
    }

    pub(crate) fn actor(&self) -> Actor {
        match (self.actor_kind.as_str(), self.actor_token_id) {
            (ACTOR_TOKEN, Some(id)) => Actor::Token {
                id,
                name: self.actor_token_name.clone(),
                provider: self.actor_provider.clone(),
            },
            _ => Actor::Operator,
        }
    }
}

/// The tenant's newest committed sequence (0 before its first event). Every
/// event up to it is committed: the counter and its events commit together.
pub(crate) async fn newest(conn: &mut AsyncPgConnection, tenant: Uuid) -> Result<u64, StoreError> {
    let last: Option<i64> = event_sequences::table
        .filter(event_sequences::tenant_id.eq(tenant))
        .select(event_sequences::last_sequence)
        .get_result(conn)
        .await
        .optional()?;
    Ok(last.map_or(0, |n| n.max(0) as u64))
}

/// The tenant's oldest stored sequence; `None` while it has none.
pub(crate) async fn oldest(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
) -> Result<Option<u64>, StoreError> {
    let first: Option<i64> = events::table
        .filter(events::tenant_id.eq(tenant))
        .select(events::sequence)
        .order(events::sequence)
        .first(conn)
        .await
        .optional()?;
    Ok(first.map(|n| n.max(0) as u64))
}

/// What a read keeps; empty lists keep everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    pub types: Vec<EventType>,
    pub resources: Vec<ResourceType>,
    pub resource_id: Option<Uuid>,
    pub actor_token_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Selection {
    fn apply<'a>(&self, mut query: events::BoxedQuery<'a, Pg>) -> events::BoxedQuery<'a, Pg> {
        if !self.types.is_empty() {
            let names: Vec<&'static str> = self.types.iter().map(|t| t.as_str_name()).collect();
            query = query.filter(events::event_type.eq_any(names));
        }
        if !self.resources.is_empty() {
            let names: Vec<&'static str> = self.resources.iter().map(|t| t.as_str_name()).collect();
            query = query.filter(events::resource_type.eq_any(names));
        }
        if let Some(id) = self.resource_id {
            query = query.filter(events::resource_id.eq(id));
        }
        if let Some(id) = self.actor_token_id {
            query = query.filter(events::actor_token_id.eq(id));
        }
        if let Some(since) = self.since {
            query = query.filter(events::occurred_at.ge(since));
        }
        if let Some(until) = self.until {
            query = query.filter(events::occurred_at.lt(until));
        }
        query
    }
}

/// The selected events with `after < sequence <= upto`, in order, at most
/// `limit` of them.
pub(crate) async fn read(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    selection: &Selection,
    after: u64,
    upto: Option<u64>,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let mut query = events::table
        .filter(events::tenant_id.eq(tenant))
        .filter(events::sequence.gt(i64::try_from(after).unwrap_or(i64::MAX)))
        .into_boxed();
    if let Some(upto) = upto {
        query = query.filter(events::sequence.le(i64::try_from(upto).unwrap_or(i64::MAX)));
    }
    Ok(selection
        .apply(query)
        .order(events::sequence)
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)
        .await?)
}
