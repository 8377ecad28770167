//! SCIM schema names shared by filter compilation and PATCH application.

use identity_proto::v1::AttributePath;

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
