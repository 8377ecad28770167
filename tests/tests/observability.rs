//! Observability end to end, on the real binaries as separate processes
//! (each has its own global tracer, as in production): trace export over
//! OTLP to an in-process collector, the Prometheus endpoints of both
//! processes, the monitoring component's queries against what they really
//! export, and no secret or personal data where it must not be.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use identity_lifecycle_tests::process::{self, Process};
use identity_lifecycle_tests::{
    ADMIN_TOKEN, Bearer, PATCH_SCHEMA, TestDatabase, fresh_database, json, user,
};
use identity_proto::v1::event_service_client::EventServiceClient;
use identity_proto::v1::tenant_service_client::TenantServiceClient;
use identity_proto::v1::token_service_client::TokenServiceClient;
use identity_proto::v1::{
    CreateTenantRequest, IssueTokenRequest, TokenScope, WatchRequest, watch_request,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// How long a stopping process may take to drain and flush its spans.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

// ---- an OTLP collector -------------------------------------------------------

/// One span as the collector received it, with the resource of the
/// process that sent it.
#[derive(Clone, Debug)]
struct ReceivedSpan {
    resource: Vec<(String, String)>,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: Vec<(String, String)>,
    /// Every event's name and attributes, flattened as text.
    events: Vec<String>,
}

impl ReceivedSpan {
    fn service(&self) -> &str {
        self.resource_attribute("service.name").unwrap_or_default()
    }

    fn resource_attribute(&self, key: &str) -> Option<&str> {
        find(&self.resource, key)
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        find(&self.attributes, key)
    }

    /// Everything the span carries as text: what a secret or personal
    /// datum could hide in.
    fn text(&self) -> String {
        let mut text = self.name.clone();
        for (key, value) in self.attributes.iter().chain(&self.resource) {
            text.push_str(&format!(" {key}={value}"));
        }
        for event in &self.events {
            text.push_str(&format!(" {event}"));
        }
        text
    }
}

fn find<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn pairs(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// A tonic server implementing the collector's trace service; it keeps
/// every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource = pairs(
                &resource_spans
                    .resource
                    .map(|r| r.attributes)
                    .unwrap_or_default(),
            );
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                received.push(ReceivedSpan {
                    resource: resource.clone(),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                    attributes: pairs(&span.attributes),
                    events: span
                        .events
                        .iter()
                        .map(|e| format!("{} {:?}", e.name, pairs(&e.attributes)))
                        .collect(),
                });
            }
        }
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Serves on a loopback port until the returned sender is dropped;
    /// returns the endpoint URL for OTEL_EXPORTER_OTLP_ENDPOINT.
    async fn start() -> (Collector, String, oneshot::Sender<()>) {
        let collector = Collector::default();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the collector");
        let url = format!("http://{}", listener.local_addr().expect("collector addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async move {
                    let _ = stopped.await;
                },
            );
        tokio::spawn(server);
        (collector, url, stop)
    }

    fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

// ---- the two processes -------------------------------------------------------

/// The identity service and the SCIM adapter as separate processes on a
/// database of their own.
struct Processes {
    service: Process,
    adapter: Process,
    scim_base: String,
    service_metrics: String,
    adapter_metrics: String,
    channel: Channel,
    http: reqwest::Client,
    _database: TestDatabase,
}

