//! SCIM PATCH (RFC 7644 §3.5.2) on a SCIM-shaped JSON document of a resource.
//!
//! Each resource type maps its stored form to a document and back (users in
//! `users::document`, groups in `groups::patch`); the typed operations are
//! applied to that document here ([`apply`]). Working on the SCIM shape keeps
//! the rules (merge, append, value filters) uniform across typed and bag
//! attributes, and keeps this engine free of any one resource: a
//! [`PatchSchema`] says which attributes a resource type types.

use std::collections::{HashMap, HashSet};

use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::{AttributePath, Filter, PatchOperation};
use serde_json::{Map, Value as Json};

use crate::attr::{
    ENTERPRISE_URN, MAX_RESOURCE_BYTES, MAX_VALUES, Resource, Schema, attribute_parts, canonical,
    check_value, display_path, element_attribute, schema_of, too_many_values, value_len,
};
use crate::catalog::BagAttr;
use crate::filter;

/// Why a PATCH request cannot be applied; each maps to a SCIM `scimType`.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    Mutability(String),
    #[error("{0}")]
    NoTarget(String),
    #[error("{0}")]
    InvalidSyntax(String),
}

/// What PATCH knows of a resource type: the core attributes with a typed
/// home and their shapes, the read-only ones and the ones never stored.
/// Every other attribute lives in the resource's bag, as sent.
pub(crate) struct PatchSchema {
    pub resource: Resource,
    pub typed: &'static [(&'static str, Shape)],
    /// Schema attributes kept in the bag under their canonical names.
    pub bag: &'static [BagAttr],
    pub read_only: &'static [&'static str],
    pub ignored: &'static [&'static str],
    /// The schema extension with a typed home, if the resource has one.
    pub extension: Option<Extension>,
}

/// An extension whose attributes are typed (the enterprise User extension):
/// paths under its URN may name only these attributes.
pub(crate) struct Extension {
    pub urn: &'static str,
    pub attributes: &'static [&'static str],
    /// The complex ones among `attributes`, with their sub-attributes;
    /// every other attribute is simple.
    pub complex: &'static [(&'static str, &'static [&'static str])],
}

impl PatchSchema {
    /// The canonical spelling of a typed core attribute.
    pub(crate) fn typed_name(&self, key: &str) -> Option<&'static str> {
        self.typed
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(name, _)| *name)
    }

    /// Neither typed nor read-only nor ignored: a bag attribute.
    pub(crate) fn is_bag(&self, key: &str) -> bool {
        self.typed_name(key).is_none()
            && canonical(self.read_only, key).is_none()
            && canonical(self.ignored, key).is_none()
    }
}

/// What the schema says about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Simple,
    /// Single-valued complex attribute (or a whole extension object) with these sub-attributes.
    Complex(&'static [&'static str]),
    /// Multi-valued complex attribute with these sub-attributes.
    Multi(&'static [&'static str]),
    /// Not in the schema: kept in the bag as sent.
    Unknown,
}

impl Shape {
    fn subs(self) -> Option<&'static [&'static str]> {
        match self {
            Shape::Complex(subs) | Shape::Multi(subs) => Some(subs),
            _ => None,
        }
    }
}

/// Where an operation applies: `keys` lead from the document root to the attribute.
#[derive(Debug)]
struct Target {
    keys: Vec<String>,
    shape: Shape,
    sub: Option<String>,
    label: String,
}

