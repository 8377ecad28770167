//! SCIM filter text (RFC 7644 §3.4.2.2) -> `identity.v1.Filter` tree, and
//! PATCH path text (`emails[type eq "work"].value`) -> `AttributePath`.
//!
//! Precedence is `not` > `and` > `or`; names are canonicalised; values may be
//! quoted or bare (Entra sends `externalId eq jyoung`). Only syntax is checked
//! here: whether an attribute can be filtered on is the service's decision.

use std::fmt;

use identity_proto::v1::{
    AttributePath, Comparison, Filter, Logical, ValuePath, comparison, filter,
};
use prost_types::value::Kind as ValueKind;

use crate::wire::bounds::{
    MAX_FILTER_BYTES, MAX_FILTER_DEPTH, MAX_FILTER_TERMS, MAX_PATCH_PATH_BYTES,
};
use crate::wire::schema::{self, Kind, PathTarget, Resource};

/// A syntax error and the 1-based character position it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for FilterError {}

/// Parses a whole filter expression over attributes of `resource`.
pub fn parse_filter(resource: Resource, text: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser::new(resource, text, MAX_FILTER_BYTES)?;
    if parser.tokens.is_empty() {
        return Err(parser.error_at(0, "the filter is empty"));
    }
    let filter = parser.parse_or(None)?;
    parser.expect_end()?;
    Ok(filter)
}

/// Parses a PATCH path: `[urn:]attr[.sub]` or `[urn:]attr[filter][.sub]`.
/// A path naming a whole schema (the enterprise URN alone) is returned as such.
pub fn parse_path(resource: Resource, text: &str) -> Result<PathTarget, FilterError> {
    let mut parser = Parser::new(resource, text, MAX_PATCH_PATH_BYTES)?;
    let Some(Token {
        kind: Tok::Word(word),
        offset,
    }) = parser.next()
    else {
        return Err(parser.error_at(0, "expected an attribute path"));
    };
    let target = parser.attr_path(&word, offset, None)?;
    if !matches!(parser.peek(), Some(Tok::LBracket)) {
        parser.expect_end()?;
        return Ok(target);
    }
    let PathTarget::Attribute(mut path) = target else {
        return Err(parser.error_at(offset, "a value filter needs an attribute, not a schema"));
    };
    if !path.sub_attribute.is_empty() {
        return Err(parser.error_at(offset, "a value filter must follow the attribute itself"));
    }
    let bracket = parser.next().map_or(0, |t| t.offset);
    parser.enter(bracket)?;
    let inner = parser.parse_or(Some(&path))?;
    parser.expect(Tok::RBracket, "']'")?;
    if let Some(token) = parser.next() {
        let sub = match &token.kind {
            Tok::Word(w) => w.strip_prefix('.').filter(|s| valid_sub(s)),
            _ => None,
        };
        let Some(sub) = sub else {
            return Err(parser.error_at(token.offset, "expected '.subAttribute' after ']'"));
        };
        path.sub_attribute =
            schema::canonical_sub_attribute(resource, &path.schema, &path.attribute, sub);
        parser.expect_end()?;
    }
    path.value_filter = Some(Box::new(inner));
    Ok(PathTarget::Attribute(path))
}

fn valid_sub(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A bare word: attribute path, operator, keyword or unquoted value.
    Word(String),
    /// A JSON string literal, unescaped.
    Str(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("\"{s}\""),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    /// 0-based character offset in the input.
    offset: usize,
}

struct Parser {
    /// Whose attribute names the paths are canonicalised against.
    resource: Resource,
    tokens: Vec<Token>,
    pos: usize,
    /// Character count of the input, for "at the end" errors.
    len: usize,
    /// Levels entered so far (parentheses, `not`, value filters), checked
    /// against [`MAX_FILTER_DEPTH`] before each recursion.
    depth: usize,
    /// Comparisons parsed so far, bounded by [`MAX_FILTER_TERMS`].
    terms: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '"' => {
                let (s, end) = string_literal(&chars, i)?;
                i = end;
                tokens.push(Token {
                    kind: Tok::Str(s),
                    offset: start,
                });
                continue;
            }
            _ => {
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | '[' | ']' | '"')
                {
                    i += 1;
                }
                tokens.push(Token {
                    kind: Tok::Word(chars[start..i].iter().collect()),
                    offset: start,
                });
                continue;
            }
        };
        i += 1;
        tokens.push(Token {
            kind,
            offset: start,
        });
    }
    Ok(tokens)
}

