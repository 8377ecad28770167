//! A tenant's provisioning policy: stored as one JSON document in
//! `tenants.policy`, carried as `identity.v1.ProvisioningPolicy`. Enum values
//! are stored by their proto names, so the document reads well in psql and
//! survives renumbering; absent keys mean the default.

use identity_proto::v1::{
    DeleteMode, DeprovisionAction, ExistingPersonPolicy, GroupMapping, LoginEmailSource,
    NamePolicy, PolicyUpdate, ProvisioningPolicy, RequiredAttribute,
};
use serde_json::{Map, Value as Json, json};

use super::TenantError;

/// The synthetic groups and the role their membership grants.
pub(crate) const SYNTHETIC_GROUPS: [(&str, &str); 2] = [("Admins", "admin"), ("Users", "user")];

/// The stored form of `policy`.
pub(crate) fn to_json(policy: &ProvisioningPolicy) -> Json {
    json!({
        "name_policy": policy.name_policy().as_str_name(),
        "lowercase_identifiers": policy.lowercase_identifiers,
        "login_email": policy.login_email().as_str_name(),
        "required_attributes": policy
            .required_attributes()
            .map(|a| a.as_str_name())
            .collect::<Vec<_>>(),
        "default_role": policy.default_role,
        "default_organization": policy.default_organization,
        "deprovision": policy.deprovision().as_str_name(),
        "delete_mode": policy.delete_mode().as_str_name(),
        "existing_person": policy.existing_person().as_str_name(),
        "group_mappings": policy
            .group_mappings
            .iter()
            .map(|m| json!({"group": m.group, "role": m.role, "organization": m.organization}))
            .collect::<Vec<_>>(),
        "synthetic_groups": policy.synthetic_groups,
        "scim_managed_lock": policy.scim_managed_lock,
        "verified_domains": policy.verified_domains,
    })
}

/// Reads a stored policy. Unknown keys and values fall back to the default,
/// so a document written by a newer version never stops a tenant working.
pub(crate) fn from_json(document: &Json) -> ProvisioningPolicy {
    let empty = Map::new();
    let map = document.as_object().unwrap_or(&empty);
    let text = |key: &str| map.get(key).and_then(Json::as_str).unwrap_or_default();
    let flag = |key: &str| map.get(key).and_then(Json::as_bool).unwrap_or_default();
    let mut policy = ProvisioningPolicy {
        lowercase_identifiers: flag("lowercase_identifiers"),
        default_role: text("default_role").to_owned(),
        default_organization: text("default_organization").to_owned(),
        synthetic_groups: flag("synthetic_groups"),
        scim_managed_lock: flag("scim_managed_lock"),
        ..ProvisioningPolicy::default()
    };
    policy.set_name_policy(NamePolicy::from_str_name(text("name_policy")).unwrap_or_default());
    policy
        .set_login_email(LoginEmailSource::from_str_name(text("login_email")).unwrap_or_default());
    policy
        .set_deprovision(DeprovisionAction::from_str_name(text("deprovision")).unwrap_or_default());
    policy.set_delete_mode(DeleteMode::from_str_name(text("delete_mode")).unwrap_or_default());
    policy.set_existing_person(
        ExistingPersonPolicy::from_str_name(text("existing_person")).unwrap_or_default(),
    );
    for name in map
        .get("required_attributes")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        if let Some(attribute) = RequiredAttribute::from_str_name(name) {
            policy.required_attributes.push(attribute as i32);
        }
    }
    policy.group_mappings = map
        .get("group_mappings")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let field = |key: &str| m.get(key).and_then(Json::as_str).unwrap_or_default();
            GroupMapping {
                group: field("group").to_owned(),
                role: field("role").to_owned(),
                organization: field("organization").to_owned(),
            }
        })
        .collect();
    policy.verified_domains = map
        .get("verified_domains")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .map(str::to_owned)
        .collect();
    policy
}

