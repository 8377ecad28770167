//! SCIM PATCH of a group. Membership arrives typed (the caller has read
//! SCIM's member shapes) and becomes set changes that the store applies in
//! SQL (`INSERT ... ON CONFLICT DO NOTHING`, `DELETE ... = ANY(ids)`), never
//! a read-modify-write of the member list; every other operation goes
//! through the shared engine ([`crate::patch`]) on the group's document,
//! like a user's.

use identity_proto::v1::member_change::Change;
use identity_proto::v1::{self as proto, PatchOperation};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::{GroupData, GroupError, parse_member_ids};
use crate::attr::{Resource, Schema, attribute_parts, display_path, schema_of};
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

/// A group PATCH request checked and split into its two kinds of work.
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

    /// Whether applying the patch can change anyone's access, so that the
    /// write must read the tenant's policy (see `groups::store`): a member
    /// change can, and so can an operation on displayName (a mapping names
    /// a group by id or displayName); one on any other attribute cannot.
    pub(crate) fn can_change_access(&self) -> bool {
        !self.members.is_empty()
            || self.attributes.iter().any(|operation| {
                operation.path.as_ref().is_some_and(|path| {
                    schema_of(path, Resource::Group) == Schema::Core
                        && attribute_parts(path).0.eq_ignore_ascii_case("displayName")
                })
            })
    }
}

/// Checks a PatchGroup request's two lists. Operations come canonical
/// (with a path, see [`patch::canonical`]) and never name `members`, whose
/// changes come typed; their ids are read as on create
/// ([`parse_member_ids`]), so a bad id fails alike on every path.
pub(crate) fn plan(
    operations: &[PatchOperation],
    member_changes: &[proto::MemberChange],
) -> Result<GroupPatch, GroupError> {
    let mut plan = GroupPatch::default();
    for operation in operations {
        let (op, path, value) = patch::canonical(operation)?;
        check_path_bounds(path)?;
        let (attr, _) = attribute_parts(path);
        if schema_of(path, Resource::Group) == Schema::Core && attr.eq_ignore_ascii_case("members")
        {
            return Err(PatchError::InvalidPath(format!(
                "'{}': members change through member_changes, not operations",
                display_path(path)
            ))
            .into());
        }
        plan.attributes.push(PatchOperation {
            op: op as i32,
            path: Some(path.clone()),
            value: value.map(identity_proto::json_to_value),
        });
    }
    for change in member_changes {
        plan.members.push(member_change(change)?);
    }
    Ok(plan)
}

fn member_change(change: &proto::MemberChange) -> Result<MemberChange, GroupError> {
    Ok(match &change.change {
        Some(Change::Add(ids)) => MemberChange::Add(parse_member_ids(&ids.user_ids)?),
        Some(Change::Remove(ids)) => MemberChange::Remove(parse_member_ids(&ids.user_ids)?),
        Some(Change::RemoveAll(_)) => MemberChange::RemoveAll,
        Some(Change::Replace(ids)) => MemberChange::Replace(parse_member_ids(&ids.user_ids)?),
        None => {
            return Err(PatchError::InvalidSyntax(
                "each member change needs add, remove, remove_all or replace".into(),
            )
            .into());
        }
    })
}

