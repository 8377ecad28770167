//! SCIM constants and what the adapter knows about User and Group attributes:
//! canonical names (IdPs send `UserName`, `NAME.givenname`), types (to turn
//! `"True"` into a boolean), and the definitions `/Schemas` publishes. One
//! table per resource serves all of them so parsing and discovery cannot
//! disagree.

use identity_proto::v1::AttributePath;
use serde_json::{Map, Value as Json};

use crate::wire::error::ScimError;

pub use crate::wire::urns::{
    CORE_GROUP, CORE_USER, ENTERPRISE_USER, ERROR, LIST_RESPONSE, PATCH_OP, RESOURCE_TYPE, SCHEMA,
    SCIM_MEDIA_TYPE, SERVICE_PROVIDER_CONFIG,
};

/// Path prefix every SCIM route lives under.
pub const BASE_PATH: &str = "/scim/v2";

/// Largest page the service returns; also advertised as `filter.maxResults`.
pub const MAX_PAGE_SIZE: i32 = 1000;

/// Page size the service uses when a list request has no `count`.
pub const DEFAULT_PAGE_SIZE: i32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::Decimal => "decimal",
            Kind::Integer => "integer",
            Kind::DateTime => "dateTime",
            Kind::Binary => "binary",
            Kind::Reference => "reference",
            Kind::Complex => "complex",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    /// Set when the value is added, never changed in place (RFC 7643 §7).
    Immutable,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
        }
    }
}

/// When an attribute appears in responses (RFC 7643 §7): `Request` ones only
/// when the `attributes` parameter names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returned {
    Always,
    Default,
    Request,
    Never,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Default => "default",
            Returned::Request => "request",
            Returned::Never => "never",
        }
    }
}

/// One attribute definition (RFC 7643 §7), enough to publish it and to
/// canonicalise and type-check what clients send.
#[derive(Debug, PartialEq)]
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

const fn typed(kind: Kind, name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef {
        kind,
        ..string(name, description)
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

/// A multi-valued complex attribute (RFC 7643 §2.4).
const fn multi(
    name: &'static str,
    description: &'static str,
    sub_attributes: &'static [AttributeDef],
) -> AttributeDef {
    AttributeDef {
        multi_valued: true,
        ..complex(name, description, sub_attributes)
    }
}

/// `type` of a multi-valued attribute; canonical values are suggestions,
/// never enforced (IdPs send others).
const fn value_type(canonical_values: &'static [&'static str]) -> AttributeDef {
    AttributeDef {
        canonical_values,
        ..string("type", "A label for the value's function, e.g. 'work'.")
    }
}

const PRIMARY: AttributeDef = typed(
    Kind::Boolean,
    "primary",
    "Whether this is the preferred value; setting it clears it on the others.",
);

const DISPLAY: AttributeDef = string("display", "A human-readable name for the value.");

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
    DISPLAY,
    value_type(&["work", "home", "other"]),
    PRIMARY,
];

const PHONE_SUBS: &[AttributeDef] = &[
    string("value", "The phone number, e.g. 'tel:+1-201-555-0123'."),
    DISPLAY,
    value_type(&["work", "home", "mobile", "fax", "pager", "other"]),
    PRIMARY,
];

const IM_SUBS: &[AttributeDef] = &[
    string("value", "The instant messaging address."),
    DISPLAY,
    value_type(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
    PRIMARY,
];

const PHOTO_SUBS: &[AttributeDef] = &[
    AttributeDef {
        reference_types: &["external"],
        ..typed(Kind::Reference, "value", "The URL of the image.")
    },
    DISPLAY,
    value_type(&["photo", "thumbnail"]),
    PRIMARY,
];

const ADDRESS_SUBS: &[AttributeDef] = &[
    string(
        "formatted",
        "The full mailing address, formatted for display.",
    ),
    string("streetAddress", "The street address."),
    string("locality", "The city or locality."),
    string("region", "The state or region."),
    string("postalCode", "The zip or postal code."),
    string("country", "The country, as an ISO 3166-1 alpha-2 code."),
    value_type(&["work", "home", "other"]),
    PRIMARY,
];

/// Sub-attributes of entitlements and roles.
const LABEL_SUBS: &[AttributeDef] = &[
    string("value", "The value."),
    DISPLAY,
    value_type(&[]),
    PRIMARY,
];

const CERTIFICATE_SUBS: &[AttributeDef] = &[
    typed(
        Kind::Binary,
        "value",
        "The DER-encoded certificate, base64.",
    ),
    DISPLAY,
    value_type(&[]),
    PRIMARY,
];

const GROUP_REF_SUBS: &[AttributeDef] = &[
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..string("value", "The id of the group.")
    },
    AttributeDef {
        kind: Kind::Reference,
        mutability: Mutability::ReadOnly,
        reference_types: &["Group"],
        ..string("$ref", "The URI of the Group resource.")
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..string("display", "The group's displayName.")
    },
];

