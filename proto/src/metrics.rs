//! The `/metrics` answer both servers give: their registry in the
//! OpenMetrics text format, which Prometheus scrapes natively.

use prometheus_client::registry::Registry;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `registry` encoded as the answer to a scrape; a 500 if it cannot be.
pub fn scrape_response(registry: &Registry) -> http::Response<String> {
    let mut text = String::new();
    let (status, content_type) =
        match prometheus_client::encoding::text::encode(&mut text, registry) {
            Ok(()) => (http::StatusCode::OK, OPENMETRICS),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the metrics");
                text = "cannot encode the metrics\n".to_owned();
                (http::StatusCode::INTERNAL_SERVER_ERROR, "text/plain")
            }
        };
    let mut response = http::Response::new(text);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
