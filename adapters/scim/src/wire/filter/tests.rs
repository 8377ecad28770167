use super::*;
use comparison::Operator as Op;
use proptest::prelude::*;

fn path(schema: &str, attribute: &str, sub: &str) -> AttributePath {
    AttributePath {
        schema: schema.into(),
        attribute: attribute.into(),
        sub_attribute: sub.into(),
        value_filter: None,
    }
}

fn cmp(p: AttributePath, op: Op, value: Option<ValueKind>) -> Filter {
    Filter {
        expression: Some(filter::Expression::Comparison(Box::new(Comparison {
            path: Some(Box::new(p)),
            operator: op as i32,
            value: value.map(|k| prost_types::Value { kind: Some(k) }),
        }))),
    }
}

fn s(v: &str) -> Option<ValueKind> {
    Some(ValueKind::StringValue(v.into()))
}

fn and(ops: Vec<Filter>) -> Filter {
    logical(ops, filter::Expression::And)
}

fn or(ops: Vec<Filter>) -> Filter {
    logical(ops, filter::Expression::Or)
}

fn not(f: Filter) -> Filter {
    Filter {
        expression: Some(filter::Expression::Not(Box::new(f))),
    }
}

fn user_filter(text: &str) -> Result<Filter, FilterError> {
    parse_filter(Resource::User, text)
}

fn user_path(text: &str) -> Result<PathTarget, FilterError> {
    parse_path(Resource::User, text)
}

fn user_name_eq(v: &str) -> Filter {
    cmp(path("", "userName", ""), Op::Eq, s(v))
}

#[test]
fn every_operator() {
    for (text, op) in [
        ("eq", Op::Eq),
        ("NE", Op::Ne),
        ("co", Op::Co),
        ("Sw", Op::Sw),
        ("ew", Op::Ew),
        ("gt", Op::Gt),
        ("ge", Op::Ge),
        ("lt", Op::Lt),
        ("le", Op::Le),
    ] {
        assert_eq!(
            user_filter(&format!("userName {text} \"x\"")),
            Ok(cmp(path("", "userName", ""), op, s("x")))
        );
    }
    assert_eq!(
        user_filter("title pr"),
        Ok(cmp(path("", "title", ""), Op::Pr, None))
    );
}