/// Core User attributes (RFC 7643 §4.1), published in /Schemas. The service
/// stores userName, name, displayName, emails and active as typed fields and
/// the others in the user's attribute document.
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
    string("nickName", "The casual way to address the user."),
    AttributeDef {
        reference_types: &["external"],
        ..typed(
            Kind::Reference,
            "profileUrl",
            "The URL of the user's online profile.",
        )
    },
    string("title", "The user's title, e.g. 'Vice President'."),
    string(
        "userType",
        "The relationship between the organization and the user, e.g. 'Employee'.",
    ),
    string(
        "preferredLanguage",
        "The user's preferred language, e.g. 'en-US' (RFC 7231 Accept-Language).",
    ),
    string(
        "locale",
        "The user's default location for localisation, e.g. 'en-US'.",
    ),
    string(
        "timezone",
        "The user's time zone, in IANA format, e.g. 'America/Los_Angeles'.",
    ),
    typed(
        Kind::Boolean,
        "active",
        "Whether the user may use the service; false deactivates without deleting.",
    ),
    multi("emails", "Email addresses of the user.", EMAIL_SUBS),
    multi("phoneNumbers", "Phone numbers of the user.", PHONE_SUBS),
    multi("ims", "Instant messaging addresses of the user.", IM_SUBS),
    multi("photos", "URLs of images of the user.", PHOTO_SUBS),
    multi(
        "addresses",
        "Physical mailing addresses of the user.",
        ADDRESS_SUBS,
    ),
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..multi(
            "groups",
            "The groups the user is a member of; change them through the Group resource.",
            GROUP_REF_SUBS,
        )
    },
    multi("entitlements", "Entitlements the user has.", LABEL_SUBS),
    multi("roles", "Roles the user has.", LABEL_SUBS),
    multi(
        "x509Certificates",
        "X.509 certificates issued to the user.",
        CERTIFICATE_SUBS,
    ),
];

/// As RFC 7643 §8.7.1 defines them: `value`, `$ref` and `type` are
/// immutable (a member is added or removed, not edited); `display` is
/// filled in by the service. Members are users only.
const MEMBER_SUBS: &[AttributeDef] = &[
    AttributeDef {
        case_exact: true,
        mutability: Mutability::Immutable,
        ..string("value", "The id of the member User.")
    },
    AttributeDef {
        mutability: Mutability::ReadOnly,
        ..string(
            "display",
            "The member's name: full name, else userName. Filled in by the service.",
        )
    },
    AttributeDef {
        mutability: Mutability::Immutable,
        canonical_values: &["User"],
        ..string("type", "The kind of member; always 'User'.")
    },
    AttributeDef {
        kind: Kind::Reference,
        mutability: Mutability::Immutable,
        reference_types: &["User"],
        ..string(
            "$ref",
            "The URI of the member's User resource; the member is named by value.",
        )
    },
];

