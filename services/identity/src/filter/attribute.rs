//! What an attribute path names on a row: a column, a field of the
//! `attributes` document, a multi-valued attribute's elements, each with the
//! [`Kind`] that decides how it compares. The catalog ([`crate::catalog`])
//! gives the kinds of the document's attributes.

use identity_proto::v1::AttributePath;

use super::bounds::{FilterError, invalid};
use super::sql::{Param, Sql};
use crate::attr::{
    CORE_URN, ENTERPRISE_URN, Resource, Schema, attribute_parts, display_path, element_attribute,
    schema_of,
};
use crate::catalog::{self, BagAttr, user_bag_attribute};

/// What a compared value is, which decides the operators and the SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text {
        case_exact: bool,
    },
    /// Compared exactly; never ordered.
    Binary,
    Bool,
    Time,
    Uuid,
    /// A JSONB value of unknown type (unregistered extensions).
    Json,
}

pub(super) const TEXT_CI: Kind = Kind::Text { case_exact: false };
pub(super) const TEXT_CS: Kind = Kind::Text { case_exact: true };

impl Kind {
    fn of(ty: catalog::Type) -> Kind {
        match ty {
            catalog::Type::String { case_exact } => Kind::Text { case_exact },
            catalog::Type::Binary => Kind::Binary,
            catalog::Type::Boolean => Kind::Bool,
        }
    }
}

/// A SQL expression a comparison can apply to.
#[derive(Debug, Clone)]
pub(crate) struct Operand {
    pub sql: Sql<()>,
    pub kind: Kind,
    pub nullable: bool,
}

pub(super) fn operand(sql: &str, kind: Kind, nullable: bool) -> Operand {
    Operand {
        sql: Sql::text(sql),
        kind,
        nullable,
    }
}

impl Operand {
    /// `before` + this operand + `after`, as another operand.
    pub(crate) fn wrapped(&self, before: &str, after: &str, kind: Kind, nullable: bool) -> Operand {
        let mut sql = Sql::text(before);
        sql.push(&self.sql).push_sql(after);
        Operand {
            sql,
            kind,
            nullable,
        }
    }
}

/// What a row-level path names.
pub(crate) enum RowAttr {
    Scalar(Operand),
    /// A multi-valued attribute itself (`None`) or one of its sub-attributes,
    /// as an expression over the element `e`.
    Multi(Multi, Option<Operand>),
    /// A single-valued complex attribute (`name`): only `pr` applies, which
    /// is this SQL.
    Complex {
        name: &'static str,
        present: String,
    },
    /// The resource's schema URNs, derived from what it holds.
    Schemas,
}

/// The multi-valued attributes a filter can look into, each matched by an
/// EXISTS subquery so no element is ever loaded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Multi {
    /// `users.emails`, a JSONB array.
    Emails,
    /// A multi-valued attribute of the user's `attributes` document.
    Bag(&'static BagAttr),
    /// A group's rows in `group_members` (primary key probes); one is `m`.
    Members,
    /// A user's rows in `group_members`; one is `g`.
    Groups,
}

const EMAIL_ELEMENTS: &str = "EXISTS (SELECT 1 FROM jsonb_array_elements(users.emails) AS e WHERE ";
const MEMBER_ROWS: &str = "EXISTS (SELECT 1 FROM group_members AS m WHERE m.tenant_id = groups.tenant_id AND m.group_id = groups.group_id AND ";
const GROUP_ROWS: &str = "EXISTS (SELECT 1 FROM group_members AS g WHERE g.tenant_id = users.tenant_id AND g.user_id = users.user_id";

/// The full-name rule (given + family, else formatted, else display name)
/// over the user row `alias`; NULL when all are empty.
fn full_name_sql(alias: &str) -> String {
    format!(
        "coalesce(nullif(concat_ws(' ', nullif(btrim({alias}.given_name), ''), nullif(btrim({alias}.family_name), '')), ''), nullif(btrim({alias}.name_formatted), ''), nullif(btrim({alias}.display_name), ''))"
    )
}

