//! `identity.v1.UserService` over the user store.

use std::collections::HashMap;

use diesel_async::AsyncPgConnection;
use identity_proto::v1::user_service_server::UserService;
use identity_proto::v1::{
    CreateUserRequest, DeleteUserRequest, DeleteUserResponse, EnterpriseUser, GetUserRequest,
    GroupRef, ListUsersRequest, ListUsersResponse, Manager, Name, PatchUserRequest,
    ReplaceUserRequest, User,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::store::{self as user_store, Created, UserRow, Users, WriteScope};
use super::{UserData, policy};
use crate::api::{Api, Rendered, list_request, list_response, render_one};
use crate::auth::TenantRef;
use crate::db::retry_conflict;
use crate::events::Origin;
use crate::groups::service::group_refs;
use crate::rpc::{timestamp, traced};
use crate::store::{parse_id, required};

/// `identity.v1.UserService`.
pub(crate) type UserApi = Api<Users>;

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

impl Rendered for Users {
    type Proto = User;

    async fn render(
        conn: &mut AsyncPgConnection,
        tenant: &TenantRef,
        rows: Vec<UserRow>,
    ) -> Result<Vec<User>, Status> {
        let managers = managers_of(conn, tenant, &rows).await?;
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
}

/// The full names of the managers of `rows`, for `manager.display_name`;
/// no query when none has a manager.
async fn managers_of(
    conn: &mut AsyncPgConnection,
    tenant: &TenantRef,
    rows: &[UserRow],
) -> Result<HashMap<Uuid, String>, Status> {
    let mut manager_ids: Vec<Uuid> = rows.iter().filter_map(|r| r.manager_id).collect();
    manager_ids.sort_unstable();
    manager_ids.dedup();
    Ok(
        user_store::manager_names(conn, tenant.id, &manager_ids, tenant.policy.name_policy())
            .await?,
    )
}

/// A user this request inserted is in no group yet: only its manager's
/// name is read.
async fn render_inserted(
    conn: &mut AsyncPgConnection,
    tenant: &TenantRef,
    row: UserRow,
) -> Result<User, Status> {
    let managers = managers_of(conn, tenant, std::slice::from_ref(&row)).await?;
    Ok(to_proto(row, tenant, &managers, Vec::new()))
}

list_response!(ListUsersResponse { users: User });

#[tonic::async_trait]
impl UserService for UserApi {
    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        traced("GetUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.state.tenant_call(&metadata, &req.tenant).await?;
            let id = parse_id::<Users>(&req.id)?;
            let (row, groups) =
                user_store::get_with_groups(&mut conn, tenant.id, id, req.show_deleted).await?;
            let managers = managers_of(&mut conn, &tenant, std::slice::from_ref(&row)).await?;
            let groups = groups
                .into_iter()
                .map(|(id, display_name)| GroupRef {
                    id: id.to_string(),
                    display_name,
                })
                .collect();
            Ok(to_proto(row, &tenant, &managers, groups))
        })
        .await
    }

    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        traced("ListUsers", async {
            let (metadata, _, req) = request.into_parts();
            let request = list_request!(req, show_deleted: req.show_deleted);
            Ok(self.list(&metadata, &req.tenant, request).await?.into())
        })
        .await
    }

    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<User>, Status> {
        traced("CreateUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let user = UserData::from_proto(required::<Users, _>(req.user)?)?;
            let origin = Origin::of(&caller, &metadata);
            let scope = WriteScope {
                tenant: &tenant,
                caller: &caller,
                origin: &origin,
            };
            let created = retry_conflict!(user_store::create(&mut conn, &scope, user.clone()))?;
            match created {
                Created::Inserted(row) => render_inserted(&mut conn, &tenant, row).await,
                Created::Adopted(row) => render_one::<Users>(&mut conn, &tenant, row).await,
            }
        })
        .await
    }

    async fn replace_user(
        &self,
        request: Request<ReplaceUserRequest>,
    ) -> Result<Response<User>, Status> {
        traced("ReplaceUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let user = required::<Users, _>(req.user)?;
            let id = parse_id::<Users>(&user.id)?;
            let user = UserData::from_proto(user)?;
            let origin = Origin::of(&caller, &metadata);
            let scope = WriteScope {
                tenant: &tenant,
                caller: &caller,
                origin: &origin,
            };
            let row =
                retry_conflict!(user_store::replace(&mut conn, &scope, id, &req.etag, &user))?;
            render_one::<Users>(&mut conn, &tenant, row).await
        })
        .await
    }

    async fn patch_user(
        &self,
        request: Request<PatchUserRequest>,
    ) -> Result<Response<User>, Status> {
        traced("PatchUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let id = parse_id::<Users>(&req.id)?;
            let origin = Origin::of(&caller, &metadata);
            let scope = WriteScope {
                tenant: &tenant,
                caller: &caller,
                origin: &origin,
            };
            let row = retry_conflict!(user_store::patch(
                &mut conn,
                &scope,
                id,
                &req.etag,
                &req.operations
            ))?;
            render_one::<Users>(&mut conn, &tenant, row).await
        })
        .await
    }

    async fn delete_user(
        &self,
        request: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        traced("DeleteUser", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let id = parse_id::<Users>(&req.id)?;
            let origin = Origin::of(&caller, &metadata);
            let scope = WriteScope {
                tenant: &tenant,
                caller: &caller,
                origin: &origin,
            };
            retry_conflict!(user_store::delete(&mut conn, &scope, id, &req.etag))?;
            Ok(DeleteUserResponse {})
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ResourceError;

    #[test]
    fn malformed_ids_are_not_found() {
        assert!(matches!(
            parse_id::<Users>("00919288221112222"),
            Err(ResourceError::NotFound { kind: "user", .. })
        ));
        assert!(parse_id::<Users>("0b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11").is_ok());
    }
}
