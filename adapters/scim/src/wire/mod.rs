//! What SCIM says on the wire, apart from how it travels: the attribute
//! catalog and its names, SCIM JSON checked and read into typed values, the
//! filter and PATCH path grammars, `attributes`/`excludedAttributes`
//! projection, and the URNs. Nothing here knows axum or tonic; it speaks the
//! identity.v1 messages, which are the contract with the service, and
//! answers with [`error::ScimError`], which the edge turns into a response.

pub mod bounds;
pub mod error;
pub mod filter;
pub mod members;
pub mod patch;
pub mod projection;
pub mod query;
pub mod schema;
pub mod urns;
pub mod validate;
