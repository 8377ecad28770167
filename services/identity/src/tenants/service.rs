//! `identity.v1.TenantService`: operator only, except reading one's own tenant.

use std::sync::Arc;

use diesel_async::AsyncConnection;
use identity_proto::v1::tenant_service_server::TenantService;
use identity_proto::v1::{
    CreateTenantRequest, DisableScimRequest, EnableScimRequest, EnableScimResponse, EventType,
    GetTenantRequest, ListTenantsRequest, ListTenantsResponse, ResourceType, Tenant, TokenScope,
    UpdateTenantRequest,
};
use tonic::{Request, Response, Status};

use super::store::{self, TenantRow};
use super::{TenantError, policy};
use crate::app::AppState;
use crate::auth::{Caller, require_operator, tenant_scope};
use crate::events::{self, Draft, Origin};
use crate::rpc::{DEFAULT_PAGE_SIZE, next_page_token, page_offset, page_size, timestamp, traced};
use crate::tokens::{self, store::NewToken};
use identity_proto::is_valid_slug;

/// The name of the token EnableScim issues when the request names none.
const DEFAULT_SCIM_TOKEN_NAME: &str = "scim";

/// TENANT_UPDATED with the display name and the policy (as stored) that
/// changed; nothing when neither did.
fn updated_event(before: &TenantRow, after: &TenantRow) -> Option<Draft> {
    let document = |row: &TenantRow| {
        let mut doc = serde_json::Map::new();
        doc.insert("displayName".into(), row.display_name.clone().into());
        doc.insert("policy".into(), row.policy.clone());
        doc
    };
    let changes = events::diff(&document(before), &document(after));
    (!changes.is_empty()).then(|| {
        Draft::new(
            EventType::TenantUpdated,
            ResourceType::Tenant,
            after.tenant_id,
        )
        .with_changes(changes)
    })
}

fn tenant_event(kind: EventType, tenant: &TenantRow) -> Draft {
    Draft::new(kind, ResourceType::Tenant, tenant.tenant_id)
}

pub(crate) struct TenantApi {
    state: Arc<AppState>,
}

impl TenantApi {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        TenantApi { state }
    }
}

pub(crate) fn to_proto(row: TenantRow) -> Tenant {
    Tenant {
        id: row.tenant_id.to_string(),
        policy: Some(row.policy()),
        slug: row.slug,
        display_name: row.display_name,
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        scim_enabled: row.scim_enabled,
    }
}

