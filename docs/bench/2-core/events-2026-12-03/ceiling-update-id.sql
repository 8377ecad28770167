\set n random(0, :users - 1)
UPDATE users SET active = false, version = version + 1, updated_at = now()
WHERE tenant_id = :tenant AND user_id = md5('seed' || (:n)::text)::uuid;
UPDATE users SET active = true, version = version + 1, updated_at = now()
WHERE tenant_id = :tenant AND user_id = md5('seed' || (:n)::text)::uuid;
