//! The meaning of one comparison, decided once from the [`Kind`] of what it
//! names: which operators apply, how the value is read, whether case
//! matters. The SQL compiler emits a [`Test`]; the PATCH engine evaluates
//! the same [`Test`] on a JSON element ([`ElementFilter`]). Both read their
//! kinds from the same attribute resolution, so a value filter selects the
//! same elements in a list and in a PATCH.

use chrono::{DateTime, Utc};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::{AttributePath, Comparison, Filter};
use serde_json::Value as Json;
use uuid::Uuid;

use super::attribute::{Kind, Multi};
use super::bounds::{FilterError, invalid};
use crate::attr::{display_path, element_attribute};

/// A comparison checked against its operand's kind, ready to be emitted as
/// SQL or evaluated on a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    /// `pr`: a value is there and not empty.
    Present,
    /// `eq null` (`absent`) or `ne null` on a nullable operand.
    Null {
        absent: bool,
    },
    /// Decided by the comparison alone (`eq null` on a value that is never
    /// null, `eq` with a malformed id).
    Always(bool),
    /// Text comparison; on ids and unregistered values, of their text form.
    Text {
        case_exact: bool,
        op: Operator,
        text: String,
    },
    Bool {
        op: Operator,
        value: bool,
    },
    Time {
        op: Operator,
        value: DateTime<Utc>,
    },
    Uuid {
        op: Operator,
        value: Uuid,
    },
    /// A number or boolean compared with an unregistered value, as JSON.
    Json {
        op: Operator,
        value: Json,
    },
}

/// The path, operator and value of a comparison.
pub(super) fn parts(c: &Comparison) -> Result<(&AttributePath, Operator, Json), FilterError> {
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
    Ok((path, op, value))
}

/// `op value` on an operand of `kind`, or why it does not apply (`what`
/// names the attribute in the message).
pub(super) fn plan(
    kind: Kind,
    nullable: bool,
    op: Operator,
    value: Json,
    what: &str,
) -> Result<Test, FilterError> {
    if op == Operator::Pr {
        return Ok(Test::Present);
    }
    if value.is_null() {
        return match (op, nullable) {
            (Operator::Eq | Operator::Ne, true) => Ok(Test::Null {
                absent: op == Operator::Eq,
            }),
            (Operator::Eq, false) => Ok(Test::Always(false)),
            (Operator::Ne, false) => Ok(Test::Always(true)),
            _ => Err(invalid(format!(
                "'{what}': only eq and ne compare with null"
            ))),
        };
    }
    let ordering = matches!(
        op,
        Operator::Gt | Operator::Ge | Operator::Lt | Operator::Le
    );
    let equality = matches!(op, Operator::Eq | Operator::Ne);
    let does_not_apply = |what_kind: &str| {
        invalid(format!(
            "'{what}' is {what_kind}: '{}' does not apply",
            operator_name(op)
        ))
    };
    match kind {
        Kind::Text { case_exact } => Ok(Test::Text {
            case_exact,
            op,
            text: text_value(value, what)?,
        }),
        Kind::Binary => {
            if ordering {
                return Err(does_not_apply("binary"));
            }
            Ok(Test::Text {
                case_exact: true,
                op,
                text: text_value(value, what)?,
            })
        }
        Kind::Bool => {
            let b = bool_value(&value).ok_or_else(|| {
                invalid(format!(
                    "'{what}' is boolean: compare it with true or false"
                ))
            })?;
            if !equality {
                return Err(does_not_apply("boolean"));
            }
            Ok(Test::Bool { op, value: b })
        }
        Kind::Time => {
            if matches!(op, Operator::Co | Operator::Sw | Operator::Ew) {
                return Err(does_not_apply("a timestamp"));
            }
            let time = value
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .ok_or_else(|| {
                    invalid(format!("'{what}' compares with an RFC 3339 timestamp, e.g. \"2025-01-31T12:00:00Z\""))
                })?;
            Ok(Test::Time {
                op,
                value: time.with_timezone(&Utc),
            })
        }
        Kind::Uuid => {
            let text = text_value(value, what)?;
            if !equality {
                // Ordering and substring matches work on the canonical text form.
                return Ok(Test::Text {
                    case_exact: false,
                    op,
                    text,
                });
            }
            Ok(match Uuid::try_parse(text.trim()) {
                Ok(id) => Test::Uuid { op, value: id },
                // Not an id: nothing equals it, everything differs from it.
                Err(_) => Test::Always(op == Operator::Ne),
            })
        }
        Kind::Json => {
            if !equality && !matches!(op, Operator::Co | Operator::Sw | Operator::Ew) {
                return Err(invalid(format!(
                    "'{what}' belongs to an unregistered extension: only eq, ne, co, sw, ew and pr apply, not '{}'",
                    operator_name(op)
                )));
            }
            match value {
                Json::Number(_) | Json::Bool(_) if equality => Ok(Test::Json { op, value }),
                value => Ok(Test::Text {
                    case_exact: false,
                    op,
                    text: text_value(value, what)?,
                }),
            }
        }
    }
}

