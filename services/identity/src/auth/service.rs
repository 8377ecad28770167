//! `identity.v1.AuthService`: tells any valid caller who it is.

use std::sync::Arc;

use identity_proto::v1::auth_service_server::AuthService;
use identity_proto::v1::principal::Kind;
use identity_proto::v1::{Principal, TenantCaller, WhoAmIRequest};

use super::Caller;
use crate::app::AppState;
use crate::rpc::{record_tenant, traced};

/// The AuthService API.
pub(crate) struct AuthApi {
    state: Arc<AppState>,
}

impl AuthApi {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        AuthApi { state }
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn who_am_i(
        &self,
        request: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<Principal>, tonic::Status> {
        traced("WhoAmI", async {
            let (_conn, caller) = self.state.call(request.metadata()).await?;
            let kind = match caller {
                Caller::Operator => Kind::Operator(true),
                Caller::Tenant {
                    tenant,
                    token_id,
                    token_name,
                    scope,
                    ..
                } => {
                    record_tenant(&tenant.slug);
                    Kind::Tenant(TenantCaller {
                        tenant: tenant.slug,
                        token_id: token_id.to_string(),
                        token_name,
                        scope: scope as i32,
                    })
                }
            };
            Ok(Principal { kind: Some(kind) })
        })
        .await
    }
}
