//! `/Users`: SCIM User JSON <-> `identity.v1.User`, and the UserService
//! requests that carry a user or its changes (the other calls are written
//! once, in `service`, for every type).

use identity_proto::v1::{
    CreateUserRequest, Email, EnterpriseUser, GroupRef, Manager, Name, PatchUserRequest,
    ReplaceUserRequest, User,
};
use serde_json::{Map, Value as Json};

use super::{ScimResource, Stored};
use crate::error::ScimError;
use crate::wire::patch::{Patch, manager_id};
use crate::wire::schema::{self, CORE_USER, ENTERPRISE_USER, Resource, boolean, object, text};
use crate::wire::validate;

/// The User resource type.
pub struct Users;

impl ScimResource for Users {
    const KIND: Resource = Resource::User;
    const PATCH_ECHOES: bool = true;
    const STREAMED: bool = false;

    fn from_scim(body: Json) -> Result<User, ScimError> {
        user_from_scim(body)
    }

    fn to_scim(user: &User, base_url: &str) -> Map<String, Json> {
        user_to_scim(user, base_url)
    }
}

/// The CreateUser request of `user`.
pub fn create_request(tenant: String, user: User) -> CreateUserRequest {
    let user = Some(user);
    CreateUserRequest { tenant, user }
}

/// The ReplaceUser request that makes user `id` be `user`.
pub fn replace_request(
    tenant: String,
    id: String,
    mut user: User,
    etag: String,
) -> ReplaceUserRequest {
    user.id = id;
    let user = Some(user);
    ReplaceUserRequest { tenant, user, etag }
}

/// The PatchUser request of a parsed PATCH. A user has no `members`, so
/// the parser gives it attribute operations only.
pub fn patch_request(tenant: String, id: String, patch: Patch, etag: String) -> PatchUserRequest {
    let operations = patch.operations;
    PatchUserRequest {
        tenant,
        id,
        operations,
        etag,
    }
}

/// Reads a SCIM User body, checked against the published schema first (see
/// `validate`). Known names match in any case; null is absent; `id`, `meta`,
/// `groups` and `schemas` are ignored, `password` is dropped; every other
/// attribute is kept as sent.
pub fn user_from_scim(body: Json) -> Result<User, ScimError> {
    let body = validate::resource_body(Resource::User, body)?;
    let mut user = User::default();
    let mut name = Name::default();
    let mut enterprise = EnterpriseUser::default();
    let mut attributes = Map::new();
    let enterprise_prefix = format!("{ENTERPRISE_USER}:");
    for (key, value) in body {
        if value.is_null() {
            continue;
        }
        if key.eq_ignore_ascii_case(ENTERPRISE_USER) {
            let Json::Object(fields) = value else {
                return Err(ScimError::invalid_value(format!(
                    "\"{ENTERPRISE_USER}\" must be an object"
                )));
            };
            for (field, value) in fields {
                set_enterprise(&mut enterprise, &field, value)?;
            }
            continue;
        }
        if key.len() > enterprise_prefix.len()
            && key.is_char_boundary(enterprise_prefix.len())
            && key[..enterprise_prefix.len()].eq_ignore_ascii_case(&enterprise_prefix)
        {
            set_enterprise(&mut enterprise, &key[enterprise_prefix.len()..], value)?;
            continue;
        }
        match schema::attribute_def(Resource::User, "", &key).map(|d| d.name) {
            Some("userName") => user.user_name = text(value, "userName")?,
            Some("externalId") => user.external_id = Some(text(value, "externalId")?),
            Some("displayName") => user.display_name = Some(text(value, "displayName")?),
            Some("active") => user.active = Some(boolean(value, "active")?),
            Some("name") => name = name_from(value)?,
            Some("emails") => user.emails = emails_from(value)?,
            Some("id" | "meta" | "groups" | "schemas" | "password") => {}
            _ if schema::enterprise_only(&key) => set_enterprise(&mut enterprise, &key, value)?,
            _ => {
                attributes.insert(key, value);
            }
        }
    }
    if name != Name::default() {
        user.name = Some(name);
    }
    if enterprise != EnterpriseUser::default() {
        user.enterprise = Some(enterprise);
    }
    if !attributes.is_empty() {
        user.attributes = Some(identity_proto::json_to_struct(attributes));
    }
    Ok(user)
}

