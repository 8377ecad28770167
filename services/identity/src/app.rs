//! What every gRPC service shares: the pools, the authenticator and the
//! limits, and the one way an RPC is admitted (authenticate, rate, tenant
//! slot, then a work connection). Below the services; nothing here knows
//! them, so they import it without a cycle.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use diesel_async::AsyncPgConnection;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::auth::{Authenticator, Caller, TenantRef, require_operator, tenant_scope};
use crate::db::{self, Conn, Pool, StoreError};
use crate::limits::Limits;

/// What every service shares.
pub(crate) struct AppState {
    pool: Pool,
    auth_pool: Pool,
    auth: Authenticator,
    limits: Limits,
    /// Wakes this process's sequencer when a write's connection is released.
    sequencer: Arc<Notify>,
}

/// A pooled connection for the work of one admitted request; it holds the
/// request's slot among its tenant's concurrent requests until dropped.
pub(crate) struct WorkConn<'a> {
    conn: Conn<'a>,
    _slot: Option<OwnedSemaphorePermit>,
    /// Set on the connection of a write: see [`AppState::write_call`].
    sequencer: Option<&'a Notify>,
}

impl Drop for WorkConn<'_> {
    fn drop(&mut self) {
        if let Some(sequencer) = &self.sequencer {
            sequencer.notify_one();
        }
    }
}

impl Deref for WorkConn<'_> {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.conn
    }
}

impl DerefMut for WorkConn<'_> {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        &mut self.conn
    }
}

impl AppState {
    pub(crate) fn new(pool: Pool, auth_pool: Pool, auth: Authenticator, limits: Limits) -> Self {
        AppState {
            pool,
            auth_pool,
            auth,
            limits,
            sequencer: Arc::new(Notify::new()),
        }
    }

    /// What a write's connection notifies when it is released, for the
    /// sequencer task.
    pub(crate) fn sequencer_wake(&self) -> Arc<Notify> {
        Arc::clone(&self.sequencer)
    }

    /// Authenticates (on the auth pool), admits the caller under its
    /// tenant's cap and its token's rate, and only then takes a connection
    /// for the work.
    pub(crate) async fn call(
        &self,
        metadata: &MetadataMap,
    ) -> Result<(WorkConn<'_>, Caller), Status> {
        let caller = self.auth.authenticate(&self.auth_pool, metadata).await?;
        let slot = match &caller {
            Caller::Operator => None,
            Caller::Tenant {
                tenant, token_id, ..
            } => {
                self.limits.check_rate(*token_id)?;
                Some(self.limits.admit(tenant.id).await?)
            }
        };
        let conn = db::conn(&self.pool).await?;
        let conn = WorkConn {
            conn,
            _slot: slot,
            sequencer: None,
        };
        Ok((conn, caller))
    }

    /// A connection for work no request waits on (a Watch reading events
    /// between its client's reads): it is held for one read at a time and
    /// counts against no tenant's cap.
    pub(crate) async fn background_conn(&self) -> Result<Conn<'_>, StoreError> {
        db::conn(&self.pool).await
    }

    /// A token or tenant changed: this replica applies it from the next
    /// request on (the others within the token cache's TTL).
    pub(crate) fn tokens_changed(&self) {
        self.auth.forget_lookups();
    }

    /// A connection and the tenant the caller may act on as `tenant`.
    pub(crate) async fn tenant_call(
        &self,
        metadata: &MetadataMap,
        tenant: &str,
    ) -> Result<(WorkConn<'_>, TenantRef), Status> {
        let (conn, _, tenant) = self.scoped_call(metadata, tenant).await?;
        Ok((conn, tenant))
    }

    /// A connection and the named tenant, for the operator only: tenant
    /// administration and tokens.
    pub(crate) async fn operator_call(
        &self,
        metadata: &MetadataMap,
        tenant: &str,
    ) -> Result<(WorkConn<'_>, TenantRef), Status> {
        let (mut conn, caller) = self.call(metadata).await?;
        require_operator(&caller)?;
        let tenant = tenant_scope(&mut conn, &caller, tenant).await?;
        Ok((conn, tenant))
    }

    /// As [`Self::operator_call`], for writes (see [`Self::write_call`]).
    pub(crate) async fn operator_write_call(
        &self,
        metadata: &MetadataMap,
        tenant: &str,
    ) -> Result<(WorkConn<'_>, TenantRef), Status> {
        let (mut conn, tenant) = self.operator_call(metadata, tenant).await?;
        conn.sequencer = Some(&self.sequencer);
        Ok((conn, tenant))
    }

    /// As [`Self::tenant_call`], with the caller, for writes whose rules
    /// depend on who makes them.
    pub(crate) async fn scoped_call(
        &self,
        metadata: &MetadataMap,
        tenant: &str,
    ) -> Result<(WorkConn<'_>, Caller, TenantRef), Status> {
        let (mut conn, caller) = self.call(metadata).await?;
        let tenant = tenant_scope(&mut conn, &caller, tenant).await?;
        Ok((conn, caller, tenant))
    }

    /// As [`Self::scoped_call`], for writes. A write records its events as
    /// pending, and its connection wakes this process's sequencer when it
    /// is released, after everything the request did has committed, so
    /// they are numbered now rather than at the sequencer's next poll.
    /// In-process, because a `NOTIFY` would serialise the writers' commits
    /// (see `events::store`); wake-ups coalesce into one round, and one
    /// after a failed write costs an empty round.
    pub(crate) async fn write_call(
        &self,
        metadata: &MetadataMap,
        tenant: &str,
    ) -> Result<(WorkConn<'_>, Caller, TenantRef), Status> {
        let (mut conn, caller, tenant) = self.scoped_call(metadata, tenant).await?;
        conn.sequencer = Some(&self.sequencer);
        Ok((conn, caller, tenant))
    }
}
