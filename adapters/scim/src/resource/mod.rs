//! One path for every SCIM resource type. A type says only what makes it
//! itself (its SCIM mapping, its create, replace and patch requests,
//! whether PATCH echoes it and whether members stream after it) by implementing
//! [`ScimResource`], and names its gRPC service once in `service`; the
//! handlers below serve its endpoint, and `bulk` and the root `/.search`
//! reach it through the same traits. A new resource type is one module here,
//! a line in `service`'s table and in [`routes`], and one in each place that
//! picks a type at run time (`bulk`'s path dispatch, the root search).

mod group;
mod meta;
mod service;
mod user;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use identity_proto::v1::{Filter, SortOrder};
use serde_json::{Map, Value as Json};

use crate::AppState;
use crate::error::ScimError;
use crate::http::{
    Bearer, ScimJson, check_if_match, if_match, insert_etag, insert_location, not_modified,
    scim_body, scim_json,
};
use crate::list::{ListParams, ListRequest, PageInfo, list_head, list_response};
use crate::members::{self, MemberSource};
use crate::wire::patch::parse_patch;
use crate::wire::projection::Projection;
use crate::wire::query::ScimQuery;
use crate::wire::schema::{BASE_PATH, Resource};

pub use group::Groups;
pub use meta::{Stored, extension_schemas, meta};
pub use service::Service;
pub use user::Users;

/// What one list call asks the service for, whatever the resource type.
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub page_size: Option<i32>,
    pub offset: i64,
    pub page_token: String,
    pub order_by: Option<SortOrder>,
    /// The page may come without a total (see [`ListParams::total_optional`]).
    pub total_optional: bool,
}

/// One page as the service answered it.
pub struct Listed<M> {
    pub items: Vec<M>,
    pub total_size: Option<i64>,
    pub next_page_token: String,
    pub previous_page_token: String,
}

/// A SCIM resource type served over one identity.v1 gRPC service (its
/// [`Service`]): what it reads and writes, and how it answers.
pub trait ScimResource: Service + Send + Sync + 'static {
    /// Which resource type this is in the schema catalog.
    const KIND: Resource;
    /// Whether PATCH answers with the resource when the request names no
    /// `attributes`/`excludedAttributes`; otherwise it answers 204.
    const PATCH_ECHOES: bool;
    /// Whether documents are written as a stream, members after the rest;
    /// otherwise each is sent whole.
    const STREAMED: bool;

    /// Reads a create or replace body.
    fn from_scim(body: Json) -> Result<Self::Input, ScimError>;
    /// The SCIM document of a resource, before projection and without
    /// streamed members.
    fn to_scim(message: &Self::Message, base_url: &str) -> Map<String, Json>;

    /// Where the members written after `message`'s document come from, or
    /// `None` when none are to be written. Only streamed types have any.
    fn members(
        _state: &AppState,
        _bearer: &Bearer,
        _message: &Self::Message,
        _projection: &Projection,
    ) -> Option<MemberSource> {
        None
    }
}

/// Every resource type's endpoint.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(endpoint::<Users>())
        .merge(endpoint::<Groups>())
}

/// `/{Type}`, `/{Type}/.search` and `/{Type}/{id}` of one resource type.
fn endpoint<R: ScimResource>() -> Router<AppState> {
    let base = format!("{BASE_PATH}{}", R::KIND.endpoint());
    Router::new()
        .route(&base, get(list::<R>).post(create::<R>))
        .route(&format!("{base}/.search"), post(list::<R>))
        .route(
            &format!("{base}/{{id}}"),
            get(fetch::<R>)
                .put(write::<R>)
                .patch(write::<R>)
                .delete(remove::<R>),
        )
}

/// POST and a bulk POST: the created resource.
pub async fn create_from<R: ScimResource>(
    state: &AppState,
    bearer: &Bearer,
    body: Json,
) -> Result<R::Message, ScimError> {
    R::create(state, bearer, R::from_scim(body)?).await
}

/// PUT and a bulk PUT; `etag` ("" for none) must be current.
pub async fn replace_from<R: ScimResource>(
    state: &AppState,
    bearer: &Bearer,
    id: String,
    body: Json,
    etag: String,
) -> Result<R::Message, ScimError> {
    R::replace(state, bearer, id, R::from_scim(body)?, etag).await
}

/// PATCH and a bulk PATCH; `etag` ("" for none) must be current.
pub async fn patch_from<R: ScimResource>(
    state: &AppState,
    bearer: &Bearer,
    id: String,
    body: Json,
    etag: String,
) -> Result<R::Message, ScimError> {
    let Some(patch) = parse_patch(R::KIND, body)? else {
        // Everything sent was ignorable (meta, password, nulls on add, an
        // empty member list): nothing to change, so answer with the
        // resource as it is, which must still exist.
        let message = R::get(state, bearer, id).await?;
        check_if_match(&etag, message.meta().etag)?;
        return Ok(message);
    };
    R::patch(state, bearer, id, patch, etag).await
}

