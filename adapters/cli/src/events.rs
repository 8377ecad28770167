//! `identityctl events tail|list`: a tenant's lifecycle events, followed
//! live or listed for audit. Reading events takes the operator token or a
//! service token of the tenant.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use identity_proto::v1::{
    ErrorReason, Event, EventType, ListEventsRequest, ResourceType, WatchRequest, actor,
    watch_request,
};
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::client::Connection;
use crate::error::CliError;
use crate::flags::label;
use crate::output::{self, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Follow a tenant's events as they commit, until interrupted. A dropped
    /// stream is resumed after the last event printed, so none is missed or
    /// printed twice. With `--output json`, one JSON object per line.
    #[command(after_help = "Examples:\n  identityctl events tail --tenant acme\n  \
                  identityctl events tail --tenant acme --from 120 --type user-deprovisioned \
                  --output json")]
    Tail(Tail),
    /// List a tenant's stored events, oldest first, for audit.
    #[command(
        after_help = "Examples:\n  identityctl events list --tenant acme --resource-id \
                  0b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11\n  \
                  identityctl events list --tenant acme --type token-revoked --since \
                  2026-12-01T00:00:00Z --output json"
    )]
    List(List),
}

#[derive(Debug, Args)]
pub struct Tail {
    /// Slug of the tenant.
    #[arg(long, value_name = "SLUG")]
    tenant: String,
    /// Start after this sequence number (0: from the oldest stored event);
    /// without it, only events from now on.
    #[arg(long, value_name = "SEQ")]
    from: Option<u64>,
    /// Only events of this type (repeat for several).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    types: Vec<EventTypeArg>,
    /// Only events of this resource type (repeat for several).
    #[arg(long = "resource-type", value_enum, value_name = "RESOURCE")]
    resource_types: Vec<ResourceTypeArg>,
}

#[derive(Debug, Args)]
pub struct List {
    /// Slug of the tenant.
    #[arg(long, value_name = "SLUG")]
    tenant: String,
    /// Only events of this type (repeat for several).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    types: Vec<EventTypeArg>,
    /// Only events of this resource type.
    #[arg(long, value_enum, value_name = "RESOURCE")]
    resource_type: Option<ResourceTypeArg>,
    /// Only events of this user, group, token or tenant id.
    #[arg(long, value_name = "ID")]
    resource_id: Option<String>,
    /// Only changes made with this token (its id, see `tokens list`).
    #[arg(long, value_name = "TOKEN_ID")]
    actor_token_id: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<prost_types::Timestamp>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<prost_types::Timestamp>,
    /// Events per page (at most 1000).
    #[arg(long, default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(i32).range(1..=1000))]
    page_size: i32,
    /// The next_page_token a previous list printed.
    #[arg(long, value_name = "TOKEN")]
    page_token: Option<String>,
}

/// `--type`: every event type, spelled as output prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventTypeArg {
    UserCreated,
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    UserDeprovisioned,
    UserDeleted,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    MemberAdded,
    MemberRemoved,
    AccessChanged,
    TokenIssued,
    TokenRevoked,
    TenantUpdated,
    ScimEnabled,
    ScimDisabled,
}

/// `--resource-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResourceTypeArg {
    User,
    Group,
    Token,
    Tenant,
}

impl From<EventTypeArg> for EventType {
    fn from(value: EventTypeArg) -> Self {
        // The flag value is the proto name without its prefix: one spelling.
        let name = format!(
            "EVENT_TYPE_{}",
            label(value).replace('-', "_").to_uppercase()
        );
        EventType::from_str_name(&name).unwrap_or(EventType::Unspecified)
    }
}

impl From<ResourceTypeArg> for ResourceType {
    fn from(value: ResourceTypeArg) -> Self {
        let name = format!("RESOURCE_TYPE_{}", label(value).to_uppercase());
        ResourceType::from_str_name(&name).unwrap_or(ResourceType::Unspecified)
    }
}

/// A proto enum name as a flag value: `EVENT_TYPE_USER_CREATED` with prefix
/// `EVENT_TYPE_` is `user-created`.
fn flag_spelling(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_lowercase()
        .replace('_', "-")
}

fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    let time = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| format!("'{text}' is not an RFC 3339 time such as 2026-12-01T00:00:00Z: {e}"))?
        .with_timezone(&Utc);
    Ok(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

#[derive(Debug, Serialize)]
struct ActorView {
    kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    token_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    token_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    provider: String,
}

/// An event as printed; field names follow the proto, values the flags.
#[derive(Debug, Serialize)]
struct EventView {
    tenant: String,
    sequence: u64,
    r#type: String,
    resource_type: String,
    resource_id: String,
    actor: ActorView,
    request_id: String,
    trace_id: String,
    time: Option<String>,
    changes: serde_json::Map<String, serde_json::Value>,
}

impl From<Event> for EventView {
    fn from(event: Event) -> Self {
        let actor = event.actor.unwrap_or_default();
        let changes = event
            .changes
            .into_iter()
            .map(|(name, change)| {
                let mut sides = serde_json::Map::new();
                if let Some(before) = change.before {
                    sides.insert("before".into(), identity_proto::value_to_json(before));
                }
                if let Some(after) = change.after {
                    sides.insert("after".into(), identity_proto::value_to_json(after));
                }
                (name, serde_json::Value::Object(sides))
            })
            .collect();
        EventView {
            r#type: flag_spelling(
                EventType::try_from(event.r#type)
                    .unwrap_or_default()
                    .as_str_name(),
                "EVENT_TYPE_",
            ),
            resource_type: flag_spelling(
                ResourceType::try_from(event.resource_type)
                    .unwrap_or_default()
                    .as_str_name(),
                "RESOURCE_TYPE_",
            ),
            actor: ActorView {
                kind: match actor.kind() {
                    actor::Kind::Operator => "operator",
                    actor::Kind::Token => "token",
                    actor::Kind::Unspecified => "unknown",
                },
                token_id: actor.token_id,
                token_name: actor.token_name,
                provider: actor.provider,
            },
            time: output::timestamp(event.time.as_ref()),
            tenant: event.tenant,
            sequence: event.sequence,
            resource_id: event.resource_id,
            request_id: event.request_id,
            trace_id: event.trace_id,
            changes,
        }
    }
}

/// One line per event: sequence, time, type, resource, actor, changed attributes.
fn render_line(event: &EventView) -> String {
    let actor = match event.actor.kind {
        "token" => format!("token:{}", event.actor.token_name),
        other => other.to_owned(),
    };
    let changed: Vec<&str> = event.changes.keys().map(String::as_str).collect();
    format!(
        "{}  {}  {}  {}/{}  {}  {}",
        event.sequence,
        event.time.as_deref().unwrap_or("-"),
        event.r#type,
        event.resource_type,
        event.resource_id,
        actor,
        changed.join(",")
    )
    .trim_end()
    .to_owned()
}

fn print_event(event: Event, format: OutputFormat) -> Result<(), CliError> {
    let view = EventView::from(event);
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&view)?),
        OutputFormat::Text => println!("{}", render_line(&view)),
    }
    Ok(())
}

/// How long `tail` waits before resuming a stream the service ended.
const RESUME_DELAY: Duration = Duration::from_secs(1);

/// Whether a stream that ended with `status` is resumed: anything but a
/// refusal and the service's own OUT_OF_RANGE. A connection cut under the
/// stream (the service killed) reaches tonic as UNKNOWN, INTERNAL or even
/// OUT_OF_RANGE (an unexpected end of file), so the service's answer is
/// told apart by its reason.
fn resumable(status: &Status) -> bool {
    let pruned = status
        .get_error_details()
        .error_info()
        .is_some_and(|info| info.reason == ErrorReason::SequenceOutOfRange.as_str_name());
    !pruned
        && !matches!(
            status.code(),
            Code::Unauthenticated
                | Code::PermissionDenied
                | Code::InvalidArgument
                | Code::NotFound
                | Code::FailedPrecondition
                | Code::Unimplemented
        )
}

pub async fn run(
    command: EventsCommand,
    connection: &Connection,
    format: OutputFormat,
) -> Result<(), CliError> {
    match command {
        EventsCommand::Tail(tail) => run_tail(tail, connection, format).await,
        EventsCommand::List(list) => run_list(list, connection, format).await,
    }
}

