//! User rows. Every write is one transaction, which records its event last
//! (see `events::store`); uniqueness of userName is the unique index's job,
//! never a read-then-check.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use identity_proto::v1::{
    DeleteMode, DeprovisionAction, EventType, ExistingPersonPolicy, Name, NamePolicy,
    PatchOperation, ProvisioningPolicy, ResourceType, UserSource,
};
use serde_json::Value as Json;
use uuid::Uuid;

use super::{
    Enterprise, UserData, UserError, document, email_from_json, email_to_json, full_name, policy,
};
use crate::attr::Resource;
use crate::auth::{Caller, TenantRef};
use crate::db::StoreError;
use crate::events::store::RecordEvents;
use crate::events::{self, Draft, Origin, access};
use crate::groups;
use crate::patch;
use crate::people::{self, Person};
use crate::schema::users;
use crate::store::{ResourceError, StoredResource, lock, not_found, stored_bag, write_error};

/// userName is unique per tenant, case-insensitively, among live users.
const USER_NAME_INDEX: &str = "users_live_user_name_key";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(crate) struct UserRow {
    pub user_id: Uuid,
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub name_formatted: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub honorific_prefix: Option<String>,
    pub honorific_suffix: Option<String>,
    pub emails: Json,
    pub active: bool,
    pub employee_number: Option<String>,
    pub cost_center: Option<String>,
    pub organization: Option<String>,
    pub division: Option<String>,
    pub department: Option<String>,
    pub manager_id: Option<Uuid>,
    pub attributes: Json,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub person_id: Option<Uuid>,
    pub login_email: Option<String>,
    pub source: String,
    pub tenant_member: bool,
    pub roles: Vec<String>,
    pub organizations: Vec<String>,
}

/// Users in the generic resource path: their rows, tombstones kept apart
/// from live users.
pub(crate) struct Users;

impl StoredResource for Users {
    const KIND: &'static str = "user";
    const RESOURCE: Resource = Resource::User;
    const UNIQUE_INDEX: &'static str = USER_NAME_INDEX;
    const UNIQUE_ATTRIBUTE: &'static str = "userName";

    type Row = UserRow;
    type Query = users::BoxedQuery<'static, Pg>;

    fn id(row: &UserRow) -> Uuid {
        row.user_id
    }

    fn version(row: &UserRow) -> i64 {
        row.version
    }

    fn scoped(tenant: Uuid, show_deleted: bool) -> Self::Query {
        let rows = users::table
            .filter(users::tenant_id.eq(tenant))
            .into_boxed();
        if show_deleted {
            rows
        } else {
            // Not `deleted_at IS NULL`: without statistics the planner takes
            // that for a rare row (0.5%), so it prefers the partial userName
            // index and a sort of the whole tenant to the index that reads a
            // page in order (600 ms instead of 0.1 ms for a first page of
            // 1,000,000 users). A CASE is opaque to it: half the rows, and
            // no partial index fits, whatever the statistics.
            rows.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "CASE WHEN users.deleted_at IS NULL THEN true ELSE false END",
            ))
        }
    }

    fn with_id(query: Self::Query, id: Uuid) -> Self::Query {
        query.filter(users::user_id.eq(id))
    }

    fn is_tombstone(row: &UserRow) -> bool {
        row.deleted_at.is_some()
    }
}

impl UserRow {
    /// How the user joined the tenant; the SCIM-managed lock protects
    /// users an identity provider created.
    pub(crate) fn joined_by(&self) -> UserSource {
        if self.source == SOURCE_SCIM {
            UserSource::Scim
        } else {
            UserSource::Direct
        }
    }

    /// The writable content of the row.
    pub(crate) fn data(&self) -> UserData {
        let emails = match &self.emails {
            Json::Array(items) => items
                .iter()
                .filter_map(|e| email_from_json(e).ok())
                .collect(),
            _ => Vec::new(),
        };
        UserData {
            user_name: self.user_name.clone(),
            external_id: self.external_id.clone(),
            name: self.name(),
            display_name: self.display_name.clone(),
            emails,
            active: self.active,
            enterprise: Enterprise {
                employee_number: self.employee_number.clone(),
                cost_center: self.cost_center.clone(),
                organization: self.organization.clone(),
                division: self.division.clone(),
                department: self.department.clone(),
            },
            manager_id: self.manager_id,
            attributes: stored_bag(&self.attributes),
        }
    }

