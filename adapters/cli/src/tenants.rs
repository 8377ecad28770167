//! `identityctl tenants ...`: TenantService calls and how tenants are shown.

use clap::Subcommand;
use identity_proto::v1::{
    CreateTenantRequest, DisableScimRequest, EnableScimRequest, GetTenantRequest,
    ListTenantsRequest, Tenant, UpdateTenantRequest,
};
use serde::Serialize;

use crate::client::Connection;
use crate::error::CliError;
use crate::output::{self, OutputFormat};
use crate::policy::{PolicyFlags, PolicyView};
use crate::tokens::{TokenView, render_with_secret};

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant. Needs the operator token.
    #[command(
        after_help = "Example:\n  identityctl tenants create acme --display-name \"Acme Corp\""
    )]
    Create {
        /// Unique tenant slug: lowercase letters, digits and '-', 2 to 63 characters.
        slug: String,
        /// Human-readable name shown in listings.
        #[arg(long, value_name = "NAME", default_value = "")]
        display_name: String,
    },
    /// List every tenant, with whether SCIM is enabled. Needs the operator token.
    #[command(
        after_help = "Examples:\n  identityctl tenants list\n  identityctl tenants list --output json"
    )]
    List,
    /// Show one tenant, with whether SCIM is enabled and its provisioning policy. A tenant
    /// token may read its own tenant.
    #[command(after_help = "Example:\n  identityctl tenants get acme")]
    Get {
        /// The tenant's slug.
        slug: String,
    },
    /// Change a tenant's display name and provisioning policy. Needs the operator token.
    ///
    /// Only the flags given change; the rest of the policy keeps its value. The
    /// service applies the new policy from the next request on.
    #[command(after_help = "Examples:\n  \
        identityctl tenants update acme --lowercase-identifiers true --deprovision soft-delete\n  \
        identityctl tenants update acme --default-role member --name-policy display-name-first\n  \
        identityctl tenants update acme --required-attributes email,given-name,family-name\n  \
        identityctl tenants update acme --existing-person reject --synthetic-groups true\n  \
        identityctl tenants update acme --group-role Engineering=developer --group-organization Engineering=R&D")]
    Update {
        /// The tenant's slug.
        slug: String,
        /// New human-readable name.
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        #[command(flatten)]
        policy: PolicyFlags,
    },
    /// Turn SCIM on for a tenant and issue a fresh SCIM token, printing its secret once.
    ///
    /// The secret is printed alone on the last line of stdout (text output) or as
    /// `secret` (JSON output). Fails, changing nothing, if a live token already has the
    /// token name; pick another with --token-name. Needs the operator token.
    #[command(after_help = "Examples:\n  identityctl tenants enable-scim acme\n  \
                      SECRET=$(identityctl tenants enable-scim acme --token-name okta | tail -n 1)")]
    EnableScim {
        /// The tenant's slug.
        slug: String,
        /// Name of the SCIM token issued (unique among the tenant's live tokens).
        #[arg(long, value_name = "NAME", default_value = "scim")]
        token_name: String,
    },
    /// Turn SCIM off for a tenant and revoke all its SCIM tokens at once.
    ///
    /// Users, groups and service tokens are untouched; running it again changes
    /// nothing. `enable-scim` turns SCIM back on with a new token. Needs the operator token.
    #[command(after_help = "Example:\n  identityctl tenants disable-scim acme")]
    DisableScim {
        /// The tenant's slug.
        slug: String,
    },
}

/// A tenant as printed; field names follow the proto so JSON output matches the API.
#[derive(Debug, Serialize)]
struct TenantView {
    id: String,
    slug: String,
    display_name: String,
    create_time: Option<String>,
    scim_enabled: bool,
    policy: PolicyView,
}

impl From<Tenant> for TenantView {
    fn from(tenant: Tenant) -> Self {
        Self {
            create_time: output::timestamp(tenant.create_time.as_ref()),
            id: tenant.id,
            slug: tenant.slug,
            display_name: tenant.display_name,
            scim_enabled: tenant.scim_enabled,
            policy: PolicyView::from(tenant.policy.unwrap_or_default()),
        }
    }
}

/// What `enable-scim` answers: the tenant and its new token with the secret.
#[derive(Debug, Serialize)]
struct ScimEnabled {
    tenant: TenantView,
    token: TokenView,
    secret: String,
}

#[derive(Debug, Serialize)]
struct TenantList {
    tenants: Vec<TenantView>,
}

