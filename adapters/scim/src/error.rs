//! The one place where failures become SCIM Error responses (RFC 7644 §3.12):
//! the service's `tonic::Status` (mapped by its ErrorInfo reason) and the
//! adapter's own parse and protocol errors (the values of
//! `wire::error`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use identity_proto::v1::ErrorReason;
use tonic::Code;
use tonic_types::StatusExt;

pub use crate::wire::error::{ScimError, ScimType};
use crate::wire::urns;

/// `Retry-After` of a 429 when the service names no delay: a rate or
/// concurrency limit frees up quickly.
const RETRY_RATE_LIMITED_SECS: u64 = 1;
/// `Retry-After` of a 503 or 504 when the service names no delay: long
/// enough for a restart or a lock to clear, short enough for provisioning.
const RETRY_UNAVAILABLE_SECS: u64 = 2;

/// The failures only the HTTP edge and the call to the service meet.
impl ScimError {
    fn retry_after(self, seconds: u64) -> Self {
        ScimError {
            retry_after: Some(seconds),
            ..self
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            "this method is not supported on this endpoint",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("the request body exceeds the limit of {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            "the request body must be application/scim+json or application/json",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "the identity service is unavailable; retry later",
        )
        .retry_after(RETRY_UNAVAILABLE_SECS)
    }

    /// The identity service did not answer within the call's deadline.
    pub fn timed_out() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            None,
            "the identity service did not answer in time; retry later",
        )
        .retry_after(RETRY_UNAVAILABLE_SECS)
    }

    /// A handler panicked: the request failed, the server lives on.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "internal error in the SCIM adapter",
        )
    }
}

/// The `scimType` the service's ErrorInfo reason stands for.
fn scim_type_of(reason: ErrorReason) -> Option<ScimType> {
    match reason {
        ErrorReason::InvalidFilter => Some(ScimType::InvalidFilter),
        ErrorReason::InvalidPath => Some(ScimType::InvalidPath),
        ErrorReason::InvalidValue => Some(ScimType::InvalidValue),
        ErrorReason::InvalidSyntax => Some(ScimType::InvalidSyntax),
        // A rule of the tenant's policy (synthetic groups, the
        // SCIM-managed lock) makes the target immutable for this request.
        ErrorReason::Mutability | ErrorReason::PolicyViolation => Some(ScimType::Mutability),
        ErrorReason::NoTarget => Some(ScimType::NoTarget),
        ErrorReason::Uniqueness => Some(ScimType::Uniqueness),
        ErrorReason::InvalidCursor => Some(ScimType::InvalidCursor),
        ErrorReason::TooMany => Some(ScimType::TooMany),
        _ => None,
    }
}

impl From<tonic::Status> for ScimError {
    fn from(status: tonic::Status) -> Self {
        let reason = status
            .get_details_error_info()
            .filter(|info| info.domain == identity_proto::ERROR_DOMAIN)
            .and_then(|info| ErrorReason::from_str_name(&info.reason));
        let scim_type = reason.and_then(scim_type_of);
        let retry_after = retry_after(&status);
        let detail = status.message().to_owned();
        if reason == Some(ErrorReason::TooMany) || status.code() == Code::OutOfRange {
            // OutOfRange is tonic's own "decoded message length too large".
            tracing::warn!(code = ?status.code(), message = status.message(), "answer too large");
            let detail = if reason == Some(ErrorReason::TooMany) {
                or_default(detail, TOO_MANY)
            } else {
                TOO_MANY.to_owned()
            };
            return Self::new(StatusCode::BAD_REQUEST, Some(ScimType::TooMany), detail);
        }
        let http = match code_in_transit(&status) {
            Code::AlreadyExists => {
                return Self::new(
                    StatusCode::CONFLICT,
                    Some(ScimType::Uniqueness),
                    or_default(detail, "the resource already exists"),
                );
            }
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            // A policy refusal is the client's request, not its etag, at fault.
            Code::FailedPrecondition if reason == Some(ErrorReason::PolicyViolation) => {
                StatusCode::BAD_REQUEST
            }
            Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => {
                let fallback = "too many requests for this tenant; retry later";
                return Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    None,
                    or_default(detail, fallback),
                )
                .retry_after(retry_after.unwrap_or(RETRY_RATE_LIMITED_SECS));
            }
            Code::Unavailable => {
                // Transport messages name internal addresses; keep them in the log.
                tracing::warn!(code = ?status.code(), message = status.message(), "identity service unavailable");
                return Self::unavailable()
                    .retry_after(retry_after.unwrap_or(RETRY_UNAVAILABLE_SECS));
            }
            // The service's deadline passed, or tonic's own ("Timeout expired").
            Code::DeadlineExceeded | Code::Cancelled => {
                tracing::warn!(code = ?status.code(), message = status.message(), "identity service timed out");
                return Self::timed_out()
                    .retry_after(retry_after.unwrap_or(RETRY_UNAVAILABLE_SECS));
            }
            code => {
                // The message may quote the request: personal data, debug only.
                tracing::error!(?code, "identity service failed");
                tracing::debug!(
                    message = status.message(),
                    "identity service failure message"
                );
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "internal error in the identity service",
                );
            }
        };
        let scim_type = match http {
            StatusCode::BAD_REQUEST => scim_type,
            StatusCode::PRECONDITION_FAILED => Some(ScimType::PreconditionFailed),
            _ => None,
        };
        let fallback = http.canonical_reason().unwrap_or("request failed");
        Self::new(http, scim_type, or_default(detail, fallback))
    }
}