impl Processes {
    /// Starts both with the harness's settings plus `service_env` and
    /// `adapter_env`; the service serves its metrics on a port of its own.
    async fn start(service_env: &[(&str, String)], adapter_env: &[(&str, String)]) -> Processes {
        let database = fresh_database().await;
        let grpc = process::free_addr();
        let admin = process::free_addr();
        // No load balancer in front of them waits to see readiness fail.
        let mut env = vec![
            ("IDENTITY_ADMIN_ADDR", admin.to_string()),
            ("IDENTITY_SHUTDOWN_DELAY", "0s".to_owned()),
        ];
        env.extend(service_env.iter().cloned());
        let service = process::start_service(database.url(), grpc, &env).await;
        let grpc_url = format!("http://{grpc}");
        let http_addr = process::free_addr();
        let mut env = vec![("SCIM_SHUTDOWN_DELAY", "0s".to_owned())];
        env.extend(adapter_env.iter().cloned());
        let adapter = process::start_adapter(&grpc_url, http_addr, &env).await;
        Processes {
            service,
            adapter,
            scim_base: format!("http://{http_addr}/scim/v2"),
            service_metrics: format!("http://{admin}/metrics"),
            adapter_metrics: format!("http://{http_addr}/metrics"),
            channel: Channel::from_shared(grpc_url)
                .expect("gRPC url")
                .connect_lazy(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            _database: database,
        }
    }

    /// Creates a tenant as the operator and returns a SCIM token of it.
    async fn tenant(&self, slug: &str) -> String {
        let operator = Bearer::new(ADMIN_TOKEN);
        TenantServiceClient::with_interceptor(self.channel.clone(), operator.clone())
            .create_tenant(CreateTenantRequest {
                slug: slug.to_owned(),
                display_name: format!("{slug} test tenant"),
            })
            .await
            .expect("create tenant");
        TokenServiceClient::with_interceptor(self.channel.clone(), operator)
            .issue_token(IssueTokenRequest {
                tenant: slug.to_owned(),
                name: "e2e".to_owned(),
                ..IssueTokenRequest::default()
            })
            .await
            .expect("issue token")
            .into_inner()
            .secret
    }

    /// Sends one SCIM request; returns its status and JSON body (Null when empty).
    async fn scim(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.scim_base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body);
        }
        let response = request.send().await.expect("SCIM request");
        let status = response.status();
        let text = response.text().await.expect("SCIM body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn scrape(&self, url: &str) -> Scrape {
        let response = self.http.get(url).send().await.expect("scrape");
        assert_eq!(response.status(), StatusCode::OK, "GET {url}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{url}: {content_type}"
        );
        Scrape::parse(&response.text().await.expect("metrics body"))
    }

    /// SIGTERM to both (the adapter first, as a rollout drains it), waits
    /// for both to exit 0, and returns their logs (service, adapter).
    async fn stop(mut self) -> (String, String) {
        self.adapter.signal("TERM");
        let adapter_exit = self.adapter.exit_within(STOP_TIMEOUT).await;
        self.service.signal("TERM");
        let service_exit = self.service.exit_within(STOP_TIMEOUT).await;
        let logs = (self.service.log(), self.adapter.log());
        assert!(
            adapter_exit.success(),
            "adapter: {adapter_exit}\n{}",
            logs.1
        );
        assert!(
            service_exit.success(),
            "service: {service_exit}\n{}",
            logs.0
        );
        logs
    }
}

/// A user whose every personal field carries `marker`, so a leak of any of
/// them is found by searching for it.
fn marked_user(marker: &str) -> Value {
    let mut body = user(&format!("{marker}@example.test"));
    body["name"] =
        json!({"givenName": format!("{marker}given"), "familyName": format!("{marker}family")});
    body["displayName"] = json!(format!("{marker} display"));
    body
}

// ---- Prometheus text ---------------------------------------------------------

type Labels = Vec<(String, String)>;

/// One scrape in the OpenMetrics text format.
struct Scrape {
    /// Each sample: its name, labels and value.
    samples: Vec<(String, Labels, f64)>,
    /// Every sample name each `# TYPE` line promises (`_total` of a counter,
    /// `_bucket`, `_count`, `_sum` of a histogram, …), with or without samples.
    names: BTreeSet<String>,
    text: String,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        let mut names = BTreeSet::new();
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let mut parts = declared.split_whitespace();
                let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                    panic!("malformed TYPE line: {line}");
                };
                let suffixes: &[&str] = match kind {
                    "counter" => &["_total", "_created"],
                    "histogram" => &["_bucket", "_count", "_sum", "_created"],
                    "summary" => &["", "_count", "_sum"],
                    _ => &[""],
                };
                names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("malformed sample: {line}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("malformed value: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Scrape {
            samples,
            names,
            text: text.to_owned(),
        }
    }

    /// The sum of every sample of `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, have, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|(_, _, value)| value)
            .sum()
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.samples.iter().any(|(n, have, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
        })
    }
}

/// `a="x",b="y"` (values with `\"` and `\\` escapes) as pairs.
fn parse_labels(text: &str) -> Labels {
    let mut labels = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').trim().to_owned(), value));
        rest = &after[end..];
    }
    labels
}

