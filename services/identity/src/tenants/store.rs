//! Tenant rows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use identity_proto::v1::ProvisioningPolicy;
use serde_json::Value as Json;
use uuid::Uuid;

use super::{TenantError, policy};
use crate::db::{StoreError, is_unique_violation};
use crate::schema::tenants;

const SLUG_INDEX: &str = "tenants_slug_key";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub(crate) struct TenantRow {
    pub tenant_id: Uuid,
    pub slug: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub scim_enabled: bool,
    pub policy: Json,
}

impl TenantRow {
    pub(crate) fn policy(&self) -> ProvisioningPolicy {
        policy::from_json(&self.policy)
    }
}

pub(crate) async fn insert(
    conn: &mut AsyncPgConnection,
    slug: &str,
    display_name: &str,
) -> Result<TenantRow, TenantError> {
    diesel::insert_into(tenants::table)
        .values((
            tenants::tenant_id.eq(Uuid::new_v4()),
            tenants::slug.eq(slug),
            tenants::display_name.eq(display_name),
        ))
        .returning(TenantRow::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e, SLUG_INDEX) {
                TenantError::SlugTaken(slug.to_owned())
            } else {
                e.into()
            }
        })
}

/// No tenant has a slug that breaks the slug rule, so such text (a NUL,
/// say, which Postgres would refuse as a parameter) never reaches SQL.
pub(crate) async fn find_by_slug(
    conn: &mut AsyncPgConnection,
    slug: &str,
) -> Result<Option<TenantRow>, StoreError> {
    if !identity_proto::is_valid_slug(slug) {
        return Ok(None);
    }
    Ok(tenants::table
        .filter(tenants::slug.eq(slug))
        .select(TenantRow::as_select())
        .get_result(conn)
        .await
        .optional()?)
}

/// The tenant row locked for the rest of the transaction.
pub(crate) async fn lock(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
) -> Result<TenantRow, StoreError> {
    Ok(tenants::table
        .filter(tenants::tenant_id.eq(tenant))
        .select(TenantRow::as_select())
        .for_update()
        .get_result(conn)
        .await?)
}

/// Writes the display name and policy.
pub(crate) async fn update(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    display_name: &str,
    policy: &ProvisioningPolicy,
) -> Result<TenantRow, StoreError> {
    Ok(
        diesel::update(tenants::table.filter(tenants::tenant_id.eq(tenant)))
            .set((
                tenants::display_name.eq(display_name),
                tenants::policy.eq(policy::to_json(policy)),
                tenants::updated_at.eq(diesel::dsl::now),
            ))
            .returning(TenantRow::as_returning())
            .get_result(conn)
            .await?,
    )
}

/// Switches SCIM on or off.
pub(crate) async fn set_scim_enabled(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    enabled: bool,
) -> Result<TenantRow, StoreError> {
    Ok(
        diesel::update(tenants::table.filter(tenants::tenant_id.eq(tenant)))
            .set((
                tenants::scim_enabled.eq(enabled),
                tenants::updated_at.eq(diesel::dsl::now),
            ))
            .returning(TenantRow::as_returning())
            .get_result(conn)
            .await?,
    )
}

/// Up to `limit` tenants from `offset`, ordered by slug.
pub(crate) async fn list(
    conn: &mut AsyncPgConnection,
    offset: i64,
    limit: i64,
) -> Result<Vec<TenantRow>, StoreError> {
    Ok(tenants::table
        .select(TenantRow::as_select())
        .order(tenants::slug)
        .offset(offset)
        .limit(limit)
        .load(conn)
        .await?)
}