impl Test {
    /// Whether `actual` (absent or JSON null: `None`), a value of `kind`,
    /// passes, as the SQL the compiler emits for this test decides on the
    /// stored value. Text is ordered by code point, as the database's C
    /// collation orders it. Case is folded per character on both sides;
    /// Postgres' `lower()` and Rust's differ only on rare letters ('İ').
    pub(crate) fn holds(&self, kind: Kind, nullable: bool, actual: Option<&Json>) -> bool {
        let actual = actual.filter(|v| !v.is_null());
        let ne = |op: &Operator| *op == Operator::Ne;
        match self {
            Test::Present => match kind {
                Kind::Json => actual.is_some_and(|a| match a {
                    Json::String(s) => !s.is_empty(),
                    Json::Array(v) => !v.is_empty(),
                    Json::Object(o) => !o.is_empty(),
                    _ => true,
                }),
                Kind::Text { .. } | Kind::Binary => actual.is_some_and(|a| !text_of(a).is_empty()),
                _ => !nullable || actual.is_some(),
            },
            Test::Null { absent } => actual.is_none() == *absent,
            Test::Always(b) => *b,
            Test::Text {
                case_exact,
                op,
                text,
            } => actual.map_or(ne(op), |a| {
                let a = text_of(a);
                if *case_exact {
                    text_holds(*op, &a, text)
                } else {
                    text_holds(*op, &a.to_lowercase(), &text.to_lowercase())
                }
            }),
            // A boolean sub-attribute is true only when stored as JSON true.
            Test::Bool { op, value } => {
                let stored = actual == Some(&Json::Bool(true));
                (stored == *value) != ne(op)
            }
            Test::Time { op, value } => actual
                .and_then(Json::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .is_some_and(|t| ordered(*op, t.with_timezone(&Utc).cmp(value))),
            Test::Uuid { op, value } => actual
                .and_then(Json::as_str)
                .and_then(|s| Uuid::try_parse(s).ok())
                .map_or(ne(op), |id| (id == *value) != ne(op)),
            Test::Json { op, value } => actual.map_or(ne(op), |a| json_equal(a, value) != ne(op)),
        }
    }
}

/// A value filter on the elements of one multi-valued attribute, checked
/// whole before any element is read (so a bad filter fails even on an
/// attribute without values, as in a list).
#[derive(Debug)]
pub(crate) enum ElementFilter {
    And(Vec<ElementFilter>),
    Or(Vec<ElementFilter>),
    Not(Box<ElementFilter>),
    Compare {
        name: String,
        kind: Kind,
        nullable: bool,
        test: Test,
        /// A multi-valued simple attribute's element is its own `value`.
        scalar_value: bool,
    },
}

impl ElementFilter {
    /// The filter inside `parent[...]`; `multi` is the attribute as the
    /// compiler knows it, `None` for attributes it does not register (whose
    /// values compare like an unregistered extension's).
    pub(crate) fn new(
        filter: &Filter,
        parent: &str,
        multi: Option<Multi>,
    ) -> Result<ElementFilter, FilterError> {
        let logical = |operands: &[Filter]| {
            if operands.is_empty() {
                return Err(invalid("'and'/'or' needs operands"));
            }
            operands
                .iter()
                .map(|f| ElementFilter::new(f, parent, multi))
                .collect::<Result<Vec<_>, _>>()
        };
        match filter.expression.as_ref() {
            None => Err(invalid("empty filter expression")),
            Some(Expr::And(l)) => Ok(ElementFilter::And(logical(&l.operands)?)),
            Some(Expr::Or(l)) => Ok(ElementFilter::Or(logical(&l.operands)?)),
            Some(Expr::Not(inner)) => Ok(ElementFilter::Not(Box::new(ElementFilter::new(
                inner, parent, multi,
            )?))),
            Some(Expr::ValuePath(vp)) => Err(invalid(format!(
                "'{}': value paths cannot be nested",
                vp.path.as_deref().map(display_path).unwrap_or_default()
            ))),
            Some(Expr::Comparison(c)) => {
                let (path, op, value) = parts(c)?;
                let what = display_path(path);
                let (name, kind, nullable) = match multi {
                    Some(multi) => {
                        let (name, field) = multi.element_field(path)?;
                        (name.to_owned(), field.kind, field.nullable)
                    }
                    None => {
                        if path.value_filter.is_some() {
                            return Err(invalid(format!("'{what}': value paths cannot be nested")));
                        }
                        let name = element_attribute(path, parent);
                        (name.to_owned(), Kind::Json, true)
                    }
                };
                let test = plan(kind, nullable, op, value, &what)?;
                Ok(ElementFilter::Compare {
                    scalar_value: multi.is_none() && name.eq_ignore_ascii_case("value"),
                    name,
                    kind,
                    nullable,
                    test,
                })
            }
        }
    }

