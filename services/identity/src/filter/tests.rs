use super::attribute::NAME_PRESENT;
use super::bounds::{MAX_DEPTH, MAX_TERMS};
use super::*;
use crate::attr::Resource;
use crate::testing::{cmp_path, path};
use diesel::pg::Pg;
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::{Filter, Logical, ValuePath};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

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
    assert!(error(&cmp("meta.lastModified", Operator::Co, "2025".into())).contains("timestamp"));
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
    assert!(error(&value_path("title", cmp("type", Operator::Eq, "x".into()))).contains("title"));
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
        error(&cmp("phoneNumbers.color", Operator::Eq, "x".into())).contains("phoneNumbers.color")
    );
    assert!(error(&Filter { expression: None }).contains("empty"));
    assert!(error(&and(vec![])).contains("operands"));
    assert!(error(&cmp("userName", Operator::Unspecified, "x".into())).contains("operator"));
    assert!(
        error(&cmp("userName", Operator::Eq, serde_json::json!(["a"]))).contains("single value")
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
    assert!(group_error(&cmp("members.color", Operator::Eq, "x".into())).contains("members.color"));
    assert!(
        group_error(&value_path(
            "members",
            cmp("color", Operator::Eq, "x".into())
        ))
        .contains("members.color")
    );
    assert!(group_error(&cmp("members.$ref", Operator::Eq, "x".into())).contains("members.value"));
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
    assert!(error(&cmp("x509Certificates.value", Operator::Gt, "MIIB".into())).contains("binary"));
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
