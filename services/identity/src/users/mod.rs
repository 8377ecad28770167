//! Users of a tenant: the typed model the service reasons about, its
//! validation and the full-name rule. Storage is in `store`, the gRPC
//! surface in `service`.

pub(crate) mod document;
pub(crate) mod policy;
pub(crate) mod service;
pub(crate) mod store;

use identity_proto::v1::{Email, Name, NamePolicy, User};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::attr::{
    ENTERPRISE_URN, MAX_VALUES, check_bag, check_optional, check_resource_size, too_many_values,
};
use crate::catalog::canonical_user_bag;
use crate::store::{ResourceError, sent_bag, wraps_resource_error};

/// What a user's write or read can fail with: what every resource can, and
/// claim protection.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// Claim protection: the login email belongs to a person this tenant's
    /// SCIM does not manage. One message whatever the reason, so it never
    /// tells whether an address exists in another tenant.
    #[error(
        "the login address belongs to a person this tenant's identity provider does not \
         manage, and the tenant's policy does not let it claim them"
    )]
    Claimed,
}

wraps_resource_error!(UserError);

/// The enterprise extension's simple attributes (the manager is kept apart).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Enterprise {
    pub employee_number: Option<String>,
    pub cost_center: Option<String>,
    pub organization: Option<String>,
    pub division: Option<String>,
    pub department: Option<String>,
}

/// Every writable part of a user, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct UserData {
    pub user_name: String,
    pub external_id: Option<String>,
    pub name: Name,
    pub display_name: Option<String>,
    pub emails: Vec<Email>,
    pub active: bool,
    pub enterprise: Enterprise,
    pub manager_id: Option<Uuid>,
    /// Every other attribute, as sent.
    pub attributes: Map<String, Json>,
}

/// Attribute names with a typed home; they may not hide in `attributes`.
const TYPED_ATTRIBUTES: &[&str] = &[
    "userName",
    "externalId",
    "name",
    "displayName",
    "emails",
    "active",
    ENTERPRISE_URN,
];

/// Read-only or never-stored names, dropped from `attributes` when sent.
const DROPPED_ATTRIBUTES: &[&str] = &["id", "meta", "groups", "schemas", "password"];

impl UserData {
    /// The writable content of `user` (create and replace); output-only
    /// fields are ignored, an absent `active` means true.
    pub(crate) fn from_proto(user: User) -> Result<UserData, UserError> {
        let enterprise = user.enterprise.unwrap_or_default();
        let manager_id = match enterprise.manager.as_ref().map(|m| m.value.trim()) {
            None | Some("") => None,
            Some(value) => Some(parse_manager(value).map_err(ResourceError::InvalidValue)?),
        };
        let attributes = sent_bag(user.attributes, TYPED_ATTRIBUTES, DROPPED_ATTRIBUTES)?;
        let attributes = canonical_user_bag(attributes).map_err(ResourceError::InvalidValue)?;
        let data = UserData {
            user_name: user.user_name,
            external_id: user.external_id,
            name: user.name.unwrap_or_default(),
            display_name: user.display_name,
            emails: user.emails,
            active: user.active.unwrap_or(true),
            enterprise: Enterprise {
                employee_number: enterprise.employee_number,
                cost_center: enterprise.cost_center,
                organization: enterprise.organization,
                division: enterprise.division,
                department: enterprise.department,
            },
            manager_id,
            attributes,
        };
        data.validate().map_err(ResourceError::InvalidValue)?;
        Ok(data)
    }

