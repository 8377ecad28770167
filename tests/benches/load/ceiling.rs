//! The database's own limit: pgbench runs the single statement each
//! scenario needs at least once, on tables built by our own migrations in a
//! database of its own, seeded with as many users as the stack's tenant.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::drive::Statement;
use crate::procs::{admin, database_url};

/// One insert per transaction, with the columns a SCIM create fills, under
/// the same unique (tenant_id, lower(user_name)) index.
const INSERT: &str = "INSERT INTO users (tenant_id, user_id, user_name, login_email, emails)
VALUES (:tenant, gen_random_uuid(), 'pg-' || gen_random_uuid() || '@example.com', NULL,
        '[{\"value\": \"pg@example.com\", \"type\": \"work\", \"primary\": true}]');
";

/// The userName lookup, through the same index a filter uses.
const SELECT: &str = "\\set n random(0, :users - 1)
SELECT * FROM users
WHERE tenant_id = :tenant AND lower(user_name) = lower('seed' || (:n)::text || '@example.com')
  AND deleted_at IS NULL;
";

/// pgbench's rate at one client count.
#[derive(Clone, Copy, Default)]
pub struct Rate {
    pub clients: usize,
    pub tps: f64,
    pub latency_ms: f64,
    pub failed: u64,
}

pub struct Ceiling {
    pub insert: Vec<Rate>,
    pub select: Vec<Rate>,
}

impl Ceiling {
    pub fn at(&self, statement: Statement, clients: usize) -> Option<Rate> {
        let rates = match statement {
            Statement::Insert => &self.insert,
            Statement::Select => &self.select,
        };
        rates.iter().copied().find(|r| r.clients == clients)
    }
}

pub async fn measure(
    admin_url: &str,
    run_id: &str,
    users: usize,
    clients: &[usize],
    duration: Duration,
    out: &Path,
) -> Result<Ceiling, String> {
    let database = format!("{run_id}_ceiling");
    admin(admin_url, &format!("CREATE DATABASE \"{database}\"")).await?;
    let result = measure_in(
        &database_url(admin_url, &database),
        users,
        clients,
        duration,
        out,
    )
    .await;
    let drop = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
    if let Err(e) = admin(admin_url, &drop).await {
        eprintln!("warning: {e}");
    }
    result
}

async fn measure_in(
    url: &str,
    users: usize,
    clients: &[usize],
    duration: Duration,
    out: &Path,
) -> Result<Ceiling, String> {
    identity_service::migrate(url)
        .await
        .map_err(|e| format!("migrate the ceiling database: {e}"))?;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connect to the ceiling database: {e}"))?;
    tokio::spawn(connection);
    let tenant = "00000000-0000-4000-8000-00000000beef";
    client
        .batch_execute(&format!(
            "INSERT INTO tenants (tenant_id, slug) VALUES ('{tenant}', 'bench');
             INSERT INTO users (tenant_id, user_id, user_name, login_email)
             SELECT '{tenant}', gen_random_uuid(), 'seed' || n || '@example.com',
                    'seed' || n || '@example.com'
             FROM generate_series(0, {users} - 1) AS n;
             ANALYZE;"
        ))
        .await
        .map_err(|e| format!("seed the ceiling database: {e}"))?;

    let insert_script = out.join("ceiling-insert.sql");
    let select_script = out.join("ceiling-select.sql");
    for (path, text) in [(&insert_script, INSERT), (&select_script, SELECT)] {
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut ceiling = Ceiling {
        insert: Vec::new(),
        select: Vec::new(),
    };
    for &c in clients {
        for (script, rates) in [
            (&insert_script, &mut ceiling.insert),
            (&select_script, &mut ceiling.select),
        ] {
            let rate = pgbench(url, script, c, duration, tenant, users).await?;
            eprintln!(
                "pgbench {:<22} c={c:<3} {:>9.1} tps",
                script.file_name().unwrap_or_default().to_string_lossy(),
                rate.tps
            );
            rates.push(rate);
        }
    }
    Ok(ceiling)
}

async fn pgbench(
    url: &str,
    script: &Path,
    clients: usize,
    duration: Duration,
    tenant: &str,
    users: usize,
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
        format!("tenant={tenant}"),
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
    Ok(parse(&stdout, clients))
}

/// Reads tps, average latency and failures from pgbench's summary.
fn parse(summary: &str, clients: usize) -> Rate {
    let number = |prefix: &str| {
        summary
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or_default()
    };
    Rate {
        clients,
        tps: number("tps = "),
        latency_ms: number("latency average = "),
        failed: number("number of failed transactions: ") as u64,
    }
}
