//! Discovery endpoints (RFC 7644 §4): what this adapter implements, with every
//! field present, since some clients turn features off when one is missing.
//! They are public: they describe the server, not any tenant. Their
//! locations point into the URL form that was called (see `scope`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value as Json, json};

use crate::AppState;
use crate::bulk;
use crate::error::ScimError;
use crate::http::scim_json;
use crate::list::{PageInfo, list_response};
use crate::scope::Scope;
use crate::wire::schema::{
    self, AttributeDef, BASE_PATH, CORE_ATTRIBUTES, CORE_GROUP, CORE_USER, DEFAULT_PAGE_SIZE,
    ENTERPRISE_ATTRIBUTES, ENTERPRISE_USER, GROUP_ATTRIBUTES, MAX_PAGE_SIZE, Resource,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{BASE_PATH}/ServiceProviderConfig"),
            get(service_provider_config),
        )
        .route(&format!("{BASE_PATH}/ResourceTypes"), get(resource_types))
        .route(
            &format!("{BASE_PATH}/ResourceTypes/{{name}}"),
            get(resource_type),
        )
        .route(&format!("{BASE_PATH}/Schemas"), get(schemas))
        .route(&format!("{BASE_PATH}/Schemas/{{urn}}"), get(schema_by_id))
}

async fn service_provider_config(State(state): State<AppState>, scope: Scope) -> Response {
    scim_json(
        StatusCode::OK,
        &service_provider_config_body(&scope.base_url, state.max_body_bytes),
    )
}

/// Cursors are keyset positions that never expire; this is the minimum
/// RFC 9865 §4 asks to advertise, not a limit that is enforced.
const CURSOR_TIMEOUT_SECONDS: u64 = 86_400;

/// Every feature with what it supports: PATCH, `/Bulk` with its limits (the
/// payload limit is the body limit of every request), filters, sorting,
/// ETags, and both pagination methods (RFC 9865 §4). Changing passwords is
/// not supported: passwords are never stored.
fn service_provider_config_body(base_url: &str, max_body_bytes: usize) -> Json {
    json!({
        "schemas": [schema::SERVICE_PROVIDER_CONFIG],
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": bulk::MAX_OPERATIONS,
            "maxPayloadSize": max_body_bytes,
        },
        "filter": {"supported": true, "maxResults": MAX_PAGE_SIZE},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_PAGE_SIZE,
            "maxPageSize": MAX_PAGE_SIZE,
            "cursorTimeout": CURSOR_TIMEOUT_SECONDS,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A tenant token sent as 'Authorization: Bearer <token>'.",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base_url}{BASE_PATH}/ServiceProviderConfig"),
        },
    })
}

fn resource_type_body(resource: Resource, base_url: &str) -> Json {
    let (description, extensions) = match resource {
        Resource::User => (
            "User Account",
            vec![json!({"schema": ENTERPRISE_USER, "required": false})],
        ),
        Resource::Group => ("Group", Vec::new()),
    };
    let name = resource.name();
    json!({
        "schemas": [schema::RESOURCE_TYPE],
        "id": name,
        "name": name,
        "endpoint": resource.endpoint(),
        "description": description,
        "schema": resource.core_schema(),
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base_url}{BASE_PATH}/ResourceTypes/{name}"),
        },
    })
}

async fn resource_types(scope: Scope) -> Response {
    let bodies: Vec<Json> = Resource::ALL
        .iter()
        .map(|r| resource_type_body(*r, &scope.base_url))
        .collect();
    let total = i64::try_from(bodies.len()).unwrap_or(i64::MAX);
    list_response(&PageInfo::whole(total), bodies)
}

async fn resource_type(scope: Scope, Path(name): Path<String>) -> Result<Response, ScimError> {
    Resource::ALL
        .iter()
        .find(|r| r.name().eq_ignore_ascii_case(&name))
        .map(|r| scim_json(StatusCode::OK, &resource_type_body(*r, &scope.base_url)))
        .ok_or_else(|| ScimError::not_found(format!("no resource type \"{name}\"")))
}

fn schema_bodies(base_url: &str) -> Vec<Json> {
    [
        (CORE_USER, "User", "User Account", CORE_ATTRIBUTES),
        (
            ENTERPRISE_USER,
            "EnterpriseUser",
            "Enterprise User",
            ENTERPRISE_ATTRIBUTES,
        ),
        (CORE_GROUP, "Group", "Group", GROUP_ATTRIBUTES),
    ]
    .into_iter()
    .map(|(id, name, description, attributes)| {
        json!({
            "schemas": [schema::SCHEMA],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attributes.iter().map(attribute_body).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base_url}{BASE_PATH}/Schemas/{id}"),
            },
        })
    })
    .collect()
}

