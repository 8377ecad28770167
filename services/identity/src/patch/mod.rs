//! SCIM PATCH (RFC 7644 §3.5.2) on a SCIM-shaped JSON document of a resource.
//!
//! Each resource type maps its stored form to a document and back (users in
//! `users::document`, groups in `groups::patch`); the typed operations are
//! applied to that document here ([`apply`]). Working on the SCIM shape keeps
//! the rules (merge, append, value filters) uniform across typed and bag
//! attributes, and keeps this engine free of any one resource: a
//! [`PatchSchema`] says which attributes a resource type types.
//!
//! A path is first resolved to a target in the document (`resolve`), the
//! elements a value filter names are selected (`select`), and the operation
//! is carried out there (`ops`).

mod ops;
mod resolve;
mod schema;
mod select;
#[cfg(test)]
mod tests;

use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::{AttributePath, PatchOperation};
use serde_json::{Map, Value as Json};

use crate::attr::{ENTERPRISE_URN, check_value, display_path};
use crate::filter;
use ops::{remove, set};
pub(crate) use resolve::get_ci;
use resolve::{Resolved, resolve};
pub(crate) use schema::{Extension, PatchError, PatchSchema, Shape};
use select::ValueFilter;

/// Applies every operation in order; the caller discards the document on error.
pub(crate) fn apply(
    schema: &PatchSchema,
    doc: &mut Map<String, Json>,
    operations: &[PatchOperation],
) -> Result<(), PatchError> {
    for operation in operations {
        let op = Op::try_from(operation.op)
            .ok()
            .filter(|op| *op != Op::Unspecified)
            .ok_or_else(|| {
                PatchError::InvalidSyntax("each operation needs op add, replace or remove".into())
            })?;
        // JSON null means "no value": add/replace of null unassigns.
        let value = operation
            .value
            .clone()
            .map(identity_proto::value_to_json)
            .filter(|v| !v.is_null());
        let label = operation
            .path
            .as_ref()
            .map(display_path)
            .unwrap_or_default();
        if let Some(value) = &value {
            check_value(&label, value).map_err(PatchError::InvalidValue)?;
        }
        match &operation.path {
            Some(path) => {
                check_path_bounds(path)?;
                apply_at(schema, doc, op, path, value)?
            }
            None => apply_pathless(schema, doc, op, value)?,
        }
    }
    Ok(())
}

/// A PATCH path's value filter has the bounds of a list filter, checked
/// before it is evaluated; past them the path is invalid.
pub(crate) fn check_path_bounds(path: &AttributePath) -> Result<(), PatchError> {
    match path.value_filter.as_deref() {
        Some(filter) => filter::check_bounds(filter).map_err(PatchError::InvalidPath),
        None => Ok(()),
    }
}

/// A pathless add/replace sets each attribute of its object value.
fn apply_pathless(
    schema: &PatchSchema,
    doc: &mut Map<String, Json>,
    op: Op,
    value: Option<Json>,
) -> Result<(), PatchError> {
    if op == Op::Remove {
        return Err(PatchError::NoTarget("remove needs a path".into()));
    }
    let Some(Json::Object(object)) = value else {
        return Err(PatchError::InvalidSyntax(
            "an operation without a path needs an object value".into(),
        ));
    };
    for (key, value) in object {
        let path = pathless_key(&key);
        apply_at(schema, doc, op, &path, Some(value).filter(|v| !v.is_null()))?;
    }
    Ok(())
}

/// The path a key of a pathless operation's object value names: a plain or
/// dotted attribute, an enterprise-qualified attribute or an extension URN.
pub(crate) fn pathless_key(key: &str) -> AttributePath {
    let urn_len = ENTERPRISE_URN.len();
    let mut path = AttributePath::default();
    let qualified = key.len() > urn_len
        && key.is_char_boundary(urn_len)
        && key[..urn_len].eq_ignore_ascii_case(ENTERPRISE_URN)
        && key[urn_len..].starts_with(':');
    if qualified {
        path.schema = ENTERPRISE_URN.into();
        path.attribute = key[urn_len + 1..].into();
    } else if key.len() >= 4 && key[..4].eq_ignore_ascii_case("urn:") {
        path.schema = key.into();
    } else {
        path.attribute = key.into();
    }
    path
}

fn apply_at(
    schema: &PatchSchema,
    doc: &mut Map<String, Json>,
    op: Op,
    path: &AttributePath,
    value: Option<Json>,
) -> Result<(), PatchError> {
    let target = match resolve(schema, doc, path)? {
        Resolved::Ignored => return Ok(()),
        Resolved::ReadOnly(attr) => {
            // Setting id to its own value changes nothing (IdPs echo it).
            let same_id = attr == "id"
                && op != Op::Remove
                && path.sub_attribute.is_empty()
                && path.value_filter.is_none()
                && value.is_some()
                && value.as_ref() == doc.get("id");
            return if same_id {
                Ok(())
            } else {
                Err(PatchError::Mutability(format!("'{attr}' is read-only")))
            };
        }
        Resolved::Target(target) => target,
    };
    let filter = match path.value_filter.as_deref() {
        Some(filter) => Some(ValueFilter::new(filter, &target)?),
        None => None,
    };
    let filter = filter.as_ref();
    match (op, value) {
        (Op::Remove, value) => remove(doc, &target, filter, value),
        (_, None) => remove(doc, &target, filter, None),
        (op, Some(value)) => set(doc, &target, filter, value, op == Op::Add),
    }
}
