//! What a filter may be before anything walks it, and why one is refused.

use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::{AttributePath, Filter};
use prost_types::value::Kind as ValueKind;

use crate::attr::check_text;

/// Deeper trees are refused; no IdP sends anything close.
pub(crate) const MAX_DEPTH: usize = 32;

/// Comparisons one filter may hold; no IdP sends anything close, and each
/// one costs SQL text and a bound parameter.
pub(crate) const MAX_TERMS: usize = 64;

/// Why a filter cannot be compiled; the message names the culprit.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(String);

pub(super) fn invalid(message: impl Into<String>) -> FilterError {
    FilterError(message.into())
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
