//! Where a path leads in a resource's document: the keys from the root, the
//! shape the schema gives the attribute, and the object that holds it.

use identity_proto::v1::AttributePath;
use serde_json::{Map, Value as Json};

use super::schema::{PatchError, PatchSchema, Shape};
use crate::attr::{Schema, attribute_parts, canonical, display_path, schema_of};
use crate::filter::Multi;

/// Where an operation applies: `keys` lead from the document root to the attribute.
#[derive(Debug)]
pub(super) struct Target {
    pub keys: Vec<String>,
    pub shape: Shape,
    pub sub: Option<String>,
    pub label: String,
    /// The multi-valued attribute as the filter compiler knows it, whose
    /// value filters read its elements by the compiler's kinds; `None`
    /// for attributes it does not register.
    pub elements: Option<Multi>,
}

pub(super) enum Resolved {
    Target(Target),
    ReadOnly(&'static str),
    Ignored,
}

/// The value of `key` in `object`, spelled exactly or in any case.
pub(crate) fn get_ci<'a>(object: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The key of `object` that equals `key` ignoring case, else `key` as sent.
pub(super) fn existing_key(object: Option<&Map<String, Json>>, key: &str) -> String {
    object
        .and_then(|o| o.keys().find(|k| k.eq_ignore_ascii_case(key)))
        .map_or_else(|| key.to_owned(), Clone::clone)
}

pub(super) fn resolve(
    schema: &PatchSchema,
    doc: &Map<String, Json>,
    path: &AttributePath,
) -> Result<Resolved, PatchError> {
    let label = display_path(path);
    let (attr, sub) = attribute_parts(path);
    let core = schema_of(path, schema.resource) == Schema::Core;
    let (keys, shape) = match (schema_of(path, schema.resource), &schema.extension) {
        (Schema::Core, _) => {
            if attr.is_empty() {
                return Err(PatchError::InvalidPath(format!(
                    "'{label}' names no attribute"
                )));
            }
            if let Some(read_only) = canonical(schema.read_only, attr) {
                return Ok(Resolved::ReadOnly(read_only));
            }
            if canonical(schema.ignored, attr).is_some() {
                return Ok(Resolved::Ignored);
            }
            let bag = schema
                .bag
                .iter()
                .find(|def| def.name.eq_ignore_ascii_case(attr));
            match schema
                .typed
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(attr))
            {
                Some((known, shape)) => (vec![(*known).to_owned()], *shape),
                None => match bag {
                    Some(def) if def.multi => (
                        vec![existing_key(Some(doc), def.name)],
                        Shape::Multi(def.sub_names),
                    ),
                    Some(def) => (vec![existing_key(Some(doc), def.name)], Shape::Simple),
                    None => (vec![existing_key(Some(doc), attr)], Shape::Unknown),
                },
            }
        }
        (Schema::Enterprise, Some(extension)) => {
            let root = extension.urn.to_owned();
            if attr.is_empty() {
                (vec![root], Shape::Complex(extension.attributes))
            } else {
                let known = canonical(extension.attributes, attr).ok_or_else(|| {
                    PatchError::InvalidPath(format!(
                        "'{label}': the enterprise extension has no attribute '{attr}'"
                    ))
                })?;
                let shape = extension
                    .complex
                    .iter()
                    .find(|(name, _)| *name == known)
                    .map_or(Shape::Simple, |(_, subs)| Shape::Complex(subs));
                (vec![root, known.to_owned()], shape)
            }
        }
        // Only users have the enterprise extension (see `schema_of`).
        (Schema::Enterprise, None) | (Schema::Other(_), _) => {
            let urn = path.schema.trim();
            let root = existing_key(Some(doc), urn);
            if attr.is_empty() {
                (vec![root], Shape::Unknown)
            } else {
                let inner = doc.get(&root).and_then(Json::as_object);
                let key = existing_key(inner, attr);
                (vec![root, key], Shape::Unknown)
            }
        }
    };
    let sub = if sub.is_empty() {
        None
    } else {
        Some(match shape {
            Shape::Simple => {
                return Err(PatchError::InvalidPath(format!(
                    "'{label}': {attr} has no sub-attributes"
                )));
            }
            Shape::Complex(subs) | Shape::Multi(subs) => canonical(subs, sub)
                .ok_or_else(|| {
                    PatchError::InvalidPath(format!(
                        "'{label}': {attr} has no sub-attribute '{sub}'"
                    ))
                })?
                .to_owned(),
            Shape::Unknown => sub.to_owned(),
        })
    };
    if path.value_filter.is_some() && !matches!(shape, Shape::Multi(_) | Shape::Unknown) {
        return Err(PatchError::InvalidPath(format!(
            "'{label}': {attr} is not multi-valued"
        )));
    }
    let elements = match shape {
        Shape::Multi(_) if core => Multi::of(schema.resource, attr),
        _ => None,
    };
    Ok(Resolved::Target(Target {
        keys,
        shape,
        sub,
        label,
        elements,
    }))
}

/// The object holding the target's last key; intermediate objects are
/// created when `create`, else a missing one yields `None`.
pub(super) fn parent_mut<'a>(
    doc: &'a mut Map<String, Json>,
    target: &Target,
    create: bool,
) -> Result<Option<&'a mut Map<String, Json>>, PatchError> {
    let mut current = doc;
    let (_, parents) = target
        .keys
        .split_last()
        .ok_or_else(|| PatchError::InvalidPath(format!("'{}' names no attribute", target.label)))?;
    for key in parents {
        if !create && !current.get(key).is_some_and(Json::is_object) {
            return Ok(None);
        }
        let slot = current
            .entry(key.clone())
            .or_insert_with(|| Json::Object(Map::new()));
        if slot.is_null() {
            *slot = Json::Object(Map::new());
        }
        current = slot.as_object_mut().ok_or_else(|| {
            PatchError::InvalidPath(format!("'{}': {key} is not an object", target.label))
        })?;
    }
    Ok(Some(current))
}

pub(super) fn last_key(target: &Target) -> &str {
    target.keys.last().map_or("", String::as_str)
}

pub(super) fn array_mut<'a>(
    parent: &'a mut Map<String, Json>,
    key: &str,
    target: &Target,
    create: bool,
) -> Result<&'a mut Vec<Json>, PatchError> {
    if create && parent.get(key).is_none_or(Json::is_null) {
        parent.insert(key.to_owned(), Json::Array(Vec::new()));
    }
    match parent.get_mut(key) {
        Some(Json::Array(items)) => Ok(items),
        _ => Err(PatchError::InvalidPath(format!(
            "'{}': {key} is not multi-valued",
            target.label
        ))),
    }
}

pub(super) fn remove_ci(object: &mut Map<String, Json>, key: &str) {
    let key = existing_key(Some(object), key);
    object.remove(&key);
}
