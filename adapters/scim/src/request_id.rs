//! The request id of each HTTP request: the client's `X-Request-Id` when it
//! is sane, else one made here. Every gRPC call made for the request
//! carries it as `x-request-id` (see `http::Bearer`), so the service's
//! events and logs name it, and the response echoes it.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tonic::metadata::{Ascii, MetadataValue};

/// The header, in and out.
pub const HEADER: HeaderName = HeaderName::from_static(METADATA_KEY);

/// The gRPC metadata key the service reads (see `events::Origin::of`).
pub const METADATA_KEY: &str = "x-request-id";

/// The longest id taken from a client; the service keeps as much.
const MAX_LEN: usize = 128;

/// The request's id, as request extension and gRPC metadata value.
#[derive(Clone, Debug)]
pub struct RequestId(pub MetadataValue<Ascii>);

/// The client's id when it is 1 to [`MAX_LEN`] visible ASCII characters;
/// anything else (empty, too long, spaces, control or non-ASCII bytes, or
/// the header sent twice) is replaced rather than cut or cleaned, so an id
/// in an event is always one the client sent whole or one made here.
fn sent(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(&HEADER).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let bytes = value.as_bytes();
    let sane =
        !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(u8::is_ascii_graphic);
    sane.then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// Gives the request its id (an extension the handlers' gRPC calls read)
/// and puts it on the response.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = sent(request.headers()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let header = HeaderValue::try_from(id.as_str()).ok();
    if let Ok(value) = MetadataValue::try_from(id.as_str()) {
        request.extensions_mut().insert(RequestId(value));
    }
    let mut response = next.run(request).await;
    if let Some(header) = header {
        response.headers_mut().insert(HEADER, header);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(HEADER, value);
            }
        }
        headers
    }

    #[test]
    fn sane_ids_are_kept_whole() {
        assert_eq!(sent(&with(&["abc-123"])).as_deref(), Some("abc-123"));
        let longest = "x".repeat(MAX_LEN);
        assert_eq!(sent(&with(&[&longest])), Some(longest));
    }

    #[test]
    fn other_ids_are_replaced() {
        assert_eq!(sent(&HeaderMap::new()), None);
        for bad in ["", "a b", "tab\there", &"x".repeat(MAX_LEN + 1)] {
            assert_eq!(sent(&with(&[bad])), None, "{bad:?}");
        }
        let mut non_ascii = HeaderMap::new();
        non_ascii.insert(
            HEADER,
            HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(sent(&non_ascii), None);
        assert_eq!(sent(&with(&["a", "b"])), None);
    }
}
