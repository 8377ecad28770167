//! Compiles a proto `Filter` tree into one SQL boolean expression over the
//! `users` or the `groups` table. Every value is a bound parameter; nothing
//! is evaluated in memory, so a filtered list is one indexed query.
//!
//! Attributes with a column compare the column; the RFC 7643 attributes
//! kept in the `attributes` document ([`crate::catalog`]) compare its JSONB
//! fields, multi-valued ones through an EXISTS over their elements; the
//! attributes of unregistered extensions compare the document by exact key
//! (`eq`, `ne`, `co`, `sw`, `ew`, `pr` only, their type being unknown).
//! The same attribute resolution serves sorting ([`crate::sort`]).

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, TypedExpressionType, ValidGrouping,
    is_aggregate,
};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Text, Timestamptz};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::{AttributePath, Comparison, Filter, ValuePath};
use prost_types::value::Kind as ValueKind;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::attr::{
    CORE_URN, ENTERPRISE_URN, GROUP_URN, Resource, Schema, attribute_parts, check_text,
    display_path, element_attribute, schema_of,
};
use crate::catalog::{self, BagAttr, user_bag_attribute};

/// Deeper trees are refused; no IdP sends anything close.
pub(crate) const MAX_DEPTH: usize = 32;

/// Comparisons one filter may hold; no IdP sends anything close, and each
/// one costs SQL text and a bound parameter.
pub(crate) const MAX_TERMS: usize = 64;

/// Why a filter cannot be compiled; the message names the culprit.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(String);

fn invalid(message: impl Into<String>) -> FilterError {
    FilterError(message.into())
}

/// SQL text with bound parameters, usable as a diesel expression of SQL
/// type `ST` on the table it was built for.
pub(crate) struct Sql<ST> {
    pieces: Vec<Piece>,
    sql_type: PhantomData<fn() -> ST>,
}

/// A compiled WHERE condition.
pub(crate) type SqlFilter = Sql<Bool>;

impl<ST> Clone for Sql<ST> {
    fn clone(&self) -> Self {
        Sql::from_pieces(self.pieces.clone())
    }
}

impl<ST> std::fmt::Debug for Sql<ST> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.pieces).finish()
    }
}

impl<ST> Sql<ST> {
    fn from_pieces(pieces: Vec<Piece>) -> Self {
        Sql {
            pieces,
            sql_type: PhantomData,
        }
    }

    /// Fixed SQL without parameters.
    pub(crate) fn text(sql: &str) -> Self {
        Sql::from_pieces(vec![Piece::Sql(sql.to_owned())])
    }

    pub(crate) fn push_sql(&mut self, sql: &str) -> &mut Self {
        match self.pieces.last_mut() {
            Some(Piece::Sql(last)) => last.push_str(sql),
            _ => self.pieces.push(Piece::Sql(sql.to_owned())),
        }
        self
    }

    pub(crate) fn push_bind(&mut self, param: Param) -> &mut Self {
        self.pieces.push(Piece::Bind(param));
        self
    }

    /// Appends another fragment (its parameters included).
    pub(crate) fn push<T>(&mut self, other: &Sql<T>) -> &mut Self {
        for piece in &other.pieces {
            match piece {
                Piece::Sql(sql) => {
                    self.push_sql(sql);
                }
                Piece::Bind(param) => {
                    self.push_bind(param.clone());
                }
            }
        }
        self
    }

    /// The same SQL read as another SQL type.
    #[cfg(test)]
    pub(crate) fn typed<T>(self) -> Sql<T> {
        Sql::from_pieces(self.pieces)
    }

