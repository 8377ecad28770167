//! SCIM PATCH bodies (RFC 7644 §3.5.2) -> typed `PatchOperation`s, in every
//! dialect Okta and Entra send: op names in any case, pathless add/replace
//! expanded per key (dotted and URN-qualified keys), `"True"`/`"False"`
//! booleans, value-filtered and URN-prefixed paths, the manager shapes; a
//! group's `members` become typed member changes (see `members`). Applying
//! them is the service's job.

use identity_proto::v1::{AttributePath, MemberChange, PatchOperation, patch_operation::Op};
use serde_json::{Map, Value as Json};

use crate::wire::bounds::{self, MAX_PATCH_OPERATIONS};
use crate::wire::error::ScimError;
use crate::wire::filter;
use crate::wire::members;
use crate::wire::schema::{self, Kind, PathTarget, Resource, Returned};

/// A PATCH body as the service takes it: attribute operations and member
/// changes, each in request order (the service applies the operations
/// first). Only a group has member changes.
#[derive(Debug, Default, PartialEq)]
pub struct Patch {
    /// Canonical operations on every attribute but a group's `members`.
    pub operations: Vec<PatchOperation>,
    /// A group's membership changes, in request order.
    pub member_changes: Vec<MemberChange>,
}

/// What one SCIM operation contributes to a [`Patch`].
enum Part {
    Operation(PatchOperation),
    /// Possibly none: a write on a derived member sub-attribute changes no
    /// member, yet is sent like any other write.
    Members(Vec<MemberChange>),
}

impl From<PatchOperation> for Part {
    fn from(operation: PatchOperation) -> Self {
        Part::Operation(operation)
    }
}

/// Parses a PatchOp body for a `resource` into what to send; `None` when
/// every operation was one the adapter drops (meta, password, nulls on
/// add, an empty member list), so there is nothing to change.
pub fn parse_patch(resource: Resource, body: Json) -> Result<Option<Patch>, ScimError> {
    let Json::Object(body) = body else {
        return Err(ScimError::invalid_syntax(
            "the PATCH body must be a JSON object",
        ));
    };
    let operations = match get_ignore_case(&body, "Operations") {
        Some(Json::Array(ops)) if !ops.is_empty() => ops,
        _ => {
            return Err(ScimError::invalid_syntax(
                "the PATCH body needs a non-empty \"Operations\" array",
            ));
        }
    };
    if operations.len() > MAX_PATCH_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "the request has {} operations; at most {MAX_PATCH_OPERATIONS} are accepted",
            operations.len()
        )));
    }
    let mut parts = Vec::new();
    for (index, operation) in operations.iter().enumerate() {
        parts.extend(parse_operation(resource, operation).map_err(|e| ScimError {
            detail: format!("Operations[{index}]: {}", e.detail),
            ..e
        })?);
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let mut patch = Patch::default();
    for part in parts {
        match part {
            Part::Operation(operation) => patch.operations.push(operation),
            Part::Members(changes) => patch.member_changes.extend(changes),
        }
    }
    Ok(Some(patch))
}

