//! Trace export and W3C trace-context propagation, shared by the identity
//! service and the SCIM adapter so that one SCIM request is one trace across
//! both processes.
//!
//! Export is configured only by the standard OpenTelemetry variables, which
//! the SDK reads itself: `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) switches OTLP/gRPC export on,
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the process,
//! `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG`) samples. With no
//! endpoint set nothing is exported and no exporter is built.

use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::registry::LookupSpan;

/// The variables that switch export on; either one is enough.
const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];
/// How long shutdown waits for the last spans to reach the collector.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// What the SDK names a process whose variables name none.
const UNNAMED_SERVICE: &str = "unknown_service";

/// Why trace export could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up OTLP trace export: {0}")]
pub struct ExportError(String);

/// A running OTLP trace exporter; [`TraceExport::shutdown`] flushes it.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// The exporter the OTEL_* variables describe, or `None` when no
    /// endpoint is set. `default_service_name` names the process when
    /// neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` does.
    /// Must run inside a Tokio runtime: the exporter's gRPC channel lives on it.
    pub fn from_env(default_service_name: &'static str) -> Result<Option<Self>, ExportError> {
        let enabled = ENDPOINT_VARS
            .iter()
            .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()));
        if !enabled {
            return Ok(None);
        }
        let exporter = SpanExporter::builder()
            .with_tonic()
            .with_protocol(opentelemetry_otlp::Protocol::Grpc)
            .build()
            .map_err(|e| ExportError(e.to_string()))?;
        // The builder reads OTEL_TRACES_SAMPLER and the resource variables.
        let provider = SdkTracerProvider::builder()
            .with_resource(resource(default_service_name))
            .with_batch_exporter(exporter)
            .build();
        Ok(Some(TraceExport { provider }))
    }

    /// The tracing layer that turns spans (and their events) at INFO and
    /// above into exported spans, whatever RUST_LOG lets the log print:
    /// personal data is logged at DEBUG only, so it never reaches a trace.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = self.provider.tracer("identity-lifecycle");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(LevelFilter::INFO)
    }

    /// Exports the spans still buffered and stops the exporter. Blocks (up
    /// to a few seconds): call it off the async runtime's worker threads,
    /// with the runtime still running.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(error = %e, "could not flush the last spans");
        }
    }
}

/// The detected resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), with
/// `default_service_name` when they name no service.
fn resource(default_service_name: &'static str) -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with(UNNAMED_SERVICE));
    if named {
        detected
    } else {
        Resource::builder()
            .with_service_name(default_service_name)
            .build()
    }
}

/// Writes the W3C `traceparent` (and `tracestate`) of `span` into an
/// outgoing call's metadata, so the callee's spans join its trace. Writes
/// nothing when the span is not exported.
pub fn inject(span: &tracing::Span, metadata: &mut tonic::metadata::MetadataMap) {
    let context = span.context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

/// Makes `span` a child of the remote span named by the W3C headers of an
/// incoming request; leaves it a root when they name none (or are invalid).
pub fn adopt_remote_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if opentelemetry::trace::TraceContextExt::has_active_span(&context) {
        // Fails only when no OpenTelemetry layer is installed: nothing to join then.
        let _ = span.set_parent(context);
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_traceparent_leaves_no_parent() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static("00-zz-01"));
        let context = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        assert!(!opentelemetry::trace::TraceContextExt::has_active_span(
            &context
        ));
    }

    #[test]
    fn valid_traceparent_is_read_back() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static(parent));
        let context = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        let mut out = tonic::metadata::MetadataMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(&mut out));
        assert_eq!(
            out.get("traceparent").and_then(|v| v.to_str().ok()),
            Some(parent)
        );
    }
}
