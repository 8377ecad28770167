//! SCIM constants and what the adapter knows about User attributes: canonical
//! names (IdPs send `UserName`, `NAME.givenname`), types (to turn `"True"` into
//! a boolean), and the definitions `/Schemas` publishes. One table serves all
//! of them so parsing and discovery cannot disagree.

use identity_proto::v1::AttributePath;

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SERVICE_PROVIDER_CONFIG: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Media type of every SCIM response (RFC 7644 §8.1).
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// Path prefix every SCIM route lives under.
pub const BASE_PATH: &str = "/scim/v2";

/// Largest page the service returns; also advertised as `filter.maxResults`.
pub const MAX_PAGE_SIZE: i32 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    DateTime,
    Reference,
    Complex,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::DateTime => "dateTime",
            Kind::Reference => "reference",
            Kind::Complex => "complex",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Returned {
    Always,
    Default,
    Never,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Default => "default",
            Returned::Never => "never",
        }
    }
}

/// One attribute definition (RFC 7643 §7), enough to publish it and to
/// canonicalise and type-check what clients send.
#[derive(Debug)]
pub struct AttributeDef {
    pub name: &'static str,
    pub kind: Kind,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub server_unique: bool,
    pub description: &'static str,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttributeDef],
}

const fn string(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef {
        name,
        kind: Kind::String,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        server_unique: false,
        description,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

const fn complex(
    name: &'static str,
    description: &'static str,
    sub_attributes: &'static [AttributeDef],
) -> AttributeDef {
    AttributeDef {
        kind: Kind::Complex,
        sub_attributes,
        ..string(name, description)
    }
}

const NAME_SUBS: &[AttributeDef] = &[
    string(
        "formatted",
        "The full name, formatted for display. Given and family name take precedence for the computed full name.",
    ),
    string("familyName", "The family name (last name)."),
    string("givenName", "The given name (first name)."),
    string("middleName", "The middle name(s)."),
    string("honorificPrefix", "The honorific prefix, e.g. 'Ms.'."),
    string("honorificSuffix", "The honorific suffix, e.g. 'III'."),
];

const EMAIL_SUBS: &[AttributeDef] = &[
    string("value", "The email address."),
    string("display", "A human-readable name for the address."),
    AttributeDef {
        canonical_values: &["work", "home", "other"],
        ..string("type", "The kind of address, e.g. 'work'.")
    },
    AttributeDef {
        kind: Kind::Boolean,
        ..string(
            "primary",
            "Whether this is the primary address; setting it clears it on the others.",
        )
    },
];

/// Core User attributes the service stores as typed fields (published in /Schemas).
pub const CORE_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef {
        required: true,
        server_unique: true,
        ..string(
            "userName",
            "Unique identifier of the user within the tenant, compared case-insensitively.",
        )
    },
    complex("name", "The components of the user's name.", NAME_SUBS),
    string("displayName", "The name of the user, for display."),
    AttributeDef {
        multi_valued: true,
        ..complex("emails", "Email addresses of the user.", EMAIL_SUBS)
    },
    AttributeDef {
        kind: Kind::Boolean,
        ..string(
            "active",
            "Whether the user may use the service; false deactivates without deleting.",
        )
    },
];

const MANAGER_SUBS: &[AttributeDef] = &[
    string("value", "The id of the user's manager."),
    AttributeDef {
        kind: Kind::Reference,
        reference_types: &["User"],
        ..string("$ref", "The URI of the manager's User resource.")
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..string(
            "displayName",
            "The manager's display name, filled in by the service.",
        )
    },
];

/// Enterprise extension attributes (RFC 7643 §4.3), all typed in the service.
pub const ENTERPRISE_ATTRIBUTES: &[AttributeDef] = &[
    string("employeeNumber", "Identifier assigned by the organization."),
    string("costCenter", "Name of a cost center."),
    string("organization", "Name of an organization."),
    string("division", "Name of a division."),
    string("department", "Name of a department."),
    complex("manager", "The user's manager.", MANAGER_SUBS),
];

const META_SUBS: &[AttributeDef] = &[
    string("resourceType", "Always 'User'."),
    AttributeDef {
        kind: Kind::DateTime,
        ..string("created", "When the resource was created.")
    },
    AttributeDef {
        kind: Kind::DateTime,
        ..string("lastModified", "When the resource last changed.")
    },
    AttributeDef {
        kind: Kind::Reference,
        ..string("location", "The URI of the resource.")
    },
    string("version", "The weak ETag of the resource."),
];

/// Attributes every resource has (RFC 7643 §3.1) plus names the adapter must
/// recognise to ignore or drop; not listed in the User schema itself.
const COMMON_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        returned: Returned::Always,
        ..string("id", "Identifier assigned by the service.")
    },
    AttributeDef {
        case_exact: true,
        ..string(
            "externalId",
            "Identifier assigned by the provisioning client.",
        )
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..complex("meta", "Resource metadata.", META_SUBS)
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        multi_valued: true,
        ..string("schemas", "Schema URNs of the resource.")
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        multi_valued: true,
        ..complex("groups", "Groups the user belongs to.", &[])
    },
    AttributeDef {
        returned: Returned::Never,
        ..string("password", "Never stored and never returned.")
    },
];