fn get_ignore_case<'a>(map: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn parse_operation(resource: Resource, operation: &Json) -> Result<Vec<Part>, ScimError> {
    let Json::Object(operation) = operation else {
        return Err(ScimError::invalid_syntax(
            "each operation must be a JSON object",
        ));
    };
    let op = match get_ignore_case(operation, "op") {
        Some(Json::String(op)) => match op.to_ascii_lowercase().as_str() {
            "add" => Op::Add,
            "replace" => Op::Replace,
            "remove" => Op::Remove,
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "unknown op \"{op}\"; expected add, replace or remove"
                )));
            }
        },
        _ => {
            return Err(ScimError::invalid_syntax(
                "\"op\" must be add, replace or remove",
            ));
        }
    };
    let path = match get_ignore_case(operation, "path") {
        None | Some(Json::Null) => None,
        Some(Json::String(p)) if p.trim().is_empty() => None,
        Some(Json::String(p)) => Some(p.trim()),
        Some(_) => return Err(ScimError::invalid_path("\"path\" must be a string")),
    };
    let value = get_ignore_case(operation, "value").cloned();
    let Some(path) = path else {
        if op == Op::Remove {
            return Err(ScimError::no_target("remove needs a \"path\""));
        }
        return match value {
            Some(Json::Object(map)) => expand_object(resource, op, "", map),
            _ => Err(ScimError::invalid_value(
                "an operation without \"path\" needs an object \"value\"",
            )),
        };
    };
    match filter::parse_path(resource, path).map_err(|e| {
        ScimError::invalid_path(format!("invalid path \"{}\": {e}", bounds::printable(path)))
    })? {
        PathTarget::Schema(schema) => match (op, value) {
            (Op::Remove, _) if !schema.is_empty() => {
                let known = resource.extensions().iter().find(|(urn, _)| *urn == schema);
                match known {
                    Some((_, defs)) => Ok(defs
                        .iter()
                        .map(|def| operation_of(Op::Remove, attr(&schema, def.name, ""), None))
                        .map(Part::from)
                        .collect()),
                    None => Err(ScimError::invalid_path(format!(
                        "path \"{path}\" names a schema this resource does not have"
                    ))),
                }
            }
            (Op::Add | Op::Replace, Some(Json::Object(map))) if !schema.is_empty() => {
                expand_object(resource, op, &schema, map)
            }
            _ => Err(ScimError::invalid_path(format!(
                "path \"{path}\" names a whole schema; give an object value of its attributes"
            ))),
        },
        PathTarget::Attribute(target) => normalize(resource, op, target, value),
    }
}

fn attr(schema: &str, attribute: &str, sub_attribute: &str) -> AttributePath {
    AttributePath {
        schema: schema.into(),
        attribute: attribute.into(),
        sub_attribute: sub_attribute.into(),
        value_filter: None,
    }
}

fn operation_of(op: Op, path: AttributePath, value: Option<Json>) -> PatchOperation {
    PatchOperation {
        op: op as i32,
        path: Some(path),
        value: value.map(identity_proto::json_to_value),
    }
}

/// A pathless add/replace: one operation per key of `map`. Keys are dotted
/// (`name.givenName`), URN-qualified (`urn:…:enterprise:2.0:User:department`),
/// or an extension URN whose value holds that extension's attributes.
fn expand_object(
    resource: Resource,
    op: Op,
    schema: &str,
    map: Map<String, Json>,
) -> Result<Vec<Part>, ScimError> {
    let mut out = Vec::new();
    for (key, value) in map {
        // `schemas` may come inside an extension's object too (scim2-tester
        // sends the extension as a resource with its own `schemas`).
        if key.eq_ignore_ascii_case("schemas")
            || (schema.is_empty() && key.eq_ignore_ascii_case("meta"))
        {
            continue;
        }
        let target = if schema.is_empty() {
            expansion_key(resource, &key, &value)
        } else {
            schema::parse_attr_path(resource, &format!("{schema}:{key}"))
        };
        match target {
            Some(PathTarget::Schema(inner)) => match value {
                Json::Object(inner_map) if !inner.is_empty() => {
                    out.extend(expand_object(resource, op, &inner, inner_map)?)
                }
                Json::Null => {}
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "\"{key}\" must be an object of that schema's attributes"
                    )));
                }
            },
            Some(PathTarget::Attribute(path)) => {
                out.extend(normalize(resource, op, path, Some(value))?)
            }
            None => {
                return Err(ScimError::invalid_path(format!(
                    "\"{key}\" is not a valid attribute name"
                )));
            }
        }
    }
    Ok(out)
}

/// What a top-level key of a pathless value names. An unknown URN with an
/// object value is an extension schema; anything else is an attribute path.
fn expansion_key(resource: Resource, key: &str, value: &Json) -> Option<PathTarget> {
    let known = schema::known_schemas(resource).any(|urn| key.eq_ignore_ascii_case(urn));
    if schema::is_urn(key) && !known && value.is_object() && !has_known_prefix(resource, key) {
        return Some(PathTarget::Schema(key.to_owned()));
    }
    schema::parse_attr_path(resource, key)
}

fn has_known_prefix(resource: Resource, key: &str) -> bool {
    schema::known_schemas(resource)
        .any(|urn| key.len() > urn.len() && schema::starts_with_ignore_case(key, urn))
}

