//! Which elements of a multi-valued attribute an operation selects: by a
//! value filter (`emails[type eq "work"]`) or, for a remove by value, by
//! the values it lists.

use std::collections::{HashMap, HashSet};

use identity_proto::v1::Filter;
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use serde_json::{Map, Value as Json};

use super::resolve::get_ci;
use super::schema::PatchError;
use crate::attr::{canonical, element_attribute};

/// The values a remove-by-value names, indexed so that each stored value is
/// tested with hash lookups (one per distinct set of sub-attribute names
/// the selectors use) instead of against every selector.
pub(super) struct Selectors {
    /// Selectors that are not objects, by [`equality_key`].
    scalars: HashSet<String>,
    /// Object selectors by their lowercase sub-attribute names (sorted):
    /// the [`equality_key`]s of their values, in that name order.
    objects: HashMap<Vec<String>, HashSet<Vec<String>>>,
}

impl Selectors {
    pub(super) fn new(selectors: &[Json]) -> Selectors {
        let mut index = Selectors {
            scalars: HashSet::new(),
            objects: HashMap::new(),
        };
        for selector in selectors {
            match selector {
                Json::Object(wanted) => {
                    let mut fields: Vec<(String, String)> = wanted
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), equality_key(v)))
                        .collect();
                    fields.sort();
                    let (names, values) = fields.into_iter().unzip();
                    index.objects.entry(names).or_default().insert(values);
                }
                other => {
                    index.scalars.insert(equality_key(other));
                }
            }
        }
        index
    }

    /// Whether some selector selects `item`: every sub-attribute it gives
    /// has that value in `item` (strings in any case, numbers by value).
    pub(super) fn select(&self, item: &Json) -> bool {
        let Json::Object(object) = item else {
            return self.scalars.contains(&equality_key(item));
        };
        // The first spelling of each name, as `get_ci` finds it.
        let mut fields: HashMap<String, &Json> = HashMap::with_capacity(object.len());
        for (key, value) in object {
            fields.entry(key.to_ascii_lowercase()).or_insert(value);
        }
        self.objects.iter().any(|(names, wanted)| {
            names
                .iter()
                .map(|name| fields.get(name).map(|v| equality_key(v)))
                .collect::<Option<Vec<String>>>()
                .is_some_and(|values| wanted.contains(&values))
        })
    }
}

/// A value as text that two values share exactly when [`json_equal`] holds.
fn equality_key(value: &Json) -> String {
    match value {
        Json::String(s) => format!("s{}", s.to_lowercase()),
        Json::Number(n) => match n.as_f64() {
            // -0.0 == 0.0, as json_equal compares.
            Some(f) => format!("n{}", (f + 0.0).to_bits()),
            None => format!("j{n}"),
        },
        other => format!("j{other}"),
    }
}

pub(super) fn matching(
    items: &[Json],
    filter: &Filter,
    parent: &str,
) -> Result<Vec<usize>, PatchError> {
    let mut matched = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if matches(filter, item, parent)? {
            matched.push(i);
        }
    }
    Ok(matched)
}

/// Evaluates a value filter on one element of a multi-valued attribute.
fn matches(filter: &Filter, element: &Json, parent: &str) -> Result<bool, PatchError> {
    match filter.expression.as_ref() {
        None => Err(PatchError::InvalidPath("empty value filter".into())),
        Some(Expr::And(l)) => {
            for operand in &l.operands {
                if !matches(operand, element, parent)? {
                    return Ok(false);
                }
            }
            Ok(!l.operands.is_empty())
        }
        Some(Expr::Or(l)) => {
            for operand in &l.operands {
                if matches(operand, element, parent)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Some(Expr::Not(inner)) => Ok(!matches(inner, element, parent)?),
        Some(Expr::ValuePath(_)) => Err(PatchError::InvalidPath(
            "value filters cannot be nested".into(),
        )),
        Some(Expr::Comparison(c)) => {
            let path = c.path.as_deref().ok_or_else(|| {
                PatchError::InvalidPath("value filter without an attribute".into())
            })?;
            let op = Operator::try_from(c.operator)
                .ok()
                .filter(|op| *op != Operator::Unspecified)
                .ok_or_else(|| {
                    PatchError::InvalidPath("value filter with an unknown operator".into())
                })?;
            let name = element_attribute(path, parent);
            let actual = match element {
                Json::Object(object) => get_ci(object, name),
                // Multi-valued simple attributes: the element is its own value.
                scalar if name.eq_ignore_ascii_case("value") => Some(scalar),
                _ => None,
            }
            .filter(|v| !v.is_null());
            let expected = c
                .value
                .clone()
                .map(identity_proto::value_to_json)
                .unwrap_or(Json::Null);
            Ok(compare(actual, op, &expected))
        }
    }
}

fn compare(actual: Option<&Json>, op: Operator, expected: &Json) -> bool {
    let lower = |v: &Json| v.as_str().map(str::to_lowercase);
    match op {
        Operator::Pr => actual.is_some_and(|a| match a {
            Json::String(s) => !s.is_empty(),
            Json::Array(v) => !v.is_empty(),
            Json::Object(o) => !o.is_empty(),
            _ => true,
        }),
        Operator::Eq => actual.map_or(expected.is_null(), |a| json_equal(a, expected)),
        Operator::Ne => !actual.map_or(expected.is_null(), |a| json_equal(a, expected)),
        Operator::Co | Operator::Sw | Operator::Ew => {
            match (actual.and_then(lower), lower(expected)) {
                (Some(a), Some(e)) => match op {
                    Operator::Co => a.contains(&e),
                    Operator::Sw => a.starts_with(&e),
                    _ => a.ends_with(&e),
                },
                _ => false,
            }
        }
        _ => {
            let ordering = match (actual, expected) {
                (Some(Json::String(a)), Json::String(e)) => {
                    Some(a.to_lowercase().cmp(&e.to_lowercase()))
                }
                (Some(Json::Number(a)), Json::Number(e)) => a
                    .as_f64()
                    .zip(e.as_f64())
                    .and_then(|(a, e)| a.partial_cmp(&e)),
                _ => None,
            };
            ordering.is_some_and(|o| match op {
                Operator::Gt => o.is_gt(),
                Operator::Ge => o.is_ge(),
                Operator::Lt => o.is_lt(),
                _ => o.is_le(),
            })
        }
    }
}

/// Strings compare case-insensitively, numbers by value.
fn json_equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::String(a), Json::String(b)) => a.to_lowercase() == b.to_lowercase(),
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        _ => a == b,
    }
}

/// The element a value filter of equalities describes (`type eq "work"`
/// gives `{"type": "work"}`).
pub(super) fn equality_element(
    filter: &Filter,
    parent: &str,
    subs: Option<&[&'static str]>,
) -> Option<Map<String, Json>> {
    match filter.expression.as_ref()? {
        Expr::Comparison(c) if c.operator == Operator::Eq as i32 => {
            let path = c.path.as_deref()?;
            let value = c.value.clone().map(identity_proto::value_to_json)?;
            if value.is_null() {
                return None;
            }
            let name = element_attribute(path, parent);
            let name = subs
                .and_then(|s| canonical(s, name))
                .unwrap_or(name)
                .to_owned();
            Some(Map::from_iter([(name, value)]))
        }
        Expr::And(l) if !l.operands.is_empty() => {
            let mut element = Map::new();
            for operand in &l.operands {
                element.extend(equality_element(operand, parent, subs)?);
            }
            Some(element)
        }
        _ => None,
    }
}
