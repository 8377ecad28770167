//! Closed-loop clients: each sends its next request when the previous one
//! has answered, for a fixed time, and records the latency of every answer
//! in its own HDR histogram; the histograms merge at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use identity_lifecycle_tests::{PATCH_SCHEMA, USER_SCHEMA, json};
use identity_proto::v1::{CreateUserRequest, GetUserRequest, User};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;

use identity_lifecycle_tests::Bearer;
use identity_proto::v1::user_service_client::UserServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Users = UserServiceClient<InterceptedService<Channel, Bearer>>;

pub const TENANT: &str = "bench";

/// The `--scenarios` name of the event-delivery measurement.
pub const EVENTS: &str = "events";

/// The single statement whose pgbench rate bounds a scenario.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub enum Statement {
    Insert,
    SelectByName,
    SelectById,
    UpdateById,
    Membership,
    Keyset,
}

/// Scenarios that share a chart: same kind of request, different shape.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    Users,
    Deactivate,
    Members,
    Paging,
    Grpc,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Users,
        Family::Deactivate,
        Family::Members,
        Family::Paging,
        Family::Grpc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Users => "users",
            Family::Deactivate => "deactivate",
            Family::Members => "members",
            Family::Paging => "paging",
            Family::Grpc => "grpc",
        }
    }

    /// Its chart, beside the report.
    pub fn chart_file(self) -> String {
        format!("chart-{}.svg", self.name())
    }

    pub fn title(self) -> &'static str {
        match self {
            Family::Users => "SCIM users (scenarios 1-3)",
            Family::Deactivate => "SCIM PATCH active (scenario 4)",
            Family::Members => "SCIM PATCH one member (scenario 5)",
            Family::Paging => "List pages (scenario 6)",
            Family::Grpc => "gRPC (scenario 7)",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scenario {
    ScimPost,
    ScimFilter,
    ScimGet,
    PatchActive,
    MemberSmall,
    MemberBig,
    PageFirstIndex,
    PageDeepIndex,
    PageFirstCursor,
    PageDeepCursor,
    GrpcGet,
    GrpcCreate,
}

impl Scenario {
    pub const ALL: [Scenario; 12] = [
        Scenario::ScimPost,
        Scenario::ScimFilter,
        Scenario::ScimGet,
        Scenario::PatchActive,
        Scenario::MemberSmall,
        Scenario::MemberBig,
        Scenario::PageFirstIndex,
        Scenario::PageDeepIndex,
        Scenario::PageFirstCursor,
        Scenario::PageDeepCursor,
        Scenario::GrpcGet,
        Scenario::GrpcCreate,
    ];

    /// The soak's mix: every kind of write and read an IdP sends most.
    pub const SOAK: [Scenario; 4] = [
        Scenario::ScimPost,
        Scenario::ScimGet,
        Scenario::ScimFilter,
        Scenario::PatchActive,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Scenario::ScimPost => "1. SCIM POST /Users",
            Scenario::ScimFilter => "2. SCIM GET /Users?filter=userName eq",
            Scenario::ScimGet => "3. SCIM GET /Users/{id}",
            Scenario::PatchActive => "4. SCIM PATCH active false / true",
            Scenario::MemberSmall => "5a. SCIM PATCH add / remove one member, 10-member group",
            Scenario::MemberBig => "5b. SCIM PATCH add / remove one member, big group",
            Scenario::PageFirstIndex => "6a. SCIM GET /Users first page, startIndex=1",
            Scenario::PageDeepIndex => "6b. SCIM GET /Users deep page by startIndex",
            Scenario::PageFirstCursor => "6c. SCIM GET /Users first page by cursor",
            Scenario::PageDeepCursor => "6d. SCIM GET /Users deep page by cursor",
            Scenario::GrpcGet => "7a. gRPC GetUser",
            Scenario::GrpcCreate => "7b. gRPC CreateUser",
        }
    }

    /// Its name on the command line (`--scenarios`) and in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ScimPost => "post",
            Scenario::ScimFilter => "filter",
            Scenario::ScimGet => "get",
            Scenario::PatchActive => "deactivate",
            Scenario::MemberSmall => "member-small",
            Scenario::MemberBig => "member-big",
            Scenario::PageFirstIndex => "page-first-index",
            Scenario::PageDeepIndex => "page-deep-index",
            Scenario::PageFirstCursor => "page-first-cursor",
            Scenario::PageDeepCursor => "page-deep-cursor",
            Scenario::GrpcGet => "grpc-get",
            Scenario::GrpcCreate => "grpc-create",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Scenario::ScimPost | Scenario::ScimFilter | Scenario::ScimGet => Family::Users,
            Scenario::PatchActive => Family::Deactivate,
            Scenario::MemberSmall | Scenario::MemberBig => Family::Members,
            Scenario::PageFirstIndex
            | Scenario::PageDeepIndex
            | Scenario::PageFirstCursor
            | Scenario::PageDeepCursor => Family::Paging,
            Scenario::GrpcGet | Scenario::GrpcCreate => Family::Grpc,
        }
    }

    pub fn statement(self) -> Statement {
        match self {
            Scenario::ScimPost | Scenario::GrpcCreate => Statement::Insert,
            Scenario::ScimFilter => Statement::SelectByName,
            Scenario::ScimGet | Scenario::GrpcGet => Statement::SelectById,
            Scenario::PatchActive => Statement::UpdateById,
            Scenario::MemberSmall | Scenario::MemberBig => Statement::Membership,
            Scenario::PageFirstIndex
            | Scenario::PageDeepIndex
            | Scenario::PageFirstCursor
            | Scenario::PageDeepCursor => Statement::Keyset,
        }
    }

    /// Whether the peer serves it too (scenarios 1-3).
    pub fn compared_with_peer(self) -> bool {
        self.family() == Family::Users
    }

    /// Requests of one full cycle: a change and its undo are two.
    fn cycle(self) -> usize {
        match self {
            Scenario::PatchActive | Scenario::MemberSmall | Scenario::MemberBig => 2,
            _ => 1,
        }
    }
}