#[test]
fn precedence_is_not_then_and_then_or() {
    let f = user_filter(r#"userName eq "a" or userName eq "b" and not userName eq "c""#);
    assert_eq!(
        f,
        Ok(or(vec![
            user_name_eq("a"),
            and(vec![user_name_eq("b"), not(user_name_eq("c"))]),
        ]))
    );
    let f = user_filter(r#"userName eq "a" and userName eq "b" or userName eq "c""#);
    assert_eq!(
        f,
        Ok(or(vec![
            and(vec![user_name_eq("a"), user_name_eq("b")]),
            user_name_eq("c"),
        ]))
    );
}

#[test]
fn parentheses_override_precedence_and_chains_flatten() {
    let f = user_filter(r#"(userName eq "a" or userName eq "b") and not (userName eq "c")"#);
    assert_eq!(
        f,
        Ok(and(vec![
            or(vec![user_name_eq("a"), user_name_eq("b")]),
            not(user_name_eq("c")),
        ]))
    );
    let f = user_filter(r#"userName eq "a" AND userName eq "b" and userName eq "c""#);
    assert_eq!(
        f,
        Ok(and(vec![
            user_name_eq("a"),
            user_name_eq("b"),
            user_name_eq("c")
        ]))
    );
    assert_eq!(user_filter(r#"((userName eq "a"))"#), Ok(user_name_eq("a")));
}

#[test]
fn value_paths_scope_names_to_the_attribute() {
    let f = user_filter(r#"Emails[TYPE eq "work" and value co "@example.com"]"#);
    let inner = and(vec![
        cmp(path("", "type", ""), Op::Eq, s("work")),
        cmp(path("", "value", ""), Op::Co, s("@example.com")),
    ]);
    assert_eq!(
        f,
        Ok(Filter {
            expression: Some(filter::Expression::ValuePath(Box::new(ValuePath {
                path: Some(Box::new(path("", "emails", ""))),
                filter: Some(Box::new(inner)),
            }))),
        })
    );
    let f = user_filter(r#"emails[primary eq "True"]"#);
    let Ok(Filter {
        expression: Some(filter::Expression::ValuePath(vp)),
    }) = f
    else {
        panic!("expected a value path, got {f:?}")
    };
    assert_eq!(
        vp.filter.map(|f| *f),
        Some(cmp(
            path("", "primary", ""),
            Op::Eq,
            Some(ValueKind::BoolValue(true))
        ))
    );
}

#[test]
fn urn_and_dotted_paths() {
    assert_eq!(
        user_filter(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ),
        Ok(cmp(
            path(schema::ENTERPRISE_USER, "employeeNumber", ""),
            Op::Eq,
            s("701984")
        ))
    );
    assert_eq!(
        user_filter(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m1""#
        ),
        Ok(cmp(
            path(schema::ENTERPRISE_USER, "manager", "value"),
            Op::Eq,
            s("m1")
        ))
    );
    assert_eq!(
        user_filter(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#),
        Ok(user_name_eq("a"))
    );
    assert_eq!(
        user_filter(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#),
        Ok(cmp(
            path("", "meta", "lastModified"),
            Op::Gt,
            s("2011-05-13T04:42:34Z")
        ))
    );
    assert_eq!(
        user_filter(r#"name.GIVENNAME sw "Ba""#),
        Ok(cmp(path("", "name", "givenName"), Op::Sw, s("Ba")))
    );
}

#[test]
fn values_quoted_unquoted_and_escaped() {
    assert_eq!(
        user_filter("externalId eq jyoung"),
        Ok(cmp(path("", "externalId", ""), Op::Eq, s("jyoung")))
    );
    // A bare number against a string attribute stays the text as written.
    assert_eq!(
        user_filter("externalId eq 00123"),
        Ok(cmp(path("", "externalId", ""), Op::Eq, s("00123")))
    );
    assert_eq!(
        user_filter("active eq true"),
        Ok(cmp(
            path("", "active", ""),
            Op::Eq,
            Some(ValueKind::BoolValue(true))
        ))
    );
    assert_eq!(
        user_filter("active eq \"False\""),
        Ok(cmp(
            path("", "active", ""),
            Op::Eq,
            Some(ValueKind::BoolValue(false))
        ))
    );
    assert_eq!(
        user_filter("loginCount gt 42"),
        Ok(cmp(
            path("", "loginCount", ""),
            Op::Gt,
            Some(ValueKind::NumberValue(42.0))
        ))
    );
    assert_eq!(
        user_filter("nickName eq null"),
        Ok(cmp(
            path("", "nickName", ""),
            Op::Eq,
            Some(ValueKind::NullValue(0))
        ))
    );
    assert_eq!(
        user_filter(r#"displayName eq "say \"hi\" \\ \u00e9\n""#),
        Ok(cmp(
            path("", "displayName", ""),
            Op::Eq,
            s("say \"hi\" \\ \u{e9}\n")
        ))
    );
    assert_eq!(
        user_filter(r#"displayName eq "\ud83d\ude00 (a) [b] and""#),
        Ok(cmp(
            path("", "displayName", ""),
            Op::Eq,
            s("\u{1F600} (a) [b] and")
        ))
    );
}

#[test]
fn malformed_input_reports_a_position() {
    let cases = [
        ("", 1),
        ("   ", 1),
        ("userName", 9),
        ("userName eq", 12),
        ("userName foo \"x\"", 10),
        ("userName eq \"x", 13),
        ("userName eq \"x\" and", 20),
        ("(userName eq \"x\"", 17),
        ("userName eq \"x\")", 16),
        ("userName eq \"x\" userName", 17),
        ("emails[type eq \"work\"", 22),
        ("emails[type[value eq \"x\"] eq \"y\"]", 12),
        ("emails[type eq \"work\"].value eq \"x\"", 23),
        ("na me eq \"x\"", 4),
        ("userName eq \"\\q\"", 14),
        ("userName eq \"\\u12\"", 14),
        ("and eq \"x\" and", 15),
        ("[", 1),
        ("not", 4),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User eq \"x\"",
            1,
        ),
    ];
    for (text, position) in cases {
        match user_filter(text) {
            Err(e) => assert_eq!(e.position, position, "{text:?}: {e}"),
            Ok(f) => panic!("{text:?} parsed as {f:?}"),
        }
    }
    let message = user_filter("userName foo \"x\"").map_err(|e| e.to_string());
    assert_eq!(
        message,
        Err("expected an operator after 'userName', found 'foo' at position 10".into())
    );
}

#[test]
fn patch_paths() {
    assert_eq!(
        user_path("name.familyName"),
        Ok(PathTarget::Attribute(path("", "name", "familyName")))
    );
    assert_eq!(
        user_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
        Ok(PathTarget::Schema(schema::ENTERPRISE_USER.into()))
    );
    let Ok(PathTarget::Attribute(p)) = user_path(r#"emails[type eq "work"].Value"#) else {
        panic!("value path did not parse")
    };
    assert_eq!(
        (p.attribute.as_str(), p.sub_attribute.as_str()),
        ("emails", "value")
    );
    assert_eq!(
        p.value_filter.map(|f| *f),
        Some(cmp(path("", "type", ""), Op::Eq, s("work")))
    );
    let Ok(PathTarget::Attribute(p)) = user_path(r#"members[value eq "abc"]"#) else {
        panic!("value path did not parse")
    };
    assert_eq!(p.sub_attribute, "");
    assert!(p.value_filter.is_some());
    for bad in [
        "",
        "emails[",
        "emails[type eq \"work\"]value",
        "emails[type eq \"work\"].",
        "emails[type eq \"work\"].value.x",
        "name.givenName[x eq 1]",
        "a b",
        "urn:ietf:params:scim:schemas:core:2.0:User[x eq 1]",
    ] {
        assert!(user_path(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn group_filters() {
    let group = |text| parse_filter(Resource::Group, text);
    assert_eq!(
        group(r#"DisplayName eq "Ops""#),
        Ok(cmp(path("", "displayName", ""), Op::Eq, s("Ops")))
    );
    assert_eq!(
        group(r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "Ops""#),
        Ok(cmp(path("", "displayName", ""), Op::Eq, s("Ops")))
    );
    // A bare UUID stays the text as written.
    assert_eq!(
        group("Members.Value eq 2819c223-7f76-453a-919d-413861904646"),
        Ok(cmp(
            path("", "members", "value"),
            Op::Eq,
            s("2819c223-7f76-453a-919d-413861904646")
        ))
    );
    assert_eq!(
        group(r#"members[VALUE eq "u1"]"#),
        Ok(Filter {
            expression: Some(filter::Expression::ValuePath(Box::new(ValuePath {
                path: Some(Box::new(path("", "members", ""))),
                filter: Some(Box::new(cmp(path("", "value", ""), Op::Eq, s("u1")))),
            }))),
        })
    );
    assert_eq!(
        group(r#"externalId eq "e" and meta.lastModified ge "2026-01-01T00:00:00Z""#),
        Ok(and(vec![
            cmp(path("", "externalId", ""), Op::Eq, s("e")),
            cmp(
                path("", "meta", "lastModified"),
                Op::Ge,
                s("2026-01-01T00:00:00Z")
            ),
        ]))
    );
    // Enterprise names are not special on groups.
    assert_eq!(
        group(r#"department eq "x""#),
        Ok(cmp(path("", "department", ""), Op::Eq, s("x")))
    );
    for bad in ["members[value eq \"u1\"", "displayName eq", "members[]"] {
        assert!(group(bad).is_err(), "{bad}");
    }
}

#[test]
fn json_numbers_only() {
    for (word, n) in [
        ("0", 0.0),
        ("-1.5e3", -1500.0),
        ("42", 42.0),
        ("1E-2", 0.01),
    ] {
        assert_eq!(json_number(word), Some(n), "{word}");
    }
    for word in [
        "inf", "NaN", "+1", ".5", "1.", "01", "1e", "-", "1e999", "0x1",
    ] {
        assert_eq!(json_number(word), None, "{word}");
    }
}

#[test]
fn printer_output_is_canonical_text() {
    let text =
        |f: &str| user_filter(f).map(|tree| FilterText::new(Resource::User, &tree).to_string());
    assert_eq!(
        text(r#"USERNAME EQ "a" Or not emails[Type eq work and primary eq "TRUE"]"#),
        Ok(r#"userName eq "a" or not (emails[type eq "work" and primary eq true])"#.into())
    );
    assert_eq!(
            text(r#"(a pr or b pr) and c gt 1.5 and department eq NULL"#),
            Ok(r#"(a pr or b pr) and c gt 1.5 and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq null"#.into())
        );
    assert_eq!(
        text(r#"urn:ietf:params:scim:schemas:core:2.0:User:department eq "x\"y""#),
        Ok(r#"urn:ietf:params:scim:schemas:core:2.0:User:department eq "x\"y""#.into())
    );
}

const CUSTOM: &str = "urn:example:custom:1.0:User";

/// Attribute paths a User filter can name, in their canonical form.
fn top_path() -> impl Strategy<Value = AttributePath> {
    let known = prop::sample::select(vec![
        ("", "userName", ""),
        ("", "displayName", ""),
        ("", "nickName", ""),
        ("", "externalId", ""),
        ("", "id", ""),
        ("", "active", ""),
        ("", "name", "givenName"),
        ("", "name", ""),
        ("", "meta", "lastModified"),
        ("", "emails", "value"),
        ("", "emails", "primary"),
        ("", "phoneNumbers", "type"),
        ("", "addresses", "locality"),
        ("", "department", ""),
        (schema::ENTERPRISE_USER, "employeeNumber", ""),
        (schema::ENTERPRISE_USER, "manager", "value"),
        (CUSTOM, "badge", ""),
        (CUSTOM, "badge", "color"),
        ("", "and", ""),
        ("", "or", ""),
        ("", "not", ""),
        ("", "pr", ""),
    ])
    .prop_map(|(schema, attribute, sub)| path(schema, attribute, sub));
    let unknown = ("x[a-z0-9_]{0,6}", prop::option::of("s[a-zA-Z]{0,4}"))
        .prop_map(|(attribute, sub)| path("", &attribute, sub.as_deref().unwrap_or_default()));
    prop_oneof![3 => known, 1 => unknown]
}

/// A value the parser reads back as itself for an attribute of `kind`:
/// a quoted "true" on a boolean attribute is read as a boolean, so those
/// only get booleans.
fn value_for(kind: Option<Kind>) -> BoxedStrategy<ValueKind> {
    let null = Just(ValueKind::NullValue(0));
    let boolean = any::<bool>().prop_map(ValueKind::BoolValue);
    let string = any::<String>().prop_map(ValueKind::StringValue);
    let number = any::<f64>()
        .prop_filter("finite", |n| n.is_finite())
        .prop_map(ValueKind::NumberValue);
    match kind {
        Some(Kind::Boolean) => prop_oneof![null, boolean].boxed(),
        // A bare number on a string attribute stays its text.
        Some(Kind::String | Kind::Reference | Kind::DateTime | Kind::Binary) => {
            prop_oneof![null, string].boxed()
        }
        _ => prop_oneof![null, boolean, string, number].boxed(),
    }
}

fn operator_strategy() -> impl Strategy<Value = Op> {
    prop::sample::select(vec![
        Op::Eq,
        Op::Ne,
        Op::Co,
        Op::Sw,
        Op::Ew,
        Op::Pr,
        Op::Gt,
        Op::Ge,
        Op::Lt,
        Op::Le,
    ])
}

fn comparison_for(p: AttributePath, kind: Option<Kind>) -> impl Strategy<Value = Filter> {
    (operator_strategy(), value_for(kind)).prop_map(move |(op, value)| {
        let value = (op != Op::Pr).then_some(value);
        cmp(p.clone(), op, value)
    })
}

fn tree(leaf: BoxedStrategy<Filter>) -> impl Strategy<Value = Filter> {
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(and),
            prop::collection::vec(inner.clone(), 2..4).prop_map(or),
            inner.prop_map(not),
        ]
    })
}

/// `parent[...]`: comparisons on the parent's sub-attributes.
fn value_path() -> impl Strategy<Value = Filter> {
    let parent = prop::sample::select(vec!["emails", "phoneNumbers", "addresses", "xlist"]);
    parent.prop_flat_map(|parent| {
        let subs: Vec<String> = schema::attribute_def(Resource::User, "", parent)
            .map(|d| d.sub_attributes.iter().map(|s| s.name.to_owned()).collect())
            .unwrap_or_default();
        let sub = prop_oneof![
            prop::sample::select(if subs.is_empty() {
                vec!["value".to_owned()]
            } else {
                subs
            }),
            "s[a-z]{0,4}",
        ];
        let leaf = sub
            .prop_flat_map(move |sub| {
                let kind = schema::kind_of(Resource::User, "", parent, &sub);
                comparison_for(path("", &sub, ""), kind)
            })
            .boxed();
        tree(leaf).prop_map(move |inner| Filter {
            expression: Some(filter::Expression::ValuePath(Box::new(ValuePath {
                path: Some(Box::new(path("", parent, ""))),
                filter: Some(Box::new(inner)),
            }))),
        })
    })
}

fn user_tree() -> impl Strategy<Value = Filter> {
    let comparison = top_path().prop_flat_map(|p| {
        let kind = schema::kind_of(Resource::User, &p.schema, &p.attribute, &p.sub_attribute);
        comparison_for(p, kind)
    });
    tree(prop_oneof![4 => comparison, 1 => value_path()].boxed())
}

fn comparisons(tree: &Filter) -> usize {
    match &tree.expression {
        Some(filter::Expression::Comparison(_)) => 1,
        Some(filter::Expression::And(l) | filter::Expression::Or(l)) => {
            l.operands.iter().map(comparisons).sum()
        }
        Some(filter::Expression::Not(inner)) => comparisons(inner),
        Some(filter::Expression::ValuePath(v)) => v.filter.as_deref().map_or(0, comparisons),
        None => 0,
    }
}

/// Deepest nesting of a parsed filter, counted as the parser does.
fn depth(tree: &Filter) -> usize {
    match &tree.expression {
        Some(filter::Expression::And(l) | filter::Expression::Or(l)) => {
            l.operands.iter().map(depth).max().unwrap_or(0)
        }
        Some(filter::Expression::Not(inner)) => 1 + depth(inner),
        Some(filter::Expression::ValuePath(v)) => 1 + v.filter.as_deref().map_or(0, depth),
        _ => 0,
    }
}

#[test]
fn nesting_is_bounded_at_any_depth() {
    let deep = |levels: usize| {
        format!(
            "{}userName eq \"x\"{}",
            "(".repeat(levels),
            ")".repeat(levels)
        )
    };
    assert!(user_filter(&deep(MAX_FILTER_DEPTH)).is_ok());
    for levels in [MAX_FILTER_DEPTH + 1, 100, 4000] {
        let error = user_filter(&deep(levels)).expect_err("too deep");
        assert!(error.message.contains("nesting"), "{error}");
    }
    let error = user_filter(&"(".repeat(MAX_FILTER_BYTES)).expect_err("too deep");
    assert!(error.message.contains("nesting"), "{error}");
    assert!(user_filter(&"(".repeat(100_000)).is_err());
    let nots = |n: usize| format!("{}userName pr", "not ".repeat(n));
    assert!(user_filter(&nots(MAX_FILTER_DEPTH)).is_ok());
    assert!(user_filter(&nots(MAX_FILTER_DEPTH + 1)).is_err());
    // The value filter's bracket is a level too.
    let path = |n: usize| format!("emails[{}value pr{}]", "(".repeat(n), ")".repeat(n));
    assert!(user_path(&path(MAX_FILTER_DEPTH - 1)).is_ok());
    let error = user_path(&path(MAX_FILTER_DEPTH)).expect_err("too deep");
    assert!(error.message.contains("nesting"), "{error}");
    assert!(user_path(&format!("emails[{}", "(".repeat(5000))).is_err());
}

/// The deepest filters the parser accepts stay decodable by the service,
/// far from prost's recursion limit of 100.
#[test]
fn deepest_filters_stay_decodable() {
    use identity_proto::v1::ListUsersRequest;
    use prost::Message;
    let alternating: String = (0..MAX_FILTER_DEPTH)
        .map(|i| {
            if i % 2 == 0 {
                "userName pr and ("
            } else {
                "userName pr or ("
            }
        })
        .collect();
    let innermost = "(".repeat(MAX_FILTER_DEPTH - 2);
    for text in [
        format!("{alternating}userName pr{}", ")".repeat(MAX_FILTER_DEPTH)),
        format!("{}userName pr", "not ".repeat(MAX_FILTER_DEPTH)),
        format!(
            "emails[{innermost}value pr and (type pr or value pr){}]",
            ")".repeat(MAX_FILTER_DEPTH - 2)
        ),
    ] {
        let filter = user_filter(&text).map_err(|e| format!("{text}: {e}"));
        let request = ListUsersRequest {
            filter: Some(filter.expect("at the limit")),
            ..Default::default()
        };
        let decoded = ListUsersRequest::decode(request.encode_to_vec().as_slice());
        assert_eq!(decoded.ok(), Some(request), "{text}");
    }
}

#[test]
fn terms_and_length_are_bounded() {
    let terms = |n: usize| vec!["userName pr"; n].join(" or ");
    assert!(user_filter(&terms(MAX_FILTER_TERMS)).is_ok());
    let error = user_filter(&terms(MAX_FILTER_TERMS + 1)).expect_err("too many");
    assert!(error.message.contains("comparisons"), "{error}");
    let long = format!("userName eq \"{}\"", "x".repeat(MAX_FILTER_BYTES));
    let error = user_filter(&long).expect_err("too long");
    assert!(error.message.contains("bytes long"), "{error}");
    let long_path = format!("emails[value eq \"{}\"]", "x".repeat(MAX_PATCH_PATH_BYTES));
    assert!(user_path(&long_path).is_err());
}

#[test]
fn nul_is_refused_in_values_and_words() {
    for text in [
        "userName eq \"a\\u0000b\"",
        "userName eq a\u{0}b",
        "userName\u{0} pr",
    ] {
        let error = user_filter(text).expect_err("nul");
        assert!(error.message.contains("NUL"), "{error}");
    }
    assert!(user_path("emails[value eq \"\\u0000\"]").is_err());
}

/// Runs `work` on a thread with a small stack (the fuzz checks that no
/// input recurses without bound); a panic fails the caller, an overflow
/// aborts the test binary.
fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(work)
        .expect("spawn a fuzz thread")
        .join()
        .expect("the parser panicked")
}

/// Openers that each add one level, and what closes them; mostly bare
/// parentheses, so that thousands of levels fit in the length limit.
fn nesting() -> impl Strategy<Value = Vec<(&'static str, &'static str)>> {
    let opener = prop_oneof![
        6 => Just(("(", ")")),
        1 => Just(("not ", "")),
        1 => Just(("not (", ")")),
        1 => Just(("(userName pr and ", ")")),
        1 => Just(("(userName pr or not ", ")")),
    ];
    prop_oneof![
        prop::collection::vec(opener.clone(), 0..=MAX_FILTER_DEPTH + 2),
        prop::collection::vec(opener, 0..6000),
    ]
}

proptest! {
    #[test]
    fn fuzz_filter_text(text in r#"([a-zA-Z.:\[\]()" \\u0-9]|not |and |or | eq | pr|emails\[){0,400}"#) {
        on_small_stack(move || {
            let _ = user_filter(&text);
            let _ = user_path(&text);
            let _ = parse_filter(Resource::Group, &text);
        });
    }

    #[test]
    fn fuzz_deep_nesting(
        levels in nesting(),
        close in any::<bool>(),
        in_value_filter in any::<bool>(),
    ) {
        let open: String = levels.iter().map(|(o, _)| *o).collect();
        let shut: String = if close {
            levels.iter().rev().map(|(_, c)| *c).collect()
        } else {
            String::new()
        };
        let (text, depth_limit) = if in_value_filter {
            (format!("emails[{open}value pr{shut}]"), MAX_FILTER_DEPTH - 1)
        } else {
            (format!("{open}userName pr{shut}"), MAX_FILTER_DEPTH)
        };
        let path_text = format!("{text}.type");
        let (filter, path) = on_small_stack(move || {
            (user_filter(&text), user_path(&path_text))
        });
        if let Ok(tree) = &filter {
            prop_assert!(depth(tree) <= MAX_FILTER_DEPTH);
            prop_assert!(comparisons(tree) <= MAX_FILTER_TERMS);
        }
        if levels.len() > depth_limit {
            prop_assert!(filter.is_err());
            prop_assert!(path.is_err() || !in_value_filter);
        }
    }

    #[test]
    fn printed_trees_parse_back_equal(tree in user_tree()) {
        let text = FilterText::new(Resource::User, &tree).to_string();
        if comparisons(&tree) > MAX_FILTER_TERMS {
            let error = user_filter(&text).expect_err("too many terms");
            prop_assert!(error.message.contains("comparisons"), "{}", error);
        } else {
            prop_assert_eq!(user_filter(&text), Ok(tree), "{}", text);
        }
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,80}") {
        let _ = user_filter(&text);
        let _ = user_path(&text);
    }

    #[test]
    fn filter_like_text_never_panics(
        text in r#"[a-zA-Z.:\[\]()" \\u0-9]{0,60}"#
    ) {
        let _ = user_filter(&text);
        let _ = user_path(&text);
    }
}

// The printer below writes a parsed tree back as filter text, so that the
// tests can parse it again and check that parsing loses nothing.
use serde_json::Value as Json;

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