enum Resolved {
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
fn existing_key(object: Option<&Map<String, Json>>, key: &str) -> String {
    object
        .and_then(|o| o.keys().find(|k| k.eq_ignore_ascii_case(key)))
        .map_or_else(|| key.to_owned(), Clone::clone)
}

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

fn resolve(
    schema: &PatchSchema,
    doc: &Map<String, Json>,
    path: &AttributePath,
) -> Result<Resolved, PatchError> {
    let label = display_path(path);
    let (attr, sub) = attribute_parts(path);
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
    Ok(Resolved::Target(Target {
        keys,
        shape,
        sub,
        label,
    }))
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
    let filter = path.value_filter.as_deref();
    match (op, value) {
        (Op::Remove, value) => remove(doc, &target, filter, value),
        (_, None) => remove(doc, &target, filter, None),
        (op, Some(value)) => set(doc, &target, filter, value, op == Op::Add),
    }
}

/// The object holding the target's last key; intermediate objects are
/// created when `create`, else a missing one yields `None`.
fn parent_mut<'a>(
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

fn last_key(target: &Target) -> &str {
    target.keys.last().map_or("", String::as_str)
}

/// Merges `new` into `existing`; known sub-attribute names are canonicalised
/// and null removes.
fn merge(existing: &mut Map<String, Json>, new: Map<String, Json>, subs: Option<&[&'static str]>) {
    // Each key's stored spelling, looked up once per new key, not by a scan.
    let mut spelled: HashMap<String, String> = HashMap::with_capacity(existing.len());
    for key in existing.keys() {
        spelled
            .entry(key.to_ascii_lowercase())
            .or_insert_with(|| key.clone());
    }
    for (key, value) in new {
        let key = match subs.and_then(|s| canonical(s, &key)) {
            Some(known) => known.to_owned(),
            None => spelled
                .entry(key.to_ascii_lowercase())
                .or_insert(key)
                .clone(),
        };
        if value.is_null() {
            spelled.remove(&key.to_ascii_lowercase());
            existing.remove(&key);
        } else {
            existing.insert(key, value);
        }
    }
}

/// Refuses an object that would hold more attributes than any resource may.
fn check_attribute_count(what: &str, count: usize) -> Result<(), PatchError> {
    if count > MAX_VALUES {
        Err(PatchError::InvalidValue(format!(
            "{what} has {count} attributes; at most {MAX_VALUES} are allowed"
        )))
    } else {
        Ok(())
    }
}

/// Refuses writing `value` into `copies` values at once when the copies
/// alone exceed the size of a resource, before any is made.
fn check_copies(target: &Target, value: &Json, copies: usize) -> Result<(), PatchError> {
    if copies > 1 && value_len(value).saturating_mul(copies) > MAX_RESOURCE_BYTES {
        Err(PatchError::InvalidValue(format!(
            "'{}': {copies} copies of the value exceed the {MAX_RESOURCE_BYTES} bytes a resource may take",
            target.label
        )))
    } else {
        Ok(())
    }
}

/// Refuses a multi-valued attribute grown past [`MAX_VALUES`].
fn check_value_count(target: &Target, items: &[Json]) -> Result<(), PatchError> {
    if items.len() > MAX_VALUES {
        Err(PatchError::InvalidValue(too_many_values(
            &target.label,
            items.len(),
        )))
    } else {
        Ok(())
    }
}

/// Canonical sub-attribute names in a new element of a known multi-valued attribute.
fn canonical_element(value: Json, subs: Option<&[&'static str]>) -> Json {
    match value {
        Json::Object(object) => {
            let mut out = Map::new();
            merge(&mut out, object, subs);
            Json::Object(out)
        }
        other => other,
    }
}

/// add (`append`) or replace.
fn set(
    doc: &mut Map<String, Json>,
    target: &Target,
    filter: Option<&Filter>,
    value: Json,
    append: bool,
) -> Result<(), PatchError> {
    let key = last_key(target).to_owned();
    let subs = target.shape.subs();
    let Some(parent) = parent_mut(doc, target, true)? else {
        return Ok(());
    };
    if let Some(filter) = filter {
        let items = array_mut(parent, &key, target, true)?;
        let matched = matching(items, filter, &key)?;
        let touched = if matched.is_empty() {
            // Only a filter that names the element's `type` describes a new
            // one (Entra's `emails[type eq "work"].value`); any other is noTarget.
            let mut element = equality_element(filter, &key, subs)
                .filter(|element| element.contains_key("type"))
                .ok_or_else(|| {
                    PatchError::NoTarget(format!("'{}' matched no value", target.label))
                })?;
            match (&target.sub, value) {
                (Some(sub), value) => {
                    element.insert(sub.clone(), value);
                }
                (None, Json::Object(object)) => merge(&mut element, object, subs),
                (None, _) => {
                    return Err(PatchError::InvalidValue(format!(
                        "'{}' needs an object value",
                        target.label
                    )));
                }
            }
            items.push(Json::Object(element));
            check_value_count(target, items)?;
            vec![items.len() - 1]
        } else {
            check_copies(target, &value, matched.len())?;
            for &i in &matched {
                set_in_element(&mut items[i], target, value.clone(), subs)?;
            }
            matched
        };
        clear_other_primaries(items, &touched);
        return Ok(());
    }
    if let Some(sub) = &target.sub {
        match parent.get_mut(&key) {
            Some(Json::Array(items)) => {
                check_copies(target, &value, items.len())?;
                for item in items.iter_mut() {
                    set_in_element(item, target, value.clone(), subs)?;
                }
                let all: Vec<usize> = (0..items.len()).collect();
                clear_other_primaries(items, &all);
            }
            Some(Json::Object(object)) => {
                object.insert(sub.clone(), value);
            }
            Some(Json::Null) | None => {
                let mut object = Map::new();
                object.insert(sub.clone(), value);
                parent.insert(key, Json::Object(object));
            }
            Some(_) => {
                return Err(PatchError::InvalidPath(format!(
                    "'{}': {key} has no sub-attributes",
                    target.label
                )));
            }
        }
        return Ok(());
    }
    let multi = matches!(target.shape, Shape::Multi(_))
        || parent.get(&key).is_some_and(Json::is_array)
        || (target.shape == Shape::Unknown && value.is_array());
    if multi {
        let new_items: Vec<Json> = match value {
            Json::Array(items) => items,
            single => vec![single],
        }
        .into_iter()
        .filter(|v| !v.is_null())
        .map(|v| canonical_element(v, subs))
        .collect();
        if !append || !parent.get(&key).is_some_and(Json::is_array) {
            parent.insert(key.clone(), Json::Array(Vec::new()));
        }
        let items = array_mut(parent, &key, target, true)?;
        let start = items.len();
        let mut present: HashSet<String> = items.iter().map(value_key).collect();
        for item in new_items {
            if present.insert(value_key(&item)) {
                items.push(item);
            }
        }
        check_value_count(target, items)?;
        let touched: Vec<usize> = (start..items.len()).collect();
        clear_other_primaries(items, &touched);
        return Ok(());
    }
    match (parent.get_mut(&key), value) {
        (Some(Json::Object(existing)), Json::Object(new)) => {
            merge(existing, new, subs);
            check_attribute_count(&target.label, existing.len())?;
        }
        (_, Json::Object(new)) if subs.is_some() => {
            let mut object = Map::new();
            merge(&mut object, new, subs);
            parent.insert(key, Json::Object(object));
        }
        (_, value) => {
            parent.insert(key, value);
        }
    }
    check_attribute_count("the resource or its extension", parent.len())
}

fn set_in_element(
    element: &mut Json,
    target: &Target,
    value: Json,
    subs: Option<&[&'static str]>,
) -> Result<(), PatchError> {
    match (&target.sub, element, value) {
        (Some(sub), Json::Object(object), value) => {
            object.insert(sub.clone(), value);
        }
        (None, Json::Object(object), Json::Object(new)) => merge(object, new, subs),
        (None, element, value) => *element = value,
        (Some(_), _, _) => {
            return Err(PatchError::InvalidPath(format!(
                "'{}': the selected values are not objects",
                target.label
            )));
        }
    }
    Ok(())
}

fn array_mut<'a>(
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

/// remove. A value filter that selects nothing is NO_TARGET (RFC 7644
/// §3.5.2.2); removing an attribute that has no value changes nothing.
/// A multi-valued attribute left without values becomes unassigned.
fn remove(
    doc: &mut Map<String, Json>,
    target: &Target,
    filter: Option<&Filter>,
    value: Option<Json>,
) -> Result<(), PatchError> {
    let key = last_key(target).to_owned();
    let no_target = || PatchError::NoTarget(format!("'{}' matched no value", target.label));
    let Some(parent) = parent_mut(doc, target, false)? else {
        return match filter {
            Some(_) => Err(no_target()),
            None => Ok(()),
        };
    };
    match (filter, &target.sub) {
        (Some(filter), sub) => {
            let Some(existing) = parent.get_mut(&key).filter(|v| !v.is_null()) else {
                return Err(no_target());
            };
            let Json::Array(items) = existing else {
                return Err(PatchError::InvalidPath(format!(
                    "'{}': {key} is not multi-valued",
                    target.label
                )));
            };
            let matched = matching(items, filter, &key)?;
            if matched.is_empty() {
                return Err(no_target());
            }
            match sub {
                Some(sub) => {
                    for i in matched {
                        if let Some(object) = items[i].as_object_mut() {
                            remove_ci(object, sub);
                        }
                    }
                }
                None => {
                    let matched: HashSet<usize> = matched.into_iter().collect();
                    let mut index = 0;
                    items.retain(|_| {
                        let keep = !matched.contains(&index);
                        index += 1;
                        keep
                    });
                }
            }
        }
        (None, Some(sub)) => match parent.get_mut(&key) {
            Some(Json::Object(object)) => remove_ci(object, sub),
            Some(Json::Array(items)) => {
                for item in items.iter_mut().filter_map(Json::as_object_mut) {
                    remove_ci(item, sub);
                }
            }
            _ => {}
        },
        (None, None) => match (value, parent.get_mut(&key)) {
            // Removal by value, e.g. {"op":"remove","path":"members","value":[{"value":"id"}]}.
            (Some(value), Some(Json::Array(items))) => {
                let unwanted = match value {
                    Json::Array(v) => v,
                    single => vec![single],
                };
                let unwanted = Selectors::new(&unwanted);
                items.retain(|item| !unwanted.select(item));
            }
            _ => {
                parent.remove(&key);
            }
        },
    }
    if parent
        .get(&key)
        .and_then(Json::as_array)
        .is_some_and(Vec::is_empty)
    {
        parent.remove(&key);
    }
    Ok(())
}

/// A value of a multi-valued attribute as text that two values share
/// exactly when they are the same value: equal sub-attributes (names in any
/// case), where an absent sub-attribute, null and `primary: false` are
/// alike. Duplicates are then found with a hash set, never by comparing
/// each new value with each existing one.
fn value_key(value: &Json) -> String {
    let Json::Object(object) = value else {
        return format!("v{value}");
    };
    let mut fields: Vec<(String, &Json)> = object
        .iter()
        .filter(|(k, v)| {
            let unset_primary = k.eq_ignore_ascii_case("primary") && **v == Json::Bool(false);
            !v.is_null() && !unset_primary
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    fields.sort_by(|x, y| x.0.cmp(&y.0));
    let mut key = String::from("o");
    for (name, value) in fields {
        key.push_str(&Json::String(name).to_string());
        key.push(':');
        key.push_str(&value.to_string());
        key.push(',');
    }
    key
}

/// The values a remove-by-value names, indexed so that each stored value is
/// tested with hash lookups (one per distinct set of sub-attribute names
/// the selectors use) instead of against every selector.
struct Selectors {
    /// Selectors that are not objects, by [`equality_key`].
    scalars: HashSet<String>,
    /// Object selectors by their lowercase sub-attribute names (sorted):
    /// the [`equality_key`]s of their values, in that name order.
    objects: HashMap<Vec<String>, HashSet<Vec<String>>>,
}

impl Selectors {
    fn new(selectors: &[Json]) -> Selectors {
        let mut index = Selectors {
            scalars: HashSet::new(),
            objects: HashMap::new(),
        };
        for selector in selectors {
            match selector {
                Json::Object(wanted) => {
                    let mut fields: Vec<(String, String)> = wanted
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), equality_key(v)))
                        .collect();
                    fields.sort();
                    let (names, values) = fields.into_iter().unzip();
                    index.objects.entry(names).or_default().insert(values);
                }
                other => {
                    index.scalars.insert(equality_key(other));
                }
            }
        }
        index
    }

    /// Whether some selector selects `item`: every sub-attribute it gives
    /// has that value in `item` (strings in any case, numbers by value).
    fn select(&self, item: &Json) -> bool {
        let Json::Object(object) = item else {
            return self.scalars.contains(&equality_key(item));
        };
        // The first spelling of each name, as `get_ci` finds it.
        let mut fields: HashMap<String, &Json> = HashMap::with_capacity(object.len());
        for (key, value) in object {
            fields.entry(key.to_ascii_lowercase()).or_insert(value);
        }
        self.objects.iter().any(|(names, wanted)| {
            names
                .iter()
                .map(|name| fields.get(name).map(|v| equality_key(v)))
                .collect::<Option<Vec<String>>>()
                .is_some_and(|values| wanted.contains(&values))
        })
    }
}

/// A value as text that two values share exactly when [`json_equal`] holds.
fn equality_key(value: &Json) -> String {
    match value {
        Json::String(s) => format!("s{}", s.to_lowercase()),
        Json::Number(n) => match n.as_f64() {
            // -0.0 == 0.0, as json_equal compares.
            Some(f) => format!("n{}", (f + 0.0).to_bits()),
            None => format!("j{n}"),
        },
        other => format!("j{other}"),
    }
}

fn remove_ci(object: &mut Map<String, Json>, key: &str) {
    let key = existing_key(Some(object), key);
    object.remove(&key);
}

/// Setting `primary: true` on some values clears it on the others (RFC 7643 §2.4).
fn clear_other_primaries(items: &mut [Json], touched: &[usize]) {
    // "True" counts too: IdPs send string booleans, made booleans later.
    let is_primary = |item: &Json| match item.as_object().and_then(|o| get_ci(o, "primary")) {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    if !touched
        .iter()
        .any(|&i| items.get(i).is_some_and(is_primary))
    {
        return;
    }
    let touched: HashSet<usize> = touched.iter().copied().collect();
    for (i, item) in items.iter_mut().enumerate() {
        if touched.contains(&i) {
            continue;
        }
        if let Some(object) = item.as_object_mut() {
            let key = existing_key(Some(object), "primary");
            if object.get(&key).and_then(Json::as_bool) == Some(true) {
                object.insert(key, Json::Bool(false));
            }
        }
    }
}

fn matching(items: &[Json], filter: &Filter, parent: &str) -> Result<Vec<usize>, PatchError> {
    let mut matched = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if matches(filter, item, parent)? {
            matched.push(i);
        }
    }
    Ok(matched)
}

/// Evaluates a value filter on one element of a multi-valued attribute.
fn matches(filter: &Filter, element: &Json, parent: &str) -> Result<bool, PatchError> {
    match filter.expression.as_ref() {
        None => Err(PatchError::InvalidPath("empty value filter".into())),
        Some(Expr::And(l)) => {
            for operand in &l.operands {
                if !matches(operand, element, parent)? {
                    return Ok(false);
                }
            }
            Ok(!l.operands.is_empty())
        }
        Some(Expr::Or(l)) => {
            for operand in &l.operands {
                if matches(operand, element, parent)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Some(Expr::Not(inner)) => Ok(!matches(inner, element, parent)?),
        Some(Expr::ValuePath(_)) => Err(PatchError::InvalidPath(
            "value filters cannot be nested".into(),
        )),
        Some(Expr::Comparison(c)) => {
            let path = c.path.as_deref().ok_or_else(|| {
                PatchError::InvalidPath("value filter without an attribute".into())
            })?;
            let op = Operator::try_from(c.operator)
                .ok()
                .filter(|op| *op != Operator::Unspecified)
                .ok_or_else(|| {
                    PatchError::InvalidPath("value filter with an unknown operator".into())
                })?;
            let name = element_attribute(path, parent);
            let actual = match element {
                Json::Object(object) => get_ci(object, name),
                // Multi-valued simple attributes: the element is its own value.
                scalar if name.eq_ignore_ascii_case("value") => Some(scalar),
                _ => None,
            }
            .filter(|v| !v.is_null());
            let expected = c
                .value
                .clone()
                .map(identity_proto::value_to_json)
                .unwrap_or(Json::Null);
            Ok(compare(actual, op, &expected))
        }
    }
}

fn compare(actual: Option<&Json>, op: Operator, expected: &Json) -> bool {
    let lower = |v: &Json| v.as_str().map(str::to_lowercase);
    match op {
        Operator::Pr => actual.is_some_and(|a| match a {
            Json::String(s) => !s.is_empty(),
            Json::Array(v) => !v.is_empty(),
            Json::Object(o) => !o.is_empty(),
            _ => true,
        }),
        Operator::Eq => actual.map_or(expected.is_null(), |a| json_equal(a, expected)),
        Operator::Ne => !actual.map_or(expected.is_null(), |a| json_equal(a, expected)),
        Operator::Co | Operator::Sw | Operator::Ew => {
            match (actual.and_then(lower), lower(expected)) {
                (Some(a), Some(e)) => match op {
                    Operator::Co => a.contains(&e),
                    Operator::Sw => a.starts_with(&e),
                    _ => a.ends_with(&e),
                },
                _ => false,
            }
        }
        _ => {
            let ordering = match (actual, expected) {
                (Some(Json::String(a)), Json::String(e)) => {
                    Some(a.to_lowercase().cmp(&e.to_lowercase()))
                }
                (Some(Json::Number(a)), Json::Number(e)) => a
                    .as_f64()
                    .zip(e.as_f64())
                    .and_then(|(a, e)| a.partial_cmp(&e)),
                _ => None,
            };
            ordering.is_some_and(|o| match op {
                Operator::Gt => o.is_gt(),
                Operator::Ge => o.is_ge(),
                Operator::Lt => o.is_lt(),
                _ => o.is_le(),
            })
        }
    }
}

/// Strings compare case-insensitively, numbers by value.
fn json_equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::String(a), Json::String(b)) => a.to_lowercase() == b.to_lowercase(),
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        _ => a == b,
    }
}

/// The element a value filter of equalities describes (`type eq "work"`
/// gives `{"type": "work"}`).
fn equality_element(
    filter: &Filter,
    parent: &str,
    subs: Option<&[&'static str]>,
) -> Option<Map<String, Json>> {
    match filter.expression.as_ref()? {
        Expr::Comparison(c) if c.operator == Operator::Eq as i32 => {
            let path = c.path.as_deref()?;
            let value = c.value.clone().map(identity_proto::value_to_json)?;
            if value.is_null() {
                return None;
            }
            let name = element_attribute(path, parent);
            let name = subs
                .and_then(|s| canonical(s, name))
                .unwrap_or(name)
                .to_owned();
            Some(Map::from_iter([(name, value)]))
        }
        Expr::And(l) if !l.operands.is_empty() => {
            let mut element = Map::new();
            for operand in &l.operands {
                element.extend(equality_element(operand, parent, subs)?);
            }
            Some(element)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::ENTERPRISE_URN;
    use crate::users::UserData;
    use crate::users::document::{USER, from_document, to_document};
    use identity_proto::v1::{Comparison, Email, Logical};
    use serde_json::json;
    use uuid::Uuid;

    const ENT: &str = ENTERPRISE_URN;

    fn id() -> Uuid {
        Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888)
    }

    fn user() -> UserData {
        UserData {
            user_name: "ada@example.com".into(),
            active: true,
            emails: vec![Email {
                value: "ada@home.example".into(),
                r#type: Some("home".into()),
                primary: true,
                display: None,
            }],
            ..UserData::default()
        }
    }

    fn path(schema: &str, attribute: &str, sub: &str) -> AttributePath {
        AttributePath {
            schema: schema.into(),
            attribute: attribute.into(),
            sub_attribute: sub.into(),
            value_filter: None,
        }
    }

    fn eq(attr: &str, value: Json) -> Filter {
        Filter {
            expression: Some(Expr::Comparison(Box::new(Comparison {
                path: Some(Box::new(path("", attr, ""))),
                operator: Operator::Eq as i32,
                value: Some(identity_proto::json_to_value(value)),
            }))),
        }
    }

    fn filtered(attribute: &str, filter: Filter, sub: &str) -> AttributePath {
        AttributePath {
            value_filter: Some(Box::new(filter)),
            ..path("", attribute, sub)
        }
    }

    fn op(kind: Op, path: Option<AttributePath>, value: Option<Json>) -> PatchOperation {
        PatchOperation {
            op: kind as i32,
            path,
            value: value.map(identity_proto::json_to_value),
        }
    }

    fn run(start: &UserData, ops: &[PatchOperation]) -> Result<UserData, PatchError> {
        let mut doc = to_document(id(), start);
        apply(&USER, &mut doc, ops)?;
        from_document(doc)
    }

    fn ok(start: &UserData, ops: &[PatchOperation]) -> UserData {
        run(start, ops).unwrap_or_else(|e| panic!("patch failed: {e}"))
    }

    #[test]
    fn operation_values_are_bounded_before_they_apply() {
        let apply_one = |operation: PatchOperation| {
            let mut doc = to_document(id(), &user());
            apply(&USER, &mut doc, &[operation]).map(|()| doc)
        };
        let tags = json!(vec!["t"; MAX_VALUES + 1]);
        let err = apply_one(op(Op::Replace, Some(path("urn:x", "tags", "")), Some(tags)));
        assert!(
            matches!(&err, Err(PatchError::InvalidValue(m)) if m == "urn:x:tags has 1001 values; at most 1000 are allowed"),
            "{err:?}"
        );
        let unwanted: Vec<Json> = (0..=MAX_VALUES).map(|i| json!({"value": i})).collect();
        let err = apply_one(op(
            Op::Remove,
            Some(path("", "emails", "")),
            Some(json!(unwanted)),
        ));
        assert!(matches!(err, Err(PatchError::InvalidValue(_))), "{err:?}");
        let err = apply_one(op(Op::Add, None, Some(json!({"urn:x": {"k": "\u{0}"}}))));
        assert!(
            matches!(&err, Err(PatchError::InvalidValue(m)) if m.starts_with("urn:x.k contains a NUL")),
            "{err:?}"
        );
        // Copies of a value into every selected element are bounded too.
        let mut many = user();
        many.emails = (0..100)
            .map(|i| Email {
                value: format!("a{i}@x"),
                ..Email::default()
            })
            .collect();
        let mut doc = to_document(id(), &many);
        let big = json!("d".repeat(MAX_RESOURCE_BYTES / 50));
        let err = apply(
            &USER,
            &mut doc,
            &[op(
                Op::Replace,
                Some(path("", "emails", "display")),
                Some(big),
            )],
        );
        assert!(
            matches!(&err, Err(PatchError::InvalidValue(m)) if m.contains("100 copies")),
            "{err:?}"
        );
    }

    #[test]
    fn document_round_trip_is_lossless() {
        let mut u = user();
        u.external_id = Some("00u1".into());
        u.display_name = Some("Ada".into());
        u.name.given_name = Some("Ada".into());
        u.enterprise.department = Some("R&D".into());
        u.manager_id = Some(Uuid::from_u128(7));
        u.attributes.insert("locale".into(), json!("en-GB"));
        u.attributes
            .insert("urn:example:ext".into(), json!({"x": [1, 2]}));
        assert_eq!(from_document(to_document(id(), &u)).ok(), Some(u));
    }

    #[test]
    fn replace_simple_attributes() {
        let out = ok(
            &user(),
            &[
                op(
                    Op::Replace,
                    Some(path("", "active", "")),
                    Some(json!(false)),
                ),
                op(
                    Op::Replace,
                    Some(path("", "DisplayName", "")),
                    Some(json!("Countess")),
                ),
                op(
                    Op::Add,
                    Some(path("", "externalId", "")),
                    Some(json!("00u9")),
                ),
            ],
        );
        assert!(!out.active);
        assert_eq!(out.display_name.as_deref(), Some("Countess"));
        assert_eq!(out.external_id.as_deref(), Some("00u9"));
    }

    #[test]
    fn pathless_replace_deactivates_and_expands_keys() {
        let out = ok(
            &user(),
            &[op(
                Op::Replace,
                None,
                Some(json!({
                    "active": false,
                    "name.givenName": "Ada",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
                    ENT: {"costCenter": "CC1"},
                    "nickName": "Countess"
                })),
            )],
        );
        assert!(!out.active);
        assert_eq!(out.name.given_name.as_deref(), Some("Ada"));
        assert_eq!(out.enterprise.employee_number.as_deref(), Some("42"));
        assert_eq!(out.enterprise.cost_center.as_deref(), Some("CC1"));
        assert_eq!(out.attributes.get("nickName"), Some(&json!("Countess")));
    }

    #[test]
    fn complex_attributes_merge() {
        let mut start = user();
        start.name.family_name = Some("Lovelace".into());
        let out = ok(
            &start,
            &[op(
                Op::Replace,
                Some(path("", "name", "")),
                Some(json!({"GivenName": "Ada"})),
            )],
        );
        assert_eq!(out.name.given_name.as_deref(), Some("Ada"));
        assert_eq!(out.name.family_name.as_deref(), Some("Lovelace"));
        let out = ok(
            &start,
            &[op(
                Op::Add,
                Some(path("", "name", "givenName")),
                Some(json!("Ada")),
            )],
        );
        assert_eq!(out.name.given_name.as_deref(), Some("Ada"));
    }

    #[test]
    fn add_to_multi_valued_appends_without_duplicates() {
        let out = ok(
            &user(),
            &[op(
                Op::Add,
                Some(path("", "emails", "")),
                Some(json!([
                    {"value": "ada@home.example", "type": "home", "primary": true},
                    {"value": "ada@work.example", "type": "work"}
                ])),
            )],
        );
        assert_eq!(out.emails.len(), 2);
        assert_eq!(out.emails[1].value, "ada@work.example");
        assert!(out.emails[0].primary);
    }

    #[test]
    fn replace_multi_valued_replaces_all() {
        let out = ok(
            &user(),
            &[op(
                Op::Replace,
                Some(path("", "emails", "")),
                Some(json!({"value": "only@x", "type": "work"})),
            )],
        );
        assert_eq!(out.emails.len(), 1);
        assert_eq!(out.emails[0].value, "only@x");
    }

    #[test]
    fn value_filter_creates_missing_element() {
        let out = ok(
            &user(),
            &[op(
                Op::Replace,
                Some(filtered("emails", eq("type", json!("work")), "value")),
                Some(json!("ada@work.example")),
            )],
        );
        assert_eq!(out.emails.len(), 2);
        assert_eq!(out.emails[1].value, "ada@work.example");
        assert_eq!(out.emails[1].r#type.as_deref(), Some("work"));
        // The same path again updates the element it created.
        let again = ok(
            &out,
            &[op(
                Op::Add,
                Some(filtered("emails", eq("type", json!("WORK")), "value")),
                Some(json!("new@work.example")),
            )],
        );
        assert_eq!(again.emails.len(), 2);
        assert_eq!(again.emails[1].value, "new@work.example");
    }

    #[test]
    fn value_filter_without_sub_attribute_merges() {
        let out = ok(
            &user(),
            &[op(
                Op::Replace,
                Some(filtered("emails", eq("type", json!("home")), "")),
                Some(json!({"display": "Home"})),
            )],
        );
        assert_eq!(out.emails[0].display.as_deref(), Some("Home"));
        assert_eq!(out.emails[0].value, "ada@home.example");
    }

    #[test]
    fn non_equality_filter_that_matches_nothing_is_no_target() {
        let filter = Filter {
            expression: Some(Expr::Not(Box::new(eq("type", json!("home"))))),
        };
        let err = run(
            &user(),
            &[op(
                Op::Replace,
                Some(filtered("emails", filter, "value")),
                Some(json!("x@y")),
            )],
        );
        assert!(matches!(err, Err(PatchError::NoTarget(_))), "{err:?}");
    }

    #[test]
    fn primary_true_clears_the_others() {
        let out = ok(
            &user(),
            &[op(
                Op::Add,
                Some(path("", "emails", "")),
                Some(json!([{"value": "w@x", "type": "work", "primary": true}])),
            )],
        );
        assert_eq!(out.emails.iter().filter(|e| e.primary).count(), 1);
        assert!(out.emails[1].primary);
        let back = ok(
            &out,
            &[op(
                Op::Replace,
                Some(filtered("emails", eq("type", json!("home")), "primary")),
                Some(json!(true)),
            )],
        );
        assert!(back.emails[0].primary);
        assert!(!back.emails[1].primary);
    }

    #[test]
    fn remove_with_and_without_filter() {
        let mut start = user();
        start.emails.push(Email {
            value: "w@x".into(),
            r#type: Some("work".into()),
            primary: false,
            display: None,
        });
        let out = ok(
            &start,
            &[op(
                Op::Remove,
                Some(filtered("emails", eq("type", json!("work")), "")),
                None,
            )],
        );
        assert_eq!(out.emails.len(), 1);
        // A filter that matches nothing is NO_TARGET (RFC 7644 §3.5.2.2).
        let nothing = run(
            &start,
            &[op(
                Op::Remove,
                Some(filtered("emails", eq("type", json!("other")), "")),
                None,
            )],
        );
        assert!(
            matches!(nothing, Err(PatchError::NoTarget(_))),
            "{nothing:?}"
        );
        let none = ok(
            &start,
            &[op(Op::Remove, Some(path("", "emails", "")), None)],
        );
        assert!(none.emails.is_empty());
        let sub = ok(
            &start,
            &[op(
                Op::Remove,
                Some(filtered("emails", eq("type", json!("work")), "type")),
                None,
            )],
        );
        assert_eq!(sub.emails[1].r#type, None);
        let by_value = ok(
            &start,
            &[op(
                Op::Remove,
                Some(path("", "emails", "")),
                Some(json!([{"value": "W@X"}])),
            )],
        );
        assert_eq!(by_value.emails.len(), 1);
    }

    #[test]
    fn remove_without_path_is_no_target() {
        assert!(matches!(
            run(&user(), &[op(Op::Remove, None, None)]),
            Err(PatchError::NoTarget(_))
        ));
    }

    #[test]
    fn enterprise_fields_with_urn_paths() {
        let out = ok(
            &user(),
            &[
                op(
                    Op::Add,
                    Some(path(ENT, "employeeNumber", "")),
                    Some(json!("701")),
                ),
                op(
                    Op::Replace,
                    Some(path(ENT, "department", "")),
                    Some(json!("Sales")),
                ),
                op(
                    Op::Replace,
                    Some(path(ENT, "organization", "")),
                    Some(json!("Acme")),
                ),
            ],
        );
        assert_eq!(out.enterprise.employee_number.as_deref(), Some("701"));
        assert_eq!(out.enterprise.department.as_deref(), Some("Sales"));
        let removed = ok(
            &out,
            &[op(Op::Remove, Some(path(ENT, "department", "")), None)],
        );
        assert_eq!(removed.enterprise.department, None);
        assert_eq!(removed.enterprise.employee_number.as_deref(), Some("701"));
        assert!(matches!(
            run(
                &user(),
                &[op(
                    Op::Add,
                    Some(path(ENT, "shoeSize", "")),
                    Some(json!("9"))
                )]
            ),
            Err(PatchError::InvalidPath(_))
        ));
    }

    #[test]
    fn manager_set_and_remove() {
        let manager = Uuid::from_u128(99);
        for value in [
            json!({"value": manager.to_string()}),
            json!(manager.to_string()),
            json!([{"value": manager.to_string(), "$ref": "../Users/x"}]),
        ] {
            let out = ok(
                &user(),
                &[op(Op::Add, Some(path(ENT, "manager", "")), Some(value))],
            );
            assert_eq!(out.manager_id, Some(manager));
        }
        let mut with_manager = user();
        with_manager.manager_id = Some(manager);
        let out = ok(
            &with_manager,
            &[op(Op::Remove, Some(path(ENT, "manager", "")), None)],
        );
        assert_eq!(out.manager_id, None);
        let out = ok(
            &with_manager,
            &[op(
                Op::Replace,
                Some(path(ENT, "manager", "")),
                Some(json!("")),
            )],
        );
        assert_eq!(out.manager_id, None);
        let out = ok(
            &with_manager,
            &[op(
                Op::Replace,
                Some(path(ENT, "manager", "")),
                Some(Json::Null),
            )],
        );
        assert_eq!(out.manager_id, None);
        assert!(matches!(
            run(
                &user(),
                &[op(
                    Op::Add,
                    Some(path(ENT, "manager", "")),
                    Some(json!("bob"))
                )]
            ),
            Err(PatchError::InvalidValue(_))
        ));
    }

    #[test]
    fn read_only_attributes() {
        let same_id = op(
            Op::Replace,
            Some(path("", "id", "")),
            Some(json!(id().to_string())),
        );
        assert!(run(&user(), &[same_id]).is_ok());
        for bad in [
            op(Op::Replace, Some(path("", "id", "")), Some(json!("other"))),
            op(Op::Remove, Some(path("", "id", "")), None),
            op(
                Op::Add,
                Some(path("", "meta", "")),
                Some(json!({"version": "1"})),
            ),
            op(Op::Replace, Some(path("", "groups", "")), Some(json!([]))),
        ] {
            assert!(matches!(
                run(&user(), &[bad]),
                Err(PatchError::Mutability(_))
            ));
        }
    }

    #[test]
    fn type_errors_are_invalid_value() {
        for bad in [
            op(
                Op::Replace,
                Some(path("", "active", "")),
                Some(json!("False")),
            ),
            op(Op::Replace, Some(path("", "userName", "")), Some(json!(42))),
            op(Op::Replace, Some(path("", "name", "")), Some(json!("Ada"))),
            op(
                Op::Add,
                Some(path("", "emails", "")),
                Some(json!([{"type": "work"}])),
            ),
            op(Op::Remove, Some(path("", "userName", "")), None),
        ] {
            let result = run(&user(), &[bad]);
            assert!(
                matches!(result, Err(PatchError::InvalidValue(_))),
                "{result:?}"
            );
        }
    }

    #[test]
    fn invalid_paths_and_syntax() {
        assert!(matches!(
            run(
                &user(),
                &[op(
                    Op::Add,
                    Some(path("", "name", "nick")),
                    Some(json!("x"))
                )]
            ),
            Err(PatchError::InvalidPath(_))
        ));
        assert!(matches!(
            run(
                &user(),
                &[op(
                    Op::Add,
                    Some(path("", "userName", "x")),
                    Some(json!("x"))
                )]
            ),
            Err(PatchError::InvalidPath(_))
        ));
        assert!(matches!(
            run(
                &user(),
                &[op(
                    Op::Add,
                    Some(filtered("name", eq("x", json!(1)), "")),
                    Some(json!({}))
                )]
            ),
            Err(PatchError::InvalidPath(_))
        ));
        assert!(matches!(
            run(
                &user(),
                &[op(
                    Op::Unspecified,
                    Some(path("", "active", "")),
                    Some(json!(true))
                )]
            ),
            Err(PatchError::InvalidSyntax(_))
        ));
        assert!(matches!(
            run(&user(), &[op(Op::Add, None, Some(json!("x")))]),
            Err(PatchError::InvalidSyntax(_))
        ));
    }

    #[test]
    fn unknown_attributes_live_in_the_bag() {
        let out = ok(
            &user(),
            &[
                op(
                    Op::Add,
                    Some(path("", "phoneNumbers", "")),
                    Some(json!([{"value": "+1", "type": "work"}])),
                ),
                op(
                    Op::Add,
                    Some(path("", "phoneNumbers", "")),
                    Some(json!({"value": "+2", "type": "home"})),
                ),
                op(
                    Op::Replace,
                    Some(path("urn:example:ext", "level", "")),
                    Some(json!(3)),
                ),
            ],
        );
        assert_eq!(
            out.attributes.get("phoneNumbers"),
            Some(&json!([{"value": "+1", "type": "work"}, {"value": "+2", "type": "home"}]))
        );
        assert_eq!(
            out.attributes.get("urn:example:ext"),
            Some(&json!({"level": 3}))
        );
        let removed = ok(
            &out,
            &[op(
                Op::Remove,
                Some(filtered("phoneNumbers", eq("type", json!("work")), "")),
                None,
            )],
        );
        assert_eq!(
            removed.attributes.get("phoneNumbers"),
            Some(&json!([{"value": "+2", "type": "home"}]))
        );
        // Bag attributes keep their spelling; other spellings reach them.
        let renamed = ok(
            &out,
            &[op(Op::Remove, Some(path("", "PHONENUMBERS", "")), None)],
        );
        assert!(!renamed.attributes.contains_key("phoneNumbers"));
    }

    #[test]
    fn and_filters_create_elements_with_every_equality() {
        let filter = Filter {
            expression: Some(Expr::And(Logical {
                operands: vec![eq("type", json!("work")), eq("display", json!("Office"))],
            })),
        };
        let out = ok(
            &user(),
            &[op(
                Op::Add,
                Some(filtered("emails", filter, "value")),
                Some(json!("o@x")),
            )],
        );
        assert_eq!(out.emails[1].display.as_deref(), Some("Office"));
        assert_eq!(out.emails[1].r#type.as_deref(), Some("work"));
    }

    #[test]
    fn operations_apply_in_order_atomically() {
        let result = run(
            &user(),
            &[
                op(
                    Op::Replace,
                    Some(path("", "displayName", "")),
                    Some(json!("A")),
                ),
                op(Op::Replace, Some(path("", "id", "")), Some(json!("x"))),
            ],
        );
        assert!(matches!(result, Err(PatchError::Mutability(_))));
    }

    #[test]
    fn document_attributes_have_schema_shapes() {
        let mut start = user();
        start.attributes.insert(
            "phoneNumbers".into(),
            json!([{"value": "+1", "type": "work", "primary": true}, {"value": "+2", "type": "home"}]),
        );
        // A sub-attribute through a value filter, canonical names, and the
        // primary flag moving to the selected value.
        let out = ok(
            &start,
            &[
                op(
                    Op::Replace,
                    Some(filtered(
                        "PhoneNumbers",
                        eq("type", json!("home")),
                        "Primary",
                    )),
                    Some(json!("True")),
                ),
                op(
                    Op::Add,
                    Some(path("", "TITLE", "")),
                    Some(json!("Engineer")),
                ),
            ],
        );
        assert_eq!(
            out.attributes.get("phoneNumbers"),
            Some(
                &json!([{"value": "+1", "type": "work", "primary": false}, {"value": "+2", "type": "home", "primary": true}])
            )
        );
        assert_eq!(out.attributes.get("title"), Some(&json!("Engineer")));
        // Addresses: replace a sub-attribute of the matching element, or
        // create the element an equality on type describes.
        let out = ok(
            &out,
            &[
                op(
                    Op::Replace,
                    Some(filtered("addresses", eq("type", json!("work")), "locality")),
                    Some(json!("London")),
                ),
                op(
                    Op::Replace,
                    Some(filtered(
                        "addresses",
                        eq("type", json!("work")),
                        "postalCode",
                    )),
                    Some(json!("EC1")),
                ),
            ],
        );
        assert_eq!(
            out.attributes.get("addresses"),
            Some(&json!([{"type": "work", "locality": "London", "postalCode": "EC1"}]))
        );
        for (bad, expected) in [
            (
                op(
                    Op::Add,
                    Some(path("", "phoneNumbers", "color")),
                    Some(json!("red")),
                ),
                "InvalidPath",
            ),
            (
                op(Op::Add, Some(path("", "title", "")), Some(json!(42))),
                "InvalidValue",
            ),
            (
                op(
                    Op::Replace,
                    Some(path("", "roles", "")),
                    Some(json!([{"value": "a", "primary": true}, {"value": "b", "primary": true}])),
                ),
                "InvalidValue",
            ),
            (
                op(
                    Op::Remove,
                    Some(filtered("addresses", eq("type", json!("home")), "")),
                    None,
                ),
                "NoTarget",
            ),
            (
                op(
                    Op::Replace,
                    Some(filtered("phoneNumbers", eq("value", json!("+9")), "")),
                    Some(json!("x")),
                ),
                "NoTarget",
            ),
        ] {
            let result = run(&start, &[bad]);
            assert!(format!("{result:?}").contains(expected), "{result:?}");
        }
    }

    #[test]
    fn add_skips_values_already_present() {
        let out = ok(
            &user(),
            &[op(
                Op::Add,
                Some(path("", "emails", "")),
                Some(json!([
                    {"value": "ada@home.example", "type": "home", "primary": true},
                    {"VALUE": "ada@work.example", "type": "work"},
                    {"value": "ada@work.example", "type": "work", "primary": false}
                ])),
            )],
        );
        assert_eq!(out.emails.len(), 2, "{:?}", out.emails);
        // The same address with other sub-attributes is another value.
        let out = ok(
            &out,
            &[op(
                Op::Add,
                Some(path("", "emails", "")),
                Some(json!({"value": "ada@work.example", "type": "other"})),
            )],
        );
        assert_eq!(out.emails.len(), 3);
    }

    #[test]
    fn removing_every_value_unassigns_the_attribute() {
        let mut start = user();
        start
            .attributes
            .insert("roles".into(), json!([{"value": "admin"}]));
        let out = ok(
            &start,
            &[op(
                Op::Remove,
                Some(filtered("roles", eq("value", json!("ADMIN")), "")),
                None,
            )],
        );
        assert!(!out.attributes.contains_key("roles"));
        // No value at all: still a filter that matched nothing.
        let again = run(
            &out,
            &[op(
                Op::Remove,
                Some(filtered("roles", eq("value", json!("admin")), "")),
                None,
            )],
        );
        assert!(matches!(again, Err(PatchError::NoTarget(_))), "{again:?}");
        // Without a filter, removing what is absent changes nothing.
        assert!(run(&out, &[op(Op::Remove, Some(path("", "roles", "")), None)]).is_ok());
    }
}
