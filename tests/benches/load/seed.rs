//! The tenant under load, built as an operator and an IdP would build it:
//! users and groups through the gRPC API, the big group's members through
//! SCIM PATCH in the batches Entra sends, and never an ANALYZE, so the plans
//! measured are those of a tenant right after a bulk push.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use futures::StreamExt;
use identity_lifecycle_tests::{ADMIN_TOKEN, Bearer, PATCH_SCHEMA, json};
use identity_proto::v1::{
    CreateGroupRequest, CreateTenantRequest, CreateUserRequest, Group, IssueTokenRequest,
    group_service_client::GroupServiceClient, tenant_service_client::TenantServiceClient,
    token_service_client::TokenServiceClient, user_service_client::UserServiceClient,
};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

use crate::drive::{PAGE, TENANT, Target, grpc_user, seeded_name};
use crate::procs::Stack;

/// Calls in flight while seeding through gRPC, spread over as many
/// HTTP/2 connections so that no single connection is the queue.
const SEED_CONCURRENCY: usize = 64;
const SEED_CHANNELS: usize = 4;
/// The issue's tenant shape: 1,000 groups besides the two measured ones.
pub const GROUPS: usize = 1_000;
pub const BIG_GROUP_MAX: usize = 100_000;
pub const SMALL_GROUP: usize = 10;
/// Members per PATCH while filling the big group. Entra pushes a big
/// group's membership as many `add members` PATCHes of a few members each;
/// neither its documentation nor our notes on IdP behaviour give the exact
/// batch size, so this is a working figure of the same order, to be
/// corrected when a trace of Entra shows it.
pub const MEMBERS_PER_PATCH: usize = 20;
/// PATCHes in flight while filling: they queue on the group's row lock.
const FILL_CONCURRENCY: usize = 4;
/// Page size of the walk to the deep cursor: the largest the server gives.
const WALK_PAGE: usize = 1_000;

/// How long each part of seeding took, for the report.
#[derive(Default)]
pub struct Seeding {
    pub users: usize,
    pub users_seconds: f64,
    pub spares: usize,
    pub groups: usize,
    pub groups_seconds: f64,
    pub big_group: usize,
    pub big_group_seconds: f64,
    pub deep_index: usize,
}

fn seconds_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

impl Target {
    /// Creates the tenant and its SCIM token through gRPC, as an operator would.
    pub async fn connect(stack: &Stack) -> Result<Target, String> {
        let channel = channel(&stack.grpc_url).await?;
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
        let mut target = Target::scim_only(stack.scim_base.clone(), bearer.clone())?;
        target.grpc = Some(UserServiceClient::with_interceptor(
            channel,
            Bearer::new(&bearer),
        ));
        Ok(target)
    }