    pub(crate) fn name(&self) -> Name {
        Name {
            formatted: self.name_formatted.clone(),
            family_name: self.family_name.clone(),
            given_name: self.given_name.clone(),
            middle_name: self.middle_name.clone(),
            honorific_prefix: self.honorific_prefix.clone(),
            honorific_suffix: self.honorific_suffix.clone(),
        }
    }
}

/// Every writable column; on update, absent values clear the column (PUT).
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
struct Writable<'a> {
    user_name: &'a str,
    external_id: Option<&'a str>,
    display_name: Option<&'a str>,
    name_formatted: Option<&'a str>,
    family_name: Option<&'a str>,
    given_name: Option<&'a str>,
    middle_name: Option<&'a str>,
    honorific_prefix: Option<&'a str>,
    honorific_suffix: Option<&'a str>,
    emails: Json,
    active: bool,
    employee_number: Option<&'a str>,
    cost_center: Option<&'a str>,
    organization: Option<&'a str>,
    division: Option<&'a str>,
    department: Option<&'a str>,
    manager_id: Option<Uuid>,
    attributes: Json,
}

fn writable(user: &UserData) -> Writable<'_> {
    Writable {
        user_name: &user.user_name,
        external_id: user.external_id.as_deref(),
        display_name: user.display_name.as_deref(),
        name_formatted: user.name.formatted.as_deref(),
        family_name: user.name.family_name.as_deref(),
        given_name: user.name.given_name.as_deref(),
        middle_name: user.name.middle_name.as_deref(),
        honorific_prefix: user.name.honorific_prefix.as_deref(),
        honorific_suffix: user.name.honorific_suffix.as_deref(),
        emails: Json::Array(user.emails.iter().map(email_to_json).collect()),
        active: user.active,
        employee_number: user.enterprise.employee_number.as_deref(),
        cost_center: user.enterprise.cost_center.as_deref(),
        organization: user.enterprise.organization.as_deref(),
        division: user.enterprise.division.as_deref(),
        department: user.enterprise.department.as_deref(),
        manager_id: user.manager_id,
        attributes: Json::Object(user.attributes.clone()),
    }
}

/// A user's place in the tenant, which the policy, not the client, decides.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
struct Standing<'a> {
    person_id: Option<Uuid>,
    login_email: Option<&'a str>,
    source: &'a str,
    tenant_member: bool,
    roles: Vec<String>,
    organizations: Vec<String>,
}

/// `users.source` values (see [`UserRow::joined_by`]).
const SOURCE_SCIM: &str = "scim";
const SOURCE_DIRECT: &str = "direct";

/// Who writes, and in which tenant under which policy.
pub(crate) struct WriteScope<'a> {
    pub tenant: &'a TenantRef,
    pub caller: &'a Caller,
    /// What the write's events record as their origin.
    pub origin: &'a Origin,
}

impl WriteScope<'_> {
    /// Records the write's events as the transaction's last statement.
    async fn record(&self, tx: &mut AsyncPgConnection, drafts: &[Draft]) -> Result<(), StoreError> {
        events::store::record(tx, self.tenant.id, self.origin, drafts).await
    }

    /// The events of a new row (see [`created_events`]).
    async fn record_created(
        &self,
        tx: &mut AsyncPgConnection,
        row: &UserRow,
    ) -> Result<(), StoreError> {
        let drafts = created_events(self.tenant, row.user_id, &row.data(), &standing_of(row));
        self.record(tx, &drafts).await
    }
}

/// USER_CREATED of a new user, and ACCESS_CHANGED when the policy gave
/// them a default role or organization: from what the row is made of, so
/// that a create of one statement can record them in it.
fn created_events(
    tenant: &TenantRef,
    id: Uuid,
    data: &UserData,
    standing: &access::Standing,
) -> Vec<Draft> {
    let document = document::to_document(id, data);
    let mut drafts = vec![
        Draft::new(EventType::UserCreated, ResourceType::User, id)
            .with_changes(events::diff(&Default::default(), &document)),
    ];
    let after = access::access_of(&tenant.policy, standing, &[]);
    drafts.extend(access::changed(id, &Default::default(), &after));
    drafts
}

