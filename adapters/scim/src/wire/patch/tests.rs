use super::*;
use crate::wire::members::tests::{add, remove, remove_all, replace};
use identity_proto::v1::{Comparison, Filter, comparison, filter::Expression};
use serde_json::json;

const ENT: &str = schema::ENTERPRISE_USER;

/// (op, schema, attribute, sub_attribute, has filter, value) for compact asserts.
type Flat = (Op, String, String, String, bool, Option<Json>);

fn flat(ops: Vec<PatchOperation>) -> Vec<Flat> {
    ops.into_iter()
        .map(|o| {
            let p = o.path.unwrap_or_default();
            (
                Op::try_from(o.op).unwrap_or(Op::Unspecified),
                p.schema,
                p.attribute,
                p.sub_attribute,
                p.value_filter.is_some(),
                o.value.map(identity_proto::value_to_json),
            )
        })
        .collect()
}

fn f(op: Op, schema: &str, attribute: &str, sub: &str, value: Option<Json>) -> Flat {
    (
        op,
        schema.into(),
        attribute.into(),
        sub.into(),
        false,
        value,
    )
}

/// The operations of a parsed body; none when nothing is to be sent.
fn operations(patch: Option<Patch>) -> Vec<PatchOperation> {
    patch.map(|p| p.operations).unwrap_or_default()
}

fn patch(ops: Json) -> Result<Vec<Flat>, ScimError> {
    parse_patch(
        Resource::User,
        json!({"schemas": [schema::PATCH_OP], "Operations": ops}),
    )
    .map(|p| flat(operations(p)))
}

#[test]
fn okta_deactivate_and_reactivate() {
    assert_eq!(
        patch(json!([{"op": "replace", "value": {"active": false}}])),
        Ok(vec![f(Op::Replace, "", "active", "", Some(json!(false)))])
    );
    assert_eq!(
        patch(json!([{"op": "replace", "value": {"active": true}}])),
        Ok(vec![f(Op::Replace, "", "active", "", Some(json!(true)))])
    );
}

#[test]
fn entra_capitalised_ops_and_string_booleans() {
    assert_eq!(
        patch(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "ADD", "path": "displayName", "value": "Jo"},
            {"op": "Remove", "path": "nickName"},
        ])),
        Ok(vec![
            f(Op::Replace, "", "active", "", Some(json!(false))),
            f(Op::Add, "", "displayName", "", Some(json!("Jo"))),
            f(Op::Remove, "", "nickName", "", None),
        ])
    );
    assert_eq!(
        patch(
            json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "TRUE"}])
        )
        .map(|ops| ops[0].5.clone()),
        Ok(Some(json!(true)))
    );
}

#[test]
fn entra_pathless_replace_with_dotted_and_urn_keys() {
    let ops = patch(json!([{
        "op": "replace",
        "value": {
            "displayName": "Jo Young",
            "name.givenName": "Jo",
            "NAME.FAMILYNAME": "Young",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Department": "R&D"},
            "urn:example:custom:1.0:User": {"badge": 7},
            "schemas": ["x"],
            "meta": {"version": "1"},
            "password": "secret",
            "Active": "True"
        }
    }]));
    let mut ops = ops.unwrap_or_default();
    ops.sort_by(|a, b| (&a.1, &a.2, &a.3).cmp(&(&b.1, &b.2, &b.3)));
    assert_eq!(
        ops,
        vec![
            f(Op::Replace, "", "active", "", Some(json!(true))),
            f(Op::Replace, "", "displayName", "", Some(json!("Jo Young"))),
            f(Op::Replace, "", "name", "familyName", Some(json!("Young"))),
            f(Op::Replace, "", "name", "givenName", Some(json!("Jo"))),
            f(
                Op::Replace,
                "urn:example:custom:1.0:User",
                "badge",
                "",
                Some(json!(7))
            ),
            f(Op::Replace, ENT, "department", "", Some(json!("R&D"))),
            f(Op::Replace, ENT, "employeeNumber", "", Some(json!("42"))),
        ]
    );
}

