//! Compiles a proto `SortOrder` into the sort key of a list: one SQL
//! expression over the same attributes filters can name (RFC 7644
//! §3.4.2.3). Case-insensitive strings sort by their lowercase form; a
//! multi-valued attribute sorts by its primary value, else its first. Ties
//! are broken by id and NULLs come last when ascending, first when
//! descending (the RFC's rule, which makes descending the exact reverse of
//! ascending, so one index serves both directions).

use identity_proto::v1::{AttributePath, SortOrder};
use sha2::Sha256;

use crate::attr::{Resource, attribute_parts, display_path};
use crate::filter::{Kind, Multi, Operand, RowAttr, Sql, check_path_text, resolve};

/// Why a sort order cannot be applied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SortError(String);

fn invalid(message: impl Into<String>) -> SortError {
    SortError(message.into())
}

/// The key a list is ordered by (then by id).
#[derive(Debug, Clone)]
pub(crate) struct SortKey {
    /// Ordered by the database's own comparison of this expression.
    pub expr: Sql<()>,
    /// The SQL type a key value read back as text is cast to.
    pub cast: &'static str,
    pub nullable: bool,
    pub descending: bool,
}

impl SortKey {
    /// Creation order: the default of every list.
    fn created(resource: Resource) -> SortKey {
        let column = match resource {
            Resource::User => "users.created_at",
            Resource::Group => "groups.created_at",
        };
        SortKey {
            expr: Sql::text(column),
            cast: "timestamptz",
            nullable: false,
            descending: false,
        }
    }

    /// Feeds what decides the order to `hasher` (see [`Sql::digest`]).
    pub(crate) fn digest(&self, hasher: &mut Sha256) {
        use sha2::Digest;
        self.expr.digest(hasher);
        hasher.update([u8::from(self.descending)]);
    }
}

/// The sort key of `order` on `resource`; absent means creation order.
pub(crate) fn compile(order: Option<&SortOrder>, resource: Resource) -> Result<SortKey, SortError> {
    let Some(order) = order else {
        return Ok(SortKey::created(resource));
    };
    let path = order
        .path
        .as_ref()
        .ok_or_else(|| invalid("order_by needs the path of the attribute to sort by"))?;
    check_path_text(path).map_err(invalid)?;
    let what = display_path(path);
    if path.value_filter.is_some() {
        return Err(invalid(format!(
            "cannot sort by '{what}': a sort attribute has no value filter"
        )));
    }
    let o = match resolve(path, resource).map_err(|e| invalid(format!("cannot sort: {e}")))? {
        RowAttr::Scalar(o) => o,
        RowAttr::Multi(multi, _) => element_key(multi, path)?,
        RowAttr::Complex { name, .. } => {
            return Err(invalid(format!(
                "cannot sort by '{name}': it is complex; sort by one of its sub-attributes"
            )));
        }
        RowAttr::Schemas => return Err(invalid("cannot sort by 'schemas'")),
    };
    let (expr, cast) = match o.kind {
        Kind::Text { case_exact: false } => (o.wrapped("lower(", ")", o.kind, o.nullable), "text"),
        Kind::Text { case_exact: true } => (o, "text"),
        Kind::Json => (o.wrapped("lower((", " #>> '{}'))", o.kind, true), "text"),
        Kind::Time => (o, "timestamptz"),
        Kind::Bool => (o, "boolean"),
        Kind::Uuid => (o, "uuid"),
        Kind::Binary => {
            return Err(invalid(format!(
                "cannot sort by '{what}': binary values have no order"
            )));
        }
    };
    Ok(SortKey {
        nullable: expr.nullable,
        expr: expr.sql,
        cast,
        descending: order.descending,
    })
}