fn name_from(value: Json) -> Result<Name, ScimError> {
    let mut name = Name::default();
    for (key, value) in object(value, "name")? {
        if value.is_null() {
            continue;
        }
        let canonical = schema::canonical_sub_attribute(Resource::User, "", "name", &key);
        let what = format!("name.{canonical}");
        let Some(slot) = name.scim_part_mut(&canonical) else {
            continue;
        };
        *slot = Some(text(value, &what)?);
    }
    Ok(name)
}

fn emails_from(value: Json) -> Result<Vec<Email>, ScimError> {
    let items = match value {
        Json::Array(items) => items,
        single => vec![single],
    };
    let mut emails = Vec::new();
    for item in items {
        let mut email = Email::default();
        let fields = match item {
            Json::Null => continue,
            // A bare address where an object is expected.
            Json::String(address) => {
                email.value = address;
                emails.push(email);
                continue;
            }
            other => object(other, "each of emails")?,
        };
        for (key, value) in fields {
            if value.is_null() {
                continue;
            }
            match schema::canonical_sub_attribute(Resource::User, "", "emails", &key).as_str() {
                "value" => email.value = text(value, "emails.value")?,
                "type" => email.r#type = Some(text(value, "emails.type")?),
                "display" => email.display = Some(text(value, "emails.display")?),
                "primary" => email.primary = boolean(value, "emails.primary")?,
                _ => {}
            }
        }
        emails.push(email);
    }
    Ok(emails)
}

fn set_enterprise(
    enterprise: &mut EnterpriseUser,
    key: &str,
    value: Json,
) -> Result<(), ScimError> {
    let canonical = schema::canonical_attribute(Resource::User, ENTERPRISE_USER, key);
    let slot = match canonical.as_str() {
        "employeeNumber" => &mut enterprise.employee_number,
        "costCenter" => &mut enterprise.cost_center,
        "organization" => &mut enterprise.organization,
        "division" => &mut enterprise.division,
        "department" => &mut enterprise.department,
        "manager" => {
            enterprise.manager = manager_id(&value).map(|value| Manager {
                value,
                display_name: String::new(),
            });
            return Ok(());
        }
        _ => return Ok(()),
    };
    if !value.is_null() {
        *slot = Some(text(value, &canonical)?);
    }
    Ok(())
}

/// Writes the SCIM representation of a user (RFC 7643 §4.1 and §4.3).
pub fn user_to_scim(user: &User, base_url: &str) -> Map<String, Json> {
    let mut out = user
        .attributes
        .clone()
        .map(identity_proto::struct_to_json)
        .unwrap_or_default();
    let mut schemas = vec![Json::from(CORE_USER)];
    if let Some(enterprise) = user
        .enterprise
        .as_ref()
        .and_then(|e| enterprise_to_scim(e, base_url))
    {
        schemas.push(ENTERPRISE_USER.into());
        out.insert(ENTERPRISE_USER.into(), enterprise);
    }
    schemas.extend(super::extension_schemas(Resource::User, &out));
    out.insert("schemas".into(), Json::Array(schemas));
    out.insert("id".into(), user.id.clone().into());
    if let Some(external_id) = &user.external_id {
        out.insert("externalId".into(), external_id.clone().into());
    }
    out.insert("userName".into(), user.user_name.clone().into());
    if let Some(name) = user
        .name
        .as_ref()
        .map(name_to_scim)
        .filter(|n| !n.is_empty())
    {
        out.insert("name".into(), Json::Object(name));
    }
    if let Some(display_name) = &user.display_name {
        out.insert("displayName".into(), display_name.clone().into());
    }
    if !user.emails.is_empty() {
        out.insert(
            "emails".into(),
            user.emails.iter().map(email_to_scim).collect(),
        );
    }
    out.insert("active".into(), user.active.unwrap_or(true).into());
    if !user.groups.is_empty() {
        out.insert(
            "groups".into(),
            user.groups
                .iter()
                .map(|g| group_ref_to_scim(g, base_url))
                .collect(),
        );
    }
    out.insert(
        "meta".into(),
        super::meta(Resource::User, base_url, &user.meta()),
    );
    out
}

/// One of the user's groups (RFC 7643 §4.1.2 `groups`).
fn group_ref_to_scim(group: &GroupRef, base_url: &str) -> Json {
    let mut out = Map::new();
    out.insert("value".into(), group.id.clone().into());
    if !group.display_name.is_empty() {
        out.insert("display".into(), group.display_name.clone().into());
    }
    out.insert(
        "$ref".into(),
        Resource::Group.location(base_url, &group.id).into(),
    );
    Json::Object(out)
}

fn name_to_scim(name: &Name) -> Map<String, Json> {
    texts(name.scim_parts())
}