#[test]
fn value_filtered_paths() {
    let ops = parse_patch(
        Resource::User,
        json!({"Operations": [
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@b.c"}
        ]}),
    )
    .map(operations);
    let Ok([op]) = ops.as_deref() else {
        panic!("one operation expected: {ops:?}")
    };
    let path = op.path.clone().unwrap_or_default();
    assert_eq!(
        (path.attribute.as_str(), path.sub_attribute.as_str()),
        ("emails", "value")
    );
    let Some(Filter {
        expression: Some(Expression::Comparison(c)),
    }) = path.value_filter.map(|f| *f)
    else {
        panic!("comparison filter expected")
    };
    let Comparison {
        path: Some(inner),
        operator,
        value: Some(v),
    } = *c
    else {
        panic!("complete comparison expected")
    };
    assert_eq!(inner.attribute, "type");
    assert_eq!(operator, comparison::Operator::Eq as i32);
    assert_eq!(identity_proto::value_to_json(v), json!("work"));
    assert_eq!(
        op.value.clone().map(identity_proto::value_to_json),
        Some(json!("a@b.c"))
    );
}

#[test]
fn enterprise_urn_prefixed_paths() {
    assert_eq!(
        patch(json!([
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Ops"},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": {"costCenter": "CC1", "schemas": [ENT]}},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:userName", "value": "x@y.z"},
        ])),
        Ok(vec![
            f(Op::Replace, ENT, "department", "", Some(json!("Ops"))),
            f(Op::Add, ENT, "costCenter", "", Some(json!("CC1"))),
            f(Op::Replace, "", "userName", "", Some(json!("x@y.z"))),
        ])
    );
    let removed = patch(json!([{"op": "remove", "path": ENT}])).unwrap_or_default();
    assert_eq!(removed.len(), schema::ENTERPRISE_ATTRIBUTES.len());
    assert!(removed.iter().all(|o| o.0 == Op::Remove && o.1 == ENT));
}

#[test]
fn manager_shapes() {
    let manager = |id: &str| Some(json!({"value": id}));
    let mgr = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    assert_eq!(
            patch(json!([
                {"op": "Add", "path": "manager", "value": [{"$ref": "https://x/Users/m1", "value": "m1"}]},
                {"op": "replace", "path": mgr, "value": "m2"},
                {"op": "replace", "path": mgr, "value": {"Value": "m3", "displayName": "Boss"}},
                {"op": "replace", "path": format!("{mgr}.value"), "value": "m4"},
                {"op": "replace", "value": {mgr: "m5"}},
                {"op": "replace", "value": {ENT: {"manager": {"value": "m6"}}}},
            ]))
            .map(|ops| ops.into_iter().map(|o| (o.0, o.1, o.2, o.3, o.5)).collect::<Vec<_>>()),
            Ok(vec![
                (Op::Add, ENT.into(), "manager".into(), "".into(), manager("m1")),
                (Op::Replace, ENT.into(), "manager".into(), "".into(), manager("m2")),
                (Op::Replace, ENT.into(), "manager".into(), "".into(), manager("m3")),
                (Op::Replace, ENT.into(), "manager".into(), "".into(), manager("m4")),
                (Op::Replace, ENT.into(), "manager".into(), "".into(), manager("m5")),
                (Op::Replace, ENT.into(), "manager".into(), "".into(), manager("m6")),
            ])
        );
    for removal in [json!(""), Json::Null, json!([]), json!({"value": ""})] {
        assert_eq!(
            patch(json!([{"op": "replace", "path": mgr, "value": removal}])),
            Ok(vec![f(Op::Remove, ENT, "manager", "", None)]),
            "{removal}"
        );
    }
    assert_eq!(
        patch(json!([{"op": "Add", "path": mgr, "value": [{"value": "m1"}]}])),
        Ok(vec![f(Op::Add, ENT, "manager", "", manager("m1"))])
    );
}

#[test]
fn null_means_absent_and_password_is_dropped() {
    assert_eq!(
        patch(json!([
            {"op": "replace", "path": "displayName", "value": null},
            {"op": "add", "path": "nickName", "value": null},
            {"op": "replace", "value": {"title": null}},
            {"op": "replace", "path": "password", "value": "x"},
            {"op": "remove", "path": "emails[type eq \"work\"]", "value": null},
        ]))
        .map(|ops| ops
            .into_iter()
            .map(|o| (o.0, o.2, o.4, o.5))
            .collect::<Vec<_>>()),
        Ok(vec![
            (Op::Remove, "displayName".into(), false, None),
            (Op::Remove, "title".into(), false, None),
            (Op::Remove, "emails".into(), true, None),
        ])
    );
}

