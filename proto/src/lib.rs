//! The identity.v1 contract shared by the service, the SCIM adapter,
//! identityctl and internal callers.

pub mod v1 {
    tonic::include_proto!("identity.v1");
}

mod json;

pub use json::{json_to_struct, json_to_value, struct_to_json, value_to_json};

/// `google.rpc.ErrorInfo.domain` of every error the service returns.
pub const ERROR_DOMAIN: &str = "identity.v1";