/// Reads `--scenarios`: scenario names and family names, comma-separated.
/// The scenarios named, and whether `events` (event delivery) was.
pub fn parse_scenarios(text: &str) -> Result<(Vec<Scenario>, bool), String> {
    let mut chosen = Vec::new();
    let mut events = false;
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word == EVENTS {
            events = true;
            continue;
        }
        let matched: Vec<Scenario> = Scenario::ALL
            .into_iter()
            .filter(|s| s.name() == word || s.family().name() == word)
            .collect();
        if matched.is_empty() {
            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            let families: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            return Err(format!(
                "--scenarios: unknown {word:?}; scenarios: {}; families: {}; and {EVENTS}",
                names.join(","),
                families.join(",")
            ));
        }
        chosen.extend(matched);
    }
    if chosen.is_empty() && !events {
        return Err("--scenarios: name at least one scenario".into());
    }
    // Run order is the report's order, whatever order they were named in.
    let scenarios = Scenario::ALL
        .into_iter()
        .filter(|s| chosen.contains(s))
        .collect();
    Ok((scenarios, events))
}

/// Everything a client needs to send any scenario's request to one server.
pub struct Target {
    pub http: reqwest::Client,
    pub scim_base: String,
    pub bearer: String,
    /// Absent on the peer, which speaks SCIM only.
    pub grpc: Option<Users>,
    /// Ids of the seeded users, `seed{n}@example.com` for n in 0..ids.len().
    pub ids: Vec<String>,
    /// One user per client that no group holds, for member add/remove.
    pub spares: Vec<String>,
    pub small_group: String,
    pub big_group: String,
    /// The 1-based startIndex of the deep page, and its cursor.
    pub deep_index: usize,
    pub deep_cursor: String,
    /// Makes this run's created userNames unique against earlier runs' data.
    pub nonce: u128,
    /// Numbers every created userName of this run, across scenarios and client counts.
    pub created: AtomicU64,
}

pub fn seeded_name(n: usize) -> String {
    format!("seed{n}@example.com")
}

pub fn grpc_user(user_name: String) -> User {
    User {
        user_name,
        ..User::default()
    }
}

pub const PAGE: usize = 100;

