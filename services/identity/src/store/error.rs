//! The errors every resource can meet. Each resource's own error enum wraps
//! [`ResourceError`] and adds only what is its alone, so the status mapping
//! of these is written once (in `status.rs`) for all of them.

use diesel::result::Error as DieselError;

use crate::db::{MaybeConflict, StoreError};
use crate::filter::FilterError;
use crate::patch::PatchError;
use crate::rpc::PageError;
use crate::sort::SortError;

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// `kind` is the resource's name in messages ("user", "group").
    #[error("{kind} '{id}' not found")]
    NotFound { kind: &'static str, id: String },
    /// A unique index refused the write; `attribute` is the one it keeps
    /// unique ("userName", "displayName").
    #[error("{attribute} '{value}' is already taken in this tenant")]
    Taken {
        attribute: &'static str,
        value: String,
    },
    #[error("{0}")]
    InvalidValue(String),
    /// The tenant's policy forbids the change; the message names the rule.
    #[error("{0}")]
    PolicyViolation(String),
    #[error("the {kind} is at version {current}, not {given}: read it again")]
    EtagMismatch {
        kind: &'static str,
        given: String,
        current: i64,
    },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Sort(#[from] SortError),
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error(transparent)]
    Page(#[from] PageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MaybeConflict for ResourceError {
    fn is_conflict(&self) -> bool {
        matches!(self, ResourceError::Store(e) if e.is_conflict())
    }
}

impl From<DieselError> for ResourceError {
    fn from(err: DieselError) -> Self {
        ResourceError::Store(err.into())
    }
}

/// For a resource's error enum `$error` with a `Resource(ResourceError)`
/// variant: `?` converts everything a [`ResourceError`] wraps straight into
/// it (thiserror's `#[from]` goes one level only), and a write failed by a
/// conflict is retried as any other (see `db::retry_conflict`).
macro_rules! wraps_resource_error {
    ($error:ty) => {
        wraps_resource_error!(
            $error: diesel::result::Error,
            $crate::db::StoreError,
            $crate::filter::FilterError,
            $crate::sort::SortError,
            $crate::patch::PatchError,
            $crate::rpc::PageError
        );

        impl $crate::db::MaybeConflict for $error {
            fn is_conflict(&self) -> bool {
                matches!(self, Self::Resource(e) if $crate::db::MaybeConflict::is_conflict(e))
            }
        }
    };
    ($error:ty: $($source:ty),+) => {
        $(
            impl From<$source> for $error {
                fn from(err: $source) -> Self {
                    Self::Resource(err.into())
                }
            }
        )+
    };
}
pub(crate) use wraps_resource_error;