    /// A target reached through SCIM only (the peer), nothing seeded yet.
    pub fn scim_only(scim_base: String, bearer: String) -> Result<Target, String> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Target {
            http,
            scim_base,
            bearer,
            grpc: None,
            ids: Vec::new(),
            spares: Vec::new(),
            small_group: String::new(),
            big_group: String::new(),
            deep_index: 1,
            deep_cursor: String::new(),
            nonce: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
            created: AtomicU64::new(0),
        })
    }

    /// Creates `count` users named by `name` through concurrent gRPC
    /// CreateUser calls over several connections; their ids in order.
    pub async fn create_users(
        &self,
        grpc_url: &str,
        count: usize,
        name: fn(usize) -> String,
    ) -> Result<Vec<String>, String> {
        let mut clients = Vec::new();
        for _ in 0..SEED_CHANNELS {
            clients.push(UserServiceClient::with_interceptor(
                channel(grpc_url).await?,
                Bearer::new(&self.bearer),
            ));
        }
        let step = (count / 10).max(1);
        let mut ids = vec![String::new(); count];
        let mut created = futures::stream::iter(0..count)
            .map(|n| {
                let mut users = clients[n % SEED_CHANNELS].clone();
                async move {
                    let reply = users
                        .create_user(CreateUserRequest {
                            tenant: TENANT.to_string(),
                            user: Some(grpc_user(name(n))),
                        })
                        .await
                        .map_err(|e| format!("seed user {n}: {e}"))?;
                    Ok::<_, String>((n, reply.into_inner().id))
                }
            })
            .buffer_unordered(SEED_CONCURRENCY);
        let mut done = 0;
        while let Some(result) = created.next().await {
            let (n, id) = result?;
            ids[n] = id;
            done += 1;
            if done % step == 0 && count >= 10_000 {
                eprintln!("  {done} / {count}");
            }
        }
        Ok(ids)
    }

    /// The seeded users, one spare user per client, 1,000 groups, the big
    /// group filled by SCIM PATCH and the 10-member group; then the cursor
    /// of the deep page. Groups only when a member scenario needs them.
    pub async fn seed(
        &mut self,
        grpc_url: &str,
        users: usize,
        spares: usize,
        groups: bool,
    ) -> Result<Seeding, String> {
        let mut seeding = Seeding {
            users,
            spares,
            ..Seeding::default()
        };
        eprintln!("seeding {users} users through gRPC CreateUser");
        let started = Instant::now();
        self.ids = self.create_users(grpc_url, users, seeded_name).await?;
        self.spares = self.create_users(grpc_url, spares, spare_name).await?;
        seeding.users_seconds = seconds_since(started);
        eprintln!(
            "seeded in {:.1} s ({:.0} users/s)",
            seeding.users_seconds,
            (users + spares) as f64 / seeding.users_seconds
        );
        if groups {
            let started = Instant::now();
            eprintln!("creating {GROUPS} groups through gRPC CreateGroup");
            self.create_groups(grpc_url).await?;
            seeding.groups = GROUPS;
            seeding.groups_seconds = seconds_since(started);

            let started = Instant::now();
            let big = users.min(BIG_GROUP_MAX);
            eprintln!(
                "filling a group of {big} members through SCIM PATCH, {MEMBERS_PER_PATCH} per PATCH"
            );
            self.big_group = self.scim_group("big").await?;
            let members: Vec<String> = self.ids[..big].to_vec();
            self.fill(&self.big_group, &members).await?;
            seeding.big_group = big;
            seeding.big_group_seconds = seconds_since(started);
            eprintln!(
                "filled in {:.1} s ({:.0} PATCH/s)",
                seeding.big_group_seconds,
                big.div_ceil(MEMBERS_PER_PATCH) as f64 / seeding.big_group_seconds
            );
            self.small_group = self.scim_group("small").await?;
            let small: Vec<String> = self.ids[..SMALL_GROUP.min(users)].to_vec();
            self.fill(&self.small_group, &small).await?;
        }
        Ok(seeding)
    }

    async fn create_groups(&self, grpc_url: &str) -> Result<(), String> {
        let groups = GroupServiceClient::with_interceptor(
            channel(grpc_url).await?,
            Bearer::new(&self.bearer),
        );
        let results: Vec<Result<(), String>> = futures::stream::iter(0..GROUPS)
            .map(|n| {
                let mut groups = groups.clone();
                async move {
                    groups
                        .create_group(CreateGroupRequest {
                            tenant: TENANT.to_string(),
                            group: Some(Group {
                                display_name: format!("group {n}"),
                                ..Group::default()
                            }),
                            member_ids: Vec::new(),
                        })
                        .await
                        .map(drop)
                        .map_err(|e| format!("create group {n}: {e}"))
                }
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Creates an empty group as Entra does: POST with `members: []`.
    async fn scim_group(&self, name: &str) -> Result<String, String> {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [],
        });
        let reply = self
            .send(self.http.post(self.url("/Groups")).json(&body), 201)
            .await?;
        reply["id"]
            .as_str()
            .map(str::to_string)
            .ok_or(format!("POST /Groups {name}: no id"))
    }

    /// Adds `members` with Entra's `Add members` PATCHes.
    async fn fill(&self, group: &str, members: &[String]) -> Result<(), String> {
        let url = self.url(&format!("/Groups/{group}"));
        let step = (members.len() / MEMBERS_PER_PATCH / 10).max(1);
        let mut patches = futures::stream::iter(members.chunks(MEMBERS_PER_PATCH))
            .map(|chunk| {
                let value: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
                let body = json!({
                    "schemas": [PATCH_SCHEMA],
                    "Operations": [{"op": "Add", "path": "members", "value": value}],
                });
                self.send(self.http.patch(&url).json(&body), 204)
            })
            .buffer_unordered(FILL_CONCURRENCY);
        let mut done = 0;
        while let Some(result) = patches.next().await {
            result?;
            done += 1;
            if done % step == 0 && members.len() >= 10_000 {
                eprintln!("  {} / {} members", done * MEMBERS_PER_PATCH, members.len());
            }
        }
        Ok(())
    }

    /// Walks cursor pages from the first to the page holding the user at
    /// `users - PAGE` (0-based), so the deep cursor scenario starts there;
    /// the startIndex scenario asks for the same depth.
    pub async fn find_deep_page(&mut self, users: usize) -> Result<f64, String> {
        let started = Instant::now();
        let depth = users.saturating_sub(PAGE) / PAGE * PAGE;
        self.deep_index = depth + 1;
        eprintln!("walking cursor pages to depth {depth}");
        let mut cursor = String::new();
        let mut walked = 0;
        while walked < depth {
            let count = if depth - walked >= WALK_PAGE {
                WALK_PAGE
            } else {
                PAGE
            };
            let request = self
                .http
                .get(self.url("/Users"))
                .query(&[("count", count.to_string()), ("cursor", cursor.clone())]);
            let page = self.send(request, 200).await?;
            cursor = page["nextCursor"]
                .as_str()
                .ok_or(format!("no nextCursor after {walked} users"))?
                .to_string();
            walked += count;
            if depth >= 100 * WALK_PAGE && walked % (depth / 10).max(1) < count {
                eprintln!("  {walked} / {depth}");
            }
        }
        self.deep_cursor = cursor;
        Ok(seconds_since(started))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.scim_base)
    }

    /// Sends a seeding request; its JSON body (Null when empty) if `want` answered.
    async fn send(&self, request: reqwest::RequestBuilder, want: u16) -> Result<Value, String> {
        let (status, body) = self.exchange(request).await?;
        if status != want {
            return Err(format!(
                "seeding: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(500)])
            ));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| format!("seeding: {e}"))
    }
}

fn spare_name(n: usize) -> String {
    format!("spare{n}@example.com")
}

async fn channel(url: &str) -> Result<Channel, String> {
    Endpoint::from_shared(url.to_string())
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("connect to identity-service: {e}"))
}