/// The status's code, with UNAVAILABLE for a call whose connection broke
/// under it (the service killed mid-call): tonic reports that as UNKNOWN
/// "transport error", with the transport failure as its source. Like any
/// UNAVAILABLE it may be retried; a create may have been applied, and its
/// retry then gets 409.
fn code_in_transit(status: &tonic::Status) -> Code {
    if status.code() != Code::Unknown {
        return status.code();
    }
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        if cause.is::<tonic::transport::Error>() || cause.is::<hyper::Error>() {
            return Code::Unavailable;
        }
        source = cause.source();
    }
    Code::Unknown
}

/// The detail of a `tooMany` answer that the service did not word itself.
const TOO_MANY: &str = "the answer would be too large to send; ask for fewer resources (a smaller count) or fewer attributes";

/// The whole seconds of the service's `retry-after` metadata, if valid.
fn retry_after(status: &tonic::Status) -> Option<u64> {
    status
        .metadata()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse().ok())
}

fn or_default(detail: String, fallback: &str) -> String {
    if detail.is_empty() {
        fallback.to_owned()
    } else {
        detail
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(urns::SCIM_MEDIA_TYPE),
            )],
            self.body().to_string(),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // For the request's span (see `telemetry`).
        if let Some(scim_type) = self.scim_type {
            response.extensions_mut().insert(scim_type);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tonic_types::{ErrorDetails, StatusExt};

    fn status(code: Code, reason: &str) -> tonic::Status {
        tonic::Status::with_error_details(
            code,
            "msg",
            ErrorDetails::with_error_info(
                reason,
                identity_proto::ERROR_DOMAIN,
                std::collections::HashMap::new(),
            ),
        )
    }

    #[test]
    fn maps_every_code_and_reason() {
        let cases = [
            (Code::AlreadyExists, "UNIQUENESS", 409, Some("uniqueness")),
            (Code::NotFound, "", 404, None),
            (
                Code::InvalidArgument,
                "INVALID_FILTER",
                400,
                Some("invalidFilter"),
            ),
            (
                Code::InvalidArgument,
                "INVALID_PATH",
                400,
                Some("invalidPath"),
            ),
            (
                Code::InvalidArgument,
                "INVALID_VALUE",
                400,
                Some("invalidValue"),
            ),
            (
                Code::InvalidArgument,
                "INVALID_SYNTAX",
                400,
                Some("invalidSyntax"),
            ),
            (Code::InvalidArgument, "MUTABILITY", 400, Some("mutability")),
            (Code::InvalidArgument, "NO_TARGET", 400, Some("noTarget")),
            (Code::InvalidArgument, "SOMETHING_NEW", 400, None),
            (
                Code::InvalidArgument,
                "INVALID_CURSOR",
                400,
                Some("invalidCursor"),
            ),
            (
                Code::FailedPrecondition,
                "ETAG_MISMATCH",
                412,
                Some("preconditionFailed"),
            ),
            (
                Code::FailedPrecondition,
                "POLICY_VIOLATION",
                400,
                Some("mutability"),
            ),
            (
                Code::AlreadyExists,
                "CLAIMED_ELSEWHERE",
                409,
                Some("uniqueness"),
            ),
            (Code::Unauthenticated, "TOKEN_EXPIRED", 401, None),
            (Code::Unauthenticated, "TOKEN_INVALID", 401, None),
            (Code::PermissionDenied, "PERMISSION_DENIED", 403, None),
            (Code::Unavailable, "", 503, None),
            (Code::ResourceExhausted, "", 429, None),
            (Code::ResourceExhausted, "RATE_LIMITED", 429, None),
            (Code::DeadlineExceeded, "", 504, None),
            (Code::Cancelled, "", 504, None),
            (Code::OutOfRange, "", 400, Some("tooMany")),
            (Code::InvalidArgument, "TOO_MANY", 400, Some("tooMany")),
            (Code::FailedPrecondition, "TOO_MANY", 400, Some("tooMany")),
            (Code::Internal, "", 500, None),
            (Code::Unknown, "", 500, None),
            (Code::DataLoss, "", 500, None),
        ];
        for (code, reason, http, scim_type) in cases {
            let err = ScimError::from(status(code, reason));
            assert_eq!(err.status.as_u16(), http, "{code:?}");
            assert_eq!(err.scim_type.map(ScimType::as_str), scim_type, "{code:?}");
            assert!(!err.detail.is_empty());
        }
    }

    #[test]
    fn retryable_answers_carry_retry_after() {
        let header = |err: ScimError| {
            let response = err.into_response();
            let value = response.headers().get(header::RETRY_AFTER).cloned();
            (
                response.status().as_u16(),
                value.map(|v| v.to_str().map(str::to_owned).ok()),
            )
        };
        let mut limited = status(Code::ResourceExhausted, "RATE_LIMITED");
        limited.metadata_mut().insert(
            "retry-after",
            tonic::metadata::MetadataValue::from_static("7"),
        );
        assert_eq!(
            header(ScimError::from(limited)),
            (429, Some(Some("7".into())))
        );
        let defaults = [
            (tonic::Status::resource_exhausted(""), 429, "1"),
            (tonic::Status::unavailable("connection refused"), 503, "2"),
            (tonic::Status::deadline_exceeded("deadline"), 504, "2"),
            (tonic::Status::cancelled("Timeout expired"), 504, "2"),
        ];
        for (status, http, seconds) in defaults {
            assert_eq!(
                header(ScimError::from(status)),
                (http, Some(Some(seconds.into())))
            );
        }
        let mut garbled = tonic::Status::unavailable("");
        garbled.metadata_mut().insert(
            "retry-after",
            tonic::metadata::MetadataValue::from_static("soon"),
        );
        assert_eq!(
            header(ScimError::from(garbled)),
            (503, Some(Some("2".into())))
        );
        assert_eq!(header(ScimError::not_found("x")), (404, None));
    }

    #[test]
    fn too_large_answers_say_why() {
        let err = ScimError::from(tonic::Status::out_of_range(
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        ));
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
        assert!(err.detail.contains("count"), "{}", err.detail);
        assert!(!err.detail.contains("4194304"), "{}", err.detail);
        let err = ScimError::from(status(Code::InvalidArgument, "TOO_MANY"));
        assert_eq!(err.detail, "msg");
    }

    #[test]
    fn reason_from_another_domain_is_ignored() {
        let status = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "bad",
            ErrorDetails::with_error_info(
                "INVALID_FILTER",
                "other.domain",
                std::collections::HashMap::new(),
            ),
        );
        assert_eq!(ScimError::from(status).scim_type, None);
    }

    #[test]
    fn status_without_details_keeps_its_message() {
        let err = ScimError::from(tonic::Status::not_found("user 42 not found"));
        assert_eq!(err.detail, "user 42 not found");
        let err = ScimError::from(tonic::Status::not_found(""));
        assert_eq!(err.detail, "Not Found");
    }

    #[test]
    fn body_has_string_status_and_detail() {
        let body = ScimError::invalid_filter("bad at 3").body();
        assert_eq!(
            body,
            json!({
                "schemas": [urns::ERROR],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "bad at 3",
            })
        );
        let body = ScimError::not_found("nope").body();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }

    #[test]
    fn unauthorized_asks_for_a_bearer_token() {
        let response = ScimError::unauthorized("no").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .is_ok_and(|v| v.starts_with("Bearer"))
        );
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            urns::SCIM_MEDIA_TYPE
        );
    }
}
