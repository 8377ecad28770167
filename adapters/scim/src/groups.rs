//! `/Groups`: SCIM Group JSON <-> `identity.v1.Group`, and the handlers that
//! turn each request into GroupService calls. A Group message never carries
//! members: responses read them with paged ListMembers calls streamed into
//! the body (see `members`), and not at all when the projection drops them
//! or the group has none.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use identity_proto::v1::group_service_client::GroupServiceClient;
use identity_proto::v1::{
    CreateGroupRequest, DeleteGroupRequest, GetGroupRequest, Group, ListGroupsRequest,
    ListGroupsResponse, PatchGroupRequest, ReplaceGroupRequest,
};
use serde_json::{Map, Value as Json};
use tonic::transport::Channel;

use crate::AppState;
use crate::MAX_MESSAGE_BYTES;
use crate::error::ScimError;
use crate::http::{
    Bearer, ScimJson, ScimQuery, check_if_match, if_match, insert_etag, insert_location,
    not_modified, scim_body,
};
use crate::list::search_request;
use crate::list::{ListParams, list_head};
use crate::members::{self, MemberPages, MemberSource};
use crate::patch::{member_ids, parse_patch};
use crate::projection::Projection;
use crate::resource::{self, Meta};
use crate::schema::{self, BASE_PATH, CORE_GROUP, Resource, text};
use crate::validate;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE_PATH}/Groups"), get(list).post(create))
        .route(&format!("{BASE_PATH}/Groups/.search"), post(search))
        .route(
            &format!("{BASE_PATH}/Groups/{{id}}"),
            get(fetch).put(replace).patch(patch).delete(remove),
        )
}

