//! One span and one measurement per gRPC call: the span is a child of the
//! caller's span when the call carries a W3C `traceparent`, so a SCIM
//! request is one trace across the adapter and the service. The database
//! work under it is traced by `sql_spans`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;
use tracing::field::Empty;

use crate::metrics::ServiceMetrics;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Wraps every gRPC call in a span and counts it (see [`ServiceMetrics`]).
#[derive(Clone)]
pub(crate) struct RpcTelemetry {
    pub(crate) metrics: Arc<ServiceMetrics>,
}

impl<S> tower::Layer<S> for RpcTelemetry {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Observed<S> {
    inner: S,
    metrics: Arc<ServiceMetrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for Observed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let span = tracing::info_span!(
            "grpc_request",
            otel.name = span_name(&path),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = Empty,
            rpc.grpc.status_code = Empty,
        );
        identity_proto::otel::adopt_remote_parent(&span, request.headers());
        let call = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let metrics = Arc::clone(&self.metrics);
        let started = Instant::now();
        Box::pin(async move {
            let answer = call.instrument(span.clone()).await.map_err(Into::into);
            let code = match &answer {
                Ok(response) => status_code(response.headers()),
                Err(error) => error
                    .downcast_ref::<tonic::Status>()
                    .map_or(tonic::Code::Unknown, tonic::Status::code),
            };
            // A path no service serves is the client's to invent: it must
            // not name a span or mint a label value.
            let method = if code == tonic::Code::Unimplemented {
                "unknown"
            } else {
                path.as_str()
            };
            span.record("rpc.method", method);
            span.record("rpc.grpc.status_code", code as i32);
            metrics.observe_rpc(method, code, started.elapsed());
            answer
        })
    }
}

/// The packages whose services the server may serve; the span of a call to
/// any other path is named "unknown" (a client invents paths).
const SERVED_PACKAGES: [&str; 3] = ["/identity.v1.", "/grpc.health.v1.", "/grpc.reflection."];

/// `package.Service/Method` of a call to a served package.
fn span_name(path: &str) -> &str {
    if SERVED_PACKAGES
        .iter()
        .any(|package| path.starts_with(package))
    {
        path.trim_start_matches('/')
    } else {
        "unknown"
    }
}

/// The call's gRPC status as its response head tells it: tonic answers a
/// failed unary call with the status in the headers ("trailers only"); a
/// call whose headers carry none succeeded, its OK following in trailers.
fn status_code(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_code_reads_trailers_only_answers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_code(&headers), tonic::Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(status_code(&headers), tonic::Code::NotFound);
    }
}
