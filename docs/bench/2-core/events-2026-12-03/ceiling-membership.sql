INSERT INTO group_members (tenant_id, group_id, user_id)
VALUES (:tenant, :big, md5('spare' || (:client_id)::text)::uuid);
DELETE FROM group_members
WHERE tenant_id = :tenant AND group_id = :big AND user_id = md5('spare' || (:client_id)::text)::uuid;
