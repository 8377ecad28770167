//! Compiles a proto `Filter` tree into one SQL boolean expression over the
//! `users` or the `groups` table. Every value is a bound parameter; nothing
//! is evaluated in memory, so a filtered list is one indexed query.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate,
};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Text, Timestamptz};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::{AttributePath, Comparison, Filter, ValuePath};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::attr::{Resource, Schema, attribute_parts, display_path, element_attribute, schema_of};

/// Deeper trees are refused; no IdP sends anything close.
const MAX_DEPTH: usize = 32;

/// Why a filter cannot be compiled; the message names the culprit.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(String);

fn invalid(message: impl Into<String>) -> FilterError {
    FilterError(message.into())
}

/// A compiled WHERE condition, usable as a diesel boolean expression on the
/// table of the resource it was compiled for.
#[derive(Debug, Clone, Default)]
pub(crate) struct SqlFilter {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Sql(String),
    Bind(Param),
}

#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
    Uuid(Uuid),
}

impl QueryFragment<Pg> for SqlFilter {
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

impl QueryId for SqlFilter {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Expression for SqlFilter {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for SqlFilter {}

impl<QS> SelectableExpression<QS> for SqlFilter {}

impl ValidGrouping<()> for SqlFilter {
    type IsAggregate = is_aggregate::Never;
}

/// Compiles `filter` to SQL over `users` (and `e`, an element of
/// `users.emails`) or over `groups` (and `m`, one of its `group_members`).
pub(crate) fn compile(filter: &Filter, resource: Resource) -> Result<SqlFilter, FilterError> {
    let mut compiler = Compiler {
        pieces: Vec::new(),
        resource,
    };
    compiler.filter(filter, Scope::Row, 0)?;
    Ok(SqlFilter {
        pieces: compiler.pieces,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text { case_exact: bool },
    Bool,
    Time,
    Uuid,
}

const TEXT_CI: Kind = Kind::Text { case_exact: false };
const TEXT_CS: Kind = Kind::Text { case_exact: true };

/// A SQL expression a comparison can apply to.
#[derive(Debug, Clone)]
struct Operand {
    sql: String,
    kind: Kind,
    nullable: bool,
}

fn operand(sql: &str, kind: Kind, nullable: bool) -> Operand {
    Operand {
        sql: sql.to_owned(),
        kind,
        nullable,
    }
}

/// What a row-level path names.
enum RowAttr {
    Column(Operand),
    /// A multi-valued attribute itself (`None`) or one of its sub-attributes.
    Multi(Multi, Option<Operand>),
}

/// The multi-valued attributes a filter can look into, each matched by an
/// EXISTS subquery so no element is ever loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multi {
    /// `users.emails`, a JSONB array; an element is `e`.
    Emails,
    /// A group's rows in `group_members` (primary key probes); one is `m`.
    Members,
}

impl Multi {
    fn name(self) -> &'static str {
        match self {
            Multi::Emails => "emails",
            Multi::Members => "members",
        }
    }

    /// The multi-valued attribute `name` of `resource`.
    fn of(resource: Resource, name: &str) -> Option<Multi> {
        match resource {
            Resource::User if name.eq_ignore_ascii_case("emails") => Some(Multi::Emails),
            Resource::Group if name.eq_ignore_ascii_case("members") => Some(Multi::Members),
            _ => None,
        }
    }

    /// Opens the EXISTS subquery; the element condition and ")" follow.
    fn exists(self) -> &'static str {
        match self {
            Multi::Emails => EMAIL_ELEMENTS,
            Multi::Members => MEMBER_ROWS,
        }
    }

    /// `attr pr`: the attribute has at least one element.
    fn present(self) -> &'static str {
        match self {
            Multi::Emails => "jsonb_array_length(users.emails) > 0",
            Multi::Members => "groups.member_count > 0",
        }
    }