// ---- traces ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_scim_request_is_one_trace_across_both_processes() {
    let (collector, endpoint, _collector_stop) = Collector::start().await;
    let otel = |extra: &[(&'static str, &str)]| {
        let mut env = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=e2e".to_owned(),
            ),
            ("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_owned()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        env
    };
    // The service keeps its default name; the adapter's comes from OTEL_SERVICE_NAME.
    let stack =
        Processes::start(&otel(&[]), &otel(&[("OTEL_SERVICE_NAME", "scim-edge-e2e")])).await;
    let token = stack.tenant("traced").await;
    let marker = "tracemarker";
    let (status, body) = stack
        .scim(
            &token,
            reqwest::Method::POST,
            "/Users",
            Some(marked_user(marker).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A PATCH locks and rewrites the user in a transaction.
    let id = body["id"].as_str().expect("the created user's id");
    let rename = json!({
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Renamed"}]
    });
    let (status, body) = stack
        .scim(
            &token,
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(rename.to_string()),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    // Stopping flushes what the batch exporters still hold.
    stack.stop().await;
    let spans = collector.spans();

    let request = spans
        .iter()
        .find(|s| {
            s.service() == "scim-edge-e2e"
                && s.attribute("http.route") == Some("/scim/v2/Users")
                && s.attribute("http.request.method") == Some("POST")
        })
        .unwrap_or_else(|| panic!("no span of the SCIM request among {spans:#?}"));
    assert_eq!(request.name, "POST /scim/v2/Users");
    assert_eq!(request.attribute("http.response.status_code"), Some("201"));
    let tenant = request.attribute("tenant").unwrap_or_default();
    assert!(
        tenant.len() == 32 && tenant.bytes().all(|b| b.is_ascii_hexdigit()),
        "the span names the tenant by id: {request:?}"
    );
    assert_eq!(
        request.resource_attribute("deployment.environment.name"),
        Some("e2e")
    );

    let trace: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == request.trace_id)
        .collect();
    let adapter_ids: Vec<&[u8]> = trace
        .iter()
        .filter(|s| s.service() == "scim-edge-e2e")
        .map(|s| s.span_id.as_slice())
        .collect();
    let service_spans: Vec<&&ReceivedSpan> = trace
        .iter()
        .filter(|s| s.service() == "identity-service")
        .collect();
    let rpc = service_spans
        .iter()
        .find(|s| s.name == "identity.v1.UserService/CreateUser")
        .unwrap_or_else(|| panic!("no CreateUser span of the service in the trace: {trace:#?}"));
    assert!(
        adapter_ids.contains(&rpc.parent_span_id.as_slice()),
        "the service's call span is a child of an adapter span: {trace:#?}"
    );
    assert_eq!(rpc.attribute("rpc.grpc.status_code"), Some("0"));
    assert_eq!(
        rpc.resource_attribute("deployment.environment.name"),
        Some("e2e")
    );
    let statements: BTreeSet<&str> = service_spans
        .iter()
        .filter_map(|s| s.attribute("db.operation.name"))
        .collect();
    assert!(
        statements.contains("INSERT") || statements.contains("WITH"),
        "SQL statement spans by kind: {statements:?}"
    );

    // The PATCH's trace: its transaction, and the COMMIT inside it.
    let patch = spans
        .iter()
        .find(|s| {
            s.service() == "scim-edge-e2e" && s.attribute("http.request.method") == Some("PATCH")
        })
        .unwrap_or_else(|| panic!("no span of the PATCH among {spans:#?}"));
    let patch_trace: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == patch.trace_id && s.service() == "identity-service")
        .collect();
    let transaction = patch_trace
        .iter()
        .find(|s| s.name == "db_transaction")
        .unwrap_or_else(|| panic!("no transaction span in the PATCH's trace: {patch_trace:#?}"));
    assert_eq!(transaction.attribute("outcome"), Some("commit"));
    let in_transaction: BTreeSet<&str> = patch_trace
        .iter()
        .filter(|s| s.parent_span_id == transaction.span_id)
        .map(|s| s.name.as_str())
        .collect();
    for kind in ["BEGIN", "UPDATE", "COMMIT"] {
        assert!(
            in_transaction.contains(kind),
            "{kind} inside the transaction: {in_transaction:?}"
        );
    }

    // No span of either process carries the token or the user's data.
    for span in &spans {
        let text = span.text();
        assert!(!text.contains(&token), "the token in a span: {span:?}");
        assert!(!text.contains(marker), "personal data in a span: {span:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sampler_variable_is_honoured() {
    let (collector, endpoint, _collector_stop) = Collector::start().await;
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_TRACES_SAMPLER", "always_off".to_owned()),
    ];
    let stack = Processes::start(&env, &env).await;
    let token = stack.tenant("unsampled").await;
    let (status, _) = stack
        .scim(&token, reqwest::Method::GET, "/Users", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    stack.stop().await;
    assert!(
        collector.spans().is_empty(),
        "always_off exports nothing: {:#?}",
        collector.spans()
    );
}

// ---- metrics -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_metrics_endpoints_move_with_traffic() {
    let stack = Processes::start(&[], &[]).await;
    let token = stack.tenant("metered").await;
    let tenant_id = token
        .strip_prefix("idl_")
        .and_then(|rest| rest.get(..32))
        .expect("a tenant token names its tenant")
        .to_owned();
    let before_adapter = stack.scrape(&stack.adapter_metrics).await;
    let before_service = stack.scrape(&stack.service_metrics).await;

    let post = |body: String| stack.scim(&token, reqwest::Method::POST, "/Users", Some(body));
    let created = post(user("meter@metered.example").to_string()).await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    let conflict = post(user("meter@metered.example").to_string()).await;
    assert_eq!(conflict.0, StatusCode::CONFLICT, "{}", conflict.1);
    let bad = post("{not json".to_owned()).await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST, "{}", bad.1);
    let missing = stack
        .scim(
            &token,
            reqwest::Method::GET,
            "/Users/00000000-0000-4000-8000-000000000000",
            None,
        )
        .await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND, "{}", missing.1);
    let refused = stack
        .scim("idl_not-a-token", reqwest::Method::GET, "/Users", None)
        .await;
    assert_eq!(refused.0, StatusCode::UNAUTHORIZED);

    let adapter = stack.scrape(&stack.adapter_metrics).await;
    let service = stack.scrape(&stack.service_metrics).await;
    let moved = |after: &Scrape, before: &Scrape, name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let users = [("route", "/scim/v2/Users"), ("method", "POST")];
    for (status, count) in [("201", 1.0), ("409", 1.0), ("400", 1.0)] {
        let labels = [
            users[0],
            users[1],
            ("tenant", tenant_id.as_str()),
            ("status", status),
        ];
        assert_eq!(
            moved(
                &adapter,
                &before_adapter,
                "scim_http_requests_total",
                &labels
            ),
            count,
            "POST /Users answered {status}:\n{}",
            adapter.text
        );
    }
    let missing_labels = [
        ("route", "/scim/v2/Users/{id}"),
        ("status", "404"),
        ("tenant", tenant_id.as_str()),
    ];
    assert_eq!(
        moved(
            &adapter,
            &before_adapter,
            "scim_http_requests_total",
            &missing_labels
        ),
        1.0,
        "{}",
        adapter.text
    );
    let refused_labels = [("tenant", "none"), ("status", "401")];
    assert_eq!(
        moved(
            &adapter,
            &before_adapter,
            "scim_http_requests_total",
            &refused_labels
        ),
        1.0,
        "a refused token names no tenant:\n{}",
        adapter.text
    );
    assert_eq!(
        moved(
            &adapter,
            &before_adapter,
            "scim_http_request_duration_seconds_count",
            &users
        ),
        3.0
    );
    assert!(adapter.has(
        "scim_http_request_duration_seconds_bucket",
        &[("le", "+Inf")]
    ));
    assert!(!adapter.text.contains("idl_"), "no token in the labels");

    let create = [("method", "/identity.v1.UserService/CreateUser")];
    for (code, count) in [("OK", 1.0), ("ALREADY_EXISTS", 1.0)] {
        let labels = [create[0], ("code", code)];
        assert_eq!(
            moved(
                &service,
                &before_service,
                "identity_grpc_requests_total",
                &labels
            ),
            count,
            "CreateUser {code}:\n{}",
            service.text
        );
    }
    assert_eq!(
        moved(
            &service,
            &before_service,
            "identity_grpc_request_duration_seconds_count",
            &create
        ),
        2.0
    );
    let lookups = moved(
        &service,
        &before_service,
        "identity_token_cache_hits_total",
        &[],
    ) + moved(
        &service,
        &before_service,
        "identity_token_cache_misses_total",
        &[],
    );
    // The malformed body never reached the service.
    assert!(
        lookups >= 3.0,
        "three SCIM calls with a well-formed token looked it up: {lookups}\n{}",
        service.text
    );
    for state in ["in_use", "idle"] {
        assert!(
            service.has(
                "identity_db_pool_connections",
                &[("pool", "work"), ("state", state)]
            ),
            "{}",
            service.text
        );
    }
    assert!(
        service.value("identity_db_pool_connections", &[("pool", "work")]) >= 1.0,
        "the work pool has opened connections"
    );
    assert_eq!(
        service.value("identity_db_pool_max_connections", &[("pool", "work")]),
        4.0,
        "IDENTITY_DB_POOL_SIZE of the harness"
    );
    assert!(service.has("identity_db_pool_waits_total", &[("pool", "auth")]));
    assert!(service.has("identity_db_pool_wait_seconds_total", &[("pool", "work")]));
    stack.stop().await;
}