/// A client's own state: its random numbers and the change it has yet to undo.
pub struct Client {
    index: usize,
    rng: StdRng,
    /// The seeded user a deactivation left inactive.
    deactivated: Option<usize>,
    /// Whether its spare user is in the group of the scenario it runs.
    added: bool,
    /// Whether its next change uses Okta's shapes; each undone change
    /// flips it, so both IdPs' shapes are measured.
    okta: bool,
}

impl Client {
    pub fn new(index: usize) -> Client {
        Client {
            index,
            rng: StdRng::seed_from_u64(index as u64),
            deactivated: None,
            added: false,
            okta: true,
        }
    }
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": operations})
}

/// Okta deactivates and reactivates with a pathless replace and real
/// booleans; Entra's default dialect names the path, capitalises the op
/// and sends the boolean as a string.
fn active_patch(okta: bool, active: bool) -> Value {
    if okta {
        patch_body(json!([{"op": "replace", "value": {"active": active}}]))
    } else {
        let text = if active { "True" } else { "False" };
        patch_body(json!([{"op": "Replace", "path": "active", "value": text}]))
    }
}

/// Both IdPs add with a members list; Okta removes with a value filter in
/// the path, Entra with a members list.
fn member_patch(okta: bool, add: bool, user: &str) -> Value {
    match (add, okta) {
        (true, true) => {
            patch_body(json!([{"op": "add", "path": "members", "value": [{"value": user}]}]))
        }
        (true, false) => {
            patch_body(json!([{"op": "Add", "path": "members", "value": [{"value": user}]}]))
        }
        (false, true) => {
            patch_body(json!([{"op": "remove", "path": format!("members[value eq \"{user}\"]")}]))
        }
        (false, false) => {
            patch_body(json!([{"op": "Remove", "path": "members", "value": [{"value": user}]}]))
        }
    }
}

impl Target {
    /// Sends one request of `scenario`; an error names what answered.
    async fn once(&self, scenario: Scenario, client: &mut Client) -> Result<(), String> {
        if self.ids.is_empty() {
            return Err("no seeded users".into());
        }
        let pick = client.rng.random_range(0..self.ids.len());
        let users = format!("{}/Users", self.scim_base);
        let (request, want) = match scenario {
            Scenario::ScimPost => {
                let fresh = self.fresh_name();
                let body = json!({
                    "schemas": [USER_SCHEMA],
                    "userName": fresh,
                    "name": {"givenName": "Load", "familyName": "Bench"},
                    "emails": [{"value": fresh, "type": "work", "primary": true}],
                    "active": true,
                });
                (self.http.post(users).json(&body), &[201][..])
            }
            Scenario::ScimFilter => {
                let filter = format!("userName eq \"{}\"", seeded_name(pick));
                (
                    self.http.get(users).query(&[("filter", filter)]),
                    &[200][..],
                )
            }
            Scenario::ScimGet => (
                self.http.get(format!("{users}/{}", self.ids[pick])),
                &[200][..],
            ),
            Scenario::PatchActive => {
                let okta = client.okta;
                let (user, active) = match client.deactivated.take() {
                    Some(user) => {
                        client.okta = !client.okta;
                        (user, true)
                    }
                    None => {
                        client.deactivated = Some(pick);
                        (pick, false)
                    }
                };
                let url = format!("{users}/{}", self.ids[user]);
                (
                    self.http.patch(url).json(&active_patch(okta, active)),
                    &[200, 204][..],
                )
            }
            Scenario::MemberSmall | Scenario::MemberBig => {
                let group = if scenario == Scenario::MemberBig {
                    &self.big_group
                } else {
                    &self.small_group
                };
                let spare = self
                    .spares
                    .get(client.index)
                    .ok_or("no spare user for this client")?;
                let okta = client.okta;
                let add = !client.added;
                if !add {
                    client.okta = !client.okta;
                }
                client.added = add;
                let url = format!("{}/Groups/{group}", self.scim_base);
                (
                    self.http.patch(url).json(&member_patch(okta, add, spare)),
                    &[200, 204][..],
                )
            }
            Scenario::PageFirstIndex | Scenario::PageDeepIndex => {
                let start = if scenario == Scenario::PageDeepIndex {
                    self.deep_index
                } else {
                    1
                };
                let query = [("startIndex", start), ("count", PAGE)];
                (self.http.get(users).query(&query), &[200][..])
            }
            Scenario::PageFirstCursor | Scenario::PageDeepCursor => {
                let cursor = if scenario == Scenario::PageDeepCursor {
                    self.deep_cursor.as_str()
                } else {
                    ""
                };
                let query = [("cursor", cursor), ("count", "100")];
                (self.http.get(users).query(&query), &[200][..])
            }
            Scenario::GrpcGet | Scenario::GrpcCreate => {
                return self.grpc(scenario, pick).await;
            }
        };
        let (status, body) = self.exchange(request).await?;
        if !want.contains(&status) {
            return Err(format!("HTTP {status}"));
        }
        if matches!(
            scenario,
            Scenario::PageFirstIndex
                | Scenario::PageDeepIndex
                | Scenario::PageFirstCursor
                | Scenario::PageDeepCursor
        ) {
            return full_page(&body);
        }
        Ok(())
    }

