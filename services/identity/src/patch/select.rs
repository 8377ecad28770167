//! Which elements of a multi-valued attribute an operation selects: by a
//! value filter (`emails[type eq "work"]`) or, for a remove by value, by
//! the values it lists.

use std::collections::{HashMap, HashSet};

use identity_proto::v1::Filter;
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use serde_json::{Map, Value as Json};

use super::resolve::{Target, last_key};
use super::schema::PatchError;
use crate::attr::{canonical, element_attribute};
use crate::filter::ElementFilter;

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

/// A value as text that two values share exactly when a remove by value
/// takes them as equal: strings in any case, numbers by value.
fn equality_key(value: &Json) -> String {
    match value {
        Json::String(s) => format!("s{}", s.to_lowercase()),
        Json::Number(n) => match n.as_f64() {
            // -0.0 == 0.0.
            Some(f) => format!("n{}", (f + 0.0).to_bits()),
            None => format!("j{n}"),
        },
        other => format!("j{other}"),
    }
}

/// A path's value filter, checked whole against the attribute it filters
/// before any element is read, so a bad filter fails whether or not the
/// attribute has values, as it does in a list.
pub(super) struct ValueFilter<'a> {
    pub filter: &'a Filter,
    elements: ElementFilter,
}

impl<'a> ValueFilter<'a> {
    /// Elements are read as a list filter reads them: the same kinds and
    /// case rules, the same errors ([`ElementFilter`]).
    pub(super) fn new(filter: &'a Filter, target: &Target) -> Result<Self, PatchError> {
        let elements = ElementFilter::new(filter, last_key(target), target.elements)
            .map_err(|e| PatchError::InvalidPath(e.to_string()))?;
        Ok(ValueFilter { filter, elements })
    }

    /// The indexes of the elements of `items` the filter selects.
    pub(super) fn matching(&self, items: &[Json]) -> Vec<usize> {
        items
            .iter()
            .enumerate()
            .filter(|(_, item)| self.elements.holds(item))
            .map(|(i, _)| i)
            .collect()
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