/// Reads the JSON string starting at `chars[start] == '"'`; returns it and
/// the index just past the closing quote.
fn string_literal(chars: &[char], start: usize) -> Result<(String, usize), FilterError> {
    let err = |at: usize, message: &str| FilterError {
        position: at + 1,
        message: message.to_owned(),
    };
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(err(start, "unterminated string"));
        };
        i += 1;
        match c {
            '"' => return Ok((out, i)),
            '\\' => {
                let Some(&e) = chars.get(i) else {
                    return Err(err(start, "unterminated string"));
                };
                i += 1;
                match e {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let (ch, next) = unicode_escape(chars, i)
                            .ok_or_else(|| err(i - 2, "invalid \\u escape"))?;
                        out.push(ch);
                        i = next;
                    }
                    _ => return Err(err(i - 2, "invalid escape in string")),
                }
            }
            c => out.push(c),
        }
    }
}

/// Decodes `XXXX` (and a following `\uXXXX` low surrogate when needed).
fn unicode_escape(chars: &[char], at: usize) -> Option<(char, usize)> {
    let hex = |from: usize| -> Option<u32> {
        let digits: String = chars.get(from..from + 4)?.iter().collect();
        u32::from_str_radix(&digits, 16).ok()
    };
    let high = hex(at)?;
    if (0xD800..0xDC00).contains(&high) {
        if chars.get(at + 4) != Some(&'\\') || chars.get(at + 5) != Some(&'u') {
            return None;
        }
        let low = hex(at + 6)?;
        if !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        return char::from_u32(code).map(|c| (c, at + 10));
    }
    char::from_u32(high).map(|c| (c, at + 4))
}

fn operator(word: &str) -> Option<comparison::Operator> {
    use comparison::Operator as Op;
    Some(match word.to_ascii_lowercase().as_str() {
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "co" => Op::Co,
        "sw" => Op::Sw,
        "ew" => Op::Ew,
        "pr" => Op::Pr,
        "gt" => Op::Gt,
        "ge" => Op::Ge,
        "lt" => Op::Lt,
        "le" => Op::Le,
        _ => return None,
    })
}

fn is_keyword(tok: Option<&Tok>, keyword: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(keyword))
}

impl Parser {
    /// Refuses text longer than `max_bytes` and NUL characters (which no
    /// stored value can hold) before tokenizing.
    fn new(resource: Resource, text: &str, max_bytes: usize) -> Result<Self, FilterError> {
        if text.len() > max_bytes {
            return Err(FilterError {
                position: 1,
                message: format!(
                    "the text is {} bytes long; at most {max_bytes} are accepted",
                    text.len()
                ),
            });
        }
        let tokens = tokenize(text)?;
        let nul = tokens.iter().find(|t| match &t.kind {
            Tok::Word(w) | Tok::Str(w) => w.contains('\0'),
            _ => false,
        });
        if let Some(token) = nul {
            return Err(FilterError {
                position: token.offset + 1,
                message: "a NUL character cannot be stored or matched".into(),
            });
        }
        Ok(Parser {
            resource,
            tokens,
            pos: 0,
            len: text.chars().count(),
            depth: 0,
            terms: 0,
        })
    }