    /// Sends a SCIM request with the tenant's token and reads the whole
    /// body, as a client does before its next request.
    pub async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, bytes::Bytes), String> {
        let reply = request
            .header("content-type", "application/scim+json")
            .bearer_auth(&self.bearer)
            .send()
            .await
            .map_err(transport)?;
        let status = reply.status().as_u16();
        Ok((status, reply.bytes().await.map_err(transport)?))
    }

    pub fn fresh_name(&self) -> String {
        let n = self.created.fetch_add(1, Ordering::Relaxed);
        format!("load-{}-{n}@example.com", self.nonce)
    }

    async fn grpc(&self, scenario: Scenario, pick: usize) -> Result<(), String> {
        let mut users = self.grpc.clone().ok_or("no gRPC API on this server")?;
        let answer = if scenario == Scenario::GrpcGet {
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
                    user: Some(grpc_user(self.fresh_name())),
                })
                .await
        };
        answer.map(drop).map_err(|s| format!("gRPC {:?}", s.code()))
    }
}

/// A page that is not a full page means the scenario measured something
/// else than it says (an empty deep page is cheap).
fn full_page(body: &[u8]) -> Result<(), String> {
    let page: Value = serde_json::from_slice(body).map_err(|_| "page is not JSON")?;
    match page["Resources"].as_array().map(Vec::len) {
        Some(PAGE) => Ok(()),
        Some(n) => Err(format!("page of {n} users")),
        None => Err("page without Resources".into()),
    }
}

pub fn transport(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_string()
    } else if e.is_connect() {
        "connect".to_string()
    } else {
        "transport".to_string()
    }
}

/// One scenario (or the soak's mix) at one client count.
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

    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

/// Runs `mix` (one scenario, or several each client takes in turn, a
/// change always followed by its undo) with `clients` clients.
pub async fn run(
    target: &Arc<Target>,
    mix: &[Scenario],
    clients: usize,
    duration: Duration,
) -> Run {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|index| {
            let target = Arc::clone(target);
            let mix = mix.to_vec();
            tokio::spawn(async move {
                let mut client = Client::new(index);
                let mut latency = histogram();
                let mut errors = BTreeMap::<String, u64>::new();
                'load: loop {
                    for &scenario in &mix {
                        for _ in 0..scenario.cycle() {
                            if Instant::now() >= deadline {
                                break 'load;
                            }
                            let sent = Instant::now();
                            match target.once(scenario, &mut client).await {
                                Ok(()) => {
                                    latency.saturating_record(sent.elapsed().as_micros() as u64)
                                }
                                Err(kind) => *errors.entry(kind).or_default() += 1,
                            }
                        }
                    }
                }
                // Leave nothing deactivated or added for the next run.
                for scenario in mix {
                    let pending = match scenario {
                        Scenario::PatchActive => client.deactivated.is_some(),
                        Scenario::MemberSmall | Scenario::MemberBig => client.added,
                        _ => false,
                    };
                    if !pending {
                        continue;
                    }
                    if let Err(kind) = target.once(scenario, &mut client).await {
                        *errors.entry(format!("undo: {kind}")).or_default() += 1;
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
