//! The database's own limit: pgbench runs the single statements each
//! scenario needs at least, on tables built by our own migrations in a
//! database of its own, seeded with as many users as the stack's tenant,
//! the same big and small groups, and spare users for membership changes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::drive::Statement;
use crate::procs::{admin, database_url};
use crate::seed::{BIG_GROUP_MAX, GROUPS, SMALL_GROUP};

const TENANT: &str = "00000000-0000-4000-8000-00000000beef";
const BIG: &str = "00000000-0000-4000-8000-0000000000b1";

/// One insert per transaction, with the columns a SCIM create fills, under
/// the same unique (tenant_id, lower(user_name)) index.
const INSERT: &str = "INSERT INTO users (tenant_id, user_id, user_name, login_email, emails)
VALUES (:tenant, gen_random_uuid(), 'pg-' || gen_random_uuid() || '@example.com', NULL,
        '[{\"value\": \"pg@example.com\", \"type\": \"work\", \"primary\": true}]');
";

/// The userName lookup, through the same index a filter uses.
const SELECT_BY_NAME: &str = "\\set n random(0, :users - 1)
SELECT * FROM users
WHERE tenant_id = :tenant AND lower(user_name) = lower('seed' || (:n)::text || '@example.com')
  AND deleted_at IS NULL;
";

/// The read by id: one probe of the primary key.
const SELECT_BY_ID: &str = "\\set n random(0, :users - 1)
SELECT * FROM users WHERE tenant_id = :tenant AND user_id = md5('seed' || (:n)::text)::uuid;
";

/// Deactivate then reactivate: two single-row updates by primary key,
/// each its own transaction, touching the indexed updated_at as ours do.
const UPDATE_BY_ID: &str = "\\set n random(0, :users - 1)
UPDATE users SET active = false, version = version + 1, updated_at = now()
WHERE tenant_id = :tenant AND user_id = md5('seed' || (:n)::text)::uuid;
UPDATE users SET active = true, version = version + 1, updated_at = now()
WHERE tenant_id = :tenant AND user_id = md5('seed' || (:n)::text)::uuid;
";

/// Add then remove one member of the big group: each client its own spare
/// user, as the benchmark's clients do.
const MEMBERSHIP: &str = "INSERT INTO group_members (tenant_id, group_id, user_id)
VALUES (:tenant, :big, md5('spare' || (:client_id)::text)::uuid);
DELETE FROM group_members
WHERE tenant_id = :tenant AND group_id = :big AND user_id = md5('spare' || (:client_id)::text)::uuid;
";

/// A 100-row keyset page anywhere in the tenant, in creation order.
const KEYSET: &str = "\\set n random(0, :users - 101)
SELECT * FROM users
WHERE tenant_id = :tenant AND deleted_at IS NULL
  AND (created_at, user_id) > (timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => (:n)::double precision / 1000),
                               '00000000-0000-0000-0000-000000000000'::uuid)
ORDER BY created_at, user_id
LIMIT 100;
";

impl Statement {
    pub fn title(self) -> &'static str {
        match self {
            Statement::Insert => "INSERT one user",
            Statement::SelectByName => "SELECT by lower(user_name)",
            Statement::SelectById => "SELECT by primary key",
            Statement::UpdateById => "UPDATE by primary key",
            Statement::Membership => "INSERT / DELETE one membership row",
            Statement::Keyset => "keyset SELECT of 100 rows",
        }
    }

    fn script(self) -> (&'static str, &'static str) {
        match self {
            Statement::Insert => ("ceiling-insert.sql", INSERT),
            Statement::SelectByName => ("ceiling-select-name.sql", SELECT_BY_NAME),
            Statement::SelectById => ("ceiling-select-id.sql", SELECT_BY_ID),
            Statement::UpdateById => ("ceiling-update-id.sql", UPDATE_BY_ID),
            Statement::Membership => ("ceiling-membership.sql", MEMBERSHIP),
            Statement::Keyset => ("ceiling-keyset.sql", KEYSET),
        }
    }

    /// Statements (each its own transaction) one script run makes.
    fn per_script(self) -> f64 {
        match self {
            Statement::UpdateById | Statement::Membership => 2.0,
            _ => 1.0,
        }
    }
}

/// pgbench's rate of one statement at one client count: statements per
/// second, and the average latency of one statement.
#[derive(Clone, Copy)]
pub struct Rate {
    pub statement: Statement,
    pub clients: usize,
    pub per_second: f64,
    pub latency_ms: f64,
    pub failed: u64,
}

#[derive(Default)]
pub struct Ceiling {
    pub rates: Vec<Rate>,
}

impl Ceiling {
    pub fn at(&self, statement: Statement, clients: usize) -> Option<Rate> {
        self.rates
            .iter()
            .copied()
            .find(|r| r.statement == statement && r.clients == clients)
    }

    pub fn statements(&self) -> Vec<Statement> {
        let mut statements: Vec<Statement> = self.rates.iter().map(|r| r.statement).collect();
        statements.sort();
        statements.dedup();
        statements
    }
}