/// `policy` with `update` applied; refuses values no rule can use.
pub(crate) fn apply_update(
    mut policy: ProvisioningPolicy,
    update: PolicyUpdate,
) -> Result<ProvisioningPolicy, TenantError> {
    let invalid = |message: &str| Err(TenantError::InvalidValue(message.to_owned()));
    if let Some(value) = update.name_policy {
        policy.set_name_policy(known(value, NamePolicy::try_from, "name_policy")?);
    }
    if let Some(value) = update.lowercase_identifiers {
        policy.lowercase_identifiers = value;
    }
    if let Some(value) = update.login_email {
        policy.set_login_email(known(value, LoginEmailSource::try_from, "login_email")?);
    }
    if let Some(required) = update.required_attributes {
        let mut attributes = Vec::new();
        for value in required.attributes {
            let attribute = known(value, RequiredAttribute::try_from, "required_attributes")?;
            if attribute == RequiredAttribute::Unspecified {
                return invalid(
                    "required_attributes: REQUIRED_ATTRIBUTE_UNSPECIFIED names nothing",
                );
            }
            if !attributes.contains(&value) {
                attributes.push(value);
            }
        }
        policy.required_attributes = attributes;
    }
    if let Some(value) = update.default_role {
        policy.default_role = value.trim().to_owned();
    }
    if let Some(value) = update.default_organization {
        policy.default_organization = value.trim().to_owned();
    }
    if let Some(value) = update.deprovision {
        policy.set_deprovision(known(value, DeprovisionAction::try_from, "deprovision")?);
    }
    if let Some(value) = update.delete_mode {
        policy.set_delete_mode(known(value, DeleteMode::try_from, "delete_mode")?);
    }
    if let Some(value) = update.existing_person {
        policy.set_existing_person(known(
            value,
            ExistingPersonPolicy::try_from,
            "existing_person",
        )?);
    }
    if let Some(mappings) = update.group_mappings {
        let mut kept = Vec::new();
        for mapping in mappings.mappings {
            let mapping = GroupMapping {
                group: mapping.group.trim().to_owned(),
                role: mapping.role.trim().to_owned(),
                organization: mapping.organization.trim().to_owned(),
            };
            if mapping.group.is_empty() {
                return invalid("group_mappings: every mapping needs a group");
            }
            if mapping.role.is_empty() && mapping.organization.is_empty() {
                return Err(TenantError::InvalidValue(format!(
                    "group_mappings: the mapping of '{}' gives neither a role nor an organization",
                    mapping.group
                )));
            }
            kept.push(mapping);
        }
        policy.group_mappings = kept;
    }
    if let Some(value) = update.synthetic_groups {
        policy.synthetic_groups = value;
    }
    if let Some(value) = update.scim_managed_lock {
        policy.scim_managed_lock = value;
    }
    if let Some(verified) = update.verified_domains {
        if verified.domains.len() > MAX_VERIFIED_DOMAINS {
            return Err(TenantError::InvalidValue(format!(
                "verified_domains: at most {MAX_VERIFIED_DOMAINS} domains"
            )));
        }
        let mut domains: Vec<String> = Vec::new();
        for domain in verified.domains {
            let domain = domain.trim().trim_start_matches('@').to_ascii_lowercase();
            if !is_domain_name(&domain) {
                return Err(TenantError::InvalidValue(format!(
                    "verified_domains: '{domain}' is not a domain name such as example.com"
                )));
            }
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        policy.verified_domains = domains;
    }
    Ok(policy)
}

/// More would be a sign of a mistake, and every claim check reads the list.
const MAX_VERIFIED_DOMAINS: usize = 100;

/// A DNS name of at least two labels: letters, digits and inner hyphens,
/// 1–63 characters a label, 253 in all.
fn is_domain_name(domain: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    domain.len() <= 253 && domain.contains('.') && domain.split('.').all(label_ok)
}

/// An enum value this version knows, else INVALID_ARGUMENT naming the field.
fn known<E, Err>(
    value: i32,
    parse: impl Fn(i32) -> Result<E, Err>,
    field: &str,
) -> Result<E, TenantError> {
    parse(value).map_err(|_| TenantError::InvalidValue(format!("{field}: unknown value {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_proto::v1::{GroupMappings, RequiredAttributes, VerifiedDomains};

    #[test]
    fn default_policy_is_the_empty_document() {
        assert_eq!(from_json(&json!({})), ProvisioningPolicy::default());
        assert_eq!(from_json(&Json::Null), ProvisioningPolicy::default());
    }

    #[test]
    fn stored_form_round_trips() {
        let mut policy = ProvisioningPolicy {
            lowercase_identifiers: true,
            default_role: "member".into(),
            default_organization: "acme".into(),
            group_mappings: vec![GroupMapping {
                group: "Engineering".into(),
                role: "developer".into(),
                organization: String::new(),
            }],
            synthetic_groups: true,
            scim_managed_lock: true,
            verified_domains: vec!["example.com".into()],
            ..ProvisioningPolicy::default()
        };
        policy.set_name_policy(NamePolicy::DisplayNameFirst);
        policy.set_login_email(LoginEmailSource::LoginEmailPrimaryEmail);
        policy.set_deprovision(DeprovisionAction::DeprovisionRemoveMembership);
        policy.set_delete_mode(DeleteMode::Hard);
        policy.set_existing_person(ExistingPersonPolicy::ExistingPersonReject);
        policy.required_attributes = vec![
            RequiredAttribute::Email as i32,
            RequiredAttribute::GivenName as i32,
        ];
        let stored = to_json(&policy);
        assert_eq!(stored["deprovision"], "DEPROVISION_REMOVE_MEMBERSHIP");
        assert_eq!(from_json(&stored), policy);
    }

    #[test]
    fn unknown_stored_values_fall_back_to_defaults() {
        let policy = from_json(&json!({"deprovision": "EXPLODE", "required_attributes": ["X"]}));
        assert_eq!(policy.deprovision(), DeprovisionAction::DeprovisionSuspend);
        assert!(policy.required_attributes.is_empty());
    }

    #[test]
    fn updates_change_only_what_they_set() {
        let base = ProvisioningPolicy {
            default_role: "member".into(),
            ..ProvisioningPolicy::default()
        };
        let update = PolicyUpdate {
            lowercase_identifiers: Some(true),
            required_attributes: Some(RequiredAttributes {
                attributes: vec![
                    RequiredAttribute::Email as i32,
                    RequiredAttribute::Email as i32,
                ],
            }),
            ..PolicyUpdate::default()
        };
        let policy = apply_update(base, update).unwrap_or_else(|e| panic!("{e}"));
        assert!(policy.lowercase_identifiers);
        assert_eq!(policy.default_role, "member");
        assert_eq!(
            policy.required_attributes,
            vec![RequiredAttribute::Email as i32]
        );
    }

    #[test]
    fn bad_updates_are_refused() {
        let unknown = PolicyUpdate {
            deprovision: Some(42),
            ..PolicyUpdate::default()
        };
        assert!(apply_update(ProvisioningPolicy::default(), unknown).is_err());
        let empty_mapping = PolicyUpdate {
            group_mappings: Some(GroupMappings {
                mappings: vec![GroupMapping {
                    group: "Eng".into(),
                    ..GroupMapping::default()
                }],
            }),
            ..PolicyUpdate::default()
        };
        assert!(apply_update(ProvisioningPolicy::default(), empty_mapping).is_err());
        for bad in [
            "",
            "localhost",
            "exa mple.com",
            "-a.com",
            "a..com",
            "ex_ample.com",
        ] {
            let update = PolicyUpdate {
                verified_domains: Some(VerifiedDomains {
                    domains: vec![bad.into()],
                }),
                ..PolicyUpdate::default()
            };
            assert!(
                apply_update(ProvisioningPolicy::default(), update).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn verified_domains_are_normalised() {
        let update = PolicyUpdate {
            verified_domains: Some(VerifiedDomains {
                domains: vec![
                    " Example.COM ".into(),
                    "@example.com".into(),
                    "corp.example.org".into(),
                ],
            }),
            ..PolicyUpdate::default()
        };
        let policy =
            apply_update(ProvisioningPolicy::default(), update).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(policy.verified_domains, ["example.com", "corp.example.org"]);
        let cleared = PolicyUpdate {
            verified_domains: Some(VerifiedDomains::default()),
            ..PolicyUpdate::default()
        };
        let policy = apply_update(policy, cleared).unwrap_or_else(|e| panic!("{e}"));
        assert!(policy.verified_domains.is_empty());
    }
}
