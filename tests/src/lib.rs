//! End-to-end harness: each test gets its own Postgres database (cloned from
//! a migrated template), a real identity service and a real SCIM adapter on
//! loopback sockets, and talks to them over real HTTP and gRPC.

pub mod events;
pub mod postgres;
pub mod process;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use identity_proto::v1::{
    CreateTenantRequest, IssueTokenRequest, TokenScope, event_service_client::EventServiceClient,
    group_service_client::GroupServiceClient, tenant_service_client::TenantServiceClient,
    token_service_client::TokenServiceClient, user_service_client::UserServiceClient,
};
use identity_service::ServiceSettings;
pub use identity_test_db::TestDatabase;
use reqwest::{Method, StatusCode};
use scim_adapter::AdapterSettings;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub use serde_json::json;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A fresh database of this run, cloned from the migrated template.
pub async fn fresh_database() -> TestDatabase {
    TestDatabase::migrated(|url| async move { identity_service::migrate(&url).await }).await
}

pub const ADMIN_TOKEN: &str = "e2e-operator-token-0123456789abcdef";

/// The settings a test stack's identity service starts with.
fn service_settings(database: &TestDatabase) -> ServiceSettings {
    ServiceSettings {
        admin_token: Some(ADMIN_TOKEN.to_string()),
        pool_size: 4,
        ..ServiceSettings::new(database.url())
    }
}

/// Serves an identity service with `settings` from a loopback socket;
/// returns its gRPC URL and the sender that stops it.
async fn spawn_service(settings: ServiceSettings) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
    let url = format!("http://{}", listener.local_addr().expect("gRPC addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let service = identity_service::serve(settings, listener, async move {
        let _ = stopped.await;
    });
    tokio::spawn(async move {
        if let Err(e) = service.await {
            panic!("identity service failed: {e}");
        }
    });
    (url, stop)
}

