//! The one place where domain errors become `tonic::Status`. Every client
//! mistake carries a `google.rpc.ErrorInfo` whose reason is an `ErrorReason`
//! name, so edges map errors without parsing messages.

use std::collections::HashMap;

use identity_proto::ERROR_DOMAIN;
use identity_proto::v1::ErrorReason;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::db::StoreError;
use crate::events::EventError;
use crate::filter::FilterError;
use crate::groups::GroupError;
use crate::limits::{LimitError, RequestTimedOut};
use crate::patch::PatchError;
use crate::rpc::PageError;
use crate::sort::SortError;
use crate::store::ResourceError;
use crate::tenants::TenantError;
use crate::tokens::TokenError;
use crate::users::UserError;

/// A status for a client mistake, with its ErrorInfo.
fn client_error(code: Code, reason: ErrorReason, message: String) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason.as_str_name(), ERROR_DOMAIN, HashMap::new()),
    )
}

/// The wait suggested with UNAVAILABLE: the database is slow or busy, and
/// a prompt retry usually finds it free.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// Adds `retry-after` metadata (whole seconds), as the contract defines.
fn with_retry_after(mut status: Status, seconds: u64) -> Status {
    status.metadata_mut().insert("retry-after", seconds.into());
    status
}

impl From<LimitError> for Status {
    fn from(err: LimitError) -> Self {
        let retry_after = err.retry_after();
        with_retry_after(
            client_error(
                Code::ResourceExhausted,
                ErrorReason::RateLimited,
                err.to_string(),
            ),
            retry_after,
        )
    }
}

impl From<RequestTimedOut> for Status {
    fn from(err: RequestTimedOut) -> Self {
        with_retry_after(
            Status::deadline_exceeded(err.to_string()),
            UNAVAILABLE_RETRY_AFTER_SECS,
        )
    }
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => with_retry_after(
                Status::unavailable(err.to_string()),
                UNAVAILABLE_RETRY_AFTER_SECS,
            ),
            StoreError::Conflict(ref detail) | StoreError::TimedOut(ref detail) => {
                tracing::debug!(error = %detail, "database refused the work for now");
                with_retry_after(
                    Status::unavailable(err.to_string()),
                    UNAVAILABLE_RETRY_AFTER_SECS,
                )
            }
            // Details stay in the log (see rpc::traced); clients see no internals.
            StoreError::Internal(detail) => {
                tracing::error!(error = %detail, "database error");
                Status::internal("internal error")
            }
        }
    }
}

impl From<EventError> for Status {
    fn from(err: EventError) -> Self {
        let message = err.to_string();
        match err {
            EventError::Store(e) => e.into(),
            EventError::Auth(e) => e.into(),
            EventError::Invalid(_) => {
                client_error(Code::InvalidArgument, ErrorReason::InvalidValue, message)
            }
            EventError::Cursor => {
                client_error(Code::InvalidArgument, ErrorReason::InvalidCursor, message)
            }
            EventError::Pruned { .. } | EventError::NotReached { .. } => {
                client_error(Code::OutOfRange, ErrorReason::SequenceOutOfRange, message)
            }
            EventError::TooSlow { .. } => client_error(
                Code::ResourceExhausted,
                ErrorReason::ConsumerTooSlow,
                message,
            ),
            EventError::ShuttingDown => {
                with_retry_after(Status::unavailable(message), UNAVAILABLE_RETRY_AFTER_SECS)
            }
        }
    }
}

impl From<PageError> for Status {
    fn from(err: PageError) -> Self {
        let reason = match &err {
            PageError::Invalid(_) => ErrorReason::InvalidValue,
            PageError::Cursor(_) => ErrorReason::InvalidCursor,
        };
        client_error(Code::InvalidArgument, reason, err.to_string())
    }
}

impl From<SortError> for Status {
    fn from(err: SortError) -> Self {
        client_error(
            Code::InvalidArgument,
            ErrorReason::InvalidValue,
            err.to_string(),
        )
    }
}

impl From<FilterError> for Status {
    fn from(err: FilterError) -> Self {
        client_error(
            Code::InvalidArgument,
            ErrorReason::InvalidFilter,
            err.to_string(),
        )
    }
}

