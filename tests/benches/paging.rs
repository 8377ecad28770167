//! Deep pages: the latency of one 100-user page at growing depths of a
//! 100,000-user tenant (`BENCH_USERS` to change it), by `startIndex`
//! (OFFSET) and by cursor (keyset), all through real HTTP, gRPC and
//! Postgres, on tables never analyzed. Run with scripts/bench.

use std::time::{Duration, Instant};

use identity_lifecycle_tests::*;

const USERS: usize = 100_000;
const PAGE: usize = 100;
/// Depths in thousandths of the tenant.
const DEPTHS: [usize; 4] = [0, 100, 500, 990];
const REPEAT: usize = 20;

#[tokio::main]
async fn main() {
    let users = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(USERS);
    let depths = DEPTHS.map(|d| users * d / 1000 / PAGE * PAGE);
    let stack = Stack::start().await;
    let acme = stack.tenant("bench").await;
    let scim = stack.scim(&acme.token);
    stack
        .query_strings(&format!(
            "INSERT INTO users (tenant_id, user_id, user_name, created_at)
             SELECT t.tenant_id, gen_random_uuid(), 'page' || n || '@example.com',
                    now() - make_interval(secs => {users} - n)
             FROM tenants t, generate_series(1, {users}) AS n WHERE t.slug = 'bench'"
        ))
        .await;
    // No ANALYZE: a tenant is listed long before autovacuum has statistics
    // on its rows, and no plan may depend on them.

    // The cursor that starts each depth, found by walking the pages once.
    let mut cursors = Vec::new();
    let mut cursor = String::new();
    for page in 0..=depths[depths.len() - 1] / PAGE {
        if depths.contains(&(page * PAGE)) {
            cursors.push(cursor.clone());
        }
        let reply = scim
            .get(&format!("/Users?count={PAGE}&cursor={cursor}"))
            .await;
        cursor = reply.body["nextCursor"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }

    println!("| depth | startIndex page p50 | cursor page p50 |");
    println!("|---|---|---|");
    for (depth, cursor) in depths.iter().zip(&cursors) {
        let by_index = median(
            &scim,
            &format!("/Users?count={PAGE}&startIndex={}", depth + 1),
        )
        .await;
        let by_cursor = median(&scim, &format!("/Users?count={PAGE}&cursor={cursor}")).await;
        println!("| {depth} | {} | {} |", ms(by_index), ms(by_cursor));
    }
}

async fn median(scim: &Scim<'_>, path: &str) -> Duration {
    let mut samples = Vec::with_capacity(REPEAT);
    for _ in 0..REPEAT {
        let started = Instant::now();
        let reply = scim.get(path).await;
        samples.push(started.elapsed());
        assert_eq!(reply.status.as_u16(), 200, "{path}: {}", reply.body);
        assert_eq!(
            reply.body["Resources"].as_array().map(Vec::len),
            Some(PAGE),
            "{path}"
        );
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
