//! The `attributes` column every resource has: the attributes a client
//! sent that have no typed field, kept as sent.

use serde_json::{Map, Value as Json};

use super::ResourceError;

/// The bag of a resource as sent: nulls and the `dropped` names (read-only
/// or never stored) go, and a name in `typed` is refused, since its value
/// belongs in the typed field. Names match case-insensitively, as in SCIM.
pub(crate) fn sent_bag(
    attributes: Option<prost_types::Struct>,
    typed: &[&str],
    dropped: &[&str],
) -> Result<Map<String, Json>, ResourceError> {
    let mut attributes = attributes
        .map(identity_proto::struct_to_json)
        .unwrap_or_default();
    attributes.retain(|key, value| {
        !value.is_null() && !dropped.iter().any(|d| d.eq_ignore_ascii_case(key))
    });
    if let Some(key) = attributes
        .keys()
        .find(|k| typed.iter().any(|t| t.eq_ignore_ascii_case(k)))
    {
        return Err(ResourceError::InvalidValue(format!(
            "attribute '{key}' has a typed field; do not send it in attributes"
        )));
    }
    Ok(attributes)
}

/// The bag a row stores; a column that is not an object reads as empty.
pub(crate) fn stored_bag(column: &Json) -> Map<String, Json> {
    match column {
        Json::Object(map) => map.clone(),
        _ => Map::new(),
    }
}
