//! TLS on the gRPC port, through tonic's rustls: the service's certificate
//! and key (and, for mTLS, the CA its callers' certificates must chain
//! to), and the callers' side of it (the CA that signed the service, and
//! their own certificate and key). Files are read once, at start-up; a
//! message names the file and the setting, never the content.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

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
        let mut config =
            ServerTlsConfig::new().identity(Identity::from_pem(read(CERT, cert)?, read(KEY, key)?));
        if let Some(ca) = self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(CLIENT_CA, ca)?));
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
            (Some(cert), Some(key)) => Some(Identity::from_pem(read(CERT, cert)?, read(KEY, key)?)),
            (None, None) => None,
            _ => return Err(TlsError::Unpaired(CERT, KEY)),
        };
        let Some(ca) = self.ca else {
            return match identity {
                Some(_) => Err(TlsError::Requires(CERT, CA)),
                None => Ok(None),
            };
        };
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(CA, ca)?));
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
        Some(tls) if https => endpoint
            .tls_config(tls)
            .map_err(|e| TlsError::Invalid(e.to_string())),
        None if !https => Ok(endpoint),
        Some(_) => Err(TlsError::Scheme(
            "IDENTITY_GRPC_CA is set, so the URL must be https://",
        )),
        None => Err(TlsError::Scheme("an https:// URL needs IDENTITY_GRPC_CA")),
    }
}
