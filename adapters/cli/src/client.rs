//! The gRPC connection to the identity service and the bearer-token metadata
//! every call carries.

use std::time::Duration;

use identity_proto::v1::event_service_client::EventServiceClient;
use identity_proto::v1::tenant_service_client::TenantServiceClient;
use identity_proto::v1::token_service_client::TokenServiceClient;
use identity_proto::v1::user_service_client::UserServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::error::CliError;

/// How long to wait for the TCP/HTTP2 handshake before calling the service unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for one RPC, so a wedged service never hangs a script forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Adds `authorization: Bearer <token>` to every request; sends nothing when no token is set,
/// so the service answers UNAUTHENTICATED and the error can say why.
#[derive(Clone)]
pub struct BearerAuth(Option<MetadataValue<Ascii>>);

impl BearerAuth {
    fn new(token: Option<&str>) -> Result<Self, CliError> {
        token
            .map(|token| {
                format!("Bearer {}", token.trim())
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| CliError::TokenNotAscii)
            })
            .transpose()
            .map(Self)
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type AuthedChannel = InterceptedService<Channel, BearerAuth>;

/// An established channel plus what error messages need to know about it.
pub struct Connection {
    channel: Channel,
    auth: BearerAuth,
    /// Whether a token was given at all, so UNAUTHENTICATED can point at IDENTITY_TOKEN.
    pub has_token: bool,
}

impl Connection {
    /// Connects eagerly so an unreachable service is reported as such, not as a failed call.
    pub async fn open(
        url: &str,
        tls: Option<ClientTlsConfig>,
        token: Option<&str>,
    ) -> Result<Self, CliError> {
        let token = token.filter(|token| !token.trim().is_empty());
        let auth = BearerAuth::new(token)?;
        let endpoint =
            Endpoint::from_shared(url.to_owned()).map_err(|err| CliError::InvalidUrl {
                url: url.to_owned(),
                reason: err.to_string(),
            })?;
        let endpoint = identity_proto::tls::apply(endpoint, tls)?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        let channel = endpoint
            .connect()
            .await
            .map_err(|err| CliError::unreachable(url, &err))?;
        Ok(Self {
            channel,
            auth,
            has_token: token.is_some(),
        })
    }

    pub fn tenants(&self) -> TenantServiceClient<AuthedChannel> {
        TenantServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    pub fn tokens(&self) -> TokenServiceClient<AuthedChannel> {
        TokenServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    pub fn events(&self) -> EventServiceClient<AuthedChannel> {
        EventServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    pub fn users(&self) -> UserServiceClient<AuthedChannel> {
        UserServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// Turns a failed call into the CLI's error, adding the missing-token hint.
    pub fn rpc_error(&self, status: Status) -> CliError {
        CliError::Rpc {
            status,
            token_missing: !self.has_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_is_added_when_a_token_is_set() {
        let mut auth = BearerAuth::new(Some("idl_secret")).unwrap();
        let request = auth.call(Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer idl_secret"
        );
    }

    #[test]
    fn no_header_without_a_token() {
        let mut auth = BearerAuth::new(None).unwrap();
        let request = auth.call(Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn token_with_control_characters_is_rejected_before_any_call() {
        assert!(matches!(
            BearerAuth::new(Some("abc\ndef")),
            Err(CliError::TokenNotAscii)
        ));
    }

    #[tokio::test]
    async fn closed_port_reports_connection_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = Connection::open(&url, None, None).await.err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("cannot reach the identity service at {url}: connection refused")
        );
    }

    #[tokio::test]
    async fn malformed_url_is_reported_with_the_url() {
        let err = Connection::open("not a url", None, None)
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("invalid gRPC URL \"not a url\""),
            "{err}"
        );
    }
}
