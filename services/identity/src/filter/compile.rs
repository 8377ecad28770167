//! The compiler: a proto `Filter` tree to one SQL boolean expression, each
//! comparison emitted by the [`Kind`] of the attribute it names.

use chrono::{DateTime, Utc};
use diesel::sql_types::Bool;
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::{Comparison, Filter, ValuePath};
use serde_json::Value as Json;
use uuid::Uuid;

use super::attribute::{Kind, Multi, Operand, RowAttr, TEXT_CI, resolve};
use super::bounds::{FilterError, check_bounds, invalid};
use super::sql::{Param, Sql, SqlFilter};
use crate::attr::{
    CORE_URN, ENTERPRISE_URN, GROUP_URN, Resource, Schema, display_path, element_attribute,
    schema_of,
};

/// Compiles `filter` to SQL over `users` or over `groups`.
pub(crate) fn compile(filter: &Filter, resource: Resource) -> Result<SqlFilter, FilterError> {
    check_bounds(filter).map_err(invalid)?;
    let mut compiler = Compiler {
        out: Sql::empty(),
        resource,
    };
    compiler.filter(filter, Scope::Row)?;
    Ok(compiler.out)
}

#[derive(Debug, Clone, Copy)]
enum Scope {
    Row,
    /// Inside `attr[...]`, where paths name sub-attributes of one element.
    Element(Multi),
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
