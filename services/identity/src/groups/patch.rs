//! SCIM PATCH of a group. Membership operations become set changes that the
//! store applies in SQL (`INSERT ... ON CONFLICT DO NOTHING`, `DELETE ...
//! = ANY(ids)`), never a read-modify-write of the member list; every other
//! operation goes through the shared engine ([`crate::patch`]) on the
//! group's document, like a user's.

use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::{AttributePath, Filter, PatchOperation};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::{GroupData, GroupError, parse_member_ids};
use crate::attr::{
    Resource, Schema, attribute_parts, canonical, display_path, element_attribute, schema_of,
};
use crate::patch::{self, PatchError, PatchSchema, Shape, check_path_bounds};

/// The group's attributes for the shared engine; `members` never reaches it.
pub(crate) const GROUP: PatchSchema = PatchSchema {
    resource: Resource::Group,
    typed: &[
        ("displayName", Shape::Simple),
        ("externalId", Shape::Simple),
    ],
    bag: &[],
    read_only: &["id", "meta"],
    ignored: &["schemas"],
    extension: None,
};

/// Member sub-attributes that are derived on output, never stored:
/// operations on them change nothing.
const DERIVED_MEMBER_SUBS: &[&str] = &["display", "type", "$ref"];

/// One change of a group's member set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MemberChange {
    /// Already-members are a no-op.
    Add(Vec<Uuid>),
    /// Non-members are a no-op.
    Remove(Vec<Uuid>),
    RemoveAll,
    /// The member set becomes exactly these users.
    Replace(Vec<Uuid>),
}

/// A group PATCH request split into its two kinds of work.
#[derive(Debug, Default)]
pub(crate) struct GroupPatch {
    /// Operations on every attribute but `members`, in request order.
    pub attributes: Vec<PatchOperation>,
    /// Membership changes, in request order.
    pub members: Vec<MemberChange>,
}

