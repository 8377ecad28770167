//! Tenants: the unit of isolation, named by a slug.

pub(crate) mod policy;
pub(crate) mod service;
pub(crate) mod store;

use crate::db::StoreError;
use crate::rpc::PageError;
use crate::tokens::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("invalid slug '{0}': use 2 to 63 lowercase letters, digits and '-'")]
    InvalidSlug(String),
    #[error("tenant '{0}' already exists")]
    SlugTaken(String),
    #[error("tenant '{0}' not found")]
    NotFound(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error(transparent)]
    Page(#[from] PageError),
    /// Issuing the token EnableScim hands out failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for TenantError {
    fn from(err: diesel::result::Error) -> Self {
        TenantError::Store(err.into())
    }
}
