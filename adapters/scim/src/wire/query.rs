//! The parameters of a list, search or projection request, however they
//! came: a query string or a SearchRequest body.

/// The query string as name/value pairs, in order. Parameter names are
/// matched case-insensitively by [`ScimQuery::get`] and [`ScimQuery::all`].
pub struct ScimQuery(pub Vec<(String, String)>);

impl ScimQuery {
    /// The first value of `name`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// Every value of `name`, trimmed, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}