/// A listed resource: its projected document and, for streamed types,
/// where its members come from; they are paged when the body reaches it.
pub fn listed<R: ScimResource>(
    state: &AppState,
    bearer: &Bearer,
    message: &R::Message,
    projection: &Projection,
) -> (Map<String, Json>, Option<MemberSource>) {
    (
        projection.apply(R::to_scim(message, &bearer.scope().base_url)),
        R::members(state, bearer, message, projection),
    )
}

async fn create<R: ScimResource>(
    State(state): State<AppState>,
    bearer: Bearer,
    query: ScimQuery,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimError> {
    let projection = Projection::parse(R::KIND, &query)?;
    let created = create_from::<R>(&state, &bearer, body).await?;
    resource_response::<R>(&state, &bearer, StatusCode::CREATED, &created, &projection).await
}

async fn fetch<R: ScimResource>(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
    query: ScimQuery,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let projection = Projection::parse(R::KIND, &query)?;
    let message = R::get(&state, &bearer, id).await?;
    if let Some(response) = not_modified(&headers, message.meta().etag) {
        return Ok(response);
    }
    resource_response::<R>(&state, &bearer, StatusCode::OK, &message, &projection).await
}

/// GET /{Type} and POST /{Type}/.search.
async fn list<R: ScimResource>(
    State(state): State<AppState>,
    bearer: Bearer,
    ListRequest(query): ListRequest,
) -> Result<Response, ScimError> {
    let params = ListParams::parse(R::KIND, &query)?;
    let projection = Projection::parse(R::KIND, &query)?;
    let request = ListQuery {
        filter: params.filter.clone(),
        page_size: params.count,
        offset: params.offset(),
        page_token: params.page_token(),
        order_by: params.order_by.clone(),
        total_optional: params.total_optional(),
    };
    let response = R::list(&state, &bearer, request).await?;
    let page = params.page_info(
        response.total_size,
        &response.next_page_token,
        &response.previous_page_token,
    );
    let entries = response
        .items
        .iter()
        .map(|message| listed::<R>(&state, &bearer, message, &projection));
    Ok(list_body(&page, entries.collect(), R::STREAMED))
}

/// A ListResponse of `entries`: streamed when any type in it streams
/// members, else written whole.
pub fn list_body(
    page: &PageInfo,
    entries: Vec<(Map<String, Json>, Option<MemberSource>)>,
    streamed: bool,
) -> Response {
    if streamed {
        let head = list_head(page, entries.len());
        return scim_body(
            StatusCode::OK,
            Body::from_stream(members::list_body(head, entries)),
        );
    }
    let resources = entries
        .into_iter()
        .map(|(document, _)| Json::Object(document))
        .collect();
    list_response(page, resources)
}

/// PUT and PATCH of one resource: they differ only in how the body changes
/// it, and in that a type which does not echo on PATCH answers 204 unless
/// `attributes`/`excludedAttributes` ask for the resource (RFC 7644
/// §3.5.2): echoing a big group on every membership change is what Entra
/// advises against.
async fn write<R: ScimResource>(
    State(state): State<AppState>,
    method: Method,
    bearer: Bearer,
    Path(id): Path<String>,
    query: ScimQuery,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<Response, ScimError> {
    let projection = Projection::parse(R::KIND, &query)?;
    let etag = if_match(&headers);
    let message = if method == Method::PUT {
        replace_from::<R>(&state, &bearer, id, body, etag).await?
    } else {
        let message = patch_from::<R>(&state, &bearer, id, body, etag).await?;
        if !R::PATCH_ECHOES && !projection.requested() {
            let mut response = StatusCode::NO_CONTENT.into_response();
            insert_etag(response.headers_mut(), message.meta().etag);
            return Ok(response);
        }
        message
    };
    resource_response::<R>(&state, &bearer, StatusCode::OK, &message, &projection).await
}

async fn remove<R: ScimResource>(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    R::delete(&state, &bearer, id, if_match(&headers)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// One resource as a response: its document (members streamed after it
/// for streamed types), the `ETag`, and `Location` when it was just
/// created. The first member page is read before answering so its failure
/// is still a SCIM Error.
async fn resource_response<R: ScimResource>(
    state: &AppState,
    bearer: &Bearer,
    status: StatusCode,
    message: &R::Message,
    projection: &Projection,
) -> Result<Response, ScimError> {
    let (document, members) = listed::<R>(state, bearer, message, projection);
    let mut response = if R::STREAMED {
        let members = match members {
            Some(source) => Some(source.prefetch().await?),
            None => None,
        };
        let body = Body::from_stream(members::group_document(document, members));
        scim_body(status, body)
    } else {
        scim_json(status, &Json::Object(document))
    };
    insert_etag(response.headers_mut(), message.meta().etag);
    if status == StatusCode::CREATED {
        insert_location(
            response.headers_mut(),
            &R::KIND.location(&bearer.scope().base_url, message.meta().id),
        );
    }
    Ok(response)
}
