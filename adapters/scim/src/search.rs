//! Searching with POST (RFC 7644 §3.4.3): a SearchRequest body carries what
//! a GET list carries in its query string, so it is read into the same
//! parameters and served by the same code. `/Users/.search` and
//! `/Groups/.search` live with their resources; this module serves the
//! server-root search over both resource types.
//!
//! The root search has no union query behind it: it runs ListUsers and then
//! ListGroups with the same filter and concatenates the results, users
//! first. `startIndex` pages over that concatenation (the first call's total
//! tells where groups begin); `sortBy` orders within each type; cursors are
//! refused since a keyset cursor belongs to one query. A filter naming an
//! attribute that one type does not have makes that type match nothing
//! (RFC 7644 §3.4.2.1: such an attribute has no value), unless neither type
//! has it, which is the client's error. A `sortBy` one type does not have
//! leaves that type in creation order (§3.4.2.3: resources without a value
//! sort together).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use identity_proto::v1::{ListGroupsRequest, ListUsersRequest};
use serde_json::{Map, Value as Json};

use crate::AppState;
use crate::error::{ScimError, ScimType};
use crate::groups;
use crate::http::{Bearer, ScimJson, ScimQuery, scim_body};
use crate::list::{ListParams, Page, list_head};
use crate::members::{self, MemberSource};
use crate::projection::Projection;
use crate::schema::{BASE_PATH, Resource};
use crate::users;

pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Page size of a root search without `count`, the services' default.
const DEFAULT_COUNT: i32 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE_PATH}/.search"), post(root_search))
        .route(BASE_PATH, get(root_query))
        .route(&format!("{BASE_PATH}/"), get(root_query))
}

/// The parameters of a SearchRequest body as list query parameters.
/// `attributes` and `excludedAttributes` are lists of names (a
/// comma-separated string is accepted too); `startIndex` and `count` are
/// integers; unknown members are ignored.
pub fn search_request(body: Json) -> Result<ScimQuery, ScimError> {
    let Json::Object(body) = body else {
        return Err(ScimError::invalid_syntax(
            "a SearchRequest must be a JSON object",
        ));
    };
    let mut pairs = Vec::new();
    for (key, value) in body {
        if value.is_null() {
            continue;
        }
        let Some(name) = [
            "schemas",
            "attributes",
            "excludedAttributes",
            "filter",
            "sortBy",
            "sortOrder",
            "startIndex",
            "count",
            "cursor",
        ]
        .into_iter()
        .find(|name| key.eq_ignore_ascii_case(name)) else {
            continue;
        };
        let text = match (name, value) {
            ("schemas", value) => {
                check_schemas(&value)?;
                continue;
            }
            ("attributes" | "excludedAttributes", Json::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Json::String(s) => Ok(s),
                    other => Err(ScimError::invalid_value(format!(
                        "{name} must list attribute names, not {other}"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            ("startIndex" | "count", Json::Number(n)) if n.is_i64() => n.to_string(),
            ("startIndex" | "count", other) => {
                return Err(ScimError::invalid_value(format!(
                    "{name} must be an integer, not {other}"
                )));
            }
            (_, Json::String(s)) => s,
            (_, other) => {
                return Err(ScimError::invalid_value(format!(
                    "{name} must be a string, not {other}"
                )));
            }
        };
        pairs.push((name.to_owned(), text));
    }
    Ok(ScimQuery(pairs))
}

fn check_schemas(value: &Json) -> Result<(), ScimError> {
    let listed = value.as_array().is_some_and(|urns| {
        urns.iter().any(|urn| {
            urn.as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(SEARCH_REQUEST))
        })
    });
    if listed {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "schemas must list {SEARCH_REQUEST}"
        )))
    }
}

