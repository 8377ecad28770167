//! Who is calling: the operator (IDENTITY_ADMIN_TOKEN) or a tenant token.
//! Tenant tokens are looked up in Postgres and the lookup is reused for at
//! most a second (see [`cache`]), so a revocation is effective within a
//! second on every replica and at once on the one that made it. Lookups use
//! a pool of their own, so a flood of bogus tokens never holds the
//! connections that do the work.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use diesel_async::AsyncPgConnection;
use tonic::metadata::MetadataMap;
use uuid::Uuid;

pub(crate) mod cache;
pub(crate) mod service;

use identity_proto::v1::{ProvisioningPolicy, TokenScope};

use crate::db::{self, Pool, StoreError};
use crate::metrics::CacheCounters;
use crate::rpc::record_tenant;
use crate::tenants;
use crate::tenants::store::TenantRow;
use crate::tokens;
use cache::{TokenCache, TokenGrant};

/// A tenant as the services address it, with the rules it provisions by,
/// read with the caller's token: a policy change applies from the next
/// request on the replica that made it, within a second on the others.
/// ACCESS_CHANGED is never computed from this copy but from the policy as
/// committed (see `events::access`), so no access change goes unrecorded.
#[derive(Debug, Clone)]
pub(crate) struct TenantRef {
    pub id: Uuid,
    pub slug: String,
    pub scim_enabled: bool,
    pub policy: Arc<ProvisioningPolicy>,
}

