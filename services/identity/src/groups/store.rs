//! Group and membership rows. Every write is one transaction, which records
//! its events last (see `events::store`): the group's own, and who joined
//! or left it.
//!
//! Memberships are written set-wise (`INSERT ... ON CONFLICT DO NOTHING`,
//! one `DELETE` for all ids), probing the primary key once per id, so their
//! cost does not grow with the group; `member_count` moves by the affected
//! row counts, and the group row's lock (version + 1) serialises concurrent
//! writes of one group so none is lost.
//!
//! No query here may depend on fresh planner statistics: an identity
//! provider fills a big group long before autovacuum analyzes it. So a
//! lookup by id never says `deleted_at IS NULL` (the partial userName index
//! would then fit it, and a planner that believes the tenant small scans
//! the tenant's every live user through it); tombstones are told apart from
//! the row read. And a set of ids is probed one id at a time with every
//! primary key column equal, which no other index can beat: given
//! `user_id = ANY(ids)` next to the group, a planner that believes the
//! group small reads the whole group instead.
//!
//! Lock order, the same in every transaction so none can deadlock: the
//! tenant row (FOR SHARE, when the write can change access: see
//! [`access_policy`]), the users being added (FOR KEY SHARE), then group
//! rows in group id order. Deleting a user locks the user (FOR UPDATE)
//! before its groups; a membership write, once it holds its group, waits
//! for no user.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{self, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value as Json;
use uuid::Uuid;

use super::patch::{GroupPatch, MemberChange, apply_attributes, to_document};
use super::{GroupData, GroupError};
use crate::attr::Resource;
use crate::db::StoreError;
use crate::events::access::{self, GroupChange};
use crate::events::{self, Draft, Origin};
use crate::groups::memberships;
use crate::schema::{group_members, groups, users};
use crate::store::{ResourceError, StoredResource, lock, not_found, stored_bag, write_error};
use crate::tenants::policy::SYNTHETIC_GROUPS;
use identity_proto::v1::{EventType, ProvisioningPolicy, ResourceType};

/// displayName is unique per tenant, case-insensitively.
const DISPLAY_NAME_INDEX: &str = "groups_display_name_key";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = groups, check_for_backend(diesel::pg::Pg))]
pub(crate) struct GroupRow {
    pub group_id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    pub attributes: Json,
    pub member_count: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub synthetic: bool,
}

/// Groups in the generic resource path. They keep no tombstones: a
/// deleted group is gone.
pub(crate) struct Groups;

impl StoredResource for Groups {
    const KIND: &'static str = "group";
    const RESOURCE: Resource = Resource::Group;
    const UNIQUE_INDEX: &'static str = DISPLAY_NAME_INDEX;
    const UNIQUE_ATTRIBUTE: &'static str = "displayName";

    type Row = GroupRow;
    type Query = groups::BoxedQuery<'static, Pg>;

    fn id(row: &GroupRow) -> Uuid {
        row.group_id
    }

    fn version(row: &GroupRow) -> i64 {
        row.version
    }

    fn scoped(tenant: Uuid, _show_deleted: bool) -> Self::Query {
        groups::table
            .filter(groups::tenant_id.eq(tenant))
            .into_boxed()
    }

    fn with_id(query: Self::Query, id: Uuid) -> Self::Query {
        query.filter(groups::group_id.eq(id))
    }
}

impl GroupRow {
    /// The writable content of the row, members aside.
    pub(crate) fn data(&self) -> GroupData {
        GroupData {
            display_name: self.display_name.clone(),
            external_id: self.external_id.clone(),
            attributes: stored_bag(&self.attributes),
        }
    }
}

/// Every writable column; on update, absent values clear the column (PUT).
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = groups, treat_none_as_null = true)]
struct Writable<'a> {
    display_name: &'a str,
    external_id: Option<&'a str>,
    attributes: Json,
}

fn writable(group: &GroupData) -> Writable<'_> {
    Writable {
        display_name: &group.display_name,
        external_id: group.external_id.as_deref(),
        attributes: Json::Object(group.attributes.clone()),
    }
}

