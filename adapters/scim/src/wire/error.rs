//! The SCIM Error (RFC 7644 §3.12) as a value: what every parse and
//! protocol failure of the adapter is, before the edge writes it out (see
//! `crate::error`).

use http::StatusCode;
use serde_json::json;

use crate::wire::urns;

/// The `scimType` values this adapter can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    InvalidPath,
    InvalidValue,
    InvalidSyntax,
    Mutability,
    NoTarget,
    Uniqueness,
    /// RFC 9865 §2.2: a cursor that is malformed or from another query.
    InvalidCursor,
    /// A stale `If-Match`. RFC 7644 has no scimType for 412; this is the
    /// name the ETag section (§3.14) uses for the condition.
    PreconditionFailed,
    /// RFC 7644 §3.12: the answer would be too large or the request asks
    /// for more than a limit allows.
    TooMany,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::InvalidPath => "invalidPath",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::Mutability => "mutability",
            ScimType::NoTarget => "noTarget",
            ScimType::Uniqueness => "uniqueness",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::PreconditionFailed => "preconditionFailed",
            ScimType::TooMany => "tooMany",
        }
    }
}

/// A SCIM Error response: HTTP status, optional `scimType`, a `detail`, and
/// for answers that invite a retry (429, 503, 504) the `Retry-After` seconds.
#[derive(Debug, PartialEq, Eq)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<ScimType>,
    pub detail: String,
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn new(status: StatusCode, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }

    fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    /// A stale `If-Match` noticed by the adapter itself.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            Some(ScimType::PreconditionFailed),
            detail,
        )
    }

    pub fn invalid_cursor(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidCursor, detail)
    }

    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [urns::ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type.as_str());
        }
        body
    }
}
