//! SCIM 2.0 adapter (RFC 7643/7644): turns SCIM HTTP/JSON requests into
//! identity.v1 gRPC calls. It holds no state; every request carries the
//! caller's bearer token to the identity service, which owns every rule.
//! Every endpoint is served under `/scim/v2` (the token's tenant) and under
//! `/tenants/{slug}/scim/v2` (the tenant the URL names; see `scope`).

mod bulk;
pub mod config;
mod discovery;
pub mod error;
mod health;
mod http;
mod list;
mod members;
mod metrics;
mod request_id;
mod resource;
mod scope;
mod search;
mod server;
mod telemetry;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use identity_proto::lifecycle::Drain;
use identity_proto::tls::TlsError;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tower::Layer;
use tower::util::MapRequestLayer;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ScimError;
use crate::wire::schema;

/// How the adapter reaches the identity service and presents itself.
#[derive(Clone, Debug)]
pub struct AdapterSettings {
    /// gRPC URL of the identity service, e.g. `http://127.0.0.1:50051`.
    pub identity_grpc_url: String,
    /// External base URL for `meta.location`; `None` means `http://<listen addr>`.
    pub public_url: Option<String>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Deadline of every gRPC call made for a request.
    pub grpc_timeout: Duration,
    /// How long a client may take to send a request head, counted from
    /// when the server waits for one (accept, or the end of the previous
    /// response); past it the connection is closed.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long while
    /// a request is under way is closed.
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers); larger ones get 431.
    pub max_header_bytes: usize,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// How the server drains once its shutdown future completes.
    pub drain: Drain,
    /// TLS (and our client certificate, for mTLS) towards the identity
    /// service; `None` for a plaintext `http://` URL.
    pub tls: Option<ClientTlsConfig>,
}

impl AdapterSettings {
    /// The defaults every flag has, calling the identity service at `identity_grpc_url`.
    pub fn new(identity_grpc_url: impl Into<String>) -> Self {
        AdapterSettings {
            identity_grpc_url: identity_grpc_url.into(),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            grpc_timeout: Duration::from_secs(15),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_connections: 1024,
            drain: Drain {
                delay: Duration::from_secs(5),
                grace: Duration::from_secs(20),
            },
            tls: None,
        }
    }
}

