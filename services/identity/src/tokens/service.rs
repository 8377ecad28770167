//! `identity.v1.TokenService`: operator only. The secret leaves the service
//! once, in the IssueToken response.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use identity_proto::v1::revoke_token_request::Token as Which;
use identity_proto::v1::token_service_server::TokenService;
use identity_proto::v1::{
    IssueTokenRequest, IssueTokenResponse, ListTokensRequest, ListTokensResponse,
    RevokeTokenRequest, Token,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::store::{self, TokenRef, TokenRow};
use super::{TokenError, generate};
use crate::auth::{TenantRef, require_operator, tenant_scope};
use crate::rpc::{timestamp, traced};
use crate::server::AppState;

const DEFAULT_TTL_DAYS: i64 = 365;

pub(crate) struct TokenApi {
    state: Arc<AppState>,
}

impl TokenApi {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        TokenApi { state }
    }

    /// Operator only, acting on the named tenant.
    async fn operator_on(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        tenant: &str,
    ) -> Result<(crate::db::Conn<'_>, TenantRef), Status> {
        let (mut conn, caller) = self.state.call(metadata).await?;
        require_operator(&caller)?;
        let tenant = tenant_scope(&mut conn, &caller, tenant).await?;
        Ok((conn, tenant))
    }
}

fn to_proto(row: TokenRow, tenant: &str) -> Token {
    Token {
        id: row.token_id.to_string(),
        tenant: tenant.to_owned(),
        name: row.name,
        prefix: row.prefix,
        create_time: Some(timestamp(row.created_at)),
        expire_time: Some(timestamp(row.expires_at)),
        revoke_time: row.revoked_at.map(timestamp),
        scope: crate::tokens::scope_of(&row.scope) as i32,
        provider: row.provider,
        provider_display_name: row.provider_display_name,
        last_use_time: row.last_used_at.map(timestamp),
        scim_override: row.scim_override,
    }
}

/// Unset means 365 days; zero and negative lifetimes are refused.
fn ttl(requested: Option<prost_types::Duration>) -> Result<TimeDelta, TokenError> {
    let Some(d) = requested else {
        return Ok(TimeDelta::days(DEFAULT_TTL_DAYS));
    };
    let invalid = || TokenError::InvalidValue("ttl must be a positive duration".into());
    if d.seconds < 0 || d.nanos < 0 || (d.seconds == 0 && d.nanos == 0) {
        return Err(invalid());
    }
    TimeDelta::new(d.seconds, u32::try_from(d.nanos).map_err(|_| invalid())?).ok_or_else(invalid)
}

#[tonic::async_trait]
impl TokenService for TokenApi {
    async fn issue_token(
        &self,
        request: Request<IssueTokenRequest>,
    ) -> Result<Response<IssueTokenResponse>, Status> {
        traced("IssueToken", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.operator_on(&metadata, &req.tenant).await?;
            if req.name.trim().is_empty() {
                return Err(TokenError::InvalidValue("name is required".into()).into());
            }
            let expires_at = Utc::now()
                .checked_add_signed(ttl(req.ttl)?)
                .ok_or_else(|| TokenError::InvalidValue("ttl is too long".into()))?;
            let secret = generate(tenant.id)?;
            let row = store::insert(&mut conn, tenant.id, &req.name, expires_at, &secret).await?;
            tracing::info!(token_id = %row.token_id, prefix = %row.prefix, "token issued");
            Ok(IssueTokenResponse {
                token: Some(to_proto(row, &tenant.slug)),
                secret: secret.text,
            })
        })
        .await
    }

    async fn list_tokens(
        &self,
        request: Request<ListTokensRequest>,
    ) -> Result<Response<ListTokensResponse>, Status> {
        traced("ListTokens", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.operator_on(&metadata, &req.tenant).await?;
            let rows = store::list(&mut conn, tenant.id, req.show_revoked).await?;
            Ok(ListTokensResponse {
                tokens: rows
                    .into_iter()
                    .map(|r| to_proto(r, &tenant.slug))
                    .collect(),
            })
        })
        .await
    }

    async fn revoke_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Result<Response<Token>, Status> {
        traced("RevokeToken", async {
            let (metadata, _, req) = request.into_parts();
            let (mut conn, tenant) = self.operator_on(&metadata, &req.tenant).await?;
            let which = match &req.token {
                // A malformed id names no token.
                Some(Which::Id(id)) => {
                    TokenRef::Id(Uuid::try_parse(id.trim()).map_err(|_| TokenError::NotFound)?)
                }
                Some(Which::Name(name)) if !name.is_empty() => TokenRef::Name(name),
                _ => {
                    return Err(
                        TokenError::InvalidValue("give the token's id or name".into()).into(),
                    );
                }
            };
            let row = store::revoke(&mut conn, tenant.id, which).await?;
            tracing::info!(token_id = %row.token_id, "token revoked");
            Ok(to_proto(row, &tenant.slug))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rules() {
        assert_eq!(ttl(None).ok(), Some(TimeDelta::days(365)));
        let d = |seconds, nanos| Some(prost_types::Duration { seconds, nanos });
        assert_eq!(ttl(d(90 * 86400, 0)).ok(), Some(TimeDelta::days(90)));
        assert!(ttl(d(0, 0)).is_err());
        assert!(ttl(d(-1, 0)).is_err());
        assert!(ttl(d(0, 1)).is_ok());
    }
}