pub async fn run(
    command: TenantsCommand,
    connection: &Connection,
    format: OutputFormat,
) -> Result<(), CliError> {
    let mut client = connection.tenants();
    match command {
        TenantsCommand::Create { slug, display_name } => {
            let tenant = client
                .create_tenant(CreateTenantRequest { slug, display_name })
                .await
                .map_err(|status| connection.rpc_error(status))?
                .into_inner();
            print_one(TenantView::from(tenant), format, "created tenant")
        }
        TenantsCommand::Get { slug } => {
            let tenant = client
                .get_tenant(GetTenantRequest { slug })
                .await
                .map_err(|status| connection.rpc_error(status))?
                .into_inner();
            print_one(TenantView::from(tenant), format, "tenant")
        }
        TenantsCommand::Update {
            slug,
            display_name,
            policy,
        } => {
            let tenant = client
                .update_tenant(UpdateTenantRequest {
                    slug,
                    display_name,
                    policy: policy.to_update(),
                })
                .await
                .map_err(|status| connection.rpc_error(status))?
                .into_inner();
            print_one(TenantView::from(tenant), format, "updated tenant")
        }
        TenantsCommand::List => {
            let mut tenants = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_tenants(ListTenantsRequest {
                        page_size: None,
                        page_token,
                    })
                    .await
                    .map_err(|status| connection.rpc_error(status))?
                    .into_inner();
                tenants.extend(page.tenants.into_iter().map(TenantView::from));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            match format {
                OutputFormat::Json => output::print_json(&TenantList { tenants }),
                OutputFormat::Text => {
                    println!("{}", render_list(&tenants));
                    Ok(())
                }
            }
        }
        TenantsCommand::EnableScim { slug, token_name } => {
            let enabled = client
                .enable_scim(EnableScimRequest { slug, token_name })
                .await
                .map_err(|status| connection.rpc_error(status))?
                .into_inner();
            let enabled = ScimEnabled {
                tenant: enabled
                    .tenant
                    .map(TenantView::from)
                    .ok_or(CliError::IncompleteAnswer("EnableScim returned no tenant"))?,
                token: enabled
                    .token
                    .map(TokenView::from)
                    .ok_or(CliError::IncompleteAnswer("EnableScim returned no token"))?,
                secret: enabled.secret,
            };
            match format {
                OutputFormat::Json => output::print_json(&enabled),
                OutputFormat::Text => {
                    let heading = format!(
                        "enabled SCIM for tenant {} and issued SCIM token {}",
                        enabled.tenant.slug,
                        enabled.token.name()
                    );
                    println!(
                        "{}",
                        render_with_secret(&heading, &enabled.token, &enabled.secret)
                    );
                    Ok(())
                }
            }
        }
        TenantsCommand::DisableScim { slug } => {
            let tenant = client
                .disable_scim(DisableScimRequest { slug })
                .await
                .map_err(|status| connection.rpc_error(status))?
                .into_inner();
            print_one(
                TenantView::from(tenant),
                format,
                "disabled SCIM and revoked every SCIM token of tenant",
            )
        }
    }
}

fn print_one(tenant: TenantView, format: OutputFormat, heading: &str) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => output::print_json(&tenant),
        OutputFormat::Text => {
            println!("{heading} {}", tenant.slug);
            println!("{}", render_one(&tenant));
            Ok(())
        }
    }
}

fn render_one(tenant: &TenantView) -> String {
    let mut fields = vec![
        ("id", tenant.id.clone()),
        ("slug", tenant.slug.clone()),
        ("display name", tenant.display_name.clone()),
        ("created", tenant.create_time.clone().unwrap_or_default()),
        ("scim", on_off(tenant.scim_enabled).to_owned()),
    ];
    fields.extend(tenant.policy.fields());
    output::fields(&fields)
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "enabled" } else { "disabled" }
}

fn render_list(tenants: &[TenantView]) -> String {
    if tenants.is_empty() {
        return "no tenants".to_owned();
    }
    let rows: Vec<Vec<String>> = tenants
        .iter()
        .map(|t| {
            vec![
                t.slug.clone(),
                t.id.clone(),
                t.create_time.clone().unwrap_or_default(),
                on_off(t.scim_enabled).to_owned(),
                t.display_name.clone(),
            ]
        })
        .collect();
    output::table(&["SLUG", "ID", "CREATED", "SCIM", "DISPLAY NAME"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantView {
        TenantView::from(Tenant {
            id: "0b7c3f5e-0000-4000-8000-000000000001".into(),
            slug: "acme".into(),
            display_name: "Acme Corp".into(),
            create_time: Some(prost_types::Timestamp {
                seconds: 1_795_420_800,
                nanos: 0,
            }),
            scim_enabled: true,
            ..Tenant::default()
        })
    }

    #[test]
    fn json_uses_the_proto_field_names() {
        let json = serde_json::to_value(acme()).unwrap();
        assert_eq!(json["id"], "0b7c3f5e-0000-4000-8000-000000000001");
        assert_eq!(json["slug"], "acme");
        assert_eq!(json["display_name"], "Acme Corp");
        assert_eq!(json["create_time"], "2026-11-23T08:00:00Z");
        assert_eq!(json["scim_enabled"], true);
        assert_eq!(json["policy"]["deprovision"], "suspend");
        assert_eq!(json["policy"]["group_mappings"], serde_json::json!([]));
    }

    #[test]
    fn list_is_a_table_with_a_header() {
        let rendered = render_list(&[acme()]);
        let mut lines = rendered.lines();
        assert!(lines.next().unwrap().starts_with("SLUG  ID"));
        assert!(lines.next().unwrap().starts_with("acme  0b7c3f5e-"));
        assert!(rendered.contains("2026-11-23T08:00:00Z  enabled  Acme Corp"));
    }

    #[test]
    fn empty_list_says_so() {
        assert_eq!(render_list(&[]), "no tenants");
    }
}
