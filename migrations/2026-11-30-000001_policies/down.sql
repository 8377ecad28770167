ALTER TABLE groups DROP COLUMN synthetic;
DROP INDEX users_person_idx;
ALTER TABLE users
    DROP COLUMN organizations,
    DROP COLUMN roles,
    DROP COLUMN tenant_member,
    DROP COLUMN source,
    DROP COLUMN login_email,
    DROP COLUMN person_id;
DROP TABLE people;
ALTER TABLE tokens
    DROP COLUMN last_used_at,
    DROP COLUMN scim_override,
    DROP COLUMN provider_display_name,
    DROP COLUMN provider,
    DROP COLUMN scope;
ALTER TABLE tenants DROP COLUMN policy, DROP COLUMN scim_enabled;
