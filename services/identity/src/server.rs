//! The gRPC server: service wiring, health and shutdown. Nothing imports it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::RunQueryDsl;
use identity_proto::v1::auth_service_server::AuthServiceServer;
use identity_proto::v1::group_service_server::GroupServiceServer;
use identity_proto::v1::tenant_service_server::TenantServiceServer;
use identity_proto::v1::token_service_server::TokenServiceServer;
use identity_proto::v1::user_service_server::UserServiceServer;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::app::AppState;
use crate::auth::Authenticator;
use crate::auth::service::AuthApi;
use crate::db::{self, Pool};
use crate::groups::service::GroupApi;
use crate::limits::{Limits, RequestBound};
use crate::tenants::service::TenantApi;
use crate::tokens::service::TokenApi;
use crate::users::service::UserApi;
use crate::{ServiceSettings, StartupError};

/// How often the health service re-checks the database.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// Serves UserService, GroupService, TenantService, TokenService,
/// AuthService and grpc.health.v1 on `listener` until `shutdown` completes.
/// Does not migrate.
pub async fn serve(
    settings: ServiceSettings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    if settings.tenant_max_concurrent_requests == 0 {
        return Err(StartupError::Config(
            "the per-tenant concurrent request cap must be at least 1".into(),
        ));
    }
    let pool = db::connect_pool(
        &settings.database_url,
        settings.pool_size,
        settings.statement_timeout,
    )
    .await?;
    let auth_pool = db::connect_pool(
        &settings.database_url,
        settings.auth_pool_size,
        settings.statement_timeout,
    )
    .await?;
    if settings.admin_token.as_deref().is_none_or(str::is_empty) {
        tracing::warn!("IDENTITY_ADMIN_TOKEN is not set: no operator can manage tenants or tokens");
    }
    let state = Arc::new(AppState::new(
        pool.clone(),
        auth_pool,
        Authenticator::new(settings.admin_token.as_deref(), settings.token_cache_ttl),
        Limits::new(
            settings.tenant_max_concurrent_requests,
            settings.tenant_queue_timeout,
            settings.token_rate,
        ),
    ));
    let (reporter, health) = tonic_health::server::health_reporter();
    set_health(&reporter, ServingStatus::Serving).await;
    let watcher = tokio::spawn(watch_database(pool, reporter));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "identity service listening");
    }
    // tonic ends a call at the caller's own `grpc-timeout` (CANCELLED, to
    // a caller who has already gone); the server-wide bound answers
    // DEADLINE_EXCEEDED with `retry-after`.
    let result = Server::builder()
        .layer(RequestBound {
            limit: settings.request_timeout,
        })
        .add_service(health)
        .add_service(UserServiceServer::new(UserApi::new(state.clone())))
        .add_service(GroupServiceServer::new(GroupApi::new(state.clone())))
        .add_service(TenantServiceServer::new(TenantApi::new(state.clone())))
        .add_service(TokenServiceServer::new(TokenApi::new(state.clone())))
        .add_service(AuthServiceServer::new(AuthApi::new(state)))
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY a small response waits on the caller's
            // delayed ACK: a flat ~40 ms per call from a single client.
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await;
    watcher.abort();
    tracing::info!("identity service stopped");
    result.map_err(|e| StartupError::Serve(e.to_string()))
}

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter
        .set_service_status(
            <UserServiceServer<UserApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    reporter
        .set_service_status(
            <GroupServiceServer<GroupApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    reporter
        .set_service_status(
            <TenantServiceServer<TenantApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    reporter
        .set_service_status(
            <TokenServiceServer<TokenApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    reporter
        .set_service_status(
            <AuthServiceServer<AuthApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}

/// Reports NOT_SERVING while the database cannot be reached.
async fn watch_database(pool: Pool, reporter: HealthReporter) {
    let mut serving = true;
    loop {
        tokio::time::sleep(HEALTH_INTERVAL).await;
        let healthy = match db::conn(&pool).await {
            Ok(mut conn) => diesel::sql_query("SELECT 1")
                .execute(&mut conn)
                .await
                .is_ok(),
            Err(_) => false,
        };
        if healthy != serving {
            serving = healthy;
            if healthy {
                tracing::info!("database reachable again");
            } else {
                tracing::warn!("database unreachable: reporting NOT_SERVING");
            }
            let status = if healthy {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_health(&reporter, status).await;
        }
    }
}
