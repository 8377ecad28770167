//! `identity.v1.UserService` over the user store.

use std::collections::HashMap;
use std::sync::Arc;

use diesel_async::AsyncPgConnection;
use identity_proto::v1::user_service_server::UserService;
use identity_proto::v1::{
    CreateUserRequest, DeleteUserRequest, DeleteUserResponse, EnterpriseUser, GetUserRequest,
    GroupRef, ListUsersRequest, ListUsersResponse, Manager, Name, PatchUserRequest,
    ReplaceUserRequest, User,
};
use prost::Message;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::store::{self, ListQuery, UserRow, WriteScope};
use super::{UserData, UserError, policy};
use crate::app::AppState;
use crate::attr::Resource;
use crate::auth::TenantRef;
use crate::db::retry_conflict;
use crate::filter;
use crate::groups::service::group_refs;
use crate::paging::Keyset;
use crate::rpc::{page_size, timestamp, traced};
use crate::sort;

pub(crate) struct UserApi {
    state: Arc<AppState>,
}

impl UserApi {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        UserApi { state }
    }
}

/// A malformed id names no user: NOT_FOUND, as SCIM clients expect.
fn parse_id(id: &str) -> Result<Uuid, UserError> {
    Uuid::try_parse(id.trim()).map_err(|_| UserError::NotFound(id.to_owned()))
}

fn required_user(user: Option<User>) -> Result<User, UserError> {
    user.ok_or_else(|| UserError::InvalidValue("user is required".into()))
}

/// The proto user of a row, with `manager.display_name` from `managers`,
/// the user's groups and the access the tenant's policy derives from them.
fn to_proto(
    row: UserRow,
    tenant: &TenantRef,
    managers: &HashMap<Uuid, String>,
    groups: Vec<GroupRef>,
) -> User {
    let data = row.data();
    let full_name = policy::display_full_name(&data, tenant.policy.name_policy());
    let (roles, organizations) = policy::effective_access(
        &tenant.policy,
        row.tenant_member,
        &row.roles,
        &row.organizations,
        &groups,
    );
    let source = row.joined_by();
    let e = data.enterprise;
    let manager = data.manager_id.map(|id| Manager {
        value: id.to_string(),
        display_name: managers.get(&id).cloned().unwrap_or_default(),
    });
    let has_enterprise = manager.is_some()
        || [
            &e.employee_number,
            &e.cost_center,
            &e.organization,
            &e.division,
            &e.department,
        ]
        .iter()
        .any(|v| v.is_some());
    User {
        id: row.user_id.to_string(),
        tenant: tenant.slug.clone(),
        user_name: data.user_name,
        external_id: data.external_id,
        name: (data.name != Name::default()).then_some(data.name),
        display_name: data.display_name,
        emails: data.emails,
        active: Some(data.active),
        enterprise: has_enterprise.then_some(EnterpriseUser {
            employee_number: e.employee_number,
            cost_center: e.cost_center,
            organization: e.organization,
            division: e.division,
            department: e.department,
            manager,
        }),
        attributes: (!data.attributes.is_empty())
            .then(|| identity_proto::json_to_struct(data.attributes)),
        full_name,
        etag: row.version.to_string(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        delete_time: row.deleted_at.map(timestamp),
        groups,
        login_email: row.login_email.unwrap_or_default(),
        person_id: row.person_id.map(|id| id.to_string()).unwrap_or_default(),
        tenant_member: row.tenant_member,
        roles,
        organizations,
        source: source as i32,
    }
}

async fn render(
    conn: &mut AsyncPgConnection,
    tenant: &TenantRef,
    rows: Vec<UserRow>,
) -> Result<Vec<User>, Status> {
    let mut manager_ids: Vec<Uuid> = rows.iter().filter_map(|r| r.manager_id).collect();
    manager_ids.sort_unstable();
    manager_ids.dedup();
    let managers =
        store::manager_names(conn, tenant.id, &manager_ids, tenant.policy.name_policy()).await?;
    // One query for the groups of the whole page, never one per user.
    let user_ids: Vec<Uuid> = rows.iter().map(|r| r.user_id).collect();
    let mut groups = group_refs(conn, tenant.id, &user_ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let user_groups = groups.remove(&row.user_id).unwrap_or_default();
            to_proto(row, tenant, &managers, user_groups)
        })
        .collect())
}

