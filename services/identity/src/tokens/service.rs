//! `identity.v1.TokenService`: operator only. The secret leaves the service
//! once, in the IssueToken response.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::AsyncConnection;
use identity_proto::v1::revoke_token_request::Token as Which;
use identity_proto::v1::token_service_server::TokenService;
use identity_proto::v1::{
    EventType, IssueTokenRequest, IssueTokenResponse, ListTokensRequest, ListTokensResponse,
    ResourceType, RevokeTokenRequest, Token, TokenScope,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::store::{self, NewToken, Revoked, TokenRef, TokenRow};
use super::{TokenError, generate};
use crate::app::AppState;
use crate::auth::Caller;
use crate::events::{self, Draft, Origin};
use crate::rpc::{timestamp, traced};
use crate::tenants;

const DEFAULT_TTL_DAYS: i64 = 365;

pub(crate) struct TokenApi {
    state: Arc<AppState>,
}

impl TokenApi {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        TokenApi { state }
    }
}

/// TOKEN_ISSUED with what the token is (never its secret or prefix).
pub(crate) fn issued_event(row: &TokenRow) -> Draft {
    let after = serde_json::json!({
        "name": row.name,
        "scope": row.scope,
        "provider": row.provider,
        "scimOverride": row.scim_override,
        "expireTime": row.expires_at.to_rfc3339(),
    });
    let changes = match after {
        serde_json::Value::Object(after) => events::diff(&Default::default(), &after),
        _ => Default::default(),
    };
    Draft::new(EventType::TokenIssued, ResourceType::Token, row.token_id).with_changes(changes)
}

pub(crate) fn revoked_event(token: Uuid) -> Draft {
    Draft::new(EventType::TokenRevoked, ResourceType::Token, token)
}

/// The API form of a token row: every field but the hash, which is never read.
pub(crate) fn to_proto(row: TokenRow, tenant: &str) -> Token {
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

/// When a token issued now with the requested lifetime expires.
pub(crate) fn expires_at(
    requested: Option<prost_types::Duration>,
) -> Result<DateTime<Utc>, TokenError> {
    Utc::now()
        .checked_add_signed(ttl(requested)?)
        .ok_or_else(|| TokenError::InvalidValue("ttl is too long".into()))
}

/// The token an IssueToken request asks for, checked. A display name
/// without a provider would name nothing; scim_override exempts a caller
/// from the SCIM-managed lock, which only ever restricts non-SCIM callers,
/// so it means something on service tokens only.
fn new_token(req: &IssueTokenRequest) -> Result<NewToken<'_>, TokenError> {
    if req.name.trim().is_empty() {
        return Err(TokenError::InvalidValue("name is required".into()));
    }
    let scope = TokenScope::try_from(req.scope)
        .map_err(|_| TokenError::InvalidValue(format!("unknown token scope {}", req.scope)))?;
    let provider = req.provider.trim();
    let provider_display_name = req.provider_display_name.trim();
    if provider.is_empty() && !provider_display_name.is_empty() {
        return Err(TokenError::InvalidValue(
            "provider_display_name needs a provider".into(),
        ));
    }
    if req.scim_override && scope != TokenScope::Service {
        return Err(TokenError::InvalidValue(
            "scim_override is only allowed on service tokens (TOKEN_SCOPE_SERVICE)".into(),
        ));
    }
    Ok(NewToken {
        name: &req.name,
        scope,
        provider,
        provider_display_name,
        scim_override: req.scim_override,
        expires_at: expires_at(req.ttl)?,
    })
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
            let (mut conn, tenant) = self
                .state
                .operator_write_call(&metadata, &req.tenant)
                .await?;
            let origin = Origin::of(&Caller::Operator, &metadata);
            let token = new_token(&req)?;
            let secret = generate(tenant.id)?;
            // The tenant row stays locked until the insert commits, so a
            // concurrent DisableScim either sees this token and revokes it or
            // runs first and makes this check fail.
            let row = conn
                .transaction(async |tx| {
                    let current = tenants::store::lock(tx, tenant.id).await?;
                    if token.scope == TokenScope::Scim && !current.scim_enabled {
                        return Err(TokenError::ScimDisabled(current.slug));
                    }
                    let row = store::insert(tx, tenant.id, &token, &secret).await?;
                    events::store::record(tx, tenant.id, &origin, &[issued_event(&row)]).await?;
                    Ok(row)
                })
                .await?;
            tracing::info!(
                token_id = %row.token_id,
                prefix = %row.prefix,
                scope = %row.scope,
                "token issued"
            );
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
            let (mut conn, tenant) = self.state.operator_call(&metadata, &req.tenant).await?;
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
            let (mut conn, tenant) = self
                .state
                .operator_write_call(&metadata, &req.tenant)
                .await?;
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
            let origin = Origin::of(&Caller::Operator, &metadata);
            let row = conn
                .transaction(
                    async |tx| match store::revoke(tx, tenant.id, which).await? {
                        Revoked::Now(row) => {
                            let event = revoked_event(row.token_id);
                            events::store::record(tx, tenant.id, &origin, &[event]).await?;
                            Ok::<_, TokenError>(row)
                        }
                        Revoked::Already(row) => Ok(row),
                    },
                )
                .await?;
            self.state.tokens_changed();
            tracing::info!(token_id = %row.token_id, "token revoked");
            Ok(to_proto(row, &tenant.slug))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        scope: TokenScope,
        provider: &str,
        display: &str,
        scim_override: bool,
    ) -> IssueTokenRequest {
        IssueTokenRequest {
            tenant: "acme".into(),
            name: "entra".into(),
            scope: scope as i32,
            provider: provider.into(),
            provider_display_name: display.into(),
            scim_override,
            ttl: None,
        }
    }

    #[test]
    fn issue_request_rules() {
        let linked = request(TokenScope::Scim, " azuread ", "Entra ID", false);
        let token = new_token(&linked).map_err(|e| e.to_string());
        assert_eq!(
            token
                .as_ref()
                .map(|t| (t.scope, t.provider, t.provider_display_name)),
            Ok((TokenScope::Scim, "azuread", "Entra ID"))
        );
        let days = token
            .map(|t| (t.expires_at - Utc::now()).num_days())
            .unwrap_or_default();
        assert!((364..=365).contains(&days), "{days}");
        assert!(new_token(&request(TokenScope::Service, "", "", true)).is_ok());
        for bad in [
            request(TokenScope::Scim, "", "Entra ID", false),
            request(TokenScope::Scim, "azuread", "", true),
            IssueTokenRequest {
                scope: 7,
                ..request(TokenScope::Scim, "", "", false)
            },
            IssueTokenRequest {
                name: " ".into(),
                ..request(TokenScope::Scim, "", "", false)
            },
        ] {
            assert!(
                matches!(new_token(&bad), Err(TokenError::InvalidValue(_))),
                "{bad:?}"
            );
        }
    }

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