/// Case-insensitive lookup in a definition table.
fn find<'a>(defs: &'a [AttributeDef], name: &str) -> Option<&'a AttributeDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// True for enterprise attribute names that core User does not define.
pub fn enterprise_only(attribute: &str) -> bool {
    attribute_def("", attribute).is_none() && find(ENTERPRISE_ATTRIBUTES, attribute).is_some()
}

/// `schema` uses the proto convention: "" for core, else the extension URN.
pub fn attribute_def(schema: &str, attribute: &str) -> Option<&'static AttributeDef> {
    if schema.is_empty() {
        find(CORE_ATTRIBUTES, attribute).or_else(|| find(COMMON_ATTRIBUTES, attribute))
    } else if schema == ENTERPRISE_USER {
        find(ENTERPRISE_ATTRIBUTES, attribute)
    } else {
        None
    }
}

pub fn sub_attribute_def(
    schema: &str,
    attribute: &str,
    sub_attribute: &str,
) -> Option<&'static AttributeDef> {
    attribute_def(schema, attribute).and_then(|d| find(d.sub_attributes, sub_attribute))
}

/// The type of `attribute[.sub_attribute]`, when the adapter knows it.
pub fn kind_of(schema: &str, attribute: &str, sub_attribute: &str) -> Option<Kind> {
    if sub_attribute.is_empty() {
        attribute_def(schema, attribute).map(|d| d.kind)
    } else {
        sub_attribute_def(schema, attribute, sub_attribute).map(|d| d.kind)
    }
}

/// Known names come back in their canonical spelling, unknown ones as sent.
pub fn canonical_attribute(schema: &str, attribute: &str) -> String {
    attribute_def(schema, attribute).map_or_else(|| attribute.to_owned(), |d| d.name.to_owned())
}

pub fn canonical_sub_attribute(schema: &str, attribute: &str, sub_attribute: &str) -> String {
    sub_attribute_def(schema, attribute, sub_attribute)
        .map_or_else(|| sub_attribute.to_owned(), |d| d.name.to_owned())
}

/// The proto `schema` for a URN: "" for core, the canonical spelling for the
/// enterprise extension, any other URN as sent.
pub fn proto_schema(urn: &str) -> String {
    if urn.eq_ignore_ascii_case(CORE_USER) {
        String::new()
    } else if urn.eq_ignore_ascii_case(ENTERPRISE_USER) {
        ENTERPRISE_USER.to_owned()
    } else {
        urn.to_owned()
    }
}

/// What a path string (or a pathless PATCH key) names.
#[derive(Debug, PartialEq)]
pub enum PathTarget {
    /// A whole schema, e.g. the enterprise extension URN alone.
    Schema(String),
    Attribute(AttributePath),
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.is_char_boundary(prefix.len())
        && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Letters, digits, `-`, `_` and `$` (for `$ref`), per RFC 7643 §2.1 ATTRNAME.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
}

