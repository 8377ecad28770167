//! The engine on a user document: every rule of RFC 7644 §3.5.2 it keeps.

use super::*;
use crate::attr::{ENTERPRISE_URN, MAX_RESOURCE_BYTES, MAX_VALUES};
use crate::testing::{eq, filtered, op, path};
use crate::users::UserData;
use crate::users::document::{USER, from_document, to_document};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::{Comparison, Email, Filter, Logical};
use serde_json::json;
use uuid::Uuid;

const ENT: &str = ENTERPRISE_URN;

fn id() -> Uuid {
    Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888)
}

fn user() -> UserData {
    UserData {
        user_name: "ada@example.com".into(),
        active: true,
        emails: vec![Email {
            value: "ada@home.example".into(),
            r#type: Some("home".into()),
            primary: true,
            display: None,
        }],
        ..UserData::default()
    }
}

fn run(start: &UserData, ops: &[PatchOperation]) -> Result<UserData, PatchError> {
    let mut doc = to_document(id(), start);
    apply(&USER, &mut doc, ops)?;
    from_document(doc)
}

fn ok(start: &UserData, ops: &[PatchOperation]) -> UserData {
    run(start, ops).unwrap_or_else(|e| panic!("patch failed: {e}"))
}

#[test]
fn operation_values_are_bounded_before_they_apply() {
    let apply_one = |operation: PatchOperation| {
        let mut doc = to_document(id(), &user());
        apply(&USER, &mut doc, &[operation]).map(|()| doc)
    };
    let tags = json!(vec!["t"; MAX_VALUES + 1]);
    let err = apply_one(op(Op::Replace, Some(path("urn:x", "tags", "")), Some(tags)));
    assert!(
        matches!(&err, Err(PatchError::InvalidValue(m)) if m == "urn:x:tags has 1001 values; at most 1000 are allowed"),
        "{err:?}"
    );
    let unwanted: Vec<Json> = (0..=MAX_VALUES).map(|i| json!({"value": i})).collect();
    let err = apply_one(op(
        Op::Remove,
        Some(path("", "emails", "")),
        Some(json!(unwanted)),
    ));
    assert!(matches!(err, Err(PatchError::InvalidValue(_))), "{err:?}");
    let err = apply_one(op(
        Op::Add,
        Some(path("urn:x", "", "")),
        Some(json!({"k": "\u{0}"})),
    ));
    assert!(
        matches!(&err, Err(PatchError::InvalidValue(m)) if m.starts_with("urn:x.k contains a NUL")),
        "{err:?}"
    );
    // Copies of a value into every selected element are bounded too.
    let mut many = user();
    many.emails = (0..100)
        .map(|i| Email {
            value: format!("a{i}@x"),
            ..Email::default()
        })
        .collect();
    let mut doc = to_document(id(), &many);
    let big = json!("d".repeat(MAX_RESOURCE_BYTES / 50));
    let err = apply(
        &USER,
        &mut doc,
        &[op(
            Op::Replace,
            Some(path("", "emails", "display")),
            Some(big),
        )],
    );
    assert!(
        matches!(&err, Err(PatchError::InvalidValue(m)) if m.contains("100 copies")),
        "{err:?}"
    );
}

#[test]
fn document_round_trip_is_lossless() {
    let mut u = user();
    u.external_id = Some("00u1".into());
    u.display_name = Some("Ada".into());
    u.name.given_name = Some("Ada".into());
    u.enterprise.department = Some("R&D".into());
    u.manager_id = Some(Uuid::from_u128(7));
    u.attributes.insert("locale".into(), json!("en-GB"));
    u.attributes
        .insert("urn:example:ext".into(), json!({"x": [1, 2]}));
    assert_eq!(from_document(to_document(id(), &u)).ok(), Some(u));
}

#[test]
fn replace_simple_attributes() {
    let out = ok(
        &user(),
        &[
            op(
                Op::Replace,
                Some(path("", "active", "")),
                Some(json!(false)),
            ),
            op(
                Op::Replace,
                Some(path("", "DisplayName", "")),
                Some(json!("Countess")),
            ),
            op(
                Op::Add,
                Some(path("", "externalId", "")),
                Some(json!("00u9")),
            ),
        ],
    );
    assert!(!out.active);
    assert_eq!(out.display_name.as_deref(), Some("Countess"));
    assert_eq!(out.external_id.as_deref(), Some("00u9"));
}

