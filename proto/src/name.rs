//! The SCIM sub-attributes of a user's `name` (RFC 7643 §4.1.1) paired once
//! with the proto fields, so the service and the adapter read and write the
//! same six names.

use crate::v1::Name;

impl Name {
    /// The sub-attribute names, in schema order.
    pub const SCIM_SUB_ATTRIBUTES: [&'static str; 6] = [
        "formatted",
        "familyName",
        "givenName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
    ];

    /// Each sub-attribute's value by its SCIM name, in schema order.
    pub fn scim_parts(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("formatted", &self.formatted),
            ("familyName", &self.family_name),
            ("givenName", &self.given_name),
            ("middleName", &self.middle_name),
            ("honorificPrefix", &self.honorific_prefix),
            ("honorificSuffix", &self.honorific_suffix),
        ]
    }

    /// The field of the sub-attribute `canonical` (exact SCIM spelling), if
    /// it is one.
    pub fn scim_part_mut(&mut self, canonical: &str) -> Option<&mut Option<String>> {
        Some(match canonical {
            "formatted" => &mut self.formatted,
            "familyName" => &mut self.family_name,
            "givenName" => &mut self.given_name,
            "middleName" => &mut self.middle_name,
            "honorificPrefix" => &mut self.honorific_prefix,
            "honorificSuffix" => &mut self.honorific_suffix,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sub_attribute_reaches_its_own_field() {
        let mut name = Name::default();
        for (i, sub) in Name::SCIM_SUB_ATTRIBUTES.iter().enumerate() {
            *name.scim_part_mut(sub).expect("a name sub-attribute") = Some(i.to_string());
        }
        let parts = name.scim_parts();
        for (i, (sub, value)) in parts.iter().enumerate() {
            assert_eq!(*sub, Name::SCIM_SUB_ATTRIBUTES[i]);
            assert_eq!(value.as_deref(), Some(i.to_string().as_str()));
        }
        assert!(name.scim_part_mut("nickName").is_none());
    }
}
