//! SCIM schema names shared by filter compilation and PATCH application,
//! and the bounds every stored resource keeps.

use identity_proto::v1::AttributePath;
use serde_json::{Map, Value as Json};

pub(crate) const CORE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const ENTERPRISE_URN: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The resource type a path belongs to: it decides which URN is the core
/// schema and whether the enterprise extension applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    User,
    Group,
}

impl Resource {
    fn core_urn(self) -> &'static str {
        match self {
            Resource::User => CORE_URN,
            Resource::Group => GROUP_URN,
        }
    }
}

/// Which schema a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schema<'a> {
    Core,
    Enterprise,
    Other(&'a str),
}

/// Only users have the enterprise extension; on a group its URN is just
/// another extension.
pub(crate) fn schema_of(path: &AttributePath, resource: Resource) -> Schema<'_> {
    let schema = path.schema.trim();
    if schema.is_empty() || schema.eq_ignore_ascii_case(resource.core_urn()) {
        Schema::Core
    } else if resource == Resource::User && schema.eq_ignore_ascii_case(ENTERPRISE_URN) {
        Schema::Enterprise
    } else {
        Schema::Other(schema)
    }
}

/// The attribute and sub-attribute of a path; a dotted attribute
/// (`name.givenName`) is split when no sub-attribute was given.
pub(crate) fn attribute_parts(path: &AttributePath) -> (&str, &str) {
    match path.attribute.split_once('.') {
        Some((attr, sub)) if path.sub_attribute.is_empty() => (attr, sub),
        _ => (&path.attribute, &path.sub_attribute),
    }
}

/// Inside a value filter (`emails[type eq "work"]`) paths name sub-attributes;
/// `emails.type` is accepted as a spelling of `type` there.
pub(crate) fn element_attribute<'a>(path: &'a AttributePath, parent: &str) -> &'a str {
    let (attr, sub) = attribute_parts(path);
    if !sub.is_empty() && attr.eq_ignore_ascii_case(parent) {
        sub
    } else if sub.is_empty() {
        attr
    } else {
        &path.attribute
    }
}

/// The path as SCIM text, for error messages.
pub(crate) fn display_path(path: &AttributePath) -> String {
    let mut text = String::new();
    if !path.schema.is_empty() {
        text.push_str(&path.schema);
        if !path.attribute.is_empty() {
            text.push(':');
        }
    }
    text.push_str(&path.attribute);
    if path.value_filter.is_some() {
        text.push_str("[...]");
    }
    if !path.sub_attribute.is_empty() {
        text.push('.');
        text.push_str(&path.sub_attribute);
    }
    text
}

/// `key` as spelled in `candidates`, matched case-insensitively.
pub(crate) fn canonical<'a>(candidates: &[&'a str], key: &str) -> Option<&'a str> {
    candidates
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(key))
}

/// Values one multi-valued attribute may hold (emails, phoneNumbers, any
/// array in an extension): far above what a person has, small enough that
/// every PATCH over them stays cheap.
pub(crate) const MAX_VALUES: usize = 1000;

/// Bytes of one stored resource as JSON: far above a real user or group,
/// small enough that a page of them fits a gRPC message.
pub(crate) const MAX_RESOURCE_BYTES: usize = 256 * 1024;

/// Levels of objects and arrays inside one attribute's value: a decoded
/// resource must stay well within prost's recursion limit on every reader
/// (about three protobuf levels a JSON level). The SCIM adapter's body
/// limit is the same number, so whatever it lets through is stored.
pub(crate) const MAX_VALUE_DEPTH: usize = 24;

/// Refuses text Postgres cannot store: `text` and `jsonb` reject U+0000.
pub(crate) fn check_text(what: &str, text: &str) -> Result<(), String> {
    if text.contains('\0') {
        Err(format!(
            "{what} contains a NUL character, which cannot be stored"
        ))
    } else {
        Ok(())
    }
}

/// [`check_text`] on an optional value.
pub(crate) fn check_optional(what: &str, text: Option<&str>) -> Result<(), String> {
    text.map_or(Ok(()), |text| check_text(what, text))
}

/// Checks every attribute of a bag (NUL in names and strings, number of
/// values, nesting) and returns its size as JSON.
pub(crate) fn check_bag(bag: &Map<String, Json>) -> Result<usize, String> {
    let mut path = Vec::new();
    check_object(bag, &mut path, 0)?;
    Ok(json_len(bag))
}

/// [`check_bag`]'s checks on the value of one PATCH operation at `what`,
/// before it is applied: nothing oversized is ever walked or copied.
pub(crate) fn check_value(what: &str, value: &Json) -> Result<(), String> {
    match value {
        Json::Object(object) if what.is_empty() => check_object(object, &mut Vec::new(), 0),
        value => check_json(value, &mut vec![what], 0),
    }
}

fn check_object<'a>(
    object: &'a Map<String, Json>,
    path: &mut Vec<&'a str>,
    depth: usize,
) -> Result<(), String> {
    if object.len() > MAX_VALUES {
        let what = if path.is_empty() {
            "the resource".to_owned()
        } else {
            path.join(".")
        };
        return Err(format!(
            "{what} has {} attributes; at most {MAX_VALUES} are allowed",
            object.len()
        ));
    }
    for (key, value) in object {
        path.push(key);
        if key.contains('\0') {
            return check_text(&format!("the attribute name '{}'", path.join(".")), key);
        }
        check_json(value, path, depth)?;
        path.pop();
    }
    Ok(())
}

