//! Limits on untrusted input, checked before any parser recurses or any
//! gRPC call is made, so that no request can exhaust the adapter's stack,
//! reach prost's decode recursion limit (100) in the service, or carry
//! text Postgres cannot store.

use std::rc::Rc;

use serde_json::Value as Json;

use crate::wire::error::ScimError;

/// Longest filter text (`?filter=`, `.search`), in bytes.
pub const MAX_FILTER_BYTES: usize = 8 * 1024;
/// Deepest filter nesting: each `(`, `not` and `[` value filter is a level.
/// A level costs at most two protobuf message levels, so 32 keeps a filter
/// far below prost's 100.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Most comparisons (`attr op value`, `attr pr`) in one filter or path.
pub const MAX_FILTER_TERMS: usize = 64;
/// Longest PATCH `path` (it may hold a value filter), in bytes.
pub const MAX_PATCH_PATH_BYTES: usize = 1024;
/// Longest `sortBy`, or one name in `attributes`/`excludedAttributes`, in bytes.
pub const MAX_PATH_BYTES: usize = 256;
/// Most names in `attributes`, and again in `excludedAttributes`.
pub const MAX_ATTRIBUTE_NAMES: usize = 100;
/// Longest `cursor`, in bytes; the service's page tokens are far shorter.
pub const MAX_CURSOR_BYTES: usize = 1024;
/// Most operations in one PATCH request.
pub const MAX_PATCH_OPERATIONS: usize = 1000;
/// Deepest JSON request body; every object and array is a level, the body
/// itself the first. The PatchOp and BulkRequest envelopes take 3 levels
/// each (6 for a PATCH inside /Bulk), so a resource of 16 levels fits in
/// every request. A JSON level costs at most two protobuf levels, so 24
/// stays far below prost's 100.
pub const MAX_JSON_DEPTH: usize = 24;

/// Checks a parsed request body: nesting depth (`invalidSyntax`) and NUL
/// characters in keys or strings (`invalidValue`, naming where). Iterative,
/// so the check itself cannot overflow the stack; linear, as each value
/// links to its parent and a path is spelled out only for the error.
pub fn check_json(body: &Json) -> Result<(), ScimError> {
    let mut pending: Vec<(&Json, usize, Option<Rc<Step>>)> = vec![(body, 1, None)];
    while let Some((value, depth, at)) = pending.pop() {
        match value {
            Json::Object(map) => {
                too_deep(depth)?;
                for (key, inner) in map {
                    let step = Step::new(&at, Segment::Key(key.as_str()));
                    if key.contains('\0') {
                        return Err(nul(&step));
                    }
                    pending.push((inner, depth + 1, Some(step)));
                }
            }
            Json::Array(items) => {
                too_deep(depth)?;
                for (index, inner) in items.iter().enumerate() {
                    pending.push((
                        inner,
                        depth + 1,
                        Some(Step::new(&at, Segment::Index(index))),
                    ));
                }
            }
            Json::String(text) if text.contains('\0') => {
                return Err(at.map_or_else(|| nul_at("the body"), |step| nul(&step)));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One step of the path from the body to a value.
struct Step<'a> {
    parent: Option<Rc<Step<'a>>>,
    segment: Segment<'a>,
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Step<'a> {
    fn new(parent: &Option<Rc<Step<'a>>>, segment: Segment<'a>) -> Rc<Step<'a>> {
        Rc::new(Step {
            parent: parent.clone(),
            segment,
        })
    }

    /// `emails[0].value`, `urn:…:User.department`.
    fn spell(&self) -> String {
        let mut segments = vec![&self.segment];
        let mut parent = self.parent.as_deref();
        while let Some(step) = parent {
            segments.push(&step.segment);
            parent = step.parent.as_deref();
        }
        let mut out = String::new();
        for segment in segments.into_iter().rev() {
            match segment {
                Segment::Key(key) if out.is_empty() => out.push_str(key),
                Segment::Key(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Segment::Index(index) => out.push_str(&format!("[{index}]")),
            }
        }
        out
    }
}

fn too_deep(depth: usize) -> Result<(), ScimError> {
    if depth > MAX_JSON_DEPTH {
        return Err(ScimError::invalid_syntax(format!(
            "the request body nests objects and arrays more than {MAX_JSON_DEPTH} levels deep"
        )));
    }
    Ok(())
}

fn nul(step: &Step) -> ScimError {
    nul_at(&step.spell())
}

fn nul_at(path: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "{}: contains a NUL character, which cannot be stored",
        printable(path)
    ))
}

/// `text` as it can be echoed in a message: NULs shown as `\u0000`, cut to
/// [`MAX_PATH_BYTES`].
pub fn printable(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() >= MAX_PATH_BYTES {
            out.push('…');
            break;
        }
        match c {
            '\0' => out.push_str("\\u0000"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::error::ScimType;
    use serde_json::json;

    fn nested(levels: usize) -> Json {
        let mut value = json!("leaf");
        for level in 0..levels {
            value = if level % 2 == 0 {
                json!({ "a": value })
            } else {
                json!([value])
            };
        }
        value
    }

    #[test]
    fn depth_counts_every_object_and_array() {
        assert_eq!(check_json(&nested(MAX_JSON_DEPTH)), Ok(()));
        let error = check_json(&nested(MAX_JSON_DEPTH + 1)).expect_err("too deep");
        assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
        assert_eq!(check_json(&json!("scalar")), Ok(()));
    }

    #[test]
    fn nul_is_refused_naming_the_attribute() {
        let error = check_json(&json!({"userName": "a\u{0}b"})).expect_err("nul value");
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert_eq!(
            error.detail,
            "userName: contains a NUL character, which cannot be stored"
        );
        let error = check_json(&json!({"urn:x": {"k\u{0}": 1}})).expect_err("nul key");
        assert_eq!(
            error.detail,
            "urn:x.k\\u0000: contains a NUL character, which cannot be stored"
        );
        let error = check_json(&json!({"emails": [{"value": "\u{0}"}]})).expect_err("in array");
        assert!(
            error.detail.starts_with("emails[0].value:"),
            "{}",
            error.detail
        );
        assert_eq!(check_json(&json!({"userName": "a\\u0000b"})), Ok(()));
    }
}