#[test]
fn complex_values_are_canonicalised() {
    assert_eq!(
        patch(json!([
            {"op": "add", "path": "Emails", "value": [{"Value": "a@b.c", "TYPE": "work", "Primary": "true", "display": null}]},
            {"op": "add", "path": "emails", "value": {"value": "d@e.f"}},
            {"op": "replace", "path": "name", "value": {"GivenName": "Jo", "x": 1}},
        ])),
        Ok(vec![
            f(
                Op::Add,
                "",
                "emails",
                "",
                Some(json!([{"value": "a@b.c", "type": "work", "primary": true}]))
            ),
            f(Op::Add, "", "emails", "", Some(json!([{"value": "d@e.f"}]))),
            f(
                Op::Replace,
                "",
                "name",
                "",
                Some(json!({"givenName": "Jo", "x": 1}))
            ),
        ])
    );
}

#[test]
fn read_only_paths_reach_the_service() {
    // The service answers these with `mutability`; the adapter must not hide them.
    assert_eq!(
        patch(
            json!([{"op": "replace", "value": {"id": "abc"}}, {"op": "add", "path": "groups", "value": []}])
        ),
        Ok(vec![
            f(Op::Replace, "", "id", "", Some(json!("abc"))),
            f(Op::Add, "", "groups", "", Some(json!([]))),
        ])
    );
}

#[test]
fn malformed_bodies() {
    let scim_type = |body: Json| {
        parse_patch(Resource::User, body)
            .err()
            .and_then(|e| e.scim_type.map(|t| t.as_str()))
    };
    let ops = |ops: Json| json!({"Operations": ops});
    let cases = [
        (json!([]), "invalidSyntax"),
        (json!({"operations": "x"}), "invalidSyntax"),
        (json!({}), "invalidSyntax"),
        (ops(json!([])), "invalidSyntax"),
        (ops(json!(["add"])), "invalidSyntax"),
        (
            ops(json!([{"op": "merge", "path": "x", "value": 1}])),
            "invalidSyntax",
        ),
        (ops(json!([{"path": "x", "value": 1}])), "invalidSyntax"),
        (ops(json!([{"op": "remove"}])), "noTarget"),
        (ops(json!([{"op": "add", "value": "x"}])), "invalidValue"),
        (ops(json!([{"op": "replace"}])), "invalidValue"),
        (
            ops(json!([{"op": "add", "path": 3, "value": 1}])),
            "invalidPath",
        ),
        (
            ops(json!([{"op": "add", "path": "emails[type eq", "value": 1}])),
            "invalidPath",
        ),
        (
            ops(json!([{"op": "add", "path": "a..b", "value": 1}])),
            "invalidPath",
        ),
        (
            ops(json!([{"op": "add", "path": "emails[type eq \"w\"]x", "value": 1}])),
            "invalidPath",
        ),
        (
            ops(json!([{"op": "replace", "value": {"bad key": 1}}])),
            "invalidPath",
        ),
        (
            ops(json!([{"op": "replace", "value": {ENT: "x"}}])),
            "invalidValue",
        ),
        (
            ops(
                json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User", "value": {}}]),
            ),
            "invalidPath",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(scim_type(body.clone()), Some(expected), "{body}");
    }
    let detail = parse_patch(
        Resource::User,
        ops(json!([{"op": "add", "value": {"a": 1}}, {"op": "remove"}])),
    )
    .err()
    .map(|e| e.detail);
    assert_eq!(
        detail.as_deref(),
        Some("Operations[1]: remove needs a \"path\"")
    );
}

fn group_patch(ops: Json) -> Result<Option<Patch>, ScimError> {
    parse_patch(
        Resource::Group,
        json!({"schemas": [schema::PATCH_OP], "Operations": ops}),
    )
}

/// A group PATCH that changes members only.
fn member_changes(ops: Json) -> Result<Vec<MemberChange>, ScimError> {
    group_patch(ops).map(|p| {
        let p = p.unwrap_or_default();
        assert!(p.operations.is_empty(), "{:?}", p.operations);
        p.member_changes
    })
}

const ID: &str = "2819c223-7f76-453a-919d-413861904646";

#[test]
fn okta_pathless_replace_echoes_id() {
    let ops = group_patch(json!([{
        "op": "replace",
        "value": {"id": "g1", "displayName": "Engineering", "schemas": [], "meta": {}}
    }]));
    let mut ops = flat(ops.map(operations).unwrap_or_default());
    ops.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        ops,
        vec![
            f(
                Op::Replace,
                "",
                "displayName",
                "",
                Some(json!("Engineering"))
            ),
            f(Op::Replace, "", "id", "", Some(json!("g1"))),
        ]
    );
}

