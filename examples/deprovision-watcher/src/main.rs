//! An example consumer of the identity service's lifecycle events, for
//! internal services that must react when someone leaves a tenant.
//!
//! It follows one tenant's deprovisioning events (a user deactivated,
//! deprovisioned or deleted) with `EventService.Watch` and prints each one;
//! a real consumer would end that user's sessions or revoke their keys at
//! the same place ([`handle`]). What it shows:
//!
//! - **Position.** After each event it durably saves that event's sequence
//!   number ([`state`]), and every (re)connection asks for the events after
//!   it, so a restart misses nothing and repeats nothing. The one window is
//!   a crash between handling an event and saving its number: that event is
//!   handled again on restart, so handling must be idempotent (deactivating
//!   a deactivated user is).
//! - **Resuming.** The service ends streams when it restarts or drains
//!   (UNAVAILABLE) and when this reader falls too far behind
//!   (RESOURCE_EXHAUSTED, `CONSUMER_TOO_SLOW`); a connection may also just
//!   break. Each time, it waits (exponential backoff) and resumes from the
//!   saved position.
//! - **Stopping.** OUT_OF_RANGE (`SEQUENCE_OUT_OF_RANGE`) means events of
//!   the kinds it watches after the saved position were pruned (pruned
//!   events of other kinds do not count), so they were lost to this consumer: it
//!   stops and tells the operator what to do, since no retry can fix that.
//!   So do refusals of the token or the request. Ctrl-C and SIGTERM stop it
//!   between two events, exit status 0.

mod state;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use identity_proto::v1::event_service_client::EventServiceClient;
use identity_proto::v1::{ErrorReason, Event, EventType, WatchRequest, actor, watch_request};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::state::StateError;

/// The events that mean a user no longer belongs in the tenant.
const DEPROVISIONING: [EventType; 3] = [
    EventType::UserDeactivated,
    EventType::UserDeprovisioned,
    EventType::UserDeleted,
];

/// The first wait before resuming; it doubles up to [`MAX_BACKOFF`] while
/// the service stays away, so a restarting service is not hammered.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Follows a tenant's deprovisioning events (user deactivated, deprovisioned, deleted), \
             prints each, and resumes after the last one it handled",
    after_help = "Example:\n  IDENTITY_TOKEN=<service token> deprovision-watcher --tenant demo \
                  --state-file demo.seq"
)]
struct Cli {
    /// The identity service's gRPC URL.
    #[arg(
        long,
        env = "IDENTITY_GRPC_URL",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL"
    )]
    grpc_url: String,
    /// A service token of the tenant (`identityctl tokens issue --scope service`) or the
    /// operator token; SCIM tokens may not read events. Prefer the variable: arguments are
    /// visible to other local users.
    #[arg(
        long,
        env = "IDENTITY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: String,
    /// Slug of the tenant to follow.
    #[arg(long, env = "IDENTITY_TENANT", value_name = "SLUG")]
    tenant: String,
    /// Where the sequence number of the last handled event is kept. Without the file, the
    /// watcher starts at the oldest stored event; to start elsewhere, write a sequence number
    /// into it first.
    #[arg(
        long,
        env = "DEPROVISION_STATE_FILE",
        default_value = "deprovision-watcher.state",
        value_name = "PATH"
    )]
    state_file: PathBuf,
    /// `text`: one line per event; `json`: one JSON object per line.
    #[arg(
        long,
        env = "DEPROVISION_OUTPUT",
        value_enum,
        default_value_t = Output::Text
    )]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Why the watcher stopped on its own.
#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("invalid gRPC URL {url:?} (IDENTITY_GRPC_URL or --grpc-url): {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("the token (IDENTITY_TOKEN or --token) is not printable ASCII")]
    TokenNotAscii,
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "the service no longer stores the events after sequence {position} ({message}). \
         Deprovisionings between then and now were not seen by this watcher: reconcile them \
         (e.g. look for inactive users of the tenant), then write the tenant's newest sequence \
         number (the first column of `identityctl events list --tenant <slug>`, last page) \
         into {state_file}, or delete that file to start from the oldest stored event; then \
         start the watcher again"
    )]
    OutOfRange {
        position: String,
        message: String,
        state_file: String,
    },
    #[error(
        "the service refused the watch ({code:?}): {message}; check IDENTITY_TOKEN (a service \
         token of the tenant, not a SCIM token) and --tenant"
    )]
    Refused { code: Code, message: String },
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Client = EventServiceClient<InterceptedService<Channel, Bearer>>;

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

