//! TLS on the gRPC port, through tonic's rustls: the service's certificate
//! and key (and, for mTLS, the CA its callers' certificates must chain
//! to), and the callers' side of it (the CA that signed the service, and
//! their own certificate and key). Files are read once, at start-up; a
//! message names the file and the setting, never the content.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// How long a TLS handshake may take at either end: without a bound, a
/// peer that stalls in it holds its connection (and a server task) forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {setting} {path}: {reason}")]
    Read {
        setting: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{0} and {1} go together: set both or neither")]
    Unpaired(&'static str, &'static str),
    #[error("{0} needs {1}")]
    Requires(&'static str, &'static str),
    #[error("{0}")]
    Scheme(&'static str),
    #[error("invalid TLS configuration: {0}")]
    Invalid(String),
    #[error("{setting} {path} holds no PEM {expected}")]
    NoPem {
        setting: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
}

impl TlsError {
    /// A refusal by tonic or rustls with every cause it gives: tonic's own
    /// message is only "transport error".
    pub fn invalid(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut reasons = vec![err.to_string()];
        let mut cause = err.source();
        while let Some(next) = cause {
            reasons.push(next.to_string());
            cause = next.source();
        }
        TlsError::Invalid(reasons.join(": "))
    }
}

/// A PEM file of certificates: at least one, each well formed, so a wrong
/// file stops start-up instead of failing every handshake later (tonic
/// skips what it cannot parse).
fn certificates(setting: &'static str, path: &Path) -> Result<Certificate, TlsError> {
    let pem = read(setting, path)?;
    let parsed = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>();
    match parsed {
        Ok(certificates) if !certificates.is_empty() => Ok(Certificate::from_pem(pem)),
        Ok(_) => Err(no_pem(setting, path, "certificate")),
        Err(e) => Err(malformed(setting, path, &e)),
    }
}

/// A certificate chain and the PEM file of its private key.
fn identity(
    (cert_setting, cert): (&'static str, &Path),
    (key_setting, key): (&'static str, &Path),
) -> Result<Identity, TlsError> {
    let chain = certificates(cert_setting, cert)?;
    let pem = read(key_setting, key)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(_) => Ok(Identity::from_pem(chain, pem)),
        Err(pem::Error::NoItemsFound) => Err(no_pem(
            key_setting,
            key,
            "private key (PKCS#8, PKCS#1 or SEC1)",
        )),
        Err(e) => Err(malformed(key_setting, key, &e)),
    }
}

fn no_pem(setting: &'static str, path: &Path, expected: &'static str) -> TlsError {
    TlsError::NoPem {
        setting,
        path: path.to_owned(),
        expected,
    }
}

fn malformed(setting: &'static str, path: &Path, err: &pem::Error) -> TlsError {
    TlsError::Read {
        setting,
        path: path.to_owned(),
        reason: format!("not valid PEM: {err}"),
    }
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        setting,
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The settings of a server certificate, named as the service's flags are.
pub struct ServerFiles<'a> {
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub client_ca: Option<&'a Path>,
}

impl ServerFiles<'_> {
    /// `None` when no certificate is set (plaintext gRPC).
    pub fn load(&self) -> Result<Option<ServerTlsConfig>, TlsError> {
        const CERT: &str = "IDENTITY_TLS_CERT";
        const KEY: &str = "IDENTITY_TLS_KEY";
        const CLIENT_CA: &str = "IDENTITY_TLS_CLIENT_CA";
        let (cert, key) = match (self.cert, self.key) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) if self.client_ca.is_some() => {
                return Err(TlsError::Requires(CLIENT_CA, CERT));
            }
            (None, None) => return Ok(None),
            _ => return Err(TlsError::Unpaired(CERT, KEY)),
        };
        let mut config = ServerTlsConfig::new()
            .identity(identity((CERT, cert), (KEY, key))?)
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca) = self.client_ca {
            config = config.client_ca_root(certificates(CLIENT_CA, ca)?);
        }
        Ok(Some(config))
    }
}

/// The settings of a caller of the service, named as the adapter's and
/// identityctl's flags are.
pub struct ClientFiles<'a> {
    pub ca: Option<&'a Path>,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
}

impl ClientFiles<'_> {
    /// `None` when no CA is set (plaintext gRPC, an `http://` URL).
    pub fn load(&self) -> Result<Option<ClientTlsConfig>, TlsError> {
        const CA: &str = "IDENTITY_GRPC_CA";
        const CERT: &str = "IDENTITY_GRPC_CLIENT_CERT";
        const KEY: &str = "IDENTITY_GRPC_CLIENT_KEY";
        let identity = match (self.cert, self.key) {
            (Some(cert), Some(key)) => Some(identity((CERT, cert), (KEY, key))?),
            (None, None) => None,
            _ => return Err(TlsError::Unpaired(CERT, KEY)),
        };
        let Some(ca) = self.ca else {
            return match identity {
                Some(_) => Err(TlsError::Requires(CERT, CA)),
                None => Ok(None),
            };
        };
        let mut config = ClientTlsConfig::new()
            .ca_certificate(certificates(CA, ca)?)
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(identity) = identity {
            config = config.identity(identity);
        }
        Ok(Some(config))
    }
}

/// Applies a caller's TLS settings to its endpoint, checking that the
/// URL's scheme agrees: `https://` with a CA, `http://` without.
pub fn apply(
    endpoint: tonic::transport::Endpoint,
    tls: Option<ClientTlsConfig>,
) -> Result<tonic::transport::Endpoint, TlsError> {
    let https = endpoint.uri().scheme_str() == Some("https");
    match tls {
        Some(tls) if https => endpoint.tls_config(tls).map_err(|e| TlsError::invalid(&e)),
        None if !https => Ok(endpoint),
        Some(_) => Err(TlsError::Scheme(
            "IDENTITY_GRPC_CA is set, so the URL must be https://",
        )),
        None => Err(TlsError::Scheme("an https:// URL needs IDENTITY_GRPC_CA")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_without_certificates_stop_start_up() {
        let path = std::env::temp_dir().join(format!("identity-proto-tls-{}", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
        let client = ClientFiles {
            ca: Some(&path),
            cert: None,
            key: None,
        }
        .load();
        let server = ServerFiles {
            cert: Some(&path),
            key: Some(&path),
            client_ca: None,
        }
        .load();
        let _ = std::fs::remove_file(&path);
        for err in [client.err(), server.err()] {
            assert!(
                matches!(
                    err,
                    Some(TlsError::NoPem {
                        expected: "certificate",
                        ..
                    })
                ),
                "{err:?}"
            );
        }
    }
}