/// Applies the leniencies to one targeted operation: `password` dropped,
/// null meaning absent, manager shapes, member changes, string booleans,
/// canonical keys.
fn normalize(
    resource: Resource,
    op: Op,
    path: AttributePath,
    value: Option<Json>,
) -> Result<Vec<Part>, ScimError> {
    let never_returned = schema::attribute_def(resource, &path.schema, &path.attribute)
        .is_some_and(|def| matches!(def.returned, Returned::Never));
    if never_returned {
        return Ok(Vec::new());
    }
    if resource == Resource::User
        && path.schema == schema::ENTERPRISE_USER
        && path.attribute == "manager"
    {
        return Ok(manager_operation(op, path, value)
            .map(Part::from)
            .into_iter()
            .collect());
    }
    if resource == Resource::Group && members::is_members(&path) {
        return Ok(members::changes(op, &path, value)?
            .map(Part::Members)
            .into_iter()
            .collect());
    }
    let value = match (op, value) {
        (Op::Remove, value) => value.filter(|v| !v.is_null()),
        (_, None | Some(Json::Null)) if op == Op::Add => return Ok(Vec::new()),
        (_, None | Some(Json::Null)) => {
            return Ok(vec![operation_of(Op::Remove, path, None).into()]);
        }
        (_, Some(value)) => Some(value),
    };
    let value = value.map(|v| normalize_value(resource, &path, v));
    Ok(vec![operation_of(op, path, value).into()])
}

/// The manager arrives as `"id"`, `{"value": id}` or `[{"value": id}]` and
/// leaves as `{"value": id}`; `""`, null or an empty shape removes it.
fn manager_operation(
    op: Op,
    mut path: AttributePath,
    value: Option<Json>,
) -> Option<PatchOperation> {
    let id = if path.sub_attribute.is_empty() {
        value.as_ref().and_then(manager_id)
    } else if path.sub_attribute == "value" {
        match &value {
            Some(Json::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        }
    } else {
        // `$ref`/`displayName` are derived from the id by the service.
        return None;
    };
    match (op, id) {
        (Op::Remove, _) | (_, None) => {
            path.sub_attribute.clear();
            Some(operation_of(Op::Remove, path, None))
        }
        (op, Some(id)) => {
            path.sub_attribute.clear();
            let mut manager = Map::new();
            manager.insert("value".into(), Json::String(id));
            Some(operation_of(op, path, Some(Json::Object(manager))))
        }
    }
}

/// The manager's id in any of the shapes IdPs send, `None` for "no manager".
pub fn manager_id(value: &Json) -> Option<String> {
    match value {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Json::Object(map) => get_ignore_case(map, "value").and_then(manager_id),
        Json::Array(items) => items.first().and_then(manager_id),
        _ => None,
    }
}

/// Canonical sub-attribute names, nulls dropped and string booleans typed,
/// for the complex attributes the adapter knows (name, emails).
fn normalize_value(resource: Resource, path: &AttributePath, value: Json) -> Json {
    if !path.sub_attribute.is_empty() {
        return coerce(
            schema::kind_of(resource, &path.schema, &path.attribute, &path.sub_attribute),
            value,
        );
    }
    let Some(def) = schema::attribute_def(resource, &path.schema, &path.attribute) else {
        return value;
    };
    match (def.kind, value) {
        (Kind::Complex, Json::Array(items)) if def.multi_valued => Json::Array(
            items
                .into_iter()
                .filter(|v| !v.is_null())
                .map(|v| complex_value(resource, path, v))
                .collect(),
        ),
        (Kind::Complex, value) if def.multi_valued && path.value_filter.is_none() => {
            // One element where a list is expected: Entra sends both shapes.
            Json::Array(vec![complex_value(resource, path, value)])
        }
        (Kind::Complex, value) => complex_value(resource, path, value),
        (kind, value) => coerce(Some(kind), value),
    }
}

fn complex_value(resource: Resource, path: &AttributePath, value: Json) -> Json {
    let Json::Object(map) = value else {
        return value;
    };
    Json::Object(
        map.into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let kind = schema::kind_of(resource, &path.schema, &path.attribute, &k);
                (
                    schema::canonical_sub_attribute(resource, &path.schema, &path.attribute, &k),
                    coerce(kind, v),
                )
            })
            .collect(),
    )
}

fn coerce(kind: Option<Kind>, value: Json) -> Json {
    match (kind, &value) {
        (Some(Kind::Boolean), Json::String(s)) => {
            schema::bool_from_text(s).map_or(value, Json::Bool)
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests;
