//! A group's `members` in SCIM JSON -> user ids and typed member changes.
//! IdPs write membership in several shapes (RFC 7644 §3.5.2 and what Okta
//! and Entra send); they are all read here, so the service takes only the
//! typed `MemberChange`s of a PatchGroupRequest. The ids stay as sent: the
//! service reads them with the one rule it uses on create, so a malformed
//! id fails alike on every path.

use std::collections::HashSet;

use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression;
use identity_proto::v1::member_change::Change;
use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::{AttributePath, Filter, MemberChange, MemberIds, RemoveAllMembers};
use serde_json::{Map, Value as Json};

use crate::wire::error::ScimError;

/// Member sub-attributes that are derived on output, never stored:
/// operations on them change nothing.
const DERIVED_SUBS: &[&str] = &["display", "type", "$ref"];

/// Whether `path` names a group's `members` (core schema, any form).
pub fn is_members(path: &AttributePath) -> bool {
    path.schema.is_empty() && path.attribute.eq_ignore_ascii_case("members")
}

/// The user ids of a `members` value: `[{"value": id, "display": …}]`, one
/// such object, or bare ids. `display`, `type` and `$ref` are ignored (the
/// service fills them in), nulls skipped, repeats dropped.
pub fn member_ids(value: Json) -> Result<Vec<String>, ScimError> {
    ids(value, true)
}

/// [`member_ids`], where an object without a `value` names no one unless
/// `require_value` (a filtered add may send only derived sub-attributes).
fn ids(value: Json, require_value: bool) -> Result<Vec<String>, ScimError> {
    let items = match value {
        Json::Array(items) => items,
        Json::Null => Vec::new(),
        single => vec![single],
    };
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let id = match item {
            Json::Null => continue,
            Json::String(id) => Some(id),
            Json::Object(member) => match value_of(&member) {
                Some(Json::String(id)) => Some(id.clone()),
                None | Some(Json::Null) if !require_value => continue,
                _ => None,
            },
            _ => None,
        };
        let id = id
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "members[{index}] must be an object with the member's id as \"value\""
                ))
            })?;
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn value_of(member: &Map<String, Json>) -> Option<&Json> {
    member.get("value").or_else(|| {
        member
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("value"))
            .map(|(_, v)| v)
    })
}

/// The member changes of one operation on `members` ([`is_members`]):
/// - `members` add: the listed users join; replace: they become the member
///   set; remove: the listed users leave, or everyone without a value.
///   An add or remove of no one is dropped (an empty Entra removal must not
///   read as "remove all").
/// - `members[value eq "id"]` (or several `eq`s joined by `or`) remove:
///   those users leave; add/replace: they join (the equality filter
///   describes the member it creates), or, when the value names other ids,
///   the selected members are replaced by those.
/// - `members.value` reads as `members`; the derived sub-attributes
///   (`display`, `type`, `$ref`) change no member.
///
/// `None` when there is nothing to send; an empty list is a write that
/// changes no member (the group's version still moves, as for any PATCH).
pub fn changes(
    op: Op,
    path: &AttributePath,
    value: Option<Json>,
) -> Result<Option<Vec<MemberChange>>, ScimError> {
    let value = value.filter(|v| !v.is_null());
    let op = match (op, &value) {
        (Op::Add, None) => return Ok(None),
        // Replace with nothing: the selection goes.
        (Op::Replace, None) => Op::Remove,
        (op, _) => op,
    };
    let sub = path.sub_attribute.as_str();
    if !sub.is_empty() && !sub.eq_ignore_ascii_case("value") {
        return if DERIVED_SUBS.iter().any(|d| d.eq_ignore_ascii_case(sub)) {
            Ok(Some(Vec::new()))
        } else {
            Err(ScimError::invalid_path(format!(
                "members has no sub-attribute '{sub}'"
            )))
        };
    }
    let Some(filter) = path.value_filter.as_deref() else {
        return listed_changes(op, value, sub.is_empty());
    };
    let selected = filter_ids(filter)?;
    let named = match (op, value) {
        (Op::Remove, _) | (_, None) => Vec::new(),
        (_, Some(value)) => ids(value, false)?,
    };
    if op == Op::Remove {
        return Ok(Some(vec![remove(selected)]));
    }
    if named.is_empty() {
        return Ok(Some(vec![add(selected)]));
    }
    // Ids compare as text (trimmed, any case): an id named in another
    // spelling leaves and joins again, which ends in the same member set.
    let leaving: Vec<String> = selected
        .into_iter()
        .filter(|id| !named.iter().any(|n| n.eq_ignore_ascii_case(id.trim())))
        .collect();
    let mut changes = Vec::new();
    if !leaving.is_empty() {
        changes.push(remove(leaving));
    }
    changes.push(add(named));
    Ok(Some(changes))
}