/// Checks that every id in `ids` (sorted) is a live user of the tenant and
/// keeps them so (FOR KEY SHARE) until the transaction ends: a concurrent
/// DeleteUser waits, then finds and removes the new memberships. Taken
/// before any group row, so the membership insert's foreign key check never
/// waits for a user while holding its group.
async fn lock_users(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    ids: &[Uuid],
) -> Result<(), GroupError> {
    if ids.is_empty() {
        return Ok(());
    }
    // Tombstones are locked too, and refused below: through the primary key.
    let found: HashSet<Uuid> = users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::user_id.eq_any(ids))
        .select((users::user_id, users::deleted_at))
        .order(users::user_id)
        .for_key_share()
        .load::<(Uuid, Option<DateTime<Utc>>)>(conn)
        .await?
        .into_iter()
        .filter_map(|(id, deleted_at)| deleted_at.is_none().then_some(id))
        .collect();
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| !found.contains(id))
        .map(Uuid::to_string)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(GroupError::UnknownMembers(unknown))
    }
}

/// A synthetic group keeps its name: its role mapping hangs on it.
fn keep_synthetic_name(row: &GroupRow, group: &GroupData) -> Result<(), GroupError> {
    if row.synthetic && row.display_name != group.display_name {
        return Err(ResourceError::PolicyViolation(format!(
            "synthetic_groups: '{}' is a synthetic group of this tenant and cannot be renamed",
            row.display_name
        ))
        .into());
    }
    Ok(())
}

