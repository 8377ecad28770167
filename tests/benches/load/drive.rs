//! Closed-loop clients: each sends its next request when the previous one
//! has answered, for a fixed time, and records the latency of every answer
//! in its own HDR histogram; the histograms merge at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use identity_lifecycle_tests::{ADMIN_TOKEN, Bearer, USER_SCHEMA, json};
use identity_proto::v1::{
    CreateTenantRequest, CreateUserRequest, GetUserRequest, IssueTokenRequest, User,
    tenant_service_client::TenantServiceClient, token_service_client::TokenServiceClient,
    user_service_client::UserServiceClient,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::procs::Stack;

const TENANT: &str = "bench";
/// Concurrent CreateUser calls while seeding.
const SEED_CONCURRENCY: usize = 32;

/// The statement whose pgbench rate bounds a scenario.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Statement {
    Insert,
    Select,
}

#[derive(Clone, Copy)]
pub enum Scenario {
    ScimPost,
    ScimFilter,
    ScimGet,
    GrpcGet,
    GrpcCreate,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::ScimPost,
        Scenario::ScimFilter,
        Scenario::ScimGet,
        Scenario::GrpcGet,
        Scenario::GrpcCreate,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Scenario::ScimPost => "SCIM POST /Users",
            Scenario::ScimFilter => "SCIM GET /Users?filter=userName eq",
            Scenario::ScimGet => "SCIM GET /Users/{id}",
            Scenario::GrpcGet => "gRPC GetUser",
            Scenario::GrpcCreate => "gRPC CreateUser",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Scenario::ScimPost => "scim_post_users",
            Scenario::ScimFilter => "scim_filter_user_name",
            Scenario::ScimGet => "scim_get_user",
            Scenario::GrpcGet => "grpc_get_user",
            Scenario::GrpcCreate => "grpc_create_user",
        }
    }

    pub fn statement(self) -> Statement {
        match self {
            Scenario::ScimPost | Scenario::GrpcCreate => Statement::Insert,
            Scenario::ScimFilter | Scenario::ScimGet | Scenario::GrpcGet => Statement::Select,
        }
    }
}

type Users = UserServiceClient<InterceptedService<Channel, Bearer>>;

/// Everything a client needs to send any scenario's request.
pub struct Target {
    http: reqwest::Client,
    scim_base: String,
    bearer: String,
    users: Users,
    /// Ids of the seeded users, `seed{n}@example.com` for n in 0..ids.len().
    ids: Vec<String>,
    /// Makes this run's created userNames unique against earlier runs' data.
    nonce: u128,
    /// Numbers every created userName of this run, across scenarios and client counts.
    created: AtomicU64,
}

fn seeded_name(n: usize) -> String {
    format!("seed{n}@example.com")
}

fn user(user_name: String) -> User {
    User {
        user_name,
        ..User::default()
    }
}

