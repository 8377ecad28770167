//! What the engine knows of a resource type, and why an operation fails.

use crate::attr::{Resource, canonical};
use crate::catalog::BagAttr;

/// Why a PATCH request cannot be applied; each maps to a SCIM `scimType`.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    Mutability(String),
    #[error("{0}")]
    NoTarget(String),
    #[error("{0}")]
    InvalidSyntax(String),
}

/// What PATCH knows of a resource type: the core attributes with a typed
/// home and their shapes, the read-only ones and the ones never stored.
/// Every other attribute lives in the resource's bag, as sent.
pub(crate) struct PatchSchema {
    pub resource: Resource,
    pub typed: &'static [(&'static str, Shape)],
    /// Schema attributes kept in the bag under their canonical names.
    pub bag: &'static [BagAttr],
    pub read_only: &'static [&'static str],
    pub ignored: &'static [&'static str],
    /// The schema extension with a typed home, if the resource has one.
    pub extension: Option<Extension>,
}

/// An extension whose attributes are typed (the enterprise User extension):
/// paths under its URN may name only these attributes.
pub(crate) struct Extension {
    pub urn: &'static str,
    pub attributes: &'static [&'static str],
    /// The complex ones among `attributes`, with their sub-attributes;
    /// every other attribute is simple.
    pub complex: &'static [(&'static str, &'static [&'static str])],
}

impl PatchSchema {
    /// The canonical spelling of a typed core attribute.
    pub(crate) fn typed_name(&self, key: &str) -> Option<&'static str> {
        self.typed
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(name, _)| *name)
    }

    /// Neither typed nor read-only nor ignored: a bag attribute.
    pub(crate) fn is_bag(&self, key: &str) -> bool {
        self.typed_name(key).is_none()
            && canonical(self.read_only, key).is_none()
            && canonical(self.ignored, key).is_none()
    }
}

/// What the schema says about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Simple,
    /// Single-valued complex attribute (or a whole extension object) with these sub-attributes.
    Complex(&'static [&'static str]),
    /// Multi-valued complex attribute with these sub-attributes.
    Multi(&'static [&'static str]),
    /// Not in the schema: kept in the bag as sent.
    Unknown,
}

impl Shape {
    pub(super) fn subs(self) -> Option<&'static [&'static str]> {
        match self {
            Shape::Complex(subs) | Shape::Multi(subs) => Some(subs),
            _ => None,
        }
    }
}