    /// Rules every stored user satisfies, whichever write produced it.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.user_name.trim().is_empty() {
            return Err("userName is required and must not be empty".into());
        }
        if self.emails.iter().any(|e| e.value.trim().is_empty()) {
            return Err("every email needs a non-empty value".into());
        }
        if self.emails.iter().filter(|e| e.primary).count() > 1 {
            return Err("at most one email may be primary".into());
        }
        if self.emails.len() > MAX_VALUES {
            return Err(too_many_values("emails", self.emails.len()));
        }
        let texts = self.texts();
        for (what, text) in &texts {
            check_optional(what, *text)?;
        }
        let typed: usize = texts
            .iter()
            .map(|(what, text)| what.len() + text.map_or(0, str::len) + FIELD_OVERHEAD)
            .sum();
        let emails: usize = self
            .emails
            .iter()
            .map(|e| {
                e.value.len()
                    + e.r#type.as_ref().map_or(0, String::len)
                    + e.display.as_ref().map_or(0, String::len)
                    + EMAIL_OVERHEAD
            })
            .sum();
        let bag = check_bag(&self.attributes)?;
        check_resource_size("user", typed + emails + bag)
    }

    /// Every string of the typed fields, by its SCIM name.
    fn texts(&self) -> Vec<(&'static str, Option<&str>)> {
        let n = &self.name;
        let e = &self.enterprise;
        let mut texts = vec![
            ("userName", Some(self.user_name.as_str())),
            ("externalId", self.external_id.as_deref()),
            ("name.formatted", n.formatted.as_deref()),
            ("name.familyName", n.family_name.as_deref()),
            ("name.givenName", n.given_name.as_deref()),
            ("name.middleName", n.middle_name.as_deref()),
            ("name.honorificPrefix", n.honorific_prefix.as_deref()),
            ("name.honorificSuffix", n.honorific_suffix.as_deref()),
            ("displayName", self.display_name.as_deref()),
            ("employeeNumber", e.employee_number.as_deref()),
            ("costCenter", e.cost_center.as_deref()),
            ("organization", e.organization.as_deref()),
            ("division", e.division.as_deref()),
            ("department", e.department.as_deref()),
        ];
        for email in &self.emails {
            texts.push(("emails.value", Some(email.value.as_str())));
            texts.push(("emails.type", email.r#type.as_deref()));
            texts.push(("emails.display", email.display.as_deref()));
        }
        texts
    }
}

/// JSON punctuation around one stored field (`"name":"",`), for the size limit.
const FIELD_OVERHEAD: usize = 6;
/// JSON around one email's strings (keys, quotes, `"primary":false`).
const EMAIL_OVERHEAD: usize = 60;

/// A manager reference must be a user id.
pub(crate) fn parse_manager(value: &str) -> Result<Uuid, String> {
    Uuid::try_parse(value.trim())
        .map_err(|_| format!("manager '{value}' is not a user of this tenant"))
}

/// The name a person is shown by, under the tenant's rule: given and family
/// name joined (either alone when one is missing), which IdPs keep fresher
/// than `name.formatted`, or the display name first (Aptible's choice).
pub(crate) fn full_name(name: &Name, display_name: Option<&str>, rule: NamePolicy) -> String {
    let present = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let parts: Vec<String> = [
        present(name.given_name.as_deref()),
        present(name.family_name.as_deref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let given_family = (!parts.is_empty()).then(|| parts.join(" "));
    let formatted = present(name.formatted.as_deref());
    let display = present(display_name);
    match rule {
        NamePolicy::GivenFamilyFirst => given_family.or(formatted).or(display),
        NamePolicy::DisplayNameFirst => display.or(given_family).or(formatted),
    }
    .unwrap_or_default()
}

/// An email as stored in `users.emails` and shown in SCIM documents.
pub(crate) fn email_to_json(email: &Email) -> Json {
    let mut object = Map::new();
    object.insert("value".into(), Json::String(email.value.clone()));
    if let Some(kind) = &email.r#type {
        object.insert("type".into(), Json::String(kind.clone()));
    }
    object.insert("primary".into(), Json::Bool(email.primary));
    if let Some(display) = &email.display {
        object.insert("display".into(), Json::String(display.clone()));
    }
    Json::Object(object)
}

/// The inverse of [`email_to_json`]; sub-attribute names match case-insensitively.
pub(crate) fn email_from_json(value: &Json) -> Result<Email, String> {
    let Json::Object(object) = value else {
        return Err("each email must be an object".into());
    };
    let mut email = Email::default();
    for (key, value) in object {
        let text = || match value {
            Json::String(s) => Ok(Some(s.clone())),
            Json::Null => Ok(None),
            _ => Err(format!("emails.{key} must be a string")),
        };
        match key.to_ascii_lowercase().as_str() {
            "value" => email.value = text()?.unwrap_or_default(),
            "type" => email.r#type = text()?,
            "display" => email.display = text()?,
            "primary" => {
                email.primary = match value {
                    Json::Bool(b) => *b,
                    Json::Null => false,
                    _ => return Err("emails.primary must be a boolean".into()),
                }
            }
            _ => return Err(format!("emails has no sub-attribute '{key}'")),
        }
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_proto::v1::{EnterpriseUser, Manager};

    fn name(given: Option<&str>, family: Option<&str>, formatted: Option<&str>) -> Name {
        Name {
            given_name: given.map(Into::into),
            family_name: family.map(Into::into),
            formatted: formatted.map(Into::into),
            ..Name::default()
        }
    }

    #[test]
    fn full_name_rule() {
        let full_name = |n: &Name, d| full_name(n, d, NamePolicy::GivenFamilyFirst);
        let both = name(Some("Ada"), Some("Lovelace"), Some("Stale Name"));
        assert_eq!(full_name(&both, Some("ada")), "Ada Lovelace");
        assert_eq!(full_name(&name(Some("Ada"), None, Some("F")), None), "Ada");
        assert_eq!(
            full_name(&name(None, Some("Lovelace"), Some("F")), None),
            "Lovelace"
        );
        assert_eq!(
            full_name(&name(None, None, Some("Formatted")), Some("D")),
            "Formatted"
        );
        assert_eq!(
            full_name(&name(Some(" "), None, None), Some("Display")),
            "Display"
        );
        assert_eq!(full_name(&Name::default(), None), "");
    }

    #[test]
    fn display_name_first_rule() {
        let full_name = |n: &Name, d| full_name(n, d, NamePolicy::DisplayNameFirst);
        let both = name(Some("Ada"), Some("Lovelace"), Some("Stale"));
        assert_eq!(full_name(&both, Some("Countess")), "Countess");
        assert_eq!(full_name(&both, Some(" ")), "Ada Lovelace");
        assert_eq!(full_name(&name(None, None, Some("F")), None), "F");
    }

    fn user(user_name: &str) -> User {
        User {
            user_name: user_name.into(),
            ..User::default()
        }
    }

    #[test]
    fn from_proto_defaults_and_rules() {
        let data = UserData::from_proto(user("ada")).unwrap_or_else(|e| panic!("{e}"));
        assert!(data.active);
        assert!(UserData::from_proto(user("  ")).is_err());

        let mut two_primaries = user("ada");
        two_primaries.emails = vec![
            Email {
                value: "a@x".into(),
                primary: true,
                ..Email::default()
            },
            Email {
                value: "b@x".into(),
                primary: true,
                ..Email::default()
            },
        ];
        assert!(UserData::from_proto(two_primaries).is_err());

        let mut bad_manager = user("ada");
        bad_manager.enterprise = Some(EnterpriseUser {
            manager: Some(Manager {
                value: "not-an-id".into(),
                display_name: String::new(),
            }),
            ..EnterpriseUser::default()
        });
        assert!(matches!(
            UserData::from_proto(bad_manager),
            Err(UserError::Resource(ResourceError::InvalidValue(_)))
        ));

        let mut empty_manager = user("ada");
        empty_manager.enterprise = Some(EnterpriseUser {
            manager: Some(Manager::default()),
            ..EnterpriseUser::default()
        });
        let data = UserData::from_proto(empty_manager).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(data.manager_id, None);
    }

    #[test]
    fn attributes_keep_unknowns_and_refuse_typed_names() {
        let mut u = user("ada");
        let serde_json::Value::Object(bag) = serde_json::json!({
            "locale": "en-US", "password": "p", "meta": {}, "nothing": null,
            "urn:example:ext": {"a": 1}
        }) else {
            panic!("object")
        };
        u.attributes = Some(identity_proto::json_to_struct(bag));
        let data = UserData::from_proto(u).unwrap_or_else(|e| panic!("{e}"));
        let mut keys: Vec<&String> = data.attributes.keys().collect();
        keys.sort();
        assert_eq!(keys, ["locale", "urn:example:ext"]);

        let mut typed = user("ada");
        let serde_json::Value::Object(bag) = serde_json::json!({"UserName": "x"}) else {
            panic!("object")
        };
        typed.attributes = Some(identity_proto::json_to_struct(bag));
        assert!(UserData::from_proto(typed).is_err());
    }

    #[test]
    fn emails_round_trip() {
        let email = Email {
            value: "a@x".into(),
            r#type: Some("work".into()),
            primary: true,
            display: None,
        };
        assert_eq!(email_from_json(&email_to_json(&email)), Ok(email));
        assert!(email_from_json(&serde_json::json!({"value": "a", "primary": "yes"})).is_err());
        assert!(email_from_json(&serde_json::json!({"value": "a", "color": "red"})).is_err());
        assert!(email_from_json(&serde_json::json!("a@x")).is_err());
    }
}
