-- Groups and memberships: one row per (tenant, group, member), so a
-- membership change never rewrites a member list.

CREATE TABLE groups (
    tenant_id    uuid        NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    group_id     uuid        NOT NULL,
    display_name text        NOT NULL,
    external_id  text,
    -- Every other attribute, as sent.
    attributes   jsonb       NOT NULL DEFAULT '{}',
    -- Kept in step with group_members in the same transaction.
    member_count bigint      NOT NULL DEFAULT 0,
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, group_id)
);
-- displayName is unique per tenant, case-insensitively (Entra requires it).
CREATE UNIQUE INDEX groups_display_name_key ON groups (tenant_id, lower(display_name));
CREATE INDEX groups_external_id_idx ON groups (tenant_id, external_id);
CREATE INDEX groups_updated_at_idx ON groups (tenant_id, updated_at);

CREATE TABLE group_members (
    tenant_id uuid        NOT NULL,
    group_id  uuid        NOT NULL,
    user_id   uuid        NOT NULL,
    added_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, group_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
-- A user's groups, and membership cleanup when a user is deleted.
CREATE INDEX group_members_user_idx ON group_members (tenant_id, user_id, group_id);
