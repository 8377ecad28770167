//! Token rows. Secrets never reach this module; only their hashes do.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use identity_proto::v1::TokenScope;
use uuid::Uuid;

use super::{NewSecret, TokenError, scope_name};
use crate::db::{StoreError, is_unique_violation};
use crate::schema::{tenants, tokens};
use crate::tenants::store::TenantRow;

/// Live token names are unique per tenant (migration index name).
const LIVE_NAME_INDEX: &str = "tokens_live_name_key";

/// A token as listed; the hash is never selected.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tokens, check_for_backend(diesel::pg::Pg))]
pub(crate) struct TokenRow {
    pub tenant_id: Uuid,
    pub token_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub scope: String,
    pub provider: String,
    pub provider_display_name: String,
    pub scim_override: bool,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What a new token row holds besides its secret.
pub(crate) struct NewToken<'a> {
    pub name: &'a str,
    pub scope: TokenScope,
    pub provider: &'a str,
    pub provider_display_name: &'a str,
    pub scim_override: bool,
    pub expires_at: DateTime<Utc>,
}

/// Which token to revoke.
pub(crate) enum TokenRef<'a> {
    Id(Uuid),
    Name(&'a str),
}

pub(crate) async fn insert(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    token: &NewToken<'_>,
    secret: &NewSecret,
) -> Result<TokenRow, TokenError> {
    diesel::insert_into(tokens::table)
        .values((
            tokens::tenant_id.eq(tenant),
            tokens::token_id.eq(Uuid::new_v4()),
            tokens::name.eq(token.name),
            tokens::prefix.eq(&secret.prefix),
            tokens::token_hash.eq(secret.hash.as_slice()),
            tokens::expires_at.eq(token.expires_at),
            tokens::scope.eq(scope_name(token.scope)),
            tokens::provider.eq(token.provider),
            tokens::provider_display_name.eq(token.provider_display_name),
            tokens::scim_override.eq(token.scim_override),
        ))
        .returning(TokenRow::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e, LIVE_NAME_INDEX) {
                TokenError::NameTaken(token.name.to_owned())
            } else {
                e.into()
            }
        })
}

pub(crate) async fn list(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    show_revoked: bool,
) -> Result<Vec<TokenRow>, StoreError> {
    let mut query = tokens::table
        .filter(tokens::tenant_id.eq(tenant))
        .select(TokenRow::as_select())
        .order((tokens::created_at, tokens::token_id))
        .into_boxed();
    if !show_revoked {
        query = query.filter(tokens::revoked_at.is_null());
    }
    Ok(query.load(conn).await?)
}

/// What a revocation found.
pub(crate) enum Revoked {
    /// The token was live and is revoked now.
    Now(TokenRow),
    /// The token (named by id) was revoked before: unchanged.
    Already(TokenRow),
}

/// Revokes a live token; revoking an already revoked one (by id) returns it
/// unchanged. Two statements: the caller's transaction holds them together
/// with the revocation's event.
pub(crate) async fn revoke(
    tx: &mut AsyncPgConnection,
    tenant: Uuid,
    which: TokenRef<'_>,
) -> Result<Revoked, TokenError> {
    {
        let live = tokens::table
            .filter(tokens::tenant_id.eq(tenant))
            .filter(tokens::revoked_at.is_null());
        let revoked = match which {
            TokenRef::Id(id) => diesel::update(live.filter(tokens::token_id.eq(id)))
                .set(tokens::revoked_at.eq(diesel::dsl::now))
                .returning(TokenRow::as_returning())
                .get_result(tx)
                .await
                .optional()?,
            TokenRef::Name(name) => diesel::update(live.filter(tokens::name.eq(name)))
                .set(tokens::revoked_at.eq(diesel::dsl::now))
                .returning(TokenRow::as_returning())
                .get_result(tx)
                .await
                .optional()?,
        };
        if let Some(row) = revoked {
            return Ok(Revoked::Now(row));
        }
        match which {
            TokenRef::Id(id) => tokens::table
                .filter(tokens::tenant_id.eq(tenant))
                .filter(tokens::token_id.eq(id))
                .select(TokenRow::as_select())
                .get_result(tx)
                .await
                .optional()?
                .map(Revoked::Already)
                .ok_or(TokenError::NotFound),
            TokenRef::Name(_) => Err(TokenError::NotFound),
        }
    }
}

/// Revokes every live token of `scope` in `tenant` at once (DisableScim);
/// returns the ids of those that were live.
pub(crate) async fn revoke_scope(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    scope: TokenScope,
) -> Result<Vec<Uuid>, StoreError> {
    Ok(diesel::update(
        tokens::table
            .filter(tokens::tenant_id.eq(tenant))
            .filter(tokens::scope.eq(scope_name(scope)))
            .filter(tokens::revoked_at.is_null()),
    )
    .set(tokens::revoked_at.eq(diesel::dsl::now))
    .returning(tokens::token_id)
    .get_results(conn)
    .await?)
}

/// Records that the token authenticated a call, unless that was already
/// recorded within the last minute: the condition makes concurrent callers
/// write the row at most once a minute, never once per request.
pub(crate) async fn touch_last_used(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    token: Uuid,
) -> Result<(), StoreError> {
    diesel::sql_query(
        "UPDATE tokens SET last_used_at = now() \
         WHERE tenant_id = $1 AND token_id = $2 \
         AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')",
    )
    .bind::<diesel::sql_types::Uuid, _>(tenant)
    .bind::<diesel::sql_types::Uuid, _>(token)
    .execute(conn)
    .await?;
    Ok(())
}

/// The token with this hash in `tenant`, with its tenant: one probe of the
/// (tenant_id, token_hash) unique index.
pub(crate) async fn find_by_hash(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    hash: &[u8; 32],
) -> Result<Option<(TokenRow, TenantRow)>, StoreError> {
    Ok(tokens::table
        .inner_join(tenants::table)
        .filter(tokens::tenant_id.eq(tenant))
        .filter(tokens::token_hash.eq(hash.as_slice()))
        .select((TokenRow::as_select(), TenantRow::as_select()))
        .get_result(conn)
        .await
        .optional()?)
}