impl GroupPatch {
    /// The users an add or replace makes members; each must be a live user
    /// of the tenant. Sorted, without duplicates.
    pub(crate) fn added_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .members
            .iter()
            .flat_map(|change| match change {
                MemberChange::Add(ids) | MemberChange::Replace(ids) => ids.as_slice(),
                MemberChange::Remove(_) | MemberChange::RemoveAll => &[],
            })
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Splits `operations` into membership changes and attribute operations,
/// validating the membership ones. Operations come canonical (with a path,
/// see [`patch::canonical`]), so `members` is always named by a path.
pub(crate) fn plan(operations: &[PatchOperation]) -> Result<GroupPatch, GroupError> {
    let mut plan = GroupPatch::default();
    for operation in operations {
        let (op, path, value) = patch::canonical(operation)?;
        check_path_bounds(path)?;
        plan_one(&mut plan, op, path, value)?;
    }
    Ok(plan)
}

fn plan_one(
    plan: &mut GroupPatch,
    op: Op,
    path: &AttributePath,
    value: Option<Json>,
) -> Result<(), GroupError> {
    let (attr, _) = attribute_parts(path);
    if schema_of(path, Resource::Group) == Schema::Core && attr.eq_ignore_ascii_case("members") {
        return member_changes(plan, op, path, value);
    }
    plan.attributes.push(PatchOperation {
        op: op as i32,
        path: Some(path.clone()),
        value: value.map(identity_proto::json_to_value),
    });
    Ok(())
}

/// RFC 7644 §3.5.2 on `members`, whose elements are identified by `value`:
/// - `members` add: the listed users join; replace: they become the member
///   set; remove: the listed users leave, or everyone without a value.
/// - `members[value eq "id"]` (or several `eq`s joined by `or`) remove: those
///   users leave; add/replace: they join (the equality filter describes the
///   member it creates), or, when the value names other ids, the selected
///   members are replaced by those.
fn member_changes(
    plan: &mut GroupPatch,
    op: Op,
    path: &AttributePath,
    value: Option<Json>,
) -> Result<(), GroupError> {
    let label = display_path(path);
    let (_, sub) = attribute_parts(path);
    if !sub.is_empty() && !sub.eq_ignore_ascii_case("value") {
        return if canonical(DERIVED_MEMBER_SUBS, sub).is_some() {
            Ok(())
        } else {
            Err(
                PatchError::InvalidPath(format!("'{label}': members has no sub-attribute '{sub}'"))
                    .into(),
            )
        };
    }
    let changes = match (path.value_filter.as_deref(), op) {
        (Some(filter), Op::Remove) => vec![MemberChange::Remove(filter_ids(filter, &label)?)],
        (Some(filter), _) => {
            let selected = filter_ids(filter, &label)?;
            // A value of derived sub-attributes only ({"display": ...}) names no one.
            let named = match &value {
                Some(value) => ids_in(value, false)?,
                None => Vec::new(),
            };
            if named.is_empty() {
                vec![MemberChange::Add(selected)]
            } else {
                let leaving: Vec<Uuid> = selected
                    .into_iter()
                    .filter(|id| named.binary_search(id).is_err())
                    .collect();
                let mut changes = Vec::new();
                if !leaving.is_empty() {
                    changes.push(MemberChange::Remove(leaving));
                }
                changes.push(MemberChange::Add(named));
                changes
            }
        }
        (None, Op::Add) => {
            let value = value.ok_or_else(|| {
                PatchError::InvalidValue(format!(
                    "'{label}': add needs a list of {{\"value\": user id}}"
                ))
            })?;
            vec![MemberChange::Add(member_ids(&value)?)]
        }
        (None, Op::Replace) => vec![MemberChange::Replace(match &value {
            Some(value) => member_ids(value)?,
            None => Vec::new(),
        })],
        (None, _) => vec![match &value {
            Some(value) => MemberChange::Remove(member_ids(value)?),
            None => MemberChange::RemoveAll,
        }],
    };
    plan.members.extend(changes);
    Ok(())
}

/// The user ids of a member list: `[{"value": id, "display": ...}, ...]`, one
/// such object, or bare id strings. Only `value` is read; `display`, `type`
/// and `$ref` are derived on output. The ids are parsed as every other path
/// parses them ([`parse_member_ids`]).
fn member_ids(value: &Json) -> Result<Vec<Uuid>, GroupError> {
    ids_in(value, true)
}

/// [`member_ids`], where an object without `value` is an error when
/// `require_value`, else names no one.
fn ids_in(value: &Json, require_value: bool) -> Result<Vec<Uuid>, GroupError> {
    let items = match value {
        Json::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id = match item {
            Json::String(text) => text.clone(),
            Json::Object(object) => match value_of(object) {
                Some(Json::String(text)) => text.clone(),
                None | Some(Json::Null) if !require_value => continue,
                _ => {
                    return Err(PatchError::InvalidValue(
                        "each member needs a \"value\" with a user id".into(),
                    )
                    .into());
                }
            },
            Json::Null => continue,
            _ => {
                return Err(PatchError::InvalidValue(
                    "members must be a list of {\"value\": user id}".into(),
                )
                .into());
            }
        };
        ids.push(id);
    }
    parse_member_ids(&ids)
}

fn value_of(object: &Map<String, Json>) -> Option<&Json> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("value"))
        .map(|(_, v)| v)
}

/// Recognises the one shape of member value filter a group PATCH takes,
/// `members[value eq "<id>"]` (or several of those joined by `or`), and
/// gives its ids. This is a shape check, not a filter interpreter: the
/// members are never read into memory to evaluate a filter, so any other
/// filter is refused here, while a list filter on members goes to SQL.
fn filter_ids(filter: &Filter, label: &str) -> Result<Vec<Uuid>, GroupError> {
    let unsupported = || {
        PatchError::InvalidPath(format!(
            "'{label}': members are selected by value eq \"<user id>\", alone or joined by or"
        ))
    };
    let mut ids = Vec::new();
    let mut pending = vec![filter];
    while let Some(filter) = pending.pop() {
        match filter.expression.as_ref() {
            // Reversed onto the stack, so ids come in the order they were written.
            Some(Expr::Or(l)) if !l.operands.is_empty() => pending.extend(l.operands.iter().rev()),
            Some(Expr::Comparison(c)) if c.operator == Operator::Eq as i32 => {
                let path = c.path.as_deref().ok_or_else(unsupported)?;
                if !element_attribute(path, "members").eq_ignore_ascii_case("value") {
                    return Err(unsupported().into());
                }
                match c.value.clone().map(identity_proto::value_to_json) {
                    Some(Json::String(text)) => ids.push(text),
                    _ => return Err(unsupported().into()),
                }
            }
            _ => return Err(unsupported().into()),
        }
    }
    parse_member_ids(&ids)
}

