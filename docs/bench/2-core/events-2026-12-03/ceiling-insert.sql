INSERT INTO users (tenant_id, user_id, user_name, login_email, emails)
VALUES (:tenant, gen_random_uuid(), 'pg-' || gen_random_uuid() || '@example.com', NULL,
        '[{"value": "pg@example.com", "type": "work", "primary": true}]');