async fn run_tail(
    tail: Tail,
    connection: &Connection,
    format: OutputFormat,
) -> Result<(), CliError> {
    let types: Vec<i32> = tail
        .types
        .iter()
        .map(|t| EventType::from(*t) as i32)
        .collect();
    let resource_types: Vec<i32> = tail
        .resource_types
        .iter()
        .map(|t| ResourceType::from(*t) as i32)
        .collect();
    let mut start = match tail.from {
        Some(after) => watch_request::Start::AfterSequence(after),
        None => watch_request::Start::Now(true),
    };
    loop {
        let request = WatchRequest {
            tenant: tail.tenant.clone(),
            start: Some(start),
            types: types.clone(),
            resource_types: resource_types.clone(),
        };
        let status = match connection.events().watch(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(event)) => {
                            start = watch_request::Start::AfterSequence(event.sequence);
                            print_event(event, format)?;
                        }
                        Ok(None) => return Ok(()),
                        Err(status) => break status,
                    }
                }
            }
            Err(status) => status,
        };
        if !resumable(&status) {
            return Err(connection.rpc_error(status));
        }
        eprintln!("the stream ended ({}); resuming", status.message());
        tokio::time::sleep(RESUME_DELAY).await;
    }
}

/// A page of events as printed in JSON: one document.
#[derive(Debug, Serialize)]
struct EventPage {
    events: Vec<EventView>,
    next_page_token: String,
}

async fn run_list(
    list: List,
    connection: &Connection,
    format: OutputFormat,
) -> Result<(), CliError> {
    let page = connection
        .events()
        .list_events(ListEventsRequest {
            tenant: list.tenant,
            resource_type: list
                .resource_type
                .map_or(0, |t| ResourceType::from(t) as i32),
            resource_id: list.resource_id.unwrap_or_default(),
            types: list
                .types
                .iter()
                .map(|t| EventType::from(*t) as i32)
                .collect(),
            actor_token_id: list.actor_token_id.unwrap_or_default(),
            start_time: list.since,
            end_time: list.until,
            page_size: Some(list.page_size),
            page_token: list.page_token.unwrap_or_default(),
        })
        .await
        .map_err(|status| connection.rpc_error(status))?
        .into_inner();
    let page = EventPage {
        events: page.events.into_iter().map(EventView::from).collect(),
        next_page_token: page.next_page_token,
    };
    match format {
        OutputFormat::Json => output::print_json(&page),
        OutputFormat::Text => {
            for event in &page.events {
                println!("{}", render_line(event));
            }
            if !page.next_page_token.is_empty() {
                println!("more: --page-token {}", page.next_page_token);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn every_type_flag_names_a_proto_type() {
        for flag in EventTypeArg::value_variants() {
            let proto = EventType::from(*flag);
            assert_ne!(proto, EventType::Unspecified, "{flag:?}");
            assert_eq!(
                flag_spelling(proto.as_str_name(), "EVENT_TYPE_"),
                label(*flag)
            );
        }
        for flag in ResourceTypeArg::value_variants() {
            let proto = ResourceType::from(*flag);
            assert_ne!(proto, ResourceType::Unspecified, "{flag:?}");
            assert_eq!(
                flag_spelling(proto.as_str_name(), "RESOURCE_TYPE_"),
                label(*flag)
            );
        }
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(
            parse_time("2026-12-01T00:00:00Z").map(|t| t.seconds),
            Ok(1_796_083_200)
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn refusals_and_pruned_positions_are_not_resumed() {
        assert!(resumable(&Status::unavailable("shutting down")));
        assert!(resumable(&Status::resource_exhausted("too slow")));
        assert!(resumable(&Status::unknown("h2 protocol error")));
        assert!(resumable(&Status::out_of_range("unexpected end of file")));
        assert!(!resumable(&Status::permission_denied("scim token")));
        let pruned = Status::with_error_details(
            Code::OutOfRange,
            "pruned",
            ErrorDetails::with_error_info(
                ErrorReason::SequenceOutOfRange.as_str_name(),
                "identity.example",
                std::collections::HashMap::new(),
            ),
        );
        assert!(!resumable(&pruned));
    }
}
