\set n random(0, :users - 101)
SELECT * FROM users
WHERE tenant_id = :tenant AND deleted_at IS NULL
  AND (created_at, user_id) > (timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => (:n)::double precision / 1000),
                               '00000000-0000-0000-0000-000000000000'::uuid)
ORDER BY created_at, user_id
LIMIT 100;
