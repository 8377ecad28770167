//! What a tenant's provisioning policy does to a user write: identifier
//! case, required attributes, the login email, the SCIM-managed lock and the
//! roles a user ends up with. Pure functions; the store calls them inside
//! its transactions.

use identity_proto::v1::{
    GroupRef, LoginEmailSource, NamePolicy, ProvisioningPolicy, RequiredAttribute,
};

use super::{UserData, UserError, full_name};
use crate::auth::{Caller, TenantRef};
use crate::store::ResourceError;
use crate::tenants::policy::SYNTHETIC_GROUPS;

/// Lowercases identifiers when the policy says so, then checks the
/// attributes the policy requires.
pub(crate) fn prepare(user: &mut UserData, policy: &ProvisioningPolicy) -> Result<(), UserError> {
    normalize(user, policy);
    check_required(user, policy)
}

/// Lowercases userName and email values when the policy says so.
pub(crate) fn normalize(user: &mut UserData, policy: &ProvisioningPolicy) {
    if policy.lowercase_identifiers {
        user.user_name = user.user_name.to_lowercase();
        for email in &mut user.emails {
            email.value = email.value.to_lowercase();
        }
    }
}

/// Refuses a user without an attribute the policy requires, naming it.
pub(crate) fn check_required(
    user: &UserData,
    policy: &ProvisioningPolicy,
) -> Result<(), UserError> {
    for required in policy.required_attributes() {
        if let Some(attribute) = missing(user, required) {
            return Err(UserError::from(ResourceError::InvalidValue(format!(
                "attribute '{attribute}' is required by this tenant's provisioning policy"
            ))));
        }
    }
    Ok(())
}

/// The SCIM name of `required` when `user` lacks it.
fn missing(user: &UserData, required: RequiredAttribute) -> Option<&'static str> {
    let blank = |value: &Option<String>| value.as_deref().is_none_or(|v| v.trim().is_empty());
    match required {
        RequiredAttribute::Unspecified => None,
        RequiredAttribute::Email => user.emails.is_empty().then_some("emails"),
        RequiredAttribute::GivenName => blank(&user.name.given_name).then_some("name.givenName"),
        RequiredAttribute::FamilyName => blank(&user.name.family_name).then_some("name.familyName"),
        RequiredAttribute::DisplayName => blank(&user.display_name).then_some("displayName"),
        RequiredAttribute::ExternalId => blank(&user.external_id).then_some("externalId"),
    }
}

/// The address the person signs in with, lowercased: userName, or the
/// primary email (else the first one). `None` when the chosen source is empty.
pub(crate) fn login_email(user: &UserData, policy: &ProvisioningPolicy) -> Option<String> {
    let source = match policy.login_email() {
        LoginEmailSource::LoginEmailUserName => Some(user.user_name.as_str()),
        LoginEmailSource::LoginEmailPrimaryEmail => user
            .emails
            .iter()
            .find(|e| e.primary)
            .or_else(|| user.emails.first())
            .map(|e| e.value.as_str()),
    };
    source
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
}

/// Whether the domain of the login address `email` (lowercase) is one the
/// tenant has verified; an address without a domain never is.
pub(crate) fn in_verified_domain(email: &str, policy: &ProvisioningPolicy) -> bool {
    email
        .rsplit_once('@')
        .is_some_and(|(_, domain)| policy.verified_domains.iter().any(|d| d == domain))
}

/// The full name by the tenant's name rule.
pub(crate) fn display_full_name(user: &UserData, policy: NamePolicy) -> String {
    full_name(&user.name, user.display_name.as_deref(), policy)
}

/// Whether the SCIM-managed lock stops `caller` from changing this user.
fn locked(tenant: &TenantRef, caller: &Caller, scim_managed: bool) -> bool {
    scim_managed
        && tenant.scim_enabled
        && tenant.policy.scim_managed_lock
        && !caller.may_change_scim_managed()
}

/// Refuses a change to what the SCIM-managed lock protects (userName,
/// emails, name, displayName, active) by a caller other than the SCIM path.
pub(crate) fn check_lock(
    tenant: &TenantRef,
    caller: &Caller,
    scim_managed: bool,
    old: &UserData,
    new: &UserData,
) -> Result<(), UserError> {
    if !locked(tenant, caller, scim_managed) {
        return Ok(());
    }
    let changed = [
        ("userName", old.user_name != new.user_name),
        ("emails", old.emails != new.emails),
        ("name", old.name != new.name),
        ("displayName", old.display_name != new.display_name),
        ("active", old.active != new.active),
    ]
    .into_iter()
    .find_map(|(attribute, changed)| changed.then_some(attribute));
    match changed {
        Some(attribute) => Err(lock_violation(&format!("'{attribute}'"))),
        None => Ok(()),
    }
}

/// Refuses to end a SCIM-managed user's tenant membership (DELETE) outside SCIM.
pub(crate) fn check_lock_membership(
    tenant: &TenantRef,
    caller: &Caller,
    scim_managed: bool,
) -> Result<(), UserError> {
    if locked(tenant, caller, scim_managed) {
        Err(lock_violation("the tenant membership"))
    } else {
        Ok(())
    }
}

fn lock_violation(what: &str) -> UserError {
    UserError::from(ResourceError::PolicyViolation(format!(
        "scim_managed_lock: {what} of a SCIM-managed user changes only through the tenant's \
         identity provider; this credential has no scim_override permission"
    )))
}

