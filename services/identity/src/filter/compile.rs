//! The compiler: a proto `Filter` tree to one SQL boolean expression, each
//! comparison emitted as the [`Test`] its attribute's [`Kind`] makes of it.

use diesel::sql_types::Bool;
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::{Comparison, Filter, ValuePath};
use serde_json::Value as Json;

use super::attribute::{Kind, Multi, Operand, RowAttr, TEXT_CI, resolve};
use super::bounds::{FilterError, check_bounds, invalid};
use super::compare::{Test, operator_name, parts, plan};
use super::sql::{Param, Sql, SqlFilter};
use crate::attr::{CORE_URN, ENTERPRISE_URN, GROUP_URN, Resource, Schema, display_path, schema_of};

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
        let (path, op, value) = parts(c)?;
        let what = display_path(path);
        match scope {
            Scope::Element(multi) => {
                let (_, field) = multi.element_field(path)?;
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

    /// One comparison, as [`plan`] decides it for the operand's kind.
    fn compare(
        &mut self,
        o: &Operand,
        op: Operator,
        value: Json,
        what: &str,
    ) -> Result<(), FilterError> {
        match plan(o.kind, o.nullable, op, value, what)? {
            Test::Present => self.present(o),
            Test::Null { absent } => self.null(o, absent),
            Test::Always(true) => self.sql("TRUE"),
            Test::Always(false) => self.sql("FALSE"),
            Test::Text {
                case_exact,
                op,
                text,
            } => {
                let as_text = match o.kind {
                    Kind::Uuid => o.wrapped("", "::text", TEXT_CI, o.nullable),
                    Kind::Json => o.wrapped("(", " #>> '{}')", TEXT_CI, true),
                    _ => o.clone(),
                };
                self.compare_text(&as_text, case_exact, op, text);
            }
            Test::Bool { op, value } => {
                self.emit(o);
                self.sql(&format!(" {} ", sql_operator(op)));
                self.bind(Param::Bool(value));
            }
            Test::Time { op, value } => {
                self.emit(o);
                self.sql(&format!(" {} ", sql_operator(op)));
                self.bind(Param::Time(value));
            }
            Test::Uuid { op, value } => self.guarded(o, op, |c| {
                c.emit(o);
                c.sql(&format!(" {} ", sql_operator(op)));
                c.bind(Param::Uuid(value));
            }),
            Test::Json { op, value } => self.guarded(o, op, |c| {
                c.emit(o);
                c.sql(&format!(" {} CAST(", sql_operator(op)));
                c.bind(Param::Text(value.to_string()));
                c.sql(" AS jsonb)");
            }),
        }
        Ok(())
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

    /// `eq null` / `ne null` on a nullable operand; JSON null is no value.
    fn null(&mut self, o: &Operand, absent: bool) {
        let json = o.kind == Kind::Json;
        self.sql(if json { "(" } else { "" });
        self.emit(o);
        match (absent, json) {
            (true, false) => self.sql(" IS NULL"),
            (false, false) => self.sql(" IS NOT NULL"),
            (true, true) => {
                self.sql(" IS NULL OR ");
                self.emit(o);
                self.sql(" = 'null'::jsonb)");
            }
            (false, true) => {
                self.sql(" IS NOT NULL AND ");
                self.emit(o);
                self.sql(" <> 'null'::jsonb)");
            }
        }
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
