//! SCIM schema names shared by filter compilation and PATCH application.

use identity_proto::v1::AttributePath;

pub(crate) const CORE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const ENTERPRISE_URN: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Which schema a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schema<'a> {
    Core,
    Enterprise,
    Other(&'a str),
}

pub(crate) fn schema_of(path: &AttributePath) -> Schema<'_> {
    let schema = path.schema.trim();
    if schema.is_empty() || schema.eq_ignore_ascii_case(CORE_URN) {
        Schema::Core
    } else if schema.eq_ignore_ascii_case(ENTERPRISE_URN) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn path(schema: &str, attribute: &str, sub: &str) -> AttributePath {
        AttributePath {
            schema: schema.into(),
            attribute: attribute.into(),
            sub_attribute: sub.into(),
            value_filter: None,
        }
    }

    #[test]
    fn schemas_and_parts() {
        assert_eq!(schema_of(&path("", "userName", "")), Schema::Core);
        assert_eq!(
            schema_of(&path(&CORE_URN.to_uppercase(), "x", "")),
            Schema::Core
        );
        assert_eq!(
            schema_of(&path(ENTERPRISE_URN, "manager", "")),
            Schema::Enterprise
        );
        assert_eq!(schema_of(&path("urn:x", "a", "")), Schema::Other("urn:x"));
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
