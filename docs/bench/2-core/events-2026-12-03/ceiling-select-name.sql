\set n random(0, :users - 1)
SELECT * FROM users
WHERE tenant_id = :tenant AND lower(user_name) = lower('seed' || (:n)::text || '@example.com')
  AND deleted_at IS NULL;