/// Group attributes (RFC 7643 §4.2), published in /Schemas. externalId is
/// listed as well since IdPs match groups on it.
pub const GROUP_ATTRIBUTES: &[AttributeDef] = &[
    AttributeDef {
        required: true,
        server_unique: true,
        ..string(
            "displayName",
            "Name of the group, unique within the tenant, compared case-insensitively.",
        )
    },
    AttributeDef {
        multi_valued: true,
        ..complex(
            "members",
            "The users in the group. Omit with excludedAttributes=members for large groups.",
            MEMBER_SUBS,
        )
    },
    AttributeDef {
        case_exact: true,
        ..string(
            "externalId",
            "Identifier assigned by the provisioning client.",
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
    AttributeDef {
        returned: Returned::Always,
        ..string("resourceType", "'User' or 'Group'.")
    },
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

/// Attributes every resource has (RFC 7643 §3.1); not listed in the
/// resource schemas themselves.
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
        returned: Returned::Always,
        ..string("schemas", "Schema URNs of the resource.")
    },
];

/// User names the adapter must recognise to drop; never published.
const USER_HIDDEN_ATTRIBUTES: &[AttributeDef] = &[AttributeDef {
    returned: Returned::Never,
    ..string("password", "Never stored and never returned.")
}];

/// The SCIM resource types this adapter serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

impl Resource {
    /// Every type, in the order discovery lists them.
    pub const ALL: [Resource; 2] = [Resource::User, Resource::Group];

    pub fn name(self) -> &'static str {
        match self {
            Resource::User => "User",
            Resource::Group => "Group",
        }
    }

    /// The core schema URN, which the proto spells as "".
    pub fn core_schema(self) -> &'static str {
        match self {
            Resource::User => CORE_USER,
            Resource::Group => CORE_GROUP,
        }
    }

    /// The endpoint under [`BASE_PATH`], e.g. `/Users`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Resource::User => "/Users",
            Resource::Group => "/Groups",
        }
    }

    /// The attributes of the core schema, as published.
    pub fn core_attributes(self) -> &'static [AttributeDef] {
        match self {
            Resource::User => CORE_ATTRIBUTES,
            Resource::Group => GROUP_ATTRIBUTES,
        }
    }

    /// Extension schemas whose attributes the adapter knows.
    pub fn extensions(self) -> &'static [(&'static str, &'static [AttributeDef])] {
        match self {
            Resource::User => &[(ENTERPRISE_USER, ENTERPRISE_ATTRIBUTES)],
            Resource::Group => &[],
        }
    }

    fn hidden_attributes(self) -> &'static [AttributeDef] {
        match self {
            Resource::User => USER_HIDDEN_ATTRIBUTES,
            Resource::Group => &[],
        }
    }

    /// `meta.location` of the resource with this id.
    pub fn location(self, base_url: &str, id: &str) -> String {
        format!("{base_url}{BASE_PATH}{}/{id}", self.endpoint())
    }
}

/// Case-insensitive lookup in a definition table.
fn find<'a>(defs: &'a [AttributeDef], name: &str) -> Option<&'a AttributeDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// True for enterprise attribute names that core User does not define.
pub fn enterprise_only(attribute: &str) -> bool {
    attribute_def(Resource::User, "", attribute).is_none()
        && find(ENTERPRISE_ATTRIBUTES, attribute).is_some()
}

/// `schema` uses the proto convention: "" for core, else the extension URN.
pub fn attribute_def(
    resource: Resource,
    schema: &str,
    attribute: &str,
) -> Option<&'static AttributeDef> {
    if schema.is_empty() {
        find(resource.core_attributes(), attribute)
            .or_else(|| find(COMMON_ATTRIBUTES, attribute))
            .or_else(|| find(resource.hidden_attributes(), attribute))
    } else {
        resource
            .extensions()
            .iter()
            .find(|(urn, _)| *urn == schema)
            .and_then(|(_, defs)| find(defs, attribute))
    }
}

pub fn sub_attribute_def(
    resource: Resource,
    schema: &str,
    attribute: &str,
    sub_attribute: &str,
) -> Option<&'static AttributeDef> {
    attribute_def(resource, schema, attribute).and_then(|d| find(d.sub_attributes, sub_attribute))
}

/// The type of `attribute[.sub_attribute]`, when the adapter knows it.
pub fn kind_of(
    resource: Resource,
    schema: &str,
    attribute: &str,
    sub_attribute: &str,
) -> Option<Kind> {
    if sub_attribute.is_empty() {
        attribute_def(resource, schema, attribute).map(|d| d.kind)
    } else {
        sub_attribute_def(resource, schema, attribute, sub_attribute).map(|d| d.kind)
    }
}

/// Known names come back in their canonical spelling, unknown ones as sent.
pub fn canonical_attribute(resource: Resource, schema: &str, attribute: &str) -> String {
    attribute_def(resource, schema, attribute)
        .map_or_else(|| attribute.to_owned(), |d| d.name.to_owned())
}

pub fn canonical_sub_attribute(
    resource: Resource,
    schema: &str,
    attribute: &str,
    sub_attribute: &str,
) -> String {
    sub_attribute_def(resource, schema, attribute, sub_attribute)
        .map_or_else(|| sub_attribute.to_owned(), |d| d.name.to_owned())
}