/// The group as a SCIM document for the shared engine, without members.
fn to_document(id: Uuid, group: &GroupData) -> Map<String, Json> {
    let mut doc = group.attributes.clone();
    doc.insert("id".into(), Json::String(id.to_string()));
    doc.insert(
        "displayName".into(),
        Json::String(group.display_name.clone()),
    );
    if let Some(v) = &group.external_id {
        doc.insert("externalId".into(), Json::String(v.clone()));
    }
    doc
}

fn from_document(doc: Map<String, Json>) -> Result<GroupData, PatchError> {
    let mut group = GroupData::default();
    let mut display_name = None;
    for (key, value) in doc {
        if value.is_null() {
            continue;
        }
        match GROUP.typed_name(&key) {
            Some(attr) => {
                let Json::String(text) = value else {
                    return Err(PatchError::InvalidValue(format!("{attr} must be a string")));
                };
                if attr == "displayName" {
                    display_name = Some(text);
                } else {
                    group.external_id = Some(text);
                }
            }
            None if GROUP.is_bag(&key) => {
                group.attributes.insert(key, value);
            }
            None => {}
        }
    }
    group.display_name =
        display_name.ok_or_else(|| PatchError::InvalidValue("displayName is required".into()))?;
    group.validate().map_err(PatchError::InvalidValue)?;
    Ok(group)
}

