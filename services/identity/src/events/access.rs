//! ACCESS_CHANGED: a user's effective roles or organizations (see
//! `users::policy::effective_access`) before and after a write, computed
//! inside the write's transaction for the users the write can touch.
//!
//! The affected users are found set-wise, and their standing and groups
//! read in chunks of [`CHUNK`] users (two queries a chunk), so a policy
//! change on a tenant of 100,000 members is a few dozen statements, not one
//! per user; the events then go to [`super::store::record`] in one call.
//!
//! The policy a write computes with is the tenant's as committed, read by
//! [`locked_policy`] in the write's transaction, never the one the caller's
//! token lookup carries: that copy may be up to the token cache's TTL old
//! on another replica, and even a fresh one races a policy update. The read
//! holds the tenant row FOR SHARE, which conflicts with the FOR UPDATE the
//! policy update takes first ([`crate::tenants::store::lock`]), so the two
//! serialise whichever comes first: a write waiting for an update reads
//! the new policy (READ COMMITTED returns the newest row version after the
//! wait), and an update waiting for a write finds its memberships committed
//! when [`policy_change`] reads them. Either way every user whose access
//! changed gets an ACCESS_CHANGED from one of the two.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use identity_proto::v1::{EventType, GroupRef, ProvisioningPolicy, ResourceType};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::{Draft, change};
use crate::db::StoreError;
use crate::groups::memberships::groups_of_users;
use crate::schema::{group_members, groups, tenants, users};
use crate::tenants::policy as tenant_policy;
use crate::users::policy::effective_access;

/// Users read per round trip.
const CHUNK: usize = 10_000;

/// The tenant's policy as committed now, its row held FOR SHARE until the
/// transaction ends, so no policy update commits in between (see the
/// module comment). Called before the write locks any group row: the
/// policy update locks the tenant row, then synthetic group rows. One
/// primary key probe, prepared once per connection (a static query).
pub(crate) async fn locked_policy(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
) -> Result<ProvisioningPolicy, StoreError> {
    let policy: Json = tenants::table
        .filter(tenants::tenant_id.eq(tenant))
        .select(tenants::policy)
        .for_share()
        .get_result(conn)
        .await?;
    Ok(tenant_policy::from_json(&policy))
}

/// Effective roles and organizations, each sorted and without duplicates.
pub(crate) type Access = (Vec<String>, Vec<String>);

/// What a user's effective access is computed from.
#[derive(Debug, Clone)]
pub(crate) struct Standing {
    pub tenant_member: bool,
    pub roles: Vec<String>,
    pub organizations: Vec<String>,
}

/// A user's standing and groups as the transaction sees them now.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    pub user_id: Uuid,
    pub standing: Standing,
    pub groups: Vec<GroupRef>,
}

impl Inputs {
    pub(crate) fn access(&self, policy: &ProvisioningPolicy) -> Access {
        access_of(policy, &self.standing, &self.groups)
    }
}

pub(crate) fn access_of(
    policy: &ProvisioningPolicy,
    standing: &Standing,
    groups: &[GroupRef],
) -> Access {
    effective_access(
        policy,
        standing.tenant_member,
        &standing.roles,
        &standing.organizations,
        groups,
    )
}

/// ACCESS_CHANGED of `user`, naming only what changed; `None` when nothing did.
pub(crate) fn changed(user: Uuid, before: &Access, after: &Access) -> Option<Draft> {
    let list = |items: &[String]| Json::Array(items.iter().cloned().map(Json::String).collect());
    let mut changes = Map::new();
    for (name, old, new) in [
        ("roles", &before.0, &after.0),
        ("organizations", &before.1, &after.1),
    ] {
        if old != new {
            changes.insert(name.into(), change(Some(list(old)), Some(list(new))));
        }
    }
    (!changes.is_empty()).then(|| {
        Draft::new(EventType::AccessChanged, ResourceType::User, user).with_changes(changes)
    })
}

/// The columns a user's standing is read from.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct StandingRow {
    user_id: Uuid,
    tenant_member: bool,
    roles: Vec<String>,
    organizations: Vec<String>,
    deleted_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The standing and groups of the live users among `ids`, in chunks.
pub(crate) async fn load(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Inputs>, StoreError> {
    let mut inputs = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<StandingRow> = users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(users::user_id.eq_any(chunk))
            .select(StandingRow::as_select())
            .load(conn)
            .await?;
        let mut groups: HashMap<Uuid, Vec<GroupRef>> = HashMap::new();
        for (user, group, display_name) in groups_of_users(conn, tenant, chunk).await? {
            groups.entry(user).or_default().push(GroupRef {
                id: group.to_string(),
                display_name,
            });
        }
        // Tombstones hold nothing; they are told apart here (see `users::store`).
        inputs.extend(
            rows.into_iter()
                .filter(|row| row.deleted_at.is_none())
                .map(|row| Inputs {
                    user_id: row.user_id,
                    standing: Standing {
                        tenant_member: row.tenant_member,
                        roles: row.roles,
                        organizations: row.organizations,
                    },
                    groups: groups.remove(&row.user_id).unwrap_or_default(),
                }),
        );
    }
    inputs.sort_by_key(|i| i.user_id);
    Ok(inputs)
}

/// What one group adds to a member's access under `policy`.
fn contribution(policy: &ProvisioningPolicy, group: &GroupRef) -> Access {
    let member = Standing {
        tenant_member: true,
        roles: Vec::new(),
        organizations: Vec::new(),
    };
    access_of(policy, &member, std::slice::from_ref(group))
}