fn attribute_body(def: &AttributeDef) -> Json {
    let mut out = Map::new();
    out.insert("name".into(), def.name.into());
    out.insert("type".into(), def.kind.as_str().into());
    out.insert("multiValued".into(), def.multi_valued.into());
    out.insert("description".into(), def.description.into());
    out.insert("required".into(), def.required.into());
    out.insert("caseExact".into(), def.case_exact.into());
    out.insert("mutability".into(), def.mutability.as_str().into());
    out.insert("returned".into(), def.returned.as_str().into());
    out.insert(
        "uniqueness".into(),
        if def.server_unique { "server" } else { "none" }.into(),
    );
    if !def.canonical_values.is_empty() {
        out.insert("canonicalValues".into(), def.canonical_values.into());
    }
    if def.kind == schema::Kind::Reference {
        out.insert("referenceTypes".into(), def.reference_types.into());
    }
    if def.kind == schema::Kind::Complex {
        out.insert(
            "subAttributes".into(),
            def.sub_attributes.iter().map(attribute_body).collect(),
        );
    }
    Json::Object(out)
}

async fn schemas(scope: Scope) -> Response {
    let bodies = schema_bodies(&scope.base_url);
    let total = i64::try_from(bodies.len()).unwrap_or(i64::MAX);
    list_response(&PageInfo::whole(total), bodies)
}

async fn schema_by_id(scope: Scope, Path(urn): Path<String>) -> Result<Response, ScimError> {
    schema_bodies(&scope.base_url)
        .into_iter()
        .find(|s| {
            s["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(&urn))
        })
        .map(|body| scim_json(StatusCode::OK, &body))
        .ok_or_else(|| ScimError::not_found(format!("no schema \"{urn}\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_provider_config_has_every_field() {
        let body = service_provider_config_body("http://h", 1024);
        assert_eq!(body["patch"]["supported"], true);
        assert_eq!(
            body["bulk"],
            json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 1024})
        );
        assert_eq!(
            body["filter"],
            json!({"supported": true, "maxResults": 1000})
        );
        assert_eq!(body["changePassword"], json!({"supported": false}));
        assert_eq!(body["sort"], json!({"supported": true}));
        assert_eq!(body["etag"]["supported"], true);
        assert_eq!(
            body["pagination"],
            json!({
                "cursor": true,
                "index": true,
                "defaultPaginationMethod": "index",
                "defaultPageSize": 100,
                "maxPageSize": 1000,
                "cursorTimeout": 86400,
            })
        );
        assert_eq!(body["authenticationSchemes"][0]["type"], "oauthbearertoken");
    }

    #[test]
    fn schemas_describe_every_attribute_fully() {
        fn check(attribute: &Json) {
            for field in [
                "name",
                "type",
                "multiValued",
                "description",
                "required",
                "caseExact",
                "mutability",
                "returned",
                "uniqueness",
            ] {
                assert!(
                    attribute.get(field).is_some(),
                    "{field} missing in {attribute}"
                );
            }
            if let Some(subs) = attribute.get("subAttributes").and_then(Json::as_array) {
                subs.iter().for_each(check);
            }
        }
        let bodies = schema_bodies("http://h");
        assert_eq!(bodies.len(), 3);
        for body in &bodies {
            let attributes = body["attributes"].as_array().cloned().unwrap_or_default();
            assert!(!attributes.is_empty());
            attributes.iter().for_each(check);
        }
        let user_name = &bodies[0]["attributes"][0];
        assert_eq!(user_name["name"], "userName");
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["required"], true);
    }

    #[test]
    fn groups_are_described() {
        let bodies = schema_bodies("http://h");
        let names = |body: &Json| -> Vec<String> {
            body["attributes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let group = bodies.iter().find(|b| b["id"] == CORE_GROUP);
        assert_eq!(
            group.map(names),
            Some(vec![
                "displayName".to_owned(),
                "members".to_owned(),
                "externalId".to_owned()
            ])
        );
        let members = group.map(|g| g["attributes"][1]["subAttributes"].clone());
        let member_subs: Vec<Json> = members
            .and_then(|m| m.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|s| s["name"].clone())
            .collect();
        assert_eq!(
            member_subs,
            [
                json!("value"),
                json!("display"),
                json!("type"),
                json!("$ref")
            ]
        );
        let user = bodies.iter().find(|b| b["id"] == CORE_USER);
        let groups = user
            .and_then(|u| u["attributes"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .find(|a| a["name"] == "groups");
        assert_eq!(
            groups
                .as_ref()
                .map(|g| (g["mutability"].clone(), g["multiValued"].clone())),
            Some((json!("readOnly"), json!(true)))
        );
        let group_type = resource_type_body(Resource::Group, "http://h");
        assert_eq!(group_type["endpoint"], "/Groups");
        assert_eq!(group_type["schema"], CORE_GROUP);
        assert_eq!(group_type["schemaExtensions"], json!([]));
        let user_type = resource_type_body(Resource::User, "http://h");
        assert_eq!(user_type["schemaExtensions"][0]["schema"], ENTERPRISE_USER);
        assert_eq!(
            user_type["meta"]["location"],
            "http://h/scim/v2/ResourceTypes/User"
        );
    }
}
