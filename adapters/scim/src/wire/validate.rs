//! Request bodies of POST and PUT checked against the schemas `/Schemas`
//! publishes (RFC 7643 §2, §7): `schemas` must list the resource's core
//! schema, required attributes must be present, and every attribute the
//! schema defines must have its type. What passes comes back normalised:
//! known names in their canonical spelling, `"True"`/`"False"` as booleans
//! where the schema says boolean, a single value where a list is expected
//! wrapped in a list, a bare string where a complex value with a `value`
//! sub-attribute is expected read as that `value` (an email address, a
//! member id, a manager id). Read-only and never-returned attributes are
//! dropped (RFC 7644 §3.3: the server ignores them). Canonical values
//! (`emails.type`) are suggestions, not enforced; attributes and extension
//! URNs the schema does not define are kept exactly as sent.
//!
//! Leniency kept on purpose: a body without `schemas` at all is accepted
//! (RFC 7643 §3 requires it, but scripts and some IdPs omit it), as if it
//! listed the core schema.

use serde_json::{Map, Value as Json};

use crate::wire::error::ScimError;
use crate::wire::schema::{self, AttributeDef, Kind, Mutability, Resource, Returned};

/// Checks and normalises a POST/PUT body of a `resource`.
pub fn resource_body(resource: Resource, body: Json) -> Result<Map<String, Json>, ScimError> {
    let Json::Object(body) = body else {
        return Err(ScimError::invalid_syntax(format!(
            "a {} must be a JSON object",
            resource.name()
        )));
    };
    let mut out = Map::new();
    for (key, value) in body {
        if value.is_null() {
            continue;
        }
        if key.eq_ignore_ascii_case("schemas") {
            check_schemas(resource, &value)?;
            continue;
        }
        let name = strip_core_urn(resource, &key);
        match schema::attribute_def(resource, "", name) {
            Some(def) if ignored_on_input(def) => {}
            Some(def) => {
                let value = conform(def, value, def.name)?;
                out.insert(def.name.to_owned(), value);
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    for def in resource.core_attributes().iter().filter(|d| d.required) {
        let present = match out.get(def.name) {
            Some(Json::String(s)) => !s.trim().is_empty(),
            Some(Json::Null) | None => false,
            Some(_) => true,
        };
        if !present {
            return Err(ScimError::invalid_value(format!(
                "{} is required on a {}",
                def.name,
                resource.name()
            )));
        }
    }
    Ok(out)
}

/// `schemas` must be a list of URNs naming the core schema of the resource.
fn check_schemas(resource: Resource, value: &Json) -> Result<(), ScimError> {
    let core = resource.core_schema();
    let urns = match value {
        Json::Array(items) => items
            .iter()
            .map(|item| item.as_str())
            .collect::<Option<Vec<&str>>>(),
        _ => None,
    }
    .ok_or_else(|| ScimError::invalid_value("schemas must be a list of schema URNs"))?;
    if urns.iter().any(|urn| urn.eq_ignore_ascii_case(core)) {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "schemas must list the core schema {core}"
        )))
    }
}

/// `urn:…:core:2.0:User:userName` names `userName`.
fn strip_core_urn(resource: Resource, key: &str) -> &str {
    let core = resource.core_schema();
    if key.len() > core.len() + 1
        && schema::starts_with_ignore_case(key, core)
        && key.as_bytes()[core.len()] == b':'
    {
        &key[core.len() + 1..]
    } else {
        key
    }
}

/// Read-only attributes (id, meta, groups) and never-returned ones
/// (password) are not taken from requests.
fn ignored_on_input(def: &AttributeDef) -> bool {
    def.mutability == Mutability::ReadOnly || def.returned == Returned::Never
}

/// The value of attribute `def`, checked and normalised; `what` names it
/// in errors (`emails[1].primary`).
fn conform(def: &AttributeDef, value: Json, what: &str) -> Result<Json, ScimError> {
    if !def.multi_valued {
        return conform_single(def, value, what);
    }
    let items = match value {
        Json::Array(items) => items,
        single => vec![single],
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        if item.is_null() {
            continue;
        }
        out.push(conform_single(def, item, &format!("{what}[{index}]"))?);
    }
    Ok(Json::Array(out))
}

fn conform_single(def: &AttributeDef, value: Json, what: &str) -> Result<Json, ScimError> {
    let wrong = |value: &Json| {
        ScimError::invalid_value(format!(
            "{what} must be {}, not {}",
            expected(def.kind),
            shorten(value)
        ))
    };
    match def.kind {
        Kind::String | Kind::Reference | Kind::Binary => match value {
            Json::String(_) => Ok(value),
            other => Err(wrong(&other)),
        },
        Kind::Boolean => match &value {
            Json::Bool(_) => Ok(value),
            Json::String(s) => schema::bool_from_text(s)
                .map(Json::Bool)
                .ok_or_else(|| wrong(&value)),
            _ => Err(wrong(&value)),
        },
        Kind::Integer => match &value {
            Json::Number(n) if n.is_i64() || n.is_u64() => Ok(value),
            _ => Err(wrong(&value)),
        },
        Kind::Decimal => match &value {
            Json::Number(_) => Ok(value),
            _ => Err(wrong(&value)),
        },
        Kind::DateTime => match &value {
            Json::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => Ok(value),
            _ => Err(wrong(&value)),
        },
        Kind::Complex => conform_complex(def, value, what),
    }
}

