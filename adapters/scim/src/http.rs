//! HTTP edges shared by the SCIM handlers: the bearer token extractor, the
//! lenient JSON body extractor, query parameters, `If-Match`/`ETag`, and SCIM
//! JSON responses.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;
use tonic::metadata::{Ascii, MetadataValue};

use crate::AppState;
use crate::error::ScimError;
use crate::request_id::{self, RequestId};
use crate::scope::Scope;
use crate::wire::query::ScimQuery;
use crate::wire::schema;

/// Metadata marking a call made on behalf of the public SCIM edge (see the
/// contract's header).
const EDGE_HEADER: &str = "x-identity-edge";
const EDGE_SCIM: &str = "scim";

/// The caller's `Authorization: Bearer` credential, forwarded unchanged to the
/// service, which alone decides whether it is valid, together with the
/// [`Scope`] it was presented in: the service checks the pair. No `Debug`:
/// it must never reach a log. Cloned into streamed responses that page the
/// service.
#[derive(Clone)]
pub struct Bearer {
    token: MetadataValue<Ascii>,
    scope: Scope,
    /// The deadline every call made for this request carries.
    timeout: Duration,
    /// The HTTP request's id, which every call made for it carries.
    request_id: Option<RequestId>,
}

impl Bearer {
    /// Wraps a gRPC message with the caller's credential, the SCIM edge
    /// marker (the service then accepts SCIM tenant tokens only) and a
    /// deadline (the service stops working when it passes), the trace
    /// context of the request's span and the HTTP request's id.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        identity_proto::otel::inject(&tracing::Span::current(), request.metadata_mut());
        if let Some(RequestId(id)) = &self.request_id {
            request
                .metadata_mut()
                .insert(request_id::METADATA_KEY, id.clone());
        }
        request
            .metadata_mut()
            .insert("authorization", self.token.clone());
        request
            .metadata_mut()
            .insert(EDGE_HEADER, MetadataValue::from_static(EDGE_SCIM));
        request.set_timeout(self.timeout);
        request
    }

    /// The `tenant` of every gRPC request: the slug a tenant-addressed URL
    /// names, else empty (the token's own tenant).
    pub fn tenant(&self) -> String {
        self.scope.tenant.to_string()
    }

    /// The tenant and location base of the request.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    fn parse(headers: &HeaderMap, scope: Scope, timeout: Duration) -> Result<Self, ScimError> {
        let malformed =
            || ScimError::unauthorized("the Authorization header must be \"Bearer <token>\"");
        let header = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ScimError::unauthorized("the Authorization header is missing"))?;
        let text = header.to_str().map_err(|_| malformed())?.trim();
        let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(malformed());
        }
        MetadataValue::try_from(format!("Bearer {token}"))
            .map(|token| Bearer {
                token,
                scope,
                timeout,
                request_id: None,
            })
            .map_err(|_| malformed())
    }
}

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let Ok(scope) = Scope::from_request_parts(parts, state).await;
        let mut bearer = Bearer::parse(&parts.headers, scope, state.grpc_timeout)?;
        bearer.request_id = parts.extensions.get::<RequestId>().cloned();
        Ok(bearer)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ScimQuery {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ScimError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ScimError::invalid_syntax(format!("invalid query string: {e}")))?;
        Ok(ScimQuery(pairs))
    }
}

/// A JSON request body. `application/scim+json` and `application/json` are
/// accepted, and so is a JSON-looking body under a missing or wrong media
/// type, since IdPs and hand-written curl lines get it wrong.
pub struct ScimJson(pub Json);

impl FromRequest<AppState> for ScimJson {
    type Rejection = ScimError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ScimError> {
        let json_media_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| is_json_media_type(value.to_str().unwrap_or_default()));
        // Refused before any byte is read: a client waiting on
        // `Expect: 100-continue` then never sends the body.
        if declared_length(request.headers()).is_some_and(|length| length > state.max_body_bytes) {
            return Err(ScimError::payload_too_large(state.max_body_bytes));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ScimError::payload_too_large(state.max_body_bytes)
                } else {
                    ScimError::invalid_syntax("the request body could not be read")
                }
            })?;
        if json_media_type == Some(false) && !looks_like_json(&bytes) {
            return Err(ScimError::unsupported_media_type());
        }
        let body = serde_json::from_slice(&bytes).map_err(|e| {
            ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
        })?;
        crate::wire::bounds::check_json(&body)?;
        Ok(ScimJson(body))
    }
}