fn shutdown_signal() -> Shutdown {
    Box::pin(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deprovision-watcher: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), WatchError> {
    let endpoint = Endpoint::from_shared(cli.grpc_url.clone())
        .map_err(|e| WatchError::InvalidUrl {
            url: cli.grpc_url.clone(),
            reason: e.to_string(),
        })?
        .connect_timeout(Duration::from_secs(5))
        // A stream can be quiet for hours: pings find a peer that vanished
        // without closing the connection (a host lost, a NAT entry expired),
        // which then ends the stream as UNAVAILABLE and is resumed.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    let bearer = format!("Bearer {}", cli.token.trim())
        .parse()
        .map_err(|_| WatchError::TokenNotAscii)?;
    // Lazy: an unreachable service at start-up is retried like one that
    // went away later.
    let client = EventServiceClient::with_interceptor(endpoint.connect_lazy(), Bearer(bearer));
    let position = state::load(&cli.state_file)?;
    let mut watcher = Watcher {
        client,
        cli,
        position,
    };
    let mut shutdown = shutdown_signal();
    watcher.run(&mut shutdown).await
}

struct Watcher {
    client: Client,
    cli: Cli,
    /// The sequence of the last event handled and saved; `None` before the first.
    position: Option<u64>,
}

/// How a stream ended.
enum Ended {
    Shutdown,
    Status(Status),
}

impl Watcher {
    /// Watches, handles and resumes until a signal or an error that retrying
    /// cannot fix.
    async fn run(&mut self, shutdown: &mut Shutdown) -> Result<(), WatchError> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let opened = tokio::select! {
                () = &mut *shutdown => return Ok(()),
                opened = self.client.watch(self.request()) => opened,
            };
            let status = match opened {
                Ok(stream) => {
                    backoff = FIRST_BACKOFF;
                    match self.follow(stream.into_inner(), shutdown).await? {
                        Ended::Shutdown => return Ok(()),
                        Ended::Status(status) => status,
                    }
                }
                Err(status) => status,
            };
            self.check_resumable(&status)?;
            eprintln!(
                "deprovision-watcher: the stream ended ({:?}: {}); resuming after sequence {} in {backoff:?}",
                status.code(),
                status.message(),
                self.position_text(),
            );
            tokio::select! {
                () = &mut *shutdown => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The request for the events after the saved position; without one,
    /// from the oldest event still stored.
    fn request(&self) -> WatchRequest {
        WatchRequest {
            tenant: self.cli.tenant.clone(),
            start: self.position.map(watch_request::Start::AfterSequence),
            types: DEPROVISIONING.iter().map(|t| *t as i32).collect(),
            resource_types: Vec::new(),
        }
    }

    /// Handles each event of `stream` until it ends. A signal is only
    /// noticed between events, so an event is never half handled.
    async fn follow(
        &mut self,
        mut stream: tonic::Streaming<Event>,
        shutdown: &mut Shutdown,
    ) -> Result<Ended, WatchError> {
        loop {
            let next = tokio::select! {
                () = &mut *shutdown => return Ok(Ended::Shutdown),
                next = stream.message() => next,
            };
            match next {
                Ok(Some(event)) => {
                    let sequence = event.sequence;
                    handle(&event, self.cli.output);
                    let path = self.cli.state_file.clone();
                    // fsync blocks: off the async threads.
                    tokio::task::spawn_blocking(move || state::save(&path, sequence))
                        .await
                        .map_err(|e| StateError::Write {
                            path: self.cli.state_file.clone(),
                            source: std::io::Error::other(e),
                        })??;
                    self.position = Some(sequence);
                }
                // The service never ends a watch without a status; treat an
                // empty end like a dropped connection.
                Ok(None) => {
                    return Ok(Ended::Status(Status::unavailable(
                        "the stream ended without a status",
                    )));
                }
                Err(status) => return Ok(Ended::Status(status)),
            }
        }
    }

    /// Errors for the statuses no retry can fix; everything else resumes.
    /// A connection that breaks mid-stream (the service killed, a proxy
    /// reset) reaches a client as UNKNOWN, INTERNAL, CANCELLED or even
    /// OUT_OF_RANGE (an unexpected end of file) from the transport, so the
    /// service's own OUT_OF_RANGE is told apart by its ErrorInfo reason.
    fn check_resumable(&self, status: &Status) -> Result<(), WatchError> {
        let reason = status
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone());
        if reason.as_deref() == Some(ErrorReason::SequenceOutOfRange.as_str_name()) {
            return Err(WatchError::OutOfRange {
                position: self.position_text(),
                message: status.message().to_owned(),
                state_file: self.cli.state_file.display().to_string(),
            });
        }
        match status.code() {
            Code::Unauthenticated
            | Code::PermissionDenied
            | Code::InvalidArgument
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::Unimplemented => Err(WatchError::Refused {
                code: status.code(),
                message: status.message().to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn position_text(&self) -> String {
        self.position
            .map_or_else(|| "0 (none handled yet)".to_owned(), |p| p.to_string())
    }
}

/// What this consumer does with an event: print it. Replace the body with
/// the real work (end sessions, revoke keys); keep it idempotent.
fn handle(event: &Event, output: Output) {
    let kind = EventType::try_from(event.r#type)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("EVENT_TYPE_")
        .to_lowercase()
        .replace('_', "-");
    let time = event.time.map(|t| t.to_string()).unwrap_or_default();
    let by = event
        .actor
        .as_ref()
        .map_or_else(String::new, |a| match a.kind() {
            actor::Kind::Operator => "operator".to_owned(),
            actor::Kind::Token => format!("token:{}", a.token_name),
            actor::Kind::Unspecified => String::new(),
        });
    match output {
        Output::Text => println!(
            "{} {time} {kind} user={} tenant={} by={by}",
            event.sequence, event.resource_id, event.tenant
        ),
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "sequence": event.sequence,
                "type": kind,
                "tenant": event.tenant,
                "user_id": event.resource_id,
                "time": time,
                "actor": by,
                "request_id": event.request_id,
            })
        ),
    }
}
