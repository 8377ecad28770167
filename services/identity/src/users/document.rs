//! A user as the SCIM document the PATCH engine ([`crate::patch`]) works on,
//! and back: core attributes at the top, the enterprise extension under its
//! URN, bag attributes as sent. Only this module knows how the typed user
//! fields are spelled in SCIM, so the engine stays generic.

use identity_proto::v1::Name;
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::{Enterprise, UserData, email_from_json, email_to_json, parse_manager};
use crate::attr::{ENTERPRISE_URN, Resource, canonical};
use crate::catalog::{USER_BAG, canonical_user_bag};
use crate::patch::{Extension, PatchError, PatchSchema, Shape, get_ci};

pub(crate) const USER: PatchSchema = PatchSchema {
    resource: Resource::User,
    typed: &[
        ("userName", Shape::Simple),
        ("externalId", Shape::Simple),
        ("name", Shape::Complex(NAME_SUBS)),
        ("displayName", Shape::Simple),
        ("emails", Shape::Multi(EMAIL_SUBS)),
        ("active", Shape::Simple),
    ],
    bag: USER_BAG,
    read_only: &["id", "meta", "groups"],
    // Never stored: `schemas` is derived on output, `password` is dropped.
    ignored: &["schemas", "password"],
    extension: Some(Extension {
        urn: ENTERPRISE_URN,
        attributes: ENTERPRISE_ATTRIBUTES,
        complex: &[("manager", MANAGER_SUBS)],
    }),
};
const NAME_SUBS: &[&str] = &Name::SCIM_SUB_ATTRIBUTES;
const EMAIL_SUBS: &[&str] = &["value", "type", "primary", "display"];
const ENTERPRISE_ATTRIBUTES: &[&str] = &[
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
];
const MANAGER_SUBS: &[&str] = &["value", "$ref", "displayName"];

/// The user as a SCIM document; `id` is included so operations on it can be
/// checked.
pub(crate) fn to_document(id: Uuid, user: &UserData) -> Map<String, Json> {
    let mut doc = user.attributes.clone();
    let string = |s: &str| Json::String(s.to_owned());
    doc.insert("id".into(), Json::String(id.to_string()));
    doc.insert("userName".into(), string(&user.user_name));
    if let Some(v) = &user.external_id {
        doc.insert("externalId".into(), string(v));
    }
    let name = &user.name;
    let name_object: Map<String, Json> = name
        .scim_parts()
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k.to_owned(), string(v))))
        .collect();
    if !name_object.is_empty() {
        doc.insert("name".into(), Json::Object(name_object));
    }
    if let Some(v) = &user.display_name {
        doc.insert("displayName".into(), string(v));
    }
    if !user.emails.is_empty() {
        doc.insert(
            "emails".into(),
            Json::Array(user.emails.iter().map(email_to_json).collect()),
        );
    }
    doc.insert("active".into(), Json::Bool(user.active));
    let e = &user.enterprise;
    let mut enterprise: Map<String, Json> = [
        ("employeeNumber", &e.employee_number),
        ("costCenter", &e.cost_center),
        ("organization", &e.organization),
        ("division", &e.division),
        ("department", &e.department),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().map(|v| (k.to_owned(), string(v))))
    .collect();
    if let Some(manager) = user.manager_id {
        let mut m = Map::new();
        m.insert("value".into(), Json::String(manager.to_string()));
        enterprise.insert("manager".into(), Json::Object(m));
    }
    if !enterprise.is_empty() {
        doc.insert(ENTERPRISE_URN.into(), Json::Object(enterprise));
    }
    doc
}