/// POST /.search: both resource types.
async fn root_search(
    State(state): State<AppState>,
    bearer: Bearer,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimError> {
    let query = search_request(body)?;
    search_all(&state, &bearer, &query).await
}

/// GET on the server root with list parameters (RFC 7644 §3.4.2).
async fn root_query(
    State(state): State<AppState>,
    bearer: Bearer,
    query: ScimQuery,
) -> Result<Response, ScimError> {
    search_all(&state, &bearer, &query).await
}

/// A failure that only means "this type has no such attribute".
fn names_unknown_attribute(error: &ScimError) -> bool {
    error.status == StatusCode::BAD_REQUEST
        && matches!(
            error.scim_type,
            Some(ScimType::InvalidFilter | ScimType::InvalidPath)
        )
}

async fn search_all(
    state: &AppState,
    bearer: &Bearer,
    query: &ScimQuery,
) -> Result<Response, ScimError> {
    let user_params = ListParams::parse(Resource::User, query)?;
    let group_params = ListParams::parse(Resource::Group, query)?;
    if matches!(user_params.page, Page::Cursor(_)) {
        return Err(ScimError::invalid_value(
            "cursor pagination is not available when searching all resource types; use startIndex",
        ));
    }
    let user_projection = Projection::parse(Resource::User, query)?;
    let group_projection = Projection::parse(Resource::Group, query)?;
    let offset = user_params.offset();
    let count = user_params.count.unwrap_or(DEFAULT_COUNT);

    let users_request = |order_by| ListUsersRequest {
        tenant: bearer.tenant(),
        filter: user_params.filter.clone(),
        page_size: Some(count),
        offset,
        page_token: String::new(),
        show_deleted: false,
        order_by,
    };
    let users =
        match users::list_users(state, bearer, users_request(user_params.order_by.clone())).await {
            Err(e) if e.status == StatusCode::BAD_REQUEST && user_params.order_by.is_some() => {
                users::list_users(state, bearer, users_request(None)).await
            }
            result => result,
        };
    let (users, user_total, user_error) = match users {
        Ok(page) => (page.users, page.total_size, None),
        Err(e) if names_unknown_attribute(&e) => (Vec::new(), 0, Some(e)),
        Err(e) => return Err(e),
    };

    let remaining = count.saturating_sub(i32::try_from(users.len()).unwrap_or(i32::MAX));
    let groups_request = |order_by| ListGroupsRequest {
        tenant: bearer.tenant(),
        filter: group_params.filter.clone(),
        page_size: Some(remaining.max(0)),
        offset: offset.saturating_sub(user_total).max(0),
        page_token: String::new(),
        order_by,
    };
    let groups =
        match groups::list_groups(state, bearer, groups_request(group_params.order_by.clone()))
            .await
        {
            Err(e) if e.status == StatusCode::BAD_REQUEST && group_params.order_by.is_some() => {
                groups::list_groups(state, bearer, groups_request(None)).await
            }
            result => result,
        };
    let (groups, group_total) = match groups {
        Ok(page) => (page.groups, page.total_size),
        Err(e) if names_unknown_attribute(&e) => match user_error {
            Some(user_error) => return Err(user_error),
            None => (Vec::new(), 0),
        },
        Err(e) => return Err(e),
    };

    let mut entries: Vec<(Map<String, Json>, Option<MemberSource>)> = users
        .iter()
        .map(
            |user| match users::projected(user, &bearer.scope().base_url, &user_projection) {
                Json::Object(document) => (document, None),
                _ => (Map::new(), None),
            },
        )
        .collect();
    entries.extend(
        groups
            .iter()
            .map(|group| groups::listed(state, bearer, group, &group_projection)),
    );
    let page = user_params.page_info(user_total.saturating_add(group_total), "", "");
    let head = list_head(&page, entries.len());
    Ok(scim_body(
        StatusCode::OK,
        Body::from_stream(members::list_body(head, entries)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The parameters, sorted: a JSON object has no order.
    fn pairs(body: Json) -> Result<Vec<(String, String)>, ScimError> {
        search_request(body).map(|q| {
            let mut pairs = q.0;
            pairs.sort();
            pairs
        })
    }

    #[test]
    fn search_request_becomes_list_parameters() {
        let out = pairs(json!({
            "schemas": [SEARCH_REQUEST],
            "attributes": ["displayName", "userName"],
            "excludedAttributes": "emails",
            "Filter": "userName sw \"a\"",
            "sortBy": "userName",
            "sortOrder": "descending",
            "startIndex": 2,
            "count": 10,
            "unknown": {"ignored": true},
            "cursor": null,
        }));
        assert_eq!(
            out,
            Ok(vec![
                ("attributes".into(), "displayName,userName".into()),
                ("count".into(), "10".into()),
                ("excludedAttributes".into(), "emails".into()),
                ("filter".into(), "userName sw \"a\"".into()),
                ("sortBy".into(), "userName".into()),
                ("sortOrder".into(), "descending".into()),
                ("startIndex".into(), "2".into()),
            ])
        );
        assert_eq!(pairs(json!({})), Ok(Vec::new()));
        assert_eq!(
            pairs(json!({"cursor": ""})),
            Ok(vec![("cursor".into(), String::new())])
        );
    }

    #[test]
    fn malformed_search_requests() {
        let scim_type = |body: Json| pairs(body).err().and_then(|e| e.scim_type);
        assert_eq!(scim_type(json!([])), Some(ScimType::InvalidSyntax));
        for body in [
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}),
            json!({"count": "ten"}),
            json!({"startIndex": 1.5}),
            json!({"attributes": [1]}),
            json!({"filter": 3}),
        ] {
            assert_eq!(
                scim_type(body.clone()),
                Some(ScimType::InvalidValue),
                "{body}"
            );
        }
    }
}
