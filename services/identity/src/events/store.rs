//! Event rows: recorded inside the writing transaction, numbered soon after
//! by the sequencer, read by sequence.
//!
//! # Sequence numbers: gap-free, and in order for each resource
//!
//! [`record`] is the last statement of every writing transaction. It
//! inserts the events into `pending_events` with a provisional number (the
//! next value of the `events_pending` Postgres sequence) and touches no
//! shared row: writers of one tenant never wait on one another's commits.
//! Change and events still commit or roll back together.
//!
//! The sequencer ([`super::sequencer`], see [`sequence_round`]) then moves
//! the committed pending rows into `events` with their final numbers (so
//! `events` only ever gains rows, and a reader never meets a pending one):
//! in short rounds under
//! one advisory lock (replicas take turns), each numbering up to
//! [`ROUND`] rows, each tenant's from its `event_sequences.last_sequence +
//! 1` in provisional order. Why the order is right:
//! - a provisional number is taken as the event row is inserted, at the
//!   end of the write. Two writes of one resource are serialised by the
//!   resource's row lock, so the later one takes its provisional number
//!   after the earlier one committed: a greater provisional number, hence a
//!   greater final sequence. (Writes of different resources have no order
//!   of their own to keep. Two writes that change one user's access
//!   through different groups lock neither the user nor each other's
//!   group: their ACCESS_CHANGED events are in commit order when a round
//!   ran between the commits, else in provisional order.)
//! - A round only sees committed rows, numbers them in its own transaction
//!   and commits them all at once, after the previous round committed. So
//!   a reader following `sequence > last seen` never sees a number filled in later: no gap, no duplicate (the
//!   primary key would refuse one), on any replica. A pending row of a
//!   transaction still in flight is simply numbered in a later round; one
//!   of a transaction that rolls back never existed.
//! - A service killed between a write's commit and its round loses
//!   nothing: the pending rows are committed, and the next round (of any
//!   replica's poll, or at start-up) numbers them.
//!
//! A write that touches many users (a policy change on a large tenant)
//! records its events in statements of up to [`BATCH`] events each; their
//! provisional numbers follow the order of the drafts.
//!
//! Writers send no notification: a `NOTIFY` serialises every notifying
//! transaction of the database through its commit (Postgres holds a
//! database-wide lock from pre-commit to the end of the commit's flush),
//! which would undo what the provisional numbers win. The sequencers poll
//! for pending rows instead (one probe of a small table, which they vacuum
//! often so that the probe stays short); each round sends one
//! `pg_notify` on [`CHANNEL`] per tenant, naming its last sequence (a
//! watcher reads everything up to a notice's sequence); see [`super::hub`].

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{self, Array, Json as SqlJson, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use identity_proto::v1::{EventType, ResourceType};
use serde_json::Value as Json;
use uuid::Uuid;

use super::{Actor, Draft, Origin};
use crate::db::StoreError;
use crate::schema::{event_sequences, events};

/// The notification channel of numbered events; the payload is
/// `<tenant id>:<sequence>`.
pub(crate) const CHANNEL: &str = "identity_events";

/// Events inserted by one statement: bounds the arrays one statement binds.
const BATCH: usize = 5_000;

/// `events.actor_kind` values.
const ACTOR_OPERATOR: &str = "operator";
const ACTOR_TOKEN: &str = "token";

/// Records `drafts` in the caller's transaction as pending events, in
/// order. The last statements of the transaction (see the module comment).
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

/// One statement of [`record`]: `drafts` (not empty) inserted with
/// provisional numbers in their order.
async fn insert(
    tx: &mut AsyncPgConnection,
    tenant: Uuid,
    origin: &Origin,
    drafts: &[Draft],
) -> Result<(), StoreError> {
    RecordEvents::new(tenant, origin, drafts)
        .execute(tx)
        .await?;
    Ok(())
}

/// The statement of [`insert`], a type of its own so that each connection
/// prepares it once (a `sql_query` is planned anew on every call, and this
/// one runs in every write). A write that is one statement makes it one of
/// its own statement's parts instead ([`RecordEvents::walk_insert`]).
pub(crate) struct RecordEvents<'a> {
    tenant: Uuid,
    types: Vec<&'a str>,
    resources: Vec<&'a str>,
    ids: Vec<Uuid>,
    changes: Vec<Json>,
    kind: &'a str,
    token_id: Option<Uuid>,
    token_name: &'a str,
    provider: &'a str,
    request_id: &'a str,
    trace_id: &'a str,
}

