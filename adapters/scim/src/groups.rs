//! `/Groups` until groups land: an empty list and 404 by id, so Okta's "Test
//! Groups endpoint" passes. The token is still checked with the service, so
//! a bad one gets 401 here like everywhere else.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use identity_proto::v1::WhoAmIRequest;
use identity_proto::v1::auth_service_client::AuthServiceClient;

use crate::AppState;
use crate::error::ScimError;
use crate::http::Bearer;
use crate::list::{ListParams, ListQuery, list_response};
use crate::schema::BASE_PATH;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE_PATH}/Groups"), get(list))
        .route(&format!("{BASE_PATH}/Groups/{{id}}"), get(fetch))
}

async fn authenticate(state: &AppState, bearer: &Bearer) -> Result<(), ScimError> {
    AuthServiceClient::new(state.channel.clone())
        .who_am_i(bearer.request(WhoAmIRequest {}))
        .await?;
    Ok(())
}

async fn list(
    State(state): State<AppState>,
    bearer: Bearer,
    query: ListQuery,
) -> Result<Response, ScimError> {
    authenticate(&state, &bearer).await?;
    // Parsed so a malformed filter is still a 400, as it will be for real groups.
    let params = ListParams::from_query(query)?;
    Ok(list_response(0, params.start_index, Vec::new()))
}

async fn fetch(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    authenticate(&state, &bearer).await?;
    Err(ScimError::not_found(format!("group \"{id}\" not found")))
}