/// A group's membership or name change, already written in the transaction.
#[derive(Clone, Copy)]
pub(crate) struct GroupChange<'a> {
    pub group: Uuid,
    /// Its name before; None: the group is new.
    pub old_name: Option<&'a str>,
    /// Its name now; None: the group is deleted.
    pub new_name: Option<&'a str>,
    pub joined: &'a HashSet<Uuid>,
    pub left: &'a HashSet<Uuid>,
}

/// ACCESS_CHANGED for each user whose access this changed: those who
/// moved, and every member when a rename makes a mapping apply or stop
/// applying. Nothing is read when the group gives nothing either way.
pub(crate) async fn group_write(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    policy: &ProvisioningPolicy,
    write: &GroupChange<'_>,
) -> Result<Vec<Draft>, StoreError> {
    let GroupChange {
        group,
        old_name,
        new_name,
        joined,
        left,
    } = *write;
    let named = |name: &str| GroupRef {
        id: group.to_string(),
        display_name: name.to_owned(),
    };
    let (old, new) = (old_name.map(named), new_name.map(named));
    let gives = |g: &Option<GroupRef>| g.as_ref().map(|g| contribution(policy, g));
    let (gave, gives_now) = (gives(&old), gives(&new));
    let nothing = |access: &Option<Access>| {
        access
            .as_ref()
            .is_none_or(|(roles, organizations)| roles.is_empty() && organizations.is_empty())
    };
    if nothing(&gave) && nothing(&gives_now) {
        return Ok(Vec::new());
    }
    let mut affected: HashSet<Uuid> = joined.union(left).copied().collect();
    if old.is_some() && new.is_some() && gave != gives_now {
        let members: Vec<Uuid> = group_members::table
            .filter(group_members::tenant_id.eq(tenant))
            .filter(group_members::group_id.eq(group))
            .select(group_members::user_id)
            .load(conn)
            .await?;
        affected.extend(members);
    }
    let mut ids: Vec<Uuid> = affected.into_iter().collect();
    ids.sort_unstable();
    let group_id = group.to_string();
    let mut drafts = Vec::new();
    for user in load(conn, tenant, &ids).await? {
        let after = user.access(policy);
        let mut groups: Vec<GroupRef> = user
            .groups
            .iter()
            .filter(|g| g.id != group_id)
            .cloned()
            .collect();
        if let Some(old) = &old
            && !joined.contains(&user.user_id)
        {
            groups.push(old.clone());
        }
        let before = access_of(policy, &user.standing, &groups);
        drafts.extend(changed(user.user_id, &before, &after));
    }
    Ok(drafts)
}

/// The tenant's policy went from `before` to `after`: ACCESS_CHANGED for
/// every member of a group whose mapping (or synthetic role) changed and
/// whose access it changed. A changed default role or organization changes
/// no one's access: those are given to users as they join.
pub(crate) async fn policy_change(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    before: &ProvisioningPolicy,
    after: &ProvisioningPolicy,
) -> Result<Vec<Draft>, StoreError> {
    if before.group_mappings == after.group_mappings
        && before.synthetic_groups == after.synthetic_groups
    {
        return Ok(Vec::new());
    }
    let all: Vec<(Uuid, String)> = groups::table
        .filter(groups::tenant_id.eq(tenant))
        .select((groups::group_id, groups::display_name))
        .load(conn)
        .await?;
    let concerned: Vec<Uuid> = all
        .into_iter()
        .filter(|(id, display_name)| {
            let group = GroupRef {
                id: id.to_string(),
                display_name: display_name.clone(),
            };
            contribution(before, &group) != contribution(after, &group)
        })
        .map(|(id, _)| id)
        .collect();
    if concerned.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<Uuid> = group_members::table
        .filter(group_members::tenant_id.eq(tenant))
        .filter(group_members::group_id.eq_any(&concerned))
        .select(group_members::user_id)
        .distinct()
        .load(conn)
        .await?;
    ids.sort_unstable();
    let mut drafts = Vec::new();
    for user in load(conn, tenant, &ids).await? {
        drafts.extend(changed(
            user.user_id,
            &user.access(before),
            &user.access(after),
        ));
    }
    Ok(drafts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn access(roles: &[&str], organizations: &[&str]) -> Access {
        let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        (owned(roles), owned(organizations))
    }

    #[test]
    fn only_what_changed_is_named() {
        let user = Uuid::from_u128(7);
        let before = access(&["member"], &["acme"]);
        assert!(changed(user, &before, &before).is_none());
        let after = access(&["developer", "member"], &["acme"]);
        let Some(draft) = changed(user, &before, &after) else {
            panic!("roles changed")
        };
        assert_eq!(draft.kind, EventType::AccessChanged);
        assert_eq!(draft.resource, ResourceType::User);
        assert_eq!(draft.resource_id, user);
        assert_eq!(
            Json::Object(draft.changes),
            json!({"roles": {"before": ["member"], "after": ["developer", "member"]}})
        );
    }

    #[test]
    fn a_group_contributes_by_name_or_id() {
        let policy = ProvisioningPolicy {
            group_mappings: vec![identity_proto::v1::GroupMapping {
                group: "engineering".into(),
                role: "developer".into(),
                organization: String::new(),
            }],
            ..ProvisioningPolicy::default()
        };
        let group = |name: &str| GroupRef {
            id: "g".into(),
            display_name: name.into(),
        };
        assert_eq!(
            contribution(&policy, &group("Engineering")),
            access(&["developer"], &[])
        );
        assert_eq!(contribution(&policy, &group("Sales")), access(&[], &[]));
    }
}
