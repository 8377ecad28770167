//! A tenant's provisioning policy on the command line: the flags of
//! `tenants update` that change it, and how `tenants get` shows it. Flag
//! values are the proto enum names in kebab case without their prefix.

use clap::Args;
use identity_proto::v1::{
    DeleteMode, DeprovisionAction, ExistingPersonPolicy, GroupMapping, GroupMappings,
    LoginEmailSource, NamePolicy, PolicyUpdate, ProvisioningPolicy, RequiredAttribute,
    RequiredAttributes, VerifiedDomains,
};
use serde::Serialize;

/// Policy changes; a flag left out keeps the current value.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Provisioning policy (a flag left out keeps its value)")]
pub struct PolicyFlags {
    /// Which name is the user's full name: given + family first with
    /// name.formatted as fallback (Aviator), or displayName first (Aptible).
    #[arg(long, value_enum, value_name = "RULE")]
    pub name_policy: Option<NameRule>,
    /// Lowercase userName and email addresses when storing them (Aviator).
    #[arg(long, value_name = "BOOL")]
    pub lowercase_identifiers: Option<bool>,
    /// The attribute that holds the sign-in address (AccessIQ, Aritma).
    #[arg(long, value_enum, value_name = "ATTRIBUTE")]
    pub login_email: Option<LoginEmail>,
    /// Attributes every create and update must carry besides userName,
    /// comma-separated; `none` clears the list (AccessIQ: email,given-name,family-name).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "ATTRIBUTES")]
    pub required_attributes: Option<Vec<Required>>,
    /// Role given to every new user; an empty value gives none (Aptible, AccessIQ).
    #[arg(long, value_name = "ROLE")]
    pub default_role: Option<String>,
    /// Organization every new user joins; an empty value means none (AccessIQ).
    #[arg(long, value_name = "ORGANIZATION")]
    pub default_organization: Option<String>,
    /// What `active=false` does: suspend (reversible), soft-delete with the
    /// email obfuscated (Aviator), or remove the tenant membership and keep
    /// the person (Tuist).
    #[arg(long, value_enum, value_name = "ACTION")]
    pub deprovision: Option<Deprovision>,
    /// What DELETE does: keep an obfuscated tombstone (soft) or remove the row (hard).
    #[arg(long, value_enum, value_name = "MODE")]
    pub delete_mode: Option<Delete>,
    /// A SCIM write (create, PUT, PATCH, bulk) that sets an address belonging
    /// to a person this tenant's SCIM does not manage: link to that person
    /// (a person of another tenant only under a verified domain), or reject
    /// with 409 (Tuist).
    #[arg(long, value_enum, value_name = "POLICY")]
    pub existing_person: Option<ExistingPerson>,
    /// Domains this tenant has proven it owns, comma-separated; `none` clears
    /// the list. Under `--existing-person link`, SCIM may link to a person
    /// of another tenant only when the address is in one of these domains.
    #[arg(long, value_delimiter = ',', value_name = "DOMAINS")]
    pub verified_domains: Option<Vec<String>>,
    /// Map a group (displayName or id) to a role, as GROUP=ROLE; repeatable.
    /// Any mapping flag replaces the whole mapping list.
    #[arg(long = "group-role", value_name = "GROUP=ROLE", value_parser = parse_mapping)]
    pub group_roles: Vec<(String, String)>,
    /// Map a group (displayName or id) to an organization, as GROUP=ORGANIZATION;
    /// repeatable (AccessIQ). Any mapping flag replaces the whole mapping list.
    #[arg(long = "group-organization", value_name = "GROUP=ORG", value_parser = parse_mapping)]
    pub group_organizations: Vec<(String, String)>,
    /// Remove every group mapping.
    #[arg(long, conflicts_with_all = ["group_roles", "group_organizations"])]
    pub clear_group_mappings: bool,
    /// Keep the synthetic groups `Admins` (role admin) and `Users` (role user)
    /// in the tenant; they cannot be deleted or renamed (Tuist).
    #[arg(long, value_name = "BOOL")]
    pub synthetic_groups: Option<bool>,
    /// While SCIM is enabled, only the SCIM path (or a token with
    /// scim_override) may change SCIM-managed users' email, name, active
    /// state and tenant membership (Aptible).
    #[arg(long, value_name = "BOOL")]
    pub scim_managed_lock: Option<bool>,
}

crate::flags::flag_enum!(NameRule <=> NamePolicy {
    GivenFamilyFirst = GivenFamilyFirst,
    DisplayNameFirst = DisplayNameFirst,
});

crate::flags::flag_enum!(LoginEmail <=> LoginEmailSource {
    UserName = LoginEmailUserName,
    PrimaryEmail = LoginEmailPrimaryEmail,
});

crate::flags::flag_enum!(Required <=> RequiredAttribute {
    /// Clears the list.
    None = Unspecified,
    Email = Email,
    GivenName = GivenName,
    FamilyName = FamilyName,
    DisplayName = DisplayName,
    ExternalId = ExternalId,
});

