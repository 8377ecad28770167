//! `identity.v1.GroupService` over the group store.

use std::collections::HashMap;

use diesel_async::AsyncPgConnection;
use identity_proto::v1::group_service_server::GroupService;
use identity_proto::v1::{
    AddMembersRequest, CreateGroupRequest, DeleteGroupRequest, DeleteGroupResponse,
    GetGroupRequest, Group, GroupRef, ListGroupsRequest, ListGroupsResponse, ListMembersRequest,
    ListMembersResponse, ListUserGroupsRequest, ListUserGroupsResponse, Member, Name, NamePolicy,
    PatchGroupRequest, RemoveMembersRequest, ReplaceGroupRequest,
};
use prost::Message;
use serde_json::Value as Json;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::patch::{self, GroupPatch, MemberChange};
use super::store::{self as group_store, GroupRow, Groups, MemberRow};
use super::{GroupData, GroupError, parse_member_ids};
use crate::api::{Api, Rendered, list_request, list_response};
use crate::auth::TenantRef;
use crate::db::{StoreError, retry_conflict};
use crate::events::Origin;
use crate::rpc::{keyset_after, keyset_page_size, timestamp, traced};
use crate::store::paging::PAGE_BYTES;
use crate::store::{parse_id, required};
use crate::users::full_name;

/// ListMembers pages: large, since members are small and IdPs read them all.
const DEFAULT_MEMBER_PAGE_SIZE: i64 = 1000;
const MAX_MEMBER_PAGE_SIZE: i64 = 10_000;

/// `identity.v1.GroupService`.
pub(crate) type GroupApi = Api<Groups>;