pub async fn measure(
    admin_url: &str,
    run_id: &str,
    users: usize,
    statements: &[Statement],
    clients: &[usize],
    duration: Duration,
    out: &Path,
) -> Result<Ceiling, String> {
    let database = format!("{run_id}_ceiling");
    admin(admin_url, &format!("CREATE DATABASE \"{database}\"")).await?;
    let url = database_url(admin_url, &database);
    let result = measure_in(&url, users, statements, clients, duration, out).await;
    let drop = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
    if let Err(e) = admin(admin_url, &drop).await {
        eprintln!("warning: {e}");
    }
    result
}

/// Users get ids md5('seed' || n) and creation times 1 ms apart, so a
/// script can name any of them and any position from a random number.
async fn seed(url: &str, users: usize, spares: usize) -> Result<(), String> {
    identity_service::migrate(url)
        .await
        .map_err(|e| format!("migrate the ceiling database: {e}"))?;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connect to the ceiling database: {e}"))?;
    tokio::spawn(connection);
    let big = users.min(BIG_GROUP_MAX);
    client
        .batch_execute(&format!(
            "INSERT INTO tenants (tenant_id, slug) VALUES ('{TENANT}', 'bench');
             INSERT INTO users (tenant_id, user_id, user_name, login_email, created_at)
             SELECT '{TENANT}', md5('seed' || n)::uuid, 'seed' || n || '@example.com',
                    'seed' || n || '@example.com',
                    timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => n / 1000.0)
             FROM generate_series(0, {users} - 1) AS n;
             INSERT INTO users (tenant_id, user_id, user_name, login_email)
             SELECT '{TENANT}', md5('spare' || n)::uuid, 'spare' || n || '@example.com',
                    'spare' || n || '@example.com'
             FROM generate_series(0, {spares} - 1) AS n;
             INSERT INTO groups (tenant_id, group_id, display_name)
             SELECT '{TENANT}', gen_random_uuid(), 'group ' || n FROM generate_series(1, {GROUPS}) AS n;
             INSERT INTO groups (tenant_id, group_id, display_name, member_count)
             VALUES ('{TENANT}', '{BIG}', 'big', {big});
             INSERT INTO group_members (tenant_id, group_id, user_id)
             SELECT '{TENANT}', '{BIG}', md5('seed' || n)::uuid FROM generate_series(0, {big} - 1) AS n;
             INSERT INTO groups (tenant_id, group_id, display_name, member_count)
             VALUES ('{TENANT}', gen_random_uuid(), 'small', {SMALL_GROUP});
             ANALYZE;"
        ))
        .await
        .map_err(|e| format!("seed the ceiling database: {e}"))
}

async fn measure_in(
    url: &str,
    users: usize,
    statements: &[Statement],
    clients: &[usize],
    duration: Duration,
    out: &Path,
) -> Result<Ceiling, String> {
    let spares = clients.iter().copied().max().unwrap_or(1);
    seed(url, users, spares).await?;
    let mut ceiling = Ceiling::default();
    for &c in clients {
        for &statement in statements {
            let (name, text) = statement.script();
            let script = out.join(name);
            std::fs::write(&script, text).map_err(|e| format!("{}: {e}", script.display()))?;
            let rate = pgbench(url, &script, c, duration, users, statement).await?;
            eprintln!(
                "pgbench {:<36} c={c:<3} {:>9.1} statements/s",
                statement.title(),
                rate.per_second
            );
            ceiling.rates.push(rate);
        }
    }
    Ok(ceiling)
}

async fn pgbench(
    url: &str,
    script: &Path,
    clients: usize,
    duration: Duration,
    users: usize,
    statement: Statement,
) -> Result<Rate, String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(clients);
    let mut command = Command::new("pgbench");
    command.args([
        "-n".to_string(),
        "-M".to_string(),
        "prepared".to_string(),
        "-c".to_string(),
        clients.to_string(),
        "-j".to_string(),
        threads.to_string(),
        "-T".to_string(),
        duration.as_secs().max(1).to_string(),
        "-D".to_string(),
        format!("tenant={TENANT}"),
        "-D".to_string(),
        format!("big={BIG}"),
        "-D".to_string(),
        format!("users={users}"),
        "-f".to_string(),
        script.display().to_string(),
        url.to_string(),
    ]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| format!("pgbench thread: {e}"))?
        .map_err(|e| format!("run pgbench (is it on PATH?): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench {} failed: {}{}",
            script.display(),
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(parse(&stdout, clients, statement))
}

/// Reads tps, average latency and failures from pgbench's summary, per
/// statement rather than per script.
fn parse(summary: &str, clients: usize, statement: Statement) -> Rate {
    let number = |prefix: &str| {
        summary
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or_default()
    };
    Rate {
        statement,
        clients,
        per_second: number("tps = ") * statement.per_script(),
        latency_ms: number("latency average = ") / statement.per_script(),
        failed: number("number of failed transactions: ") as u64,
    }
}