/// Typed fields and bag from a document, validating types and rules.
pub(crate) fn from_document(doc: Map<String, Json>) -> Result<UserData, PatchError> {
    let mut user = UserData {
        active: true,
        ..UserData::default()
    };
    let mut user_name = None;
    for (key, value) in doc {
        if value.is_null() {
            continue;
        }
        if let Some(attr) = USER.typed_name(&key) {
            match attr {
                "userName" => user_name = Some(string_value(value, attr)?),
                "externalId" => user.external_id = Some(string_value(value, attr)?),
                "displayName" => user.display_name = Some(string_value(value, attr)?),
                "active" => {
                    user.active = value.as_bool().ok_or_else(|| {
                        PatchError::InvalidValue("active must be a boolean".into())
                    })?
                }
                "name" => user.name = name_value(value)?,
                _ => {
                    let Json::Array(items) = value else {
                        return Err(PatchError::InvalidValue("emails must be a list".into()));
                    };
                    user.emails = items
                        .iter()
                        .map(email_from_json)
                        .collect::<Result<_, _>>()
                        .map_err(PatchError::InvalidValue)?;
                }
            }
        } else if key.eq_ignore_ascii_case(ENTERPRISE_URN) {
            (user.enterprise, user.manager_id) = enterprise_value(value)?;
        } else if USER.is_bag(&key) {
            user.attributes.insert(key, value);
        }
    }
    user.user_name =
        user_name.ok_or_else(|| PatchError::InvalidValue("userName is required".into()))?;
    user.attributes = canonical_user_bag(user.attributes).map_err(PatchError::InvalidValue)?;
    user.validate().map_err(PatchError::InvalidValue)?;
    Ok(user)
}

fn string_value(value: Json, what: &str) -> Result<String, PatchError> {
    match value {
        Json::String(s) => Ok(s),
        _ => Err(PatchError::InvalidValue(format!("{what} must be a string"))),
    }
}

fn optional_string(value: Json, what: &str) -> Result<Option<String>, PatchError> {
    if value.is_null() {
        Ok(None)
    } else {
        string_value(value, what).map(Some)
    }
}

fn name_value(value: Json) -> Result<Name, PatchError> {
    let Json::Object(object) = value else {
        return Err(PatchError::InvalidValue("name must be an object".into()));
    };
    let mut name = Name::default();
    for (key, value) in object {
        let sub = canonical(NAME_SUBS, &key).ok_or_else(|| {
            PatchError::InvalidValue(format!("name has no sub-attribute '{key}'"))
        })?;
        let value = optional_string(value, &format!("name.{sub}"))?;
        if let Some(slot) = name.scim_part_mut(sub) {
            *slot = value;
        }
    }
    Ok(name)
}

fn enterprise_value(value: Json) -> Result<(Enterprise, Option<Uuid>), PatchError> {
    let Json::Object(object) = value else {
        return Err(PatchError::InvalidValue(format!(
            "{ENTERPRISE_URN} must be an object"
        )));
    };
    let mut enterprise = Enterprise::default();
    let mut manager = None;
    for (key, value) in object {
        let attr = canonical(ENTERPRISE_ATTRIBUTES, &key).ok_or_else(|| {
            PatchError::InvalidValue(format!("the enterprise extension has no attribute '{key}'"))
        })?;
        if attr == "manager" {
            manager = manager_value(&value)?;
            continue;
        }
        let value = optional_string(value, attr)?;
        match attr {
            "employeeNumber" => enterprise.employee_number = value,
            "costCenter" => enterprise.cost_center = value,
            "organization" => enterprise.organization = value,
            "division" => enterprise.division = value,
            _ => enterprise.department = value,
        }
    }
    Ok((enterprise, manager))
}

/// A manager as IdPs send it: an id, `{"value": id}` or `[{"value": id}]`;
/// empty means none.
fn manager_value(value: &Json) -> Result<Option<Uuid>, PatchError> {
    let invalid =
        || PatchError::InvalidValue("manager must be a user id or {\"value\": id}".into());
    match value {
        Json::Null => Ok(None),
        Json::String(s) if s.trim().is_empty() => Ok(None),
        Json::String(s) => parse_manager(s).map(Some).map_err(PatchError::InvalidValue),
        Json::Object(object) => match get_ci(object, "value") {
            None => Ok(None),
            Some(v @ (Json::String(_) | Json::Null)) => manager_value(v),
            Some(_) => Err(invalid()),
        },
        Json::Array(items) => match items.as_slice() {
            [] => Ok(None),
            [one] => manager_value(one),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}