impl From<PatchError> for Status {
    fn from(err: PatchError) -> Self {
        let reason = match &err {
            PatchError::InvalidPath(_) => ErrorReason::InvalidPath,
            PatchError::InvalidValue(_) => ErrorReason::InvalidValue,
            PatchError::Mutability(_) => ErrorReason::Mutability,
            PatchError::NoTarget(_) => ErrorReason::NoTarget,
            PatchError::InvalidSyntax(_) => ErrorReason::InvalidSyntax,
        };
        client_error(Code::InvalidArgument, reason, err.to_string())
    }
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        let message = err.to_string();
        match err {
            AuthError::Missing | AuthError::Invalid | AuthError::Revoked | AuthError::NotOnEdge => {
                client_error(Code::Unauthenticated, ErrorReason::TokenInvalid, message)
            }
            AuthError::Expired => {
                client_error(Code::Unauthenticated, ErrorReason::TokenExpired, message)
            }
            AuthError::WrongTenant(_) => {
                client_error(Code::Unauthenticated, ErrorReason::TokenInvalid, message)
            }
            AuthError::Denied(_) => client_error(
                Code::PermissionDenied,
                ErrorReason::PermissionDenied,
                message,
            ),
            AuthError::TenantRequired => {
                client_error(Code::InvalidArgument, ErrorReason::InvalidValue, message)
            }
            AuthError::TenantNotFound(_) => {
                client_error(Code::NotFound, ErrorReason::Unspecified, message)
            }
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<TenantError> for Status {
    fn from(err: TenantError) -> Self {
        let message = err.to_string();
        match err {
            TenantError::InvalidSlug(_) | TenantError::InvalidValue(_) => {
                client_error(Code::InvalidArgument, ErrorReason::InvalidValue, message)
            }
            TenantError::SlugTaken(_) => {
                client_error(Code::AlreadyExists, ErrorReason::Uniqueness, message)
            }
            TenantError::NotFound(_) => {
                client_error(Code::NotFound, ErrorReason::Unspecified, message)
            }
            TenantError::Page(e) => e.into(),
            TenantError::Token(e) => e.into(),
            TenantError::Store(e) => e.into(),
        }
    }
}

impl From<TokenError> for Status {
    fn from(err: TokenError) -> Self {
        let message = err.to_string();
        match err {
            TokenError::InvalidValue(_) => {
                client_error(Code::InvalidArgument, ErrorReason::InvalidValue, message)
            }
            TokenError::NameTaken(_) => {
                client_error(Code::AlreadyExists, ErrorReason::Uniqueness, message)
            }
            TokenError::NotFound => client_error(Code::NotFound, ErrorReason::Unspecified, message),
            TokenError::ScimDisabled(_) => client_error(
                Code::FailedPrecondition,
                ErrorReason::PolicyViolation,
                message,
            ),
            TokenError::Random(_) => {
                tracing::error!(error = %message, "token generation failed");
                Status::internal("internal error")
            }
            TokenError::Store(e) => e.into(),
        }
    }
}

impl From<ResourceError> for Status {
    fn from(err: ResourceError) -> Self {
        let message = err.to_string();
        match err {
            ResourceError::NotFound { .. } => {
                client_error(Code::NotFound, ErrorReason::Unspecified, message)
            }
            ResourceError::Taken { .. } => {
                client_error(Code::AlreadyExists, ErrorReason::Uniqueness, message)
            }
            ResourceError::InvalidValue(_) => {
                client_error(Code::InvalidArgument, ErrorReason::InvalidValue, message)
            }
            ResourceError::PolicyViolation(_) => client_error(
                Code::FailedPrecondition,
                ErrorReason::PolicyViolation,
                message,
            ),
            ResourceError::EtagMismatch { .. } => {
                client_error(Code::FailedPrecondition, ErrorReason::EtagMismatch, message)
            }
            ResourceError::Filter(e) => e.into(),
            ResourceError::Sort(e) => e.into(),
            ResourceError::Patch(e) => e.into(),
            ResourceError::Page(e) => e.into(),
            ResourceError::Store(e) => e.into(),
        }
    }
}

impl From<UserError> for Status {
    fn from(err: UserError) -> Self {
        let message = err.to_string();
        match err {
            UserError::Resource(e) => e.into(),
            UserError::Claimed => {
                client_error(Code::AlreadyExists, ErrorReason::ClaimedElsewhere, message)
            }
        }
    }
}

impl From<GroupError> for Status {
    fn from(err: GroupError) -> Self {
        let message = err.to_string();
        match err {
            GroupError::Resource(e) => e.into(),
            GroupError::UserNotFound(_) => {
                client_error(Code::NotFound, ErrorReason::Unspecified, message)
            }
            GroupError::UnknownMembers(_) => {
                client_error(Code::InvalidArgument, ErrorReason::InvalidValue, message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: &Status) -> Option<String> {
        status.get_details_error_info().map(|info| {
            assert_eq!(info.domain, ERROR_DOMAIN);
            info.reason
        })
    }

    #[test]
    fn client_errors_carry_error_info() {
        let cases: Vec<(Status, Code, &str)> = vec![
            (
                EventError::Pruned { after: 3, first: 9 }.into(),
                Code::OutOfRange,
                "SEQUENCE_OUT_OF_RANGE",
            ),
            (
                EventError::NotReached {
                    after: 12,
                    newest: 10,
                }
                .into(),
                Code::OutOfRange,
                "SEQUENCE_OUT_OF_RANGE",
            ),
            (
                ResourceError::Taken {
                    attribute: "userName",
                    value: "a".into(),
                }
                .into(),
                Code::AlreadyExists,
                "UNIQUENESS",
            ),
            (
                ResourceError::NotFound {
                    kind: "user",
                    id: "x".into(),
                }
                .into(),
                Code::NotFound,
                "ERROR_REASON_UNSPECIFIED",
            ),
            (
                ResourceError::EtagMismatch {
                    kind: "user",
                    given: "1".into(),
                    current: 2,
                }
                .into(),
                Code::FailedPrecondition,
                "ETAG_MISMATCH",
            ),
            (
                PatchError::NoTarget("x".into()).into(),
                Code::InvalidArgument,
                "NO_TARGET",
            ),
            (
                PatchError::Mutability("x".into()).into(),
                Code::InvalidArgument,
                "MUTABILITY",
            ),
            (
                PatchError::InvalidPath("x".into()).into(),
                Code::InvalidArgument,
                "INVALID_PATH",
            ),
            (
                PatchError::InvalidSyntax("x".into()).into(),
                Code::InvalidArgument,
                "INVALID_SYNTAX",
            ),
            (
                AuthError::Expired.into(),
                Code::Unauthenticated,
                "TOKEN_EXPIRED",
            ),
            (
                AuthError::Missing.into(),
                Code::Unauthenticated,
                "TOKEN_INVALID",
            ),
            (
                AuthError::Denied("x".into()).into(),
                Code::PermissionDenied,
                "PERMISSION_DENIED",
            ),
            (
                AuthError::NotOnEdge.into(),
                Code::Unauthenticated,
                "TOKEN_INVALID",
            ),
            (
                LimitError::TenantBusy { retry_after: 1 }.into(),
                Code::ResourceExhausted,
                "RATE_LIMITED",
            ),
            (
                LimitError::TokenRate { retry_after: 7 }.into(),
                Code::ResourceExhausted,
                "RATE_LIMITED",
            ),
            (
                AuthError::WrongTenant("acme".into()).into(),
                Code::Unauthenticated,
                "TOKEN_INVALID",
            ),
            (
                TokenError::ScimDisabled("acme".into()).into(),
                Code::FailedPrecondition,
                "POLICY_VIOLATION",
            ),
            (
                TenantError::Token(TokenError::NameTaken("scim".into())).into(),
                Code::AlreadyExists,
                "UNIQUENESS",
            ),
            (
                GroupError::from(ResourceError::Taken {
                    attribute: "displayName",
                    value: "a".into(),
                })
                .into(),
                Code::AlreadyExists,
                "UNIQUENESS",
            ),
            (
                GroupError::UnknownMembers(vec!["x".into()]).into(),
                Code::InvalidArgument,
                "INVALID_VALUE",
            ),
            (
                GroupError::from(ResourceError::EtagMismatch {
                    kind: "group",
                    given: "1".into(),
                    current: 2,
                })
                .into(),
                Code::FailedPrecondition,
                "ETAG_MISMATCH",
            ),
            (
                GroupError::from(ResourceError::NotFound {
                    kind: "group",
                    id: "x".into(),
                })
                .into(),
                Code::NotFound,
                "ERROR_REASON_UNSPECIFIED",
            ),
            (
                TenantError::SlugTaken("a".into()).into(),
                Code::AlreadyExists,
                "UNIQUENESS",
            ),
            (
                TokenError::NameTaken("a".into()).into(),
                Code::AlreadyExists,
                "UNIQUENESS",
            ),
            (
                UserError::from(PageError::Cursor("x".into())).into(),
                Code::InvalidArgument,
                "INVALID_CURSOR",
            ),
            (
                GroupError::from(PageError::Invalid("x".into())).into(),
                Code::InvalidArgument,
                "INVALID_VALUE",
            ),
        ];
        for (status, code, expected) in cases {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(reason(&status).as_deref(), Some(expected), "{status:?}");
        }
    }

    fn retry_after(status: &Status) -> Option<&str> {
        status.metadata().get("retry-after")?.to_str().ok()
    }

    #[test]
    fn server_side_failures_are_not_client_errors() {
        let down: Status = StoreError::Unavailable("connection refused".into()).into();
        assert_eq!(down.code(), Code::Unavailable);
        assert_eq!(retry_after(&down), Some("1"));
        for busy in [
            StoreError::Conflict("deadlock detected".into()),
            StoreError::TimedOut("canceling statement".into()),
        ] {
            let status: Status = busy.into();
            assert_eq!(status.code(), Code::Unavailable);
            assert_eq!(retry_after(&status), Some("1"));
            assert!(!status.message().contains("canceling"));
        }
        let limited: Status = LimitError::TokenRate { retry_after: 7 }.into();
        assert_eq!(retry_after(&limited), Some("7"));
        let bug: Status = StoreError::Internal("syntax error at $1".into()).into();
        assert_eq!(bug.code(), Code::Internal);
        assert!(!bug.message().contains("syntax"));
    }
}
