//! What every RPC shares: its tracing span, timestamps and paging.

use std::future::Future;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use tonic::{Code, Response, Status};
use tracing::{Instrument, field};
use uuid::Uuid;

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
    // A message may quote the request (a taken userName, a bad value) or a
    // database error about it: personal data, so only at debug. An
    // unreachable database or pool says nothing of the request.
    match &result {
        Ok(_) => tracing::info!(elapsed_ms, "rpc completed"),
        Err(status) if code == Code::Unavailable => {
            tracing::error!(elapsed_ms, error = status.message(), "rpc failed")
        }
        Err(status) => {
            if matches!(code, Code::Internal | Code::Unknown) {
                tracing::error!(elapsed_ms, "rpc failed");
            } else {
                tracing::info!(elapsed_ms, "rpc rejected");
            }
            tracing::debug!(error = status.message(), "rpc error message");
        }
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

/// The optional etag precondition of a write: empty means none, and
/// `W/"3"`, `"3"` and `3` all name version 3.
pub(crate) fn etag_matches(etag: &str, version: i64) -> bool {
    let given = etag.trim();
    if given.is_empty() {
        return true;
    }
    let bare = given.strip_prefix("W/").unwrap_or(given).trim_matches('"');
    bare == version.to_string()
}

pub(crate) const DEFAULT_PAGE_SIZE: i64 = 100;
pub(crate) const MAX_PAGE_SIZE: i64 = 1000;

/// A page request the service cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A page size or offset out of range.
    #[error("{0}")]
    Invalid(String),
    /// A page token that is malformed, altered or from another query.
    #[error("{0}")]
    Cursor(String),
}

/// Unset means the default, larger sizes are capped, negative ones refused.
pub(crate) fn page_size(requested: Option<i32>) -> Result<i64, PageError> {
    match requested {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if n < 0 => Err(PageError::Invalid(format!(
            "page_size must not be negative, got {n}"
        ))),
        Some(n) => Ok(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

/// Keyset pages (a group's members) may be larger: unset or 0 means
/// `default`, larger sizes are capped at `max`, negative ones refused.
pub(crate) fn keyset_page_size(
    requested: Option<i32>,
    default: i64,
    max: i64,
) -> Result<i64, PageError> {
    match requested {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 => Err(PageError::Invalid(format!(
            "page_size must not be negative, got {n}"
        ))),
        Some(n) => Ok(i64::from(n).min(max)),
    }
}

/// A keyset page token is the last id of the previous page; empty means
/// the first page.
pub(crate) fn keyset_after(token: &str) -> Result<Option<Uuid>, PageError> {
    if token.is_empty() {
        return Ok(None);
    }
    Uuid::try_parse(token)
        .map(Some)
        .map_err(|_| PageError::Cursor("invalid page_token".into()))
}

const TOKEN_TAG: &str = "offset:";

/// Page tokens are opaque to clients; inside they carry the next offset.
pub(crate) fn encode_page_token(offset: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_TAG}{offset}"))
}

pub(crate) fn decode_page_token(token: &str) -> Result<i64, PageError> {
    let invalid = || PageError::Cursor("invalid page_token".into());
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
        return Err(PageError::Invalid(format!(
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
    fn etag_forms() {
        assert!(etag_matches("", 3));
        assert!(etag_matches(" 3 ", 3));
        assert!(etag_matches("\"3\"", 3));
        assert!(etag_matches("W/\"3\"", 3));
        assert!(!etag_matches("W/\"2\"", 3));
        assert!(!etag_matches("*", 3));
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(Some(0)).ok(), Some(0));
        assert_eq!(page_size(Some(5000)).ok(), Some(MAX_PAGE_SIZE));
        assert!(page_size(Some(-1)).is_err());
    }

    #[test]
    fn keyset_pages() {
        assert_eq!(keyset_page_size(None, 1000, 10000).ok(), Some(1000));
        assert_eq!(keyset_page_size(Some(0), 1000, 10000).ok(), Some(1000));
        assert_eq!(keyset_page_size(Some(7), 1000, 10000).ok(), Some(7));
        assert_eq!(keyset_page_size(Some(50000), 1000, 10000).ok(), Some(10000));
        assert!(keyset_page_size(Some(-1), 1000, 10000).is_err());
        let id = Uuid::from_u128(7);
        assert_eq!(keyset_after("").ok(), Some(None));
        assert_eq!(keyset_after(&id.to_string()).ok(), Some(Some(id)));
        assert!(keyset_after("nope").is_err());
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
