//! One span and one measurement per HTTP request: method, route template
//! (never the raw path), tenant, status, scimType and latency. Headers and
//! bodies are never recorded: they carry tokens and personal data. The gRPC
//! calls a handler makes carry the span's trace context (see `http::Bearer`),
//! so the identity service's spans join the same trace.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing::field::Empty;

use crate::AppState;
use crate::error::ScimType;
use crate::metrics::Observation;

/// The prefix and tenant-id length of the service's token text
/// (`idl_` + 32 hex digits + `_` + secret).
const TOKEN_PREFIX: &str = "idl_";
const TENANT_ID_LEN: usize = 32;

pub async fn trace_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let tenant = token_tenant(request.headers()).map(str::to_owned);
    let span = tracing::info_span!(
        "scim_request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = %route,
        tenant = Empty,
        http.response.status_code = Empty,
        scim_type = Empty,
        latency_ms = Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    // Only a tenant whose token the service accepted: a made-up one must
    // neither name a tenant nor add a label value.
    let tenant = tenant.filter(|_| status != StatusCode::UNAUTHORIZED);
    if let Some(tenant) = &tenant {
        span.record("tenant", tenant.as_str());
    }
    if let Some(scim_type) = response.extensions().get::<ScimType>() {
        span.record("scim_type", scim_type.as_str());
    }
    let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    span.record("http.response.status_code", status.as_u16());
    span.record("latency_ms", latency_ms);
    state.metrics.observe(&Observation {
        tenant: tenant.as_deref(),
        route: &route,
        method,
        status: status.as_u16(),
        seconds: elapsed.as_secs_f64(),
    });
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request finished");
        }
    });
    response
}

/// The method as a label: the ones SCIM uses, every other one as "other",
/// so a client cannot mint label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The tenant id a bearer token names in its text; only the id, never the
/// secret that follows it. Whether the token is valid is the service's to
/// say: callers use the id only once the request was not refused as 401.
fn token_tenant(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let id = token
        .trim()
        .strip_prefix(TOKEN_PREFIX)?
        .get(..TENANT_ID_LEN)?;
    id.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        .then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tenant_is_the_token_prefix_only() {
        let id = "0123456789abcdef0123456789abcdef";
        let mut headers = HeaderMap::new();
        let token = format!("Bearer idl_{id}_SECRETSECRET");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&token).unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(token_tenant(&headers), Some(id));
        for bad in [
            "Bearer idl_short",
            "Bearer idx_0123456789abcdef0123456789abcdef_x",
            "Basic idl_0123456789abcdef0123456789abcdef_x",
            "Bearer idl_0123456789ABCDEF0123456789abcdef_x",
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(token_tenant(&headers), None, "{bad}");
        }
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"BREW").unwrap_or(Method::TRACE);
        assert_eq!(method_label(&made_up), "other");
    }
}