fn conform_complex(def: &AttributeDef, value: Json, what: &str) -> Result<Json, ScimError> {
    let has_value = def.sub_attributes.iter().any(|s| s.name == "value");
    let fields = match value {
        Json::Object(fields) => fields,
        Json::String(s) if has_value => {
            let mut fields = Map::new();
            fields.insert("value".into(), Json::String(s));
            return Ok(Json::Object(fields));
        }
        other => {
            return Err(ScimError::invalid_value(format!(
                "{what} must be an object, not {}",
                shorten(&other)
            )));
        }
    };
    let mut out = Map::new();
    for (key, value) in fields {
        if value.is_null() {
            continue;
        }
        match def
            .sub_attributes
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(&key))
        {
            Some(sub) if ignored_on_input(sub) => {}
            Some(sub) => {
                let value = conform(sub, value, &format!("{what}.{}", sub.name))?;
                out.insert(sub.name.to_owned(), value);
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    Ok(Json::Object(out))
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::String => "a string",
        Kind::Reference => "a reference (a string)",
        Kind::Binary => "base64 text",
        Kind::Boolean => "a boolean",
        Kind::Integer => "an integer",
        Kind::Decimal => "a number",
        Kind::DateTime => "an RFC 3339 date-time string",
        Kind::Complex => "an object",
    }
}

/// A value quoted in an error, cut to a readable length.
fn shorten(value: &Json) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::error::ScimType;
    use serde_json::json;

    fn user(body: Json) -> Result<Json, ScimError> {
        resource_body(Resource::User, body).map(Json::Object)
    }

    fn scim_type(result: Result<Json, ScimError>) -> Option<ScimType> {
        result.err().and_then(|e| e.scim_type)
    }

    #[test]
    fn normalises_known_attributes_and_keeps_unknown_ones() {
        let out = user(json!({
            "schemas": [schema::CORE_USER, "urn:example:acme:1.0:User"],
            "UserName": "ann",
            "NICKNAME": "An",
            "urn:ietf:params:scim:schemas:core:2.0:User:title": "Boss",
            "phoneNumbers": {"Value": "+1", "TYPE": "cell", "primary": "True"},
            "emails": ["ann@example.com", null],
            "x509Certificates": [{"value": "MIIB"}],
            "addresses": [{"locality": "Paris", "extra": 1}],
            "urn:example:acme:1.0:User": {"badge": 7},
            "shoeSize": 44,
            "id": "ignored", "meta": {"x": 1}, "groups": [1], "password": "secret",
            "displayName": null,
        }));
        assert_eq!(
            out,
            Ok(json!({
                "userName": "ann",
                "nickName": "An",
                "title": "Boss",
                "phoneNumbers": [{"value": "+1", "type": "cell", "primary": true}],
                "emails": [{"value": "ann@example.com"}],
                "x509Certificates": [{"value": "MIIB"}],
                "addresses": [{"locality": "Paris", "extra": 1}],
                "urn:example:acme:1.0:User": {"badge": 7},
                "shoeSize": 44,
            }))
        );
    }

    #[test]
    fn schemas_must_list_the_core_schema() {
        assert!(user(json!({"userName": "a"})).is_ok(), "missing is lenient");
        assert!(
            user(
                json!({"schemas": ["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"], "userName": "a"})
            )
            .is_ok()
        );
        for schemas in [
            json!([schema::CORE_GROUP]),
            json!([]),
            json!(schema::CORE_USER),
            json!([1]),
        ] {
            let out = user(json!({"schemas": schemas, "userName": "a"}));
            assert_eq!(scim_type(out), Some(ScimType::InvalidValue), "{schemas}");
        }
        let group = resource_body(
            Resource::Group,
            json!({"schemas": [schema::CORE_GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"], "displayName": "g"}),
        );
        assert!(group.is_ok());
    }

    #[test]
    fn required_attributes_are_named() {
        for body in [
            json!({}),
            json!({"userName": "  "}),
            json!({"userName": null}),
        ] {
            let err = user(body).err();
            assert_eq!(
                err.as_ref().and_then(|e| e.scim_type),
                Some(ScimType::InvalidValue)
            );
            assert!(err.is_some_and(|e| e.detail.contains("userName")));
        }
        let err = resource_body(Resource::Group, json!({"members": []})).err();
        assert!(err.is_some_and(|e| e.detail.contains("displayName")));
    }

    #[test]
    fn types_are_checked() {
        let bad = [
            json!({"userName": 5}),
            json!({"userName": "a", "active": "maybe"}),
            json!({"userName": "a", "active": 1}),
            json!({"userName": "a", "name": "Ann"}),
            json!({"userName": "a", "name": {"givenName": ["Ann"]}}),
            json!({"userName": "a", "emails": [{"value": 1}]}),
            json!({"userName": "a", "emails": [3]}),
            json!({"userName": "a", "phoneNumbers": [{"primary": "often"}]}),
            json!({"userName": "a", "profileUrl": {"href": "x"}}),
            json!({"userName": "a", "nickName": true}),
        ];
        for body in bad {
            let out = user(body.clone());
            assert_eq!(scim_type(out), Some(ScimType::InvalidValue), "{body}");
        }
        let detail = user(json!({"userName": "a", "emails": [{"value": "a@b"}, {"primary": 7}]}))
            .err()
            .map(|e| e.detail);
        assert_eq!(
            detail.as_deref(),
            Some("emails[1].primary must be a boolean, not 7")
        );
    }

    #[test]
    fn group_members_accept_ids_and_objects() {
        let out = resource_body(
            Resource::Group,
            json!({"displayName": "g", "members": ["u1", {"value": "u2", "display": "Ann", "type": "User"}]}),
        );
        assert_eq!(
            out.map(Json::Object),
            Ok(
                json!({"displayName": "g", "members": [{"value": "u1"}, {"value": "u2", "type": "User"}]})
            )
        );
    }

    #[test]
    fn not_an_object() {
        assert_eq!(scim_type(user(json!([1]))), Some(ScimType::InvalidSyntax));
    }
}