/// What the row's effective access is computed from, groups aside.
fn standing_of(row: &UserRow) -> access::Standing {
    access::Standing {
        tenant_member: row.tenant_member,
        roles: row.roles.clone(),
        organizations: row.organizations.clone(),
    }
}

/// The user's effective access under `policy` as the transaction sees it
/// now; nothing for a tombstone or a user that is gone.
async fn current_access(
    tx: &mut AsyncPgConnection,
    tenant: Uuid,
    policy: &ProvisioningPolicy,
    id: Uuid,
) -> Result<access::Access, StoreError> {
    Ok(access::load(tx, tenant, &[id])
        .await?
        .into_iter()
        .next()
        .map(|user| user.access(policy))
        .unwrap_or_default())
}

/// A user's event, with the attributes that differ between `before` and
/// `after`.
fn user_event(kind: EventType, before: &UserRow, after: &UserRow) -> Draft {
    let document = |row: &UserRow| document::to_document(row.user_id, &row.data());
    Draft::new(kind, ResourceType::User, after.user_id)
        .with_changes(events::diff(&document(before), &document(after)))
}

/// A manager must be a live user of the same tenant, other than the user.
async fn check_manager(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    user: Uuid,
    manager: Option<Uuid>,
) -> Result<(), UserError> {
    let Some(manager) = manager else {
        return Ok(());
    };
    if manager == user {
        return Err(
            ResourceError::InvalidValue("a user cannot be their own manager".into()).into(),
        );
    }
    // Through the primary key; a tombstone is told apart after (see `get`).
    let live: Option<bool> = users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::user_id.eq(manager))
        .select(users::deleted_at.is_null())
        .get_result(conn)
        .await
        .optional()?;
    if live == Some(true) {
        Ok(())
    } else {
        Err(ResourceError::InvalidValue(format!(
            "manager '{manager}' is not a user of this tenant"
        ))
        .into())
    }
}

/// What a create wrote.
pub(crate) enum Created {
    /// A new row: the user is in no group yet.
    Inserted(UserRow),
    /// The row of a user who joined outside SCIM, adopted by a SCIM create.
    Adopted(UserRow),
}

/// A new user under the tenant's policy. A SCIM create of a person the tenant does not
/// manage follows the claim policy (see [`claim`]): refused, or linked (a
/// person who joined this tenant outside SCIM is adopted: their row becomes
/// SCIM-managed).
pub(crate) async fn create(
    conn: &mut AsyncPgConnection,
    scope: &WriteScope<'_>,
    mut user: UserData,
) -> Result<Created, UserError> {
    let tenant = scope.tenant.id;
    let policy = &*scope.tenant.policy;
    policy::prepare(&mut user, policy)?;
    let user = &user;
    let id = Uuid::new_v4();
    let login = policy::login_email(user, policy);
    let source = if scope.caller.is_scim() {
        SOURCE_SCIM
    } else {
        SOURCE_DIRECT
    };
    let member =
        user.active || policy.deprovision() != DeprovisionAction::DeprovisionRemoveMembership;
    let (roles, organizations) = if member {
        policy::default_access(policy)
    } else {
        (Vec::new(), Vec::new())
    };
    let access = access::Standing {
        tenant_member: member,
        roles,
        organizations,
    };
    let standing = |person: Option<Uuid>| Standing {
        person_id: person,
        login_email: login.as_deref(),
        source,
        tenant_member: access.tenant_member,
        roles: access.roles.clone(),
        organizations: access.organizations.clone(),
    };
    // Most creates are of a person nobody has seen, with no manager to
    // check: one statement, with its events, and no transaction around it.
    if user.manager_id.is_none() {
        let drafts = created_events(scope.tenant, id, user, &access);
        let first_sight = FirstSight {
            tenant,
            id,
            person: Uuid::new_v4(),
            login: login.as_deref(),
            user: writable(user),
            standing: standing(None),
            events: RecordEvents::new(tenant, scope.origin, &drafts),
            returning: UserRow::as_select(),
        };
        let inserted: Option<UserRow> = first_sight
            .get_result(conn)
            .await
            .optional()
            .map_err(|e| write_error::<Users>(e, &user.user_name))?;
        if let Some(row) = inserted {
            return Ok(Created::Inserted(row));
        }
    }
    conn.transaction(async |tx| {
        let person = match &login {
            Some(email) => Some(people::get_or_create(tx, email).await?),
            None => None,
        };
        if let (Some(person), Some(email)) = (person, &login)
            && scope.caller.is_scim()
            && let Claim::Adopt(existing) = claim(tx, scope, person, email, None).await?
        {
            let row = lock::<Users>(tx, tenant, existing, "").await?;
            return Ok(Created::Adopted(
                write(tx, scope, &row, user.clone(), SOURCE_SCIM).await?,
            ));
        }
        check_manager(tx, tenant, id, user.manager_id).await?;
        let row = diesel::insert_into(users::table)
            .values((
                users::tenant_id.eq(tenant),
                users::user_id.eq(id),
                writable(user),
                standing(person.map(|p| p.id)),
            ))
            .returning(UserRow::as_returning())
            .get_result(tx)
            .await
            .map_err(|e| write_error::<Users>(e, &user.user_name))?;
        scope.record_created(tx, &row).await?;
        Ok(Created::Inserted(row))
    })
    .await
}