impl Multi {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Multi::Emails => "emails",
            Multi::Bag(def) => def.name,
            Multi::Members => "members",
            Multi::Groups => "groups",
        }
    }

    /// The multi-valued attribute `name` of `resource`.
    pub(crate) fn of(resource: Resource, name: &str) -> Option<Multi> {
        match resource {
            Resource::User if name.eq_ignore_ascii_case("emails") => Some(Multi::Emails),
            Resource::User if name.eq_ignore_ascii_case("groups") => Some(Multi::Groups),
            Resource::User => user_bag_attribute(name)
                .filter(|def| def.multi)
                .map(Multi::Bag),
            Resource::Group if name.eq_ignore_ascii_case("members") => Some(Multi::Members),
            Resource::Group => None,
        }
    }

    /// The JSONB array of a document-backed attribute; NULL when the stored
    /// value is not an array, so no element matches.
    pub(crate) fn array(self) -> Option<String> {
        match self {
            Multi::Emails => Some("users.emails".into()),
            Multi::Bag(def) => Some(format!(
                "(CASE WHEN jsonb_typeof(users.attributes->'{0}') = 'array' THEN users.attributes->'{0}' END)",
                def.name
            )),
            Multi::Members | Multi::Groups => None,
        }
    }

    /// Opens the EXISTS subquery; the element condition and ")" follow.
    pub(super) fn exists(self) -> String {
        match self {
            Multi::Emails => EMAIL_ELEMENTS.to_owned(),
            Multi::Bag(_) => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements({}) AS e WHERE ",
                self.array().unwrap_or_default()
            ),
            Multi::Members => MEMBER_ROWS.to_owned(),
            Multi::Groups => format!("{GROUP_ROWS} AND "),
        }
    }

    /// `attr pr`: the attribute has at least one element.
    pub(super) fn present(self) -> String {
        match self {
            Multi::Emails => "jsonb_array_length(users.emails) > 0".to_owned(),
            Multi::Bag(_) => format!(
                "coalesce(jsonb_array_length({}) > 0, false)",
                self.array().unwrap_or_default()
            ),
            Multi::Members => "groups.member_count > 0".to_owned(),
            Multi::Groups => format!("{GROUP_ROWS})"),
        }
    }

    /// What a comparison inside `attr[...]` names: the element's
    /// sub-attribute, by its name and as an operand.
    pub(crate) fn element_field(
        self,
        path: &AttributePath,
    ) -> Result<(&str, Operand), FilterError> {
        if path.value_filter.is_some() {
            return Err(invalid(format!(
                "'{}': value paths cannot be nested",
                display_path(path)
            )));
        }
        let name = element_attribute(path, self.name());
        let field = self.field(name).ok_or_else(|| {
            invalid(format!(
                "unknown attribute '{}.{name}' in filter",
                self.name()
            ))
        })?;
        Ok((name, field))
    }

    /// The sub-attribute `name` of an element, `e` for JSON arrays.
    pub(crate) fn field(self, name: &str) -> Option<Operand> {
        self.field_of(name, "e")
    }

    /// The sub-attribute `name` of the JSON element `elem`; the
    /// table-backed attributes always use their own alias.
    pub(crate) fn field_of(self, name: &str, elem: &str) -> Option<Operand> {
        let json = |name: &str, kind: Kind| match kind {
            Kind::Bool => operand(
                &format!("coalesce(({elem}->'{name}') = 'true'::jsonb, false)"),
                Kind::Bool,
                false,
            ),
            _ => operand(&format!("({elem}->>'{name}')"), kind, true),
        };
        let lower = name.to_ascii_lowercase();
        Some(match (self, lower.as_str()) {
            (Multi::Emails, "value" | "type" | "display") => json(&lower, TEXT_CI),
            (Multi::Emails, "primary") => json("primary", Kind::Bool),
            (Multi::Emails, _) => return None,
            (Multi::Bag(def), _) => {
                let sub = def.sub(name)?;
                json(sub.name, Kind::of(sub.ty))
            }
            (Multi::Members, "value") => operand("m.user_id", Kind::Uuid, false),
            (Multi::Members, "display") => operand(
                &format!(
                    "(SELECT coalesce({}, mu.user_name) FROM users AS mu WHERE mu.tenant_id = m.tenant_id AND mu.user_id = m.user_id)",
                    full_name_sql("mu")
                ),
                TEXT_CI,
                false,
            ),
            // Every member is a User (the only kind the adapter shows).
            (Multi::Members, "type") => operand("'User'", TEXT_CS, false),
            (Multi::Groups, "value") => operand("g.group_id", Kind::Uuid, false),
            (Multi::Groups, "display") => operand(
                "(SELECT gg.display_name FROM groups AS gg WHERE gg.tenant_id = g.tenant_id AND gg.group_id = g.group_id)",
                TEXT_CI,
                false,
            ),
            (Multi::Members | Multi::Groups, _) => return None,
        })
    }
}

