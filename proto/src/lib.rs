//! The identity.v1 contract shared by the service, the SCIM adapter,
//! identityctl and internal callers.

pub mod v1 {
    tonic::include_proto!("identity.v1");
}

mod json;
pub mod lifecycle;
#[cfg(feature = "metrics")]
pub mod metrics;
mod name;
#[cfg(feature = "otel")]
pub mod otel;
pub mod tls;

pub use json::{json_to_struct, json_to_value, struct_to_json, value_to_json};

/// The compiled descriptors of identity.v1 and the files it imports, as
/// gRPC server reflection serves them.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/identity_descriptor.bin"));

/// `google.rpc.ErrorInfo.domain` of every error the service returns.
pub const ERROR_DOMAIN: &str = "identity.v1";

/// The contract's tenant slug rule: lowercase letters, digits and '-', 2 to
/// 63 characters.
pub fn is_valid_slug(slug: &str) -> bool {
    (2..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A duration as every binary's flags spell it: `500ms`, `10s` (or a bare
/// `10`), `2m`, `6h` or `400d` (days of 24 hours, for retention); zero is
/// refused, since no timeout of ours means "none".
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration such as 10s, 500ms, 2m or 400d"))?;
    let seconds = |per_unit: u64| {
        number
            .checked_mul(per_unit)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("'{text}' is too long"))
    };
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => seconds(60)?,
        "h" => seconds(60 * 60)?,
        "d" => seconds(24 * 60 * 60)?,
        other => return Err(format!("unknown unit '{other}': use ms, s, m, h or d")),
    };
    if duration.is_zero() {
        return Err("the duration must be positive".into());
    }
    Ok(duration)
}

/// A duration as [`parse_duration`] reads it, where zero is allowed and
/// means "do not wait" (`0`, `0s`, `0ms` or `0m`).
pub fn parse_duration_or_zero(text: &str) -> Result<std::time::Duration, String> {
    if matches!(text.trim(), "0" | "0s" | "0ms" | "0m") {
        return Ok(std::time::Duration::ZERO);
    }
    parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(
            parse_duration("400d"),
            Ok(Duration::from_secs(400 * 24 * 3600))
        );
        for bad in [
            "0s",
            "0d",
            "s",
            "5w",
            "-1s",
            "",
            "1.5d",
            "99999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for zero in ["0", "0s", " 0ms", "0m"] {
            assert_eq!(parse_duration_or_zero(zero), Ok(Duration::ZERO), "{zero}");
        }
        assert_eq!(parse_duration_or_zero("3s"), Ok(Duration::from_secs(3)));
        assert!(parse_duration_or_zero("-0s").is_err());
    }

    #[test]
    fn slugs() {
        for ok in ["ab", "acme", "acme-2", "0-9", &"a".repeat(63)] {
            assert!(is_valid_slug(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Acme",
            "acme_co",
            "acme co",
            "ac.me",
            "é-x",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
    }
}
