//! Tenant rows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::TenantError;
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

pub(crate) async fn find_by_slug(
    conn: &mut AsyncPgConnection,
    slug: &str,
) -> Result<Option<TenantRow>, StoreError> {
    Ok(tenants::table
        .filter(tenants::slug.eq(slug))
        .select(TenantRow::as_select())
        .get_result(conn)
        .await
        .optional()?)
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