#[test]
fn okta_remove_by_filter_then_add_in_one_request() {
    assert_eq!(
        member_changes(json!([
            {"op": "remove", "path": format!("members[value eq \"{ID}\"]")},
            {"op": "add", "path": "members", "value": [
                {"value": "u2", "display": "Ann"},
                {"value": "u3", "display": "Bob"}
            ]},
        ])),
        Ok(vec![remove(&[ID]), add(&["u2", "u3"])])
    );
}

#[test]
fn okta_remove_by_or_of_filters() {
    assert_eq!(
        member_changes(json!([
            {"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}
        ])),
        Ok(vec![remove(&["a", "b"])])
    );
}

#[test]
fn entra_add_and_remove_member_lists() {
    assert_eq!(
        member_changes(json!([
            {"op": "Add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u3"}]},
            {"op": "ADD", "path": "Members", "value": {"value": "u4"}},
        ])),
        Ok(vec![add(&["u1", "u2"]), remove(&["u3"]), add(&["u4"])])
    );
}

#[test]
fn remove_all_and_replace_members() {
    assert_eq!(
        member_changes(json!([
            {"op": "remove", "path": "members"},
            {"op": "replace", "path": "members", "value": [{"value": "u1", "$ref": "x", "type": "User"}, "u2"]},
            {"op": "replace", "path": "members", "value": []},
            {"op": "replace", "path": "members", "value": null},
        ])),
        Ok(vec![
            remove_all(),
            replace(&["u1", "u2"]),
            replace(&[]),
            remove_all(),
        ])
    );
}

#[test]
fn empty_member_changes_are_dropped() {
    // An empty Entra removal must not become "remove every member".
    assert_eq!(
        group_patch(json!([
            {"op": "remove", "path": "members", "value": []},
            {"op": "add", "path": "members", "value": []},
            {"op": "add", "path": "members", "value": null},
            {"op": "add", "value": {"members": [null]}},
        ])),
        Ok(None)
    );
}

#[test]
fn group_attribute_replacements() {
    let patch = group_patch(json!([
        {"op": "replace", "path": "displayName", "value": "Ops"},
        {"op": "Replace", "path": "EXTERNALID", "value": "e1"},
        {"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:displayName", "value": "Ops2"},
        {"op": "add", "value": {"description": "x", "members": [{"value": "u1"}]}},
        {"op": "replace", "path": "password", "value": "kept on a group"},
    ]))
    .unwrap_or_else(|e| panic!("{e:?}"))
    .unwrap_or_default();
    assert_eq!(
        flat(patch.operations),
        vec![
            f(Op::Replace, "", "displayName", "", Some(json!("Ops"))),
            f(Op::Replace, "", "externalId", "", Some(json!("e1"))),
            f(Op::Add, "", "displayName", "", Some(json!("Ops2"))),
            f(Op::Add, "", "description", "", Some(json!("x"))),
            f(
                Op::Replace,
                "",
                "password",
                "",
                Some(json!("kept on a group"))
            ),
        ]
    );
    assert_eq!(patch.member_changes, vec![add(&["u1"])]);
}

#[test]
fn malformed_group_bodies() {
    let scim_type = |ops: Json| {
        parse_patch(Resource::Group, json!({"Operations": ops}))
            .err()
            .and_then(|e| e.scim_type.map(|t| t.as_str()))
    };
    for (ops, expected) in [
        (
            json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
            "invalidValue",
        ),
        (
            json!([{"op": "add", "path": "members", "value": [{"value": 1}]}]),
            "invalidValue",
        ),
        (
            json!([{"op": "remove", "path": "members", "value": [3]}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "members", "value": true}]),
            "invalidValue",
        ),
        (
            json!([{"op": "remove", "path": "members[value eq \"x\""}]),
            "invalidPath",
        ),
        (
            json!([{"op": "remove", "path": "members[value eq \"x\"]]"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:Group"}]),
            "invalidPath",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "Delete", "path": "members"}]),
            "invalidSyntax",
        ),
    ] {
        assert_eq!(scim_type(ops.clone()), Some(expected), "{ops}");
    }
}

#[test]
fn operation_count_is_bounded() {
    let op = json!({"op": "replace", "path": "displayName", "value": "x"});
    let body = |n: usize| json!({"Operations": vec![op.clone(); n]});
    assert_eq!(
        parse_patch(Resource::User, body(MAX_PATCH_OPERATIONS))
            .map(|patch| operations(patch).len())
            .ok(),
        Some(MAX_PATCH_OPERATIONS)
    );
    let error = parse_patch(Resource::User, body(MAX_PATCH_OPERATIONS + 1))
        .expect_err("too many operations");
    assert_eq!(
        error.scim_type,
        Some(crate::wire::error::ScimType::InvalidValue)
    );
}