/// `members` or `members.value` without a filter: the listed users, or
/// everyone for a remove without a value. With `drop_empty` (`members`
/// itself), an add or remove of no one is not sent.
fn listed_changes(
    op: Op,
    value: Option<Json>,
    drop_empty: bool,
) -> Result<Option<Vec<MemberChange>>, ScimError> {
    let Some(value) = value else {
        return Ok(Some(vec![remove_all()]));
    };
    let ids = member_ids(value)?;
    if drop_empty && ids.is_empty() && op != Op::Replace {
        return Ok(None);
    }
    Ok(Some(vec![match op {
        Op::Remove => remove(ids),
        Op::Replace => replace(ids),
        _ => add(ids),
    }]))
}

/// Recognises the one shape of member value filter a group PATCH takes,
/// `members[value eq "<id>"]` (or several of those joined by `or`), and
/// gives its ids. This is a shape check, not a filter interpreter: the
/// members are never read into memory to evaluate a filter, so any other
/// filter is refused here, while a list filter on members goes to SQL.
fn filter_ids(filter: &Filter) -> Result<Vec<String>, ScimError> {
    let unsupported = || {
        ScimError::invalid_path(
            "members are selected by value eq \"<user id>\", alone or joined by or",
        )
    };
    let mut ids = Vec::new();
    let mut pending = vec![filter];
    while let Some(filter) = pending.pop() {
        match filter.expression.as_ref() {
            // Reversed onto the stack, so ids come in the order they were written.
            Some(Expression::Or(l)) if !l.operands.is_empty() => {
                pending.extend(l.operands.iter().rev())
            }
            Some(Expression::Comparison(c)) if c.operator == Operator::Eq as i32 => {
                let path = c.path.as_deref().ok_or_else(unsupported)?;
                if !names_value(path) {
                    return Err(unsupported());
                }
                match c.value.clone().map(identity_proto::value_to_json) {
                    Some(Json::String(text)) => ids.push(text),
                    _ => return Err(unsupported()),
                }
            }
            _ => return Err(unsupported()),
        }
    }
    Ok(ids)
}

/// Whether a path inside a `members[...]` filter names the member's
/// `value` (also spelled `members.value`).
fn names_value(path: &AttributePath) -> bool {
    let (attr, sub) = match path.attribute.split_once('.') {
        Some(parts) if path.sub_attribute.is_empty() => parts,
        _ => (path.attribute.as_str(), path.sub_attribute.as_str()),
    };
    let name = if sub.is_empty() {
        attr
    } else if attr.eq_ignore_ascii_case("members") {
        sub
    } else {
        &path.attribute
    };
    name.eq_ignore_ascii_case("value")
}

fn of_ids(change: fn(MemberIds) -> Change, user_ids: Vec<String>) -> MemberChange {
    MemberChange {
        change: Some(change(MemberIds { user_ids })),
    }
}

fn add(ids: Vec<String>) -> MemberChange {
    of_ids(Change::Add, ids)
}

fn remove(ids: Vec<String>) -> MemberChange {
    of_ids(Change::Remove, ids)
}

fn replace(ids: Vec<String>) -> MemberChange {
    of_ids(Change::Replace, ids)
}

fn remove_all() -> MemberChange {
    MemberChange {
        change: Some(Change::RemoveAll(RemoveAllMembers {})),
    }
}

#[cfg(test)]
pub(crate) mod tests;