#[tonic::async_trait]
impl TenantService for TenantApi {
    async fn create_tenant(
        &self,
        request: Request<CreateTenantRequest>,
    ) -> Result<Response<Tenant>, Status> {
        traced("CreateTenant", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller) = self.state.call(&metadata).await?;
            require_operator(&caller)?;
            crate::rpc::record_tenant(&req.slug);
            if !is_valid_slug(&req.slug) {
                return Err(TenantError::InvalidSlug(req.slug).into());
            }
            let row = store::insert(&mut conn, &req.slug, req.display_name.trim()).await?;
            Ok(to_proto(row))
        })
        .await
    }

    async fn get_tenant(
        &self,
        request: Request<GetTenantRequest>,
    ) -> Result<Response<Tenant>, Status> {
        traced("GetTenant", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller) = self.state.call(&metadata).await?;
            let tenant = tenant_scope(&mut conn, &caller, &req.slug).await?;
            let row = store::find_by_slug(&mut conn, &tenant.slug)
                .await?
                .ok_or(TenantError::NotFound(tenant.slug))?;
            Ok(to_proto(row))
        })
        .await
    }

    async fn list_tenants(
        &self,
        request: Request<ListTenantsRequest>,
    ) -> Result<Response<ListTenantsResponse>, Status> {
        traced("ListTenants", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, caller) = self.state.call(&metadata).await?;
            require_operator(&caller)?;
            let offset = page_offset(0, &req.page_token).map_err(TenantError::from)?;
            let limit = match page_size(req.page_size).map_err(TenantError::from)? {
                0 => DEFAULT_PAGE_SIZE,
                n => n,
            };
            // One extra row tells whether another page follows.
            let mut rows = store::list(&mut conn, offset, limit + 1).await?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            let next_page_token = if more {
                next_page_token(offset, rows.len(), i64::MAX)
            } else {
                String::new()
            };
            Ok(ListTenantsResponse {
                tenants: rows.into_iter().map(to_proto).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn update_tenant(
        &self,
        request: Request<UpdateTenantRequest>,
    ) -> Result<Response<Tenant>, Status> {
        traced("UpdateTenant", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.state.operator_write_call(&metadata, &req.slug).await?;
            let origin = Origin::of(&Caller::Operator, &metadata);
            let row = conn
                .transaction(async |tx| {
                    // FOR UPDATE first: a write that computes ACCESS_CHANGED
                    // holds the row FOR SHARE while it does (see
                    // `events::access`), so it and this update serialise.
                    let current = store::lock(tx, tenant.id).await?;
                    let display_name = req
                        .display_name
                        .as_deref()
                        .map_or(current.display_name.as_str(), str::trim)
                        .to_owned();
                    let policy = match req.policy {
                        Some(update) => policy::apply_update(current.policy(), update)?,
                        None => current.policy(),
                    };
                    let row = store::update(tx, tenant.id, &display_name, &policy).await?;
                    let mut drafts: Vec<Draft> =
                        updated_event(&current, &row).into_iter().collect();
                    drafts.extend(
                        crate::groups::store::ensure_synthetic(tx, tenant.id, &policy).await?,
                    );
                    drafts.extend(
                        events::access::policy_change(tx, tenant.id, &current.policy(), &policy)
                            .await?,
                    );
                    events::store::record(tx, tenant.id, &origin, &drafts).await?;
                    Ok::<_, TenantError>(row)
                })
                .await?;
            self.state.tokens_changed();
            tracing::info!(policy = %row.policy, "tenant updated");
            Ok(to_proto(row))
        })
        .await
    }

    /// Switching SCIM on and issuing its token is one transaction: either
    /// the tenant is enabled with a fresh token or nothing changes (a live
    /// token already holding the name is ALREADY_EXISTS, as on IssueToken).
    async fn enable_scim(
        &self,
        request: Request<EnableScimRequest>,
    ) -> Result<Response<EnableScimResponse>, Status> {
        traced("EnableScim", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.state.operator_write_call(&metadata, &req.slug).await?;
            let origin = Origin::of(&Caller::Operator, &metadata);
            let name = match req.token_name.trim() {
                "" => DEFAULT_SCIM_TOKEN_NAME,
                _ => req.token_name.as_str(),
            };
            let token = NewToken {
                name,
                scope: TokenScope::Scim,
                provider: "",
                provider_display_name: "",
                scim_override: false,
                expires_at: tokens::service::expires_at(None)?,
            };
            let secret = tokens::generate(tenant.id)?;
            let (row, token) = conn
                .transaction(async |tx| {
                    let mut row = store::lock(tx, tenant.id).await?;
                    let mut drafts = Vec::new();
                    if !row.scim_enabled {
                        row = store::set_scim_enabled(tx, tenant.id, true).await?;
                        drafts.push(tenant_event(EventType::ScimEnabled, &row));
                    }
                    let token = tokens::store::insert(tx, tenant.id, &token, &secret).await?;
                    drafts.push(tokens::service::issued_event(&token));
                    events::store::record(tx, tenant.id, &origin, &drafts).await?;
                    Ok::<_, TenantError>((row, token))
                })
                .await?;
            self.state.tokens_changed();
            tracing::info!(
                token_id = %token.token_id,
                prefix = %token.prefix,
                "SCIM enabled, token issued"
            );
            Ok(EnableScimResponse {
                token: Some(tokens::service::to_proto(token, &row.slug)),
                tenant: Some(to_proto(row)),
                secret: secret.text,
            })
        })
        .await
    }

    /// Idempotent: on a tenant with SCIM already off it revokes whatever
    /// SCIM token might still be live and changes nothing else.
    async fn disable_scim(
        &self,
        request: Request<DisableScimRequest>,
    ) -> Result<Response<Tenant>, Status> {
        traced("DisableScim", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.state.operator_write_call(&metadata, &req.slug).await?;
            let origin = Origin::of(&Caller::Operator, &metadata);
            let (row, revoked) = conn
                .transaction(async |tx| {
                    let mut row = store::lock(tx, tenant.id).await?;
                    let mut drafts = Vec::new();
                    if row.scim_enabled {
                        row = store::set_scim_enabled(tx, tenant.id, false).await?;
                        drafts.push(tenant_event(EventType::ScimDisabled, &row));
                    }
                    let revoked =
                        tokens::store::revoke_scope(tx, tenant.id, TokenScope::Scim).await?;
                    drafts.extend(revoked.iter().map(|id| tokens::service::revoked_event(*id)));
                    events::store::record(tx, tenant.id, &origin, &drafts).await?;
                    Ok::<_, TenantError>((row, revoked.len()))
                })
                .await?;
            self.state.tokens_changed();
            tracing::info!(revoked, "SCIM disabled");
            Ok(to_proto(row))
        })
        .await
    }
}