    /// Enters one nesting level at `offset`, or refuses past the limit.
    fn enter(&mut self, offset: usize) -> Result<(), FilterError> {
        if self.depth >= MAX_FILTER_DEPTH {
            return Err(self.error_at(
                offset,
                format!("nesting is deeper than {MAX_FILTER_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    /// Counts one comparison at `offset`, or refuses past the limit.
    fn count_term(&mut self, offset: usize) -> Result<(), FilterError> {
        if self.terms >= MAX_FILTER_TERMS {
            return Err(self.error_at(offset, format!("more than {MAX_FILTER_TERMS} comparisons")));
        }
        self.terms += 1;
        Ok(())
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            position: offset + 1,
            message: message.into(),
        }
    }

    /// An error about the next token, or about the end of the input.
    fn unexpected(&self, expected: &str) -> FilterError {
        match self.tokens.get(self.pos) {
            Some(t) => self.error_at(
                t.offset,
                format!("expected {expected}, found {}", t.kind.describe()),
            ),
            None => self.error_at(self.len, format!("expected {expected}, found the end")),
        }
    }

    fn expect(&mut self, tok: Tok, expected: &str) -> Result<(), FilterError> {
        if self.peek() == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn expect_end(&self) -> Result<(), FilterError> {
        match self.tokens.get(self.pos) {
            None => Ok(()),
            Some(t) => Err(self.error_at(t.offset, format!("unexpected {}", t.kind.describe()))),
        }
    }

    /// `scope` is the multi-valued attribute whose elements a value filter
    /// selects; inside it, paths name sub-attributes.
    fn parse_or(&mut self, scope: Option<&AttributePath>) -> Result<Filter, FilterError> {
        self.parse_chain(scope, "or", Self::parse_and, filter::Expression::Or)
    }

    fn parse_and(&mut self, scope: Option<&AttributePath>) -> Result<Filter, FilterError> {
        self.parse_chain(scope, "and", Self::parse_not, filter::Expression::And)
    }

    /// Operands read by `operand` and joined by `keyword`: one level of
    /// precedence. A single operand stands for itself.
    fn parse_chain(
        &mut self,
        scope: Option<&AttributePath>,
        keyword: &str,
        operand: fn(&mut Self, Option<&AttributePath>) -> Result<Filter, FilterError>,
        make: fn(Logical) -> filter::Expression,
    ) -> Result<Filter, FilterError> {
        let mut operands = vec![operand(self, scope)?];
        while is_keyword(self.peek(), keyword) {
            self.pos += 1;
            operands.push(operand(self, scope)?);
        }
        Ok(logical(operands, make))
    }

    fn parse_not(&mut self, scope: Option<&AttributePath>) -> Result<Filter, FilterError> {
        // `not` followed by an operator is an attribute named "not".
        let is_not = is_keyword(self.peek(), "not")
            && !matches!(self.tokens.get(self.pos + 1).map(|t| &t.kind),
                         Some(Tok::Word(w)) if operator(w).is_some());
        if is_not {
            self.enter(self.tokens[self.pos].offset)?;
            self.pos += 1;
            let inner = self.parse_not(scope)?;
            self.depth -= 1;
            return Ok(Filter {
                expression: Some(filter::Expression::Not(Box::new(inner))),
            });
        }
        self.parse_primary(scope)
    }

    fn parse_primary(&mut self, scope: Option<&AttributePath>) -> Result<Filter, FilterError> {
        let Some(token) = self.tokens.get(self.pos).cloned() else {
            return Err(self.unexpected("an attribute path or '('"));
        };
        let word = match token.kind {
            Tok::LParen => {
                self.enter(token.offset)?;
                self.pos += 1;
                let inner = self.parse_or(scope)?;
                self.expect(Tok::RParen, "')'")?;
                self.depth -= 1;
                return Ok(inner);
            }
            Tok::Word(word) => word,
            _ => return Err(self.unexpected("an attribute path or '('")),
        };
        self.pos += 1;
        let path = match self.attr_path(&word, token.offset, scope)? {
            PathTarget::Attribute(path) => path,
            PathTarget::Schema(_) => {
                return Err(
                    self.error_at(token.offset, "expected an attribute, found a schema URN")
                );
            }
        };
        if self.peek() == Some(&Tok::LBracket) {
            if scope.is_some() {
                return Err(self.error_at(
                    self.tokens[self.pos].offset,
                    "value filters cannot be nested",
                ));
            }
            if !path.sub_attribute.is_empty() {
                return Err(self.error_at(
                    token.offset,
                    "a value filter must follow the attribute itself",
                ));
            }
            self.enter(self.tokens[self.pos].offset)?;
            self.pos += 1;
            let inner = self.parse_or(Some(&path))?;
            self.expect(Tok::RBracket, "']'")?;
            self.depth -= 1;
            return Ok(Filter {
                expression: Some(filter::Expression::ValuePath(Box::new(ValuePath {
                    path: Some(Box::new(path)),
                    filter: Some(Box::new(inner)),
                }))),
            });
        }
        let op = match self.peek() {
            Some(Tok::Word(w)) => operator(w),
            _ => None,
        }
        .ok_or_else(|| self.unexpected(&format!("an operator after '{word}'")))?;
        self.count_term(token.offset)?;
        self.pos += 1;
        let value = if op == comparison::Operator::Pr {
            None
        } else {
            Some(self.comparison_value(&path, scope)?)
        };
        Ok(Filter {
            expression: Some(filter::Expression::Comparison(Box::new(Comparison {
                path: Some(Box::new(path)),
                operator: op as i32,
                value,
            }))),
        })
    }

    /// Parses a path word; inside a value filter it names a sub-attribute of
    /// `scope` and is canonicalised against it.
    fn attr_path(
        &self,
        word: &str,
        offset: usize,
        scope: Option<&AttributePath>,
    ) -> Result<PathTarget, FilterError> {
        let invalid = || self.error_at(offset, format!("'{word}' is not a valid attribute path"));
        match scope {
            None => schema::parse_attr_path(self.resource, word).ok_or_else(invalid),
            Some(parent) => {
                if !valid_sub(word) {
                    return Err(invalid());
                }
                Ok(PathTarget::Attribute(AttributePath {
                    schema: String::new(),
                    attribute: schema::canonical_sub_attribute(
                        self.resource,
                        &parent.schema,
                        &parent.attribute,
                        word,
                    ),
                    sub_attribute: String::new(),
                    value_filter: None,
                }))
            }
        }
    }

    /// A quoted string stays a string (or becomes a boolean for a boolean
    /// attribute); a bare word is typed by JSON rules unless the attribute is
    /// a known string, where it stays the text as written.
    fn comparison_value(
        &mut self,
        path: &AttributePath,
        scope: Option<&AttributePath>,
    ) -> Result<prost_types::Value, FilterError> {
        let kind = match scope {
            Some(parent) => schema::kind_of(
                self.resource,
                &parent.schema,
                &parent.attribute,
                &path.attribute,
            ),
            None => schema::kind_of(
                self.resource,
                &path.schema,
                &path.attribute,
                &path.sub_attribute,
            ),
        };
        let value = match self.peek() {
            Some(Tok::Str(s)) => match (kind, schema::bool_from_text(s)) {
                (Some(Kind::Boolean), Some(b)) => ValueKind::BoolValue(b),
                _ => ValueKind::StringValue(s.clone()),
            },
            Some(Tok::Word(w)) => bare_value(w, kind),
            _ => return Err(self.unexpected("a value")),
        };
        self.pos += 1;
        Ok(prost_types::Value { kind: Some(value) })
    }
}

fn bare_value(word: &str, kind: Option<Kind>) -> ValueKind {
    // ABNF literals are case-insensitive (RFC 5234 §2.3): `NULL` is null.
    if word.eq_ignore_ascii_case("null") {
        return ValueKind::NullValue(0);
    }
    match kind {
        Some(Kind::String | Kind::Reference | Kind::DateTime | Kind::Binary) => {
            return ValueKind::StringValue(word.to_owned());
        }
        Some(Kind::Boolean) => {
            if let Some(b) = schema::bool_from_text(word) {
                return ValueKind::BoolValue(b);
            }
        }
        _ => {}
    }
    if let Some(b) = schema::bool_from_text(word) {
        return ValueKind::BoolValue(b);
    }
    match json_number(word) {
        Some(n) => ValueKind::NumberValue(n),
        None => ValueKind::StringValue(word.to_owned()),
    }
}

/// A word in JSON number syntax (RFC 8259 §6), read exactly (Rust's
/// parser rounds correctly, so printed numbers read back equal). `inf`,
/// `NaN`, `+1` or `.5` are not numbers here.
fn json_number(word: &str) -> Option<f64> {
    let digits = |s: &str| -> usize { s.bytes().take_while(u8::is_ascii_digit).count() };
    let rest = word.strip_prefix('-').unwrap_or(word);
    let int = digits(rest);
    if int == 0 || (int > 1 && rest.starts_with('0')) {
        return None;
    }
    let mut rest = &rest[int..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = digits(fraction);
        if n == 0 {
            return None;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(['e', 'E']) {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return None;
        }
        rest = &exponent[n..];
    }
    if !rest.is_empty() {
        return None;
    }
    word.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn logical(mut operands: Vec<Filter>, make: fn(Logical) -> filter::Expression) -> Filter {
    if operands.len() == 1 {
        return operands.remove(0);
    }
    Filter {
        expression: Some(make(Logical { operands })),
    }
}

#[cfg(test)]
mod tests;