/// A running identity service + SCIM adapter on their own database.
pub struct Stack {
    pub scim_base: String,
    pub grpc_url: String,
    pub http: reqwest::Client,
    /// This stack's own database, dropped with the stack.
    pub database: TestDatabase,
    channel: Channel,
    stop: Vec<oneshot::Sender<()>>,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with_body_limit(1024 * 1024).await
    }

    pub async fn start_with_body_limit(max_body_bytes: usize) -> Stack {
        Self::start_with(|_| {}, |adapter| adapter.max_body_bytes = max_body_bytes).await
    }

    /// A stack whose service and adapter settings the test adjusts from
    /// the defaults the other tests run with.
    pub async fn start_with(
        service: impl FnOnce(&mut ServiceSettings),
        adapter: impl FnOnce(&mut AdapterSettings),
    ) -> Stack {
        let database = fresh_database().await;
        let mut service_settings = service_settings(&database);
        service(&mut service_settings);
        let (grpc_url, stop_service) = spawn_service(service_settings).await;
        let scim_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SCIM");
        let scim_addr = scim_listener.local_addr().expect("SCIM addr");
        let scim_public = format!("http://{scim_addr}");

        let (stop_adapter, adapter_stopped) = oneshot::channel::<()>();
        let mut adapter_settings = AdapterSettings {
            public_url: Some(scim_public.clone()),
            ..AdapterSettings::new(grpc_url.clone())
        };
        adapter(&mut adapter_settings);
        let adapter = scim_adapter::serve(adapter_settings, scim_listener, async move {
            let _ = adapter_stopped.await;
        });
        tokio::spawn(async move {
            if let Err(e) = adapter.await {
                panic!("SCIM adapter failed: {e}");
            }
        });

        let channel = Channel::from_shared(grpc_url.clone())
            .expect("gRPC url")
            .connect_lazy();
        let stack = Stack {
            scim_base: format!("{scim_public}/scim/v2"),
            grpc_url,
            http: reqwest::Client::new(),
            database,
            channel,
            stop: vec![stop_service, stop_adapter],
        };
        stack.wait_ready().await;
        stack
    }

    /// A second identity service on this stack's database, as another
    /// replica behind the same load balancer would be; stopped with the stack.
    pub async fn start_replica(&mut self) -> Channel {
        let (url, stop) = spawn_service(service_settings(&self.database)).await;
        self.stop.push(stop);
        Channel::from_shared(url).expect("gRPC url").connect_lazy()
    }

    async fn wait_ready(&self) {
        let ready = self.scim_base.replace("/scim/v2", "/readyz");
        for _ in 0..200 {
            if let Ok(r) = self.http.get(&ready).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the stack did not become ready at {ready}");
    }

    pub fn users(
        &self,
        token: &str,
    ) -> UserServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
        UserServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    pub fn groups(
        &self,
        token: &str,
    ) -> GroupServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
        GroupServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    pub fn tenants(
        &self,
        token: &str,
    ) -> TenantServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
        TenantServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    pub fn tokens(
        &self,
        token: &str,
    ) -> TokenServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
        TokenServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    pub fn events(
        &self,
        token: &str,
    ) -> EventServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
        EventServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// Issues a service-scope token (an internal caller's) in `tenant`.
    pub async fn issue_service_token(&self, tenant: &str, name: &str) -> String {
        issue_service_token(&self.channel, tenant, name).await
    }

    /// Creates a tenant and issues it one token, as an operator would.
    pub async fn tenant(&self, slug: &str) -> Tenant {
        create_tenant(&self.channel, slug).await
    }

    pub async fn issue_token(&self, tenant: &str, name: &str) -> String {
        issue_token(&self.channel, tenant, name).await
    }

    /// Runs the `identityctl` binary at `bin` against this stack as the
    /// operator with `--output json`, and returns the JSON it printed;
    /// panics with its stderr when it fails.
    pub async fn identityctl(&self, bin: &str, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let output = self.identityctl_output(bin, ADMIN_TOKEN, &args).await;
        assert!(
            output.status.success(),
            "identityctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "identityctl {args:?} printed no JSON document ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Runs the `identityctl` binary at `bin` against this stack's identity
    /// service with IDENTITY_TOKEN = `token`, off the runtime's threads (the
    /// stack runs on them and must keep answering).
    pub async fn identityctl_output(
        &self,
        bin: &str,
        token: &str,
        args: &[&str],
    ) -> std::process::Output {
        let mut command = std::process::Command::new(bin);
        command
            .args(args)
            .env("IDENTITY_GRPC_URL", &self.grpc_url)
            .env("IDENTITY_TOKEN", token);
        tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("identityctl thread")
            .expect("run identityctl")
    }

    /// A SCIM client for the given bearer token.
    pub fn scim<'a>(&'a self, token: &'a str) -> Scim<'a> {
        Scim::at(&self.http, &self.scim_base, token)
    }

    /// Asserts that both servers still answer: the adapter's health check,
    /// and a new tenant of its own provisioning and reading back a user.
    /// Hostile-input tests call it after each hostile request.
    pub async fn assert_serving(&self) {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let health = self.scim_base.replace("/scim/v2", "/healthz");
        let reply = self.http.get(&health).send().await.expect("adapter alive");
        assert_eq!(reply.status(), StatusCode::OK, "adapter health");
        let slug = format!("bystander-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let tenant = self.tenant(&slug).await;
        let scim = self.scim(&tenant.token);
        let id = scim.create_user(user(&format!("ok@{slug}.example"))).await;
        let read = scim.get(&format!("/Users/{id}")).await;
        assert_eq!(
            read.status,
            StatusCode::OK,
            "another tenant is served: {}",
            read.body
        );
    }

    /// A connection of the test's own to this stack's database, e.g. to
    /// hold locks that stall the service.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(self.database.url(), tokio_postgres::NoTls)
                .await
                .expect("connect to the test database");
        tokio::spawn(connection);
        client
    }

    /// Runs one SQL statement against this stack's database and returns the rows' first columns as text.
    pub async fn query_strings(&self, sql: &str) -> Vec<String> {
        let client = self.connect().await;
        let rows = client.simple_query(sql).await.expect("query");
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some(row.get(0).unwrap_or_default().to_string())
                }
                _ => None,
            })
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for stop in self.stop.drain(..) {
            let _ = stop.send(());
        }
        // The database field is dropped after this, once the servers were told to stop.
    }
}