/// The group as a SCIM document for the shared engine, without members.
pub(crate) fn to_document(id: Uuid, group: &GroupData) -> Map<String, Json> {
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
    use crate::testing::{eq, filtered, op, path};
    use identity_proto::v1::patch_operation::Op;
    use identity_proto::v1::{MemberIds, RemoveAllMembers};
    use serde_json::json;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn ids(change: fn(MemberIds) -> Change, ids: &[Uuid]) -> proto::MemberChange {
        let user_ids = ids.iter().map(Uuid::to_string).collect();
        proto::MemberChange {
            change: Some(change(MemberIds { user_ids })),
        }
    }

    fn remove_all() -> proto::MemberChange {
        proto::MemberChange {
            change: Some(Change::RemoveAll(RemoveAllMembers {})),
        }
    }

    /// `kind` on the core attribute `attribute`.
    fn core(kind: Op, attribute: &str, value: Json) -> PatchOperation {
        op(kind, Some(path("", attribute, "")), Some(value))
    }

    fn members(changes: &[proto::MemberChange]) -> Vec<MemberChange> {
        plan(&[], changes).unwrap_or_else(|e| panic!("{e}")).members
    }

    #[test]
    fn typed_changes_keep_their_order_and_parse_ids() {
        let (a, b) = (id(1), id(2));
        let changes = [
            remove_all(),
            ids(Change::Add, &[b, a, b]),
            ids(Change::Remove, &[a]),
            ids(Change::Replace, &[b]),
            ids(Change::Replace, &[]),
        ];
        let plan = plan(&[], &changes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plan.members,
            [
                MemberChange::RemoveAll,
                MemberChange::Add(vec![a, b]),
                MemberChange::Remove(vec![a]),
                MemberChange::Replace(vec![b]),
                MemberChange::Replace(vec![]),
            ]
        );
        assert_eq!(plan.added_ids(), [a, b]);
        assert_eq!(
            members(&[proto::MemberChange {
                change: Some(Change::Add(MemberIds {
                    user_ids: vec![format!(" {a} ")],
                })),
            }]),
            [MemberChange::Add(vec![a])]
        );
    }

    #[test]
    fn malformed_member_ids_are_unknown_members_as_on_create() {
        let bad = || MemberIds {
            user_ids: vec!["bob".into()],
        };
        for change in [
            Change::Add(bad()),
            Change::Remove(bad()),
            Change::Replace(bad()),
        ] {
            let result = plan(
                &[],
                &[proto::MemberChange {
                    change: Some(change),
                }],
            )
            .err();
            let create = parse_member_ids(&["bob".into()]).err();
            assert!(
                matches!(&result, Some(GroupError::UnknownMembers(ids)) if ids == &["bob"]),
                "{result:?}"
            );
            assert_eq!(result.map(|e| e.to_string()), create.map(|e| e.to_string()));
        }
        assert!(matches!(
            plan(&[], &[proto::MemberChange { change: None }]),
            Err(GroupError::Resource(ResourceError::Patch(
                PatchError::InvalidSyntax(_)
            )))
        ));
    }

    #[test]
    fn operations_never_name_members() {
        for members_path in [
            path("", "members", ""),
            path("", "Members", "value"),
            path(crate::attr::GROUP_URN, "members", ""),
            filtered("members", eq("value", json!(id(1).to_string())), ""),
        ] {
            let result = plan(
                &[op(
                    Op::Add,
                    Some(members_path.clone()),
                    Some(json!([{"value": id(1).to_string()}])),
                )],
                &[],
            );
            assert!(
                matches!(
                    &result,
                    Err(GroupError::Resource(ResourceError::Patch(
                        PatchError::InvalidPath(message)
                    ))) if message.contains("member_changes")
                ),
                "{members_path:?}: {result:?}"
            );
        }
        // An extension's own `members` is an attribute like any other.
        let plan = plan(
            &[op(
                Op::Add,
                Some(path("urn:example:ext", "members", "")),
                Some(json!(["x"])),
            )],
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.attributes.len(), 1);
    }

    #[test]
    fn attributes_and_members_split() {
        let a = id(1);
        // Okta's pathless replace echoing the id, as the adapter expands it.
        let plan = plan(
            &[
                core(Op::Replace, "id", json!(id(9).to_string())),
                core(Op::Replace, "displayName", json!("Ops")),
            ],
            &[ids(Change::Replace, &[a])],
        )
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
    fn only_members_and_display_name_can_change_access() {
        let can = |ops: &[PatchOperation], changes: &[proto::MemberChange]| {
            plan(ops, changes)
                .unwrap_or_else(|e| panic!("{e}"))
                .can_change_access()
        };
        assert!(can(&[], &[ids(Change::Remove, &[id(1)])]));
        assert!(can(&[], &[remove_all()]));
        for rename in [
            path("", "displayName", ""),
            path("", "DISPLAYNAME", ""),
            path(crate::attr::GROUP_URN, "displayName", ""),
        ] {
            assert!(
                can(
                    &[op(Op::Replace, Some(rename.clone()), Some(json!("Ops")))],
                    &[]
                ),
                "{rename:?}"
            );
        }
        assert!(!can(
            &[
                core(Op::Replace, "externalId", json!("ext-2")),
                core(Op::Replace, "description", json!("new")),
                op(
                    Op::Add,
                    Some(path("urn:example:ext", "displayName", "")),
                    Some(json!("x")),
                ),
            ],
            &[]
        ));
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
        let plan = plan(ops, &[])?;
        Ok(apply_attributes(id(9), &group(), &plan.attributes)?)
    }

    #[test]
    fn display_name_external_id_and_bag() {
        let out = apply_ops(&[
            core(Op::Replace, "displayName", json!("Ops")),
            core(Op::Add, "externalId", json!("ext-2")),
            core(Op::Replace, "description", json!("new")),
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
        assert!(apply_ops(&[core(Op::Replace, "id", json!(id(9).to_string()))]).is_ok());
        for (bad, mutability) in [
            (core(Op::Replace, "id", json!("other")), true),
            (core(Op::Add, "meta", json!({})), true),
            (
                op(Op::Remove, Some(path("", "displayName", "")), None),
                false,
            ),
            (core(Op::Replace, "displayName", json!(" ")), false),
            (core(Op::Replace, "displayName", json!(42)), false),
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
            plan(
                &[op(
                    Op::Add,
                    None,
                    Some(json!({"members": [{"value": id(1).to_string()}]}))
                )],
                &[]
            ),
            Err(GroupError::Resource(ResourceError::Patch(
                PatchError::InvalidPath(_)
            )))
        ));
        assert!(matches!(
            plan(
                &[op(Op::Unspecified, Some(path("", "members", "")), None)],
                &[]
            ),
            Err(GroupError::Resource(ResourceError::Patch(
                PatchError::InvalidSyntax(_)
            )))
        ));
    }
}
