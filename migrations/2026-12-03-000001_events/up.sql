-- Lifecycle events: a transactional outbox, one row per change. A write
-- inserts its events into pending_events with a provisional number; the
-- sequencer then moves them into events, numbered per tenant without gaps
-- (see services/identity/src/events/store.rs).
--
-- No table here references tenants. An event outlives what it names, and
-- the write that records one already holds its tenant (its own rows
-- reference it, or it is the tenant row); nothing deletes a tenant. A key
-- would cost every event a check on the way in and another on the way
-- into events, for a guarantee the writes give already.
--
-- changes is json, not jsonb: it is written once, copied once, and only
-- ever read back whole as text, never queried inside.

-- The last sequence number each tenant gave out; only the sequencer writes it.
CREATE TABLE event_sequences (
    tenant_id     uuid   PRIMARY KEY,
    last_sequence bigint NOT NULL CHECK (last_sequence >= 0)
);

CREATE TABLE events (
    tenant_id        uuid        NOT NULL,
    sequence         bigint      NOT NULL CHECK (sequence > 0),
    event_type       text        NOT NULL,
    resource_type    text        NOT NULL,
    resource_id      uuid        NOT NULL,
    -- 'operator', or 'token' with the token's id, name and provider as they
    -- were: an event outlives what it names.
    actor_kind       text        NOT NULL CHECK (actor_kind IN ('operator', 'token')),
    actor_token_id   uuid,
    actor_token_name text        NOT NULL DEFAULT '',
    actor_provider   text        NOT NULL DEFAULT '',
    request_id       text        NOT NULL DEFAULT '',
    trace_id         text        NOT NULL DEFAULT '',
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    -- {"attribute": {"before": ..., "after": ...}}, never a secret.
    changes          json        NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, sequence)
);

-- Audit by resource and by actor, in sequence order.
CREATE INDEX events_resource_idx ON events (tenant_id, resource_id, sequence);
CREATE INDEX events_actor_idx ON events (tenant_id, actor_token_id, sequence);

-- What retention pruned, by kind: per tenant, event type and resource type,
-- the last pruned sequence. A reader filtered by kind lost its place only if
-- an event of its kind after its position was pruned, so a watcher whose
-- kind is rare keeps its place through retention periods without a match.
-- The pruner writes it in the statement that deletes the events.
CREATE TABLE event_prune_marks (
    tenant_id     uuid   NOT NULL,
    event_type    text   NOT NULL,
    resource_type text   NOT NULL,
    last_pruned   bigint NOT NULL CHECK (last_pruned > 0),
    PRIMARY KEY (tenant_id, event_type, resource_type)
);

-- Events written and not yet numbered: a small table whatever the size of
-- events, which only ever gains numbered rows. Its rows live for
-- milliseconds; vacuuming it often (the sequencer also does) keeps the
-- sequencer's look at the oldest ones short.
CREATE TABLE pending_events (
    -- The event's place among the pending ones, taken as it is inserted.
    pending_id       bigint      PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    event_type       text        NOT NULL,
    resource_type    text        NOT NULL,
    resource_id      uuid        NOT NULL,
    actor_kind       text        NOT NULL CHECK (actor_kind IN ('operator', 'token')),
    actor_token_id   uuid,
    actor_token_name text        NOT NULL DEFAULT '',
    actor_provider   text        NOT NULL DEFAULT '',
    request_id       text        NOT NULL DEFAULT '',
    trace_id         text        NOT NULL DEFAULT '',
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    changes          json        NOT NULL DEFAULT '{}'
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

CREATE SEQUENCE events_pending OWNED BY pending_events.pending_id;
