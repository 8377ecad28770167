//! One filter semantics, checked on generated data through real gRPC and a
//! real Postgres (TEST_DATABASE_URL): for every generated value filter
//! `attr[f]` and every user, ListUsers selects the user iff a PATCH on the
//! user's `attr[f]` selects at least one element, and a filter the list
//! refuses is refused by PATCH too. The list runs the SQL compiler; the
//! PATCH runs the in-memory matcher.
//!
//! The PATCH used as a probe removes a sub-attribute the generated data
//! never holds (`emails[f].display`), so it changes nothing when it selects
//! elements and answers NO_TARGET when it selects none.
//!
//! The data and filters come from a fixed-seed generator, so a failure
//! reproduces; the seed can be changed with `FILTER_AGREEMENT_SEED`.

mod common;

use std::collections::HashSet;

use common::{TestService, call, reason};
use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression;
use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::{
    AttributePath, Comparison, CreateUserRequest, Email, Filter, ListUsersRequest, Logical,
    PatchOperation, PatchUserRequest, User, ValuePath,
};
use serde_json::{Map, Value as Json, json};
use tonic::Code;

const USERS: usize = 12;
const FILTERS: usize = 80;

/// splitmix64: small, seedable, good enough to spread the cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `text` with each letter's case flipped at random.
    fn recase(&mut self, text: &str) -> String {
        text.chars()
            .map(|c| {
                if self.chance(30) {
                    if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                } else {
                    c
                }
            })
            .collect()
    }
}

/// A multi-valued attribute the generator fills: its sub-attributes with
/// the values they draw from, and the sub-attribute it never fills (the
/// PATCH probe's target).
struct Attr {
    name: &'static str,
    texts: &'static [(&'static str, &'static [&'static str])],
    probe: &'static str,
}

const TYPES: &[&str] = &["work", "home", "other", "Work"];

const ATTRS: &[Attr] = &[
    Attr {
        name: "emails",
        texts: &[
            ("value", &["ada@example.com", "bob@example.org", "ADA@x.io"]),
            ("type", TYPES),
        ],
        probe: "display",
    },
    Attr {
        name: "phoneNumbers",
        texts: &[
            ("value", &["+44 20 1", "555-0100", "tel:+1"]),
            ("type", TYPES),
        ],
        probe: "display",
    },
    Attr {
        name: "addresses",
        texts: &[
            ("locality", &["London", "Paris", "paris", "Oslo"]),
            ("country", &["GB", "FR", "no"]),
            ("type", TYPES),
        ],
        probe: "formatted",
    },
    // Binary values are caseExact: a case-insensitive matcher disagrees here.
    Attr {
        name: "x509Certificates",
        texts: &[
            ("value", &["QUJD", "qUJd", "TUlJ", "mIIb"]),
            ("type", TYPES),
        ],
        probe: "display",
    },
];

fn elements(rng: &mut Rng, attr: &Attr) -> Vec<Json> {
    let count = rng.below(4);
    let primary = (count > 0 && rng.chance(50)).then(|| rng.below(count));
    (0..count)
        .map(|i| {
            let mut element = Map::new();
            for (sub, pool) in attr.texts {
                if rng.chance(85) {
                    let drawn = *rng.pick(pool);
                    element.insert((*sub).into(), json!(rng.recase(drawn)));
                }
            }
            if primary == Some(i) {
                element.insert("primary".into(), json!(true));
            } else if rng.chance(30) {
                element.insert("primary".into(), json!(false));
            }
            Json::Object(element)
        })
        .collect()
}