/// The string sub-attributes that are set, by name.
fn texts<const N: usize>(fields: [(&str, &Option<String>); N]) -> Map<String, Json> {
    fields
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), Json::String(v))))
        .collect()
}

fn email_to_scim(email: &Email) -> Json {
    let mut out = Map::new();
    out.insert("value".into(), email.value.clone().into());
    if let Some(kind) = &email.r#type {
        out.insert("type".into(), kind.clone().into());
    }
    out.insert("primary".into(), email.primary.into());
    if let Some(display) = &email.display {
        out.insert("display".into(), display.clone().into());
    }
    Json::Object(out)
}

fn enterprise_to_scim(enterprise: &EnterpriseUser, base_url: &str) -> Option<Json> {
    let mut out = texts([
        ("employeeNumber", &enterprise.employee_number),
        ("costCenter", &enterprise.cost_center),
        ("organization", &enterprise.organization),
        ("division", &enterprise.division),
        ("department", &enterprise.department),
    ]);
    if let Some(manager) = enterprise.manager.as_ref().filter(|m| !m.value.is_empty()) {
        let mut m = Map::new();
        m.insert("value".into(), manager.value.clone().into());
        m.insert(
            "$ref".into(),
            Resource::User.location(base_url, &manager.value).into(),
        );
        if !manager.display_name.is_empty() {
            m.insert("displayName".into(), manager.display_name.clone().into());
        }
        out.insert("manager".into(), Json::Object(m));
    }
    (!out.is_empty()).then_some(Json::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::projection::Projection;
    use axum::http::StatusCode;
    use serde_json::json;

    const BASE: &str = "https://scim.example.com";

    /// What the service does to a created user that matters for the wire:
    /// assigns id, etag and times.
    fn stored(mut user: User) -> User {
        user.id = "2819c223-7f76-453a-919d-413861904646".into();
        user.etag = "1".into();
        user.create_time = Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        });
        user.update_time = Some(prost_types::Timestamp {
            seconds: 1_700_000_001,
            nanos: 500_000_000,
        });
        user
    }

    #[test]
    fn okta_create_body() {
        let body = json!({
            "schemas": [CORE_USER],
            "UserName": "ann@example.com",
            "externalId": "00u1abc",
            "name": {"GivenName": "Ann", "familyName": "Lee", "formatted": null},
            "emails": [{"primary": "True", "value": "ann@example.com", "type": "work"}],
            "displayName": "Ann Lee",
            "locale": "en-US",
            "groups": [],
            "password": "hunter2",
            "Active": true,
            "meta": {"version": "W/\"9\""},
            "id": "ignored",
            "nickName": null,
        });
        let Ok(user) = user_from_scim(body) else {
            panic!("valid body rejected")
        };
        assert_eq!(user.user_name, "ann@example.com");
        assert_eq!(user.external_id.as_deref(), Some("00u1abc"));
        assert_eq!(user.id, "");
        assert_eq!(
            user.name,
            Some(Name {
                given_name: Some("Ann".into()),
                family_name: Some("Lee".into()),
                ..Name::default()
            })
        );
        assert_eq!(
            user.emails,
            vec![Email {
                value: "ann@example.com".into(),
                r#type: Some("work".into()),
                primary: true,
                display: None,
            }]
        );
        assert_eq!(user.active, Some(true));
        let attributes = user
            .attributes
            .clone()
            .map(identity_proto::struct_to_json)
            .unwrap_or_default();
        assert_eq!(Json::Object(attributes), json!({"locale": "en-US"}));
        let out = user_to_scim(&stored(user), BASE);
        assert!(out.get("password").is_none());
        assert!(out.get("groups").is_none());
        assert_eq!(out["meta"]["version"], "W/\"1\"");
        assert_eq!(
            out["meta"]["location"],
            "https://scim.example.com/scim/v2/Users/2819c223-7f76-453a-919d-413861904646"
        );
        assert_eq!(out["meta"]["created"], "2023-11-14T22:13:20Z");
        assert_eq!(out["meta"]["lastModified"], "2023-11-14T22:13:21.500Z");
    }

    #[test]
    fn round_trip_is_lossless_for_unknown_attributes_and_extensions() {
        let custom = "urn:example:params:scim:schemas:extension:acme:2.0:User";
        let body = json!({
            "schemas": [CORE_USER, ENTERPRISE_USER, custom],
            "userName": "bjensen",
            "externalId": "Bj",
            "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara",
                     "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"},
            "displayName": "Babs Jensen",
            "nickName": "Babs",
            "profileUrl": "https://login.example.com/bjensen",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true, "display": "Work"},
                {"value": "babs@jensen.org", "type": "home", "primary": false}
            ],
            "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "primary": true}],
            "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
            "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
            "active": false,
            "title": "Tour Guide",
            "locale": "en-US",
            "count": 3,
            ENTERPRISE_USER: {
                "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
                "division": "Theme Park", "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            },
            custom: {"badge": {"id": 7, "colors": ["red", "blue"]}, "flag": true},
        });
        let Ok(user) = user_from_scim(body.clone()) else {
            panic!("valid body rejected")
        };
        let out = Json::Object(user_to_scim(&stored(user.clone()), BASE));
        let Json::Object(mut expected) = body else {
            panic!("object literal")
        };
        expected
            .get_mut(ENTERPRISE_USER)
            .and_then(|e| e.get_mut("manager"))
            .and_then(Json::as_object_mut)
            .map(|m| {
                m.insert(
                    "$ref".into(),
                    json!(format!(
                        "{BASE}/scim/v2/Users/26118915-6090-4610-87e4-49d8ca9f808d"
                    )),
                )
            });
        let Json::Object(mut out) = out else {
            panic!("user is an object")
        };
        assert_eq!(
            out.remove("id"),
            Some(json!("2819c223-7f76-453a-919d-413861904646"))
        );
        assert!(out.remove("meta").is_some());
        assert_eq!(out, expected);
        // And the output reads back as the same user (what PUT-after-GET sends).
        assert_eq!(user_from_scim(Json::Object(out)), Ok(user));
    }

    #[test]
    fn enterprise_keys_in_any_shape() {
        let body = json!({
            "userName": "x",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department": "Ops",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"manager": "m1", "CostCenter": "7"},
            "division": "North",
        });
        let enterprise = user_from_scim(body).ok().and_then(|u| u.enterprise);
        assert_eq!(
            enterprise,
            Some(EnterpriseUser {
                department: Some("Ops".into()),
                cost_center: Some("7".into()),
                division: Some("North".into()),
                manager: Some(Manager {
                    value: "m1".into(),
                    display_name: String::new()
                }),
                ..EnterpriseUser::default()
            })
        );
        let cleared = json!({"userName": "x", ENTERPRISE_USER: {"manager": ""}});
        assert_eq!(
            user_from_scim(cleared).ok().and_then(|u| u.enterprise),
            None
        );
    }

    #[test]
    fn typed_attributes_must_have_their_type() {
        for body in [
            json!([]),
            json!({"userName": 5}),
            json!({"active": "maybe"}),
            json!({"name": "Ann"}),
            json!({"emails": [{"value": 1}]}),
            json!({"emails": [3]}),
            json!({ENTERPRISE_USER: "x"}),
        ] {
            let err = user_from_scim(body.clone()).err().map(|e| e.status);
            assert_eq!(err, Some(StatusCode::BAD_REQUEST), "{body}");
        }
    }

    #[test]
    fn output_omits_what_is_unset() {
        let user = stored(User {
            user_name: "x".into(),
            ..User::default()
        });
        let out = user_to_scim(&user, BASE);
        assert_eq!(out["schemas"], json!([CORE_USER]));
        assert_eq!(out["active"], json!(true));
        for absent in [
            "name",
            "emails",
            "externalId",
            "displayName",
            ENTERPRISE_USER,
        ] {
            assert!(out.get(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn groups_are_listed_with_refs() {
        let user = stored(User {
            user_name: "x".into(),
            groups: vec![
                GroupRef {
                    id: "g1".into(),
                    display_name: "Ops".into(),
                },
                GroupRef {
                    id: "g2".into(),
                    display_name: String::new(),
                },
            ],
            ..User::default()
        });
        let out = Json::Object(user_to_scim(&user, BASE));
        assert_eq!(
            out["groups"],
            json!([
                {"value": "g1", "display": "Ops", "$ref": "https://scim.example.com/scim/v2/Groups/g1"},
                {"value": "g2", "$ref": "https://scim.example.com/scim/v2/Groups/g2"},
            ])
        );
        // Read-only: what a client sends back is ignored.
        assert_eq!(user_from_scim(out).map(|u| u.groups), Ok(Vec::new()));
        let projection = Projection::all(Resource::User);
        assert_eq!(
            projection.apply(user_to_scim(&user, BASE)),
            user_to_scim(&user, BASE)
        );
    }
}
