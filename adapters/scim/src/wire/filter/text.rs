//! Filter text written back from a parsed tree, which the tests parse again
//! to check that parsing loses nothing.

use std::fmt;

use identity_proto::v1::{AttributePath, Filter, comparison, filter};
use prost_types::value::Kind as ValueKind;
use serde_json::Value as Json;

use crate::wire::schema::{self, Resource};

/// Filter text for a parsed tree: parsing it gives the same tree back
/// (`Display`). Logical operands that are themselves `and`/`or` are
/// parenthesised, `not` always is, strings are JSON-quoted.
pub struct FilterText<'a> {
    resource: Resource,
    filter: &'a Filter,
}

impl<'a> FilterText<'a> {
    pub fn new(resource: Resource, filter: &'a Filter) -> Self {
        FilterText { resource, filter }
    }

    fn write(
        &self,
        f: &mut fmt::Formatter<'_>,
        filter: &Filter,
        in_value_filter: bool,
    ) -> fmt::Result {
        use filter::Expression;
        match &filter.expression {
            None => Ok(()),
            Some(Expression::Comparison(c)) => {
                let path = c.path.as_deref().cloned().unwrap_or_default();
                self.write_path(f, &path, in_value_filter)?;
                let op = comparison::Operator::try_from(c.operator)
                    .unwrap_or(comparison::Operator::Unspecified);
                write!(f, " {}", operator_name(op))?;
                if op != comparison::Operator::Pr {
                    f.write_str(" ")?;
                    write_value(f, c.value.as_ref())?;
                }
                Ok(())
            }
            Some(Expression::And(logical)) => {
                self.write_operands(f, &logical.operands, " and ", in_value_filter)
            }
            Some(Expression::Or(logical)) => {
                self.write_operands(f, &logical.operands, " or ", in_value_filter)
            }
            Some(Expression::Not(inner)) => {
                f.write_str("not (")?;
                self.write(f, inner, in_value_filter)?;
                f.write_str(")")
            }
            Some(Expression::ValuePath(vp)) => {
                let path = vp.path.as_deref().cloned().unwrap_or_default();
                self.write_path(f, &path, in_value_filter)?;
                f.write_str("[")?;
                if let Some(inner) = &vp.filter {
                    self.write(f, inner, true)?;
                }
                f.write_str("]")
            }
        }
    }

    fn write_operands(
        &self,
        f: &mut fmt::Formatter<'_>,
        operands: &[Filter],
        separator: &str,
        in_value_filter: bool,
    ) -> fmt::Result {
        for (index, operand) in operands.iter().enumerate() {
            if index > 0 {
                f.write_str(separator)?;
            }
            let nested = matches!(
                operand.expression,
                Some(filter::Expression::And(_) | filter::Expression::Or(_))
            );
            if nested {
                f.write_str("(")?;
            }
            self.write(f, operand, in_value_filter)?;
            if nested {
                f.write_str(")")?;
            }
        }
        Ok(())
    }

    /// Inside a value filter paths are bare sub-attribute names. A core
    /// attribute whose name the enterprise extension also has is qualified
    /// with the core URN, since the bare name means the extension's.
    fn write_path(
        &self,
        f: &mut fmt::Formatter<'_>,
        path: &AttributePath,
        in_value_filter: bool,
    ) -> fmt::Result {
        if !in_value_filter {
            if !path.schema.is_empty() {
                write!(f, "{}:", path.schema)?;
            } else if self.resource == Resource::User && schema::enterprise_only(&path.attribute) {
                write!(f, "{}:", self.resource.core_schema())?;
            }
        }
        f.write_str(&path.attribute)?;
        if !path.sub_attribute.is_empty() {
            write!(f, ".{}", path.sub_attribute)?;
        }
        Ok(())
    }
}

impl fmt::Display for FilterText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, self.filter, false)
    }
}

fn operator_name(op: comparison::Operator) -> &'static str {
    use comparison::Operator as Op;
    match op {
        Op::Eq | Op::Unspecified => "eq",
        Op::Ne => "ne",
        Op::Co => "co",
        Op::Sw => "sw",
        Op::Ew => "ew",
        Op::Pr => "pr",
        Op::Gt => "gt",
        Op::Ge => "ge",
        Op::Lt => "lt",
        Op::Le => "le",
    }
}

/// Strings JSON-quoted; numbers as JSON numbers, which read back as the
/// same `f64`; lists and objects (never parsed from filter text) as JSON.
fn write_value(f: &mut fmt::Formatter<'_>, value: Option<&prost_types::Value>) -> fmt::Result {
    match value.and_then(|v| v.kind.as_ref()) {
        None | Some(ValueKind::NullValue(_)) => f.write_str("null"),
        Some(ValueKind::BoolValue(b)) => write!(f, "{b}"),
        Some(ValueKind::StringValue(s)) => write!(f, "{}", Json::String(s.clone())),
        Some(ValueKind::NumberValue(n)) => match serde_json::Number::from_f64(*n) {
            Some(number) => write!(f, "{number}"),
            None => f.write_str("null"),
        },
        Some(other) => {
            let json = identity_proto::value_to_json(prost_types::Value {
                kind: Some(other.clone()),
            });
            write!(f, "{json}")
        }
    }
}