impl<'a> RecordEvents<'a> {
    /// The insert of `drafts` (not more than [`BATCH`]).
    pub(crate) fn new(tenant: Uuid, origin: &'a Origin, drafts: &[Draft]) -> Self {
        let (kind, token_id, token_name, provider) = match &origin.actor {
            Actor::Operator => (ACTOR_OPERATOR, None, "", ""),
            Actor::Token { id, name, provider } => {
                (ACTOR_TOKEN, Some(*id), name.as_str(), provider.as_str())
            }
        };
        RecordEvents {
            tenant,
            types: drafts.iter().map(|d| d.kind.as_str_name()).collect(),
            resources: drafts.iter().map(|d| d.resource.as_str_name()).collect(),
            ids: drafts.iter().map(|d| d.resource_id).collect(),
            changes: drafts
                .iter()
                .map(|d| Json::Object(d.changes.clone()))
                .collect(),
            kind,
            token_id,
            token_name,
            provider,
            request_id: &origin.request_id,
            trace_id: &origin.trace_id,
        }
    }

    /// The insert's SQL, inserting nothing unless `only_if` (an SQL
    /// condition; `"true"` for always) holds: a statement that writes a
    /// resource and its events at once makes them depend on its write.
    pub(crate) fn walk_insert<'b>(
        &'b self,
        mut out: AstPass<'_, 'b, Pg>,
        only_if: &str,
    ) -> QueryResult<()> {
        use sql_types::{Nullable, Uuid as SqlUuid};
        out.push_sql(
            "INSERT INTO pending_events (tenant_id, pending_id, event_type, resource_type, \
             resource_id, changes, actor_kind, actor_token_id, actor_token_name, actor_provider, \
             request_id, trace_id) SELECT ",
        );
        out.push_bind_param::<SqlUuid, _>(&self.tenant)?;
        // Evaluated after the ORDER BY (a volatile expression is), so the
        // provisional numbers follow the drafts.
        out.push_sql(
            ", nextval('events_pending'), d.event_type, d.resource_type, d.resource_id, \
             d.changes, ",
        );
        out.push_bind_param::<Text, _>(&self.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&self.token_id)?;
        for text in [
            &self.token_name,
            &self.provider,
            &self.request_id,
            &self.trace_id,
        ] {
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(text)?;
        }
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.types)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.resources)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.ids)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<SqlJson>, _>(&self.changes)?;
        out.push_sql(
            "::json[]) WITH ORDINALITY AS d(event_type, resource_type, resource_id, changes, n) \
             WHERE ",
        );
        out.push_sql(only_if);
        out.push_sql(" ORDER BY d.n");
        Ok(())
    }
}

impl QueryId for RecordEvents<'_> {
    type QueryId = RecordEvents<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for RecordEvents<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk_insert(out, "true")
    }
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

/// What the tenant's stored events span, and what of them a reader's kinds
/// of event lost to pruning, read in one snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    /// The newest committed sequence (0 before the first event). Every
    /// event up to it was committed: the counter and its events commit
    /// together, and `event_sequences` is never pruned.
    pub newest: u64,
    /// The oldest stored sequence; `None` when none is stored (none made
    /// yet, or all pruned).
    pub oldest: Option<u64>,
    /// The last pruned sequence of an event the reader selects by kind
    /// (event type and resource type); 0 when none was pruned.
    pub last_pruned: u64,
}

impl Bounds {
    /// The first sequence a reader can still be given.
    pub(crate) fn first_kept(&self) -> u64 {
        self.oldest.unwrap_or(self.newest + 1)
    }

    /// Whether events after `after` of the reader's kinds were pruned,
    /// which a reader that has handed over everything up to `after` would
    /// miss. Events of other kinds it would have skipped anyway: a watcher
    /// of a rare kind keeps its place however long it waits for one.
    pub(crate) fn pruned_after(&self, after: u64) -> bool {
        self.last_pruned > after
    }
}