fn to_proto(row: GroupRow, tenant: &str) -> Group {
    let attributes = match row.attributes {
        Json::Object(map) if !map.is_empty() => Some(identity_proto::json_to_struct(map)),
        _ => None,
    };
    Group {
        id: row.group_id.to_string(),
        tenant: tenant.to_owned(),
        display_name: row.display_name,
        external_id: row.external_id,
        attributes,
        member_count: row.member_count,
        etag: row.version.to_string(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        synthetic: row.synthetic,
    }
}

impl Rendered for Groups {
    type Proto = Group;

    async fn render(
        _: &mut AsyncPgConnection,
        tenant: &TenantRef,
        rows: Vec<GroupRow>,
    ) -> Result<Vec<Group>, Status> {
        Ok(rows
            .into_iter()
            .map(|row| to_proto(row, &tenant.slug))
            .collect())
    }
}

/// A member's display: the user's full name by the tenant's rule, else
/// their userName.
fn member(row: MemberRow, rule: NamePolicy) -> Member {
    let name = Name {
        given_name: row.given_name,
        family_name: row.family_name,
        formatted: row.name_formatted,
        ..Name::default()
    };
    let display = full_name(&name, row.display_name.as_deref(), rule);
    Member {
        user_id: row.user_id.to_string(),
        display: if display.is_empty() {
            row.user_name.clone()
        } else {
            display
        },
        user_name: row.user_name,
    }
}

/// The groups of each of `user_ids`, for `User.groups`: one query however
/// many users.
pub(crate) async fn group_refs(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<GroupRef>>, StoreError> {
    let mut refs: HashMap<Uuid, Vec<GroupRef>> = HashMap::new();
    for (user, group, display_name) in
        super::memberships::groups_of_users(conn, tenant, user_ids).await?
    {
        refs.entry(user).or_default().push(GroupRef {
            id: group.to_string(),
            display_name,
        });
    }
    Ok(refs)
}

list_response!(ListGroupsResponse { groups: Group });

#[tonic::async_trait]
impl GroupService for GroupApi {
    async fn get_group(
        &self,
        request: Request<GetGroupRequest>,
    ) -> Result<Response<Group>, Status> {
        traced("GetGroup", async {
            let (metadata, _, req) = request.into_parts();
            self.get(&metadata, &req.tenant, &req.id, false).await
        })
        .await
    }

    async fn list_groups(
        &self,
        request: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsResponse>, Status> {
        traced("ListGroups", async {
            let (metadata, _, req) = request.into_parts();
            let request = list_request!(req, show_deleted: false);
            Ok(self.list(&metadata, &req.tenant, request).await?.into())
        })
        .await
    }

    async fn create_group(
        &self,
        request: Request<CreateGroupRequest>,
    ) -> Result<Response<Group>, Status> {
        traced("CreateGroup", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let origin = Origin::of(&caller, &metadata);
            let group = GroupData::from_proto(required::<Groups, _>(req.group)?)?;
            let members = parse_member_ids(&req.member_ids)?;
            let row = retry_conflict!(group_store::create(
                &mut conn, tenant.id, &origin, &group, &members
            ))?;
            Ok(to_proto(row, &tenant.slug))
        })
        .await
    }

    async fn replace_group(
        &self,
        request: Request<ReplaceGroupRequest>,
    ) -> Result<Response<Group>, Status> {
        traced("ReplaceGroup", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let origin = Origin::of(&caller, &metadata);
            let group = required::<Groups, _>(req.group)?;
            let id = parse_id::<Groups>(&group.id)?;
            let group = GroupData::from_proto(group)?;
            let members = parse_member_ids(&req.member_ids)?;
            let row = retry_conflict!(group_store::replace(
                &mut conn, tenant.id, &origin, id, &req.etag, &group, &members
            ))?;
            Ok(to_proto(row, &tenant.slug))
        })
        .await
    }

    async fn patch_group(
        &self,
        request: Request<PatchGroupRequest>,
    ) -> Result<Response<Group>, Status> {
        traced("PatchGroup", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let origin = Origin::of(&caller, &metadata);
            let id = parse_id::<Groups>(&req.id)?;
            let plan = patch::plan(&req.operations, &req.member_changes)?;
            let row = retry_conflict!(group_store::patch(
                &mut conn, tenant.id, &origin, id, &req.etag, &plan
            ))?;
            Ok(to_proto(row, &tenant.slug))
        })
        .await
    }

    async fn delete_group(
        &self,
        request: Request<DeleteGroupRequest>,
    ) -> Result<Response<DeleteGroupResponse>, Status> {
        traced("DeleteGroup", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let origin = Origin::of(&caller, &metadata);
            let id = parse_id::<Groups>(&req.id)?;
            retry_conflict!(group_store::delete(
                &mut conn, tenant.id, &origin, id, &req.etag
            ))?;
            Ok(DeleteGroupResponse {})
        })
        .await
    }

    async fn add_members(
        &self,
        request: Request<AddMembersRequest>,
    ) -> Result<Response<Group>, Status> {
        traced("AddMembers", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let origin = Origin::of(&caller, &metadata);
            let id = parse_id::<Groups>(&req.group_id)?;
            let plan = GroupPatch {
                attributes: Vec::new(),
                members: vec![MemberChange::Add(parse_member_ids(&req.user_ids)?)],
            };
            let row = retry_conflict!(group_store::patch(
                &mut conn, tenant.id, &origin, id, "", &plan
            ))?;
            Ok(to_proto(row, &tenant.slug))
        })
        .await
    }

    async fn remove_members(
        &self,
        request: Request<RemoveMembersRequest>,
    ) -> Result<Response<Group>, Status> {
        traced("RemoveMembers", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller, tenant) = self.state.write_call(&metadata, &req.tenant).await?;
            let origin = Origin::of(&caller, &metadata);
            let id = parse_id::<Groups>(&req.group_id)?;
            let plan = GroupPatch {
                attributes: Vec::new(),
                members: vec![MemberChange::Remove(parse_member_ids(&req.user_ids)?)],
            };
            let row = retry_conflict!(group_store::patch(
                &mut conn, tenant.id, &origin, id, "", &plan
            ))?;
            Ok(to_proto(row, &tenant.slug))
        })
        .await
    }

    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        traced("ListMembers", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.state.tenant_call(&metadata, &req.tenant).await?;
            let id = parse_id::<Groups>(&req.group_id)?;
            let limit = keyset_page_size(
                req.page_size,
                DEFAULT_MEMBER_PAGE_SIZE,
                MAX_MEMBER_PAGE_SIZE,
            )?;
            let after = keyset_after(&req.page_token)?;
            // One extra row tells whether another page follows.
            let rows =
                group_store::members_page(&mut conn, tenant.id, id, after, limit + 1).await?;
            let more = rows.len() as i64 > limit;
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            // By count and by bytes (userNames may be long): at least one.
            let mut members = Vec::with_capacity(rows.len().min(limit));
            let mut bytes = 0_usize;
            let mut cut = false;
            for row in rows {
                let member = member(row, tenant.policy.name_policy());
                bytes = bytes.saturating_add(member.encoded_len());
                if members.len() == limit || (bytes > PAGE_BYTES && !members.is_empty()) {
                    cut = true;
                    break;
                }
                members.push(member);
            }
            let next_page_token = match members.last() {
                Some(last) if more || cut => last.user_id.clone(),
                _ => String::new(),
            };
            Ok(ListMembersResponse {
                members,
                next_page_token,
            })
        })
        .await
    }

    async fn list_user_groups(
        &self,
        request: Request<ListUserGroupsRequest>,
    ) -> Result<Response<ListUserGroupsResponse>, Status> {
        traced("ListUserGroups", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.state.tenant_call(&metadata, &req.tenant).await?;
            let user = Uuid::try_parse(req.user_id.trim())
                .map_err(|_| GroupError::UserNotFound(req.user_id.clone()))?;
            let groups = group_store::user_groups(&mut conn, tenant.id, user).await?;
            Ok(ListUserGroupsResponse {
                groups: groups
                    .into_iter()
                    .map(|(id, display_name)| GroupRef {
                        id: id.to_string(),
                        display_name,
                    })
                    .collect(),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member_row(given: Option<&str>, display: Option<&str>) -> MemberRow {
        MemberRow {
            user_id: Uuid::from_u128(1),
            user_name: "ada@example.com".into(),
            given_name: given.map(Into::into),
            family_name: None,
            name_formatted: None,
            display_name: display.map(Into::into),
        }
    }

    #[test]
    fn member_display_falls_back_to_user_name() {
        let member = |row| member(row, NamePolicy::GivenFamilyFirst);
        assert_eq!(member(member_row(Some("Ada"), None)).display, "Ada");
        assert_eq!(member(member_row(None, Some("A. L."))).display, "A. L.");
        let bare = member(member_row(None, None));
        assert_eq!(bare.display, "ada@example.com");
        assert_eq!(bare.user_name, "ada@example.com");
    }
}
