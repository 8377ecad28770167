//! `/Groups`: SCIM Group JSON <-> `identity.v1.Group`, and the
//! GroupService requests that carry a group or its changes (the other calls
//! are written once, in `service`, for every type). A Group message never carries
//! members: responses read them with paged ListMembers calls streamed into
//! the body (see `members`), and not at all when the projection drops them
//! or the group has none.

use std::sync::Arc;

use identity_proto::v1::{CreateGroupRequest, Group, PatchGroupRequest, ReplaceGroupRequest};
use serde_json::{Map, Value as Json};

use super::{ScimResource, Stored};
use crate::AppState;
use crate::error::ScimError;
use crate::http::Bearer;
use crate::members::{self, MemberPages, MemberSource};
use crate::wire::members::member_ids;
use crate::wire::patch::Patch;
use crate::wire::projection::Projection;
use crate::wire::schema::{self, CORE_GROUP, Resource, text};
use crate::wire::validate;

/// The Group resource type: answers PATCH with 204 and streams members.
pub struct Groups;

impl ScimResource for Groups {
    const KIND: Resource = Resource::Group;
    const PATCH_ECHOES: bool = false;
    const STREAMED: bool = true;

    fn from_scim(body: Json) -> Result<(Group, Vec<String>), ScimError> {
        group_from_scim(body)
    }

    fn to_scim(group: &Group, base_url: &str) -> Map<String, Json> {
        group_to_scim(group, base_url)
    }

    /// `None` when the group has none or the projection drops them (then
    /// ListMembers is never called).
    fn members(
        state: &AppState,
        bearer: &Bearer,
        group: &Group,
        projection: &Projection,
    ) -> Option<MemberSource> {
        let rule = projection.rule("members");
        if group.member_count == 0 || !rule.keeps_any_of(members::sample_member()) {
            return None;
        }
        let pages = MemberPages::new(Groups::client(state), bearer.clone(), group.id.clone());
        Some(MemberSource::new(
            pages,
            rule,
            Arc::clone(&bearer.scope().base_url),
        ))
    }
}

/// The CreateGroup request of a group and its member ids.
pub fn create_request(
    tenant: String,
    (group, member_ids): (Group, Vec<String>),
) -> CreateGroupRequest {
    let group = Some(group);
    CreateGroupRequest {
        tenant,
        group,
        member_ids,
    }
}

/// The ReplaceGroup request that makes group `id` be `group` with exactly
/// these members.
pub fn replace_request(
    tenant: String,
    id: String,
    (mut group, member_ids): (Group, Vec<String>),
    etag: String,
) -> ReplaceGroupRequest {
    group.id = id;
    let group = Some(group);
    ReplaceGroupRequest {
        tenant,
        group,
        member_ids,
        etag,
    }
}

/// The PatchGroup request of a parsed PATCH: attribute operations and
/// typed member changes.
pub fn patch_request(tenant: String, id: String, patch: Patch, etag: String) -> PatchGroupRequest {
    PatchGroupRequest {
        tenant,
        id,
        operations: patch.operations,
        etag,
        member_changes: patch.member_changes,
    }
}

/// Reads a SCIM Group body into the group and its member ids. Known names
/// match in any case; null is absent; `id`, `meta` and `schemas` are ignored
/// (so Entra's extra ADSCIM schema is accepted); every other attribute is
/// kept as sent.
pub fn group_from_scim(body: Json) -> Result<(Group, Vec<String>), ScimError> {
    let body = validate::resource_body(Resource::Group, body)?;
    let mut group = Group::default();
    let mut members = Vec::new();
    let mut attributes = Map::new();
    for (key, value) in body {
        if value.is_null() {
            continue;
        }
        match schema::attribute_def(Resource::Group, "", &key).map(|d| d.name) {
            Some("displayName") => group.display_name = text(value, "displayName")?,
            Some("externalId") => group.external_id = Some(text(value, "externalId")?),
            Some("members") => members = member_ids(value)?,
            Some("id" | "meta" | "schemas") => {}
            _ => {
                attributes.insert(key, value);
            }
        }
    }
    if !attributes.is_empty() {
        group.attributes = Some(identity_proto::json_to_struct(attributes));
    }
    Ok((group, members))
}