fn unknown_attribute(path: &AttributePath) -> FilterError {
    invalid(format!("unknown attribute '{}'", display_path(path)))
}

/// A comparison path may not carry a value filter; `attr[filter]` is a ValuePath.
fn check_no_value_filter(path: &AttributePath) -> Result<(), FilterError> {
    if path.value_filter.is_some() {
        return Err(invalid(format!(
            "'{}': a comparison cannot have a value filter; use attribute[filter]",
            display_path(path)
        )));
    }
    Ok(())
}

/// The lowercase `attr` or `attr.sub` of a path, for matching names.
fn lower_key(path: &AttributePath) -> String {
    let (attr, sub) = attribute_parts(path);
    if sub.is_empty() {
        attr.to_ascii_lowercase()
    } else {
        format!("{attr}.{sub}").to_ascii_lowercase()
    }
}

/// `$ref` and `meta.location` are URLs the adapter builds from its public
/// base, which the service does not know.
fn not_stored(path: &AttributePath, instead: &str) -> FilterError {
    invalid(format!(
        "'{}' is derived by the SCIM endpoint and cannot be filtered or sorted on; use {instead}",
        display_path(path)
    ))
}

/// An attribute of an unregistered extension: the document's field under
/// the extension URN and the attribute name, both exact keys (bound).
fn extension_attribute(table: &str, urn: &str, path: &AttributePath) -> Operand {
    let (attr, sub) = attribute_parts(path);
    let mut sql = Sql::text(&format!("({table}.attributes -> "));
    sql.push_bind(Param::Text(urn.to_owned()));
    for key in [attr, sub].into_iter().filter(|k| !k.is_empty()) {
        sql.push_sql(" -> ").push_bind(Param::Text(key.to_owned()));
    }
    sql.push_sql(")");
    Operand {
        sql,
        kind: Kind::Json,
        nullable: true,
    }
}

/// What `path` names on a row of `resource`.
pub(crate) fn resolve(path: &AttributePath, resource: Resource) -> Result<RowAttr, FilterError> {
    check_no_value_filter(path)?;
    match resource {
        Resource::User => user_attribute(path),
        Resource::Group => group_attribute(path),
    }
}