/// Applies the attribute operations of a plan to the group `id`.
pub(crate) fn apply_attributes(
    id: Uuid,
    group: &GroupData,
    operations: &[PatchOperation],
) -> Result<GroupData, PatchError> {
    if operations.is_empty() {
        return Ok(group.clone());
    }
    let mut doc = to_document(id, group);
    patch::apply(&GROUP, &mut doc, operations)?;
    from_document(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ResourceError;
    use crate::testing::{eq, op, path};
    use identity_proto::v1::Logical;
    use serde_json::json;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn filtered(filter: Filter, sub: &str) -> AttributePath {
        crate::testing::filtered("members", filter, sub)
    }

    fn members(ops: &[PatchOperation]) -> Vec<MemberChange> {
        plan(ops).unwrap_or_else(|e| panic!("{e}")).members
    }

    fn members_path() -> Option<AttributePath> {
        Some(path("", "members", ""))
    }

    #[test]
    fn okta_and_entra_membership_shapes() {
        let (a, b) = (id(1), id(2));
        // Okta / Entra add with a value array; display and unknown keys are ignored.
        assert_eq!(
            members(&[op(
                Op::Add,
                members_path(),
                Some(json!([
                    {"value": b.to_string(), "display": "Bob"},
                    {"Value": a.to_string(), "$ref": "x", "type": "User"}
                ]))
            )]),
            [MemberChange::Add(vec![a, b])]
        );
        // Entra remove with a value array.
        assert_eq!(
            members(&[op(
                Op::Remove,
                members_path(),
                Some(json!([{"value": a.to_string()}]))
            )]),
            [MemberChange::Remove(vec![a])]
        );
        // Okta remove of one member by value filter.
        assert_eq!(
            members(&[op(
                Op::Remove,
                Some(filtered(eq("value", json!(a.to_string())), "")),
                None
            )]),
            [MemberChange::Remove(vec![a])]
        );
        // remove without value: everyone; replace: exactly that set.
        assert_eq!(
            members(&[op(Op::Remove, members_path(), None)]),
            [MemberChange::RemoveAll]
        );
        assert_eq!(
            members(&[op(
                Op::Replace,
                members_path(),
                Some(json!([{"value": a.to_string()}]))
            )]),
            [MemberChange::Replace(vec![a])]
        );
        assert_eq!(
            members(&[op(Op::Replace, members_path(), Some(json!([])))]),
            [MemberChange::Replace(vec![])]
        );
        assert_eq!(
            members(&[op(Op::Replace, members_path(), None)]),
            [MemberChange::Replace(vec![])]
        );
    }

    #[test]
    fn or_of_equalities_selects_several_members() {
        let (a, b) = (id(1), id(2));
        let either = Filter {
            expression: Some(Expr::Or(Logical {
                operands: vec![
                    eq("value", json!(b.to_string())),
                    eq("members.value", json!(a.to_string())),
                ],
            })),
        };
        assert_eq!(
            members(&[op(Op::Remove, Some(filtered(either, "")), None)]),
            [MemberChange::Remove(vec![a, b])]
        );
        // Other filters would need the member list: refused.
        for bad in [
            eq("display", json!("Bob")),
            Filter {
                expression: Some(Expr::And(Logical {
                    operands: vec![eq("value", json!(a.to_string())), eq("value", json!("x"))],
                })),
            },
            Filter {
                expression: Some(Expr::Not(Box::new(eq("value", json!(a.to_string()))))),
            },
        ] {
            assert!(matches!(
                plan(&[op(Op::Remove, Some(filtered(bad, "")), None)]),
                Err(GroupError::Resource(ResourceError::Patch(
                    PatchError::InvalidPath(_)
                )))
            ));
        }
    }

    #[test]
    fn filtered_add_and_replace() {
        let (a, b) = (id(1), id(2));
        assert_eq!(
            members(&[op(
                Op::Add,
                Some(filtered(eq("value", json!(a.to_string())), "")),
                Some(json!({"display": "Ann"}))
            )]),
            [MemberChange::Add(vec![a])]
        );
        assert_eq!(
            members(&[op(
                Op::Replace,
                Some(filtered(eq("value", json!(a.to_string())), "")),
                Some(json!({"value": b.to_string()}))
            )]),
            [MemberChange::Remove(vec![a]), MemberChange::Add(vec![b])]
        );
        assert_eq!(
            members(&[op(
                Op::Replace,
                Some(filtered(eq("value", json!(a.to_string())), "value")),
                Some(json!(a.to_string()))
            )]),
            [MemberChange::Add(vec![a])]
        );
    }

    #[test]
    fn derived_member_sub_attributes_change_nothing() {
        let a = id(1);
        let plan = plan(&[
            op(
                Op::Replace,
                Some(filtered(eq("value", json!(a.to_string())), "display")),
                Some(json!("Ann")),
            ),
            op(Op::Remove, Some(path("", "members", "$ref")), None),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(plan.members.is_empty() && plan.attributes.is_empty());
        assert!(matches!(
            super::plan(&[op(
                Op::Add,
                Some(path("", "members", "color")),
                Some(json!("x"))
            )]),
            Err(GroupError::Resource(ResourceError::Patch(
                PatchError::InvalidPath(_)
            )))
        ));
    }

    #[test]
    fn malformed_member_values_are_invalid_values() {
        for bad in [
            op(Op::Add, members_path(), Some(json!([{"display": "Bob"}]))),
            op(Op::Add, members_path(), Some(json!([{"value": 7}]))),
            op(Op::Add, members_path(), Some(json!([7]))),
            op(Op::Add, members_path(), None),
        ] {
            let result = plan(std::slice::from_ref(&bad));
            assert!(
                matches!(
                    result,
                    Err(GroupError::Resource(ResourceError::Patch(
                        PatchError::InvalidValue(_)
                    )))
                ),
                "{bad:?}: {result:?}"
            );
        }
    }

    #[test]
    fn malformed_member_ids_are_unknown_members_as_on_create() {
        for bad in [
            op(Op::Add, members_path(), Some(json!([{"value": "bob"}]))),
            op(Op::Replace, members_path(), Some(json!(["bob"]))),
            op(Op::Remove, members_path(), Some(json!(["bob"]))),
            op(
                Op::Remove,
                Some(filtered(eq("value", json!("bob")), "")),
                None,
            ),
        ] {
            let result = plan(std::slice::from_ref(&bad)).err();
            let create = parse_member_ids(&["bob".into()]).err();
            assert!(
                matches!(&result, Some(GroupError::UnknownMembers(ids)) if ids == &["bob"]),
                "{bad:?}: {result:?}"
            );
            assert_eq!(result.map(|e| e.to_string()), create.map(|e| e.to_string()));
        }
    }

    #[test]
    fn replace_splits_members_from_attributes() {
        let a = id(1);
        // Okta's pathless replace echoing the id, as the adapter expands it.
        let plan = plan(&[
            op(
                Op::Replace,
                Some(path("", "id", "")),
                Some(json!(id(9).to_string())),
            ),
            op(
                Op::Replace,
                Some(path("", "displayName", "")),
                Some(json!("Ops")),
            ),
            op(
                Op::Replace,
                members_path(),
                Some(json!([{"value": a.to_string()}])),
            ),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.members, [MemberChange::Replace(vec![a])]);
        assert_eq!(plan.attributes.len(), 2);
        let group = GroupData {
            display_name: "Admins".into(),
            ..GroupData::default()
        };
        let out =
            apply_attributes(id(9), &group, &plan.attributes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.display_name, "Ops");
    }

    #[test]
    fn membership_operations_keep_their_order() {
        let (a, b) = (id(1), id(2));
        let plan = plan(&[
            op(Op::Remove, members_path(), None),
            op(
                Op::Add,
                Some(path("", "Members", "")),
                Some(json!([{"value": b.to_string()}, {"value": a.to_string()}])),
            ),
            op(
                Op::Replace,
                Some(path(crate::attr::GROUP_URN, "members", "")),
                Some(json!({"value": b.to_string()})),
            ),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plan.members,
            [
                MemberChange::RemoveAll,
                MemberChange::Add(vec![a, b]),
                MemberChange::Replace(vec![b]),
            ]
        );
        assert_eq!(plan.added_ids(), [a, b]);
    }

    fn group() -> GroupData {
        let mut attributes = Map::new();
        attributes.insert("description".into(), json!("old"));
        GroupData {
            display_name: "Admins".into(),
            external_id: Some("ext-1".into()),
            attributes,
        }
    }

    fn apply_ops(ops: &[PatchOperation]) -> Result<GroupData, GroupError> {
        let plan = plan(ops)?;
        Ok(apply_attributes(id(9), &group(), &plan.attributes)?)
    }

    #[test]
    fn display_name_external_id_and_bag() {
        let out = apply_ops(&[
            op(
                Op::Replace,
                Some(path("", "displayName", "")),
                Some(json!("Ops")),
            ),
            op(
                Op::Add,
                Some(path("", "externalId", "")),
                Some(json!("ext-2")),
            ),
            op(
                Op::Replace,
                Some(path("", "description", "")),
                Some(json!("new")),
            ),
            op(
                Op::Add,
                Some(path("urn:example:ext", "level", "")),
                Some(json!(3)),
            ),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.display_name, "Ops");
        assert_eq!(out.external_id.as_deref(), Some("ext-2"));
        assert_eq!(out.attributes.get("description"), Some(&json!("new")));
        assert_eq!(
            out.attributes.get("urn:example:ext"),
            Some(&json!({"level": 3}))
        );
        let removed = apply_ops(&[op(Op::Remove, Some(path("", "externalId", "")), None)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(removed.external_id, None);
        // A user attribute name means nothing special on a group.
        let bag = apply_ops(&[op(
            Op::Add,
            Some(path("", "name", "givenName")),
            Some(json!("x")),
        )])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bag.attributes.get("name"), Some(&json!({"givenName": "x"})));
    }

    #[test]
    fn read_only_and_type_errors() {
        assert!(
            apply_ops(&[op(
                Op::Replace,
                Some(path("", "id", "")),
                Some(json!(id(9).to_string()))
            )])
            .is_ok()
        );
        for (bad, mutability) in [
            (
                op(Op::Replace, Some(path("", "id", "")), Some(json!("other"))),
                true,
            ),
            (
                op(Op::Add, Some(path("", "meta", "")), Some(json!({}))),
                true,
            ),
            (
                op(Op::Remove, Some(path("", "displayName", "")), None),
                false,
            ),
            (
                op(
                    Op::Replace,
                    Some(path("", "displayName", "")),
                    Some(json!(" ")),
                ),
                false,
            ),
            (
                op(
                    Op::Replace,
                    Some(path("", "displayName", "")),
                    Some(json!(42)),
                ),
                false,
            ),
        ] {
            let result = apply_ops(std::slice::from_ref(&bad));
            if mutability {
                assert!(
                    matches!(
                        result,
                        Err(GroupError::Resource(ResourceError::Patch(
                            PatchError::Mutability(_)
                        )))
                    ),
                    "{result:?}"
                );
            } else {
                assert!(
                    matches!(
                        result,
                        Err(GroupError::Resource(ResourceError::Patch(
                            PatchError::InvalidValue(_)
                        )))
                    ),
                    "{result:?}"
                );
            }
        }
        assert!(matches!(
            plan(&[op(
                Op::Add,
                None,
                Some(json!({"members": [{"value": id(1).to_string()}]}))
            )]),
            Err(GroupError::Resource(ResourceError::Patch(
                PatchError::InvalidPath(_)
            )))
        ));
        assert!(matches!(
            plan(&[op(Op::Unspecified, members_path(), None)]),
            Err(GroupError::Resource(ResourceError::Patch(
                PatchError::InvalidSyntax(_)
            )))
        ));
    }
}
