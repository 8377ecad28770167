//! Builders of proto paths, filters and PATCH operations that the unit
//! tests of the filter compiler, the PATCH engine and the group plan share.

use identity_proto::v1::comparison::Operator;
use identity_proto::v1::filter::Expression as Expr;
use identity_proto::v1::patch_operation::Op;
use identity_proto::v1::{AttributePath, Comparison, Filter, PatchOperation};
use serde_json::Value as Json;

pub(crate) fn path(schema: &str, attribute: &str, sub: &str) -> AttributePath {
    AttributePath {
        schema: schema.into(),
        attribute: attribute.into(),
        sub_attribute: sub.into(),
        value_filter: None,
    }
}

/// `path op value`.
pub(crate) fn cmp_path(path: AttributePath, op: Operator, value: Json) -> Filter {
    Filter {
        expression: Some(Expr::Comparison(Box::new(Comparison {
            path: Some(Box::new(path)),
            operator: op as i32,
            value: Some(identity_proto::json_to_value(value)),
        }))),
    }
}

/// `attr eq value`.
pub(crate) fn eq(attr: &str, value: Json) -> Filter {
    cmp_path(path("", attr, ""), Operator::Eq, value)
}

/// `attribute[filter].sub`.
pub(crate) fn filtered(attribute: &str, filter: Filter, sub: &str) -> AttributePath {
    AttributePath {
        value_filter: Some(Box::new(filter)),
        ..path("", attribute, sub)
    }
}

pub(crate) fn op(kind: Op, path: Option<AttributePath>, value: Option<Json>) -> PatchOperation {
    PatchOperation {
        op: kind as i32,
        path,
        value: value.map(identity_proto::json_to_value),
    }
}