    fn field(self, name: &str) -> Option<Operand> {
        let name = name.to_ascii_lowercase();
        Some(match (self, name.as_str()) {
            (Multi::Emails, "value") => operand("(e->>'value')", TEXT_CI, true),
            (Multi::Emails, "type") => operand("(e->>'type')", TEXT_CI, true),
            (Multi::Emails, "display") => operand("(e->>'display')", TEXT_CI, true),
            (Multi::Emails, "primary") => operand(
                "coalesce((e->>'primary')::boolean, false)",
                Kind::Bool,
                false,
            ),
            (Multi::Members, "value") => operand("m.user_id", Kind::Uuid, false),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Row,
    /// Inside `attr[...]`, where paths name sub-attributes of one element.
    Element(Multi),
}

const EMAIL_ELEMENTS: &str = "EXISTS (SELECT 1 FROM jsonb_array_elements(users.emails) AS e WHERE ";
const MEMBER_ROWS: &str = "EXISTS (SELECT 1 FROM group_members AS m WHERE m.tenant_id = groups.tenant_id AND m.group_id = groups.group_id AND ";

fn unknown_attribute(path: &AttributePath) -> FilterError {
    invalid(format!(
        "unknown attribute '{}' in filter",
        display_path(path)
    ))
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

/// Group attributes: the columns of `groups` and its members' ids.
fn group_attribute(path: &AttributePath) -> Result<RowAttr, FilterError> {
    check_no_value_filter(path)?;
    if schema_of(path, Resource::Group) != Schema::Core {
        return Err(unknown_attribute(path));
    }
    let column = |sql, kind, nullable| Ok(RowAttr::Column(operand(sql, kind, nullable)));
    let (attr, sub) = attribute_parts(path);
    match lower_key(path).as_str() {
        "id" => column("groups.group_id", Kind::Uuid, false),
        "displayname" => column("groups.display_name", TEXT_CI, false),
        "externalid" => column("groups.external_id", TEXT_CS, true),
        "meta.created" => column("groups.created_at", Kind::Time, false),
        "meta.lastmodified" => column("groups.updated_at", Kind::Time, false),
        "members" => Ok(RowAttr::Multi(Multi::Members, None)),
        _ if attr.eq_ignore_ascii_case("members") => Multi::Members
            .field(sub)
            .map(|o| RowAttr::Multi(Multi::Members, Some(o)))
            .ok_or_else(|| unknown_attribute(path)),
        _ => Err(unknown_attribute(path)),
    }
}

fn user_attribute(path: &AttributePath) -> Result<RowAttr, FilterError> {
    let unknown = || unknown_attribute(path);
    check_no_value_filter(path)?;
    let (attr, sub) = attribute_parts(path);
    let key = lower_key(path);
    let schema = schema_of(path, Resource::User);
    let column = |sql, kind, nullable| Ok(RowAttr::Column(operand(sql, kind, nullable)));
    if let Schema::Other(_) = schema {
        return Err(unknown());
    }
    // Enterprise attributes are also accepted without their URN; core ones
    // are not accepted with the enterprise URN.
    let core = schema == Schema::Core;
    match key.as_str() {
        "id" if core => column("users.user_id", Kind::Uuid, false),
        "username" if core => column("users.user_name", TEXT_CI, false),
        "externalid" if core => column("users.external_id", TEXT_CS, true),
        "displayname" if core => column("users.display_name", TEXT_CI, true),
        "name.formatted" if core => column("users.name_formatted", TEXT_CI, true),
        "name.familyname" if core => column("users.family_name", TEXT_CI, true),
        "name.givenname" if core => column("users.given_name", TEXT_CI, true),
        "name.middlename" if core => column("users.middle_name", TEXT_CI, true),
        "name.honorificprefix" if core => column("users.honorific_prefix", TEXT_CI, true),
        "name.honorificsuffix" if core => column("users.honorific_suffix", TEXT_CI, true),
        "active" if core => column("users.active", Kind::Bool, false),
        "meta.created" if core => column("users.created_at", Kind::Time, false),
        "meta.lastmodified" if core => column("users.updated_at", Kind::Time, false),
        "emails" if core => Ok(RowAttr::Multi(Multi::Emails, None)),
        _ if core && attr.eq_ignore_ascii_case("emails") => Multi::Emails
            .field(sub)
            .map(|o| RowAttr::Multi(Multi::Emails, Some(o)))
            .ok_or_else(unknown),
        "employeenumber" => column("users.employee_number", TEXT_CI, true),
        "costcenter" => column("users.cost_center", TEXT_CI, true),
        "organization" => column("users.organization", TEXT_CI, true),
        "division" => column("users.division", TEXT_CI, true),
        "department" => column("users.department", TEXT_CI, true),
        "manager" | "manager.value" => column("users.manager_id", Kind::Uuid, true),
        _ => Err(unknown()),
    }
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
    pieces: Vec<Piece>,
    resource: Resource,
}

impl Compiler {
    fn sql(&mut self, sql: &str) {
        match self.pieces.last_mut() {
            Some(Piece::Sql(last)) => last.push_str(sql),
            _ => self.pieces.push(Piece::Sql(sql.to_owned())),
        }
    }

    fn bind(&mut self, param: Param) {
        self.pieces.push(Piece::Bind(param));
    }

    fn filter(&mut self, filter: &Filter, scope: Scope, depth: usize) -> Result<(), FilterError> {
        if depth > MAX_DEPTH {
            return Err(invalid("the filter is nested too deeply"));
        }
        match filter.expression.as_ref() {
            None => Err(invalid("empty filter expression")),
            Some(Expr::Comparison(c)) => self.comparison(c, scope),
            Some(Expr::And(l)) => self.logical(&l.operands, " AND ", scope, depth),
            Some(Expr::Or(l)) => self.logical(&l.operands, " OR ", scope, depth),
            Some(Expr::Not(inner)) => {
                self.sql("NOT (");
                self.filter(inner, scope, depth + 1)?;
                self.sql(")");
                Ok(())
            }
            Some(Expr::ValuePath(vp)) => self.value_path(vp, scope, depth),
        }
    }

    fn logical(
        &mut self,
        operands: &[Filter],
        joiner: &str,
        scope: Scope,
        depth: usize,
    ) -> Result<(), FilterError> {
        if operands.is_empty() {
            return Err(invalid("'and'/'or' needs operands"));
        }
        self.sql("(");
        for (i, operand) in operands.iter().enumerate() {
            if i > 0 {
                self.sql(joiner);
            }
            self.filter(operand, scope, depth + 1)?;
        }
        self.sql(")");
        Ok(())
    }

    fn value_path(
        &mut self,
        vp: &ValuePath,
        scope: Scope,
        depth: usize,
    ) -> Result<(), FilterError> {
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
        self.sql(multi.exists());
        self.filter(inner, Scope::Element(multi), depth + 1)?;
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
            Scope::Row => {
                let attr = match self.resource {
                    Resource::User => user_attribute(path)?,
                    Resource::Group => group_attribute(path)?,
                };
                match attr {
                    RowAttr::Column(column) => self.compare(&column, op, value, &what),
                    RowAttr::Multi(multi, None) if op == Operator::Pr => {
                        self.sql(multi.present());
                        Ok(())
                    }
                    RowAttr::Multi(multi, field) => {
                        // `attr op x` compares the value sub-attribute.
                        let field = field
                            .or_else(|| multi.field("value"))
                            .ok_or_else(|| unknown_attribute(path))?;
                        self.sql(multi.exists());
                        self.compare(&field, op, value, &what)?;
                        self.sql(")");
                        Ok(())
                    }
                }
            }
        }
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
                self.sql(&format!("{} {} ", o.sql, sql_operator(op)));
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
                self.sql(&format!("{} {} ", o.sql, sql_operator(op)));
                self.bind(Param::Time(time.with_timezone(&Utc)));
                Ok(())
            }
            Kind::Uuid => {
                let text = text_value(value, what)?;
                if !matches!(op, Operator::Eq | Operator::Ne) {
                    // Ordering and substring matches work on the canonical text form.
                    let as_text = operand(&format!("{}::text", o.sql), TEXT_CI, o.nullable);
                    self.compare_text(&as_text, false, op, text);
                    return Ok(());
                }
                match (Uuid::try_parse(text.trim()), op) {
                    (Ok(id), _) => {
                        self.guarded(o, op, |c| {
                            c.sql(&format!("{} {} ", o.sql, sql_operator(op)));
                            c.bind(Param::Uuid(id));
                        });
                    }
                    // Not an id: nothing equals it, everything differs from it.
                    (Err(_), Operator::Eq) => self.sql("FALSE"),
                    (Err(_), _) => self.sql("TRUE"),
                }
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
                c.sql(&format!("{} {} ", o.sql, sql_operator(op)));
                c.bind(Param::Text(param));
            } else {
                c.sql(&format!("lower({}) {} lower(", o.sql, sql_operator(op)));
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
            self.sql(&format!("({} IS NULL OR ", o.sql));
            body(self);
            self.sql(")");
        } else {
            self.sql(&format!("({} IS NOT NULL AND ", o.sql));
            body(self);
            self.sql(")");
        }
    }

    fn compare_null(&mut self, o: &Operand, op: Operator, what: &str) -> Result<(), FilterError> {
        let sql = match (op, o.nullable) {
            (Operator::Eq, true) => format!("{} IS NULL", o.sql),
            (Operator::Ne, true) => format!("{} IS NOT NULL", o.sql),
            (Operator::Eq, false) => "FALSE".to_owned(),
            (Operator::Ne, false) => "TRUE".to_owned(),
            _ => {
                return Err(invalid(format!(
                    "'{what}': only eq and ne compare with null"
                )));
            }
        };
        self.sql(&sql);
        Ok(())
    }

    fn present(&mut self, o: &Operand) {
        let sql = match (o.kind, o.nullable) {
            (Kind::Text { .. }, true) => format!("({0} IS NOT NULL AND {0} <> '')", o.sql),
            (Kind::Text { .. }, false) => format!("{} <> ''", o.sql),
            (_, true) => format!("{} IS NOT NULL", o.sql),
            (_, false) => "TRUE".to_owned(),
        };
        self.sql(&sql);
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
                .contains("coalesce((e->>'primary')::boolean, false) = $1")
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
                "phoneNumbers",
                cmp("type", Operator::Eq, "x".into())
            ))
            .contains("phoneNumbers")
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
        assert!(error(&cmp("title", Operator::Eq, "x".into())).contains("'title'"));
        assert!(error(&cmp("name.nickName", Operator::Eq, "x".into())).contains("name.nickName"));
        assert!(
            error(&cmp_path(
                path("urn:example:custom", "x", ""),
                Operator::Eq,
                "x".into()
            ))
            .contains("urn:example:custom:x")
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
        assert!(error(&deep).contains("deeply"));
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
            group_error(&cmp("members.display", Operator::Eq, "x".into()))
                .contains("members.display")
        );
        assert!(
            group_error(&value_path(
                "members",
                cmp("display", Operator::Eq, "x".into())
            ))
            .contains("members.display")
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
}
