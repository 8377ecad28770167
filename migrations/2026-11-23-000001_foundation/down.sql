DROP TABLE users;
DROP TABLE tokens;
DROP TABLE tenants;