impl Target {
    /// Creates the tenant and its SCIM token through gRPC, as an operator would.
    pub async fn connect(stack: &Stack) -> Result<Target, String> {
        let channel = Endpoint::from_shared(stack.grpc_url.clone())
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| format!("connect to identity-service: {e}"))?;
        TenantServiceClient::with_interceptor(channel.clone(), Bearer::new(ADMIN_TOKEN))
            .create_tenant(CreateTenantRequest {
                slug: TENANT.to_string(),
                display_name: "Load benchmark".to_string(),
            })
            .await
            .map_err(|e| format!("create tenant: {e}"))?;
        let bearer =
            TokenServiceClient::with_interceptor(channel.clone(), Bearer::new(ADMIN_TOKEN))
                .issue_token(IssueTokenRequest {
                    tenant: TENANT.to_string(),
                    name: "load".to_string(),
                    ..IssueTokenRequest::default()
                })
                .await
                .map_err(|e| format!("issue token: {e}"))?
                .into_inner()
                .secret;
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Target {
            http,
            scim_base: stack.scim_base.clone(),
            users: UserServiceClient::with_interceptor(channel, Bearer::new(&bearer)),
            bearer,
            ids: Vec::new(),
            nonce: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
            created: AtomicU64::new(0),
        })
    }

    /// Creates `count` users through concurrent gRPC CreateUser calls.
    pub async fn seed(&mut self, count: usize) -> Result<Duration, String> {
        let started = Instant::now();
        let users = self.users.clone();
        let created: Vec<Result<String, String>> = futures::stream::iter(0..count)
            .map(|n| {
                let mut users = users.clone();
                async move {
                    users
                        .create_user(CreateUserRequest {
                            tenant: TENANT.to_string(),
                            user: Some(user(seeded_name(n))),
                        })
                        .await
                        .map(|reply| reply.into_inner().id)
                        .map_err(|e| format!("seed user {n}: {e}"))
                }
            })
            .buffered(SEED_CONCURRENCY)
            .collect()
            .await;
        self.ids = created.into_iter().collect::<Result<_, _>>()?;
        Ok(started.elapsed())
    }

    /// Sends one request of `scenario`; an error names what answered.
    async fn once(&self, scenario: Scenario, rng: &mut StdRng) -> Result<(), String> {
        let pick = rng.random_range(0..self.ids.len());
        let n = self.created.fetch_add(1, Ordering::Relaxed);
        let fresh = format!("load-{}-{n}@example.com", self.nonce);
        let request = match scenario {
            Scenario::ScimPost => self
                .http
                .post(format!("{}/Users", self.scim_base))
                .header("content-type", "application/scim+json")
                .json(&json!({
                    "schemas": [USER_SCHEMA],
                    "userName": fresh,
                    "name": {"givenName": "Load", "familyName": "Bench"},
                    "emails": [{"value": fresh, "type": "work", "primary": true}],
                    "active": true,
                })),
            Scenario::ScimFilter => self
                .http
                .get(format!("{}/Users", self.scim_base))
                .query(&[("filter", format!("userName eq \"{}\"", seeded_name(pick)))]),
            Scenario::ScimGet => self
                .http
                .get(format!("{}/Users/{}", self.scim_base, self.ids[pick])),
            Scenario::GrpcGet | Scenario::GrpcCreate => {
                return self.grpc(scenario, pick, fresh).await;
            }
        };
        let want = if matches!(scenario, Scenario::ScimPost) {
            201
        } else {
            200
        };
        let reply = request
            .bearer_auth(&self.bearer)
            .send()
            .await
            .map_err(transport)?;
        if reply.status().as_u16() != want {
            return Err(format!("HTTP {}", reply.status().as_u16()));
        }
        // The whole body, as a client would read it before its next request.
        reply.bytes().await.map(drop).map_err(transport)
    }

    async fn grpc(&self, scenario: Scenario, pick: usize, fresh: String) -> Result<(), String> {
        let mut users = self.users.clone();
        let answer = if matches!(scenario, Scenario::GrpcGet) {
            users
                .get_user(GetUserRequest {
                    tenant: TENANT.to_string(),
                    id: self.ids[pick].clone(),
                    show_deleted: false,
                })
                .await
        } else {
            users
                .create_user(CreateUserRequest {
                    tenant: TENANT.to_string(),
                    user: Some(user(fresh)),
                })
                .await
        };
        answer.map(drop).map_err(|s| format!("gRPC {:?}", s.code()))
    }
}

fn transport(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_string()
    } else if e.is_connect() {
        "connect".to_string()
    } else {
        "transport".to_string()
    }
}

/// One scenario at one client count.
pub struct Run {
    pub clients: usize,
    pub elapsed: Duration,
    /// Latency of every successful answer, in microseconds.
    pub latency: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Run {
    pub fn throughput(&self) -> f64 {
        self.latency.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

pub async fn run(
    target: &Arc<Target>,
    scenario: Scenario,
    clients: usize,
    duration: Duration,
) -> Run {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let target = Arc::clone(target);
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(client as u64);
                let mut latency = histogram();
                let mut errors = BTreeMap::<String, u64>::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match target.once(scenario, &mut rng).await {
                        Ok(()) => latency.saturating_record(sent.elapsed().as_micros() as u64),
                        Err(kind) => *errors.entry(kind).or_default() += 1,
                    }
                }
                (latency, errors)
            })
        })
        .collect();
    let mut run = Run {
        clients,
        elapsed: Duration::ZERO,
        latency: histogram(),
        errors: BTreeMap::new(),
    };
    for task in tasks {
        match task.await {
            Ok((latency, errors)) => {
                let _ = run.latency.add(&latency);
                for (kind, count) in errors {
                    *run.errors.entry(kind).or_default() += count;
                }
            }
            Err(e) => *run.errors.entry(format!("client task: {e}")).or_default() += 1,
        }
    }
    run.elapsed = started.elapsed();
    run
}