/// Why the adapter could not start or keep serving. One line, no secrets.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid IDENTITY_GRPC_URL {url:?}: {reason}")]
    InvalidGrpcUrl { url: String, reason: String },
    #[error("invalid SCIM_PUBLIC_URL {url:?}: it must be an http:// or https:// URL")]
    InvalidPublicUrl { url: String },
    #[error("invalid SCIM_MAX_BODY_BYTES: it must be at least 1")]
    InvalidBodyLimit,
    #[error("invalid {name}: {reason}")]
    InvalidLimit {
        name: &'static str,
        reason: &'static str,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot read the listening address: {0}")]
    LocalAddr(std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
struct AppState {
    /// Connects lazily, so the adapter starts (and reports not ready) while
    /// the identity service is down.
    channel: Channel,
    /// Public base URL without a trailing slash.
    base_url: Arc<str>,
    max_body_bytes: usize,
    /// The deadline each gRPC call carries (see `http::Bearer`).
    grpc_timeout: Duration,
    /// Set once shutdown begins: readiness fails from then on.
    draining: Arc<AtomicBool>,
    metrics: Arc<metrics::AdapterMetrics>,
}

/// A fresh connection attempt must not hold a request for long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The channel's own bound lies this far past the calls' deadline, so the
/// service's DEADLINE_EXCEEDED normally answers first and the channel only
/// catches a service that never answers.
const CHANNEL_TIMEOUT_MARGIN: Duration = Duration::from_secs(1);
/// Largest gRPC answer any client of the adapter decodes. The service sizes
/// pages to a few MiB; this leaves room for a page of 1000 groups or 5000
/// members with large attribute bags, and larger answers become 400
/// `tooMany` (see `error`).
pub(crate) const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// Serves SCIM on `listener` until `shutdown` completes, then drains as
/// [`AdapterSettings::drain`] says: `/readyz` fails at once, the listener
/// closes after the delay, and requests in flight have the grace period.
pub async fn serve(
    settings: AdapterSettings,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    if settings.max_body_bytes == 0 {
        return Err(StartupError::InvalidBodyLimit);
    }
    let limits = server::Limits::from_settings(&settings)?;
    let channel = channel(
        &settings.identity_grpc_url,
        settings.grpc_timeout,
        settings.tls.clone(),
    )?;
    let local = listener.local_addr().map_err(StartupError::LocalAddr)?;
    let base_url = base_url(settings.public_url.as_deref(), local)?;
    tracing::info!(
        listen = %local,
        public_url = %base_url,
        identity_grpc_url = %settings.identity_grpc_url,
        "SCIM adapter serving under {}{} and {}/tenants/{{slug}}{}",
        base_url,
        schema::BASE_PATH,
        base_url,
        schema::BASE_PATH,
    );
    let draining = Arc::new(AtomicBool::new(false));
    let state = AppState {
        channel,
        base_url: base_url.into(),
        max_body_bytes: settings.max_body_bytes,
        grpc_timeout: settings.grpc_timeout,
        draining: Arc::clone(&draining),
        metrics: Arc::new(metrics::AdapterMetrics::new()),
    };
    // Wrapped around the router, not layered into it: the tenant form must
    // be rewritten before routing picks a route (see `scope`).
    let app = MapRequestLayer::new(scope::address_tenant).layer(router(state));
    let unready = async move { draining.store(true, Ordering::Relaxed) };
    settings
        .drain
        .run(shutdown, unready, |stop| {
            server::serve(listener, app, limits, stop)
        })
        .await;
    Ok(())
}

fn channel(
    url: &str,
    grpc_timeout: Duration,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, StartupError> {
    let invalid = |reason: String| StartupError::InvalidGrpcUrl {
        url: url.to_owned(),
        reason,
    };
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| invalid(e.to_string()))?;
    match endpoint.uri().scheme_str() {
        Some("http" | "https") if endpoint.uri().host().is_some() => {}
        _ => return Err(invalid("expected http://host:port".into())),
    }
    Ok(identity_proto::tls::apply(endpoint, tls)?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(grpc_timeout.saturating_add(CHANNEL_TIMEOUT_MARGIN))
        .connect_lazy())
}

/// The configured public URL without trailing `/` or `/scim/v2`, or
/// `http://<listen addr>` (with `localhost` for a wildcard address).
fn base_url(public_url: Option<&str>, local: SocketAddr) -> Result<String, StartupError> {
    let Some(url) = public_url else {
        return Ok(if local.ip().is_unspecified() {
            format!("http://localhost:{}", local.port())
        } else {
            format!("http://{local}")
        });
    };
    let trimmed = url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix(schema::BASE_PATH).unwrap_or(trimmed);
    let has_host = ["http://", "https://"].iter().any(|scheme| {
        trimmed
            .get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
            && trimmed.len() > scheme.len()
    });
    if !has_host || trimmed.contains(char::is_whitespace) {
        return Err(StartupError::InvalidPublicUrl {
            url: url.to_owned(),
        });
    }
    Ok(trimmed.to_owned())
}

fn router(state: AppState) -> Router {
    Router::new()
        .merge(resource::routes())
        .merge(search::routes())
        .merge(bulk::routes())
        .merge(discovery::routes())
        .merge(health::routes())
        .route("/metrics", get(metrics::scrape))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            telemetry::trace_request,
        ))
        .layer(middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// A handler that panics fails its request with a SCIM 500; the connection
/// and the server live on. The payload is logged: it names the bug.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload");
    tracing::error!(panic = message, "a request handler panicked");
    ScimError::internal().into_response()
}

async fn not_found() -> ScimError {
    ScimError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ScimError {
    ScimError::method_not_allowed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_defaults_and_trims() {
        let local: SocketAddr = ([0, 0, 0, 0], 8080).into();
        assert_eq!(
            base_url(None, local).ok().as_deref(),
            Some("http://localhost:8080")
        );
        let local: SocketAddr = ([127, 0, 0, 1], 9).into();
        assert_eq!(
            base_url(None, local).ok().as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            base_url(Some("https://scim.example.com/scim/v2/"), local)
                .ok()
                .as_deref(),
            Some("https://scim.example.com")
        );
        assert!(base_url(Some("scim.example.com"), local).is_err());
        assert!(base_url(Some("https://"), local).is_err());
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_scim_500() {
        use axum::body::Body;
        use axum::routing::get;
        use tower::ServiceExt;

        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response));
        let request = axum::http::Request::get("/boom").body(Body::empty());
        let response = match request {
            Ok(request) => app.oneshot(request).await,
            Err(e) => panic!("request: {e}"),
        };
        let Ok(response) = response;
        assert_eq!(
            response.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
        let body = axum::body::to_bytes(response.into_body(), 4096).await;
        let body: serde_json::Value = body
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        assert_eq!(body["status"], "500");
        assert_eq!(body["schemas"][0], schema::ERROR);
    }

    #[tokio::test]
    async fn grpc_url_must_be_http() {
        let timeout = Duration::from_secs(1);
        assert!(channel("http://127.0.0.1:50051", timeout, None).is_ok());
        assert!(matches!(
            channel("127.0.0.1:50051", timeout, None),
            Err(StartupError::InvalidGrpcUrl { .. })
        ));
        assert!(channel("not a url", timeout, None).is_err());
        // TLS goes with https:// only, and https:// needs a CA.
        assert!(matches!(
            channel("https://127.0.0.1:50051", timeout, None),
            Err(StartupError::Tls(_))
        ));
        assert!(matches!(
            channel(
                "http://127.0.0.1:50051",
                timeout,
                Some(ClientTlsConfig::new())
            ),
            Err(StartupError::Tls(_))
        ));
    }
}