/// A multi-valued attribute sorts by a sub-attribute (`value` unless
/// named) of its primary element, else of its first (RFC 7644 §3.4.2.3).
fn element_key(multi: Multi, path: &AttributePath) -> Result<Operand, SortError> {
    let what = display_path(path);
    let array = multi.array().ok_or_else(|| {
        invalid(format!(
            "cannot sort by '{what}': {} has no order of its own",
            multi.name()
        ))
    })?;
    let (_, sub) = attribute_parts(path);
    let sub = if sub.is_empty() { "value" } else { sub };
    let element = format!(
        "coalesce(jsonb_path_query_first({array}, '$[*] ? (@.primary == true)'), {array}->0)"
    );
    multi.field_of(sub, &element).ok_or_else(|| {
        invalid(format!(
            "cannot sort by '{what}': {} has no sub-attribute '{sub}'",
            multi.name()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::pg::Pg;

    fn order(schema: &str, attribute: &str, sub: &str, descending: bool) -> SortOrder {
        SortOrder {
            path: Some(AttributePath {
                schema: schema.into(),
                attribute: attribute.into(),
                sub_attribute: sub.into(),
                value_filter: None,
            }),
            descending,
        }
    }

    fn key(o: &SortOrder, resource: Resource) -> SortKey {
        compile(Some(o), resource).unwrap_or_else(|e| panic!("{e}"))
    }

    fn sql(key: &SortKey) -> String {
        diesel::debug_query::<Pg, _>(&key.expr.clone().typed::<diesel::sql_types::Text>())
            .to_string()
    }

    fn error(o: &SortOrder, resource: Resource) -> String {
        match compile(Some(o), resource) {
            Ok(k) => panic!("expected an error, got {}", sql(&k)),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn default_is_creation_order() {
        let k = compile(None, Resource::User).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sql(&k), "users.created_at -- binds: []");
        assert_eq!(k.cast, "timestamptz");
        assert!(!k.nullable && !k.descending);
        let g = compile(None, Resource::Group).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sql(&g), "groups.created_at -- binds: []");
    }

    #[test]
    fn strings_sort_by_case_rule() {
        let user_name = key(&order("", "UserName", "", true), Resource::User);
        assert_eq!(sql(&user_name), "lower(users.user_name) -- binds: []");
        assert!(user_name.descending && !user_name.nullable);
        let external = key(&order("", "externalId", "", false), Resource::User);
        assert_eq!(sql(&external), "users.external_id -- binds: []");
        assert!(external.nullable);
        let title = key(&order("", "title", "", false), Resource::User);
        assert_eq!(
            sql(&title),
            "lower((users.attributes->>'title')) -- binds: []"
        );
        let group = key(&order("", "displayName", "", false), Resource::Group);
        assert_eq!(sql(&group), "lower(groups.display_name) -- binds: []");
    }

    #[test]
    fn typed_keys_cast_back() {
        for (attr, sub, cast) in [
            ("meta", "lastModified", "timestamptz"),
            ("active", "", "boolean"),
            ("id", "", "uuid"),
        ] {
            assert_eq!(key(&order("", attr, sub, false), Resource::User).cast, cast);
        }
        let manager = key(
            &order(crate::attr::ENTERPRISE_URN, "manager", "value", false),
            Resource::User,
        );
        assert_eq!(sql(&manager), "users.manager_id -- binds: []");
    }

    #[test]
    fn multi_valued_sort_by_primary_else_first() {
        let emails = key(&order("", "emails", "", false), Resource::User);
        assert_eq!(
            sql(&emails),
            "lower((coalesce(jsonb_path_query_first(users.emails, '$[*] ? (@.primary == true)'), users.emails->0)->>'value')) -- binds: []"
        );
        let phones = key(&order("", "phoneNumbers", "type", false), Resource::User);
        assert!(sql(&phones).contains("->>'type')"), "{}", sql(&phones));
        assert!(sql(&phones).contains("jsonb_typeof(users.attributes->'phoneNumbers') = 'array'"));
        assert!(error(&order("", "addresses", "", false), Resource::User).contains("'value'"));
    }

    #[test]
    fn extensions_sort_by_bound_keys() {
        let k = key(
            &order("urn:example:ext", "level", "", false),
            Resource::Group,
        );
        assert_eq!(
            sql(&k),
            r#"lower(((groups.attributes -> $1 -> $2) #>> '{}')) -- binds: ["urn:example:ext", "level"]"#
        );
    }

    #[test]
    fn unsortable_attributes() {
        for (attr, sub, resource, message) in [
            ("name", "", Resource::User, "complex"),
            ("members", "", Resource::Group, "no order"),
            ("groups", "value", Resource::User, "no order"),
            ("x509Certificates", "", Resource::User, "binary"),
            (
                "shoeSize",
                "",
                Resource::User,
                "unknown attribute 'shoeSize'",
            ),
            ("password", "", Resource::User, "never stored"),
            ("schemas", "", Resource::User, "schemas"),
            ("meta", "location", Resource::Group, "derived"),
        ] {
            let err = error(&order("", attr, sub, false), resource);
            assert!(err.contains(message), "{attr}.{sub}: {err}");
        }
        let mut filtered = order("", "emails", "value", false);
        if let Some(path) = filtered.path.as_mut() {
            path.value_filter = Some(Box::default());
        }
        assert!(error(&filtered, Resource::User).contains("value filter"));
        assert!(
            compile(Some(&SortOrder::default()), Resource::User)
                .err()
                .is_some_and(|e| e.to_string().contains("path"))
        );
    }
}
