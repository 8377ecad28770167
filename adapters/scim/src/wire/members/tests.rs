use super::*;
use crate::wire::patch::{Patch, parse_patch};
use crate::wire::schema::{PATCH_OP, Resource};
use serde_json::json;

fn ids_of(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

pub(crate) fn add(ids: &[&str]) -> MemberChange {
    super::add(ids_of(ids))
}

pub(crate) fn remove(ids: &[&str]) -> MemberChange {
    super::remove(ids_of(ids))
}

pub(crate) fn replace(ids: &[&str]) -> MemberChange {
    super::replace(ids_of(ids))
}

pub(crate) fn remove_all() -> MemberChange {
    super::remove_all()
}

fn group_patch(ops: Json) -> Result<Option<Patch>, ScimError> {
    parse_patch(
        Resource::Group,
        json!({"schemas": [PATCH_OP], "Operations": ops}),
    )
}

/// The member changes of a PATCH that sends nothing else.
fn changes_of(ops: Json) -> Vec<MemberChange> {
    let patch = group_patch(ops.clone())
        .unwrap_or_else(|e| panic!("{ops}: {e:?}"))
        .unwrap_or_else(|| panic!("{ops}: nothing to send"));
    assert!(patch.operations.is_empty(), "{ops}: {:?}", patch.operations);
    patch.member_changes
}

fn scim_type(ops: Json) -> Option<&'static str> {
    group_patch(ops)
        .err()
        .and_then(|e| e.scim_type.map(|t| t.as_str()))
}

#[test]
fn okta_and_entra_membership_shapes() {
    // Okta / Entra add with a value array; display and unknown keys are ignored.
    assert_eq!(
        changes_of(json!([{"op": "add", "path": "members", "value": [
            {"value": "b", "display": "Bob"},
            {"Value": "a", "$ref": "x", "type": "User"}
        ]}])),
        [add(&["b", "a"])]
    );
    // Entra remove with a value array; Okta remove of one member by filter.
    assert_eq!(
        changes_of(json!([
            {"op": "remove", "path": "members", "value": [{"value": "a"}]},
            {"op": "remove", "path": "members[value eq \"a\"]"},
        ])),
        [remove(&["a"]), remove(&["a"])]
    );
    // remove without value: everyone; replace: exactly that set.
    assert_eq!(
        changes_of(json!([
            {"op": "remove", "path": "members"},
            {"op": "replace", "path": "members", "value": [{"value": "a"}]},
            {"op": "replace", "path": "members", "value": []},
        ])),
        [remove_all(), replace(&["a"]), replace(&[])]
    );
}

#[test]
fn or_of_equalities_selects_several_members() {
    assert_eq!(
        changes_of(json!([
            {"op": "remove", "path": "members[value eq \"b\" or (value eq \"a\" or value eq \"c\")]"}
        ])),
        [remove(&["b", "a", "c"])]
    );
    // Other filters would need the member list: refused, as the service
    // refused them before it took typed changes.
    for bad in [
        "members[display eq \"Bob\"]",
        "members[value eq \"a\" and value eq \"x\"]",
        "members[not (value eq \"a\")]",
        "members[value pr]",
        "members[value ne \"a\"]",
    ] {
        assert_eq!(
            scim_type(json!([{"op": "remove", "path": bad}])),
            Some("invalidPath"),
            "{bad}"
        );
        assert_eq!(
            scim_type(json!([{"op": "add", "path": bad, "value": {"value": "a"}}])),
            Some("invalidPath"),
            "{bad}"
        );
    }
}

#[test]
fn filtered_add_and_replace() {
    // The equality filter describes the member an add creates.
    assert_eq!(
        changes_of(json!([
            {"op": "add", "path": "members[value eq \"a\"]", "value": {"display": "Ann"}}
        ])),
        [add(&["a"])]
    );
    // A value naming someone else replaces the selected members.
    assert_eq!(
        changes_of(json!([
            {"op": "replace", "path": "members[value eq \"a\"]", "value": {"value": "b"}}
        ])),
        [remove(&["a"]), add(&["b"])]
    );
    // The selected member named again stays.
    assert_eq!(
        changes_of(json!([
            {"op": "replace", "path": "members[value eq \"a\"].value", "value": "a"}
        ])),
        [add(&["a"])]
    );
    // Replace with nothing: the selected members leave.
    assert_eq!(
        changes_of(json!([
            {"op": "replace", "path": "members[value eq \"a\"]", "value": null}
        ])),
        [remove(&["a"])]
    );
}

#[test]
fn members_value_reads_as_members() {
    assert_eq!(
        changes_of(json!([
            {"op": "add", "path": "members.value", "value": ["a", "b"]},
            {"op": "remove", "path": "Members.Value", "value": "a"},
            {"op": "add", "path": "members.value", "value": []},
            {"op": "replace", "path": "members.value", "value": null},
        ])),
        [add(&["a", "b"]), remove(&["a"]), add(&[]), remove_all()]
    );
}

#[test]
fn derived_member_sub_attributes_change_nothing() {
    // Sent as a write that changes no member.
    assert_eq!(
        group_patch(json!([
            {"op": "replace", "path": "members[value eq \"a\"].display", "value": "Ann"},
            {"op": "remove", "path": "members.$ref"},
            {"op": "replace", "path": "members[display eq \"Bob\"].type", "value": "User"},
        ])),
        Ok(Some(Patch::default()))
    );
    assert_eq!(
        group_patch(json!([{"op": "add", "path": "members.display", "value": null}])),
        Ok(None)
    );
    assert_eq!(
        scim_type(json!([{"op": "add", "path": "members.color", "value": "x"}])),
        Some("invalidPath")
    );
}

#[test]
fn malformed_member_values_are_invalid_values() {
    for bad in [
        json!([{"op": "add", "path": "members", "value": [{"display": "Bob"}]}]),
        json!([{"op": "add", "path": "members", "value": [{"value": 7}]}]),
        json!([{"op": "add", "path": "members", "value": [7]}]),
        json!([{"op": "add", "path": "members.value", "value": [{"display": "x"}]}]),
        json!([{"op": "remove", "path": "members.value", "value": [true]}]),
        json!([{"op": "add", "path": "members[value eq \"a\"]", "value": [7]}]),
        json!([{"op": "add", "path": "members[value eq \"a\"]", "value": {"value": 7}}]),
    ] {
        assert_eq!(scim_type(bad.clone()), Some("invalidValue"), "{bad}");
    }
}

#[test]
fn member_ids_trim_skip_nulls_and_drop_repeats() {
    assert_eq!(
        member_ids(json!([{"value": " a "}, null, "b", {"VALUE": "a"}])),
        Ok(ids_of(&["a", "b"]))
    );
    assert_eq!(
        member_ids(json!([{"value": "a"}, {}])).map_err(|e| e.detail),
        Err("members[1] must be an object with the member's id as \"value\"".to_owned())
    );
}