    /// Whether `element` passes.
    pub(crate) fn holds(&self, element: &Json) -> bool {
        match self {
            ElementFilter::And(all) => all.iter().all(|f| f.holds(element)),
            ElementFilter::Or(any) => any.iter().any(|f| f.holds(element)),
            ElementFilter::Not(inner) => !inner.holds(element),
            ElementFilter::Compare {
                name,
                kind,
                nullable,
                test,
                scalar_value,
            } => {
                let actual = match element {
                    Json::Object(object) => object.get(name.as_str()).or_else(|| {
                        object
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v)
                    }),
                    scalar if *scalar_value => Some(scalar),
                    _ => None,
                };
                test.holds(*kind, *nullable, actual)
            }
        }
    }
}

/// A JSON value as SQL's `->>` gives it: strings bare, the rest as JSON.
fn text_of(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn text_holds(op: Operator, actual: &str, expected: &str) -> bool {
    match op {
        Operator::Co => actual.contains(expected),
        Operator::Sw => actual.starts_with(expected),
        Operator::Ew => actual.ends_with(expected),
        // Code point order, as the database's C collation orders text.
        op => ordered(op, actual.cmp(expected)),
    }
}

fn ordered(op: Operator, ordering: std::cmp::Ordering) -> bool {
    match op {
        Operator::Eq => ordering.is_eq(),
        Operator::Ne => ordering.is_ne(),
        Operator::Gt => ordering.is_gt(),
        Operator::Ge => ordering.is_ge(),
        Operator::Lt => ordering.is_lt(),
        Operator::Le => ordering.is_le(),
        _ => false,
    }
}

/// jsonb equality: numbers by value, everything else as written.
fn json_equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        _ => a == b,
    }
}

pub(super) fn operator_name(op: Operator) -> &'static str {
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