crate::flags::flag_enum!(Deprovision <=> DeprovisionAction {
    Suspend = DeprovisionSuspend,
    SoftDelete = DeprovisionSoftDelete,
    RemoveMembership = DeprovisionRemoveMembership,
});

crate::flags::flag_enum!(Delete <=> DeleteMode {
    Soft = Soft,
    Hard = Hard,
});

crate::flags::flag_enum!(ExistingPerson <=> ExistingPersonPolicy {
    Link = ExistingPersonLink,
    Reject = ExistingPersonReject,
});

/// A flag value as the proto's enum number.
fn number<F, P: From<F> + Into<i32>>(flag: F) -> i32 {
    P::from(flag).into()
}

fn parse_mapping(text: &str) -> Result<(String, String), String> {
    let (group, target) = text
        .split_once('=')
        .ok_or_else(|| format!("expected GROUP=VALUE, got {text:?}"))?;
    let (group, target) = (group.trim(), target.trim());
    if group.is_empty() || target.is_empty() {
        return Err(format!(
            "expected GROUP=VALUE with both sides set, got {text:?}"
        ));
    }
    Ok((group.to_owned(), target.to_owned()))
}

impl PolicyFlags {
    /// The update these flags ask for; `None` when no flag was given.
    pub fn to_update(&self) -> Option<PolicyUpdate> {
        let mut update = PolicyUpdate {
            lowercase_identifiers: self.lowercase_identifiers,
            default_role: self.default_role.clone(),
            default_organization: self.default_organization.clone(),
            synthetic_groups: self.synthetic_groups,
            scim_managed_lock: self.scim_managed_lock,
            ..PolicyUpdate::default()
        };
        update.name_policy = self.name_policy.map(number::<_, NamePolicy>);
        update.login_email = self.login_email.map(number::<_, LoginEmailSource>);
        update.required_attributes =
            self.required_attributes
                .as_ref()
                .map(|list| RequiredAttributes {
                    attributes: list
                        .iter()
                        .filter(|attribute| **attribute != Required::None)
                        .map(|attribute| number::<_, RequiredAttribute>(*attribute))
                        .collect(),
                });
        update.deprovision = self.deprovision.map(number::<_, DeprovisionAction>);
        update.delete_mode = self.delete_mode.map(number::<_, DeleteMode>);
        update.existing_person = self.existing_person.map(number::<_, ExistingPersonPolicy>);
        update.verified_domains = self.verified_domains.as_ref().map(|list| VerifiedDomains {
            domains: list
                .iter()
                .map(|domain| domain.trim())
                .filter(|domain| !domain.is_empty() && !domain.eq_ignore_ascii_case("none"))
                .map(str::to_owned)
                .collect(),
        });
        if self.clear_group_mappings
            || !self.group_roles.is_empty()
            || !self.group_organizations.is_empty()
        {
            update.group_mappings = Some(GroupMappings {
                mappings: self.mappings(),
            });
        }
        (update != PolicyUpdate::default()).then_some(update)
    }

    /// One mapping per group, holding its role and organization.
    fn mappings(&self) -> Vec<GroupMapping> {
        let mut mappings: Vec<GroupMapping> = Vec::new();
        let mut entry = |group: &str| -> usize {
            match mappings.iter().position(|m| m.group == group) {
                Some(i) => i,
                None => {
                    mappings.push(GroupMapping {
                        group: group.to_owned(),
                        ..GroupMapping::default()
                    });
                    mappings.len() - 1
                }
            }
        };
        let mut roles = Vec::new();
        for (group, role) in &self.group_roles {
            roles.push((entry(group), role.clone()));
        }
        let mut organizations = Vec::new();
        for (group, organization) in &self.group_organizations {
            organizations.push((entry(group), organization.clone()));
        }
        for (i, role) in roles {
            mappings[i].role = role;
        }
        for (i, organization) in organizations {
            mappings[i].organization = organization;
        }
        mappings
    }
}

/// A policy as printed: kebab-case values, the same words the flags take.
#[derive(Debug, Serialize)]
pub struct PolicyView {
    name_policy: String,
    lowercase_identifiers: bool,
    login_email: String,
    required_attributes: Vec<String>,
    default_role: String,
    default_organization: String,
    deprovision: String,
    delete_mode: String,
    existing_person: String,
    verified_domains: Vec<String>,
    group_mappings: Vec<MappingView>,
    synthetic_groups: bool,
    scim_managed_lock: bool,
}

#[derive(Debug, Serialize)]
struct MappingView {
    group: String,
    role: String,
    organization: String,
}