    /// Feeds the SQL and its parameter values to `hasher`: equal digests
    /// mean the same query, however the filter was spelled.
    pub(crate) fn digest(&self, hasher: &mut Sha256) {
        for piece in &self.pieces {
            match piece {
                Piece::Sql(sql) => {
                    hasher.update(b"S");
                    hasher.update((sql.len() as u64).to_be_bytes());
                    hasher.update(sql.as_bytes());
                }
                Piece::Bind(Param::Text(v)) => {
                    hasher.update(b"T");
                    hasher.update((v.len() as u64).to_be_bytes());
                    hasher.update(v.as_bytes());
                }
                Piece::Bind(Param::Bool(v)) => hasher.update([b'B', u8::from(*v)]),
                Piece::Bind(Param::Time(v)) => {
                    hasher.update(b"D");
                    hasher.update(v.timestamp_micros().to_be_bytes());
                }
                Piece::Bind(Param::Uuid(v)) => {
                    hasher.update(b"U");
                    hasher.update(v.as_bytes());
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Sql(String),
    Bind(Param),
}

/// A bound parameter value.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
    Uuid(Uuid),
}

impl<ST> QueryFragment<Pg> for Sql<ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Every filter shape yields different SQL: do not grow the statement cache.
        out.unsafe_to_cache_prepared();
        for piece in &self.pieces {
            match piece {
                Piece::Sql(sql) => out.push_sql(sql),
                Piece::Bind(Param::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                Piece::Bind(Param::Bool(v)) => out.push_bind_param::<Bool, _>(v)?,
                Piece::Bind(Param::Time(v)) => out.push_bind_param::<Timestamptz, _>(v)?,
                Piece::Bind(Param::Uuid(v)) => {
                    out.push_bind_param::<diesel::sql_types::Uuid, _>(v)?
                }
            }
        }
        Ok(())
    }
}

impl<ST> QueryId for Sql<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST: TypedExpressionType> Expression for Sql<ST> {
    type SqlType = ST;
}

impl<ST, QS> AppearsOnTable<QS> for Sql<ST> where Sql<ST>: Expression {}

impl<ST, QS> SelectableExpression<QS> for Sql<ST> where Sql<ST>: Expression {}

impl<ST> ValidGrouping<()> for Sql<ST> {
    type IsAggregate = is_aggregate::Never;
}

/// Checks a filter's bounds without recursing, before anything walks it:
/// nesting depth, number of comparisons, and NUL in its attribute names and
/// string values (Postgres refuses NUL in a parameter).
pub(crate) fn check_bounds(filter: &Filter) -> Result<(), String> {
    let mut pending = vec![(filter, 0_usize)];
    let mut terms = 0;
    while let Some((filter, depth)) = pending.pop() {
        if depth > MAX_DEPTH {
            return Err(format!(
                "the filter is nested more than {MAX_DEPTH} levels deep"
            ));
        }
        let path = match filter.expression.as_ref() {
            None => None,
            Some(Expr::Comparison(c)) => {
                terms += 1;
                if terms > MAX_TERMS {
                    return Err(format!("the filter has more than {MAX_TERMS} comparisons"));
                }
                if let Some(ValueKind::StringValue(text)) =
                    c.value.as_ref().and_then(|v| v.kind.as_ref())
                {
                    check_text("a filter value", text)?;
                }
                c.path.as_deref()
            }
            Some(Expr::And(l) | Expr::Or(l)) => {
                pending.extend(l.operands.iter().map(|f| (f, depth + 1)));
                None
            }
            Some(Expr::Not(inner)) => {
                pending.push((inner, depth + 1));
                None
            }
            Some(Expr::ValuePath(vp)) => {
                if let Some(inner) = vp.filter.as_deref() {
                    pending.push((inner, depth + 1));
                }
                vp.path.as_deref()
            }
        };
        if let Some(path) = path {
            check_path_text(path)?;
            if let Some(inner) = path.value_filter.as_deref() {
                pending.push((inner, depth + 1));
            }
        }
    }
    Ok(())
}

/// Refuses NUL in the names of a path (they reach SQL as parameters).
pub(crate) fn check_path_text(path: &AttributePath) -> Result<(), String> {
    for name in [&path.schema, &path.attribute, &path.sub_attribute] {
        check_text("an attribute name", name)?;
    }
    Ok(())
}

/// Compiles `filter` to SQL over `users` or over `groups`.
pub(crate) fn compile(filter: &Filter, resource: Resource) -> Result<SqlFilter, FilterError> {
    check_bounds(filter).map_err(FilterError)?;
    let mut compiler = Compiler {
        out: Sql::from_pieces(Vec::new()),
        resource,
    };
    compiler.filter(filter, Scope::Row)?;
    Ok(compiler.out)
}

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

const TEXT_CI: Kind = Kind::Text { case_exact: false };
const TEXT_CS: Kind = Kind::Text { case_exact: true };

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

fn operand(sql: &str, kind: Kind, nullable: bool) -> Operand {
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
    fn of(resource: Resource, name: &str) -> Option<Multi> {
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
    fn exists(self) -> String {
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
    fn present(self) -> String {
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

#[derive(Debug, Clone, Copy)]
enum Scope {
    Row,
    /// Inside `attr[...]`, where paths name sub-attributes of one element.
    Element(Multi),
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

const NAME_PRESENT: &str = "(users.name_formatted IS NOT NULL OR users.family_name IS NOT NULL OR users.given_name IS NOT NULL OR users.middle_name IS NOT NULL OR users.honorific_prefix IS NOT NULL OR users.honorific_suffix IS NOT NULL)";

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

fn operator_name(op: Operator) -> &'static str {
    match op {
        Operator::Unspecified => "unspecified",
        Operator::Eq => "eq",
        Operator::Ne => "ne",
        Operator::Co => "co",
        Operator::Sw => "sw",
        Operator::Ew => "ew",
        Operator::Pr => "pr",
        Operator::Gt => "gt",
        Operator::Ge => "ge",
        Operator::Lt => "lt",
        Operator::Le => "le",
    }
}

fn sql_operator(op: Operator) -> &'static str {
    match op {
        Operator::Ne => "<>",
        Operator::Gt => ">",
        Operator::Ge => ">=",
        Operator::Lt => "<",
        Operator::Le => "<=",
        Operator::Co | Operator::Sw | Operator::Ew => "LIKE",
        _ => "=",
    }
}

/// Escapes LIKE wildcards so user input only matches literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

struct Compiler {
    out: Sql<Bool>,
    resource: Resource,
}

impl Compiler {
    fn sql(&mut self, sql: &str) {
        self.out.push_sql(sql);
    }

    fn bind(&mut self, param: Param) {
        self.out.push_bind(param);
    }

    fn emit(&mut self, o: &Operand) {
        self.out.push(&o.sql);
    }

    /// Recursion is safe: [`check_bounds`] has bounded the depth.
    fn filter(&mut self, filter: &Filter, scope: Scope) -> Result<(), FilterError> {
        match filter.expression.as_ref() {
            None => Err(invalid("empty filter expression")),
            Some(Expr::Comparison(c)) => self.comparison(c, scope),
            Some(Expr::And(l)) => self.logical(&l.operands, " AND ", scope),
            Some(Expr::Or(l)) => self.logical(&l.operands, " OR ", scope),
            Some(Expr::Not(inner)) => {
                self.sql("NOT (");
                self.filter(inner, scope)?;
                self.sql(")");
                Ok(())
            }
            Some(Expr::ValuePath(vp)) => self.value_path(vp, scope),
        }
    }

    fn logical(
        &mut self,
        operands: &[Filter],
        joiner: &str,
        scope: Scope,
    ) -> Result<(), FilterError> {
        if operands.is_empty() {
            return Err(invalid("'and'/'or' needs operands"));
        }
        self.sql("(");
        for (i, operand) in operands.iter().enumerate() {
            if i > 0 {
                self.sql(joiner);
            }
            self.filter(operand, scope)?;
        }
        self.sql(")");
        Ok(())
    }

    fn value_path(&mut self, vp: &ValuePath, scope: Scope) -> Result<(), FilterError> {
        let path = vp
            .path
            .as_ref()
            .ok_or_else(|| invalid("value path without an attribute"))?;
        if let Scope::Element(_) = scope {
            return Err(invalid(format!(
                "'{}': value paths cannot be nested",
                display_path(path)
            )));
        }
        let multi = (schema_of(path, self.resource) == Schema::Core
            && path.sub_attribute.is_empty())
        .then(|| Multi::of(self.resource, &path.attribute))
        .flatten()
        .ok_or_else(|| {
            invalid(format!(
                "unknown multi-valued attribute '{}' in filter",
                display_path(path)
            ))
        })?;
        let inner = vp
            .filter
            .as_ref()
            .ok_or_else(|| invalid(format!("{}[...] needs a filter", multi.name())))?;
        self.sql(&multi.exists());
        self.filter(inner, Scope::Element(multi))?;
        self.sql(")");
        Ok(())
    }

    fn comparison(&mut self, c: &Comparison, scope: Scope) -> Result<(), FilterError> {
        let path = c
            .path
            .as_deref()
            .ok_or_else(|| invalid("comparison without an attribute"))?;
        let op = Operator::try_from(c.operator)
            .ok()
            .filter(|op| *op != Operator::Unspecified)
            .ok_or_else(|| invalid(format!("'{}': unknown operator", display_path(path))))?;
        let value = c
            .value
            .clone()
            .map(identity_proto::value_to_json)
            .unwrap_or(Json::Null);
        let what = display_path(path);
        match scope {
            Scope::Element(multi) => {
                if path.value_filter.is_some() {
                    return Err(invalid(format!("'{what}': value paths cannot be nested")));
                }
                let name = element_attribute(path, multi.name());
                let field = multi.field(name).ok_or_else(|| {
                    invalid(format!(
                        "unknown attribute '{}.{name}' in filter",
                        multi.name()
                    ))
                })?;
                self.compare(&field, op, value, &what)
            }
            Scope::Row => match resolve(path, self.resource)? {
                RowAttr::Scalar(o) => self.compare(&o, op, value, &what),
                RowAttr::Multi(multi, None) if op == Operator::Pr => {
                    self.sql(&multi.present());
                    Ok(())
                }
                RowAttr::Multi(multi, field) => {
                    // `attr op x` compares the value sub-attribute.
                    let field = field.or_else(|| multi.field("value")).ok_or_else(|| {
                        invalid(format!(
                            "'{what}' is complex: compare one of its sub-attributes, e.g. {what}.type"
                        ))
                    })?;
                    self.sql(&multi.exists());
                    self.compare(&field, op, value, &what)?;
                    self.sql(")");
                    Ok(())
                }
                RowAttr::Complex { present, .. } if op == Operator::Pr => {
                    self.sql(&present);
                    Ok(())
                }
                RowAttr::Complex { name, .. } => Err(invalid(format!(
                    "'{name}' is complex: compare one of its sub-attributes, e.g. {name}.givenName"
                ))),
                RowAttr::Schemas => self.schemas(op, value),
            },
        }
    }

    /// `schemas eq "urn"`: the URNs a resource lists are derived from what
    /// it holds: the core schema always, the enterprise extension when one
    /// of its attributes is set, other extensions when their key is stored.
    fn schemas(&mut self, op: Operator, value: Json) -> Result<(), FilterError> {
        let negate = match op {
            Operator::Pr => {
                self.sql("TRUE");
                return Ok(());
            }
            Operator::Eq => false,
            Operator::Ne => true,
            _ => {
                return Err(invalid(format!(
                    "'schemas' supports eq, ne and pr, not '{}'",
                    operator_name(op)
                )));
            }
        };
        let Json::String(urn) = value else {
            return Err(invalid("'schemas' compares with a schema URN string"));
        };
        let (core, table) = match self.resource {
            Resource::User => (CORE_URN, "users"),
            Resource::Group => (GROUP_URN, "groups"),
        };
        if negate {
            self.sql("NOT (");
        }
        if urn.eq_ignore_ascii_case(core) {
            self.sql("TRUE");
        } else if self.resource == Resource::User && urn.eq_ignore_ascii_case(ENTERPRISE_URN) {
            self.sql("(users.employee_number IS NOT NULL OR users.cost_center IS NOT NULL OR users.organization IS NOT NULL OR users.division IS NOT NULL OR users.department IS NOT NULL OR users.manager_id IS NOT NULL)");
        } else {
            self.sql(&format!(
                "EXISTS (SELECT 1 FROM jsonb_object_keys({table}.attributes) AS k WHERE lower(k) = lower("
            ));
            self.bind(Param::Text(urn));
            self.sql("))");
        }
        if negate {
            self.sql(")");
        }
        Ok(())
    }

    fn compare(
        &mut self,
        o: &Operand,
        op: Operator,
        value: Json,
        what: &str,
    ) -> Result<(), FilterError> {
        if op == Operator::Pr {
            self.present(o);
            return Ok(());
        }
        if value.is_null() {
            return self.compare_null(o, op, what);
        }
        match o.kind {
            Kind::Text { case_exact } => {
                let text = text_value(value, what)?;
                self.compare_text(o, case_exact, op, text);
                Ok(())
            }
            Kind::Binary => {
                if matches!(
                    op,
                    Operator::Gt | Operator::Ge | Operator::Lt | Operator::Le
                ) {
                    return Err(invalid(format!(
                        "'{what}' is binary: '{}' does not apply",
                        operator_name(op)
                    )));
                }
                let text = text_value(value, what)?;
                self.compare_text(o, true, op, text);
                Ok(())
            }
            Kind::Bool => {
                let b = bool_value(&value).ok_or_else(|| {
                    invalid(format!(
                        "'{what}' is boolean: compare it with true or false"
                    ))
                })?;
                if !matches!(op, Operator::Eq | Operator::Ne) {
                    return Err(invalid(format!(
                        "'{what}' is boolean: '{}' does not apply",
                        operator_name(op)
                    )));
                }
                self.emit(o);
                self.sql(&format!(" {} ", sql_operator(op)));
                self.bind(Param::Bool(b));
                Ok(())
            }
            Kind::Time => {
                if matches!(op, Operator::Co | Operator::Sw | Operator::Ew) {
                    return Err(invalid(format!(
                        "'{what}' is a timestamp: '{}' does not apply",
                        operator_name(op)
                    )));
                }
                let time = value
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .ok_or_else(|| {
                        invalid(format!("'{what}' compares with an RFC 3339 timestamp, e.g. \"2025-01-31T12:00:00Z\""))
                    })?;
                self.emit(o);
                self.sql(&format!(" {} ", sql_operator(op)));
                self.bind(Param::Time(time.with_timezone(&Utc)));
                Ok(())
            }
            Kind::Uuid => {
                let text = text_value(value, what)?;
                if !matches!(op, Operator::Eq | Operator::Ne) {
                    // Ordering and substring matches work on the canonical text form.
                    let as_text = o.wrapped("", "::text", TEXT_CI, o.nullable);
                    self.compare_text(&as_text, false, op, text);
                    return Ok(());
                }
                match (Uuid::try_parse(text.trim()), op) {
                    (Ok(id), _) => {
                        self.guarded(o, op, |c| {
                            c.emit(o);
                            c.sql(&format!(" {} ", sql_operator(op)));
                            c.bind(Param::Uuid(id));
                        });
                    }
                    // Not an id: nothing equals it, everything differs from it.
                    (Err(_), Operator::Eq) => self.sql("FALSE"),
                    (Err(_), _) => self.sql("TRUE"),
                }
                Ok(())
            }
            Kind::Json => self.compare_json(o, op, value, what),
        }
    }

    /// An unregistered extension's value: strings compare as text
    /// (case-insensitively), numbers and booleans as JSON values.
    fn compare_json(
        &mut self,
        o: &Operand,
        op: Operator,
        value: Json,
        what: &str,
    ) -> Result<(), FilterError> {
        if !matches!(
            op,
            Operator::Eq | Operator::Ne | Operator::Co | Operator::Sw | Operator::Ew
        ) {
            return Err(invalid(format!(
                "'{what}' belongs to an unregistered extension: only eq, ne, co, sw, ew and pr apply, not '{}'",
                operator_name(op)
            )));
        }
        let as_text = o.wrapped("(", " #>> '{}')", TEXT_CI, true);
        match value {
            Json::Number(_) | Json::Bool(_) if matches!(op, Operator::Eq | Operator::Ne) => {
                self.guarded(o, op, |c| {
                    c.emit(o);
                    c.sql(&format!(" {} CAST(", sql_operator(op)));
                    c.bind(Param::Text(value.to_string()));
                    c.sql(" AS jsonb)");
                });
                Ok(())
            }
            value => {
                let text = text_value(value, what)?;
                self.compare_text(&as_text, false, op, text);
                Ok(())
            }
        }
    }

    fn compare_text(&mut self, o: &Operand, case_exact: bool, op: Operator, text: String) {
        let param = match op {
            Operator::Co => format!("%{}%", escape_like(&text)),
            Operator::Sw => format!("{}%", escape_like(&text)),
            Operator::Ew => format!("%{}", escape_like(&text)),
            _ => text,
        };
        self.guarded(o, op, |c| {
            if case_exact {
                c.emit(o);
                c.sql(&format!(" {} ", sql_operator(op)));
                c.bind(Param::Text(param));
            } else {
                c.sql("lower(");
                c.emit(o);
                c.sql(&format!(") {} lower(", sql_operator(op)));
                c.bind(Param::Text(param));
                c.sql(")");
            }
        });
    }

    /// Makes a comparison on a nullable operand two-valued, so `not (...)`
    /// also selects rows where the attribute is absent.
    fn guarded(&mut self, o: &Operand, op: Operator, body: impl FnOnce(&mut Self)) {
        if !o.nullable {
            body(self);
        } else if op == Operator::Ne {
            self.sql("(");
            self.emit(o);
            self.sql(" IS NULL OR ");
            body(self);
            self.sql(")");
        } else {
            self.sql("(");
            self.emit(o);
            self.sql(" IS NOT NULL AND ");
            body(self);
            self.sql(")");
        }
    }

    fn compare_null(&mut self, o: &Operand, op: Operator, what: &str) -> Result<(), FilterError> {
        match (op, o.nullable) {
            (Operator::Eq | Operator::Ne, true) => {
                let json = o.kind == Kind::Json;
                self.sql(if json { "(" } else { "" });
                self.emit(o);
                match (op, json) {
                    (Operator::Eq, false) => self.sql(" IS NULL"),
                    (Operator::Ne, false) => self.sql(" IS NOT NULL"),
                    (Operator::Eq, true) => {
                        self.sql(" IS NULL OR ");
                        self.emit(o);
                        self.sql(" = 'null'::jsonb)");
                    }
                    _ => {
                        self.sql(" IS NOT NULL AND ");
                        self.emit(o);
                        self.sql(" <> 'null'::jsonb)");
                    }
                }
            }
            (Operator::Eq, false) => self.sql("FALSE"),
            (Operator::Ne, false) => self.sql("TRUE"),
            _ => {
                return Err(invalid(format!(
                    "'{what}': only eq and ne compare with null"
                )));
            }
        }
        Ok(())
    }

    fn present(&mut self, o: &Operand) {
        match (o.kind, o.nullable) {
            (Kind::Json, _) => {
                self.sql("(");
                self.emit(o);
                self.sql(" IS NOT NULL AND ");
                self.emit(o);
                self.sql(" NOT IN ('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb, '{}'::jsonb))");
            }
            (Kind::Text { .. } | Kind::Binary, true) => {
                self.sql("(");
                self.emit(o);
                self.sql(" IS NOT NULL AND ");
                self.emit(o);
                self.sql(" <> '')");
            }
            (Kind::Text { .. } | Kind::Binary, false) => {
                self.emit(o);
                self.sql(" <> ''");
            }
            (_, true) => {
                self.emit(o);
                self.sql(" IS NOT NULL");
            }
            (_, false) => self.sql("TRUE"),
        }
    }
}

/// Unquoted numbers and booleans compare as their text with string attributes.
fn text_value(value: Json, what: &str) -> Result<String, FilterError> {
    match value {
        Json::String(s) => Ok(s),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        _ => Err(invalid(format!(
            "'{what}' compares with a single value, not a list or object"
        ))),
    }
}

fn bool_value(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(b) => Some(*b),
        Json::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Json::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_proto::v1::Logical;

    fn path(schema: &str, attribute: &str, sub: &str) -> AttributePath {
        AttributePath {
            schema: schema.into(),
            attribute: attribute.into(),
            sub_attribute: sub.into(),
            value_filter: None,
        }
    }

    fn cmp_path(p: AttributePath, op: Operator, value: Json) -> Filter {
        Filter {
            expression: Some(Expr::Comparison(Box::new(Comparison {
                path: Some(Box::new(p)),
                operator: op as i32,
                value: Some(identity_proto::json_to_value(value)),
            }))),
        }
    }

    fn cmp(attr: &str, op: Operator, value: Json) -> Filter {
        let (a, s) = attr.split_once('.').unwrap_or((attr, ""));
        cmp_path(path("", a, s), op, value)
    }

    fn and(operands: Vec<Filter>) -> Filter {
        Filter {
            expression: Some(Expr::And(Logical { operands })),
        }
    }

    fn or(operands: Vec<Filter>) -> Filter {
        Filter {
            expression: Some(Expr::Or(Logical { operands })),
        }
    }

    fn not(inner: Filter) -> Filter {
        Filter {
            expression: Some(Expr::Not(Box::new(inner))),
        }
    }

    fn value_path(attr: &str, inner: Filter) -> Filter {
        Filter {
            expression: Some(Expr::ValuePath(Box::new(ValuePath {
                path: Some(Box::new(path("", attr, ""))),
                filter: Some(Box::new(inner)),
            }))),
        }
    }

    fn sql_for(filter: &Filter, resource: Resource) -> String {
        let compiled = compile(filter, resource).unwrap_or_else(|e| panic!("compile failed: {e}"));
        diesel::debug_query::<Pg, _>(&compiled).to_string()
    }

    fn error_for(filter: &Filter, resource: Resource) -> String {
        match compile(filter, resource) {
            Ok(c) => panic!(
                "expected an error, got {}",
                diesel::debug_query::<Pg, _>(&c)
            ),
            Err(e) => e.to_string(),
        }
    }

    fn sql(filter: &Filter) -> String {
        sql_for(filter, Resource::User)
    }

    fn error(filter: &Filter) -> String {
        error_for(filter, Resource::User)
    }

    #[test]
    fn user_name_is_case_insensitive_and_bound() {
        assert_eq!(
            sql(&cmp("userName", Operator::Eq, "Bob@Example.com".into())),
            r#"lower(users.user_name) = lower($1) -- binds: ["Bob@Example.com"]"#
        );
        assert_eq!(
            sql(&cmp("USERNAME", Operator::Ne, "x".into())),
            r#"lower(users.user_name) <> lower($1) -- binds: ["x"]"#
        );
    }

    #[test]
    fn external_id_is_case_exact_and_null_guarded() {
        assert_eq!(
            sql(&cmp("externalId", Operator::Eq, "00uAbC".into())),
            r#"(users.external_id IS NOT NULL AND users.external_id = $1) -- binds: ["00uAbC"]"#
        );
        assert_eq!(
            sql(&cmp("externalId", Operator::Ne, "a".into())),
            r#"(users.external_id IS NULL OR users.external_id <> $1) -- binds: ["a"]"#
        );
        // Unquoted numbers arrive typed; they compare as text.
        assert_eq!(
            sql(&cmp("externalId", Operator::Eq, serde_json::json!(123))),
            r#"(users.external_id IS NOT NULL AND users.external_id = $1) -- binds: ["123"]"#
        );
    }

    #[test]
    fn substring_operators_escape_wildcards() {
        assert_eq!(
            sql(&cmp("displayName", Operator::Co, "50%_off".into())),
            r#"(users.display_name IS NOT NULL AND lower(users.display_name) LIKE lower($1)) -- binds: ["%50\\%\\_off%"]"#
        );
        assert!(sql(&cmp("name.givenName", Operator::Sw, "Jo".into())).contains(r#"["Jo%"]"#));
        assert!(sql(&cmp("name.familyName", Operator::Ew, "son".into())).contains(r#"["%son"]"#));
    }

    #[test]
    fn ordering_operators() {
        for (op, sym) in [
            (Operator::Gt, ">"),
            (Operator::Ge, ">="),
            (Operator::Lt, "<"),
            (Operator::Le, "<="),
        ] {
            assert_eq!(
                sql(&cmp("userName", op, "m".into())),
                format!(r#"lower(users.user_name) {sym} lower($1) -- binds: ["m"]"#)
            );
            assert!(
                sql(&cmp("meta.lastModified", op, "2025-01-02T03:04:05Z".into()))
                    .starts_with(&format!("users.updated_at {sym} $1"))
            );
        }
        assert!(
            sql(&cmp(
                "meta.created",
                Operator::Eq,
                "2025-01-02T03:04:05+02:00".into()
            ))
            .contains("2025-01-02T01:04:05Z")
        );
    }

    #[test]
    fn presence_per_kind() {
        assert_eq!(
            sql(&cmp("displayName", Operator::Pr, Json::Null)),
            "(users.display_name IS NOT NULL AND users.display_name <> '') -- binds: []"
        );
        assert_eq!(
            sql(&cmp("userName", Operator::Pr, Json::Null)),
            "users.user_name <> '' -- binds: []"
        );
        assert_eq!(
            sql(&cmp("active", Operator::Pr, Json::Null)),
            "TRUE -- binds: []"
        );
        assert_eq!(
            sql(&cmp("emails", Operator::Pr, Json::Null)),
            "jsonb_array_length(users.emails) > 0 -- binds: []"
        );
        assert_eq!(
            sql(&cmp_path(
                path(ENTERPRISE, "manager", "value"),
                Operator::Pr,
                Json::Null
            )),
            "users.manager_id IS NOT NULL -- binds: []"
        );
    }

    const ENTERPRISE: &str = crate::attr::ENTERPRISE_URN;

    #[test]
    fn booleans() {
        assert_eq!(
            sql(&cmp("active", Operator::Eq, true.into())),
            "users.active = $1 -- binds: [true]"
        );
        assert_eq!(
            sql(&cmp("active", Operator::Ne, "False".into())),
            "users.active <> $1 -- binds: [false]"
        );
        assert!(error(&cmp("active", Operator::Co, true.into())).contains("boolean"));
        assert!(error(&cmp("active", Operator::Eq, "yes".into())).contains("boolean"));
    }

    #[test]
    fn timestamps_reject_bad_values_and_operators() {
        assert!(
            error(&cmp("meta.lastModified", Operator::Gt, "yesterday".into())).contains("RFC 3339")
        );
        assert!(
            error(&cmp("meta.lastModified", Operator::Co, "2025".into())).contains("timestamp")
        );
    }

    #[test]
    fn ids_and_managers() {
        let id = "0b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11";
        assert_eq!(
            sql(&cmp("id", Operator::Eq, id.into())),
            format!("users.user_id = $1 -- binds: [{id}]")
        );
        assert_eq!(
            sql(&cmp("id", Operator::Eq, "00919288221112222".into())),
            "FALSE -- binds: []"
        );
        assert_eq!(
            sql(&cmp("id", Operator::Ne, "nope".into())),
            "TRUE -- binds: []"
        );
        assert_eq!(
            sql(&cmp_path(
                path(ENTERPRISE, "manager", "value"),
                Operator::Eq,
                id.into()
            )),
            format!("(users.manager_id IS NOT NULL AND users.manager_id = $1) -- binds: [{id}]")
        );
        assert!(
            sql(&cmp("id", Operator::Sw, "0B0C".into()))
                .contains("lower(users.user_id::text) LIKE lower($1)")
        );
    }

    #[test]
    fn enterprise_attributes_with_or_without_urn() {
        let with_urn = sql(&cmp_path(
            path(ENTERPRISE, "employeeNumber", ""),
            Operator::Eq,
            "42".into(),
        ));
        let without = sql(&cmp("employeeNumber", Operator::Eq, "42".into()));
        assert_eq!(with_urn, without);
        assert!(with_urn.contains("lower(users.employee_number) = lower($1)"));
        for attr in ["costCenter", "organization", "division", "department"] {
            assert!(
                compile(
                    &cmp_path(path(ENTERPRISE, attr, ""), Operator::Eq, "x".into()),
                    Resource::User
                )
                .is_ok()
            );
        }
        // Core attributes do not live in the enterprise schema.
        assert!(
            error(&cmp_path(
                path(ENTERPRISE, "userName", ""),
                Operator::Eq,
                "x".into()
            ))
            .contains("unknown attribute")
        );
    }

    #[test]
    fn emails_use_an_exists_subquery() {
        assert_eq!(
            sql(&cmp("emails.value", Operator::Eq, "a@b.c".into())),
            r#"EXISTS (SELECT 1 FROM jsonb_array_elements(users.emails) AS e WHERE ((e->>'value') IS NOT NULL AND lower((e->>'value')) = lower($1))) -- binds: ["a@b.c"]"#
        );
        // `emails eq x` compares the value sub-attribute.
        assert_eq!(
            sql(&cmp("emails", Operator::Eq, "a@b.c".into())),
            sql(&cmp("emails.value", Operator::Eq, "a@b.c".into()))
        );
        assert!(
            sql(&cmp("emails.primary", Operator::Eq, true.into()))
                .contains("coalesce((e->'primary') = 'true'::jsonb, false) = $1")
        );
    }

    #[test]
    fn value_path_filters_elements() {
        let f = value_path(
            "emails",
            and(vec![
                cmp("type", Operator::Eq, "work".into()),
                cmp("value", Operator::Co, "@example.com".into()),
            ]),
        );
        assert_eq!(
            sql(&f),
            r#"EXISTS (SELECT 1 FROM jsonb_array_elements(users.emails) AS e WHERE (((e->>'type') IS NOT NULL AND lower((e->>'type')) = lower($1)) AND ((e->>'value') IS NOT NULL AND lower((e->>'value')) LIKE lower($2)))) -- binds: ["work", "%@example.com%"]"#
        );
        assert!(
            error(&value_path(
                "nickNames",
                cmp("type", Operator::Eq, "x".into())
            ))
            .contains("nickNames")
        );
        assert!(
            error(&value_path("title", cmp("type", Operator::Eq, "x".into()))).contains("title")
        );
        assert!(
            error(&value_path(
                "emails",
                cmp("color", Operator::Eq, "x".into())
            ))
            .contains("emails.color")
        );
        assert!(
            error(&value_path(
                "emails",
                value_path("emails", cmp("type", Operator::Pr, Json::Null))
            ))
            .contains("nested")
        );
    }

    #[test]
    fn logical_nesting_and_precedence_are_explicit() {
        let f = or(vec![
            and(vec![
                cmp("userName", Operator::Sw, "a".into()),
                not(cmp("active", Operator::Eq, false.into())),
            ]),
            cmp("externalId", Operator::Eq, "x".into()),
        ]);
        assert_eq!(
            sql(&f),
            r#"((lower(users.user_name) LIKE lower($1) AND NOT (users.active = $2)) OR (users.external_id IS NOT NULL AND users.external_id = $3)) -- binds: ["a%", false, "x"]"#
        );
    }

    #[test]
    fn malformed_filters_are_rejected() {
        assert!(error(&cmp("shoeSize", Operator::Eq, "x".into())).contains("'shoeSize'"));
        assert!(error(&cmp("name.nickName", Operator::Eq, "x".into())).contains("name.nickName"));
        assert!(error(&cmp("title.x", Operator::Eq, "x".into())).contains("no sub-attributes"));
        assert!(
            error(&cmp("phoneNumbers.color", Operator::Eq, "x".into()))
                .contains("phoneNumbers.color")
        );
        assert!(error(&Filter { expression: None }).contains("empty"));
        assert!(error(&and(vec![])).contains("operands"));
        assert!(error(&cmp("userName", Operator::Unspecified, "x".into())).contains("operator"));
        assert!(
            error(&cmp("userName", Operator::Eq, serde_json::json!(["a"])))
                .contains("single value")
        );
        assert!(error(&cmp("userName", Operator::Gt, Json::Null)).contains("null"));
        let mut filtered = path("", "emails", "");
        filtered.value_filter = Some(Box::new(cmp("type", Operator::Eq, "work".into())));
        assert!(error(&cmp_path(filtered, Operator::Eq, "x".into())).contains("value filter"));
        let mut deep = cmp("userName", Operator::Eq, "x".into());
        for _ in 0..40 {
            deep = not(deep);
        }
        assert!(error(&deep).contains("levels deep"));
    }

    #[test]
    fn bounds_are_checked_before_compiling() {
        let terms = |n: usize| {
            or((0..n)
                .map(|_| cmp("userName", Operator::Eq, "x".into()))
                .collect())
        };
        assert!(check_bounds(&terms(MAX_TERMS)).is_ok());
        assert!(error(&terms(MAX_TERMS + 1)).contains("more than 64 comparisons"));
        let mut deep = cmp("userName", Operator::Eq, "x".into());
        for _ in 0..MAX_DEPTH {
            deep = not(deep);
        }
        assert!(check_bounds(&deep).is_ok());
        assert!(error(&not(deep)).contains("more than 32 levels deep"));
        let nul = error(&cmp("userName", Operator::Eq, "a\u{0}b".into()));
        assert!(
            nul.contains("a filter value contains a NUL character"),
            "{nul}"
        );
        let nul_name = error(&cmp("user\u{0}Name", Operator::Pr, Json::Null));
        assert!(
            nul_name.contains("attribute name contains a NUL"),
            "{nul_name}"
        );
        let mut in_value_path = cmp("type", Operator::Eq, "w\u{0}".into());
        for _ in 0..3 {
            in_value_path = and(vec![in_value_path]);
        }
        assert!(error(&value_path("emails", in_value_path)).contains("NUL"));
    }

    #[test]
    fn null_comparisons() {
        assert_eq!(
            sql(&cmp("displayName", Operator::Eq, Json::Null)),
            "users.display_name IS NULL -- binds: []"
        );
        assert_eq!(
            sql(&cmp("userName", Operator::Ne, Json::Null)),
            "TRUE -- binds: []"
        );
    }

    const MEMBER: &str = "EXISTS (SELECT 1 FROM group_members AS m WHERE m.tenant_id = groups.tenant_id AND m.group_id = groups.group_id AND ";

    fn group_sql(filter: &Filter) -> String {
        sql_for(filter, Resource::Group)
    }

    fn group_error(filter: &Filter) -> String {
        error_for(filter, Resource::Group)
    }

    #[test]
    fn group_columns() {
        assert_eq!(
            group_sql(&cmp("DisplayName", Operator::Eq, "Admins".into())),
            r#"lower(groups.display_name) = lower($1) -- binds: ["Admins"]"#
        );
        assert_eq!(
            group_sql(&cmp("externalId", Operator::Eq, "G-1".into())),
            r#"(groups.external_id IS NOT NULL AND groups.external_id = $1) -- binds: ["G-1"]"#
        );
        let id = "0b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11";
        assert_eq!(
            group_sql(&cmp("id", Operator::Eq, id.into())),
            format!("groups.group_id = $1 -- binds: [{id}]")
        );
        assert!(
            group_sql(&cmp(
                "meta.lastModified",
                Operator::Gt,
                "2025-01-02T03:04:05Z".into()
            ))
            .starts_with("groups.updated_at > $1")
        );
        assert!(
            group_sql(&cmp(
                "meta.created",
                Operator::Le,
                "2025-01-02T03:04:05Z".into()
            ))
            .starts_with("groups.created_at <= $1")
        );
        // The core Group URN is the group's core schema.
        assert_eq!(
            group_sql(&cmp_path(
                path(crate::attr::GROUP_URN, "displayName", ""),
                Operator::Sw,
                "Ad".into()
            )),
            group_sql(&cmp("displayName", Operator::Sw, "Ad".into()))
        );
    }

    #[test]
    fn group_members_use_primary_key_probes() {
        let id = "0b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11";
        let expected = format!("{MEMBER}m.user_id = $1) -- binds: [{id}]");
        assert_eq!(
            group_sql(&cmp("members.value", Operator::Eq, id.into())),
            expected
        );
        assert_eq!(
            group_sql(&cmp("members", Operator::Eq, id.into())),
            expected
        );
        assert_eq!(
            group_sql(&value_path(
                "members",
                cmp("value", Operator::Eq, id.into())
            )),
            expected
        );
        assert_eq!(
            group_sql(&value_path(
                "members",
                cmp("members.value", Operator::Eq, id.into())
            )),
            expected
        );
        let other = "1b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11";
        assert_eq!(
            group_sql(&value_path(
                "members",
                or(vec![
                    cmp("value", Operator::Eq, id.into()),
                    cmp("value", Operator::Eq, other.into()),
                ])
            )),
            format!("{MEMBER}(m.user_id = $1 OR m.user_id = $2)) -- binds: [{id}, {other}]")
        );
        // A value that is no user id matches no member.
        assert_eq!(
            group_sql(&cmp("members.value", Operator::Eq, "bob".into())),
            format!("{MEMBER}FALSE) -- binds: []")
        );
        assert_eq!(
            group_sql(&cmp("members", Operator::Pr, Json::Null)),
            "groups.member_count > 0 -- binds: []"
        );
        assert_eq!(
            group_sql(&not(cmp("members.value", Operator::Eq, id.into()))),
            format!("NOT ({MEMBER}m.user_id = $1)) -- binds: [{id}]")
        );
    }

    #[test]
    fn group_filters_refuse_other_attributes() {
        for attr in ["userName", "emails", "active", "employeeNumber", "title"] {
            assert!(
                group_error(&cmp(attr, Operator::Eq, "x".into())).contains(attr),
                "{attr}"
            );
        }
        assert!(
            group_error(&cmp("members.color", Operator::Eq, "x".into())).contains("members.color")
        );
        assert!(
            group_error(&value_path(
                "members",
                cmp("color", Operator::Eq, "x".into())
            ))
            .contains("members.color")
        );
        assert!(
            group_error(&cmp("members.$ref", Operator::Eq, "x".into())).contains("members.value")
        );
        assert!(
            group_error(&value_path(
                "emails",
                cmp("value", Operator::Eq, "x".into())
            ))
            .contains("emails")
        );
        assert!(
            group_error(&cmp_path(
                path(crate::attr::CORE_URN, "displayName", ""),
                Operator::Eq,
                "x".into()
            ))
            .contains("unknown attribute")
        );
        // Users have no members.
        assert!(error(&cmp("members.value", Operator::Eq, "x".into())).contains("members"));
        assert!(
            error(&value_path(
                "members",
                cmp("value", Operator::Eq, "x".into())
            ))
            .contains("members")
        );
    }

    const PHONES: &str = "(CASE WHEN jsonb_typeof(users.attributes->'phoneNumbers') = 'array' THEN users.attributes->'phoneNumbers' END)";

    #[test]
    fn document_attributes_compare_their_jsonb_fields() {
        assert_eq!(
            sql(&cmp("Title", Operator::Eq, "Engineer".into())),
            r#"((users.attributes->>'title') IS NOT NULL AND lower((users.attributes->>'title')) = lower($1)) -- binds: ["Engineer"]"#
        );
        assert_eq!(
            sql(&cmp("locale", Operator::Ge, "en".into())),
            r#"((users.attributes->>'locale') IS NOT NULL AND lower((users.attributes->>'locale')) >= lower($1)) -- binds: ["en"]"#
        );
        assert_eq!(
            sql(&not(cmp("userType", Operator::Eq, "Employee".into()))),
            r#"NOT (((users.attributes->>'userType') IS NOT NULL AND lower((users.attributes->>'userType')) = lower($1))) -- binds: ["Employee"]"#
        );
        assert_eq!(
            sql(&cmp("nickName", Operator::Pr, Json::Null)),
            "((users.attributes->>'nickName') IS NOT NULL AND (users.attributes->>'nickName') <> '') -- binds: []"
        );
        assert_eq!(
            sql(&cmp_path(
                path(crate::attr::CORE_URN, "profileUrl", ""),
                Operator::Sw,
                "https://".into()
            )),
            r#"((users.attributes->>'profileUrl') IS NOT NULL AND lower((users.attributes->>'profileUrl')) LIKE lower($1)) -- binds: ["https://%"]"#
        );
    }

    #[test]
    fn document_multi_valued_attributes_use_exists_over_their_elements() {
        assert_eq!(
            sql(&cmp("phoneNumbers.value", Operator::Eq, "+1 555".into())),
            format!(
                r#"EXISTS (SELECT 1 FROM jsonb_array_elements({PHONES}) AS e WHERE ((e->>'value') IS NOT NULL AND lower((e->>'value')) = lower($1))) -- binds: ["+1 555"]"#
            )
        );
        assert_eq!(
            sql(&cmp("phoneNumbers", Operator::Pr, Json::Null)),
            format!("coalesce(jsonb_array_length({PHONES}) > 0, false) -- binds: []")
        );
        let home = value_path(
            "addresses",
            and(vec![
                cmp("type", Operator::Eq, "home".into()),
                cmp("addresses.postalCode", Operator::Sw, "SW1".into()),
                cmp("primary", Operator::Eq, true.into()),
            ]),
        );
        let home_sql = sql(&home);
        assert!(
            home_sql.starts_with("EXISTS (SELECT 1 FROM jsonb_array_elements((CASE WHEN jsonb_typeof(users.attributes->'addresses') = 'array'"),
            "{home_sql}"
        );
        assert!(
            home_sql.contains("lower((e->>'postalCode')) LIKE lower($2)"),
            "{home_sql}"
        );
        assert!(
            home_sql.contains("coalesce((e->'primary') = 'true'::jsonb, false) = $3"),
            "{home_sql}"
        );
        // Sub-attribute names follow the schema's spelling.
        assert!(
            sql(&cmp("addresses.STREETADDRESS", Operator::Co, "x".into()))
                .contains("(e->>'streetAddress')")
        );
        // Complex values without a `value` must name a sub-attribute.
        assert!(error(&cmp("addresses", Operator::Eq, "x".into())).contains("complex"));
        for attr in ["ims", "photos", "entitlements", "roles"] {
            assert!(
                sql(&cmp(attr, Operator::Eq, "x".into()))
                    .contains(&format!("users.attributes->'{attr}'"))
            );
        }
    }

    #[test]
    fn binary_values_compare_exactly_and_never_order() {
        assert!(
            sql(&cmp("x509Certificates.value", Operator::Eq, "MIIB".into()))
                .contains("(e->>'value') = $1")
        );
        assert!(
            error(&cmp("x509Certificates.value", Operator::Gt, "MIIB".into())).contains("binary")
        );
    }

    #[test]
    fn unregistered_extensions_compare_by_exact_bound_keys() {
        let urn = "urn:example:params:scim:schemas:extension:acme:1.0:User";
        let badge = |op, value: Json| cmp_path(path(urn, "badge", ""), op, value);
        assert_eq!(
            sql(&badge(Operator::Eq, "A7".into())),
            format!(
                r#"(((users.attributes -> $1 -> $2) #>> '{{}}') IS NOT NULL AND lower(((users.attributes -> $3 -> $4) #>> '{{}}')) = lower($5)) -- binds: ["{urn}", "badge", "{urn}", "badge", "A7"]"#
            )
        );
        assert_eq!(
            sql(&badge(Operator::Eq, serde_json::json!(1234))),
            format!(
                r#"((users.attributes -> $1 -> $2) IS NOT NULL AND (users.attributes -> $3 -> $4) = CAST($5 AS jsonb)) -- binds: ["{urn}", "badge", "{urn}", "badge", "1234"]"#
            )
        );
        assert!(sql(&badge(Operator::Ne, true.into())).contains(" IS NULL OR "));
        assert!(sql(&badge(Operator::Pr, Json::Null)).contains("NOT IN ('null'::jsonb"));
        assert!(sql(&badge(Operator::Eq, Json::Null)).contains("= 'null'::jsonb"));
        assert!(sql(&badge(Operator::Co, "7".into())).contains("LIKE lower($"));
        assert!(error(&badge(Operator::Gt, "7".into())).contains("unregistered extension"));
        // Sub-attributes are one more key.
        assert!(
            sql(&cmp_path(
                path(urn, "clearance", "level"),
                Operator::Eq,
                "red".into()
            ))
            .contains("(users.attributes -> $1 -> $2 -> $3)")
        );
        // On groups too, but the User schemas are not a group's.
        assert!(
            group_sql(&cmp_path(path(urn, "badge", ""), Operator::Eq, "x".into()))
                .contains("(groups.attributes -> $1 -> $2)")
        );
        assert!(
            group_error(&cmp_path(
                path(ENTERPRISE, "department", ""),
                Operator::Eq,
                "x".into()
            ))
            .contains("unknown attribute")
        );
    }

    #[test]
    fn derived_and_read_only_attributes() {
        assert_eq!(
            sql(&cmp("meta.resourceType", Operator::Eq, "User".into())),
            r#"'User' = $1 -- binds: ["User"]"#
        );
        assert!(
            group_sql(&cmp("meta.version", Operator::Eq, "W/\"3\"".into()))
                .starts_with(r#"('W/"' || groups.version || '"') = $1"#)
        );
        assert_eq!(
            sql(&cmp("name", Operator::Pr, Json::Null)),
            format!("{NAME_PRESENT} -- binds: []")
        );
        assert!(error(&cmp("name", Operator::Eq, "Ada".into())).contains("complex"));
        assert!(
            sql(&cmp_path(path(ENTERPRISE, "manager", "displayName"), Operator::Co, "Ada".into()))
                .contains("FROM users AS mgr WHERE mgr.tenant_id = users.tenant_id AND mgr.user_id = users.manager_id")
        );
        for (attr, message) in [
            ("password", "never stored"),
            ("meta.location", "derived"),
            ("groups.$ref", "groups.value"),
            ("manager.$ref", "manager.value"),
        ] {
            assert!(
                error(&cmp(attr, Operator::Eq, "x".into())).contains(message),
                "{attr}"
            );
        }
    }

    #[test]
    fn schemas_are_derived_from_the_data() {
        let schemas = |op, value: Json| cmp("schemas", op, value);
        assert_eq!(
            sql(&schemas(Operator::Eq, crate::attr::CORE_URN.into())),
            "TRUE -- binds: []"
        );
        assert!(
            sql(&schemas(Operator::Eq, ENTERPRISE.into()))
                .starts_with("(users.employee_number IS NOT NULL OR")
        );
        assert_eq!(
            sql(&schemas(Operator::Ne, "urn:x".into())),
            r#"NOT (EXISTS (SELECT 1 FROM jsonb_object_keys(users.attributes) AS k WHERE lower(k) = lower($1))) -- binds: ["urn:x"]"#
        );
        assert_eq!(
            group_sql(&schemas(Operator::Eq, crate::attr::GROUP_URN.into())),
            "TRUE -- binds: []"
        );
        assert!(error(&schemas(Operator::Co, "urn".into())).contains("eq, ne and pr"));
    }

    #[test]
    fn memberships_from_either_side() {
        let id = "0b0c9f4e-7a1d-4e55-9a57-3c7f0f6f2b11";
        assert_eq!(
            sql(&cmp("groups.value", Operator::Eq, id.into())),
            format!(
                "EXISTS (SELECT 1 FROM group_members AS g WHERE g.tenant_id = users.tenant_id AND g.user_id = users.user_id AND g.group_id = $1) -- binds: [{id}]"
            )
        );
        assert_eq!(
            sql(&cmp("groups", Operator::Pr, Json::Null)),
            "EXISTS (SELECT 1 FROM group_members AS g WHERE g.tenant_id = users.tenant_id AND g.user_id = users.user_id) -- binds: []"
        );
        assert!(
            sql(&value_path("groups", cmp("display", Operator::Eq, "Admins".into())))
                .contains("lower((SELECT gg.display_name FROM groups AS gg WHERE gg.tenant_id = g.tenant_id AND gg.group_id = g.group_id)) = lower($1)")
        );
        assert!(
            group_sql(&cmp("members.display", Operator::Sw, "Ada".into())).contains(
                "FROM users AS mu WHERE mu.tenant_id = m.tenant_id AND mu.user_id = m.user_id"
            )
        );
        assert_eq!(
            group_sql(&value_path(
                "members",
                cmp("type", Operator::Eq, "User".into())
            )),
            format!(r#"{MEMBER}'User' = $1) -- binds: ["User"]"#)
        );
    }

    #[test]
    fn digests_tell_queries_apart() {
        let digest = |f: &Filter| {
            let mut hasher = Sha256::new();
            compile(f, Resource::User)
                .unwrap_or_else(|e| panic!("{e}"))
                .digest(&mut hasher);
            hasher.finalize()
        };
        let a = cmp("userName", Operator::Eq, "a".into());
        assert_eq!(
            digest(&a),
            digest(&cmp("USERNAME", Operator::Eq, "a".into()))
        );
        assert_ne!(
            digest(&a),
            digest(&cmp("userName", Operator::Eq, "b".into()))
        );
        assert_ne!(
            digest(&a),
            digest(&cmp("userName", Operator::Ne, "a".into()))
        );
    }
}
