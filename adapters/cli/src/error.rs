//! What can go wrong in one `identityctl` run, each rendered as the one line
//! printed after `error: ` on stderr.

use std::error::Error as StdError;
use std::io;

use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("invalid gRPC URL {url:?} (IDENTITY_GRPC_URL or --grpc-url): {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("IDENTITY_TOKEN contains characters that cannot be sent in a header")]
    TokenNotAscii,

    #[error(transparent)]
    Tls(#[from] identity_proto::tls::TlsError),

    #[error("cannot reach the identity service at {url}: {cause}")]
    Unreachable { url: String, cause: String },

    #[error("{}", describe_status(status, *token_missing))]
    Rpc { status: Status, token_missing: bool },

    #[error("the service sent an incomplete answer: {0}")]
    IncompleteAnswer(&'static str),

    #[error("no user named {user_name:?} in tenant {tenant:?}")]
    NoSuchUser { user_name: String, tenant: String },

    #[error("cannot encode the output as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// Names the root cause of a failed connect (e.g. "connection refused") instead of
    /// tonic's generic "transport error".
    pub fn unreachable(url: &str, err: &(dyn StdError + 'static)) -> Self {
        Self::Unreachable {
            url: url.to_owned(),
            cause: root_cause(err),
        }
    }
}

fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    loop {
        if let Some(io_err) = current.downcast_ref::<io::Error>() {
            return describe_io_error(io_err);
        }
        match current.source() {
            Some(next) => current = next,
            None => return one_line(&current.to_string()),
        }
    }
}

fn describe_io_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        io::ErrorKind::AddrNotAvailable => "address not available".to_owned(),
        _ => one_line(&err.to_string()),
    }
}

/// "permission denied: <the service's message>", plus a hint when no token was sent.
fn describe_status(status: &Status, token_missing: bool) -> String {
    let label = match status.code() {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown error",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "timed out",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "failed precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "not implemented by the identity service",
        Code::Internal => "internal error in the identity service",
        Code::Unavailable => "identity service unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    };
    let message = one_line(status.message());
    let mut line = if message.is_empty() {
        label.to_owned()
    } else {
        format!("{label}: {message}")
    };
    if status.code() == Code::Unauthenticated && token_missing {
        line.push_str(" (IDENTITY_TOKEN is not set; export the operator token)");
    }
    line
}

/// Keeps an error on one line even when a message spans several.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_code_and_message() {
        let err = CliError::Rpc {
            status: Status::permission_denied("only the operator may list tenants"),
            token_missing: false,
        };
        assert_eq!(
            err.to_string(),
            "permission denied: only the operator may list tenants"
        );
    }

    #[test]
    fn missing_token_is_hinted_on_unauthenticated() {
        let err = CliError::Rpc {
            status: Status::unauthenticated("missing bearer token"),
            token_missing: true,
        };
        assert_eq!(
            err.to_string(),
            "unauthenticated: missing bearer token (IDENTITY_TOKEN is not set; export the operator token)"
        );
    }

    #[test]
    fn multi_line_messages_become_one_line() {
        let err = CliError::Rpc {
            status: Status::invalid_argument("slug is invalid:\n  use lowercase letters"),
            token_missing: false,
        };
        assert_eq!(
            err.to_string(),
            "invalid argument: slug is invalid: use lowercase letters"
        );
    }

    #[test]
    fn root_cause_finds_the_io_error_under_wrappers() {
        #[derive(Debug, thiserror::Error)]
        #[error("transport error")]
        struct Wrapper(#[source] io::Error);
        let err = Wrapper(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(root_cause(&err), "connection refused");
    }
}