fn check_json<'a>(value: &'a Json, path: &mut Vec<&'a str>, depth: usize) -> Result<(), String> {
    let nested = |path: &[&str]| {
        format!(
            "{} is nested more than {MAX_VALUE_DEPTH} levels deep",
            path.join(".")
        )
    };
    match value {
        Json::String(text) => check_text(&path.join("."), text),
        Json::Array(items) => {
            if items.len() > MAX_VALUES {
                return Err(too_many_values(&path.join("."), items.len()));
            }
            if depth >= MAX_VALUE_DEPTH {
                return Err(nested(path));
            }
            items
                .iter()
                .try_for_each(|item| check_json(item, path, depth + 1))
        }
        Json::Object(object) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(nested(path));
            }
            check_object(object, path, depth + 1)
        }
        Json::Null | Json::Bool(_) | Json::Number(_) => Ok(()),
    }
}

/// The answer to a multi-valued attribute over [`MAX_VALUES`].
pub(crate) fn too_many_values(what: &str, count: usize) -> String {
    format!("{what} has {count} values; at most {MAX_VALUES} are allowed")
}

/// The answer to a resource over [`MAX_RESOURCE_BYTES`].
pub(crate) fn check_resource_size(what: &str, bytes: usize) -> Result<(), String> {
    if bytes > MAX_RESOURCE_BYTES {
        Err(format!(
            "the {what} would take {bytes} bytes; at most {MAX_RESOURCE_BYTES} are allowed"
        ))
    } else {
        Ok(())
    }
}

/// Bytes of `value` serialized as JSON, counted without building the text.
pub(crate) fn json_len(value: &Map<String, Json>) -> usize {
    counted(|count| serde_json::to_writer(count, value))
}

/// [`json_len`] of any JSON value.
pub(crate) fn value_len(value: &Json) -> usize {
    counted(|count| serde_json::to_writer(count, value))
}

/// Bytes written by `write`; a failure counts as over every limit.
fn counted(write: impl FnOnce(&mut Count) -> serde_json::Result<()>) -> usize {
    let mut count = Count(0);
    match write(&mut count) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

struct Count(usize);
impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::path;

    #[test]
    fn bags_are_bounded() {
        let bag = |value: Json| match value {
            Json::Object(map) => map,
            _ => panic!("object expected"),
        };
        let ok = bag(serde_json::json!({"urn:x": {"a": ["b", {"c": 1}]}}));
        assert_eq!(check_bag(&ok).ok(), Some(json_len(&ok)));
        let nul = check_bag(&bag(serde_json::json!({"urn:x": {"a": ["\u{0}"]}})));
        assert_eq!(
            nul.err().as_deref(),
            Some("urn:x.a contains a NUL character, which cannot be stored")
        );
        let nul_key = check_bag(&bag(serde_json::json!({"urn:x": {"a\u{0}": 1}})));
        assert!(nul_key.is_err_and(|e| e.contains("attribute name 'urn:x.a")));
        let many = check_bag(&bag(serde_json::json!({"roles": vec![1; MAX_VALUES + 1]})));
        assert_eq!(
            many.err().as_deref(),
            Some("roles has 1001 values; at most 1000 are allowed")
        );
        let mut deep = Json::from(1);
        for _ in 0..MAX_VALUE_DEPTH {
            deep = Json::Array(vec![deep]);
        }
        assert!(check_bag(&bag(serde_json::json!({"x": deep.clone()}))).is_ok());
        let too_deep = check_bag(&bag(serde_json::json!({"x": [deep]})));
        assert!(too_deep.is_err_and(|e| e.contains("nested more than 24 levels")));
        let wide: Map<String, Json> = (0..=MAX_VALUES)
            .map(|i| (format!("k{i}"), Json::from(i)))
            .collect();
        let wide_bag = check_bag(&wide);
        assert!(
            wide_bag
                .is_err_and(|e| e == "the resource has 1001 attributes; at most 1000 are allowed")
        );
        let nested = check_bag(&bag(serde_json::json!({"urn:x": wide})));
        assert!(nested.is_err_and(|e| e.starts_with("urn:x has 1001 attributes")));
        assert!(check_resource_size("user", MAX_RESOURCE_BYTES).is_ok());
        assert!(check_resource_size("user", MAX_RESOURCE_BYTES + 1).is_err());
    }

    #[test]
    fn schemas_and_parts() {
        let user = Resource::User;
        assert_eq!(schema_of(&path("", "userName", ""), user), Schema::Core);
        assert_eq!(
            schema_of(&path(&CORE_URN.to_uppercase(), "x", ""), user),
            Schema::Core
        );
        assert_eq!(
            schema_of(&path(ENTERPRISE_URN, "manager", ""), user),
            Schema::Enterprise
        );
        assert_eq!(
            schema_of(&path("urn:x", "a", ""), user),
            Schema::Other("urn:x")
        );
        let group = Resource::Group;
        assert_eq!(
            schema_of(&path(GROUP_URN, "members", ""), group),
            Schema::Core
        );
        assert_eq!(
            schema_of(&path(CORE_URN, "x", ""), group),
            Schema::Other(CORE_URN)
        );
        assert_eq!(
            schema_of(&path(ENTERPRISE_URN, "x", ""), group),
            Schema::Other(ENTERPRISE_URN)
        );
        assert_eq!(
            attribute_parts(&path("", "name.givenName", "")),
            ("name", "givenName")
        );
        assert_eq!(
            element_attribute(&path("", "emails", "type"), "emails"),
            "type"
        );
        assert_eq!(element_attribute(&path("", "type", ""), "emails"), "type");
        assert_eq!(
            display_path(&path(ENTERPRISE_URN, "manager", "value")),
            format!("{ENTERPRISE_URN}:manager.value")
        );
    }
}