fn generated_user(rng: &mut Rng, n: usize) -> User {
    let mut bag = Map::new();
    let mut emails = Vec::new();
    for attr in ATTRS {
        let values = elements(rng, attr);
        if attr.name == "emails" {
            emails = values
                .into_iter()
                .filter_map(|v| {
                    Some(Email {
                        value: v.get("value")?.as_str()?.to_owned(),
                        r#type: v.get("type").and_then(Json::as_str).map(str::to_owned),
                        primary: v.get("primary") == Some(&json!(true)),
                        display: None,
                    })
                })
                .collect();
        } else if !values.is_empty() {
            bag.insert(attr.name.into(), Json::Array(values));
        }
    }
    User {
        user_name: format!("user{n}"),
        emails,
        attributes: Some(identity_proto::json_to_struct(bag)),
        ..User::default()
    }
}

fn path(attribute: &str, sub: &str) -> AttributePath {
    AttributePath {
        attribute: attribute.into(),
        sub_attribute: sub.into(),
        ..AttributePath::default()
    }
}

const OPERATORS: &[Operator] = &[
    Operator::Eq,
    Operator::Ne,
    Operator::Co,
    Operator::Sw,
    Operator::Ew,
    Operator::Pr,
    Operator::Gt,
    Operator::Ge,
    Operator::Lt,
    Operator::Le,
];

/// One comparison on a sub-attribute of `attr`: mostly on the ones the data
/// holds, with values drawn from the data (recased, cut for co/sw/ew);
/// sometimes on `primary`, on the never-filled probe, on an unknown
/// sub-attribute, or with null, a boolean or a number.
fn comparison(rng: &mut Rng, attr: &Attr) -> Filter {
    let op = *rng.pick(OPERATORS);
    let roll = rng.below(100);
    let (sub, value) = if roll < 70 {
        let (sub, pool) = rng.pick(attr.texts);
        let drawn = *rng.pick(pool);
        let mut text = rng.recase(drawn);
        if matches!(op, Operator::Co | Operator::Sw | Operator::Ew) && text.len() > 2 {
            let start = rng.below(text.len() / 2);
            let end = text.len() - rng.below(text.len() / 2);
            text = text.get(start..end).unwrap_or_default().to_owned();
        }
        ((*sub).to_owned(), json!(text))
    } else if roll < 85 {
        let value = rng
            .pick(&[json!(true), json!(false), json!("True"), json!("x")])
            .clone();
        ("primary".to_owned(), value)
    } else if roll < 92 {
        (attr.probe.to_owned(), json!("a"))
    } else if roll < 95 {
        ("nonesuch".to_owned(), json!("a"))
    } else {
        let (sub, _) = rng.pick(attr.texts);
        let value = rng.pick(&[Json::Null, json!(1), json!(true)]).clone();
        ((*sub).to_owned(), value)
    };
    Filter {
        expression: Some(Expression::Comparison(Box::new(Comparison {
            path: Some(Box::new(path(&sub, ""))),
            operator: op as i32,
            value: (op != Operator::Pr).then(|| identity_proto::json_to_value(value)),
        }))),
    }
}

/// A value filter of up to `depth` levels of and, or and not.
fn value_filter(rng: &mut Rng, attr: &Attr, depth: usize) -> Filter {
    if depth == 0 || rng.chance(45) {
        return comparison(rng, attr);
    }
    let expression = match rng.below(3) {
        0 => Expression::Not(Box::new(value_filter(rng, attr, depth - 1))),
        kind => {
            let operands = (0..2 + rng.below(2))
                .map(|_| value_filter(rng, attr, depth - 1))
                .collect();
            if kind == 1 {
                Expression::And(Logical { operands })
            } else {
                Expression::Or(Logical { operands })
            }
        }
    };
    Filter {
        expression: Some(expression),
    }
}

