//! TLS and mTLS on the gRPC port, on the real binaries, with certificates
//! generated here (rcgen): a CA, the service's certificate for 127.0.0.1,
//! and a client certificate for the adapter and identityctl.

use std::path::PathBuf;
use std::time::Duration;

use identity_lifecycle_tests::process::{
    Process, bin_dir, free_addr, health_via, start_adapter, start_service_probed,
};
use identity_lifecycle_tests::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use reqwest::StatusCode;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_check_response::ServingStatus;

/// PEM files of one test's PKI, in a directory removed afterwards.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn generate() -> Pki {
        let dir = std::env::temp_dir().join(format!("idl-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("create the PKI directory");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "identity test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let pki = Pki { dir };
        pki.write("ca.pem", &ca.pem());
        let issue = |name: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(sans).expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca).expect("sign");
            pki.write(&format!("{name}.pem"), &cert.pem());
            pki.write(&format!("{name}.key"), &key.serialize_pem());
        };
        issue(
            "server",
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        issue("client", Vec::new(), ExtendedKeyUsagePurpose::ClientAuth);
        pki
    }

    fn write(&self, name: &str, pem: &str) {
        std::fs::write(self.dir.join(name), pem).expect("write a PEM file");
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).expect("read a PEM file")
    }

    /// A gRPC endpoint trusting our CA, with the client certificate or not.
    fn endpoint(&self, addr: std::net::SocketAddr, with_client_cert: bool) -> Endpoint {
        let mut tls =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(self.read("ca.pem")));
        if with_client_cert {
            tls = tls.identity(Identity::from_pem(
                self.read("client.pem"),
                self.read("client.key"),
            ));
        }
        Endpoint::from_shared(format!("https://{addr}"))
            .expect("gRPC url")
            .tls_config(tls)
            .expect("TLS config")
    }

    fn service_env(&self, mtls: bool) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("IDENTITY_TLS_CERT", self.path("server.pem")),
            ("IDENTITY_TLS_KEY", self.path("server.key")),
        ];
        if mtls {
            env.push(("IDENTITY_TLS_CLIENT_CA", self.path("ca.pem")));
        }
        env
    }

    /// The settings of the adapter and identityctl towards the service.
    fn client_env(
        &self,
        grpc: std::net::SocketAddr,
        with_client_cert: bool,
    ) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("IDENTITY_GRPC_URL", format!("https://{grpc}")),
            ("IDENTITY_GRPC_CA", self.path("ca.pem")),
        ];
        if with_client_cert {
            env.push(("IDENTITY_GRPC_CLIENT_CERT", self.path("client.pem")));
            env.push(("IDENTITY_GRPC_CLIENT_KEY", self.path("client.key")));
        }
        env
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The service with `pki`'s certificate, an adapter calling it over TLS,
/// and a SCIM user created through them; the service's address.
async fn serve_and_provision(
    pki: &Pki,
    mtls: bool,
    database: &TestDatabase,
) -> (std::net::SocketAddr, Vec<Process>) {
    let grpc = free_addr();
    let service = start_service_probed(
        database.url(),
        grpc,
        &pki.service_env(mtls),
        pki.endpoint(grpc, mtls),
    )
    .await;
    let scim = free_addr();
    let adapter = start_adapter(
        &format!("https://{grpc}"),
        scim,
        &pki.client_env(grpc, mtls),
    )
    .await;
    let channel = pki
        .endpoint(grpc, mtls)
        .connect()
        .await
        .expect("connect over TLS");
    let token = create_tenant(&channel, "acme").await.token;
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("http://{scim}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "the adapter reaches the service over TLS"
    );
    let created = http
        .post(format!("http://{scim}/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(user("tls@acme.example").to_string())
        .send()
        .await
        .expect("create a user");
    assert_eq!(created.status(), StatusCode::CREATED);
    (grpc, vec![service, adapter])
}

/// identityctl with these settings: its exit status and output.
async fn identityctl(env: Vec<(&'static str, String)>, args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(bin_dir().join("identityctl"));
    command
        .args(args)
        .env_clear()
        .env("IDENTITY_TOKEN", ADMIN_TOKEN)
        .envs(env);
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("identityctl ends")
        .expect("run identityctl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_the_grpc_port() {
    let pki = Pki::generate();
    let database = fresh_database().await;
    let (grpc, _processes) = serve_and_provision(&pki, false, &database).await;

    // Plaintext gRPC on a TLS port gets nowhere.
    let plaintext = Endpoint::from_shared(format!("http://{grpc}")).expect("url");
    assert!(
        health_via(plaintext, "").await.is_err(),
        "plaintext was served"
    );

    let listed = identityctl(
        pki.client_env(grpc, false),
        &["tenants", "list", "--output", "json"],
    )
    .await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("acme"));
    // A CA that did not sign the service's certificate is refused.
    let other = Pki::generate();
    let mut wrong_ca = pki.client_env(grpc, false);
    wrong_ca[1].1 = other.path("ca.pem");
    let refused = identityctl(wrong_ca, &["tenants", "list"]).await;
    assert!(!refused.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_a_caller_without_a_certificate() {
    let pki = Pki::generate();
    let database = fresh_database().await;
    let (grpc, _processes) = serve_and_provision(&pki, true, &database).await;

    // TLS with the right CA but no client certificate: refused.
    let without_cert = health_via(pki.endpoint(grpc, false), "").await;
    assert!(
        without_cert.is_err(),
        "served without a client certificate: {without_cert:?}"
    );
    let with_cert = health_via(pki.endpoint(grpc, true), "").await;
    assert!(
        matches!(with_cert, Ok(ServingStatus::Serving)),
        "{with_cert:?}"
    );

    let listed = identityctl(
        pki.client_env(grpc, true),
        &["tenants", "list", "--output", "json"],
    )
    .await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let refused = identityctl(pki.client_env(grpc, false), &["tenants", "list"]).await;
    assert!(
        !refused.status.success(),
        "identityctl without a certificate was served"
    );
}