crate::db::prepared_statement!(
    /// The query of [`bounds`]: index probes in one statement, so one
    /// snapshot; empty lists select every kind.
    BoundsOf<'a> -> (
        sql_types::Nullable<sql_types::BigInt>,
        sql_types::Nullable<sql_types::BigInt>,
        sql_types::Nullable<sql_types::BigInt>,
    ) {
        tenant: Uuid as sql_types::Uuid,
        types: &'a [&'static str] as Array<Text>,
        resources: &'a [&'static str] as Array<Text>,
    }
    [
        "SELECT (SELECT last_sequence FROM event_sequences WHERE tenant_id = r.tenant_id), \
                (SELECT sequence FROM events WHERE tenant_id = r.tenant_id \
                 ORDER BY sequence LIMIT 1), \
                (SELECT max(last_pruned) FROM event_prune_marks WHERE tenant_id = r.tenant_id \
                 AND (cardinality(r.types) = 0 OR event_type = ANY (r.types)) \
                 AND (cardinality(r.resources) = 0 OR resource_type = ANY (r.resources))) \
         FROM (SELECT ",
        "::uuid AS tenant_id, ",
        "::text[] AS types, ",
        "::text[] AS resources) AS r",
    ]
);

/// The tenant's [`Bounds`] for a reader of `selection`. Pruning marks are
/// kept by kind only, so a reader that selects by more (a resource, an
/// actor, a time range) is told about every pruned event of its kinds:
/// more than it would have read, never less.
pub(crate) async fn bounds(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    selection: &Selection,
) -> Result<Bounds, StoreError> {
    let types = selection.type_names();
    let resources = selection.resource_names();
    let (newest, oldest, last_pruned): (Option<i64>, Option<i64>, Option<i64>) = BoundsOf {
        tenant,
        types: &types,
        resources: &resources,
    }
    .get_result(conn)
    .await?;
    let sequence = |n: i64| n.max(0) as u64;
    Ok(Bounds {
        newest: newest.map_or(0, sequence),
        oldest: oldest.map(sequence),
        last_pruned: last_pruned.map_or(0, sequence),
    })
}

/// The tenant's newest committed sequence (0 before its first event).
pub(crate) async fn newest(conn: &mut AsyncPgConnection, tenant: Uuid) -> Result<u64, StoreError> {
    let last: Option<i64> = event_sequences::table
        .filter(event_sequences::tenant_id.eq(tenant))
        .select(event_sequences::last_sequence)
        .get_result(conn)
        .await
        .optional()?;
    Ok(last.map_or(0, |n| n.max(0) as u64))
}

/// Serialises sequencer rounds across replicas (see [`sequence_round`]).
const SEQUENCE_LOCK_KEY: i64 = 0x0069_646c_5f65_7673;

/// Pending rows one round numbers at most: a short transaction whatever
/// the backlog.
pub(crate) const ROUND: i64 = 5_000;

/// One sequencer round, its own transaction: waits for the other
/// replicas' rounds, then numbers up to [`ROUND`] committed pending events
/// in provisional order, each tenant's after its last sequence, and
/// notifies watchers of each tenant's new last sequence at commit. The
/// events it numbered; fewer than [`ROUND`] means none was left (save
/// those of transactions still in flight).
pub(crate) async fn sequence_round(conn: &mut AsyncPgConnection) -> Result<u64, StoreError> {
    use diesel_async::AsyncConnection;

    conn.transaction(async |tx| {
        // A statement of its own, before the numbering's: a snapshot taken
        // before the lock was granted could still see as pending the rows
        // the previous holder numbered, and count them again.
        TakeSequenceLock.execute(tx).await?;
        let tenants: Vec<(i64, String)> = NumberPending.load(tx).await?;
        Ok(tenants
            .iter()
            .map(|(taken, _)| taken.max(&0).unsigned_abs())
            .sum())
    })
    .await
}

/// Numbers every event committed before the call (rounds until none is
/// left), so that a read that follows sees every write acknowledged before
/// it, and says how many it numbered. Nothing to do, which is one probe of
/// the pending table, is the common case.
pub(crate) async fn settle(conn: &mut AsyncPgConnection) -> Result<u64, StoreError> {
    let pending: bool = AnyPending.get_result(conn).await?;
    let mut numbered = 0;
    if pending {
        loop {
            let round = sequence_round(conn).await?;
            numbered += round;
            if round < ROUND as u64 {
                break;
            }
        }
    }
    Ok(numbered)
}

