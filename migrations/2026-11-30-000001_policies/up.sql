-- Tenant administration and provisioning policies.

-- SCIM can be switched off per tenant; the policy is one document so a new
-- rule needs no migration. Its absent keys mean the default behaviour.
ALTER TABLE tenants
    ADD COLUMN scim_enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN policy       jsonb   NOT NULL DEFAULT '{}';

-- scope 'scim' tokens are an identity provider's (the SCIM path, revoked
-- when SCIM is disabled); 'service' tokens are internal callers'.
ALTER TABLE tokens
    ADD COLUMN scope                 text        NOT NULL DEFAULT 'scim'
        CHECK (scope IN ('scim', 'service')),
    ADD COLUMN provider              text        NOT NULL DEFAULT '',
    ADD COLUMN provider_display_name text        NOT NULL DEFAULT '',
    ADD COLUMN scim_override         boolean     NOT NULL DEFAULT false,
    -- Written at most once a minute per token, never once per request.
    ADD COLUMN last_used_at          timestamptz;

-- A person is one human across tenants, known by the address they sign in
-- with (lowercased). A user row is the person's membership of one tenant.
CREATE TABLE people (
    person_id  uuid        PRIMARY KEY,
    email      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX people_email_key ON people (email);

ALTER TABLE users
    ADD COLUMN person_id     uuid REFERENCES people (person_id),
    ADD COLUMN login_email   text,
    -- 'scim' when an identity provider created the user, 'direct' otherwise.
    ADD COLUMN source        text    NOT NULL DEFAULT 'scim'
        CHECK (source IN ('scim', 'direct')),
    -- false once deprovisioning removed the user from the tenant.
    ADD COLUMN tenant_member boolean NOT NULL DEFAULT true,
    -- Given directly (the tenant's defaults at creation); group mappings add more.
    ADD COLUMN roles         text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN organizations text[]  NOT NULL DEFAULT '{}';
-- The other memberships of a person (claim protection).
CREATE INDEX users_person_idx ON users (person_id, tenant_id);

UPDATE users SET login_email = lower(user_name) WHERE deleted_at IS NULL;
INSERT INTO people (person_id, email)
    SELECT gen_random_uuid(), login_email
    FROM (SELECT DISTINCT login_email FROM users WHERE login_email IS NOT NULL) AS emails;
UPDATE users SET person_id = people.person_id
    FROM people WHERE people.email = users.login_email;

-- `Admins` and `Users` when the tenant keeps synthetic groups.
ALTER TABLE groups ADD COLUMN synthetic boolean NOT NULL DEFAULT false;
