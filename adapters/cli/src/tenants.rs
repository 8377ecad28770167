//! `identityctl tenants ...`: TenantService calls and how tenants are shown.

use clap::Subcommand;
use identity_proto::v1::{
    CreateTenantRequest, GetTenantRequest, ListTenantsRequest, Tenant, UpdateTenantRequest,
};
use serde::Serialize;

use crate::client::Connection;
use crate::error::CliError;
use crate::output::{self, OutputFormat};
use crate::policy::{PolicyFlags, PolicyView};

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
    /// List every tenant. Needs the operator token.
    List,
    /// Show one tenant with its provisioning policy. A tenant token may read its own tenant.
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
        ("scim enabled", tenant.scim_enabled.to_string()),
    ];
    fields.extend(tenant.policy.fields());
    output::fields(&fields)
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
                t.display_name.clone(),
            ]
        })
        .collect();
    output::table(&["SLUG", "ID", "CREATED", "DISPLAY NAME"], &rows)
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
        assert_eq!(json["scim_enabled"], false);
        assert_eq!(json["policy"]["deprovision"], "suspend");
        assert_eq!(json["policy"]["group_mappings"], serde_json::json!([]));
    }

    #[test]
    fn list_is_a_table_with_a_header() {
        let rendered = render_list(&[acme()]);
        let mut lines = rendered.lines();
        assert!(lines.next().unwrap().starts_with("SLUG  ID"));
        assert!(lines.next().unwrap().starts_with("acme  0b7c3f5e-"));
    }

    #[test]
    fn empty_list_says_so() {
        assert_eq!(render_list(&[]), "no tenants");
    }
}
