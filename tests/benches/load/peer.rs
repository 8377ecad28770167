//! The reference peer: the `scim2-server` PyPI package, an in-memory SCIM
//! server, started from the executable scripts/bench installs, seeded with
//! the same userNames through its /Bulk endpoint (POSTs one by one would
//! take minutes), and driven by the same clients on scenarios 1-3.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use identity_lifecycle_tests::{USER_SCHEMA, json};
use serde_json::Value;

use crate::drive::{Target, seeded_name, transport};
use crate::procs::{Process, free_port, wait_for};

/// Users per Bulk request: the peer's advertised bulk.maxOperations.
const BULK: usize = 1_000;

pub struct Peer {
    pub process: Process,
    pub target: Target,
    pub users: usize,
    pub seed_seconds: f64,
}

pub async fn start(executable: &Path, users: usize, out: &Path) -> Result<Peer, String> {
    let port = free_port()?;
    let bearer = format!("peer-{}", std::process::id());
    let process = Process::spawn(
        "scim2-server",
        Command::new(executable).args(["--port", &port.to_string(), "--bearer-token", &bearer]),
        &out.join("scim2-server.log"),
    )?;
    let addr = format!("127.0.0.1:{port}");
    wait_for(&addr, "scim2-server").await?;
    let mut target = Target::scim_only(format!("http://{addr}/v2"), bearer)?;
    eprintln!("seeding the peer with {users} users through its /Bulk");
    let started = Instant::now();
    target.ids = seed(&target, users).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    eprintln!("seeded the peer in {seed_seconds:.1} s");
    Ok(Peer {
        process,
        target,
        users,
        seed_seconds,
    })
}

async fn seed(target: &Target, users: usize) -> Result<Vec<String>, String> {
    let mut ids = vec![String::new(); users];
    for start in (0..users).step_by(BULK) {
        let operations: Vec<Value> = (start..(start + BULK).min(users))
            .map(|n| {
                json!({
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": format!("u{n}"),
                    "data": {"schemas": [USER_SCHEMA], "userName": seeded_name(n)},
                })
            })
            .collect();
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": operations,
        });
        let reply = target
            .http
            .post(format!("{}/Bulk", target.scim_base))
            .header("content-type", "application/scim+json")
            .bearer_auth(&target.bearer)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let status = reply.status().as_u16();
        let answer: Value = reply.json().await.map_err(transport)?;
        if status != 200 {
            return Err(format!("peer /Bulk: HTTP {status}: {answer}"));
        }
        for operation in answer["Operations"].as_array().into_iter().flatten() {
            // The id is the last segment of the created user's location.
            let id = operation["location"]
                .as_str()
                .and_then(|l| l.rsplit('/').next())
                .filter(|_| operation["status"].as_str() == Some("201"));
            let n = operation["bulkId"]
                .as_str()
                .and_then(|b| b.strip_prefix('u')?.parse::<usize>().ok())
                .filter(|&n| n < users);
            match (id, n) {
                (Some(id), Some(n)) => ids[n] = id.to_string(),
                _ => return Err(format!("peer /Bulk: {operation}")),
            }
        }
    }
    if let Some(n) = ids.iter().position(String::is_empty) {
        return Err(format!("peer /Bulk did not create user {n}"));
    }
    Ok(ids)
}
