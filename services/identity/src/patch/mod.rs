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

use crate::attr::{check_value, display_path};
use crate::filter;
use ops::{remove, set};
pub(crate) use resolve::get_ci;
use resolve::{Resolved, resolve};
pub(crate) use schema::{Extension, PatchError, PatchSchema, Shape};
use select::ValueFilter;

/// What an operation says, in the canonical shape the service takes (see
/// `PatchOperation` in the proto): a known op and a path. Pathless
/// operations are expanded by the caller (the SCIM adapter does it), so one
/// without a path is refused. JSON null means "no value": add or replace of
/// null unassigns.
pub(crate) fn canonical(
    operation: &PatchOperation,
) -> Result<(Op, &AttributePath, Option<Json>), PatchError> {
    let op = Op::try_from(operation.op)
        .ok()
        .filter(|op| *op != Op::Unspecified)
        .ok_or_else(|| {
            PatchError::InvalidSyntax("each operation needs op add, replace or remove".into())
        })?;
    let path = operation.path.as_ref().ok_or_else(|| {
        PatchError::InvalidPath(
            "each operation needs a path: the caller expands a pathless operation into one operation per attribute"
                .into(),
        )
    })?;
    let value = operation
        .value
        .clone()
        .map(identity_proto::value_to_json)
        .filter(|v| !v.is_null());
    Ok((op, path, value))
}

/// Applies every operation in order; the caller discards the document on error.
pub(crate) fn apply(
    schema: &PatchSchema,
    doc: &mut Map<String, Json>,
    operations: &[PatchOperation],
) -> Result<(), PatchError> {
    for operation in operations {
        let (op, path, value) = canonical(operation)?;
        if let Some(value) = &value {
            check_value(&display_path(path), value).map_err(PatchError::InvalidValue)?;
        }
        check_path_bounds(path)?;
        apply_at(schema, doc, op, path, value)?
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