/// Creates a tenant on the service behind `channel` and issues it one
/// token, as an operator would.
pub async fn create_tenant(channel: &Channel, slug: &str) -> Tenant {
    TenantServiceClient::with_interceptor(channel.clone(), Bearer::new(ADMIN_TOKEN))
        .create_tenant(CreateTenantRequest {
            slug: slug.to_string(),
            display_name: format!("{slug} test tenant"),
        })
        .await
        .expect("create tenant");
    let token = issue_token(channel, slug, "e2e").await;
    Tenant {
        slug: slug.to_string(),
        token,
    }
}

/// Issues a SCIM token of `tenant` as the operator, on the service behind `channel`.
pub async fn issue_token(channel: &Channel, tenant: &str, name: &str) -> String {
    TokenServiceClient::with_interceptor(channel.clone(), Bearer::new(ADMIN_TOKEN))
        .issue_token(IssueTokenRequest {
            tenant: tenant.to_string(),
            name: name.to_string(),
            ..IssueTokenRequest::default()
        })
        .await
        .expect("issue token")
        .into_inner()
        .secret
}

/// Issues a service-scope token (an internal caller's, e.g. an event
/// consumer's) of `tenant` as the operator, on the service behind `channel`.
pub async fn issue_service_token(channel: &Channel, tenant: &str, name: &str) -> String {
    TokenServiceClient::with_interceptor(channel.clone(), Bearer::new(ADMIN_TOKEN))
        .issue_token(IssueTokenRequest {
            tenant: tenant.to_string(),
            name: name.to_string(),
            scope: TokenScope::Service as i32,
            ..IssueTokenRequest::default()
        })
        .await
        .expect("issue service token")
        .into_inner()
        .secret
}

pub struct Tenant {
    pub slug: String,
    pub token: String,
}

/// Adds `authorization: Bearer …` to every gRPC call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Bearer(format!("Bearer {token}").parse().expect("ascii token"))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A SCIM response: status, headers and the parsed JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a SCIM Error body with this status and scimType (None: no scimType required).
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status, body: {}",
            self.body
        );
        assert_eq!(
            self.body["schemas"][0], ERROR_SCHEMA,
            "not a SCIM error: {}",
            self.body
        );
        assert_eq!(
            self.body["status"],
            status.to_string(),
            "status must be a string: {}",
            self.body
        );
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "error without detail: {}",
            self.body
        );
        if let Some(scim_type) = scim_type {
            assert_eq!(
                self.body["scimType"], scim_type,
                "wrong scimType: {}",
                self.body
            );
        }
    }
}

pub struct Scim<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    token: &'a str,
}

impl<'a> Scim<'a> {
    /// A SCIM client of the adapter whose `/scim/v2` URL is `base`: for
    /// adapters that run as processes rather than in a [`Stack`].
    pub fn at(http: &'a reqwest::Client, base: &'a str, token: &'a str) -> Scim<'a> {
        Scim { http, base, token }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional JSON body as application/scim+json.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        Self::reply(request).await
    }

    /// Sends a raw body with the given content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: String,
    ) -> Reply {
        let request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.token)
            .header("content-type", content_type)
            .body(body);
        Self::reply(request).await
    }

    pub async fn reply(request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("HTTP request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("HTTP body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, operations: Value) -> Reply {
        self.send(
            Method::PATCH,
            path,
            Some(json!({"schemas": [PATCH_SCHEMA], "Operations": operations})),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Lists users matching a filter (URL-encoded here).
    pub async fn filter_users(&self, filter: &str) -> Reply {
        let request = self
            .http
            .get(self.url("/Users"))
            .query(&[("filter", filter)])
            .bearer_auth(self.token);
        Self::reply(request).await
    }

    /// Creates a user and returns its id, asserting 201.
    pub async fn create_user(&self, body: Value) -> String {
        let reply = self.post("/Users", body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "create failed: {}",
            reply.body
        );
        reply.body["id"]
            .as_str()
            .expect("created user has an id")
            .to_string()
    }
}

/// A minimal valid user with this userName.
pub fn user(user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Given", "familyName": "Family"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": true
    })
}