/// A create's user row, inserted only when its login address belongs to
/// nobody yet, together with the person it then names: claim protection
/// has nothing to ask of a person this statement makes (see [`claim`]).
/// Without a login address the row is inserted unconditionally. No row
/// back means the person exists, and the create takes the locked path in a
/// transaction instead. The user's events are a part of the statement,
/// inserted only with the user, so it needs no transaction of its own.
struct FirstSight<'a> {
    tenant: Uuid,
    id: Uuid,
    /// The id the person gets if this statement makes them.
    person: Uuid,
    login: Option<&'a str>,
    user: Writable<'a>,
    /// Its `person_id` is ignored: the person comes from the statement.
    standing: Standing<'a>,
    /// Inserted only with the user.
    events: RecordEvents<'a>,
    returning: diesel::dsl::AsSelect<UserRow, Pg>,
}

impl QueryId for FirstSight<'_> {
    type QueryId = FirstSight<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for FirstSight<'_> {
    type SqlType = <diesel::dsl::AsSelect<UserRow, Pg> as Expression>::SqlType;
}

impl QueryFragment<Pg> for FirstSight<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, Bool, Jsonb, Nullable, Text, Uuid as SqlUuid};
        // The SQL text is the same whether or not there is a login, so
        // each connection prepares it once: a NULL address inserts no
        // person and takes the user row as it is.
        out.push_sql("WITH new_person AS (INSERT INTO people (person_id, email) SELECT ");
        out.push_bind_param::<SqlUuid, _>(&self.person)?;
        out.push_sql(", address FROM (SELECT ");
        out.push_bind_param::<Nullable<Text>, _>(&self.login)?;
        out.push_sql(
            "::text AS address) AS login WHERE address IS NOT NULL \
             ON CONFLICT (email) DO NOTHING RETURNING person_id), \
             new_user AS (INSERT INTO users (tenant_id, user_id, user_name, external_id, display_name, \
             name_formatted, family_name, given_name, middle_name, honorific_prefix, \
             honorific_suffix, emails, active, employee_number, cost_center, organization, \
             division, department, manager_id, attributes, person_id, login_email, source, \
             tenant_member, roles, organizations) SELECT ",
        );
        let user = &self.user;
        let standing = &self.standing;
        out.push_bind_param::<SqlUuid, _>(&self.tenant)?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&user.user_name)?;
        for text in [
            &user.external_id,
            &user.display_name,
            &user.name_formatted,
            &user.family_name,
            &user.given_name,
            &user.middle_name,
            &user.honorific_prefix,
            &user.honorific_suffix,
        ] {
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(text)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Jsonb, _>(&user.emails)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&user.active)?;
        for text in [
            &user.employee_number,
            &user.cost_center,
            &user.organization,
            &user.division,
            &user.department,
        ] {
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(text)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&user.manager_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Jsonb, _>(&user.attributes)?;
        out.push_sql(", new_person.person_id, ");
        out.push_bind_param::<Nullable<Text>, _>(&standing.login_email)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&standing.source)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&standing.tenant_member)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&standing.roles)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&standing.organizations)?;
        // With a login the row needs the person this statement made; the
        // outer join keeps it when there is no login to make one of.
        out.push_sql(" FROM (SELECT 1) AS one LEFT JOIN new_person ON true WHERE ");
        out.push_bind_param::<Nullable<Text>, _>(&self.login)?;
        out.push_sql(
            "::text IS NULL OR new_person.person_id IS NOT NULL RETURNING *), new_events AS (",
        );
        self.events
            .walk_insert(out.reborrow(), "EXISTS (SELECT 1 FROM new_user)")?;
        out.push_sql(") SELECT ");
        self.returning.walk_ast(out.reborrow())?;
        out.push_sql(" FROM new_user AS users");
        Ok(())
    }
}