/// Writes the SCIM representation of a group (RFC 7643 §4.2) without its
/// members, which are streamed after it.
pub fn group_to_scim(group: &Group, base_url: &str) -> Map<String, Json> {
    let mut out = group
        .attributes
        .clone()
        .map(identity_proto::struct_to_json)
        .unwrap_or_default();
    out.remove("members");
    let mut schemas = vec![Json::from(CORE_GROUP)];
    schemas.extend(super::extension_schemas(Resource::Group, &out));
    out.insert("schemas".into(), Json::Array(schemas));
    out.insert("id".into(), group.id.clone().into());
    if let Some(external_id) = &group.external_id {
        out.insert("externalId".into(), external_id.clone().into());
    }
    out.insert("displayName".into(), group.display_name.clone().into());
    out.insert(
        "meta".into(),
        super::meta(Resource::Group, base_url, &group.meta()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::json;

    const BASE: &str = "https://scim.example.com";
    const ADSCIM: &str = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

    fn stored(mut group: Group) -> Group {
        group.id = "7f1c0a52-1d1e-4d0a-9d53-0d7c1f0c2a11".into();
        group.etag = "3".into();
        group.create_time = Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        });
        group.update_time = group.create_time;
        group
    }

    #[test]
    fn entra_create_body_with_extra_schema() {
        let body = json!({
            "schemas": [CORE_GROUP, ADSCIM],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "DisplayName": "Group1DisplayName",
            "meta": {"resourceType": "Group"},
            "members": [],
        });
        let Ok((group, members)) = group_from_scim(body) else {
            panic!("valid body rejected")
        };
        assert_eq!(group.display_name, "Group1DisplayName");
        assert_eq!(
            group.external_id.as_deref(),
            Some("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
        );
        assert!(group.attributes.is_none());
        assert!(members.is_empty());
        let out = group_to_scim(&stored(group), BASE);
        assert_eq!(out["schemas"], json!([CORE_GROUP]));
    }

    #[test]
    fn okta_create_body_with_members() {
        let body = json!({
            "schemas": [CORE_GROUP],
            "displayName": "Engineering",
            "members": [
                {"value": "u1", "display": "Ann"},
                {"value": " u2 ", "$ref": "https://x/Users/u2", "type": "User"},
                "u3",
                null,
                {"Value": "u1"}
            ],
            "id": "ignored",
        });
        assert_eq!(
            group_from_scim(body).map(|(g, m)| (g.display_name, g.id, m)),
            Ok((
                "Engineering".into(),
                String::new(),
                vec!["u1".into(), "u2".into(), "u3".into()]
            ))
        );
    }

    #[test]
    fn output_round_trips_bag_attributes_and_extensions() {
        let custom = "urn:example:acme:2.0:Group";
        let body = json!({
            "schemas": [CORE_GROUP, custom],
            "displayName": "Ops",
            "externalId": "ext-1",
            "description": "on call",
            custom: {"code": 7},
        });
        let Ok((group, _)) = group_from_scim(body) else {
            panic!("valid body rejected")
        };
        let out = Json::Object(group_to_scim(&stored(group), BASE));
        assert_eq!(
            out,
            json!({
                "schemas": [CORE_GROUP, custom],
                "id": "7f1c0a52-1d1e-4d0a-9d53-0d7c1f0c2a11",
                "displayName": "Ops",
                "externalId": "ext-1",
                "description": "on call",
                custom: {"code": 7},
                "meta": {
                    "resourceType": "Group",
                    "created": "2023-11-14T22:13:20Z",
                    "lastModified": "2023-11-14T22:13:20Z",
                    "location": "https://scim.example.com/scim/v2/Groups/7f1c0a52-1d1e-4d0a-9d53-0d7c1f0c2a11",
                    "version": "W/\"3\"",
                },
            })
        );
    }

    #[test]
    fn output_never_takes_members_from_the_bag() {
        let group = Group {
            attributes: Some(identity_proto::json_to_struct(
                json!({"members": [1]})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )),
            ..stored(Group::default())
        };
        assert!(group_to_scim(&group, BASE).get("members").is_none());
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            json!([]),
            json!("x"),
            json!({"displayName": 5}),
            json!({"externalId": {"a": 1}}),
            json!({"members": [{"display": "no id"}]}),
            json!({"members": [{"value": 5}]}),
            json!({"members": [{"value": "  "}]}),
            json!({"members": [7]}),
            json!({"members": true}),
        ] {
            let err = group_from_scim(body.clone()).err();
            assert_eq!(
                err.as_ref().map(|e| e.status),
                Some(StatusCode::BAD_REQUEST),
                "{body}"
            );
        }
        let detail = group_from_scim(json!({"displayName": "g", "members": [{"value": "a"}, {}]}))
            .err()
            .map(|e| e.detail);
        assert_eq!(
            detail.as_deref(),
            Some("members[1] must be an object with the member's id as \"value\"")
        );
    }
}