/// The proto `schema` for a URN: "" for the resource's core schema, the
/// canonical spelling for a known extension, any other URN as sent.
pub fn proto_schema(resource: Resource, urn: &str) -> String {
    if urn.eq_ignore_ascii_case(resource.core_schema()) {
        return String::new();
    }
    resource
        .extensions()
        .iter()
        .find(|(known, _)| urn.eq_ignore_ascii_case(known))
        .map_or_else(|| urn.to_owned(), |(known, _)| (*known).to_owned())
}

/// The core and extension URNs the adapter knows for `resource`.
pub fn known_schemas(resource: Resource) -> impl Iterator<Item = &'static str> {
    std::iter::once(resource.core_schema()).chain(resource.extensions().iter().map(|(urn, _)| *urn))
}

/// What a path string (or a pathless PATCH key) names.
#[derive(Debug, PartialEq)]
pub enum PathTarget {
    /// A whole schema, e.g. the enterprise extension URN alone.
    Schema(String),
    Attribute(AttributePath),
}

pub fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.is_char_boundary(prefix.len())
        && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// True for keys written as a URN (extension objects, qualified names).
pub fn is_urn(key: &str) -> bool {
    key.len() > 4 && starts_with_ignore_case(key, "urn:")
}

/// Letters, digits, `-`, `_` and `$` (for `$ref`), per RFC 7643 §2.1 ATTRNAME.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
}