/// What claim protection lets a SCIM write do with a person.
enum Claim {
    /// Link the user to the person (or keep them linked).
    Link,
    /// Adopt this user of the tenant, who joined outside SCIM: the create
    /// becomes a write over their row.
    Adopt(Uuid),
}

/// Why claim protection refused, for the service's debug log only: the
/// identity provider gets one answer whatever the reason, so it cannot
/// learn whether an address exists in another tenant.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    JoinedOutsideScim,
    MemberOfAnotherTenant,
    DomainNotVerified,
}

/// Claim protection for a SCIM write that gives `user` (None on create) the
/// login address `email` of `person`, under the tenant's policy:
/// - `reject` refuses when the person joined this tenant outside SCIM or is
///   a member of another tenant;
/// - `link` links, adopting on create a user who joined this tenant outside
///   SCIM, but links to a member of another tenant only when the address's
///   domain is one of the tenant's verified domains; otherwise it refuses
///   as `reject` does.
///
/// The person's row is locked (by [`people::get_or_create`]), so no
/// membership appears meanwhile; a person this transaction made has none.
async fn claim(
    tx: &mut AsyncPgConnection,
    scope: &WriteScope<'_>,
    person: Person,
    email: &str,
    user: Option<Uuid>,
) -> Result<Claim, UserError> {
    if person.is_new {
        return Ok(Claim::Link);
    }
    let tenant = scope.tenant.id;
    let policy = &*scope.tenant.policy;
    let memberships = people::memberships(tx, person.id).await?;
    let others = memberships.iter().filter(|m| Some(m.user_id) != user);
    let mut joined_directly = None;
    let mut elsewhere = false;
    for membership in others {
        if membership.tenant_id != tenant {
            elsewhere = true;
        } else if membership.source == SOURCE_DIRECT {
            joined_directly = Some(membership.user_id);
        }
    }
    let refusal = match policy.existing_person() {
        ExistingPersonPolicy::ExistingPersonReject if joined_directly.is_some() => {
            Some(Refusal::JoinedOutsideScim)
        }
        ExistingPersonPolicy::ExistingPersonReject if elsewhere => {
            Some(Refusal::MemberOfAnotherTenant)
        }
        ExistingPersonPolicy::ExistingPersonLink
            if elsewhere && !policy::in_verified_domain(email, policy) =>
        {
            Some(Refusal::DomainNotVerified)
        }
        _ => None,
    };
    if let Some(reason) = refusal {
        tracing::debug!(
            tenant = %scope.tenant.slug,
            person = %person.id,
            ?reason,
            policy = policy.existing_person().as_str_name(),
            "claim refused"
        );
        return Err(UserError::Claimed);
    }
    Ok(match joined_directly {
        Some(existing) if user.is_none() => Claim::Adopt(existing),
        _ => Claim::Link,
    })
}

async fn update(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    id: Uuid,
    user: &UserData,
    standing: Standing<'_>,
) -> Result<UserRow, UserError> {
    check_manager(conn, tenant, id, user.manager_id).await?;
    diesel::update(
        users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(users::user_id.eq(id)),
    )
    .set((
        writable(user),
        standing,
        users::version.eq(users::version + 1),
        users::updated_at.eq(diesel::dsl::now),
    ))
    .returning(UserRow::as_returning())
    .get_result(conn)
    .await
    .map_err(|e| write_error::<Users>(e, &user.user_name).into())
}