#[test]
fn canonical_replace_deactivates_and_reaches_every_schema() {
    let out = ok(
        &user(),
        &[
            op(
                Op::Replace,
                Some(path("", "active", "")),
                Some(json!(false)),
            ),
            op(
                Op::Replace,
                Some(path("", "name.givenName", "")),
                Some(json!("Ada")),
            ),
            op(
                Op::Replace,
                Some(path(ENT, "employeeNumber", "")),
                Some(json!("42")),
            ),
            op(
                Op::Replace,
                Some(path(ENT, "", "")),
                Some(json!({"costCenter": "CC1"})),
            ),
            op(
                Op::Replace,
                Some(path("", "nickName", "")),
                Some(json!("Countess")),
            ),
        ],
    );
    assert!(!out.active);
    assert_eq!(out.name.given_name.as_deref(), Some("Ada"));
    assert_eq!(out.enterprise.employee_number.as_deref(), Some("42"));
    assert_eq!(out.enterprise.cost_center.as_deref(), Some("CC1"));
    assert_eq!(out.attributes.get("nickName"), Some(&json!("Countess")));
}

#[test]
fn pathless_operations_are_refused() {
    // The caller expands them (the proto says so); the service does not.
    for (kind, value) in [
        (Op::Replace, Some(json!({"active": false}))),
        (Op::Add, Some(json!("x"))),
        (Op::Remove, None),
    ] {
        let err = run(&user(), &[op(kind, None, value)]);
        assert!(
            matches!(&err, Err(PatchError::InvalidPath(m)) if m.contains("needs a path")),
            "{err:?}"
        );
    }
}

#[test]
fn complex_attributes_merge() {
    let mut start = user();
    start.name.family_name = Some("Lovelace".into());
    let out = ok(
        &start,
        &[op(
            Op::Replace,
            Some(path("", "name", "")),
            Some(json!({"GivenName": "Ada"})),
        )],
    );
    assert_eq!(out.name.given_name.as_deref(), Some("Ada"));
    assert_eq!(out.name.family_name.as_deref(), Some("Lovelace"));
    let out = ok(
        &start,
        &[op(
            Op::Add,
            Some(path("", "name", "givenName")),
            Some(json!("Ada")),
        )],
    );
    assert_eq!(out.name.given_name.as_deref(), Some("Ada"));
}

#[test]
fn add_to_multi_valued_appends_without_duplicates() {
    let out = ok(
        &user(),
        &[op(
            Op::Add,
            Some(path("", "emails", "")),
            Some(json!([
                {"value": "ada@home.example", "type": "home", "primary": true},
                {"value": "ada@work.example", "type": "work"}
            ])),
        )],
    );
    assert_eq!(out.emails.len(), 2);
    assert_eq!(out.emails[1].value, "ada@work.example");
    assert!(out.emails[0].primary);
}

#[test]
fn replace_multi_valued_replaces_all() {
    let out = ok(
        &user(),
        &[op(
            Op::Replace,
            Some(path("", "emails", "")),
            Some(json!({"value": "only@x", "type": "work"})),
        )],
    );
    assert_eq!(out.emails.len(), 1);
    assert_eq!(out.emails[0].value, "only@x");
}

