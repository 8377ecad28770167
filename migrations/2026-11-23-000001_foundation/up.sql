-- Foundation: tenants, their bearer tokens and their users.
-- tenant_id leads every key and index of tenant-owned tables so the store can
-- be sharded by tenant later. `tenants` itself is the directory of tenants.

CREATE TABLE tenants (
    tenant_id    uuid        PRIMARY KEY,
    slug         text        NOT NULL,
    display_name text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug);

-- Only the SHA-256 of a token is stored. The token text embeds its tenant id,
-- so a lookup is one probe of (tenant_id, token_hash).
CREATE TABLE tokens (
    tenant_id  uuid        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    token_id   uuid        NOT NULL,
    name       text        NOT NULL,
    prefix     text        NOT NULL,
    token_hash bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, token_id)
);
CREATE UNIQUE INDEX tokens_hash_key ON tokens (tenant_id, token_hash);
CREATE UNIQUE INDEX tokens_live_name_key ON tokens (tenant_id, name) WHERE revoked_at IS NULL;

CREATE TABLE users (
    tenant_id        uuid        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    user_id          uuid        NOT NULL,
    user_name        text        NOT NULL,
    external_id      text,
    display_name     text,
    name_formatted   text,
    family_name      text,
    given_name       text,
    middle_name      text,
    honorific_prefix text,
    honorific_suffix text,
    -- [{"value", "type", "primary", "display"}], in the order sent.
    emails           jsonb       NOT NULL DEFAULT '[]',
    active           boolean     NOT NULL DEFAULT true,
    employee_number  text,
    cost_center      text,
    organization     text,
    division         text,
    department       text,
    manager_id       uuid,
    -- Every other attribute, as sent.
    attributes       jsonb       NOT NULL DEFAULT '{}',
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    PRIMARY KEY (tenant_id, user_id)
);
-- userName is unique per tenant, case-insensitively, among users not deleted.
CREATE UNIQUE INDEX users_live_user_name_key ON users (tenant_id, lower(user_name)) WHERE deleted_at IS NULL;
CREATE INDEX users_external_id_idx ON users (tenant_id, external_id);
CREATE INDEX users_updated_at_idx ON users (tenant_id, updated_at);
