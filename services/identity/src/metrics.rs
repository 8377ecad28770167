//! The service's Prometheus metrics, served at `/metrics` on the admin HTTP
//! port (IDENTITY_ADMIN_ADDR), apart from the gRPC port: calls by method and
//! status code with their duration, the database pools (in use, idle, waits)
//! the token cache's hits and misses, and the events backlog (open watches,
//! the slowest one's lag, deliveries, slow consumers closed, pruning, the
//! sequencer's numbering).
//! Labels are bounded: a method the service serves (see `telemetry`), a
//! gRPC code, a pool's name.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

use crate::StartupError;
use crate::db::Pool;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

/// The token cache's outcomes, counted where the cache is asked.
#[derive(Clone, Debug, Default)]
pub(crate) struct CacheCounters {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
}

#[derive(Debug)]
pub(crate) struct ServiceMetrics {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_duration: Family<MethodLabel, Histogram>,
    pub(crate) token_cache: CacheCounters,
    pub(crate) events: EventMetrics,
}

/// The events backlog as this replica sees it, counted where watches hand
/// events over and where the pruner deletes them.
#[derive(Clone, Debug, Default)]
pub(crate) struct EventMetrics {
    pub(crate) delivered: Counter,
    pub(crate) too_slow: Counter,
    pub(crate) pruned: Counter,
    pub(crate) prune_failures: Counter,
    pub(crate) numbered: Counter,
    pub(crate) sequencer_failures: Counter,
    watchers: Arc<Mutex<Watchers>>,
}

/// The open watches and how far each is behind, read at each scrape.
#[derive(Debug, Default)]
struct Watchers {
    next: u64,
    lags: HashMap<u64, Arc<AtomicU64>>,
}

impl EventMetrics {
    /// Counts a watch as open until the returned gauge is dropped.
    pub(crate) fn watcher(&self) -> WatcherGauge {
        let lag = Arc::new(AtomicU64::new(0));
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        watchers.next += 1;
        let id = watchers.next;
        watchers.lags.insert(id, Arc::clone(&lag));
        WatcherGauge {
            id,
            lag,
            watchers: Arc::clone(&self.watchers),
        }
    }
}

/// One open watch's entry in [`EventMetrics`].
pub(crate) struct WatcherGauge {
    id: u64,
    lag: Arc<AtomicU64>,
    watchers: Arc<Mutex<Watchers>>,
}

impl WatcherGauge {
    /// How many of its tenant's events the watch has yet to hand over.
    pub(crate) fn set_lag(&self, events: u64) {
        self.lag.store(events, Ordering::Relaxed);
    }
}

impl Drop for WatcherGauge {
    fn drop(&mut self) {
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        watchers.lags.remove(&self.id);
    }
}

/// Reads the open watches at each scrape.
#[derive(Debug)]
struct WatcherCollector {
    watchers: Arc<Mutex<Watchers>>,
}

impl Collector for WatcherCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (open, slowest) = {
            let watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
            let slowest = watchers
                .lags
                .values()
                .map(|lag| lag.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0);
            (watchers.lags.len(), slowest)
        };
        let open_gauge = Gauge::<i64>::default();
        open_gauge.set(i64::try_from(open).unwrap_or(i64::MAX));
        let lag_gauge = Gauge::<i64>::default();
        lag_gauge.set(i64::try_from(slowest).unwrap_or(i64::MAX));
        let described: [(&str, &str, &dyn EncodeMetric); 2] = [
            (
                "identity_event_watchers",
                "Watch streams open on this replica",
                &open_gauge,
            ),
            (
                "identity_event_watcher_max_lag",
                "Events the slowest open Watch of this replica has yet to hand over \
                 (its tenant's newest sequence minus the watch's position)",
                &lag_gauge,
            ),
        ];
        for (name, help, metric) in described {
            let metric_encoder =
                encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(metric_encoder)?;
        }
        Ok(())
    }
}