// The sequencer's statements run in every round; planning the numbering
// anew cost more than running it (see `db::prepared_statement`).

crate::db::prepared_statement!(
    /// Waits for the other replicas' rounds (blocking: a replica that
    /// skipped its turn could miss an event committed during another's).
    TakeSequenceLock -> sql_types::Bool
    [&format!("SELECT pg_advisory_xact_lock({SEQUENCE_LOCK_KEY}) IS NOT NULL")]
);

crate::db::prepared_statement!(
    /// Whether any event is pending: one probe of a small table.
    AnyPending -> sql_types::Bool
    ["SELECT EXISTS (SELECT 1 FROM pending_events)"]
);

crate::db::prepared_statement!(
    /// The numbering of one round: moves the oldest pending events into
    /// `events` with their final numbers; per tenant, its count and the
    /// notification sent.
    NumberPending -> (sql_types::BigInt, Text)
    [&format!(
        "WITH pending AS ( \
             DELETE FROM pending_events WHERE pending_id IN ( \
                 SELECT pending_id FROM pending_events ORDER BY pending_id LIMIT {ROUND}) \
             RETURNING *), \
         numbered AS ( \
             SELECT p.*, row_number() OVER (PARTITION BY tenant_id ORDER BY pending_id) AS n \
             FROM pending p), \
         counts AS (SELECT tenant_id, count(*) AS taken FROM pending GROUP BY tenant_id), \
         bumped AS ( \
             INSERT INTO event_sequences (tenant_id, last_sequence) \
             SELECT tenant_id, taken FROM counts \
             ON CONFLICT (tenant_id) DO UPDATE \
             SET last_sequence = event_sequences.last_sequence + excluded.last_sequence \
             RETURNING tenant_id, last_sequence), \
         moved AS ( \
             INSERT INTO events (tenant_id, sequence, event_type, resource_type, resource_id, \
                 actor_kind, actor_token_id, actor_token_name, actor_provider, request_id, \
                 trace_id, occurred_at, changes) \
             SELECT n.tenant_id, b.last_sequence - c.taken + n.n, n.event_type, \
                 n.resource_type, n.resource_id, n.actor_kind, n.actor_token_id, \
                 n.actor_token_name, n.actor_provider, n.request_id, n.trace_id, \
                 n.occurred_at, n.changes \
             FROM numbered n JOIN counts c USING (tenant_id) JOIN bumped b USING (tenant_id) \
             RETURNING 1) \
         SELECT c.taken, \
                pg_notify('{CHANNEL}', b.tenant_id::text || ':' || b.last_sequence)::text \
         FROM bumped b JOIN counts c USING (tenant_id)"
    )]
);

/// Clears the pending table's dead rows and index entries: each round
/// leaves those of the rows it moved, and the sequencer's look walks them
/// until a vacuum. Skipped while another replica vacuums it; outside any
/// transaction (the simple protocol: VACUUM is not a statement to prepare).
pub(crate) async fn vacuum_pending(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    use diesel_async::SimpleAsyncConnection;

    conn.batch_execute("VACUUM (SKIP_LOCKED) pending_events")
        .await?;
    Ok(())
}

/// Serialises pruners: one replica at a time prunes, the others skip the
/// round. Taken per batch transaction, so no pooled connection keeps it.
const PRUNE_LOCK_KEY: i64 = 0x0069_646c_5f65_7670;

#[derive(QueryableByName)]
struct TenantRow {
    #[diesel(sql_type = sql_types::Uuid)]
    tenant_id: Uuid,
}

/// The tenants whose oldest stored event is older than `retention`: one
/// probe of the primary key per tenant that ever had an event.
pub(crate) async fn tenants_to_prune(
    conn: &mut AsyncPgConnection,
    retention: std::time::Duration,
) -> Result<Vec<Uuid>, StoreError> {
    let rows: Vec<TenantRow> = diesel::sql_query(
        "SELECT s.tenant_id FROM event_sequences s \
         CROSS JOIN LATERAL (SELECT occurred_at FROM events e WHERE e.tenant_id = s.tenant_id \
                             ORDER BY e.sequence LIMIT 1) first \
         WHERE first.occurred_at < now() - $1 * interval '1 millisecond'",
    )
    .bind::<sql_types::BigInt, _>(millis(retention))
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|row| row.tenant_id).collect())
}

