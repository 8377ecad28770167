//! The identity.v1 contract shared by the service, the SCIM adapter,
//! identityctl and internal callers.

pub mod v1 {
    tonic::include_proto!("identity.v1");
}

mod json;

pub use json::{json_to_struct, json_to_value, struct_to_json, value_to_json};

/// `google.rpc.ErrorInfo.domain` of every error the service returns.
pub const ERROR_DOMAIN: &str = "identity.v1";

/// The contract's tenant slug rule: lowercase letters, digits and '-', 2 to
/// 63 characters.
pub fn is_valid_slug(slug: &str) -> bool {
    (2..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["ab", "acme", "acme-2", "0-9", &"a".repeat(63)] {
            assert!(is_valid_slug(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Acme",
            "acme_co",
            "acme co",
            "ac.me",
            "é-x",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
    }
}
