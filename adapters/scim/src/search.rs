//! Searching with POST (RFC 7644 §3.4.3): a SearchRequest body carries what
//! a GET list carries in its query string, so it is read into the same
//! parameters and served by the same code. `/{Type}/.search` is one of the
//! generic resource handlers (see `resource`); this module serves the
//! server-root search over every resource type.
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
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::AppState;
use crate::error::{ScimError, ScimType};
use crate::http::Bearer;
use crate::list::{ListParams, ListRequest, Page};
use crate::resource::{self, Groups, ListQuery, Listed, ScimResource, Users};
use crate::wire::projection::Projection;
use crate::wire::query::ScimQuery;
use crate::wire::schema::BASE_PATH;

/// Page size of a root search without `count`, the services' default.
const DEFAULT_COUNT: i32 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE_PATH}/.search"), post(root_list))
        .route(BASE_PATH, get(root_list))
        .route(&format!("{BASE_PATH}/"), get(root_list))
}

/// POST /.search, and GET on the server root with list parameters (RFC
/// 7644 §3.4.2): every resource type.
async fn root_list(
    State(state): State<AppState>,
    bearer: Bearer,
    ListRequest(query): ListRequest,
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

/// One index page of type `R`; a `sortBy` the type cannot sort by leaves
/// it in creation order.
async fn page_of<R: ScimResource>(
    state: &AppState,
    bearer: &Bearer,
    params: &ListParams,
    page_size: i32,
    offset: i64,
) -> Result<Listed<R::Message>, ScimError> {
    let query = |order_by| ListQuery {
        filter: params.filter.clone(),
        page_size: Some(page_size),
        offset,
        page_token: String::new(),
        order_by,
        total_optional: false,
    };
    match R::list(state, bearer, query(params.order_by.clone())).await {
        Err(e) if e.status == StatusCode::BAD_REQUEST && params.order_by.is_some() => {
            R::list(state, bearer, query(None)).await
        }
        result => result,
    }
}

async fn search_all(
    state: &AppState,
    bearer: &Bearer,
    query: &ScimQuery,
) -> Result<Response, ScimError> {
    let user_params = ListParams::parse(Users::KIND, query)?;
    let group_params = ListParams::parse(Groups::KIND, query)?;
    if matches!(user_params.page, Page::Cursor(_)) {
        return Err(ScimError::invalid_value(
            "cursor pagination is not available when searching all resource types; use startIndex",
        ));
    }
    let user_projection = Projection::parse(Users::KIND, query)?;
    let group_projection = Projection::parse(Groups::KIND, query)?;
    let offset = user_params.offset();
    let count = user_params.count.unwrap_or(DEFAULT_COUNT);

    let (users, user_total, user_error) =
        match page_of::<Users>(state, bearer, &user_params, count, offset).await {
            // Index pages always carry their total.
            Ok(page) => (page.items, page.total_size.unwrap_or_default(), None),
            Err(e) if names_unknown_attribute(&e) => (Vec::new(), 0, Some(e)),
            Err(e) => return Err(e),
        };

    let remaining = count.saturating_sub(i32::try_from(users.len()).unwrap_or(i32::MAX));
    let group_offset = offset.saturating_sub(user_total).max(0);
    let groups =
        page_of::<Groups>(state, bearer, &group_params, remaining.max(0), group_offset).await;
    let (groups, group_total) = match groups {
        Ok(page) => (page.items, page.total_size.unwrap_or_default()),
        Err(e) if names_unknown_attribute(&e) => match user_error {
            Some(user_error) => return Err(user_error),
            None => (Vec::new(), 0),
        },
        Err(e) => return Err(e),
    };

    let mut entries: Vec<_> = users
        .iter()
        .map(|user| resource::listed::<Users>(state, bearer, user, &user_projection))
        .collect();
    entries.extend(
        groups
            .iter()
            .map(|group| resource::listed::<Groups>(state, bearer, group, &group_projection)),
    );
    let page = user_params.page_info(Some(user_total.saturating_add(group_total)), "", "");
    Ok(resource::list_body(&page, entries, true))
}