/// The roles and organizations a user holds: the direct ones, plus those
/// the policy maps from the user's groups (and the synthetic groups' roles).
/// Nothing while the user is not a tenant member.
pub(crate) fn effective_access(
    policy: &ProvisioningPolicy,
    tenant_member: bool,
    direct_roles: &[String],
    direct_organizations: &[String],
    groups: &[GroupRef],
) -> (Vec<String>, Vec<String>) {
    if !tenant_member {
        return (Vec::new(), Vec::new());
    }
    let mut roles: Vec<String> = direct_roles.to_vec();
    let mut organizations: Vec<String> = direct_organizations.to_vec();
    for group in groups {
        let names_group = |key: &str| {
            key.eq_ignore_ascii_case(&group.display_name) || key.eq_ignore_ascii_case(&group.id)
        };
        for mapping in policy
            .group_mappings
            .iter()
            .filter(|m| names_group(&m.group))
        {
            if !mapping.role.is_empty() {
                roles.push(mapping.role.clone());
            }
            if !mapping.organization.is_empty() {
                organizations.push(mapping.organization.clone());
            }
        }
        if policy.synthetic_groups
            && let Some((_, role)) = SYNTHETIC_GROUPS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&group.display_name))
        {
            roles.push((*role).to_owned());
        }
    }
    roles.sort();
    roles.dedup();
    organizations.sort();
    organizations.dedup();
    (roles, organizations)
}

/// What a user newly in the tenant is given directly.
pub(crate) fn default_access(policy: &ProvisioningPolicy) -> (Vec<String>, Vec<String>) {
    let one = |value: &str| {
        if value.is_empty() {
            Vec::new()
        } else {
            vec![value.to_owned()]
        }
    };
    (one(&policy.default_role), one(&policy.default_organization))
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_proto::v1::{Email, GroupMapping, Name};

    fn ada() -> UserData {
        UserData {
            user_name: "Ada@Example.COM".into(),
            emails: vec![
                Email {
                    value: "Other@Example.com".into(),
                    ..Email::default()
                },
                Email {
                    value: "ADA.L@Example.com".into(),
                    primary: true,
                    ..Email::default()
                },
            ],
            name: Name {
                given_name: Some("Ada".into()),
                ..Name::default()
            },
            active: true,
            ..UserData::default()
        }
    }

    #[test]
    fn lowercasing_is_a_choice() {
        let mut kept = ada();
        prepare(&mut kept, &ProvisioningPolicy::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept.user_name, "Ada@Example.COM");
        let lower = ProvisioningPolicy {
            lowercase_identifiers: true,
            ..ProvisioningPolicy::default()
        };
        let mut user = ada();
        prepare(&mut user, &lower).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(user.user_name, "ada@example.com");
        assert_eq!(user.emails[1].value, "ada.l@example.com");
    }

    #[test]
    fn required_attributes_are_named() {
        let policy = ProvisioningPolicy {
            required_attributes: vec![
                RequiredAttribute::GivenName as i32,
                RequiredAttribute::FamilyName as i32,
            ],
            ..ProvisioningPolicy::default()
        };
        let Err(UserError::Resource(ResourceError::InvalidValue(message))) =
            prepare(&mut ada(), &policy)
        else {
            panic!("familyName is missing")
        };
        assert!(message.contains("'name.familyName'"), "{message}");
    }

    #[test]
    fn login_email_follows_the_policy() {
        assert_eq!(
            login_email(&ada(), &ProvisioningPolicy::default()).as_deref(),
            Some("ada@example.com")
        );
        let mut policy = ProvisioningPolicy::default();
        policy.set_login_email(LoginEmailSource::LoginEmailPrimaryEmail);
        assert_eq!(
            login_email(&ada(), &policy).as_deref(),
            Some("ada.l@example.com")
        );
        let mut no_emails = ada();
        no_emails.emails.clear();
        assert_eq!(login_email(&no_emails, &policy), None);
    }

    #[test]
    fn access_unions_direct_and_mapped() {
        let policy = ProvisioningPolicy {
            group_mappings: vec![GroupMapping {
                group: "engineering".into(),
                role: "developer".into(),
                organization: "R&D".into(),
            }],
            synthetic_groups: true,
            ..ProvisioningPolicy::default()
        };
        let groups = [
            GroupRef {
                id: "g1".into(),
                display_name: "Engineering".into(),
            },
            GroupRef {
                id: "g2".into(),
                display_name: "Admins".into(),
            },
        ];
        let (roles, organizations) =
            effective_access(&policy, true, &["member".into()], &[], &groups);
        assert_eq!(roles, ["admin", "developer", "member"]);
        assert_eq!(organizations, ["R&D"]);
        let (roles, _) = effective_access(&policy, false, &["member".into()], &[], &groups);
        assert!(roles.is_empty());

        let by_id = ProvisioningPolicy {
            group_mappings: vec![GroupMapping {
                group: "g1".into(),
                role: "developer".into(),
                organization: String::new(),
            }],
            ..ProvisioningPolicy::default()
        };
        let (roles, organizations) = effective_access(&by_id, true, &[], &[], &groups);
        assert_eq!(roles, ["developer"]);
        assert!(organizations.is_empty());
    }
}