impl TenantRef {
    pub(crate) fn of(row: &TenantRow) -> TenantRef {
        TenantRef {
            id: row.tenant_id,
            slug: row.slug.clone(),
            scim_enabled: row.scim_enabled,
            policy: Arc::new(row.policy()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Operator,
    Tenant {
        tenant: TenantRef,
        token_id: Uuid,
        token_name: String,
        /// The SSO provider the token is linked to; empty when none.
        provider: String,
        scope: TokenScope,
        scim_override: bool,
    },
}

impl Caller {
    /// Whether the call comes from an identity provider (a SCIM token).
    pub(crate) fn is_scim(&self) -> bool {
        matches!(
            self,
            Caller::Tenant {
                scope: TokenScope::Scim,
                ..
            }
        )
    }

    /// Whether the caller may change what the SCIM-managed lock protects:
    /// the SCIM path itself, the operator, and service tokens granted it.
    pub(crate) fn may_change_scim_managed(&self) -> bool {
        match self {
            Caller::Operator => true,
            Caller::Tenant {
                scope,
                scim_override,
                ..
            } => *scope == TokenScope::Scim || *scim_override,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing credentials: send 'authorization: Bearer <token>'")]
    Missing,
    #[error("the token is not valid")]
    Invalid,
    #[error("the token was revoked")]
    Revoked,
    #[error("the token has expired")]
    Expired,
    #[error("{0}")]
    Denied(String),
    /// The operator or a service token on the public SCIM edge, where only
    /// an identity provider's SCIM token may be used.
    #[error("this credential is not accepted on the SCIM edge")]
    NotOnEdge,
    /// A tenant token presented for another tenant. Unauthenticated, not
    /// denied: for that tenant the credential is no credential at all, and
    /// the SCIM edge must answer 401 so the IdP asks for the right token.
    #[error("this token is not valid for tenant '{0}'")]
    WrongTenant(String),
    #[error("the operator must name a tenant")]
    TenantRequired,
    #[error("tenant '{0}' not found")]
    TenantNotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How stale `tokens.last_used_at` may get: it is rewritten at most this
/// often per token, so authenticating stays a read on nearly every call.
const LAST_USE_RESOLUTION: TimeDelta = TimeDelta::seconds(60);

/// Checks bearer tokens. The operator token is kept only as its digest.
pub(crate) struct Authenticator {
    operator_digest: Option<[u8; 32]>,
    cache: TokenCache,
    counters: CacheCounters,
}

impl Authenticator {
    /// An empty or absent admin token means no operator exists; tenant
    /// token lookups are reused for `cache_ttl` (zero: never).
    /// `counters` count the cache's hits and misses.
    pub(crate) fn new(
        admin_token: Option<&str>,
        cache_ttl: std::time::Duration,
        counters: CacheCounters,
    ) -> Self {
        Authenticator {
            operator_digest: admin_token.filter(|t| !t.is_empty()).map(tokens::digest),
            cache: TokenCache::new(cache_ttl),
            counters,
        }
    }

    /// A token or tenant changed on this replica: the next call of every
    /// token reads it again.
    pub(crate) fn forget_lookups(&self) {
        self.cache.clear();
    }

    /// Takes a connection of `pool` only for a well-formed tenant token:
    /// the operator and malformed texts never touch the database.
    pub(crate) async fn authenticate(
        &self,
        pool: &Pool,
        metadata: &MetadataMap,
    ) -> Result<Caller, AuthError> {
        let on_edge = from_scim_edge(metadata);
        let presented = bearer(metadata).ok_or(AuthError::Missing)?;
        let digest = tokens::digest(presented);
        if self
            .operator_digest
            .as_ref()
            .is_some_and(|operator| digests_equal(operator, &digest))
        {
            if on_edge {
                tracing::debug!("refused: the operator credential on the SCIM edge");
                return Err(AuthError::NotOnEdge);
            }
            return Ok(Caller::Operator);
        }
        let Some(tenant) = tokens::parse_tenant(presented) else {
            tracing::debug!("refused: not a well-formed tenant token");
            return Err(AuthError::Invalid);
        };
        let grant = match self.cache.get(&digest) {
            Some(grant) => {
                self.counters.hits.inc();
                grant
            }
            None => {
                self.counters.misses.inc();
                let grant = Arc::new(self.look_up(pool, tenant, &digest).await?);
                self.cache.insert(digest, Arc::clone(&grant));
                grant
            }
        };
        let TokenGrant { token, tenant } = &*grant;
        let scope = tokens::scope_of(&token.scope);
        // DisableScim revokes SCIM tokens; the switch is checked as well, so
        // no SCIM token outlives it whatever happened to the revocation.
        if token.revoked_at.is_some() || (scope == TokenScope::Scim && !tenant.scim_enabled) {
            tracing::debug!(token_id = %token.token_id, revoked = token.revoked_at.is_some(), "refused: token revoked or SCIM disabled");
            return Err(AuthError::Revoked);
        }
        if token.expires_at <= Utc::now() {
            tracing::debug!(token_id = %token.token_id, "refused: token expired");
            return Err(AuthError::Expired);
        }
        if on_edge && scope != TokenScope::Scim {
            tracing::debug!(token_id = %token.token_id, "refused: a service token on the SCIM edge");
            return Err(AuthError::NotOnEdge);
        }
        Ok(Caller::Tenant {
            tenant: tenant.clone(),
            scope,
            scim_override: token.scim_override,
            token_id: token.token_id,
            token_name: token.name.clone(),
            provider: token.provider.clone(),
        })
    }

    /// The token of `digest` in `tenant`, from the database, recording its
    /// use (coarsely: see [`LAST_USE_RESOLUTION`]).
    async fn look_up(
        &self,
        pool: &Pool,
        tenant: Uuid,
        digest: &[u8; 32],
    ) -> Result<TokenGrant, AuthError> {
        let mut conn = db::conn(pool).await?;
        let Some((token, tenant)) = tokens::store::find_by_hash(&mut conn, tenant, digest).await?
        else {
            tracing::debug!(tenant_id = %tenant, "refused: no such token in the tenant it names");
            return Err(AuthError::Invalid);
        };
        if token.revoked_at.is_none()
            && token.expires_at > Utc::now()
            && token
                .last_used_at
                .is_none_or(|used| Utc::now() - used > LAST_USE_RESOLUTION)
        {
            // Bookkeeping only: a failed write must not fail the call.
            if let Err(error) =
                tokens::store::touch_last_used(&mut conn, token.tenant_id, token.token_id).await
            {
                tracing::warn!(token_id = %token.token_id, %error, "could not record the token's last use");
            }
        }
        Ok(TokenGrant {
            token,
            tenant: TenantRef::of(&tenant),
        })
    }
}

/// Whether the call carries `x-identity-edge: scim`: made on behalf of the
/// public SCIM edge, where only SCIM tokens are accepted.
fn from_scim_edge(metadata: &MetadataMap) -> bool {
    metadata
        .get("x-identity-edge")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("scim"))
}

/// The token of an `authorization: Bearer <token>` header; the scheme is
/// case-insensitive.
fn bearer(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares every byte so the time taken does not depend on where they differ.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub(crate) fn require_operator(caller: &Caller) -> Result<(), AuthError> {
    match caller {
        Caller::Operator => Ok(()),
        Caller::Tenant { .. } => Err(AuthError::Denied(
            "only the operator may call this method".into(),
        )),
    }
}

/// The tenant a request acts on: a tenant token acts on its own tenant (an
/// empty `requested` means that one); the operator must name one.
pub(crate) async fn tenant_scope(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    requested: &str,
) -> Result<TenantRef, AuthError> {
    let tenant = match caller {
        Caller::Tenant { tenant, .. } => {
            if !requested.is_empty() && requested != tenant.slug {
                return Err(AuthError::WrongTenant(requested.to_owned()));
            }
            tenant.clone()
        }
        Caller::Operator => {
            if requested.is_empty() {
                return Err(AuthError::TenantRequired);
            }
            let row = tenants::store::find_by_slug(conn, requested)
                .await?
                .ok_or_else(|| AuthError::TenantNotFound(requested.to_owned()))?;
            TenantRef::of(&row)
        }
    };
    record_tenant(&tenant.slug);
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn metadata(value: &'static str) -> MetadataMap {
        let mut map = MetadataMap::new();
        map.insert("authorization", MetadataValue::from_static(value));
        map
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(&metadata("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&metadata("bearer   abc ")), Some("abc"));
        assert_eq!(bearer(&metadata("Basic abc")), None);
        assert_eq!(bearer(&metadata("non-token")), None);
        assert_eq!(bearer(&metadata("Bearer ")), None);
        assert_eq!(bearer(&MetadataMap::new()), None);
    }

    #[test]
    fn edge_marker() {
        let mut map = MetadataMap::new();
        assert!(!from_scim_edge(&map));
        map.insert("x-identity-edge", MetadataValue::from_static("other"));
        assert!(!from_scim_edge(&map));
        map.insert("x-identity-edge", MetadataValue::from_static("SCIM"));
        assert!(from_scim_edge(&map));
    }

    #[test]
    fn digest_comparison() {
        let a = tokens::digest("one");
        assert!(digests_equal(&a, &tokens::digest("one")));
        assert!(!digests_equal(&a, &tokens::digest("two")));
    }

    #[test]
    fn empty_admin_token_means_no_operator() {
        let ttl = cache::MAX_TOKEN_CACHE_TTL;
        let new = |token| Authenticator::new(token, ttl, CacheCounters::default());
        assert!(new(Some("")).operator_digest.is_none());
        assert!(new(None).operator_digest.is_none());
        assert!(new(Some("x")).operator_digest.is_some());
    }
}
