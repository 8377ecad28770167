//! Liveness and readiness for orchestrators: `/healthz` answers while the
//! process runs; `/readyz` only while the identity service reports SERVING
//! on the standard gRPC health service, and never once shutdown began.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::AppState;

/// Readiness probes expect a quick answer, even when the backend hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    let mut client = HealthClient::new(state.channel.clone());
    let check = client.check(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => {
            (StatusCode::OK, "ready\n")
        }
        Ok(Ok(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "identity service not serving\n",
        ),
        Ok(Err(status)) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "identity service unreachable\n",
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "identity service timed out\n",
        ),
    }
}
