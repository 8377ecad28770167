//! A private database and an in-process service on a real socket per test.
//! Each test binary (db.rs, groups.rs) uses a part of these helpers.
#![allow(dead_code)]

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use identity_proto::v1::auth_service_client::AuthServiceClient;
use identity_proto::v1::group_service_client::GroupServiceClient;
use identity_proto::v1::tenant_service_client::TenantServiceClient;
use identity_proto::v1::token_service_client::TokenServiceClient;
use identity_proto::v1::user_service_client::UserServiceClient;
use identity_proto::v1::{CreateTenantRequest, IssueTokenRequest};
use identity_service::{ServiceSettings, StartupError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Request, Status};
use tonic_types::StatusExt;

pub const OPERATOR: &str = "test-operator-token";

/// The admin URL from TEST_DATABASE_URL; these tests refuse to pass silently without it.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "TEST_DATABASE_URL is not set: the database tests need a Postgres admin URL, \
             e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres"
        )
    })
}

/// `admin` with its database name replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (scheme, rest) = admin
        .split_once("://")
        .unwrap_or_else(|| panic!("TEST_DATABASE_URL must be a postgres:// URL"));
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    match rest.split_once('?') {
        Some((_, query)) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// A fresh database, dropped (WITH FORCE) when the value is dropped, even on panic.
pub struct TestDb {
    admin: String,
    name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let admin = admin_url();
        let name = format!("svc_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let url = database_url(&admin, &name);
        TestDb { admin, name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // A thread of its own: Drop may run inside or outside a runtime.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&admin).await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// A migrated database with the service serving it on 127.0.0.1.
pub struct TestService {
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), StartupError>>>,
    _db: TestDb,
}

impl TestService {
    pub async fn start() -> TestService {
        let db = TestDb::create().await;
        identity_service::migrate(&db.url)
            .await
            .unwrap_or_else(|e| panic!("migrate failed: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind failed: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let settings = ServiceSettings {
            admin_token: Some(OPERATOR.into()),
            pool_size: 8,
            ..ServiceSettings::new(db.url.clone())
        };
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
            _db: db,
        }
    }

    /// The URL of this test's own database, for seeding what is not under test.
    pub fn database_url(&self) -> &str {
        &self._db.url
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