async fn render_one(
    conn: &mut AsyncPgConnection,
    tenant: &TenantRef,
    row: UserRow,
) -> Result<User, Status> {
    render(conn, tenant, vec![row])
        .await?
        .pop()
        .ok_or_else(|| Status::internal("internal error"))
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        traced("GetUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.state.tenant_call(&metadata, &req.tenant).await?;
            let id = parse_id(&req.id)?;
            let row = store::get(&mut conn, tenant.id, id, req.show_deleted).await?;
            render_one(&mut conn, &tenant, row).await
        })
        .await
    }

    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        traced("ListUsers", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.state.tenant_call(&metadata, &req.tenant).await?;
            let filter = req
                .filter
                .as_ref()
                .map(|f| filter::compile(f, Resource::User))
                .transpose()
                .map_err(UserError::from)?;
            let key =
                sort::compile(req.order_by.as_ref(), Resource::User).map_err(UserError::from)?;
            let size = page_size(req.page_size).map_err(UserError::from)?;
            let keyset = Keyset::new(
                key,
                Resource::User,
                tenant.id,
                req.show_deleted,
                filter.as_ref(),
            );
            let start = keyset
                .start(req.offset, &req.page_token)
                .map_err(UserError::from)?;
            let query = ListQuery {
                filter,
                show_deleted: req.show_deleted,
            };
            let (mut page, total_size) =
                store::list(&mut conn, tenant.id, &query, &keyset, &start, size).await?;
            let rows = std::mem::take(&mut page.rows);
            let mut users = render(&mut conn, &tenant, rows).await?;
            page.fit(&keyset, &mut users, Message::encoded_len);
            Ok(ListUsersResponse {
                users,
                total_size,
                next_page_token: page.next_page_token,
                previous_page_token: page.previous_page_token,
            })
        })
        .await
    }

    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<User>, Status> {
        traced("CreateUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.scoped_call(&metadata, &req.tenant).await?;
            let user = UserData::from_proto(required_user(req.user)?)?;
            let scope = WriteScope {
                tenant: &tenant,
                caller: &caller,
            };
            let row = retry_conflict!(store::create(&mut conn, &scope, user.clone()))?;
            render_one(&mut conn, &tenant, row).await
        })
        .await
    }

    async fn replace_user(
        &self,
        request: Request<ReplaceUserRequest>,
    ) -> Result<Response<User>, Status> {
        traced("ReplaceUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.scoped_call(&metadata, &req.tenant).await?;
            let user = required_user(req.user)?;
            let id = parse_id(&user.id)?;
            let user = UserData::from_proto(user)?;
            let scope = WriteScope {
                tenant: &tenant,
                caller: &caller,
            };
            let row = retry_conflict!(store::replace(&mut conn, &scope, id, &req.etag, &user))?;
            render_one(&mut conn, &tenant, row).await
        })
        .await
    }

    async fn patch_user(
        &self,
        request: Request<PatchUserRequest>,
    ) -> Result<Response<User>, Status> {
        traced("PatchUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.scoped_call(&metadata, &req.tenant).await?;
            let id = parse_id(&req.id)?;
            let scope = WriteScope {
                tenant: &tenant,
                caller: &caller,
            };
            let row = retry_conflict!(store::patch(
                &mut conn,
                &scope,
                id,
                &req.etag,
                &req.operations
            ))?;
            render_one(&mut conn, &tenant, row).await
        })
        .await
    }

    async fn delete_user(
        &self,
        request: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        traced("DeleteUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.scoped_call(&metadata, &req.tenant).await?;
            let id = parse_id(&req.id)?;
            let scope = WriteScope {
                tenant: &tenant,
                caller: &caller,
            };
            retry_conflict!(store::delete(&mut conn, &scope, id, &req.etag))?;
            Ok(DeleteUserResponse {})
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_ids_are_not_found() {
        assert!(matches!(
            parse_id("00919288221112222"),
            Err(UserError::NotFound(_))
        ));
        assert!(parse_id("0b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11").is_ok());
    }
}