#[test]
fn value_filter_creates_missing_element() {
    let out = ok(
        &user(),
        &[op(
            Op::Replace,
            Some(filtered("emails", eq("type", json!("work")), "value")),
            Some(json!("ada@work.example")),
        )],
    );
    assert_eq!(out.emails.len(), 2);
    assert_eq!(out.emails[1].value, "ada@work.example");
    assert_eq!(out.emails[1].r#type.as_deref(), Some("work"));
    // The same path again updates the element it created.
    let again = ok(
        &out,
        &[op(
            Op::Add,
            Some(filtered("emails", eq("type", json!("WORK")), "value")),
            Some(json!("new@work.example")),
        )],
    );
    assert_eq!(again.emails.len(), 2);
    assert_eq!(again.emails[1].value, "new@work.example");
}

#[test]
fn value_filter_without_sub_attribute_merges() {
    let out = ok(
        &user(),
        &[op(
            Op::Replace,
            Some(filtered("emails", eq("type", json!("home")), "")),
            Some(json!({"display": "Home"})),
        )],
    );
    assert_eq!(out.emails[0].display.as_deref(), Some("Home"));
    assert_eq!(out.emails[0].value, "ada@home.example");
}

#[test]
fn non_equality_filter_that_matches_nothing_is_no_target() {
    let filter = Filter {
        expression: Some(Expr::Not(Box::new(eq("type", json!("home"))))),
    };
    let err = run(
        &user(),
        &[op(
            Op::Replace,
            Some(filtered("emails", filter, "value")),
            Some(json!("x@y")),
        )],
    );
    assert!(matches!(err, Err(PatchError::NoTarget(_))), "{err:?}");
}

#[test]
fn primary_true_clears_the_others() {
    let out = ok(
        &user(),
        &[op(
            Op::Add,
            Some(path("", "emails", "")),
            Some(json!([{"value": "w@x", "type": "work", "primary": true}])),
        )],
    );
    assert_eq!(out.emails.iter().filter(|e| e.primary).count(), 1);
    assert!(out.emails[1].primary);
    let back = ok(
        &out,
        &[op(
            Op::Replace,
            Some(filtered("emails", eq("type", json!("home")), "primary")),
            Some(json!(true)),
        )],
    );
    assert!(back.emails[0].primary);
    assert!(!back.emails[1].primary);
}

#[test]
fn remove_with_and_without_filter() {
    let mut start = user();
    start.emails.push(Email {
        value: "w@x".into(),
        r#type: Some("work".into()),
        primary: false,
        display: None,
    });
    let out = ok(
        &start,
        &[op(
            Op::Remove,
            Some(filtered("emails", eq("type", json!("work")), "")),
            None,
        )],
    );
    assert_eq!(out.emails.len(), 1);
    // A filter that matches nothing is NO_TARGET (RFC 7644 §3.5.2.2).
    let nothing = run(
        &start,
        &[op(
            Op::Remove,
            Some(filtered("emails", eq("type", json!("other")), "")),
            None,
        )],
    );
    assert!(
        matches!(nothing, Err(PatchError::NoTarget(_))),
        "{nothing:?}"
    );
    let none = ok(
        &start,
        &[op(Op::Remove, Some(path("", "emails", "")), None)],
    );
    assert!(none.emails.is_empty());
    let sub = ok(
        &start,
        &[op(
            Op::Remove,
            Some(filtered("emails", eq("type", json!("work")), "type")),
            None,
        )],
    );
    assert_eq!(sub.emails[1].r#type, None);
    let by_value = ok(
        &start,
        &[op(
            Op::Remove,
            Some(path("", "emails", "")),
            Some(json!([{"value": "W@X"}])),
        )],
    );
    assert_eq!(by_value.emails.len(), 1);
}

#[test]
fn enterprise_fields_with_urn_paths() {
    let out = ok(
        &user(),
        &[
            op(
                Op::Add,
                Some(path(ENT, "employeeNumber", "")),
                Some(json!("701")),
            ),
            op(
                Op::Replace,
                Some(path(ENT, "department", "")),
                Some(json!("Sales")),
            ),
            op(
                Op::Replace,
                Some(path(ENT, "organization", "")),
                Some(json!("Acme")),
            ),
        ],
    );
    assert_eq!(out.enterprise.employee_number.as_deref(), Some("701"));
    assert_eq!(out.enterprise.department.as_deref(), Some("Sales"));
    let removed = ok(
        &out,
        &[op(Op::Remove, Some(path(ENT, "department", "")), None)],
    );
    assert_eq!(removed.enterprise.department, None);
    assert_eq!(removed.enterprise.employee_number.as_deref(), Some("701"));
    assert!(matches!(
        run(
            &user(),
            &[op(
                Op::Add,
                Some(path(ENT, "shoeSize", "")),
                Some(json!("9"))
            )]
        ),
        Err(PatchError::InvalidPath(_))
    ));
}

#[test]
fn manager_set_and_remove() {
    let manager = Uuid::from_u128(99);
    for value in [
        json!({"value": manager.to_string()}),
        json!(manager.to_string()),
        json!([{"value": manager.to_string(), "$ref": "../Users/x"}]),
    ] {
        let out = ok(
            &user(),
            &[op(Op::Add, Some(path(ENT, "manager", "")), Some(value))],
        );
        assert_eq!(out.manager_id, Some(manager));
    }
    let mut with_manager = user();
    with_manager.manager_id = Some(manager);
    let out = ok(
        &with_manager,
        &[op(Op::Remove, Some(path(ENT, "manager", "")), None)],
    );
    assert_eq!(out.manager_id, None);
    let out = ok(
        &with_manager,
        &[op(
            Op::Replace,
            Some(path(ENT, "manager", "")),
            Some(json!("")),
        )],
    );
    assert_eq!(out.manager_id, None);
    let out = ok(
        &with_manager,
        &[op(
            Op::Replace,
            Some(path(ENT, "manager", "")),
            Some(Json::Null),
        )],
    );
    assert_eq!(out.manager_id, None);
    assert!(matches!(
        run(
            &user(),
            &[op(
                Op::Add,
                Some(path(ENT, "manager", "")),
                Some(json!("bob"))
            )]
        ),
        Err(PatchError::InvalidValue(_))
    ));
}

#[test]
fn read_only_attributes() {
    let same_id = op(
        Op::Replace,
        Some(path("", "id", "")),
        Some(json!(id().to_string())),
    );
    assert!(run(&user(), &[same_id]).is_ok());
    for bad in [
        op(Op::Replace, Some(path("", "id", "")), Some(json!("other"))),
        op(Op::Remove, Some(path("", "id", "")), None),
        op(
            Op::Add,
            Some(path("", "meta", "")),
            Some(json!({"version": "1"})),
        ),
        op(Op::Replace, Some(path("", "groups", "")), Some(json!([]))),
    ] {
        assert!(matches!(
            run(&user(), &[bad]),
            Err(PatchError::Mutability(_))
        ));
    }
}

#[test]
fn type_errors_are_invalid_value() {
    for bad in [
        op(
            Op::Replace,
            Some(path("", "active", "")),
            Some(json!("False")),
        ),
        op(Op::Replace, Some(path("", "userName", "")), Some(json!(42))),
        op(Op::Replace, Some(path("", "name", "")), Some(json!("Ada"))),
        op(
            Op::Add,
            Some(path("", "emails", "")),
            Some(json!([{"type": "work"}])),
        ),
        op(Op::Remove, Some(path("", "userName", "")), None),
    ] {
        let result = run(&user(), &[bad]);
        assert!(
            matches!(result, Err(PatchError::InvalidValue(_))),
            "{result:?}"
        );
    }
}

#[test]
fn invalid_paths_and_syntax() {
    assert!(matches!(
        run(
            &user(),
            &[op(
                Op::Add,
                Some(path("", "name", "nick")),
                Some(json!("x"))
            )]
        ),
        Err(PatchError::InvalidPath(_))
    ));
    assert!(matches!(
        run(
            &user(),
            &[op(
                Op::Add,
                Some(path("", "userName", "x")),
                Some(json!("x"))
            )]
        ),
        Err(PatchError::InvalidPath(_))
    ));
    assert!(matches!(
        run(
            &user(),
            &[op(
                Op::Add,
                Some(filtered("name", eq("x", json!(1)), "")),
                Some(json!({}))
            )]
        ),
        Err(PatchError::InvalidPath(_))
    ));
    assert!(matches!(
        run(
            &user(),
            &[op(
                Op::Unspecified,
                Some(path("", "active", "")),
                Some(json!(true))
            )]
        ),
        Err(PatchError::InvalidSyntax(_))
    ));
}

#[test]
fn unknown_attributes_live_in_the_bag() {
    let out = ok(
        &user(),
        &[
            op(
                Op::Add,
                Some(path("", "phoneNumbers", "")),
                Some(json!([{"value": "+1", "type": "work"}])),
            ),
            op(
                Op::Add,
                Some(path("", "phoneNumbers", "")),
                Some(json!({"value": "+2", "type": "home"})),
            ),
            op(
                Op::Replace,
                Some(path("urn:example:ext", "level", "")),
                Some(json!(3)),
            ),
        ],
    );
    assert_eq!(
        out.attributes.get("phoneNumbers"),
        Some(&json!([{"value": "+1", "type": "work"}, {"value": "+2", "type": "home"}]))
    );
    assert_eq!(
        out.attributes.get("urn:example:ext"),
        Some(&json!({"level": 3}))
    );
    let removed = ok(
        &out,
        &[op(
            Op::Remove,
            Some(filtered("phoneNumbers", eq("type", json!("work")), "")),
            None,
        )],
    );
    assert_eq!(
        removed.attributes.get("phoneNumbers"),
        Some(&json!([{"value": "+2", "type": "home"}]))
    );
    // Bag attributes keep their spelling; other spellings reach them.
    let renamed = ok(
        &out,
        &[op(Op::Remove, Some(path("", "PHONENUMBERS", "")), None)],
    );
    assert!(!renamed.attributes.contains_key("phoneNumbers"));
}

#[test]
fn and_filters_create_elements_with_every_equality() {
    let filter = Filter {
        expression: Some(Expr::And(Logical {
            operands: vec![eq("type", json!("work")), eq("display", json!("Office"))],
        })),
    };
    let out = ok(
        &user(),
        &[op(
            Op::Add,
            Some(filtered("emails", filter, "value")),
            Some(json!("o@x")),
        )],
    );
    assert_eq!(out.emails[1].display.as_deref(), Some("Office"));
    assert_eq!(out.emails[1].r#type.as_deref(), Some("work"));
}

#[test]
fn operations_apply_in_order_atomically() {
    let result = run(
        &user(),
        &[
            op(
                Op::Replace,
                Some(path("", "displayName", "")),
                Some(json!("A")),
            ),
            op(Op::Replace, Some(path("", "id", "")), Some(json!("x"))),
        ],
    );
    assert!(matches!(result, Err(PatchError::Mutability(_))));
}

#[test]
fn document_attributes_have_schema_shapes() {
    let mut start = user();
    start.attributes.insert(
        "phoneNumbers".into(),
        json!([{"value": "+1", "type": "work", "primary": true}, {"value": "+2", "type": "home"}]),
    );
    // A sub-attribute through a value filter, canonical names, and the
    // primary flag moving to the selected value.
    let out = ok(
        &start,
        &[
            op(
                Op::Replace,
                Some(filtered(
                    "PhoneNumbers",
                    eq("type", json!("home")),
                    "Primary",
                )),
                Some(json!("True")),
            ),
            op(
                Op::Add,
                Some(path("", "TITLE", "")),
                Some(json!("Engineer")),
            ),
        ],
    );
    assert_eq!(
        out.attributes.get("phoneNumbers"),
        Some(
            &json!([{"value": "+1", "type": "work", "primary": false}, {"value": "+2", "type": "home", "primary": true}])
        )
    );
    assert_eq!(out.attributes.get("title"), Some(&json!("Engineer")));
    // Addresses: replace a sub-attribute of the matching element, or
    // create the element an equality on type describes.
    let out = ok(
        &out,
        &[
            op(
                Op::Replace,
                Some(filtered("addresses", eq("type", json!("work")), "locality")),
                Some(json!("London")),
            ),
            op(
                Op::Replace,
                Some(filtered(
                    "addresses",
                    eq("type", json!("work")),
                    "postalCode",
                )),
                Some(json!("EC1")),
            ),
        ],
    );
    assert_eq!(
        out.attributes.get("addresses"),
        Some(&json!([{"type": "work", "locality": "London", "postalCode": "EC1"}]))
    );
    for (bad, expected) in [
        (
            op(
                Op::Add,
                Some(path("", "phoneNumbers", "color")),
                Some(json!("red")),
            ),
            "InvalidPath",
        ),
        (
            op(Op::Add, Some(path("", "title", "")), Some(json!(42))),
            "InvalidValue",
        ),
        (
            op(
                Op::Replace,
                Some(path("", "roles", "")),
                Some(json!([{"value": "a", "primary": true}, {"value": "b", "primary": true}])),
            ),
            "InvalidValue",
        ),
        (
            op(
                Op::Remove,
                Some(filtered("addresses", eq("type", json!("home")), "")),
                None,
            ),
            "NoTarget",
        ),
        (
            op(
                Op::Replace,
                Some(filtered("phoneNumbers", eq("value", json!("+9")), "")),
                Some(json!("x")),
            ),
            "NoTarget",
        ),
    ] {
        let result = run(&start, &[bad]);
        assert!(format!("{result:?}").contains(expected), "{result:?}");
    }
}

#[test]
fn add_skips_values_already_present() {
    let out = ok(
        &user(),
        &[op(
            Op::Add,
            Some(path("", "emails", "")),
            Some(json!([
                {"value": "ada@home.example", "type": "home", "primary": true},
                {"VALUE": "ada@work.example", "type": "work"},
                {"value": "ada@work.example", "type": "work", "primary": false}
            ])),
        )],
    );
    assert_eq!(out.emails.len(), 2, "{:?}", out.emails);
    // The same address with other sub-attributes is another value.
    let out = ok(
        &out,
        &[op(
            Op::Add,
            Some(path("", "emails", "")),
            Some(json!({"value": "ada@work.example", "type": "other"})),
        )],
    );
    assert_eq!(out.emails.len(), 3);
}

#[test]
fn removing_every_value_unassigns_the_attribute() {
    let mut start = user();
    start
        .attributes
        .insert("roles".into(), json!([{"value": "admin"}]));
    let out = ok(
        &start,
        &[op(
            Op::Remove,
            Some(filtered("roles", eq("value", json!("ADMIN")), "")),
            None,
        )],
    );
    assert!(!out.attributes.contains_key("roles"));
    // No value at all: still a filter that matched nothing.
    let again = run(
        &out,
        &[op(
            Op::Remove,
            Some(filtered("roles", eq("value", json!("admin")), "")),
            None,
        )],
    );
    assert!(matches!(again, Err(PatchError::NoTarget(_))), "{again:?}");
    // Without a filter, removing what is absent changes nothing.
    assert!(run(&out, &[op(Op::Remove, Some(path("", "roles", "")), None)]).is_ok());
}

#[test]
fn value_filters_follow_the_catalog_case_rules() {
    let mut start = user();
    start.attributes.insert(
        "x509Certificates".into(),
        json!([{"value": "QUJD", "type": "work"}]),
    );
    let remove =
        |attr: &str, filter: Filter| op(Op::Remove, Some(filtered(attr, filter, "type")), None);
    // Binary values are caseExact (RFC 7643 §2.3.6), as in a list filter.
    let err = run(
        &start,
        &[remove("x509Certificates", eq("value", json!("qujd")))],
    );
    assert!(matches!(err, Err(PatchError::NoTarget(_))), "{err:?}");
    assert!(
        run(
            &start,
            &[remove("x509Certificates", eq("value", json!("QUJD")))]
        )
        .is_ok()
    );
    // Email values are not.
    assert!(
        run(
            &start,
            &[remove("emails", eq("value", json!("ADA@HOME.example")))]
        )
        .is_ok()
    );
    // What a list refuses, PATCH refuses, whether or not there are values.
    let ordered = Filter {
        expression: Some(Expr::Comparison(Box::new(Comparison {
            path: Some(Box::new(path("", "value", ""))),
            operator: Operator::Gt as i32,
            value: Some(identity_proto::json_to_value(json!("A"))),
        }))),
    };
    for on in [&start, &user()] {
        let err = run(on, &[remove("x509Certificates", ordered.clone())]);
        assert!(
            matches!(&err, Err(PatchError::InvalidPath(m)) if m.contains("does not apply")),
            "{err:?}"
        );
    }
}