/// A membership statement over one group and a list of users, returning
/// the ids of the users it touched; its text comes in four pieces around
/// its three parameters: the tenant, the group, the user ids.
macro_rules! member_statement {
    ($(#[$doc:meta])* $name:ident [$($text:expr),* $(,)?]) => {
        crate::db::prepared_statement!(
            $(#[$doc])*
            $name<'a> -> sql_types::Uuid {
                tenant: Uuid as sql_types::Uuid,
                group: Uuid as sql_types::Uuid,
                ids: &'a [Uuid] as sql_types::Array<sql_types::Uuid>,
            }
            [$($text),*]
        );
    };
}

member_statement!(
    /// The users who were not members yet, inserted.
    InsertMembers
    [
        "INSERT INTO group_members (tenant_id, group_id, user_id) SELECT ",
        ", ",
        ", id FROM unnest(",
        "::uuid[]) AS id ON CONFLICT DO NOTHING RETURNING user_id",
    ]
);

member_statement!(
    /// The members among the users, deleted: each looked up with the whole
    /// primary key (a subquery per id, which the planner cannot turn into a
    /// scan of the group) and its row deleted by its address.
    DeleteMembers
    [
        "DELETE FROM group_members WHERE ctid = ANY (ARRAY( \
             SELECT (SELECT gm.ctid FROM group_members AS gm WHERE gm.tenant_id = ",
        " AND gm.group_id = ",
        " AND gm.user_id = gone.id) FROM unnest(",
        "::uuid[]) AS gone(id))) RETURNING user_id",
    ]
);

member_statement!(
    /// Every member not among the users, deleted. An anti-join, which
    /// Postgres hashes, so a PUT of a large group stays linear (`<> ALL(ids)`
    /// would not).
    DeleteMembersExcept
    [
        "DELETE FROM group_members AS gm WHERE gm.tenant_id = ",
        " AND gm.group_id = ",
        " AND NOT EXISTS (SELECT 1 FROM unnest(",
        "::uuid[]) AS keep(user_id) WHERE keep.user_id = gm.user_id) RETURNING gm.user_id",
    ]
);

/// Adds the users `ids`, which [`lock_users`] checked and keeps live until
/// the transaction ends, so users need not be read again (the foreign key
/// still probes each); returns those who were not members yet.
async fn insert_members(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    group: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, GroupError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(InsertMembers { tenant, group, ids }.load(conn).await?)
}

/// Removes the users `ids` that are members; returns those who were.
async fn delete_members(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    group: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, GroupError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(DeleteMembers { tenant, group, ids }.load(conn).await?)
}

async fn delete_all_members(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    group: Uuid,
) -> Result<Vec<Uuid>, GroupError> {
    Ok(diesel::delete(
        group_members::table
            .filter(group_members::tenant_id.eq(tenant))
            .filter(group_members::group_id.eq(group)),
    )
    .returning(group_members::user_id)
    .get_results(conn)
    .await?)
}

/// Removes every member not in `ids`; returns those who were.
async fn delete_members_except(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    group: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, GroupError> {
    if ids.is_empty() {
        return delete_all_members(conn, tenant, group).await;
    }
    Ok(DeleteMembersExcept { tenant, group, ids }
        .load(conn)
        .await?)
}

/// Who joined and who left a group over a transaction's changes: a user
/// added then removed again (or the reverse) did neither.
#[derive(Debug, Default)]
struct Moved {
    joined: HashSet<Uuid>,
    left: HashSet<Uuid>,
}

impl Moved {
    fn join(&mut self, ids: Vec<Uuid>) {
        for id in ids {
            if !self.left.remove(&id) {
                self.joined.insert(id);
            }
        }
    }

    fn leave(&mut self, ids: Vec<Uuid>) {
        for id in ids {
            if !self.joined.remove(&id) {
                self.left.insert(id);
            }
        }
    }

    /// The change of member_count.
    fn delta(&self) -> i64 {
        self.joined.len() as i64 - self.left.len() as i64
    }

    /// MEMBER_ADDED and MEMBER_REMOVED of `group`, each naming its users
    /// (sorted) under `members`.
    fn events(&self, group: Uuid) -> Vec<Draft> {
        let sorted = |ids: &HashSet<Uuid>| {
            let mut ids: Vec<Uuid> = ids.iter().copied().collect();
            ids.sort_unstable();
            Json::Array(ids.iter().map(|id| Json::String(id.to_string())).collect())
        };
        let mut drafts = Vec::new();
        for (kind, ids) in [
            (EventType::MemberAdded, &self.joined),
            (EventType::MemberRemoved, &self.left),
        ] {
            if ids.is_empty() {
                continue;
            }
            let (before, after) = if kind == EventType::MemberAdded {
                (None, Some(sorted(ids)))
            } else {
                (Some(sorted(ids)), None)
            };
            let mut changes = serde_json::Map::new();
            changes.insert("members".into(), events::change(before, after));
            drafts.push(Draft::new(kind, ResourceType::Group, group).with_changes(changes));
        }
        drafts
    }
}

/// Applies membership changes in order.
async fn apply_changes(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    group: Uuid,
    changes: &[MemberChange],
) -> Result<Moved, GroupError> {
    let mut moved = Moved::default();
    for change in changes {
        match change {
            MemberChange::Add(ids) => moved.join(insert_members(conn, tenant, group, ids).await?),
            MemberChange::Remove(ids) => {
                moved.leave(delete_members(conn, tenant, group, ids).await?)
            }
            MemberChange::RemoveAll => moved.leave(delete_all_members(conn, tenant, group).await?),
            MemberChange::Replace(ids) => {
                moved.leave(delete_members_except(conn, tenant, group, ids).await?);
                moved.join(insert_members(conn, tenant, group, ids).await?);
            }
        }
    }
    Ok(moved)
}

/// The policy a group write computes ACCESS_CHANGED with, read as the
/// tenant has it committed and locked against a policy update (see
/// [`access::locked_policy`]; the caller's token may carry an older copy),
/// as the write's first statement, before any user or group row: the
/// policy update locks the tenant row, then synthetic group rows. None,
/// and no statement, when the write can change no one's access.
async fn access_policy(
    tx: &mut AsyncPgConnection,
    tenant: Uuid,
    can_change_access: bool,
) -> Result<Option<ProvisioningPolicy>, StoreError> {
    if !can_change_access {
        return Ok(None);
    }
    Ok(Some(access::locked_policy(tx, tenant).await?))
}

/// ACCESS_CHANGED of the users whose access a write of group `id` changed
/// under `policy` (see [`events::access::group_write`]); nothing when there
/// is none: [`access_policy`] reads none only for a write that can change
/// no one's access.
async fn access_events(
    tx: &mut AsyncPgConnection,
    tenant: Uuid,
    policy: Option<&ProvisioningPolicy>,
    id: Uuid,
    names: (Option<&str>, Option<&str>),
    moved: &Moved,
) -> Result<Vec<Draft>, StoreError> {
    let Some(policy) = policy else {
        return Ok(Vec::new());
    };
    let change = GroupChange {
        group: id,
        old_name: names.0,
        new_name: names.1,
        joined: &moved.joined,
        left: &moved.left,
    };
    access::group_write(tx, tenant, policy, &change).await
}

/// A group write's events: GROUP_UPDATED when an attribute changed, then
/// who joined and who left.
fn update_events(old: &GroupRow, new: &GroupRow, moved: &Moved) -> Vec<Draft> {
    let id = new.group_id;
    let changes = events::diff(&to_document(id, &old.data()), &to_document(id, &new.data()));
    let mut drafts = Vec::new();
    if !changes.is_empty() {
        drafts.push(
            Draft::new(EventType::GroupUpdated, ResourceType::Group, id).with_changes(changes),
        );
    }
    drafts.extend(moved.events(id));
    drafts
}

/// [`update_events`], then ACCESS_CHANGED of the users it concerns.
async fn write_events(
    tx: &mut AsyncPgConnection,
    tenant: Uuid,
    policy: Option<&ProvisioningPolicy>,
    old: &GroupRow,
    new: &GroupRow,
    moved: &Moved,
) -> Result<Vec<Draft>, StoreError> {
    let mut drafts = update_events(old, new, moved);
    let names = (
        Some(old.display_name.as_str()),
        Some(new.display_name.as_str()),
    );
    drafts.extend(access_events(tx, tenant, policy, new.group_id, names, moved).await?);
    Ok(drafts)
}

/// Writes the group's attributes, moves member_count by `delta` and bumps
/// the version, on the row locked by [`lock`].
async fn update(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    id: Uuid,
    group: &GroupData,
    delta: i64,
) -> Result<GroupRow, GroupError> {
    diesel::update(
        groups::table
            .filter(groups::tenant_id.eq(tenant))
            .filter(groups::group_id.eq(id)),
    )
    .set((
        writable(group),
        groups::member_count.eq(groups::member_count + delta),
        groups::version.eq(groups::version + 1),
        groups::updated_at.eq(diesel::dsl::now),
    ))
    .returning(GroupRow::as_returning())
    .get_result(conn)
    .await
    .map_err(|e| write_error::<Groups>(e, &group.display_name).into())
}

/// A new group with its members (`members` sorted, without duplicates).
pub(crate) async fn create(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    origin: &Origin,
    group: &GroupData,
    members: &[Uuid],
) -> Result<GroupRow, GroupError> {
    let id = Uuid::new_v4();
    conn.transaction(async |tx| {
        // A group without members gives no one anything yet.
        let policy = access_policy(tx, tenant, !members.is_empty()).await?;
        lock_users(tx, tenant, members).await?;
        // Every member is a locked live user and the group is new: each inserts.
        let row = diesel::insert_into(groups::table)
            .values((
                groups::tenant_id.eq(tenant),
                groups::group_id.eq(id),
                writable(group),
                groups::member_count.eq(members.len() as i64),
            ))
            .returning(GroupRow::as_returning())
            .get_result(tx)
            .await
            .map_err(|e| write_error::<Groups>(e, &group.display_name))?;
        let mut moved = Moved::default();
        moved.join(insert_members(tx, tenant, id, members).await?);
        let created = Draft::new(EventType::GroupCreated, ResourceType::Group, id).with_changes(
            events::diff(&Default::default(), &to_document(id, &row.data())),
        );
        let mut drafts = vec![created];
        drafts.extend(moved.events(id));
        let name = Some(row.display_name.as_str());
        drafts.extend(access_events(tx, tenant, policy.as_ref(), id, (None, name), &moved).await?);
        events::store::record(tx, tenant, origin, &drafts).await?;
        Ok(row)
    })
    .await
}

/// PUT: attributes and the whole member set become what is given.
pub(crate) async fn replace(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    origin: &Origin,
    id: Uuid,
    etag: &str,
    group: &GroupData,
    members: &[Uuid],
) -> Result<GroupRow, GroupError> {
    conn.transaction(async |tx| {
        let policy = access_policy(tx, tenant, true).await?;
        lock_users(tx, tenant, members).await?;
        let row = lock::<Groups>(tx, tenant, id, etag).await?;
        keep_synthetic_name(&row, group)?;
        let moved =
            apply_changes(tx, tenant, id, &[MemberChange::Replace(members.to_vec())]).await?;
        let new = update(tx, tenant, id, group, moved.delta()).await?;
        let drafts = write_events(tx, tenant, policy.as_ref(), &row, &new, &moved).await?;
        events::store::record(tx, tenant, origin, &drafts).await?;
        Ok(new)
    })
    .await
}

/// PATCH (and AddMembers/RemoveMembers): all operations or none.
pub(crate) async fn patch(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    origin: &Origin,
    id: Uuid,
    etag: &str,
    plan: &GroupPatch,
) -> Result<GroupRow, GroupError> {
    conn.transaction(async |tx| {
        let policy = access_policy(tx, tenant, plan.can_change_access()).await?;
        lock_users(tx, tenant, &plan.added_ids()).await?;
        let row = lock::<Groups>(tx, tenant, id, etag).await?;
        let group = apply_attributes(id, &row.data(), &plan.attributes)?;
        keep_synthetic_name(&row, &group)?;
        let moved = apply_changes(tx, tenant, id, &plan.members).await?;
        let new = update(tx, tenant, id, &group, moved.delta()).await?;
        let drafts = write_events(tx, tenant, policy.as_ref(), &row, &new, &moved).await?;
        events::store::record(tx, tenant, origin, &drafts).await?;
        Ok(new)
    })
    .await
}

/// DELETE: the group and its memberships; users stay. GROUP_DELETED (the
/// memberships end with the group: no MEMBER_REMOVED), then ACCESS_CHANGED
/// of the members whose access the group gave.
pub(crate) async fn delete(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    origin: &Origin,
    id: Uuid,
    etag: &str,
) -> Result<(), GroupError> {
    conn.transaction(async |tx| {
        let policy = access_policy(tx, tenant, true).await?;
        let row = lock::<Groups>(tx, tenant, id, etag).await?;
        if row.synthetic {
            return Err(ResourceError::PolicyViolation(format!(
                "synthetic_groups: '{}' is a synthetic group of this tenant and cannot be \
                 deleted; turn the policy off first",
                row.display_name
            ))
            .into());
        }
        let mut moved = Moved::default();
        moved.leave(delete_all_members(tx, tenant, id).await?);
        diesel::delete(
            groups::table
                .filter(groups::tenant_id.eq(tenant))
                .filter(groups::group_id.eq(id)),
        )
        .execute(tx)
        .await?;
        let mut drafts = vec![Draft::new(EventType::GroupDeleted, ResourceType::Group, id)];
        let names = (Some(row.display_name.as_str()), None);
        drafts.extend(access_events(tx, tenant, policy.as_ref(), id, names, &moved).await?);
        events::store::record(tx, tenant, origin, &drafts).await?;
        Ok(())
    })
    .await
}

/// Makes the tenant's synthetic groups exist when its policy keeps them (a
/// group already named so becomes synthetic), and ordinary groups again
/// when it does not. Returns GROUP_CREATED of each group it made.
pub(crate) async fn ensure_synthetic(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    policy: &ProvisioningPolicy,
) -> Result<Vec<Draft>, StoreError> {
    if !policy.synthetic_groups {
        diesel::update(
            groups::table
                .filter(groups::tenant_id.eq(tenant))
                .filter(groups::synthetic),
        )
        .set(groups::synthetic.eq(false))
        .execute(conn)
        .await?;
        return Ok(Vec::new());
    }
    let mut drafts = Vec::new();
    for (name, _) in SYNTHETIC_GROUPS {
        // `xmax = 0` tells a row this statement inserted from one it updated.
        let made: Vec<Made> = diesel::sql_query(
            "INSERT INTO groups (tenant_id, group_id, display_name, synthetic) \
             VALUES ($1, $2, $3, true) \
             ON CONFLICT (tenant_id, lower(display_name)) DO UPDATE SET synthetic = true \
             RETURNING group_id, display_name, xmax = 0 AS inserted",
        )
        .bind::<sql_types::Uuid, _>(tenant)
        .bind::<sql_types::Uuid, _>(Uuid::new_v4())
        .bind::<Text, _>(name)
        .load(conn)
        .await?;
        for group in made.into_iter().filter(|m| m.inserted) {
            let data = GroupData {
                display_name: group.display_name,
                ..GroupData::default()
            };
            let document = to_document(group.group_id, &data);
            drafts.push(
                Draft::new(EventType::GroupCreated, ResourceType::Group, group.group_id)
                    .with_changes(events::diff(&Default::default(), &document)),
            );
        }
    }
    Ok(drafts)
}

/// A group [`ensure_synthetic`] wrote, and whether it made it.
#[derive(QueryableByName)]
struct Made {
    #[diesel(sql_type = sql_types::Uuid)]
    group_id: Uuid,
    #[diesel(sql_type = Text)]
    display_name: String,
    #[diesel(sql_type = sql_types::Bool)]
    inserted: bool,
}

/// A member with the columns its display name is made of.
#[derive(Debug, Queryable)]
pub(crate) struct MemberRow {
    pub user_id: Uuid,
    pub user_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name_formatted: Option<String>,
    pub display_name: Option<String>,
}

/// Up to `limit` members of a group with user ids after `after`, in user id
/// order: a keyset page, one primary key range scan whatever the offset.
pub(crate) async fn members_page(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    group: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<MemberRow>, GroupError> {
    let exists: bool = diesel::select(diesel::dsl::exists(
        groups::table
            .filter(groups::tenant_id.eq(tenant))
            .filter(groups::group_id.eq(group)),
    ))
    .get_result(conn)
    .await?;
    if !exists {
        return Err(not_found::<Groups>(group).into());
    }
    let mut query = group_members::table
        .inner_join(
            users::table.on(users::tenant_id
                .eq(group_members::tenant_id)
                .and(users::user_id.eq(group_members::user_id))),
        )
        .filter(group_members::tenant_id.eq(tenant))
        .filter(group_members::group_id.eq(group))
        .select((
            group_members::user_id,
            users::user_name,
            users::given_name,
            users::family_name,
            users::name_formatted,
            users::display_name,
        ))
        .order(group_members::user_id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        // The bound on users too (the planner does not carry `>` across the
        // join): a merge join then starts at the page, not at the tenant's
        // first user.
        query = query
            .filter(group_members::user_id.gt(after))
            .filter(users::user_id.gt(after));
    }
    Ok(query.load::<MemberRow>(conn).await?)
}

/// The groups (id, displayName) of a live user, by displayName.
pub(crate) async fn user_groups(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    user: Uuid,
) -> Result<Vec<(Uuid, String)>, GroupError> {
    // Through the primary key; a tombstone is told apart after.
    let live: Option<bool> = users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::user_id.eq(user))
        .select(users::deleted_at.is_null())
        .get_result(conn)
        .await
        .optional()?;
    if live != Some(true) {
        return Err(GroupError::UserNotFound(user.to_string()));
    }
    Ok(memberships::groups_of_users(conn, tenant, &[user])
        .await?
        .into_iter()
        .map(|(_, group, name)| (group, name))
        .collect())
}

/// Removes every membership of `user` inside the caller's transaction (the
/// user's DELETE, which holds the user row FOR UPDATE, so no membership of
/// it can appear meanwhile) and moves the member_count of its groups.
/// Returns MEMBER_REMOVED of each group the user left, in group id order.
pub(crate) async fn remove_user(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    user: Uuid,
) -> Result<Vec<Draft>, StoreError> {
    let group_ids: Vec<Uuid> = group_members::table
        .filter(group_members::tenant_id.eq(tenant))
        .filter(group_members::user_id.eq(user))
        .select(group_members::group_id)
        .load(conn)
        .await?;
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    // Group rows in id order: concurrent deletes of users sharing groups
    // take them in the same order.
    groups::table
        .filter(groups::tenant_id.eq(tenant))
        .filter(groups::group_id.eq_any(&group_ids))
        .select(groups::group_id)
        .order(groups::group_id)
        .for_update()
        .execute(conn)
        .await?;
    let mut removed: Vec<Uuid> = diesel::delete(
        group_members::table
            .filter(group_members::tenant_id.eq(tenant))
            .filter(group_members::user_id.eq(user)),
    )
    .returning(group_members::group_id)
    .get_results(conn)
    .await?;
    diesel::update(
        groups::table
            .filter(groups::tenant_id.eq(tenant))
            .filter(groups::group_id.eq_any(&removed)),
    )
    .set((
        groups::member_count.eq(groups::member_count - 1),
        groups::version.eq(groups::version + 1),
        groups::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    removed.sort_unstable();
    Ok(removed
        .into_iter()
        .flat_map(|group| {
            let mut moved = Moved::default();
            moved.leave(vec![user]);
            moved.events(group)
        })
        .collect())
}