/// The `Content-Length` the client announced, if it is a number.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case(schema::SCIM_MEDIA_TYPE)
        || essence.to_ascii_lowercase().ends_with("+json")
}

fn looks_like_json(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// The version an `If-Match` header asks for, as the service's bare etag
/// (`W/"3"` -> `3`); empty when absent or `*`.
pub fn if_match(headers: &HeaderMap) -> String {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(bare_etag)
        .unwrap_or_default()
}

/// Checks an `If-Match` version ("" for none) against the current one, for
/// requests that end up writing nothing and so never reach the service's
/// own check.
pub fn check_if_match(wanted: &str, current: &str) -> Result<(), ScimError> {
    if wanted.is_empty() || wanted == current {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "the resource is at version {}, not {}",
            weak_etag(current),
            weak_etag(wanted)
        )))
    }
}

/// Every etag listed in `If-None-Match`, bare; `*` stays `*`.
pub fn if_none_match(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| match tag.trim() {
            "*" => "*".to_owned(),
            tag => bare_etag(tag),
        })
        .filter(|tag| !tag.is_empty())
        .collect()
}

/// An entity tag as the service spells it: `W/"3"` and `"3"` are `3`; `*`
/// (any version) is "", no precondition.
pub fn bare_etag(text: &str) -> String {
    let first = text.split(',').next().unwrap_or_default().trim();
    if first == "*" {
        return String::new();
    }
    let first = first.strip_prefix("W/").unwrap_or(first);
    first.trim_matches('"').to_owned()
}

/// The weak ETag the service's version is published as.
pub fn weak_etag(etag: &str) -> String {
    format!("W/\"{etag}\"")
}

/// Sets the `ETag` header to the service's version.
pub fn insert_etag(headers: &mut HeaderMap, etag: &str) {
    if let Ok(value) = HeaderValue::from_str(&weak_etag(etag)) {
        headers.insert(header::ETAG, value);
    }
}

/// `304 Not Modified` when `If-None-Match` names the current version or
/// is `*`, which any existing resource matches (RFC 9110 §13.1.2).
pub fn not_modified(headers: &HeaderMap, etag: &str) -> Option<Response> {
    if !if_none_match(headers).iter().any(|e| e == etag || e == "*") {
        return None;
    }
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    insert_etag(response.headers_mut(), etag);
    Some(response)
}

/// The `Location` header of a resource just created.
pub fn insert_location(headers: &mut HeaderMap, location: &str) {
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
}

/// A response whose SCIM JSON body is written as it is produced.
pub fn scim_body(status: StatusCode, body: Body) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(schema::SCIM_MEDIA_TYPE),
        )],
        body,
    )
        .into_response()
}