/// Writes `user` over the locked row `old` under the tenant's policy:
/// identifiers, required attributes, the SCIM-managed lock, the person
/// link, and what `active` turning false or true does to the membership.
async fn write(
    tx: &mut AsyncPgConnection,
    scope: &WriteScope<'_>,
    old: &UserRow,
    mut user: UserData,
    source: &str,
) -> Result<UserRow, UserError> {
    let tenant = scope.tenant.id;
    let policy = &*scope.tenant.policy;
    let id = old.user_id;
    policy::normalize(&mut user, policy);
    let before = old.data();
    // Turning `active` alone never fails on attributes a later policy
    // requires: deprovisioning must always go through.
    let only_active_changed = UserData {
        active: before.active,
        ..user.clone()
    } == before;
    if !only_active_changed {
        policy::check_required(&user, policy)?;
    }
    policy::check_lock(
        scope.tenant,
        scope.caller,
        old.joined_by() == UserSource::Scim,
        &before,
        &user,
    )?;
    let login = policy::login_email(&user, policy);
    let person = if login == old.login_email {
        old.person_id
    } else {
        match &login {
            Some(email) => {
                let person = people::get_or_create(tx, email).await?;
                // A new address is a claim as much as a create is.
                if scope.caller.is_scim() && old.person_id != Some(person.id) {
                    claim(tx, scope, person, email, Some(id)).await?;
                }
                Some(person.id)
            }
            None => None,
        }
    };
    let deprovisioned = old.active && !user.active;
    let joins = user.active && !old.tenant_member;
    // Leaving or joining the tenant is the one way a user write changes
    // access: only then is it decided, and ACCESS_CHANGED computed, under
    // the policy as committed (see `access::locked_policy`; the token's
    // copy may be older).
    let committed = if deprovisioned || joins {
        Some(access::locked_policy(tx, tenant).await?)
    } else {
        None
    };
    let policy = committed.as_ref().unwrap_or(policy);
    let action = policy.deprovision();
    let (member, roles, organizations) =
        if deprovisioned && action == DeprovisionAction::DeprovisionRemoveMembership {
            (false, Vec::new(), Vec::new())
        } else if joins {
            let (roles, organizations) = policy::default_access(policy);
            (true, roles, organizations)
        } else {
            (
                old.tenant_member,
                old.roles.clone(),
                old.organizations.clone(),
            )
        };
    let soft_deleted = deprovisioned && action == DeprovisionAction::DeprovisionSoftDelete;
    // Only joining or leaving the tenant changes a user write's access.
    let access_before = if old.tenant_member != member || soft_deleted {
        Some(current_access(tx, tenant, policy, id).await?)
    } else {
        None
    };
    let mut left_groups = Vec::new();
    if old.tenant_member && !member {
        left_groups = groups::store::remove_user(tx, tenant, id).await?;
    }
    let standing = Standing {
        person_id: person,
        login_email: login.as_deref(),
        source,
        tenant_member: member,
        roles,
        organizations,
    };
    let mut row = update(tx, tenant, id, &user, standing).await?;
    if soft_deleted {
        let (tombstone, left) = tombstone(tx, tenant, &row).await?;
        row = tombstone;
        left_groups.extend(left);
    }
    let kind = match (old.active, row.active) {
        (true, false) if action == DeprovisionAction::DeprovisionSuspend => {
            EventType::UserDeactivated
        }
        (true, false) => EventType::UserDeprovisioned,
        (false, true) => EventType::UserReactivated,
        _ => EventType::UserUpdated,
    };
    let event = user_event(kind, old, &row);
    let mut drafts = Vec::new();
    // A write that changed nothing is no event.
    if kind != EventType::UserUpdated || !event.changes.is_empty() {
        drafts.push(event);
    }
    drafts.extend(left_groups);
    if let Some(before) = access_before {
        let after = current_access(tx, tenant, policy, id).await?;
        drafts.extend(access::changed(id, &before, &after));
    }
    scope.record(tx, &drafts).await?;
    Ok(row)
}

