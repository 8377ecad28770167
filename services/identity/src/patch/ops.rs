//! The three operations on a resolved target: add and replace ([`set`])
//! and [`remove`], with the merge, duplicate and primary rules of RFC 7644
//! §3.5.2 and the bounds every stored resource keeps.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value as Json};

use super::resolve::{Target, array_mut, existing_key, get_ci, last_key, parent_mut, remove_ci};
use super::schema::{PatchError, Shape};
use super::select::{Selectors, ValueFilter, equality_element};
use crate::attr::{MAX_RESOURCE_BYTES, MAX_VALUES, canonical, too_many_values, value_len};

/// Merges `new` into `existing`; known sub-attribute names are canonicalised
/// and null removes.
pub(super) fn merge(
    existing: &mut Map<String, Json>,
    new: Map<String, Json>,
    subs: Option<&[&'static str]>,
) {
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
pub(super) fn set(
    doc: &mut Map<String, Json>,
    target: &Target,
    filter: Option<&ValueFilter<'_>>,
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
        let matched = filter.matching(items);
        let touched = if matched.is_empty() {
            // Only a filter that names the element's `type` describes a new
            // one (Entra's `emails[type eq "work"].value`); any other is noTarget.
            let mut element = equality_element(filter.filter, &key, subs)
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

/// remove. A value filter that selects nothing is NO_TARGET (RFC 7644
/// §3.5.2.2); removing an attribute that has no value changes nothing.
/// A multi-valued attribute left without values becomes unassigned.
pub(super) fn remove(
    doc: &mut Map<String, Json>,
    target: &Target,
    filter: Option<&ValueFilter<'_>>,
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
            let matched = filter.matching(items);
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