/// Parses `[urn:]attribute[.subAttribute]` of `resource` into a canonical
/// path; `None` when the text is not a well-formed attribute path.
pub fn parse_attr_path(resource: Resource, text: &str) -> Option<PathTarget> {
    let (mut schema, rest) = if starts_with_ignore_case(text, "urn:") {
        if let Some(urn) = known_schemas(resource).find(|urn| text.eq_ignore_ascii_case(urn)) {
            return Some(PathTarget::Schema(proto_schema(resource, urn)));
        }
        let known =
            known_schemas(resource).find(|urn| starts_with_ignore_case(text, &format!("{urn}:")));
        match known {
            Some(urn) => (proto_schema(resource, urn), &text[urn.len() + 1..]),
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
    if resource == Resource::User
        && schema.is_empty()
        && !text.contains(':')
        && enterprise_only(attribute)
    {
        schema = ENTERPRISE_USER.to_owned();
    }
    Some(PathTarget::Attribute(AttributePath {
        attribute: canonical_attribute(resource, &schema, attribute),
        sub_attribute: if sub_attribute.is_empty() {
            String::new()
        } else {
            canonical_sub_attribute(resource, &schema, attribute, sub_attribute)
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

/// Reads a string attribute value; `what` names it in the error.
pub fn text(value: Json, what: &str) -> Result<String, ScimError> {
    match value {
        Json::String(s) => Ok(s),
        other => Err(ScimError::invalid_value(format!(
            "{what} must be a string, not {other}"
        ))),
    }
}

/// Reads a boolean, also from Entra's `"True"`/`"False"`.
pub fn boolean(value: Json, what: &str) -> Result<bool, ScimError> {
    match &value {
        Json::Bool(b) => Some(*b),
        Json::String(s) => bool_from_text(s),
        _ => None,
    }
    .ok_or_else(|| ScimError::invalid_value(format!("{what} must be a boolean, not {value}")))
}

/// Reads a complex attribute value.
pub fn object(value: Json, what: &str) -> Result<Map<String, Json>, ScimError> {
    match value {
        Json::Object(map) => Ok(map),
        other => Err(ScimError::invalid_value(format!(
            "{what} must be an object, not {other}"
        ))),
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
        assert_eq!(
            parse_attr_path(Resource::User, "UserName"),
            Some(attr("", "userName", ""))
        );
        assert_eq!(
            parse_attr_path(Resource::User, "NAME.givenname"),
            Some(attr("", "name", "givenName"))
        );
        assert_eq!(
            parse_attr_path(Resource::User, "phoneNumbers"),
            Some(attr("", "phoneNumbers", ""))
        );
        assert_eq!(
            parse_attr_path(Resource::User, "META.LASTMODIFIED"),
            Some(attr("", "meta", "lastModified"))
        );
    }

    #[test]
    fn splits_schema_urns() {
        assert_eq!(
            parse_attr_path(
                Resource::User,
                "urn:ietf:params:scim:schemas:core:2.0:User:userName"
            ),
            Some(attr("", "userName", ""))
        );
        assert_eq!(
            parse_attr_path(
                Resource::User,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
            ),
            Some(attr(ENTERPRISE_USER, "manager", "value"))
        );
        assert_eq!(
            parse_attr_path(
                Resource::User,
                "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER"
            ),
            Some(attr(ENTERPRISE_USER, "employeeNumber", ""))
        );
        assert_eq!(
            parse_attr_path(Resource::User, "urn:example:custom:1.0:User:badge"),
            Some(attr("urn:example:custom:1.0:User", "badge", ""))
        );
        assert_eq!(
            parse_attr_path(Resource::User, ENTERPRISE_USER),
            Some(PathTarget::Schema(ENTERPRISE_USER.into()))
        );
    }

    #[test]
    fn unqualified_enterprise_names_resolve_to_the_extension() {
        assert_eq!(
            parse_attr_path(Resource::User, "Manager.Value"),
            Some(attr(ENTERPRISE_USER, "manager", "value"))
        );
        assert_eq!(
            parse_attr_path(Resource::User, "department"),
            Some(attr(ENTERPRISE_USER, "department", ""))
        );
        assert_eq!(
            parse_attr_path(
                Resource::User,
                "urn:ietf:params:scim:schemas:core:2.0:User:department"
            ),
            Some(attr("", "department", ""))
        );
    }

    #[test]
    fn group_paths_use_the_group_schema() {
        let group = |text| parse_attr_path(Resource::Group, text);
        assert_eq!(group("DISPLAYNAME"), Some(attr("", "displayName", "")));
        assert_eq!(group("Members.Value"), Some(attr("", "members", "value")));
        assert_eq!(
            group("urn:ietf:params:scim:schemas:core:2.0:Group:members.$REF"),
            Some(attr("", "members", "$ref"))
        );
        assert_eq!(group(CORE_GROUP), Some(PathTarget::Schema(String::new())));
        // Enterprise names mean nothing special on a group.
        assert_eq!(group("manager"), Some(attr("", "manager", "")));
        assert_eq!(
            group("urn:ietf:params:scim:schemas:core:2.0:User:userName"),
            Some(attr(CORE_USER, "userName", ""))
        );
        assert_eq!(
            kind_of(Resource::Group, "", "members", "value"),
            Some(Kind::String)
        );
        assert_eq!(kind_of(Resource::Group, "", "userName", ""), None);
        assert_eq!(kind_of(Resource::Group, "", "password", ""), None);
        assert_eq!(
            Resource::Group.location("https://h", "g1"),
            "https://h/scim/v2/Groups/g1"
        );
    }

    #[test]
    fn user_groups_are_known_and_read_only() {
        let groups = attribute_def(Resource::User, "", "Groups");
        assert!(groups.is_some_and(|d| matches!(d.mutability, Mutability::ReadOnly)));
        assert_eq!(
            parse_attr_path(Resource::User, "groups.display"),
            Some(attr("", "groups", "display"))
        );
    }

    #[test]
    fn value_readers_check_types() {
        assert_eq!(text(Json::from("a"), "x"), Ok("a".to_owned()));
        assert!(text(Json::from(1), "x").is_err());
        assert_eq!(boolean(Json::from("FALSE"), "x"), Ok(false));
        assert!(boolean(Json::from("no"), "x").is_err());
        assert!(object(Json::from("a"), "x").is_err());
        assert!(object(Json::Object(Map::new()), "x").is_ok());
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["", ".", "name.", "a.b.c", "na me", "emails[", "urn:"] {
            assert_eq!(parse_attr_path(Resource::User, bad), None, "{bad}");
        }
    }

    #[test]
    fn knows_the_booleans() {
        assert_eq!(
            kind_of(Resource::User, "", "active", ""),
            Some(Kind::Boolean)
        );
        assert_eq!(
            kind_of(Resource::User, "", "emails", "PRIMARY"),
            Some(Kind::Boolean)
        );
        assert_eq!(
            kind_of(Resource::User, "", "userName", ""),
            Some(Kind::String)
        );
        assert_eq!(
            kind_of(Resource::User, "", "nickName", ""),
            Some(Kind::String)
        );
        assert_eq!(
            kind_of(Resource::User, "", "x509Certificates", "value"),
            Some(Kind::Binary)
        );
        assert_eq!(kind_of(Resource::User, "", "shoeSize", ""), None);
        assert_eq!(bool_from_text("False"), Some(false));
        assert_eq!(bool_from_text("TRUE"), Some(true));
        assert_eq!(bool_from_text("yes"), None);
    }
}
