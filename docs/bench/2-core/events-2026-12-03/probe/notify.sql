BEGIN;
INSERT INTO t (v) VALUES ('x');
SELECT pg_notify('probe', 'x');
COMMIT;
