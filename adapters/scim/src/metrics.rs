//! The adapter's Prometheus metrics, served at `/metrics` on its HTTP port:
//! SCIM traffic by tenant, route template, method and status, and latency by
//! route. Labels are bounded: a route template (never a raw path), an HTTP
//! method axum routes, a status code, and the id of a tenant whose token the
//! service accepted (never a token).

use axum::extract::State;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The tenant's id; "none" when the request was not authenticated.
    tenant: String,
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

/// One HTTP request as the metrics record it.
pub struct Observation<'a> {
    pub tenant: Option<&'a str>,
    pub route: &'a str,
    pub method: &'a str,
    pub status: u16,
    pub seconds: f64,
}

#[derive(Debug)]
pub struct AdapterMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
}

impl AdapterMetrics {
    pub fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 1 ms to about 16 s.
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        let mut registry = Registry::default();
        registry.register(
            "scim_http_requests",
            "SCIM HTTP requests answered, by tenant, route template, method and status",
            requests.clone(),
        );
        registry.register_with_unit(
            "scim_http_request_duration",
            "Time from request head to response head, by route template and method",
            Unit::Seconds,
            duration.clone(),
        );
        AdapterMetrics {
            registry,
            requests,
            duration,
        }
    }

    pub fn observe(&self, request: &Observation<'_>) {
        self.requests
            .get_or_create(&RequestLabels {
                tenant: request.tenant.unwrap_or("none").to_owned(),
                route: request.route.to_owned(),
                method: request.method.to_owned(),
                status: request.status.to_string(),
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels {
                route: request.route.to_owned(),
                method: request.method.to_owned(),
            })
            .observe(request.seconds);
    }
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> http::Response<String> {
    identity_proto::metrics::scrape_response(&state.metrics.registry)
}