/// The events backlog: a Watch is counted while open, what it is handed is
/// counted, and the lag, slow-consumer and pruning series are exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_events_backlog_metrics_follow_watchers() {
    let stack = Processes::start(&[], &[]).await;
    let token = stack.tenant("watched").await;
    let reader =
        TokenServiceClient::with_interceptor(stack.channel.clone(), Bearer::new(ADMIN_TOKEN))
            .issue_token(IssueTokenRequest {
                tenant: "watched".to_owned(),
                name: "reader".to_owned(),
                scope: TokenScope::Service as i32,
                ..IssueTokenRequest::default()
            })
            .await
            .expect("issue a service token")
            .into_inner()
            .secret;
    let before = stack.scrape(&stack.service_metrics).await;
    assert_eq!(before.value("identity_event_watchers", &[]), 0.0);
    let mut stream =
        EventServiceClient::with_interceptor(stack.channel.clone(), Bearer::new(&reader))
            .watch(WatchRequest {
                start: Some(watch_request::Start::Now(true)),
                ..WatchRequest::default()
            })
            .await
            .expect("watch")
            .into_inner();
    let (status, body) = stack
        .scim(
            &token,
            reqwest::Method::POST,
            "/Users",
            Some(user("watched@watched.example").to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("the event in time")
        .expect("the watch goes on")
        .expect("an event");

    let during = stack.scrape(&stack.service_metrics).await;
    assert_eq!(
        during.value("identity_event_watchers", &[]),
        1.0,
        "{}",
        during.text
    );
    assert!(
        during.value("identity_events_delivered_total", &[])
            - before.value("identity_events_delivered_total", &[])
            >= 1.0,
        "{}",
        during.text
    );
    for name in [
        "identity_event_watcher_max_lag",
        "identity_event_watchers_too_slow_total",
        "identity_events_pruned_total",
        "identity_event_prune_failures_total",
        "identity_event_sequencer_failures_total",
    ] {
        assert!(during.has(name, &[]), "{name}:\n{}", during.text);
    }
    // Only the sequencer numbered the watched event: the watch settled
    // before the create, and nothing else reads events.
    assert!(
        during.value("identity_events_numbered_total", &[]) >= 1.0,
        "{}",
        during.text
    );
    assert_eq!(
        during.value("identity_event_sequencer_failures_total", &[]),
        0.0
    );
    // With the default retention nothing is old enough to prune.
    assert_eq!(during.value("identity_events_pruned_total", &[]), 0.0);
    assert_eq!(
        during.value("identity_event_prune_failures_total", &[]),
        0.0
    );

    // A closed watch is no longer counted (its end reaches the server as
    // the stream is reset, soon but not at once).
    drop(stream);
    let mut closed = false;
    for _ in 0..300 {
        let after = stack.scrape(&stack.service_metrics).await;
        if after.value("identity_event_watchers", &[]) == 0.0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the closed watch is still counted");
    stack.stop().await;
}

// ---- secrets and personal data ------------------------------------------------

/// The lines of a text log at `info` or above. A line without a level
/// continues the event before it (a multi-line message).
fn lines_at_info_or_above(log: &str) -> Vec<&str> {
    let mut kept = Vec::new();
    let mut loud = false;
    for line in log.lines() {
        let mut words = line.split_whitespace();
        let level = words.next().and(words.next());
        match level {
            Some("TRACE" | "DEBUG") => loud = false,
            Some("INFO" | "WARN" | "ERROR") => loud = true,
            _ => {}
        }
        if loud {
            kept.push(line);
        }
    }
    kept
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_anywhere_and_personal_data_only_at_debug() {
    let (collector, endpoint, _collector_stop) = Collector::start().await;
    let env = vec![
        ("RUST_LOG", "trace".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
    ];
    let stack = Processes::start(&env, &env).await;
    let token = stack.tenant("private").await;
    // `idl_` + the tenant id (32 hex digits) + `_` + the secret.
    let secret = token.get(37..).unwrap_or_default().to_owned();
    assert!(secret.len() >= 40, "the secret part of {token:?}");
    let marker = "piimarker";
    let post = |body: String| stack.scim(&token, reqwest::Method::POST, "/Users", Some(body));

    let (status, created) = post(marked_user(marker).to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, body) = post(marked_user(marker).to_string()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let mut invalid = marked_user(&format!("{marker}bad"));
    invalid["active"] = json!("maybe");
    let (status, body) = post(invalid.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let path = format!("/Users/{id}");
    let patch = |operations: Value| {
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": operations});
        stack.scim(
            &token,
            reqwest::Method::PATCH,
            &path,
            Some(body.to_string()),
        )
    };
    let (status, body) = patch(json!([
        {"op": "replace", "path": "displayName", "value": format!("{marker} renamed")}
    ]))
    .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = patch(json!([
        {"op": "replace", "path": "userName", "value": format!("{marker}-taken")},
        {"op": "replace", "path": "active", "value": format!("{marker}-not-a-boolean")}
    ]))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = stack
        .scim(
            &token,
            reqwest::Method::GET,
            &format!("/Users?filter=userName%20eq%20%22{marker}%40example.test%22"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let metrics = format!(
        "{}{}",
        stack.scrape(&stack.adapter_metrics).await.text,
        stack.scrape(&stack.service_metrics).await.text
    );
    let (service_log, adapter_log) = stack.stop().await;

    // The capture is real: both processes logged at trace level, and the
    // service logged the token it issued (by its id and prefix).
    for (name, log) in [("service", &service_log), ("adapter", &adapter_log)] {
        assert!(log.contains(" TRACE "), "{name} logged at trace");
    }
    assert!(service_log.contains("token issued"), "{service_log}");
    let spans = collector.spans();
    assert!(!spans.is_empty(), "spans were exported");

    let everything = [
        ("service log", service_log.clone()),
        ("adapter log", adapter_log.clone()),
        ("metrics", metrics),
        (
            "spans",
            spans
                .iter()
                .map(ReceivedSpan::text)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ];
    for (what, text) in &everything {
        for (needle, name) in [
            (secret.as_str(), "the tenant token's secret"),
            (ADMIN_TOKEN, "the operator token"),
        ] {
            if let Some(line) = text.lines().find(|line| line.contains(needle)) {
                panic!("{name} in the {what}: {line}");
            }
        }
    }
    for (what, log) in [("service", &service_log), ("adapter", &adapter_log)] {
        if let Some(line) = lines_at_info_or_above(log)
            .into_iter()
            .find(|line| line.contains(marker))
        {
            panic!("personal data above debug in the {what} log: {line}");
        }
    }
    if let Some(span) = spans.iter().find(|s| s.text().contains(marker)) {
        panic!("personal data in a span: {span:?}");
    }
}

#[test]
fn log_levels_are_read_per_event() {
    let log = "2026-01-01T00:00:00Z  INFO a: one\n2026-01-01T00:00:00Z DEBUG a: two\ncontinued\n2026-01-01T00:00:00Z ERROR a: three\nmore";
    assert_eq!(
        lines_at_info_or_above(log),
        [
            "2026-01-01T00:00:00Z  INFO a: one",
            "2026-01-01T00:00:00Z ERROR a: three",
            "more"
        ]
    );
}

// ---- the monitoring component ------------------------------------------------

/// The monitoring component's files, from the workspace root.
fn monitoring_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../k8s/components/monitoring")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `expr` of every rule in a PrometheusRule manifest, whether written
/// on its line or as a block scalar (`expr: |-` and more-indented lines).
fn rule_expressions(yaml: &str) -> Vec<String> {
    let mut expressions = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if !matches!(rest, "|" | "|-" | ">" | ">-") {
            expressions.push(rest.to_owned());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let mut block = Vec::new();
        while let Some(next) = lines.peek() {
            if !next.trim().is_empty() && next.len() - next.trim_start().len() <= indent {
                break;
            }
            block.push(next.trim());
            lines.next();
        }
        expressions.push(block.join(" "));
    }
    expressions
}

/// Every query in a Grafana dashboard: panel targets (`expr`) and
/// template variables (`query`, `definition`).
fn dashboard_expressions(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition", Value::String(query)) => found.push(query.clone()),
                    ("query", Value::String(query)) if query.contains('(') => {
                        found.push(query.clone());
                    }
                    _ => dashboard_expressions(value, found),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| dashboard_expressions(item, found)),
        _ => {}
    }
}

/// The metric names a PromQL expression reads: identifiers outside quoted
/// label values that start with one of our prefixes, or `up` (which
/// Prometheus itself records for each target).
fn metric_names(expression: &str) -> Vec<String> {
    let mut unquoted = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in expression.chars() {
        match (quoted, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, _, _) if escaped => escaped = false,
            (_, _, '"') => quoted = !quoted,
            (false, _, c) => unquoted.push(c),
            _ => {}
        }
    }
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| *word == "up" || word.starts_with("scim_") || word.starts_with("identity_"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_dashboard_and_alert_query_names_an_exported_metric() {
    let stack = Processes::start(&[], &[]).await;
    let token = stack.tenant("dashboards").await;
    let (status, body) = stack
        .scim(
            &token,
            reqwest::Method::POST,
            "/Users",
            Some(user("seen@dashboards.example").to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut exported = stack.scrape(&stack.adapter_metrics).await.names;
    exported.extend(stack.scrape(&stack.service_metrics).await.names);
    stack.stop().await;

    let rules = monitoring_file("prometheusrule.yaml");
    let alerts = rules
        .lines()
        .filter(|line| line.trim_start().starts_with("- alert:"))
        .count();
    let rule_queries = rule_expressions(&rules);
    assert_eq!(
        rule_queries.len(),
        alerts,
        "one expr per alert: {rule_queries:#?}"
    );
    assert!(alerts >= 8, "the alerts of docs/operations.md");

    let dashboard: Value =
        serde_json::from_str(&monitoring_file("dashboards/identity-lifecycle.json"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels {
        let kind = panel["type"].as_str().unwrap_or_default();
        if kind != "row" && kind != "text" {
            assert!(
                panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "a graph without a query: {panel}"
            );
        }
    }
    let mut dashboard_queries = Vec::new();
    dashboard_expressions(&dashboard, &mut dashboard_queries);
    assert!(dashboard_queries.len() >= panels.len() / 2);

    let operations = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"),
    )
    .expect("docs/operations.md");
    for query in rule_queries.iter().chain(&dashboard_queries) {
        let names = metric_names(query);
        assert!(
            !names.is_empty(),
            "a query that names no metric of ours: {query}"
        );
        for name in names {
            assert!(
                name == "up" || exported.contains(&name),
                "{name} in `{query}` is not exported; exported: {exported:#?}"
            );
        }
    }
    for alert in rules
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- alert:"))
    {
        assert!(
            operations.contains(alert.trim()),
            "alert {} is documented in docs/operations.md",
            alert.trim()
        );
    }
}

#[test]
fn the_query_readers_find_what_they_must() {
    let yaml = "        - alert: A\n          expr: up == 0\n        - alert: B\n          expr: |-\n            sum(rate(scim_http_requests_total{status=~\"5..\", route=\"identity_x\"}[5m]))\n              / sum(rate(identity_grpc_requests_total[5m]))\n          for: 5m\n";
    let found = rule_expressions(yaml);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0], "up == 0");
    assert_eq!(
        metric_names(&found[1]),
        ["scim_http_requests_total", "identity_grpc_requests_total"]
    );
    let mut queries = Vec::new();
    dashboard_expressions(
        &json!({"panels": [{"targets": [{"expr": "rate(scim_typo_total[5m])"}]}]}),
        &mut queries,
    );
    assert_eq!(metric_names(&queries[0]), ["scim_typo_total"]);
}
