//! The gRPC server: service wiring, health and shutdown. Nothing imports it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::RunQueryDsl;
use identity_proto::v1::auth_service_server::AuthServiceServer;
use identity_proto::v1::event_service_server::EventServiceServer;
use identity_proto::v1::group_service_server::GroupServiceServer;
use identity_proto::v1::tenant_service_server::TenantServiceServer;
use identity_proto::v1::token_service_server::TokenServiceServer;
use identity_proto::v1::user_service_server::UserServiceServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::app::AppState;
use crate::auth::Authenticator;
use crate::auth::service::AuthApi;
use crate::db::{self, Pool};
use crate::events::hub::{Hub, WatchLimits};
use crate::events::prune::Pruner;
use crate::events::sequencer::Sequencer;
use crate::events::service::EventApi;
use crate::groups::service::GroupApi;
use crate::limits::{Limits, RequestBound};
use crate::metrics::{self, ServiceMetrics};
use crate::telemetry::RpcTelemetry;
use crate::tenants::service::TenantApi;
use crate::tokens::service::TokenApi;
use crate::users::service::UserApi;
use crate::{ServiceSettings, StartupError};

/// How often a caught-up Watch reads again without a notification.
const WATCH_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How often the sequencer looks for pending events: what an event waits
/// at most for its number beyond the round (an idle look is one index
/// probe).
const SEQUENCE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The least time between two sequencer rounds that number events: under a
/// stream of writes a round numbers what arrived meanwhile, so the rounds'
/// fixed cost stays a small share of the database's time.
const SEQUENCE_ROUND_SPACING: Duration = Duration::from_millis(20);

/// How often a sequencer that numbers events vacuums the pending table, so
/// that its look at the oldest pending rows walks few dead ones.
const PENDING_VACUUM_INTERVAL: Duration = Duration::from_secs(5);

/// How often the health service re-checks the database.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// Serves UserService, GroupService, TenantService, TokenService,
/// AuthService, EventService, grpc.health.v1 and server reflection on
/// `listener` until `shutdown` completes, then drains as
/// [`ServiceSettings::drain`] says.
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
    let metrics = Arc::new(ServiceMetrics::new([
        ("work", pool.clone(), settings.pool_size),
        ("auth", auth_pool.clone(), settings.auth_pool_size),
    ]));
    let event_metrics = metrics.events.clone();
    let admin = match settings.admin_addr {
        Some(addr) => Some(metrics::serve_admin(addr, Arc::clone(&metrics)).await?),
        None => None,
    };
    let state = Arc::new(AppState::new(
        pool.clone(),
        auth_pool,
        Authenticator::new(
            settings.admin_token.as_deref(),
            settings.token_cache_ttl,
            metrics.token_cache.clone(),
        ),
        Limits::new(
            settings.tenant_max_concurrent_requests,
            settings.tenant_queue_timeout,
            settings.token_rate,
        ),
    ));
    let (reporter, health) = tonic_health::server::health_reporter();
    set_health(&reporter, ServingStatus::Serving).await;
    let (drain_started, draining) = oneshot::channel();
    let watcher = tokio::spawn(watch_database(pool.clone(), reporter, draining));
    let stop_watching = watcher.abort_handle();
    let unready = async move {
        let _ = drain_started.send(());
        let _ = watcher.await;
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "identity service listening");
    }
    // What `grpcurl list` and `describe` read, so no .proto files are needed.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(identity_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartupError::Serve(format!("cannot build server reflection: {e}")))?;
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let (hub, listener_task) = Hub::start(
        settings.database_url.clone(),
        WatchLimits {
            buffer: settings.watch_buffer,
            max_lag: settings.watch_max_lag,
            poll_interval: WATCH_POLL_INTERVAL,
        },
        event_metrics.clone(),
        stopping,
    );
    let sequencer = tokio::spawn(
        Sequencer {
            pool: pool.clone(),
            wake: state.sequencer_wake(),
            poll_interval: SEQUENCE_POLL_INTERVAL,
            spacing: SEQUENCE_ROUND_SPACING,
            vacuum_interval: PENDING_VACUUM_INTERVAL,
            metrics: event_metrics.clone(),
        }
        .run(),
    );
    let pruner = tokio::spawn(
        Pruner {
            pool,
            retention: settings.event_retention,
            interval: settings.event_prune_interval,
            metrics: event_metrics,
        }
        .run(),
    );
    let mut server = Server::builder();
    if let Some(tls) = settings.tls {
        server = server.tls_config(tls).map_err(|e| {
            StartupError::Config(identity_proto::tls::TlsError::invalid(&e).to_string())
        })?;
    }
    // Outermost, the span and the measurement of each call (its time-out
    // answer included). tonic ends a call at the caller's own
    // `grpc-timeout` (CANCELLED, to a caller who has already gone); the
    // server-wide bound answers DEADLINE_EXCEEDED with `retry-after`.
    let router = server
        .layer(RpcTelemetry { metrics })
        .layer(RequestBound {
            limit: settings.request_timeout,
        })
        .add_service(health)
        .add_service(reflection)
        .add_service(UserServiceServer::new(UserApi::new(state.clone())))
        .add_service(GroupServiceServer::new(GroupApi::new(state.clone())))
        .add_service(TenantServiceServer::new(TenantApi::new(state.clone())))
        .add_service(TokenServiceServer::new(TokenApi::new(state.clone())))
        .add_service(EventServiceServer::new(EventApi::new(
            state.clone(),
            Arc::new(hub),
        )))
        .add_service(AuthServiceServer::new(AuthApi::new(state)));
    // Without TCP_NODELAY a small response waits on the caller's delayed
    // ACK: a flat ~40 ms per call from a single client.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = settings
        .drain
        .run(shutdown, unready, |stop| {
            // Watches run until told: they end (UNAVAILABLE, resume by
            // sequence) when the server stops accepting, or the drain would
            // wait its whole grace period for streams that never end.
            router.serve_with_incoming_shutdown(incoming, async move {
                stop.await;
                let _ = stopping_tx.send(true);
            })
        })
        .await;
    stop_watching.abort();
    if let Some(admin) = admin {
        admin.abort();
    }
    listener_task.abort();
    sequencer.abort();
    pruner.abort();
    // The server and its services are dropped by now, and with them the
    // pools and their connections (save those of requests cut short by the
    // grace period, which close as the process exits).
    tracing::info!("identity service stopped");
    served
        .unwrap_or(Ok(()))
        .map_err(|e| StartupError::Serve(e.to_string()))
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
    reporter
        .set_service_status(
            <EventServiceServer<EventApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}

/// Reports NOT_SERVING while the database cannot be reached, and for good
/// once `draining` fires (the one writer of the health status after
/// start-up, so a check in progress cannot report SERVING again).
async fn watch_database(pool: Pool, reporter: HealthReporter, mut draining: oneshot::Receiver<()>) {
    let mut serving = true;
    loop {
        let check = async {
            tokio::time::sleep(HEALTH_INTERVAL).await;
            match db::conn(&pool).await {
                Ok(mut conn) => diesel::sql_query("SELECT 1")
                    .execute(&mut conn)
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        };
        let healthy = tokio::select! {
            _ = &mut draining => {
                set_health(&reporter, ServingStatus::NotServing).await;
                tracing::info!("draining: reporting NOT_SERVING");
                return;
            }
            healthy = check => healthy,
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