/// Parses `[urn:]attribute[.subAttribute]` into a canonical path; `None` when
/// the text is not a well-formed attribute path.
pub fn parse_attr_path(text: &str) -> Option<PathTarget> {
    let (mut schema, rest) = if starts_with_ignore_case(text, "urn:") {
        if text.eq_ignore_ascii_case(CORE_USER) || text.eq_ignore_ascii_case(ENTERPRISE_USER) {
            return Some(PathTarget::Schema(proto_schema(text)));
        }
        let known = [CORE_USER, ENTERPRISE_USER]
            .into_iter()
            .find(|urn| starts_with_ignore_case(text, &format!("{urn}:")));
        match known {
            Some(urn) => (proto_schema(urn), &text[urn.len() + 1..]),
            None => {
                let split = text.rfind(':')?;
                (text[..split].to_owned(), &text[split + 1..])
            }
        }
    } else {
        (String::new(), text)
    };
    let (attribute, sub_attribute) = match rest.split_once('.') {
        Some((a, s)) => (a, s),
        None => (rest, ""),
    };
    if !valid_name(attribute) || (!sub_attribute.is_empty() && !valid_name(sub_attribute)) {
        return None;
    }
    if rest.ends_with('.') {
        return None;
    }
    // Core User has no `manager` or `department`; IdPs send them unqualified.
    if schema.is_empty() && !text.contains(':') && enterprise_only(attribute) {
        schema = ENTERPRISE_USER.to_owned();
    }
    Some(PathTarget::Attribute(AttributePath {
        attribute: canonical_attribute(&schema, attribute),
        sub_attribute: if sub_attribute.is_empty() {
            String::new()
        } else {
            canonical_sub_attribute(&schema, attribute, sub_attribute)
        },
        schema,
        value_filter: None,
    }))
}

/// `"True"`/`"false"` in any case, as Entra sends booleans.
pub fn bool_from_text(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(schema: &str, attribute: &str, sub: &str) -> PathTarget {
        PathTarget::Attribute(AttributePath {
            schema: schema.into(),
            attribute: attribute.into(),
            sub_attribute: sub.into(),
            value_filter: None,
        })
    }

    #[test]
    fn canonicalises_known_names_and_keeps_unknown_ones() {
        assert_eq!(parse_attr_path("UserName"), Some(attr("", "userName", "")));
        assert_eq!(
            parse_attr_path("NAME.givenname"),
            Some(attr("", "name", "givenName"))
        );
        assert_eq!(
            parse_attr_path("phoneNumbers"),
            Some(attr("", "phoneNumbers", ""))
        );
        assert_eq!(
            parse_attr_path("META.LASTMODIFIED"),
            Some(attr("", "meta", "lastModified"))
        );
    }

    #[test]
    fn splits_schema_urns() {
        assert_eq!(
            parse_attr_path("urn:ietf:params:scim:schemas:core:2.0:User:userName"),
            Some(attr("", "userName", ""))
        );
        assert_eq!(
            parse_attr_path(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
            ),
            Some(attr(ENTERPRISE_USER, "manager", "value"))
        );
        assert_eq!(
            parse_attr_path(
                "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER"
            ),
            Some(attr(ENTERPRISE_USER, "employeeNumber", ""))
        );
        assert_eq!(
            parse_attr_path("urn:example:custom:1.0:User:badge"),
            Some(attr("urn:example:custom:1.0:User", "badge", ""))
        );
        assert_eq!(
            parse_attr_path(ENTERPRISE_USER),
            Some(PathTarget::Schema(ENTERPRISE_USER.into()))
        );
    }

    #[test]
    fn unqualified_enterprise_names_resolve_to_the_extension() {
        assert_eq!(
            parse_attr_path("Manager.Value"),
            Some(attr(ENTERPRISE_USER, "manager", "value"))
        );
        assert_eq!(
            parse_attr_path("department"),
            Some(attr(ENTERPRISE_USER, "department", ""))
        );
        assert_eq!(
            parse_attr_path("urn:ietf:params:scim:schemas:core:2.0:User:department"),
            Some(attr("", "department", ""))
        );
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["", ".", "name.", "a.b.c", "na me", "emails[", "urn:"] {
            assert_eq!(parse_attr_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn knows_the_booleans() {
        assert_eq!(kind_of("", "active", ""), Some(Kind::Boolean));
        assert_eq!(kind_of("", "emails", "PRIMARY"), Some(Kind::Boolean));
        assert_eq!(kind_of("", "userName", ""), Some(Kind::String));
        assert_eq!(kind_of("", "nickName", ""), None);
        assert_eq!(bool_from_text("False"), Some(false));
        assert_eq!(bool_from_text("TRUE"), Some(true));
        assert_eq!(bool_from_text("yes"), None);
    }
}
