//! `identityctl`: the operators' client for the identity service's gRPC API
//! (identity.v1). It manages tenants, their provisioning policies and SCIM
//! switch, and the bearer tokens their identity providers and internal
//! services use.

mod client;
mod error;
mod events;
mod flags;
mod output;
mod policy;
mod tenants;
mod tokens;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use identity_proto::tls::ClientFiles;

use crate::client::Connection;
use crate::error::CliError;
use crate::output::OutputFormat;

/// Manage tenants, their provisioning policies and their bearer tokens on the identity service.
#[derive(Debug, Parser)]
#[command(
    name = "identityctl",
    version,
    after_help = "Authenticate with the operator token (the service's IDENTITY_ADMIN_TOKEN) in \
                  IDENTITY_TOKEN.\n\nExamples:\n  \
                  identityctl tenants create acme --display-name \"Acme Corp\"\n  \
                  identityctl tenants update acme --deprovision remove-membership\n  \
                  identityctl users get --tenant acme --user-name ada@example.com\n  \
                  identityctl tokens issue --tenant acme --name okta --ttl 90d\n  \
                  identityctl tokens list --tenant acme --output json\n  \
                  identityctl tokens revoke --tenant acme --name okta\n  \
                  identityctl tenants disable-scim acme\n  \
                  identityctl tenants enable-scim acme --token-name okta\n  \
                  identityctl events tail --tenant acme --type user-deprovisioned --output json"
)]
struct Cli {
    /// gRPC address of the identity service: http:// for plaintext HTTP/2,
    /// https:// for TLS (with --grpc-ca).
    #[arg(
        long,
        global = true,
        env = "IDENTITY_GRPC_URL",
        hide_env_values = true,
        help_heading = "Global options",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL"
    )]
    grpc_url: String,

    /// Bearer token sent as `authorization: Bearer <token>`; normally the operator token.
    /// Prefer the environment variable: command-line arguments are visible to other local users.
    #[arg(
        long,
        global = true,
        env = "IDENTITY_TOKEN",
        hide_env_values = true,
        help_heading = "Global options",
        value_name = "TOKEN"
    )]
    token: Option<String>,

    /// PEM file of the CA that signed the identity service's certificate (TLS).
    #[arg(
        long,
        global = true,
        env = "IDENTITY_GRPC_CA",
        help_heading = "Global options",
        value_name = "FILE"
    )]
    grpc_ca: Option<PathBuf>,

    /// PEM file of our client certificate, for a service that requires mTLS.
    #[arg(
        long,
        global = true,
        env = "IDENTITY_GRPC_CLIENT_CERT",
        help_heading = "Global options",
        value_name = "FILE"
    )]
    grpc_client_cert: Option<PathBuf>,

    /// PEM file of the private key of --grpc-client-cert.
    #[arg(
        long,
        global = true,
        env = "IDENTITY_GRPC_CLIENT_KEY",
        help_heading = "Global options",
        value_name = "FILE"
    )]
    grpc_client_key: Option<PathBuf>,

    /// Output format: `text` for people, `json` for scripts (one JSON document on stdout).
    #[arg(
        long,
        short = 'o',
        global = true,
        value_enum,
        default_value_t = OutputFormat::Text,
        help_heading = "Global options"
    )]
    output: OutputFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Show one user, by id or by userName, with what the tenant's policy made of it.
    Get(users::GetUser),
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, inspect and update tenants (the unit of isolation) and their
    /// provisioning policy; turn their SCIM on and off.
    #[command(subcommand)]
    Tenants(tenants::TenantsCommand),
    /// Read users as internal services see them: effective roles, membership, login email.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Issue, list and revoke a tenant's bearer tokens.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Follow or list a tenant's lifecycle events (operator or service token).
    #[command(subcommand)]
    Events(events::EventsCommand),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let tls = ClientFiles {
        ca: cli.grpc_ca.as_deref(),
        cert: cli.grpc_client_cert.as_deref(),
        key: cli.grpc_client_key.as_deref(),
    }
    .load()?;
    let connection = Connection::open(&cli.grpc_url, tls, cli.token.as_deref()).await?;
    match cli.command {
        Command::Tenants(command) => tenants::run(command, &connection, cli.output).await,
        Command::Tokens(command) => tokens::run(command, &connection, cli.output).await,
        Command::Events(command) => events::run(command, &connection, cli.output).await,
        Command::Users(UsersCommand::Get(command)) => {
            users::get(command, &connection, cli.output).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn output_is_global_and_defaults_to_text() {
        let cli = Cli::try_parse_from(["identityctl", "tenants", "list"]).unwrap();
        assert_eq!(cli.output, OutputFormat::Text);
        let cli =
            Cli::try_parse_from(["identityctl", "tenants", "list", "--output", "json"]).unwrap();
        assert_eq!(cli.output, OutputFormat::Json);
    }

    #[test]
    fn unknown_output_format_is_a_usage_error() {
        let err = Cli::try_parse_from(["identityctl", "--output", "yaml", "tenants", "list"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