/// A SCIM JSON response with the SCIM media type.
pub fn scim_json(status: StatusCode, body: &Json) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(schema::SCIM_MEDIA_TYPE),
        )],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                name,
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
        }
        map
    }

    fn plain() -> Scope {
        Scope {
            tenant: "".into(),
            base_url: "https://h".into(),
        }
    }

    #[test]
    fn bearer_token_is_required() {
        let auth = |v: &str| {
            Bearer::parse(
                &headers(&[(header::AUTHORIZATION, v)]),
                plain(),
                Duration::from_secs(1),
            )
        };
        assert!(auth("Bearer idl_abc").is_ok());
        assert!(auth("bearer   idl_abc  ").is_ok());
        for bad in [
            "non-token",
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "Token x",
        ] {
            let err = auth(bad).err().map(|e| e.status);
            assert_eq!(err, Some(StatusCode::UNAUTHORIZED), "{bad}");
        }
        assert!(Bearer::parse(&HeaderMap::new(), plain(), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn bearer_is_forwarded_as_metadata() {
        let scope = Scope {
            tenant: "acme".into(),
            base_url: "https://h/tenants/acme".into(),
        };
        let timeout = Duration::from_millis(1500);
        let Ok(bearer) = Bearer::parse(
            &headers(&[(header::AUTHORIZATION, "BEARER tok")]),
            scope,
            timeout,
        ) else {
            panic!("valid header rejected")
        };
        assert_eq!(bearer.tenant(), "acme");
        let request = bearer.request(());
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .map(|v| v.to_str().ok()),
            Some(Some("Bearer tok"))
        );
        let metadata = request.metadata();
        assert_eq!(
            metadata.get("x-identity-edge").map(|v| v.to_str().ok()),
            Some(Some("scim"))
        );
        assert_eq!(
            metadata.get("grpc-timeout").map(|v| v.to_str().ok()),
            Some(Some("1500000u"))
        );
    }

    #[test]
    fn request_id_is_forwarded_as_metadata() {
        let Ok(mut bearer) = Bearer::parse(
            &headers(&[(header::AUTHORIZATION, "Bearer tok")]),
            plain(),
            Duration::from_secs(1),
        ) else {
            panic!("valid header rejected")
        };
        assert!(bearer.request(()).metadata().get("x-request-id").is_none());
        bearer.request_id = Some(RequestId(MetadataValue::from_static("req-42")));
        assert_eq!(
            bearer
                .request(())
                .metadata()
                .get("x-request-id")
                .map(|v| v.to_str().ok()),
            Some(Some("req-42"))
        );
    }

    #[test]
    fn declared_length_is_read() {
        assert_eq!(
            declared_length(&headers(&[(header::CONTENT_LENGTH, "42")])),
            Some(42)
        );
        assert_eq!(
            declared_length(&headers(&[(header::CONTENT_LENGTH, "x")])),
            None
        );
        assert_eq!(declared_length(&HeaderMap::new()), None);
    }

    #[test]
    fn etags_are_unwrapped() {
        assert_eq!(if_match(&headers(&[(header::IF_MATCH, "W/\"3\"")])), "3");
        assert_eq!(
            if_match(&headers(&[(header::IF_MATCH, "\"7\", \"8\"")])),
            "7"
        );
        assert_eq!(if_match(&headers(&[(header::IF_MATCH, "*")])), "");
        assert_eq!(if_match(&HeaderMap::new()), "");
        assert_eq!(
            if_none_match(&headers(&[(header::IF_NONE_MATCH, "W/\"1\", W/\"2\"")])),
            vec!["1", "2"]
        );
        assert_eq!(weak_etag("4"), "W/\"4\"");
        assert!(check_if_match("", "4").is_ok());
        assert!(check_if_match("4", "4").is_ok());
        assert_eq!(
            check_if_match("3", "4").err().map(|e| e.status),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        let matching = headers(&[(header::IF_NONE_MATCH, "W/\"4\"")]);
        let response = not_modified(&matching, "4");
        assert_eq!(
            response.as_ref().map(Response::status),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert!(not_modified(&matching, "5").is_none());
        let any = headers(&[(header::IF_NONE_MATCH, "*")]);
        assert!(not_modified(&any, "5").is_some());
        assert!(not_modified(&HeaderMap::new(), "5").is_none());
    }

    #[test]
    fn query_names_ignore_case() {
        let query = ScimQuery(vec![
            ("Attributes".into(), " a ".into()),
            ("attributes".into(), "b".into()),
        ]);
        assert_eq!(query.get("ATTRIBUTES"), Some("a"));
        assert_eq!(query.all("attributes").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(query.get("filter"), None);
    }

    #[test]
    fn media_types() {
        assert!(is_json_media_type("application/scim+json; charset=utf-8"));
        assert!(is_json_media_type("Application/JSON"));
        assert!(!is_json_media_type("text/plain"));
        assert!(looks_like_json(b"  {\"a\":1}"));
        assert!(!looks_like_json(b"a=1"));
    }
}
