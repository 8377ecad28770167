//! A private database (a clone of the migrated template, see `identity-test-db`)
//! and an in-process service on a real socket per test.
//! Each test binary (db.rs, groups.rs) uses a part of these helpers.
#![allow(dead_code)]

use identity_proto::v1::auth_service_client::AuthServiceClient;
use identity_proto::v1::group_service_client::GroupServiceClient;
use identity_proto::v1::tenant_service_client::TenantServiceClient;
use identity_proto::v1::token_service_client::TokenServiceClient;
use identity_proto::v1::user_service_client::UserServiceClient;
use identity_proto::v1::{CreateTenantRequest, IssueTokenRequest};
use identity_service::{ServiceSettings, StartupError};
pub use identity_test_db::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Request, Status};
use tonic_types::StatusExt;

pub const OPERATOR: &str = "test-operator-token";

/// A migrated database with the service serving it on 127.0.0.1; or, from
/// [`TestService::replica`], one more replica serving another's database.
pub struct TestService {
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), StartupError>>>,
    url: String,
    /// Dropped (and the database with it) by the first service only.
    db: Option<TestDatabase>,
}

impl TestService {
    pub async fn start() -> TestService {
        Self::start_with(|_| {}).await
    }

    /// A service whose settings the test adjusts from the defaults.
    pub async fn start_with(adjust: impl FnOnce(&mut ServiceSettings)) -> TestService {
        let db = TestDatabase::migrated(|url| async move { identity_service::migrate(&url).await })
            .await;
        let mut service = Self::serve(db.url(), adjust).await;
        service.db = Some(db);
        service
    }

    /// A second replica on this service's database, with default settings,
    /// as a rolling deployment runs them. Stop it before this one.
    pub async fn replica(&self) -> TestService {
        Self::serve(&self.url, |_| {}).await
    }

    async fn serve(url: &str, adjust: impl FnOnce(&mut ServiceSettings)) -> TestService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind failed: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let mut settings = ServiceSettings {
            admin_token: Some(OPERATOR.into()),
            pool_size: 8,
            ..ServiceSettings::new(url)
        };
        // No load balancer to wait for: `stop` drains at once.
        settings.drain.delay = std::time::Duration::ZERO;
        adjust(&mut settings);
        let task = tokio::spawn(identity_service::serve(settings, listener, async {
            let _ = rx.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot reach the service: {e}"));
        TestService {
            channel,
            shutdown: Some(tx),
            task: Some(task),
            url: url.to_owned(),
            db: None,
        }
    }

    /// The URL of the service's database, for the test's own connections.
    pub fn database_url(&self) -> &str {
        &self.url
    }

    pub fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel.clone())
    }

    pub fn groups(&self) -> GroupServiceClient<Channel> {
        GroupServiceClient::new(self.channel.clone())
    }

    pub fn tenants(&self) -> TenantServiceClient<Channel> {
        TenantServiceClient::new(self.channel.clone())
    }

    pub fn tokens(&self) -> TokenServiceClient<Channel> {
        TokenServiceClient::new(self.channel.clone())
    }

    pub fn health(&self) -> tonic_health::pb::health_client::HealthClient<Channel> {
        tonic_health::pb::health_client::HealthClient::new(self.channel.clone())
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    /// Creates a tenant and returns a fresh token of it.
    pub async fn tenant_with_token(&self, slug: &str) -> String {
        self.tenants()
            .create_tenant(call(
                OPERATOR,
                CreateTenantRequest {
                    slug: slug.into(),
                    display_name: slug.to_uppercase(),
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("create tenant {slug}: {e}"));
        self.tokens()
            .issue_token(call(
                OPERATOR,
                IssueTokenRequest {
                    tenant: slug.into(),
                    name: "test".into(),
                    ..IssueTokenRequest::default()
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("issue token for {slug}: {e}"))
            .into_inner()
            .secret
    }

    /// Stops the server gracefully and checks it ended cleanly.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let result = task.await.unwrap_or_else(|e| panic!("server task: {e}"));
            assert!(result.is_ok(), "serve ended with {result:?}");
        }
    }
}

/// A request carrying `authorization: Bearer <token>`.
pub fn call<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .unwrap_or_else(|e| panic!("header: {e}"));
    request.metadata_mut().insert("authorization", value);
    request
}

/// The ErrorInfo reason of a status, or "" when it has none.
pub fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}
