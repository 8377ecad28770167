-- Sorting and keyset pagination of ListUsers/ListGroups, and filters on the
-- attributes kept in the `attributes` document.
--
-- A keyset page reads `(key, id) > ($key, $id)` in `key, id` order: an index
-- on (tenant_id, key, id) makes that one range scan, so a deep page costs
-- what the first does. Keys without such an index still sort correctly, at
-- the cost of a sort of the matching rows.

-- Creation order: the default order of every list.
CREATE INDEX users_created_at_idx ON users (tenant_id, created_at, user_id);
CREATE INDEX groups_created_at_idx ON groups (tenant_id, created_at, group_id);

-- meta.lastModified, as a filter (delta syncs) and as a sort key.
DROP INDEX users_updated_at_idx;
CREATE INDEX users_updated_at_idx ON users (tenant_id, updated_at, user_id);
DROP INDEX groups_updated_at_idx;
CREATE INDEX groups_updated_at_idx ON groups (tenant_id, updated_at, group_id);

-- userName and displayName sort case-insensitively; the unique indexes on
-- lower(...) only cover live users and lack the id tie-breaker.
CREATE INDEX users_user_name_sort_idx ON users (tenant_id, lower(user_name), user_id);
CREATE INDEX users_display_name_idx ON users (tenant_id, lower(display_name), user_id);

-- The document attributes filtered on most: exact (case-insensitive)
-- matches and sorting. The expressions are the ones the filter compiler
-- emits for them.
CREATE INDEX users_title_idx ON users (tenant_id, lower(attributes ->> 'title'), user_id);
CREATE INDEX users_user_type_idx ON users (tenant_id, lower(attributes ->> 'userType'), user_id);
