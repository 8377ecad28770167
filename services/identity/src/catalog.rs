//! The User attributes of RFC 7643 §4.1 that have no column: they live in
//! the `attributes` document (JSONB) under their canonical names. Filters,
//! sorting and PATCH read their types from here; writes canonicalise them
//! ([`canonical_user_bag`]) so that a filter can address them by exact key
//! and an expression index can serve it.

use serde_json::{Map, Value as Json};

/// The SCIM type of a bag attribute or sub-attribute, as far as comparisons care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    String {
        case_exact: bool,
    },
    /// Base64 data: compared exactly, never ordered (RFC 7644 §3.4.2.2).
    Binary,
    Boolean,
}

const STRING: Type = Type::String { case_exact: false };

/// A sub-attribute of a multi-valued bag attribute.
#[derive(Debug)]
pub(crate) struct SubAttr {
    pub name: &'static str,
    pub ty: Type,
}

/// A bag attribute: single-valued (`subs` empty) or multi-valued complex.
#[derive(Debug)]
pub(crate) struct BagAttr {
    pub name: &'static str,
    pub ty: Type,
    pub multi: bool,
    pub subs: &'static [SubAttr],
    /// The names of `subs`, for the PATCH engine's shapes.
    pub sub_names: &'static [&'static str],
}

impl BagAttr {
    /// The sub-attribute `name`, matched case-insensitively.
    pub(crate) fn sub(&self, name: &str) -> Option<&'static SubAttr> {
        self.subs.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

const fn sub(name: &'static str, ty: Type) -> SubAttr {
    SubAttr { name, ty }
}

const fn simple(name: &'static str) -> BagAttr {
    BagAttr {
        name,
        ty: STRING,
        multi: false,
        subs: &[],
        sub_names: &[],
    }
}

const fn plural(
    name: &'static str,
    subs: &'static [SubAttr],
    sub_names: &'static [&'static str],
) -> BagAttr {
    BagAttr {
        name,
        ty: STRING,
        multi: true,
        subs,
        sub_names,
    }
}

/// phoneNumbers, ims, photos, entitlements and roles (RFC 7643 §4.1.2).
const PLURAL_SUBS: &[SubAttr] = &[
    sub("value", STRING),
    sub("display", STRING),
    sub("type", STRING),
    sub("primary", Type::Boolean),
];
const PLURAL_NAMES: &[&str] = &["value", "display", "type", "primary"];

const CERTIFICATE_SUBS: &[SubAttr] = &[
    sub("value", Type::Binary),
    sub("display", STRING),
    sub("type", STRING),
    sub("primary", Type::Boolean),
];

const ADDRESS_SUBS: &[SubAttr] = &[
    sub("formatted", STRING),
    sub("streetAddress", STRING),
    sub("locality", STRING),
    sub("region", STRING),
    sub("postalCode", STRING),
    sub("country", STRING),
    sub("type", STRING),
    sub("primary", Type::Boolean),
];
const ADDRESS_NAMES: &[&str] = &[
    "formatted",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
    "type",
    "primary",
];

/// Every RFC 7643 User attribute without a column (`password` is never stored).
pub(crate) const USER_BAG: &[BagAttr] = &[
    simple("nickName"),
    simple("profileUrl"),
    simple("title"),
    simple("userType"),
    simple("preferredLanguage"),
    simple("locale"),
    simple("timezone"),
    plural("phoneNumbers", PLURAL_SUBS, PLURAL_NAMES),
    plural("ims", PLURAL_SUBS, PLURAL_NAMES),
    plural("photos", PLURAL_SUBS, PLURAL_NAMES),
    plural("addresses", ADDRESS_SUBS, ADDRESS_NAMES),
    plural("entitlements", PLURAL_SUBS, PLURAL_NAMES),
    plural("roles", PLURAL_SUBS, PLURAL_NAMES),
    plural("x509Certificates", CERTIFICATE_SUBS, PLURAL_NAMES),
];

/// The bag attribute `name`, matched case-insensitively.
pub(crate) fn user_bag_attribute(name: &str) -> Option<&'static BagAttr> {
    USER_BAG.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// The user's bag with RFC attributes under their canonical names (and
/// sub-attribute names), `"true"`/`"false"` strings of boolean
/// sub-attributes as booleans, and their types checked. Everything else is
/// kept exactly as sent.
pub(crate) fn canonical_user_bag(bag: Map<String, Json>) -> Result<Map<String, Json>, String> {
    let mut out = Map::with_capacity(bag.len());
    for (key, value) in bag {
        let Some(def) = user_bag_attribute(&key) else {
            out.insert(key, value);
            continue;
        };
        let value = if def.multi {
            plural_value(def, value)?
        } else {
            simple_value(def.name, def.ty, value)?
        };
        insert_once(&mut out, def.name.to_owned(), value)?;
    }
    Ok(out)
}

/// Inserts a known (canonical) name; another spelling of it already
/// present is a conflict.
fn insert_once(out: &mut Map<String, Json>, key: String, value: Json) -> Result<(), String> {
    if let Some(existing) = out.keys().find(|k| k.eq_ignore_ascii_case(&key)) {
        return Err(format!(
            "attribute '{key}' is given twice (also as '{existing}')"
        ));
    }
    out.insert(key, value);
    Ok(())
}