impl From<ProvisioningPolicy> for PolicyView {
    fn from(policy: ProvisioningPolicy) -> Self {
        PolicyView {
            name_policy: crate::flags::label(NameRule::from(policy.name_policy())),
            lowercase_identifiers: policy.lowercase_identifiers,
            login_email: crate::flags::label(LoginEmail::from(policy.login_email())),
            required_attributes: policy
                .required_attributes()
                .map(|attribute| crate::flags::label(Required::from(attribute)))
                .collect(),
            deprovision: crate::flags::label(Deprovision::from(policy.deprovision())),
            delete_mode: crate::flags::label(Delete::from(policy.delete_mode())),
            existing_person: crate::flags::label(ExistingPerson::from(policy.existing_person())),
            verified_domains: policy.verified_domains,
            group_mappings: policy
                .group_mappings
                .into_iter()
                .map(|m| MappingView {
                    group: m.group,
                    role: m.role,
                    organization: m.organization,
                })
                .collect(),
            default_role: policy.default_role,
            default_organization: policy.default_organization,
            synthetic_groups: policy.synthetic_groups,
            scim_managed_lock: policy.scim_managed_lock,
        }
    }
}

impl PolicyView {
    /// `label: value` pairs for text output.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let or_none = |s: &str| {
            if s.is_empty() {
                "none".to_owned()
            } else {
                s.to_owned()
            }
        };
        let mappings = self
            .group_mappings
            .iter()
            .map(|m| {
                let targets: Vec<String> = [("role", &m.role), ("organization", &m.organization)]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                format!("{} -> {}", m.group, targets.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ");
        vec![
            ("name policy", self.name_policy.clone()),
            (
                "lowercase identifiers",
                self.lowercase_identifiers.to_string(),
            ),
            ("login email", self.login_email.clone()),
            (
                "required attributes",
                or_none(&self.required_attributes.join(",")),
            ),
            ("default role", or_none(&self.default_role)),
            ("default organization", or_none(&self.default_organization)),
            ("deprovision", self.deprovision.clone()),
            ("delete mode", self.delete_mode.clone()),
            ("existing person", self.existing_person.clone()),
            (
                "verified domains",
                or_none(&self.verified_domains.join(",")),
            ),
            ("group mappings", or_none(&mappings)),
            ("synthetic groups", self.synthetic_groups.to_string()),
            ("scim managed lock", self.scim_managed_lock.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn no_flags_no_update() {
        assert_eq!(PolicyFlags::default().to_update(), None);
    }

    #[test]
    fn mappings_merge_by_group() {
        let flags = PolicyFlags {
            group_roles: vec![("Eng".into(), "developer".into())],
            group_organizations: vec![("Eng".into(), "R&D".into()), ("Sales".into(), "GTM".into())],
            ..PolicyFlags::default()
        };
        let update = flags.to_update().unwrap_or_default();
        let mappings = update.group_mappings.unwrap_or_default().mappings;
        assert_eq!(mappings.len(), 2);
        assert_eq!(mappings[0].role, "developer");
        assert_eq!(mappings[0].organization, "R&D");
        assert_eq!(mappings[1].group, "Sales");
        assert_eq!(mappings[1].role, "");
    }

    #[test]
    fn none_clears_required_attributes() {
        let flags = PolicyFlags {
            required_attributes: Some(vec![Required::None]),
            ..PolicyFlags::default()
        };
        let update = flags.to_update().unwrap_or_default();
        assert_eq!(
            update.required_attributes.map(|r| r.attributes),
            Some(vec![])
        );
    }

    #[test]
    fn verified_domains_flag_sets_or_clears_the_list() {
        let flags = PolicyFlags {
            verified_domains: Some(vec!["example.com".into(), " corp.example ".into()]),
            ..PolicyFlags::default()
        };
        let update = flags.to_update().unwrap_or_default();
        assert_eq!(
            update.verified_domains.map(|d| d.domains),
            Some(vec!["example.com".to_owned(), "corp.example".to_owned()])
        );
        let flags = PolicyFlags {
            verified_domains: Some(vec!["none".into()]),
            ..PolicyFlags::default()
        };
        let update = flags.to_update().unwrap_or_default();
        assert_eq!(update.verified_domains.map(|d| d.domains), Some(vec![]));
    }

    #[test]
    fn policies_print_as_the_flags_spell_them() {
        let mut policy = ProvisioningPolicy {
            required_attributes: vec![RequiredAttribute::GivenName as i32],
            ..ProvisioningPolicy::default()
        };
        policy.set_deprovision(DeprovisionAction::DeprovisionRemoveMembership);
        policy.set_login_email(LoginEmailSource::LoginEmailPrimaryEmail);
        let view = PolicyView::from(policy);
        assert_eq!(view.deprovision, "remove-membership");
        assert_eq!(view.login_email, "primary-email");
        assert_eq!(view.name_policy, "given-family-first");
        assert_eq!(view.required_attributes, ["given-name"]);
        assert_eq!(
            Deprovision::from_str(&view.deprovision, false),
            Ok(Deprovision::RemoveMembership)
        );
    }

    #[test]
    fn mapping_syntax() {
        assert_eq!(
            parse_mapping("Admins = admin"),
            Ok(("Admins".into(), "admin".into()))
        );
        assert!(parse_mapping("Admins").is_err());
        assert!(parse_mapping("=admin").is_err());
    }
}