/// Group attributes: the columns of `groups` and its members.
fn group_attribute(path: &AttributePath) -> Result<RowAttr, FilterError> {
    if let Schema::Other(urn) = schema_of(path, Resource::Group) {
        // The User schemas are registered, and not a group's.
        if urn.eq_ignore_ascii_case(CORE_URN) || urn.eq_ignore_ascii_case(ENTERPRISE_URN) {
            return Err(unknown_attribute(path));
        }
        return Ok(RowAttr::Scalar(extension_attribute("groups", urn, path)));
    }
    let column = |sql, kind, nullable| Ok(RowAttr::Scalar(operand(sql, kind, nullable)));
    let (attr, sub) = attribute_parts(path);
    match lower_key(path).as_str() {
        "id" => column("groups.group_id", Kind::Uuid, false),
        "displayname" => column("groups.display_name", TEXT_CI, false),
        "externalid" => column("groups.external_id", TEXT_CS, true),
        "meta.created" => column("groups.created_at", Kind::Time, false),
        "meta.lastmodified" => column("groups.updated_at", Kind::Time, false),
        "meta.resourcetype" => column("'Group'", TEXT_CS, false),
        "meta.version" => column(r#"('W/"' || groups.version || '"')"#, TEXT_CS, false),
        "meta.location" => Err(not_stored(path, "id")),
        "schemas" => Ok(RowAttr::Schemas),
        "members.$ref" => Err(not_stored(path, "members.value")),
        "members" => Ok(RowAttr::Multi(Multi::Members, None)),
        _ if attr.eq_ignore_ascii_case("members") => Multi::Members
            .field(sub)
            .map(|o| RowAttr::Multi(Multi::Members, Some(o)))
            .ok_or_else(|| unknown_attribute(path)),
        _ => Err(unknown_attribute(path)),
    }
}

pub(super) const NAME_PRESENT: &str = "(users.name_formatted IS NOT NULL OR users.family_name IS NOT NULL OR users.given_name IS NOT NULL OR users.middle_name IS NOT NULL OR users.honorific_prefix IS NOT NULL OR users.honorific_suffix IS NOT NULL)";

fn user_attribute(path: &AttributePath) -> Result<RowAttr, FilterError> {
    let unknown = || unknown_attribute(path);
    let (attr, sub) = attribute_parts(path);
    let key = lower_key(path);
    let schema = schema_of(path, Resource::User);
    let column = |sql: &str, kind, nullable| Ok(RowAttr::Scalar(operand(sql, kind, nullable)));
    if let Schema::Other(urn) = schema {
        return Ok(RowAttr::Scalar(extension_attribute("users", urn, path)));
    }
    // Enterprise attributes are also accepted without their URN; core ones
    // are not accepted with the enterprise URN.
    let core = schema == Schema::Core;
    match key.as_str() {
        "id" if core => column("users.user_id", Kind::Uuid, false),
        "username" if core => column("users.user_name", TEXT_CI, false),
        "externalid" if core => column("users.external_id", TEXT_CS, true),
        "displayname" if core => column("users.display_name", TEXT_CI, true),
        "name" if core => Ok(RowAttr::Complex {
            name: "name",
            present: NAME_PRESENT.to_owned(),
        }),
        "name.formatted" if core => column("users.name_formatted", TEXT_CI, true),
        "name.familyname" if core => column("users.family_name", TEXT_CI, true),
        "name.givenname" if core => column("users.given_name", TEXT_CI, true),
        "name.middlename" if core => column("users.middle_name", TEXT_CI, true),
        "name.honorificprefix" if core => column("users.honorific_prefix", TEXT_CI, true),
        "name.honorificsuffix" if core => column("users.honorific_suffix", TEXT_CI, true),
        "active" if core => column("users.active", Kind::Bool, false),
        "meta.created" if core => column("users.created_at", Kind::Time, false),
        "meta.lastmodified" if core => column("users.updated_at", Kind::Time, false),
        "meta.resourcetype" if core => column("'User'", TEXT_CS, false),
        "meta.version" if core => column(r#"('W/"' || users.version || '"')"#, TEXT_CS, false),
        "meta.location" if core => Err(not_stored(path, "id")),
        "schemas" if core => Ok(RowAttr::Schemas),
        "password" if core => Err(invalid(
            "'password' is never stored: it cannot be filtered or sorted on",
        )),
        "groups.$ref" if core => Err(not_stored(path, "groups.value")),
        "employeenumber" => column("users.employee_number", TEXT_CI, true),
        "costcenter" => column("users.cost_center", TEXT_CI, true),
        "organization" => column("users.organization", TEXT_CI, true),
        "division" => column("users.division", TEXT_CI, true),
        "department" => column("users.department", TEXT_CI, true),
        "manager" | "manager.value" => column("users.manager_id", Kind::Uuid, true),
        "manager.displayname" => column(
            &format!(
                "(SELECT {} FROM users AS mgr WHERE mgr.tenant_id = users.tenant_id AND mgr.user_id = users.manager_id AND mgr.deleted_at IS NULL)",
                full_name_sql("mgr")
            ),
            TEXT_CI,
            true,
        ),
        "manager.$ref" => Err(not_stored(path, "manager.value")),
        _ if core => core_multi_or_bag(path, attr, sub).ok_or_else(unknown)?,
        _ => Err(unknown()),
    }
}

/// A multi-valued core attribute (emails, groups, the document's plural
/// attributes) or a single-valued document attribute such as `title`.
fn core_multi_or_bag(
    path: &AttributePath,
    attr: &str,
    sub: &str,
) -> Option<Result<RowAttr, FilterError>> {
    if let Some(multi) = Multi::of(Resource::User, attr) {
        if sub.is_empty() {
            return Some(Ok(RowAttr::Multi(multi, None)));
        }
        return Some(
            multi
                .field(sub)
                .map(|o| RowAttr::Multi(multi, Some(o)))
                .ok_or_else(|| unknown_attribute(path)),
        );
    }
    let def = user_bag_attribute(attr)?;
    if !sub.is_empty() {
        return Some(Err(invalid(format!(
            "'{}': {} has no sub-attributes",
            display_path(path),
            def.name
        ))));
    }
    Some(Ok(RowAttr::Scalar(operand(
        &format!("(users.attributes->>'{}')", def.name),
        Kind::of(def.ty),
        true,
    ))))
}
