//! What every RPC shares: its tracing span, timestamps and paging.

use std::future::Future;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use tonic::{Code, Response, Status};
use tracing::{Instrument, field};

/// Runs one RPC inside a span named after it. The tenant is recorded once
/// known (see [`record_tenant`]); the outcome is the gRPC code. Exporters
/// (OpenTelemetry) can later hang off these spans unchanged.
pub(crate) async fn traced<T>(
    rpc: &'static str,
    body: impl Future<Output = Result<T, Status>>,
) -> Result<Response<T>, Status> {
    let span = tracing::info_span!("rpc", rpc, tenant = field::Empty, code = field::Empty);
    let started = Instant::now();
    let result = body.instrument(span.clone()).await;
    let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
    span.record("code", field::debug(code));
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let _entered = span.enter();
    match &result {
        Ok(_) => tracing::info!(elapsed_ms, "rpc completed"),
        Err(status) if matches!(code, Code::Internal | Code::Unknown | Code::Unavailable) => {
            tracing::error!(elapsed_ms, error = status.message(), "rpc failed")
        }
        Err(status) => tracing::info!(elapsed_ms, error = status.message(), "rpc rejected"),
    }
    result.map(Response::new)
}

/// Adds the tenant slug to the current RPC span.
pub(crate) fn record_tenant(slug: &str) {
    tracing::Span::current().record("tenant", slug);
}

pub(crate) fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) const DEFAULT_PAGE_SIZE: i64 = 100;
pub(crate) const MAX_PAGE_SIZE: i64 = 1000;

/// A malformed page size or token.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PageError(String);

/// Unset means the default, larger sizes are capped, negative ones refused.
pub(crate) fn page_size(requested: Option<i32>) -> Result<i64, PageError> {
    match requested {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if n < 0 => Err(PageError(format!(
            "page_size must not be negative, got {n}"
        ))),
        Some(n) => Ok(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

const TOKEN_TAG: &str = "offset:";

/// Page tokens are opaque to clients; inside they carry the next offset.
pub(crate) fn encode_page_token(offset: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_TAG}{offset}"))
}

pub(crate) fn decode_page_token(token: &str) -> Result<i64, PageError> {
    let invalid = || PageError("invalid page_token".into());
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(TOKEN_TAG)
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(invalid)
}

/// Where a page starts: the token wins over an explicit offset.
pub(crate) fn page_offset(offset: i64, token: &str) -> Result<i64, PageError> {
    if !token.is_empty() {
        return decode_page_token(token);
    }
    if offset < 0 {
        return Err(PageError(format!(
            "offset must not be negative, got {offset}"
        )));
    }
    Ok(offset)
}

/// The token of the page after `offset + returned`, or "" on the last page.
pub(crate) fn next_page_token(offset: i64, returned: usize, total: i64) -> String {
    let next = offset.saturating_add(returned as i64);
    if returned > 0 && next < total {
        encode_page_token(next)
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(Some(0)).ok(), Some(0));
        assert_eq!(page_size(Some(5000)).ok(), Some(MAX_PAGE_SIZE));
        assert!(page_size(Some(-1)).is_err());
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(decode_page_token(&encode_page_token(250)).ok(), Some(250));
        assert!(decode_page_token("garbage!").is_err());
        assert!(decode_page_token(&URL_SAFE_NO_PAD.encode("offset:-4")).is_err());
        assert_eq!(page_offset(7, "").ok(), Some(7));
        assert_eq!(page_offset(7, &encode_page_token(9)).ok(), Some(9));
        assert!(page_offset(-1, "").is_err());
        assert_eq!(next_page_token(0, 10, 10), "");
        assert_eq!(next_page_token(0, 0, 10), "");
        assert_eq!(
            decode_page_token(&next_page_token(10, 10, 25)).ok(),
            Some(20)
        );
    }
}