mod fuzz {
    use super::*;
    use crate::wire::bounds::check_json;
    use identity_proto::v1::PatchGroupRequest;
    use proptest::prelude::*;
    use prost::Message;

    /// JSON of any shape, a little deeper than bodies may be.
    fn json_value() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            "[a-zA-Z0-9@. \u{0}]{0,12}".prop_map(Json::from),
            prop::sample::select(vec!["True", "False", "work", "x@example.com"])
                .prop_map(Json::from),
        ];
        leaf.prop_recursive(30, 120, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::vec((key(), inner), 0..4)
                    .prop_map(|pairs| Json::Object(pairs.into_iter().collect())),
            ]
        })
    }

    /// Attribute names, URNs, dotted and filtered paths, and noise.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "userName",
                "name",
                "name.givenName",
                "emails",
                "emails[type eq \"work\"].value",
                "emails[(((value pr)))]",
                "members",
                "members[value eq \"x\"]",
                "manager",
                "active",
                "schemas",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "urn:example:ext",
                "value",
                "op",
                "path",
            ])
            .prop_map(str::to_owned),
            r#"[a-zA-Z.:\[\]()" ]{0,16}"#,
        ]
    }

    fn operation() -> impl Strategy<Value = Json> {
        let op = prop_oneof![
            prop::sample::select(vec!["add", "Replace", "REMOVE", "delete"]).prop_map(Json::from),
            json_value(),
        ];
        let path = prop_oneof![
            Just(None),
            key().prop_map(|k| Some(Json::from(k))),
            json_value().prop_map(Some),
        ];
        (op, path, prop::option::of(json_value())).prop_map(|(op, path, value)| {
            let mut map = Map::new();
            map.insert("op".into(), op);
            if let Some(path) = path {
                map.insert("path".into(), path);
            }
            if let Some(value) = value {
                map.insert("value".into(), value);
            }
            Json::Object(map)
        })
    }

    /// An extension value nested `levels` deep, objects and arrays mixed.
    fn deep_value() -> impl Strategy<Value = Json> {
        (0..40usize, key(), any::<bool>()).prop_map(|(levels, key, arrays)| {
            (0..levels).fold(Json::from("leaf"), |inner, level| {
                if arrays && level % 2 == 1 {
                    Json::Array(vec![inner])
                } else {
                    json!({ key.clone(): inner })
                }
            })
        })
    }

    fn document() -> impl Strategy<Value = Json> {
        prop_oneof![
            4 => prop::collection::vec(operation(), 0..6)
                .prop_map(|ops| json!({"schemas": [schema::PATCH_OP], "Operations": ops})),
            2 => deep_value().prop_map(|value| json!({"Operations": [
                {"op": "add", "value": {"urn:example:ext": value.clone()}},
                {"op": "replace", "path": "urn:example:ext:attr", "value": value},
            ]})),
            1 => json_value(),
        ]
    }

    /// Runs on a small stack, as the parsers must not recurse without bound.
    fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(work)
            .expect("spawn a fuzz thread")
            .join()
            .expect("the PATCH parser panicked")
    }

    proptest! {
        /// What the adapter does with a PATCH body: the body checks, then
        /// the typed operations, for either resource type.
        #[test]
        fn fuzz_patch_document(body in document()) {
            let text = body.to_string();
            let outcome = on_small_stack(move || {
                let Ok(body) = serde_json::from_str::<Json>(&text) else {
                    return None;
                };
                check_json(&body).ok()?;
                let user = parse_patch(Resource::User, body.clone()).ok();
                let group = parse_patch(Resource::Group, body).ok();
                Some([user, group])
            });
            // What passes the adapter's checks stays decodable by the
            // service: far from prost's recursion limit.
            for patch in outcome.into_iter().flatten().flatten().flatten() {
                let request = PatchGroupRequest {
                    operations: patch.operations,
                    member_changes: patch.member_changes,
                    ..Default::default()
                };
                let decoded = PatchGroupRequest::decode(request.encode_to_vec().as_slice());
                prop_assert_eq!(decoded.as_ref().ok(), Some(&request), "{:?}", decoded);
            }
        }
    }
}
