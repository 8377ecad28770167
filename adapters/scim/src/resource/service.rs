//! The gRPC side of every resource type: the calls the generic handlers
//! make, each a unary call on the type's identity.v1 service with the
//! caller's bearer attached. The services spell their requests alike (the
//! tenant, the id and version, the list parameters), so those are filled in
//! once below; only the create, replace and patch requests, which carry the
//! resource or its changes, are built by the type's own module.

use std::future::Future;

use identity_proto::v1::group_service_client::GroupServiceClient;
use identity_proto::v1::user_service_client::UserServiceClient;
use identity_proto::v1::{
    DeleteGroupRequest, DeleteUserRequest, GetGroupRequest, GetUserRequest, Group,
    ListGroupsRequest, ListUsersRequest, User,
};
use tonic::transport::Channel;

use super::{Groups, ListQuery, Listed, Stored, Users, group, user};
use crate::AppState;
use crate::MAX_MESSAGE_BYTES;
use crate::error::ScimError;
use crate::http::Bearer;
use crate::wire::patch::Patch;

/// The calls of one resource type's gRPC service.
pub trait Service {
    /// The proto message of one resource.
    type Message: Stored + Send + Sync + 'static;
    /// What a create or replace body reads into.
    type Input: Send + 'static;

    fn create(
        state: &AppState,
        bearer: &Bearer,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Message, ScimError>> + Send;
    /// `etag` ("" for none) must be current.
    fn replace(
        state: &AppState,
        bearer: &Bearer,
        id: String,
        input: Self::Input,
        etag: String,
    ) -> impl Future<Output = Result<Self::Message, ScimError>> + Send;
    /// `etag` ("" for none) must be current.
    fn patch(
        state: &AppState,
        bearer: &Bearer,
        id: String,
        patch: Patch,
        etag: String,
    ) -> impl Future<Output = Result<Self::Message, ScimError>> + Send;
    fn delete(
        state: &AppState,
        bearer: &Bearer,
        id: String,
        etag: String,
    ) -> impl Future<Output = Result<(), ScimError>> + Send;
    fn get(
        state: &AppState,
        bearer: &Bearer,
        id: String,
    ) -> impl Future<Output = Result<Self::Message, ScimError>> + Send;
    fn list(
        state: &AppState,
        bearer: &Bearer,
        query: ListQuery,
    ) -> impl Future<Output = Result<Listed<Self::Message>, ScimError>> + Send;
}

/// Sends one gRPC request with the caller's credential, tenant edge and
/// deadline, and reads the answer; `send` makes the call.
async fn unary<M, A, F>(
    bearer: &Bearer,
    message: M,
    send: impl FnOnce(tonic::Request<M>) -> F,
) -> Result<A, ScimError>
where
    F: Future<Output = Result<tonic::Response<A>, tonic::Status>>,
{
    Ok(send(bearer.request(message)).await?.into_inner())
}

/// Pairs each resource type once with its service: its generated client,
/// its methods, its request messages and the field a list answers with.
macro_rules! services {
    ($($resource:ty: $client:ident, $module:ident, $message:ty, $input:ty,
        [$create:ident, $replace:ident, $patch:ident, $delete:ident, $get:ident, $list:ident],
        [$delete_request:ident, $get_request:ident, $list_request:ident],
        $items:ident;)+) => {$(
        impl $resource {
            /// The service's generated client on the adapter's channel.
            pub fn client(state: &AppState) -> $client<Channel> {
                $client::new(state.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
            }
        }

        // The user get and list requests also carry `show_deleted`, left
        // at its default (false): SCIM never shows a deleted resource. The
        // group requests have no such field, so there the default fills
        // nothing.
        #[allow(clippy::needless_update)]
        impl Service for $resource {
            type Message = $message;
            type Input = $input;

            async fn create(
                state: &AppState,
                bearer: &Bearer,
                input: $input,
            ) -> Result<$message, ScimError> {
                let request = $module::create_request(bearer.tenant(), input);
                let mut client = Self::client(state);
                unary(bearer, request, |r| async move { client.$create(r).await }).await
            }

            async fn replace(
                state: &AppState,
                bearer: &Bearer,
                id: String,
                input: $input,
                etag: String,
            ) -> Result<$message, ScimError> {
                let request = $module::replace_request(bearer.tenant(), id, input, etag);
                let mut client = Self::client(state);
                unary(bearer, request, |r| async move { client.$replace(r).await }).await
            }

            async fn patch(
                state: &AppState,
                bearer: &Bearer,
                id: String,
                patch: Patch,
                etag: String,
            ) -> Result<$message, ScimError> {
                let request = $module::patch_request(bearer.tenant(), id, patch, etag);
                let mut client = Self::client(state);
                unary(bearer, request, |r| async move { client.$patch(r).await }).await
            }

            async fn delete(
                state: &AppState,
                bearer: &Bearer,
                id: String,
                etag: String,
            ) -> Result<(), ScimError> {
                let tenant = bearer.tenant();
                let request = $delete_request { tenant, id, etag };
                let mut client = Self::client(state);
                unary(bearer, request, |r| async move { client.$delete(r).await }).await.map(drop)
            }

            async fn get(
                state: &AppState,
                bearer: &Bearer,
                id: String,
            ) -> Result<$message, ScimError> {
                let tenant = bearer.tenant();
                let request = $get_request { tenant, id, ..Default::default() };
                let mut client = Self::client(state);
                unary(bearer, request, |r| async move { client.$get(r).await }).await
            }

            async fn list(
                state: &AppState,
                bearer: &Bearer,
                query: ListQuery,
            ) -> Result<Listed<$message>, ScimError> {
                let request = $list_request {
                    tenant: bearer.tenant(),
                    filter: query.filter,
                    page_size: query.page_size,
                    offset: query.offset,
                    page_token: query.page_token,
                    order_by: query.order_by,
                    total_optional: query.total_optional,
                    ..Default::default()
                };
                let mut client = Self::client(state);
                let page = unary(bearer, request, |r| async move { client.$list(r).await }).await?;
                Ok(Listed {
                    items: page.$items,
                    total_size: page.total_size,
                    next_page_token: page.next_page_token,
                    previous_page_token: page.previous_page_token,
                })
            }
        }
    )+};
}

services! {
    Users: UserServiceClient, user, User, User,
        [create_user, replace_user, patch_user, delete_user, get_user, list_users],
        [DeleteUserRequest, GetUserRequest, ListUsersRequest], users;
    Groups: GroupServiceClient, group, Group, (Group, Vec<String>),
        [create_group, replace_group, patch_group, delete_group, get_group, list_groups],
        [DeleteGroupRequest, GetGroupRequest, ListGroupsRequest], groups;
}
