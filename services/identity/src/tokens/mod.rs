//! Tenant bearer tokens: their text format, hashing and errors.
//!
//! Text: `idl_` + tenant id (32 lowercase hex) + `_` + 43 base64url chars of
//! 32 random bytes. Only the SHA-256 of the whole text is stored; the tenant
//! id in the text makes a lookup one probe of the (tenant_id, token_hash) index.

pub(crate) mod service;
pub(crate) mod store;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity_proto::v1::TokenScope;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::StoreError;

pub(crate) const TOKEN_PREFIX: &str = "idl_";
const RANDOM_BYTES: usize = 32;
/// base64url without padding of 32 bytes.
const RANDOM_CHARS: usize = 43;
/// Shown in lists to recognise a token: the prefix and 8 random chars.
const SHOWN_RANDOM_CHARS: usize = 8;

/// A freshly generated token; `text` is returned once and never stored.
pub(crate) struct NewSecret {
    pub text: String,
    pub prefix: String,
    pub hash: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidValue(String),
    #[error("a live token named '{0}' already exists in this tenant")]
    NameTaken(String),
    #[error("token not found")]
    NotFound,
    /// A SCIM token asked for while the tenant has SCIM switched off:
    /// DisableScim revoked them all and must not be undone behind its back.
    #[error("SCIM is disabled for tenant '{0}': enable it (EnableScim) before issuing SCIM tokens")]
    ScimDisabled(String),
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for TokenError {
    fn from(err: diesel::result::Error) -> Self {
        TokenError::Store(err.into())
    }
}

/// Makes a new token of `tenant` from 256 bits of the OS random generator.
pub(crate) fn generate(tenant: Uuid) -> Result<NewSecret, TokenError> {
    let mut random = [0u8; RANDOM_BYTES];
    OsRng
        .try_fill_bytes(&mut random)
        .map_err(|e| TokenError::Random(e.to_string()))?;
    let random = URL_SAFE_NO_PAD.encode(random);
    let text = format!("{TOKEN_PREFIX}{}_{random}", tenant.simple());
    Ok(NewSecret {
        prefix: format!("{TOKEN_PREFIX}{}", &random[..SHOWN_RANDOM_CHARS]),
        hash: digest(&text),
        text,
    })
}

/// The tenant a token text claims to belong to, if the text is well formed.
pub(crate) fn parse_tenant(text: &str) -> Option<Uuid> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (tenant_hex, random) = rest.split_once('_')?;
    let tenant_ok = tenant_hex.len() == 32
        && tenant_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let random_ok = random.len() == RANDOM_CHARS
        && random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !(tenant_ok && random_ok) {
        return None;
    }
    Uuid::try_parse(tenant_hex).ok()
}

/// The scope of a stored `tokens.scope`; anything unknown is a service token,
/// the scope with less reach.
pub(crate) fn scope_of(stored: &str) -> TokenScope {
    match stored {
        "scim" => TokenScope::Scim,
        _ => TokenScope::Service,
    }
}

/// The stored form of a scope.
pub(crate) fn scope_name(scope: TokenScope) -> &'static str {
    match scope {
        TokenScope::Scim => "scim",
        TokenScope::Service => "service",
    }
}

pub(crate) fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back_to_their_tenant() {
        let tenant = Uuid::new_v4();
        let secret = generate(tenant).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(secret.text.len(), 4 + 32 + 1 + 43);
        assert!(
            secret
                .text
                .starts_with(&format!("idl_{}_", tenant.simple()))
        );
        assert_eq!(parse_tenant(&secret.text), Some(tenant));
        assert_eq!(secret.hash, digest(&secret.text));
        assert_eq!(secret.prefix.len(), 4 + 8);
        let random = &secret.text[4 + 32 + 1..];
        assert!(secret.prefix.ends_with(&random[..8]));
    }

    #[test]
    fn tokens_are_unique() {
        let tenant = Uuid::new_v4();
        let a = generate(tenant).map(|s| s.text).unwrap_or_default();
        let b = generate(tenant).map(|s| s.text).unwrap_or_default();
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_texts_are_rejected() {
        let tenant = Uuid::new_v4();
        let good = generate(tenant).map(|s| s.text).unwrap_or_default();
        assert!(parse_tenant(&good).is_some());
        assert_eq!(parse_tenant(""), None);
        assert_eq!(parse_tenant("non-token"), None);
        assert_eq!(parse_tenant(&good.replacen("idl_", "idx_", 1)), None);
        assert_eq!(parse_tenant(&good[..good.len() - 1]), None);
        assert_eq!(parse_tenant(&format!("{good}A")), None);
        assert_eq!(parse_tenant(&good.to_uppercase()), None);
        let bad_char = format!("{}!", &good[..good.len() - 1]);
        assert_eq!(parse_tenant(&bad_char), None);
    }

    #[test]
    fn digest_is_sha256() {
        assert_eq!(
            digest("abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
