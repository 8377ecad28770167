\set n random(0, :users - 1)
SELECT * FROM users WHERE tenant_id = :tenant AND user_id = md5('seed' || (:n)::text)::uuid;
