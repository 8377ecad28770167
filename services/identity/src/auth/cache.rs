//! Token lookups remembered for a short time, so the hot path of a busy
//! identity provider does not pay a database round trip (and a parse of
//! its tenant's policy) on every call.
//!
//! Revocation stays effective within the cache's lifetime on every replica:
//! an entry is never used once older than the TTL (at most one second), and
//! the replica that revokes, disables SCIM or changes a tenant forgets
//! everything at once. Only lookups that found a token are kept; what the
//! row says (revoked, expired, SCIM off) is judged again on every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::auth::TenantRef;
use crate::tokens::store::TokenRow;

/// The longest a lookup may be reused: the bound on how late another
/// replica learns of a revocation.
pub const MAX_TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);

/// Entries kept at most; past it, stale ones go and, if none is stale, all.
const CAPACITY: usize = 10_000;

/// A token as found in the database, with its tenant.
#[derive(Debug)]
pub(crate) struct TokenGrant {
    pub token: TokenRow,
    pub tenant: TenantRef,
}

/// A lookup and when it was made.
type Entry = (Instant, Arc<TokenGrant>);

/// Lookups by token digest.
pub(crate) struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl TokenCache {
    /// A zero TTL keeps nothing: every call looks the token up.
    pub(crate) fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl: ttl.min(MAX_TOKEN_CACHE_TTL),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, digest: &[u8; 32]) -> Option<Arc<TokenGrant>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (fetched, grant) = entries.get(digest)?;
        (fetched.elapsed() < self.ttl).then(|| Arc::clone(grant))
    }

    pub(crate) fn insert(&self, digest: [u8; 32], grant: Arc<TokenGrant>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.retain(|_, (fetched, _)| fetched.elapsed() < self.ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(digest, (Instant::now(), grant));
    }

    /// Forgets every lookup: a token or tenant changed on this replica.
    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use identity_proto::v1::ProvisioningPolicy;
    use uuid::Uuid;

    use super::*;

    fn grant() -> Arc<TokenGrant> {
        Arc::new(TokenGrant {
            token: TokenRow {
                tenant_id: Uuid::nil(),
                token_id: Uuid::new_v4(),
                name: "okta".into(),
                prefix: "idl_".into(),
                created_at: Utc::now(),
                expires_at: Utc::now(),
                revoked_at: None,
                scope: "scim".into(),
                provider: String::new(),
                provider_display_name: String::new(),
                scim_override: false,
                last_used_at: None,
            },
            tenant: TenantRef {
                id: Uuid::nil(),
                slug: "acme".into(),
                scim_enabled: true,
                policy: Arc::new(ProvisioningPolicy::default()),
            },
        })
    }

    #[test]
    fn entries_live_no_longer_than_the_ttl() {
        let cache = TokenCache::new(Duration::from_millis(30));
        cache.insert([1; 32], grant());
        assert!(cache.get(&[1; 32]).is_some());
        assert!(cache.get(&[2; 32]).is_none());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[test]
    fn a_zero_ttl_keeps_nothing_and_longer_ones_are_capped() {
        let off = TokenCache::new(Duration::ZERO);
        off.insert([1; 32], grant());
        assert!(off.get(&[1; 32]).is_none());
        assert_eq!(off.len(), 0);
        assert_eq!(
            TokenCache::new(Duration::from_secs(60)).ttl,
            MAX_TOKEN_CACHE_TTL
        );
    }

    #[test]
    fn clear_forgets_everything() {
        let cache = TokenCache::new(MAX_TOKEN_CACHE_TTL);
        cache.insert([1; 32], grant());
        cache.insert([2; 32], grant());
        cache.clear();
        assert!(cache.get(&[1; 32]).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = TokenCache::new(MAX_TOKEN_CACHE_TTL);
        let one = grant();
        for n in 0..=CAPACITY {
            let mut digest = [0; 32];
            digest[..8].copy_from_slice(&(n as u64).to_le_bytes());
            cache.insert(digest, Arc::clone(&one));
        }
        assert!(cache.len() <= CAPACITY);
    }
}