/// PUT: every writable attribute becomes what `user` says.
pub(crate) async fn replace(
    conn: &mut AsyncPgConnection,
    scope: &WriteScope<'_>,
    id: Uuid,
    etag: &str,
    user: &UserData,
) -> Result<UserRow, UserError> {
    conn.transaction(async |tx| {
        let old = lock::<Users>(tx, scope.tenant.id, id, etag).await?;
        write(tx, scope, &old, user.clone(), &old.source).await
    })
    .await
}

/// PATCH: all operations or none, on the row locked for this transaction.
pub(crate) async fn patch(
    conn: &mut AsyncPgConnection,
    scope: &WriteScope<'_>,
    id: Uuid,
    etag: &str,
    operations: &[PatchOperation],
) -> Result<UserRow, UserError> {
    conn.transaction(async |tx| {
        let old = lock::<Users>(tx, scope.tenant.id, id, etag).await?;
        let mut doc = document::to_document(id, &old.data());
        patch::apply(&document::USER, &mut doc, operations)?;
        let user = document::from_document(doc)?;
        write(tx, scope, &old, user, &old.source).await
    })
    .await
}

/// DELETE, as the tenant's policy says: a soft delete keeps a tombstone, a
/// hard delete removes the row. Either way the memberships go: USER_DELETED,
/// then MEMBER_REMOVED of each group the user was in. No ACCESS_CHANGED:
/// a deleted user holds nothing, which USER_DELETED says.
pub(crate) async fn delete(
    conn: &mut AsyncPgConnection,
    scope: &WriteScope<'_>,
    id: Uuid,
    etag: &str,
) -> Result<(), UserError> {
    let tenant = scope.tenant.id;
    conn.transaction(async |tx| {
        let row = lock::<Users>(tx, tenant, id, etag).await?;
        policy::check_lock_membership(
            scope.tenant,
            scope.caller,
            row.joined_by() == UserSource::Scim,
        )?;
        let left = match scope.tenant.policy.delete_mode() {
            DeleteMode::Soft => tombstone(tx, tenant, &row).await?.1,
            DeleteMode::Hard => {
                let left = groups::store::remove_user(tx, tenant, id).await?;
                diesel::delete(
                    users::table
                        .filter(users::tenant_id.eq(tenant))
                        .filter(users::user_id.eq(id)),
                )
                .execute(tx)
                .await?;
                if let Some(person) = row.person_id {
                    people::forget_if_unlinked(tx, person).await?;
                }
                left
            }
        };
        let mut drafts = vec![Draft::new(EventType::UserDeleted, ResourceType::User, id)];
        drafts.extend(left);
        scope.record(tx, &drafts).await?;
        Ok(())
    })
    .await
}

/// Turns the locked row into a tombstone: userName and email addresses are
/// replaced, so nothing reusable or personal stays in them, the person link
/// and memberships go (their MEMBER_REMOVED events come back with the row).
async fn tombstone(
    tx: &mut AsyncPgConnection,
    tenant: Uuid,
    row: &UserRow,
) -> Result<(UserRow, Vec<Draft>), UserError> {
    let id = row.user_id;
    let placeholder = format!("deleted+{id}@invalid");
    let emails: Vec<Json> = row
        .data()
        .emails
        .into_iter()
        .map(|mut email| {
            email.value.clone_from(&placeholder);
            email.display = None;
            email_to_json(&email)
        })
        .collect();
    let left = groups::store::remove_user(tx, tenant, id).await?;
    let tombstone = diesel::update(
        users::table
            .filter(users::tenant_id.eq(tenant))
            .filter(users::user_id.eq(id)),
    )
    .set((
        users::user_name.eq(&placeholder),
        users::emails.eq(Json::Array(emails)),
        users::deleted_at.eq(diesel::dsl::now),
        users::updated_at.eq(diesel::dsl::now),
        users::version.eq(users::version + 1),
        Standing {
            person_id: None,
            login_email: None,
            source: &row.source,
            tenant_member: false,
            roles: Vec::new(),
            organizations: Vec::new(),
        },
    ))
    .returning(UserRow::as_returning())
    .get_result(tx)
    .await?;
    if let Some(person) = row.person_id {
        people::forget_if_unlinked(tx, person).await?;
    }
    Ok((tombstone, left))
}

