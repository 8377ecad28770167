//! The schema keeps the way to sharding by tenant open (docs/scaling.md, "Past
//! one database"): on Citus, `tenant_id` is the distribution column of every
//! tenant table, which asks of each such table that
//! - its primary key and every unique index start with `tenant_id` (a unique
//!   index is only enforceable on one shard when it holds the distribution
//!   column; leading with it also keeps each lookup on one shard);
//! - every foreign key to another tenant table includes `tenant_id = tenant_id`
//!   (co-located rows only);
//! - no table outside the rule (a reference or local table) has a foreign key
//!   into a tenant table, which Citus refuses.
//!
//! The tables outside the rule are named in [`NOT_BY_TENANT`], each with why.
//! A migration that breaks the rule fails here.

use identity_test_db::TestDatabase;
use tokio_postgres::{Client, NoTls};

/// Tables not distributed by tenant, each with the reason.
const NOT_BY_TENANT: &[(&str, &str)] = &[
    (
        "__diesel_schema_migrations",
        "diesel's record of applied migrations: a local table of the coordinator",
    ),
    (
        "tenants",
        "the tenants themselves: a reference table copied to every node; \
         its slug is unique across all tenants",
    ),
    (
        "people",
        "one human across tenants, unique by email: the table that blocks \
         sharding today (a reference table, or a redesign; docs/scaling.md)",
    ),
    (
        "pending_events",
        "events for milliseconds between their write's commit and the sequencer's \
         round, in one provisional order across tenants; sharded, each node \
         would keep its own queue and sequencer",
    ),
];

/// Every table of the current schema and whether it has a primary key.
const TABLES: &str = "
    SELECT c.relname::text,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    ORDER BY 1";

/// Every unique index (primary keys included) with its first key column;
/// NULL when that is an expression.
const UNIQUE_INDEXES: &str = "
    SELECT t.relname::text, x.relname::text, i.indisprimary, a.attname::text
    FROM pg_index i
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_class x ON x.oid = i.indexrelid
    LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
    WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p') AND i.indisunique
    ORDER BY 1, 2";

/// Every foreign key with its column pairs, as `column=referenced_column`.
const FOREIGN_KEYS: &str = "
    SELECT src.relname::text, c.conname::text, dst.relname::text,
           array(SELECT sa.attname::text || '=' || da.attname::text
                 FROM unnest(c.conkey, c.confkey) AS k(src_col, dst_col)
                 JOIN pg_attribute sa ON sa.attrelid = c.conrelid AND sa.attnum = k.src_col
                 JOIN pg_attribute da ON da.attrelid = c.confrelid AND da.attnum = k.dst_col)
    FROM pg_constraint c
    JOIN pg_class src ON src.oid = c.conrelid
    JOIN pg_class dst ON dst.oid = c.confrelid
    JOIN pg_namespace n ON n.oid = src.relnamespace
    WHERE c.contype = 'f' AND n.nspname = current_schema()
    ORDER BY 1, 2";

fn by_tenant(table: &str) -> bool {
    !NOT_BY_TENANT.iter().any(|(name, _)| *name == table)
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
    tokio::spawn(connection);
    client
}

async fn query(client: &Client, sql: &str) -> Vec<tokio_postgres::Row> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
}

/// Every table of the schema.
async fn tables(client: &Client) -> Vec<String> {
    query(client, TABLES)
        .await
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Every break of the rule, one line each, in a stable order.
async fn violations(client: &Client) -> Vec<String> {
    let mut found = Vec::new();
    for row in query(client, TABLES).await {
        let (table, has_primary_key): (String, bool) = (row.get(0), row.get(1));
        if by_tenant(&table) && !has_primary_key {
            found.push(format!("{table}: no primary key"));
        }
    }
    for row in query(client, UNIQUE_INDEXES).await {
        let (table, index, primary, first): (String, String, bool, Option<String>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if by_tenant(&table) && first.as_deref() != Some("tenant_id") {
            let kind = if primary {
                "primary key"
            } else {
                "unique index"
            };
            found.push(format!(
                "{table}: {kind} {index} does not start with tenant_id"
            ));
        }
    }
    for row in query(client, FOREIGN_KEYS).await {
        let (table, key, referenced, pairs): (String, String, String, Vec<String>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let shares_tenant = pairs.iter().any(|pair| pair == "tenant_id=tenant_id");
        match (by_tenant(&table), by_tenant(&referenced)) {
            (true, true) if !shares_tenant => found.push(format!(
                "{table}: foreign key {key} to {referenced} does not include tenant_id"
            )),
            (false, true) => found.push(format!(
                "{table}: foreign key {key} from a table outside the rule into the tenant table {referenced}"
            )),
            _ => {}
        }
    }
    found
}

async fn migrated() -> TestDatabase {
    TestDatabase::migrated(|url| async move { identity_service::migrate(&url).await }).await
}

#[tokio::test]
async fn every_tenant_table_is_keyed_by_tenant() {
    let db = migrated().await;
    let client = connect(db.url()).await;
    let found = violations(&client).await;
    assert!(
        found.is_empty(),
        "the schema closes the way to sharding by tenant (docs/scaling.md); \
         key these by tenant_id or add them to NOT_BY_TENANT with a reason:\n{}",
        found.join("\n")
    );
    // An allow-list entry for a table that is gone would exempt its successor unseen.
    let tables = tables(&client).await;
    for (table, _) in NOT_BY_TENANT {
        assert!(
            tables.iter().any(|name| name == table),
            "NOT_BY_TENANT names {table}, which the schema no longer has"
        );
    }
}

#[tokio::test]
async fn tables_that_break_the_rule_are_reported() {
    let db = migrated().await;
    let client = connect(db.url()).await;
    client
        .batch_execute(
            "CREATE TABLE notes (
                 note_id   uuid PRIMARY KEY,
                 tenant_id uuid NOT NULL REFERENCES tenants (tenant_id),
                 title     text NOT NULL
             );
             CREATE UNIQUE INDEX notes_title_key ON notes (lower(title));
             CREATE TABLE note_marks (
                 tenant_id uuid NOT NULL,
                 mark_id   uuid NOT NULL,
                 note_id   uuid NOT NULL REFERENCES notes (note_id),
                 PRIMARY KEY (tenant_id, mark_id)
             );
             CREATE TABLE loose_notes (tenant_id uuid NOT NULL, body text);
             ALTER TABLE people ADD COLUMN first_note uuid REFERENCES notes (note_id);",
        )
        .await
        .unwrap_or_else(|e| panic!("creating the broken tables: {e:?}"));
    assert_eq!(
        violations(&client).await,
        [
            "loose_notes: no primary key",
            "notes: primary key notes_pkey does not start with tenant_id",
            "notes: unique index notes_title_key does not start with tenant_id",
            "note_marks: foreign key note_marks_note_id_fkey to notes does not include tenant_id",
            "people: foreign key people_first_note_fkey from a table outside the rule into the tenant table notes",
        ]
    );
}
