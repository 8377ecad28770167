//! Membership at scale: builds a 100,000-member group and a 10-member group,
//! then reports p50/p99 of single-member SCIM PATCH add/remove on each and
//! the time and peak memory of a GET of the big group with and without
//! `excludedAttributes=members`. Everything goes through real HTTP, gRPC and
//! Postgres. Run with scripts/bench (it provides TEST_DATABASE_URL).

use std::time::{Duration, Instant};

use identity_lifecycle_tests::*;
use identity_proto::v1::AddMembersRequest;

const BIG: usize = 100_000;
const SMALL: usize = 10;
const SAMPLES: usize = 200;

#[tokio::main]
async fn main() {
    let big_size = std::env::var("BENCH_GROUP_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(BIG);
    let stack = Stack::start().await;
    let acme = stack.tenant("bench").await;
    let scim = stack.scim(&acme.token);

    let started = Instant::now();
    let user_ids = seed_users(&stack, big_size + SAMPLES).await;
    println!(
        "seeded {} users in {:.1?}",
        user_ids.len(),
        started.elapsed()
    );
    // No ANALYZE: an identity provider pushes a big group long before
    // autovacuum has statistics on it, and no plan may depend on them.
    let (members, spare) = user_ids.split_at(big_size);

    let big = create_group(&scim, "big").await;
    let started = Instant::now();
    for chunk in members.chunks(5_000) {
        stack
            .groups(&acme.token)
            .add_members(AddMembersRequest {
                tenant: String::new(),
                group_id: big.clone(),
                user_ids: chunk.to_vec(),
            })
            .await
            .expect("AddMembers");
    }
    println!(
        "filled the big group with {big_size} members in {:.1?}",
        started.elapsed()
    );
    let small = create_group(&scim, "small").await;
    stack
        .groups(&acme.token)
        .add_members(AddMembersRequest {
            tenant: String::new(),
            group_id: small.clone(),
            user_ids: members[..SMALL].to_vec(),
        })
        .await
        .expect("AddMembers");

    println!();
    println!("| operation | group size | p50 | p99 |");
    println!("|---|---|---|---|");
    for (group, size) in [(&small, SMALL), (&big, big_size)] {
        let (add, remove) = add_remove_latencies(&scim, group, spare).await;
        println!(
            "| PATCH add one member | {size} | {} | {} |",
            ms(percentile(&add, 50)),
            ms(percentile(&add, 99))
        );
        println!(
            "| PATCH remove one member | {size} | {} | {} |",
            ms(percentile(&remove, 50)),
            ms(percentile(&remove, 99))
        );
    }

    println!();
    println!("| GET of the {big_size}-member group | time | peak RSS growth | body |");
    println!("|---|---|---|---|");
    // The lean read first: peak RSS only ever grows.
    for query in ["?excludedAttributes=members", ""] {
        let rss_before = peak_rss_kib();
        let started = Instant::now();
        let response = stack
            .http
            .get(scim.url(&format!("/Groups/{big}{query}")))
            .bearer_auth(&acme.token)
            .send()
            .await
            .expect("GET group");
        assert!(
            response.status().is_success(),
            "GET failed: {}",
            response.status()
        );
        let body = response.bytes().await.expect("body");
        let elapsed = started.elapsed();
        let rss_growth = peak_rss_kib().saturating_sub(rss_before);
        let label = if query.is_empty() {
            "with members"
        } else {
            "excludedAttributes=members"
        };
        println!(
            "| {label} | {} | {} MiB | {:.1} MiB |",
            ms(elapsed),
            rss_growth / 1024,
            body.len() as f64 / (1024.0 * 1024.0)
        );
    }
}

/// Inserts users straight into the database: the setup is not what is measured.
async fn seed_users(stack: &Stack, count: usize) -> Vec<String> {
    stack
        .query_strings(&format!(
            "INSERT INTO users (tenant_id, user_id, user_name, emails)
             SELECT t.tenant_id, gen_random_uuid(), 'bench' || n || '@example.com',
                    jsonb_build_array(jsonb_build_object('value', 'bench' || n || '@example.com', 'primary', true))
             FROM tenants t, generate_series(1, {count}) AS n
             WHERE t.slug = 'bench'
             RETURNING user_id::text"
        ))
        .await
}

async fn create_group(scim: &Scim<'_>, name: &str) -> String {
    let reply = scim.post("/Groups", json!({"displayName": name})).await;
    assert_eq!(reply.status.as_u16(), 201, "create group: {}", reply.body);
    reply.body["id"].as_str().expect("group id").to_string()
}

/// Adds then removes each spare user, one SCIM PATCH per change.
async fn add_remove_latencies(
    scim: &Scim<'_>,
    group: &str,
    spare: &[String],
) -> (Vec<Duration>, Vec<Duration>) {
    let path = format!("/Groups/{group}");
    let mut add = Vec::with_capacity(spare.len());
    let mut remove = Vec::with_capacity(spare.len());
    for user in spare {
        let started = Instant::now();
        let reply = scim
            .patch(
                &path,
                json!([{"op": "add", "path": "members", "value": [{"value": user}]}]),
            )
            .await;
        add.push(started.elapsed());
        assert_eq!(reply.status.as_u16(), 204, "add: {}", reply.body);
        let started = Instant::now();
        let reply = scim
            .patch(
                &path,
                json!([{"op": "remove", "path": format!("members[value eq \"{user}\"]")}]),
            )
            .await;
        remove.push(started.elapsed());
        assert_eq!(reply.status.as_u16(), 204, "remove: {}", reply.body);
    }
    (add, remove)
}

fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// VmHWM of this process (the benchmark runs both servers in-process).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}