/// Deletes at most `batch` of the tenant's oldest numbered events, those before its
/// oldest event within `retention`: always a prefix of its sequence
/// (`occurred_at`, the writing transaction's start, is not quite in commit
/// order). The same statement raises each deleted kind's mark in
/// `event_prune_marks`, from which [`Bounds::pruned_after`] tells what a
/// reader missed. Its own short transaction; it locks only the rows it
/// deletes and the marks, never `event_sequences`, so writers never wait
/// on it. `None` when another replica is pruning.
pub(crate) async fn prune(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    retention: std::time::Duration,
    batch: i64,
) -> Result<Option<u64>, StoreError> {
    use diesel_async::AsyncConnection;

    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = sql_types::Bool)]
        locked: bool,
    }

    #[derive(QueryableByName)]
    struct Deleted {
        #[diesel(sql_type = sql_types::BigInt)]
        deleted: i64,
    }

    conn.transaction(async |tx| {
        let lock: Locked = diesel::sql_query(format!(
            "SELECT pg_try_advisory_xact_lock({PRUNE_LOCK_KEY}) AS locked"
        ))
        .get_result(tx)
        .await?;
        if !lock.locked {
            return Ok(None);
        }
        let deleted: Deleted = diesel::sql_query(
            "WITH head AS ( \
                 SELECT sequence, occurred_at FROM events WHERE tenant_id = $1 \
                 ORDER BY sequence LIMIT $2), \
             boundary AS ( \
                 SELECT coalesce( \
                     min(sequence) FILTER ( \
                         WHERE occurred_at >= now() - $3 * interval '1 millisecond'), \
                     max(sequence) + 1) AS below \
                 FROM head), \
             gone AS ( \
                 DELETE FROM events USING boundary \
                 WHERE events.tenant_id = $1 AND events.sequence < boundary.below \
                 RETURNING events.event_type, events.resource_type, events.sequence), \
             marked AS ( \
                 INSERT INTO event_prune_marks \
                     (tenant_id, event_type, resource_type, last_pruned) \
                 SELECT $1, event_type, resource_type, max(sequence) FROM gone \
                 GROUP BY event_type, resource_type \
                 ON CONFLICT (tenant_id, event_type, resource_type) DO UPDATE \
                 SET last_pruned = greatest(event_prune_marks.last_pruned, \
                                            excluded.last_pruned)) \
             SELECT count(*) AS deleted FROM gone",
        )
        .bind::<sql_types::Uuid, _>(tenant)
        .bind::<sql_types::BigInt, _>(batch)
        .bind::<sql_types::BigInt, _>(millis(retention))
        .get_result(tx)
        .await?;
        Ok(Some(deleted.deleted.max(0) as u64))
    })
    .await
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
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
    fn type_names(&self) -> Vec<&'static str> {
        self.types.iter().map(|t| t.as_str_name()).collect()
    }

    fn resource_names(&self) -> Vec<&'static str> {
        self.resources.iter().map(|t| t.as_str_name()).collect()
    }

    fn apply<'a>(&self, mut query: events::BoxedQuery<'a, Pg>) -> events::BoxedQuery<'a, Pg> {
        if !self.types.is_empty() {
            query = query.filter(events::event_type.eq_any(self.type_names()));
        }
        if !self.resources.is_empty() {
            query = query.filter(events::resource_type.eq_any(self.resource_names()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_tell_missed_events_by_the_readers_kinds() {
        // Events 1-3 pruned; the last of the reader's kinds among them was 2.
        let some = Bounds {
            newest: 10,
            oldest: Some(4),
            last_pruned: 2,
        };
        assert_eq!(some.first_kept(), 4);
        assert!(some.pruned_after(0));
        assert!(some.pruned_after(1));
        assert!(!some.pruned_after(2), "3, pruned, was of another kind");
        assert!(!some.pruned_after(10));
        // Every event pruned, the newest of the reader's kinds among them.
        let none = Bounds {
            newest: 10,
            oldest: None,
            last_pruned: 10,
        };
        assert_eq!(none.first_kept(), 11);
        assert!(none.pruned_after(9));
        assert!(!none.pruned_after(10));
        // No event yet: nothing was missed.
        let fresh = Bounds {
            newest: 0,
            oldest: None,
            last_pruned: 0,
        };
        assert!(!fresh.pruned_after(0));
    }
}