#[tokio::test]
async fn list_filters_and_patch_value_filters_agree() {
    let seed = std::env::var("FILTER_AGREEMENT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5C1_F11E_u64);
    let mut rng = Rng(seed);
    let svc = TestService::start().await;
    let token = svc.tenant_with_token("agreement").await;
    let mut users = Vec::new();
    for n in 0..USERS {
        let user = svc
            .users()
            .create_user(call(
                &token,
                CreateUserRequest {
                    tenant: String::new(),
                    user: Some(generated_user(&mut rng, n)),
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("create user{n}: {e}"))
            .into_inner();
        users.push(user);
    }
    let mut selecting = 0;
    let mut refused = 0;
    for case in 0..FILTERS {
        let attr = rng.pick(ATTRS);
        let filter = value_filter(&mut rng, attr, 2);
        let listed = svc
            .users()
            .list_users(call(
                &token,
                ListUsersRequest {
                    filter: Some(Filter {
                        expression: Some(Expression::ValuePath(Box::new(ValuePath {
                            path: Some(Box::new(path(attr.name, ""))),
                            filter: Some(Box::new(filter.clone())),
                        }))),
                    }),
                    page_size: Some(USERS as i32),
                    ..ListUsersRequest::default()
                },
            ))
            .await;
        let listed: Option<HashSet<String>> = match listed {
            Ok(response) => Some(
                response
                    .into_inner()
                    .users
                    .into_iter()
                    .map(|u| u.id)
                    .collect(),
            ),
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::InvalidArgument,
                    "case {case}: {status:?}"
                );
                None
            }
        };
        let probe = PatchOperation {
            op: Op::Remove as i32,
            path: Some(AttributePath {
                value_filter: Some(Box::new(filter.clone())),
                ..path(attr.name, attr.probe)
            }),
            value: None,
        };
        // One probe per user, all at once: each is its own transaction.
        let probes = users.iter().map(|user| {
            let mut client = svc.users();
            let request = call(
                &token,
                PatchUserRequest {
                    id: user.id.clone(),
                    operations: vec![probe.clone()],
                    ..PatchUserRequest::default()
                },
            );
            async move { client.patch_user(request).await }
        });
        let outcomes = futures::future::join_all(probes).await;
        for (user, patched) in users.iter().zip(outcomes) {
            let context = || {
                format!(
                    "case {case} (seed {seed}) on {}[{filter:?}] of {}: {:?}",
                    attr.name,
                    user.user_name,
                    users_attribute(user, attr.name)
                )
            };
            match (&listed, patched) {
                (Some(selected), Ok(_)) => {
                    assert!(
                        selected.contains(&user.id),
                        "PATCH selects, list does not: {}",
                        context()
                    );
                }
                (Some(selected), Err(status)) => {
                    assert_eq!(reason(&status), "NO_TARGET", "{status:?}: {}", context());
                    assert!(
                        !selected.contains(&user.id),
                        "list selects, PATCH does not: {}",
                        context()
                    );
                }
                (None, Ok(_)) => panic!("list refuses, PATCH accepts: {}", context()),
                (None, Err(status)) => {
                    assert_eq!(status.code(), Code::InvalidArgument, "{}", context());
                    assert_eq!(reason(&status), "INVALID_PATH", "{status:?}: {}", context());
                }
            }
        }
        match listed {
            Some(selected) if !selected.is_empty() => selecting += 1,
            Some(_) => {}
            None => refused += 1,
        }
    }
    // The generator must exercise both outcomes, or the agreement is empty.
    assert!(
        selecting > FILTERS / 5,
        "only {selecting} filters selected anyone"
    );
    assert!(
        refused > 0 && refused < FILTERS / 2,
        "{refused} filters refused"
    );
    svc.stop().await;
}

/// The generated values of `name` on `user`, for failure messages.
fn users_attribute(user: &User, name: &str) -> Json {
    if name == "emails" {
        return Json::Array(
            user.emails
                .iter()
                .map(|e| json!({"value": e.value, "type": e.r#type, "primary": e.primary}))
                .collect(),
        );
    }
    user.attributes
        .clone()
        .map(identity_proto::struct_to_json)
        .and_then(|bag| bag.get(name).cloned())
        .unwrap_or(Json::Null)
}
