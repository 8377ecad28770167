//! `identityctl users get`: a user as internal services read it, which is
//! where a tenant's policy shows: the full name by the name rule, the login
//! email, whether the user is still a tenant member, and the effective roles
//! and organizations (direct plus group-mapped).

use clap::{ArgGroup, Args};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression;
use identity_proto::v1::{
    AttributePath, Comparison, Filter, GetUserRequest, ListUsersRequest, User, UserSource,
};
use serde::Serialize;

use crate::client::Connection;
use crate::error::CliError;
use crate::output::{self, OutputFormat};

/// Show one user, by id or by userName, with what the tenant's policy made of it.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("which_user").required(true).args(["id", "user_name"])),
    after_help = "Examples:\n  identityctl users get --tenant acme --user-name ada@example.com\n  \
                  identityctl users get --tenant acme 0b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11 --output json"
)]
pub struct GetUser {
    /// Slug of the tenant.
    #[arg(long, value_name = "SLUG")]
    tenant: String,
    /// The user's id.
    id: Option<String>,
    /// The user's userName (matched case-insensitively).
    #[arg(long, value_name = "USER_NAME")]
    user_name: Option<String>,
    /// Also find deleted users (tombstones), by id.
    #[arg(long, requires = "id")]
    show_deleted: bool,
}

/// A user as printed; field names follow the proto so JSON output matches the API.
#[derive(Debug, Serialize)]
struct UserView {
    id: String,
    tenant: String,
    user_name: String,
    full_name: String,
    login_email: String,
    active: bool,
    tenant_member: bool,
    source: &'static str,
    roles: Vec<String>,
    organizations: Vec<String>,
    groups: Vec<String>,
    person_id: String,
    update_time: Option<String>,
    delete_time: Option<String>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        UserView {
            source: match user.source() {
                UserSource::Scim => "scim",
                UserSource::Direct => "direct",
                UserSource::Unspecified => "unknown",
            },
            active: user.active.unwrap_or(true),
            update_time: output::timestamp(user.update_time.as_ref()),
            delete_time: output::timestamp(user.delete_time.as_ref()),
            groups: user.groups.into_iter().map(|g| g.display_name).collect(),
            id: user.id,
            tenant: user.tenant,
            user_name: user.user_name,
            full_name: user.full_name,
            login_email: user.login_email,
            tenant_member: user.tenant_member,
            roles: user.roles,
            organizations: user.organizations,
            person_id: user.person_id,
        }
    }
}

pub async fn get(
    command: GetUser,
    connection: &Connection,
    format: OutputFormat,
) -> Result<(), CliError> {
    let mut client = connection.users();
    let user = match (command.id, command.user_name) {
        (Some(id), _) => client
            .get_user(GetUserRequest {
                tenant: command.tenant,
                id,
                show_deleted: command.show_deleted,
            })
            .await
            .map_err(|status| connection.rpc_error(status))?
            .into_inner(),
        // clap requires an id or a userName, so this is the userName.
        (None, user_name) => {
            let user_name = user_name.unwrap_or_default();
            client
                .list_users(ListUsersRequest {
                    tenant: command.tenant.clone(),
                    filter: Some(user_name_is(&user_name)),
                    page_size: Some(1),
                    ..ListUsersRequest::default()
                })
                .await
                .map_err(|status| connection.rpc_error(status))?
                .into_inner()
                .users
                .pop()
                .ok_or(CliError::NoSuchUser {
                    user_name,
                    tenant: command.tenant,
                })?
        }
    };
    let view = UserView::from(user);
    match format {
        OutputFormat::Json => output::print_json(&view),
        OutputFormat::Text => {
            println!("{}", render(&view));
            Ok(())
        }
    }
}

/// `userName eq "<name>"`, which the service matches case-insensitively.
fn user_name_is(user_name: &str) -> Filter {
    Filter {
        expression: Some(Expression::Comparison(Box::new(Comparison {
            path: Some(Box::new(AttributePath {
                attribute: "userName".into(),
                ..AttributePath::default()
            })),
            operator: Operator::Eq as i32,
            value: Some(prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(user_name.to_owned())),
            }),
        }))),
    }
}

fn render(user: &UserView) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    let mut fields = vec![
        ("id", user.id.clone()),
        ("user name", user.user_name.clone()),
        ("full name", user.full_name.clone()),
        ("login email", user.login_email.clone()),
        ("active", user.active.to_string()),
        ("tenant member", user.tenant_member.to_string()),
        ("source", user.source.to_owned()),
        ("roles", list(&user.roles)),
        ("organizations", list(&user.organizations)),
        ("groups", list(&user.groups)),
        ("person", user.person_id.clone()),
        ("updated", user.update_time.clone().unwrap_or_default()),
    ];
    if let Some(deleted) = &user.delete_time {
        fields.push(("deleted", deleted.clone()));
    }
    output::fields(&fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_proto::v1::GroupRef;

    fn ada() -> UserView {
        UserView::from(User {
            id: "0b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11".into(),
            tenant: "acme".into(),
            user_name: "ada@example.com".into(),
            full_name: "Ada Lovelace".into(),
            active: Some(false),
            roles: vec!["admin".into(), "member".into()],
            groups: vec![GroupRef {
                id: "g".into(),
                display_name: "Admins".into(),
            }],
            source: UserSource::Scim as i32,
            ..User::default()
        })
    }

    #[test]
    fn text_shows_access_and_state() {
        let text = render(&ada());
        assert!(
            text.contains("roles:") && text.contains("admin, member"),
            "{text}"
        );
        assert!(
            text.contains("organizations:") && text.contains("none"),
            "{text}"
        );
        assert!(text.contains("active:") && text.contains("false"), "{text}");
        assert!(!text.contains("deleted:"), "{text}");
    }

    #[test]
    fn json_uses_the_proto_field_names() {
        let json = serde_json::to_value(ada()).unwrap_or_default();
        assert_eq!(json["source"], "scim");
        assert_eq!(json["groups"], serde_json::json!(["Admins"]));
        assert_eq!(json["roles"], serde_json::json!(["admin", "member"]));
    }

    #[test]
    fn user_name_filter_is_an_equality() {
        let Some(Expression::Comparison(comparison)) = user_name_is("ada").expression else {
            panic!("a comparison")
        };
        assert_eq!(comparison.operator, Operator::Eq as i32);
        assert_eq!(
            comparison.path.map(|p| p.attribute).unwrap_or_default(),
            "userName"
        );
    }
}