fn simple_value(what: &str, ty: Type, value: Json) -> Result<Json, String> {
    match (ty, value) {
        (_, Json::Null) => Ok(Json::Null),
        (Type::Boolean, Json::Bool(b)) => Ok(Json::Bool(b)),
        (Type::Boolean, Json::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Json::Bool(true)),
        (Type::Boolean, Json::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Json::Bool(false))
        }
        (Type::Boolean, _) => Err(format!("{what} must be a boolean")),
        (_, Json::String(s)) => Ok(Json::String(s)),
        (_, _) => Err(format!("{what} must be a string")),
    }
}

/// A multi-valued complex attribute: a list of objects (one object alone is
/// taken as a list of one), at most one of them primary.
fn plural_value(def: &BagAttr, value: Json) -> Result<Json, String> {
    let items = match value {
        Json::Array(items) => items,
        Json::Object(object) => vec![Json::Object(object)],
        _ => return Err(format!("{} must be a list of objects", def.name)),
    };
    let mut out = Vec::with_capacity(items.len());
    let mut primaries = 0;
    for item in items {
        let Json::Object(object) = item else {
            return Err(format!("each value of {} must be an object", def.name));
        };
        let mut element = Map::with_capacity(object.len());
        for (key, value) in object {
            match def.sub(&key) {
                Some(sub) => {
                    let what = format!("{}.{}", def.name, sub.name);
                    let value = simple_value(&what, sub.ty, value)?;
                    insert_once(&mut element, sub.name.to_owned(), value)?;
                }
                None => {
                    element.insert(key, value);
                }
            }
        }
        if element.get("primary") == Some(&Json::Bool(true)) {
            primaries += 1;
        }
        out.push(Json::Object(element));
    }
    if primaries > 1 {
        return Err(format!("at most one value of {} may be primary", def.name));
    }
    Ok(Json::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bag(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            _ => panic!("object expected"),
        }
    }

    fn canonical_of(value: Json) -> Result<Json, String> {
        canonical_user_bag(bag(value)).map(Json::Object)
    }

    #[test]
    fn names_and_booleans_become_canonical() {
        let out = canonical_of(json!({
            "TITLE": "Engineer",
            "phonenumbers": [{"Value": "+1", "TYPE": "work", "Primary": "True", "extra": 1}],
            "urn:example:ext": {"Title": 3},
            "custom": [1, 2]
        }));
        assert_eq!(
            out,
            Ok(json!({
                "title": "Engineer",
                "phoneNumbers": [{"value": "+1", "type": "work", "primary": true, "extra": 1}],
                "urn:example:ext": {"Title": 3},
                "custom": [1, 2]
            }))
        );
    }

    #[test]
    fn values_as_sent_stay_unchanged() {
        let sent = json!({
            "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "work", "primary": true}],
            "addresses": [{"locality": "London", "country": "GB", "type": "work"}],
            "nickName": "Babbage",
            "roles": []
        });
        assert_eq!(canonical_of(sent.clone()), Ok(sent));
        // One object alone is a list of one.
        assert_eq!(
            canonical_of(json!({"ims": {"value": "ada", "type": "xmpp"}})),
            Ok(json!({"ims": [{"value": "ada", "type": "xmpp"}]}))
        );
    }

    #[test]
    fn wrong_types_and_duplicates_are_refused() {
        for (bad, message) in [
            (json!({"title": 42}), "title must be a string"),
            (json!({"title": {"a": 1}}), "title must be a string"),
            (json!({"roles": "admin"}), "roles must be a list"),
            (json!({"roles": ["admin"]}), "each value of roles"),
            (
                json!({"emails2": 1, "phoneNumbers": [{"primary": 1}]}),
                "phoneNumbers.primary must be a boolean",
            ),
            (
                json!({"phoneNumbers": [{"value": 5}]}),
                "phoneNumbers.value must be a string",
            ),
            (
                json!({"roles": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
                "at most one value of roles",
            ),
            (json!({"title": "a", "Title": "b"}), "given twice"),
            (
                json!({"roles": [{"value": "a", "VALUE": "b"}]}),
                "given twice",
            ),
        ] {
            let err = canonical_of(bad.clone()).err().unwrap_or_default();
            assert!(err.contains(message), "{bad}: {err}");
        }
    }

    #[test]
    fn lookups_ignore_case() {
        assert_eq!(
            user_bag_attribute("X509CERTIFICATES").map(|a| a.name),
            Some("x509Certificates")
        );
        assert!(user_bag_attribute("emails").is_none());
        let addresses = user_bag_attribute("addresses").unwrap_or_else(|| panic!("addresses"));
        assert_eq!(
            addresses.sub("STREETADDRESS").map(|s| s.name),
            Some("streetAddress")
        );
        assert_eq!(addresses.sub("postalcode").map(|s| s.ty), Some(STRING));
        assert!(addresses.sub("value").is_none());
    }
}
