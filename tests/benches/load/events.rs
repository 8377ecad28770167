//! Lifecycle-event delivery: how long after a SCIM deactivation's HTTP
//! response its event reaches watchers that follow the tenant with
//! `EventService.Watch`, as an internal service would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use identity_lifecycle_tests::{ADMIN_TOKEN, Bearer};
use identity_proto::v1::event_service_client::EventServiceClient;
use identity_proto::v1::{CreateUserRequest, EventType, ResourceType, WatchRequest, watch_request};
use tokio::sync::mpsc;
use tonic::transport::Endpoint;

use crate::drive::{TENANT, Target, grpc_user};

/// Watchers following the tenant at once.
pub const WATCHERS: usize = 10;
/// Deactivations measured, one after another.
pub const DEACTIVATIONS: usize = 1_000;
/// How long a watcher may still be owed an event after the last response.
const SETTLE: Duration = Duration::from_secs(10);

/// Latencies from each deactivation's response to each watcher's receipt
/// of its event.
pub struct Delivery {
    pub watchers: usize,
    pub deactivations: usize,
    /// Microseconds; an event a watcher had before the HTTP response was
    /// read counts as 0.
    pub latency: Histogram<u64>,
    /// Deliveries that came before the HTTP response was read.
    pub before_response: u64,
    /// Deliveries owed but not received within the settle time.
    pub missing: u64,
    /// Deactivations the service refused (no event is owed for them).
    pub errors: u64,
    pub seconds: f64,
}

impl Delivery {
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }
}

/// One receipt: the user the event is about, and when it arrived.
type Receipt = (usize, String, Instant);

/// Creates the users to deactivate, opens the watchers, deactivates each
/// user once through SCIM and matches every receipt with its response.
pub async fn measure(target: &Target, grpc_url: &str) -> Result<Delivery, String> {
    let mut users = target.grpc.clone().ok_or("no gRPC API on this server")?;
    let mut ids = Vec::with_capacity(DEACTIVATIONS + 1);
    for _ in 0..=DEACTIVATIONS {
        let created = users
            .create_user(CreateUserRequest {
                tenant: TENANT.to_string(),
                user: Some(grpc_user(target.fresh_name())),
            })
            .await
            .map_err(|e| format!("create a user to deactivate: {e}"))?
            .into_inner();
        ids.push(created.id);
    }

    let channel = Endpoint::from_shared(grpc_url.to_string())
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("connect to identity-service: {e}"))?;
    let (receipts, mut received) = mpsc::unbounded_channel::<Receipt>();
    let mut watchers = Vec::with_capacity(WATCHERS);
    for watcher in 0..WATCHERS {
        let mut events =
            EventServiceClient::with_interceptor(channel.clone(), Bearer::new(ADMIN_TOKEN));
        let mut stream = events
            .watch(WatchRequest {
                tenant: TENANT.to_string(),
                start: Some(watch_request::Start::Now(true)),
                types: vec![EventType::UserDeactivated as i32],
                resource_types: vec![ResourceType::User as i32],
            })
            .await
            .map_err(|e| format!("watch: {e}"))?
            .into_inner();
        let receipts = receipts.clone();
        watchers.push(tokio::spawn(async move {
            while let Some(Ok(event)) = stream.next().await {
                if receipts
                    .send((watcher, event.resource_id, Instant::now()))
                    .is_err()
                {
                    break;
                }
            }
        }));
    }
    drop(receipts);

    // The first deactivation proves every watcher live before timing starts.
    let (warm_up, measured) = ids.split_first().ok_or("no users")?;
    deactivate(target, warm_up).await?;
    let mut live = [false; WATCHERS];
    let deadline = Instant::now() + SETTLE;
    while live.iter().any(|l| !l) {
        let receipt = tokio::time::timeout_at(deadline.into(), received.recv())
            .await
            .map_err(|_| "a watcher never received the warm-up deactivation".to_string())?
            .ok_or("every watcher ended")?;
        if receipt.1 == *warm_up {
            live[receipt.0] = true;
        }
    }

    let started = Instant::now();
    let mut answered: HashMap<&str, Instant> = HashMap::with_capacity(DEACTIVATIONS);
    let mut errors = 0;
    for id in measured {
        match deactivate(target, id).await {
            Ok(()) => {
                answered.insert(id.as_str(), Instant::now());
            }
            Err(e) => {
                errors += 1;
                eprintln!("deactivation refused: {e}");
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let mut latency = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut before_response = 0;
    let owed = (answered.len() * WATCHERS) as u64;
    let mut got = 0u64;
    let deadline = Instant::now() + SETTLE;
    while got < owed {
        let Ok(Some((_, user, arrived))) =
            tokio::time::timeout_at(deadline.into(), received.recv()).await
        else {
            break;
        };
        // Arrivals are read after the loop, so their time was taken by the
        // watcher task when the event came in.
        let Some(&response) = answered.get(user.as_str()) else {
            continue;
        };
        got += 1;
        let micros = match arrived.checked_duration_since(response) {
            Some(after) => after.as_micros() as u64,
            None => {
                before_response += 1;
                0
            }
        };
        latency.record(micros).map_err(|e| e.to_string())?;
    }
    for watcher in watchers {
        watcher.abort();
    }
    Ok(Delivery {
        watchers: WATCHERS,
        deactivations: answered.len(),
        latency,
        before_response,
        missing: owed - got,
        errors,
        seconds,
    })
}

/// Deactivates as Entra does (its default dialect).
async fn deactivate(target: &Target, id: &str) -> Result<(), String> {
    let url = format!("{}/Users/{id}", target.scim_base);
    let body = serde_json::json!({
        "schemas": [identity_lifecycle_tests::PATCH_SCHEMA],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    });
    let (status, body) = target.exchange(target.http.patch(url).json(&body)).await?;
    if status == 200 || status == 204 {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}