/// The row `id` of `tenant` (a tombstone only if `show_deleted`) with its
/// groups (id, displayName, by displayName): a GET by id is one statement,
/// where the row and then its groups were two.
pub(crate) async fn get_with_groups(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    id: Uuid,
    show_deleted: bool,
) -> Result<(UserRow, Vec<(Uuid, String)>), ResourceError> {
    let found: Option<(UserRow, Vec<Uuid>, Vec<String>)> = UserWithGroups {
        tenant,
        id,
        columns: UserRow::as_select(),
    }
    .get_result(conn)
    .await
    .optional()?;
    // Tombstones are told apart here, as in `store::get`: the query goes
    // through the primary key whatever the planner believes.
    match found {
        Some((row, ids, names)) if show_deleted || row.deleted_at.is_none() => {
            Ok((row, ids.into_iter().zip(names).collect()))
        }
        _ => Err(not_found::<Users>(id)),
    }
}

/// The query of [`get_with_groups`]: the memberships are one range of the
/// (tenant_id, user_id) index and each group's name one primary-key probe,
/// aggregated into two parallel arrays in the same order.
struct UserWithGroups {
    tenant: Uuid,
    id: Uuid,
    columns: diesel::dsl::AsSelect<UserRow, Pg>,
}

impl QueryId for UserWithGroups {
    type QueryId = UserWithGroups;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for UserWithGroups {
    type SqlType = (
        <diesel::dsl::AsSelect<UserRow, Pg> as Expression>::SqlType,
        diesel::sql_types::Array<diesel::sql_types::Uuid>,
        diesel::sql_types::Array<diesel::sql_types::Text>,
    );
}

impl QueryFragment<Pg> for UserWithGroups {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.columns.walk_ast(out.reborrow())?;
        out.push_sql(
            ", member_of.ids, member_of.names FROM users CROSS JOIN LATERAL ( \
                 SELECT coalesce(array_agg(m.group_id ORDER BY m.display_name, m.group_id), \
                                 '{}') AS ids, \
                        coalesce(array_agg(m.display_name ORDER BY m.display_name, m.group_id), \
                                 '{}') AS names \
                 FROM (SELECT gm.group_id, \
                              (SELECT g.display_name FROM groups AS g \
                               WHERE g.tenant_id = gm.tenant_id AND g.group_id = gm.group_id) \
                                  AS display_name \
                       FROM group_members AS gm \
                       WHERE gm.tenant_id = users.tenant_id AND gm.user_id = users.user_id \
                       OFFSET 0) AS m) AS member_of \
             WHERE users.tenant_id = ",
        );
        out.push_bind_param::<diesel::sql_types::Uuid, _>(&self.tenant)?;
        out.push_sql(" AND users.user_id = ");
        out.push_bind_param::<diesel::sql_types::Uuid, _>(&self.id)?;
        Ok(())
    }
}

/// Full names of the live managers among `ids`, for `manager.display_name`.
pub(crate) async fn manager_names(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    ids: &[Uuid],
    rule: NamePolicy,
) -> Result<HashMap<Uuid, String>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // Through the primary key, tombstones dropped after (see `get`).
    let rows: Vec<ManagerName> = users::table
        .filter(users::tenant_id.eq(tenant))
        .filter(users::user_id.eq_any(ids))
        .select(ManagerName::as_select())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| row.deleted_at.is_none())
        .map(|row| {
            let name = Name {
                given_name: row.given_name,
                family_name: row.family_name,
                formatted: row.name_formatted,
                ..Name::default()
            };
            (
                row.user_id,
                full_name(&name, row.display_name.as_deref(), rule),
            )
        })
        .collect())
}

/// The columns the full-name rule reads.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct ManagerName {
    user_id: Uuid,
    given_name: Option<String>,
    family_name: Option<String>,
    name_formatted: Option<String>,
    display_name: Option<String>,
    deleted_at: Option<DateTime<Utc>>,
}