impl ServiceMetrics {
    /// The metrics of a service and its database pools.
    pub(crate) fn new(pools: [PoolOf; 2]) -> Self {
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        // 0.5 ms to about 8 s.
        let rpc_duration = Family::<MethodLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 15))
        });
        let token_cache = CacheCounters::default();
        let mut registry = Registry::default();
        registry.register(
            "identity_grpc_requests",
            "gRPC calls answered, by method and status code",
            rpc_requests.clone(),
        );
        registry.register_with_unit(
            "identity_grpc_request_duration",
            "Time from a call's arrival to its response head, by method",
            Unit::Seconds,
            rpc_duration.clone(),
        );
        registry.register(
            "identity_token_cache_hits",
            "Tenant token lookups answered from the cache",
            token_cache.hits.clone(),
        );
        registry.register(
            "identity_token_cache_misses",
            "Tenant token lookups that asked the database",
            token_cache.misses.clone(),
        );
        registry.register_collector(Box::new(PoolCollector { pools }));
        let events = EventMetrics::default();
        let event_counters: [(&str, &str, &Counter); 6] = [
            (
                "identity_events_delivered",
                "Events handed to Watch streams",
                &events.delivered,
            ),
            (
                "identity_event_watchers_too_slow",
                "Watch streams closed (RESOURCE_EXHAUSTED) because their client read too slowly",
                &events.too_slow,
            ),
            (
                "identity_events_pruned",
                "Events this replica deleted as older than the retention",
                &events.pruned,
            ),
            (
                "identity_event_prune_failures",
                "Pruning rounds of this replica that failed (retried at the next interval)",
                &events.prune_failures,
            ),
            (
                "identity_events_numbered",
                "Pending events this replica's sequencer gave their final sequence number",
                &events.numbered,
            ),
            (
                "identity_event_sequencer_failures",
                "Sequencer looks of this replica that failed (retried at the next poll); \
                 meanwhile new events reach no watcher",
                &events.sequencer_failures,
            ),
        ];
        for (name, help, counter) in event_counters {
            registry.register(name, help, counter.clone());
        }
        registry.register_collector(Box::new(WatcherCollector {
            watchers: Arc::clone(&events.watchers),
        }));
        ServiceMetrics {
            registry,
            rpc_requests,
            rpc_duration,
            token_cache,
            events,
        }
    }

    pub(crate) fn observe_rpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        self.rpc_requests
            .get_or_create(&RpcLabels {
                method: method.to_owned(),
                code: code_name(code).to_owned(),
            })
            .inc();
        self.rpc_duration
            .get_or_create(&MethodLabel {
                method: method.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// The gRPC code as the specification spells it (`NOT_FOUND`).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolStateLabels {
    pool: &'static str,
    state: &'static str,
}

/// A pool as the metrics name it: its name (the `pool` label), the pool,
/// and the most connections it opens.
pub(crate) type PoolOf = (&'static str, Pool, u32);

/// Reads the pools' state and counters at each scrape.
struct PoolCollector {
    pools: [PoolOf; 2],
}

impl std::fmt::Debug for PoolCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolCollector").finish_non_exhaustive()
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let connections = Family::<PoolStateLabels, Gauge>::default();
        let max = Family::<PoolLabels, Gauge>::default();
        let waits = Family::<PoolLabels, Counter>::default();
        let wait_seconds = Family::<PoolLabels, Counter<f64>>::default();
        let timeouts = Family::<PoolLabels, Counter>::default();
        for (pool, handle, size) in &self.pools {
            let state = handle.state();
            let idle = i64::from(state.idle_connections);
            let in_use = i64::from(state.connections) - idle;
            let labels = PoolLabels { pool };
            let state_of = |state| PoolStateLabels { pool, state };
            connections.get_or_create(&state_of("in_use")).set(in_use);
            connections.get_or_create(&state_of("idle")).set(idle);
            max.get_or_create(&labels).set(i64::from(*size));
            let statistics = state.statistics;
            waits.get_or_create(&labels).inc_by(statistics.get_waited);
            wait_seconds
                .get_or_create(&labels)
                .inc_by(statistics.get_wait_time.as_secs_f64());
            timeouts
                .get_or_create(&labels)
                .inc_by(statistics.get_timed_out);
        }
        let described: [(&str, &str, Option<&Unit>, &dyn EncodeMetric); 5] = [
            (
                "identity_db_pool_connections",
                "Pooled database connections, by pool and state (in_use, idle)",
                None,
                &connections,
            ),
            (
                "identity_db_pool_max_connections",
                "The most connections a pool opens",
                None,
                &max,
            ),
            (
                "identity_db_pool_waits",
                "Checkouts that had to wait for a connection",
                None,
                &waits,
            ),
            (
                "identity_db_pool_wait",
                "Time checkouts spent waiting for a connection",
                Some(&Unit::Seconds),
                &wait_seconds,
            ),
            (
                "identity_db_pool_timeouts",
                "Checkouts that gave up waiting (the call got UNAVAILABLE)",
                None,
                &timeouts,
            ),
        ];
        for (name, help, unit, metric) in described {
            let metric_encoder =
                encoder.encode_descriptor(name, help, unit, metric.metric_type())?;
            metric.encode(metric_encoder)?;
        }
        Ok(())
    }
}

/// Serves `GET /metrics` on `addr` until the task is aborted.
pub(crate) async fn serve_admin(
    addr: SocketAddr,
    metrics: Arc<ServiceMetrics>,
) -> Result<tokio::task::JoinHandle<()>, StartupError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartupError::Listen {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    if let Ok(local) = listener.local_addr() {
        tracing::info!(addr = %local, "metrics served at /metrics");
    }
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the admin HTTP server stopped");
        }
    }))
}

async fn scrape(State(metrics): State<Arc<ServiceMetrics>>) -> http::Response<String> {
    identity_proto::metrics::scrape_response(&metrics.registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(events: &EventMetrics) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(WatcherCollector {
            watchers: Arc::clone(&events.watchers),
        }));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .unwrap_or_else(|e| panic!("{e}"));
        text
    }

    #[test]
    fn watchers_count_while_open_and_report_the_slowest() {
        let events = EventMetrics::default();
        let first = events.watcher();
        let second = events.watcher();
        first.set_lag(3);
        second.set_lag(40);
        let text = encoded(&events);
        assert!(text.contains("identity_event_watchers 2\n"), "{text}");
        assert!(
            text.contains("identity_event_watcher_max_lag 40\n"),
            "{text}"
        );
        drop(second);
        let text = encoded(&events);
        assert!(text.contains("identity_event_watchers 1\n"), "{text}");
        assert!(
            text.contains("identity_event_watcher_max_lag 3\n"),
            "{text}"
        );
        drop(first);
        assert!(encoded(&events).contains("identity_event_watchers 0\n"));
    }
}