fn client(state: &AppState) -> GroupServiceClient<Channel> {
    GroupServiceClient::new(state.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
}

/// POST /Groups and a bulk POST: the created group.
pub async fn create_group(
    state: &AppState,
    bearer: &Bearer,
    body: Json,
) -> Result<Group, ScimError> {
    let (group, member_ids) = group_from_scim(body)?;
    let request = CreateGroupRequest {
        tenant: bearer.tenant(),
        group: Some(group),
        member_ids,
    };
    Ok(client(state)
        .create_group(bearer.request(request))
        .await?
        .into_inner())
}

/// PUT /Groups/{id} and a bulk PUT; `etag` ("" for none) must be current.
pub async fn replace_group(
    state: &AppState,
    bearer: &Bearer,
    id: String,
    body: Json,
    etag: String,
) -> Result<Group, ScimError> {
    let (mut group, member_ids) = group_from_scim(body)?;
    group.id = id;
    let request = ReplaceGroupRequest {
        tenant: bearer.tenant(),
        group: Some(group),
        member_ids,
        etag,
    };
    Ok(client(state)
        .replace_group(bearer.request(request))
        .await?
        .into_inner())
}

/// PATCH /Groups/{id} and a bulk PATCH; `etag` ("" for none) must be current.
pub async fn patch_group(
    state: &AppState,
    bearer: &Bearer,
    id: String,
    body: Json,
    etag: String,
) -> Result<Group, ScimError> {
    let operations = parse_patch(Resource::Group, body)?;
    if operations.is_empty() {
        // Nothing to change (e.g. adding an empty member list); the group
        // must still exist.
        let group = get_group(state, bearer, id).await?;
        check_if_match(&etag, &group.etag)?;
        return Ok(group);
    }
    let request = PatchGroupRequest {
        tenant: bearer.tenant(),
        id,
        operations,
        etag,
    };
    Ok(client(state)
        .patch_group(bearer.request(request))
        .await?
        .into_inner())
}

/// DELETE /Groups/{id} and a bulk DELETE.
pub async fn delete_group(
    state: &AppState,
    bearer: &Bearer,
    id: String,
    etag: String,
) -> Result<(), ScimError> {
    let request = DeleteGroupRequest {
        tenant: bearer.tenant(),
        id,
        etag,
    };
    client(state).delete_group(bearer.request(request)).await?;
    Ok(())
}

/// One page of groups, as the root `/.search` also reads them.
pub async fn list_groups(
    state: &AppState,
    bearer: &Bearer,
    request: ListGroupsRequest,
) -> Result<ListGroupsResponse, ScimError> {
    Ok(client(state)
        .list_groups(bearer.request(request))
        .await?
        .into_inner())
}

/// A listed group: its projected document and, when wanted, where its
/// members come from; they are paged when the body reaches the group.
pub fn listed(
    state: &AppState,
    bearer: &Bearer,
    group: &Group,
    projection: &Projection,
) -> (Map<String, Json>, Option<MemberSource>) {
    (
        projection.apply(group_to_scim(group, &bearer.scope().base_url)),
        member_source(state, bearer, group, projection),
    )
}

async fn create(
    State(state): State<AppState>,
    bearer: Bearer,
    query: ScimQuery,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimError> {
    let projection = Projection::parse(Resource::Group, &query)?;
    let created = create_group(&state, &bearer, body).await?;
    group_response(&state, bearer, StatusCode::CREATED, &created, &projection).await
}

async fn fetch(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
    query: ScimQuery,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let projection = Projection::parse(Resource::Group, &query)?;
    let group = get_group(&state, &bearer, id).await?;
    if let Some(response) = not_modified(&headers, &group.etag) {
        return Ok(response);
    }
    group_response(&state, bearer, StatusCode::OK, &group, &projection).await
}

async fn list(
    State(state): State<AppState>,
    bearer: Bearer,
    query: ScimQuery,
) -> Result<Response, ScimError> {
    list_response_for(&state, &bearer, &query).await
}

/// POST /Groups/.search (RFC 7644 §3.4.3): a list request in the body.
async fn search(
    State(state): State<AppState>,
    bearer: Bearer,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimError> {
    let query = search_request(body)?;
    list_response_for(&state, &bearer, &query).await
}

async fn list_response_for(
    state: &AppState,
    bearer: &Bearer,
    query: &ScimQuery,
) -> Result<Response, ScimError> {
    let params = ListParams::parse(Resource::Group, query)?;
    let projection = Projection::parse(Resource::Group, query)?;
    let request = ListGroupsRequest {
        tenant: bearer.tenant(),
        filter: params.filter.clone(),
        page_size: params.count,
        offset: params.offset(),
        page_token: params.page_token(),
        order_by: params.order_by.clone(),
    };
    let response = list_groups(state, bearer, request).await?;
    let page = params.page_info(
        response.total_size,
        &response.next_page_token,
        &response.previous_page_token,
    );
    let head = list_head(&page, response.groups.len());
    let groups = response
        .groups
        .iter()
        .map(|group| listed(state, bearer, group, &projection))
        .collect();
    Ok(scim_body(
        StatusCode::OK,
        Body::from_stream(members::list_body(head, groups)),
    ))
}

async fn replace(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
    query: ScimQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimError> {
    let projection = Projection::parse(Resource::Group, &query)?;
    let group = replace_group(&state, &bearer, id, body, if_match(&headers)).await?;
    group_response(&state, bearer, StatusCode::OK, &group, &projection).await
}

/// 204 unless `attributes`/`excludedAttributes` ask for the resource
/// (RFC 7644 §3.5.2): echoing a big group on every membership change is
/// what Entra advises against.
async fn patch(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
    query: ScimQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimError> {
    let projection = Projection::parse(Resource::Group, &query)?;
    let group = patch_group(&state, &bearer, id, body, if_match(&headers)).await?;
    if projection.requested() {
        return group_response(&state, bearer, StatusCode::OK, &group, &projection).await;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    insert_etag(response.headers_mut(), &group.etag);
    Ok(response)
}

async fn remove(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    delete_group(&state, &bearer, id, if_match(&headers)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_group(state: &AppState, bearer: &Bearer, id: String) -> Result<Group, ScimError> {
    let request = GetGroupRequest {
        tenant: bearer.tenant(),
        id,
    };
    Ok(client(state)
        .get_group(bearer.request(request))
        .await?
        .into_inner())
}

/// Where `group`'s members come from, or `None` when none are to be written:
/// the group has none, or the projection drops them (then ListMembers is
/// never called).
fn member_source(
    state: &AppState,
    bearer: &Bearer,
    group: &Group,
    projection: &Projection,
) -> Option<MemberSource> {
    let rule = projection.rule("members");
    if group.member_count == 0 || !rule.keeps_any_of(members::sample_member()) {
        return None;
    }
    let pages = MemberPages::new(client(state), bearer.clone(), group.id.clone());
    Some(MemberSource::new(
        pages,
        rule,
        Arc::clone(&bearer.scope().base_url),
    ))
}

/// One group as a response: its document, members streamed after it, the
/// `ETag`, and `Location` when it was just created. The first member page
/// is read before answering so its failure is still a SCIM Error.
async fn group_response(
    state: &AppState,
    bearer: Bearer,
    status: StatusCode,
    group: &Group,
    projection: &Projection,
) -> Result<Response, ScimError> {
    let document = projection.apply(group_to_scim(group, &bearer.scope().base_url));
    let members = match member_source(state, &bearer, group, projection) {
        Some(source) => Some(source.prefetch().await?),
        None => None,
    };
    let body = Body::from_stream(members::group_document(document, members));
    let mut response = scim_body(status, body);
    insert_etag(response.headers_mut(), &group.etag);
    if status == StatusCode::CREATED {
        insert_location(
            response.headers_mut(),
            &Resource::Group.location(&bearer.scope().base_url, &group.id),
        );
    }
    Ok(response)
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
    schemas.extend(resource::extension_schemas(Resource::Group, &out));
    out.insert("schemas".into(), Json::Array(schemas));
    out.insert("id".into(), group.id.clone().into());
    if let Some(external_id) = &group.external_id {
        out.insert("externalId".into(), external_id.clone().into());
    }
    out.insert("displayName".into(), group.display_name.clone().into());
    let meta = Meta {
        id: &group.id,
        etag: &group.etag,
        created: group.create_time.as_ref(),
        last_modified: group.update_time.as_ref(),
    };
    out.insert(
        "meta".into(),
        resource::meta(Resource::Group, base_url, &meta),
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
