//! The binaries as separate processes, for tests that need a process
//! boundary: SIGTERM drains, kill -9, restarts and several replicas. The
//! binaries are the ones cargo builds for this workspace, in the target
//! directory this test runs from (or `IDL_BIN_DIR`); they are built once per
//! test process (identityctl and examples/deprovision-watcher too), since a
//! package's tests only get its own binaries.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a process may take to become ready (a cold start on a busy
/// two-core machine, migrations included).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The directory holding `identity-service` and `scim-adapter`, built on
/// first use: `IDL_BIN_DIR`, else the profile directory of this test
/// executable (`target/<profile>/deps/<test>` → `target/<profile>`).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("IDL_BIN_DIR") {
            return PathBuf::from(dir);
        }
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test runs from target/<profile>/deps")
            .to_path_buf();
        build_binaries(&profile_dir);
        profile_dir
    })
}

/// `cargo build` of the two server binaries, identityctl and the example
/// event consumer into the target directory that holds `profile_dir`, with
/// its profile; cargo does nothing when they are up to date.
fn build_binaries(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--quiet", "--package", "identity-service"])
        .args(["--bin", "identity-service", "--package", "scim-adapter"])
        .args(["--bin", "scim-adapter", "--package", "identityctl"])
        .args(["--bin", "identityctl", "--package", "deprovision-watcher"])
        .args(["--bin", "deprovision-watcher"])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build");
    assert!(
        status.success(),
        "cargo build of the workspace binaries failed"
    );
}

/// A gRPC channel to the service process at `addr`, connecting on first
/// use (the process may not listen yet, or be restarting).
pub fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("gRPC url")
        .connect_lazy()
}

/// A loopback address no one listens on now (the port is free when this
/// returns; a restarted process binds it again).
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

/// A started binary; killed when dropped.
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `bin_dir()/name` with `env` (and nothing inherited but PATH
    /// and RUST_LOG), its output in a log file of its own.
    pub fn spawn(name: &'static str, env: &[(&str, String)]) -> Process {
        let log = std::env::temp_dir().join(format!(
            "idl-{}-{name}-{}.log",
            identity_test_db::run_id(),
            uuid::Uuid::new_v4().simple()
        ));
        let out = std::fs::File::create(&log).expect("create the process log");
        let err = out.try_clone().expect("clone the log handle");
        let mut command = Command::new(bin_dir().join(name));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Process { name, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process has not been reaped")
    }

    /// Sends a signal by name (TERM, INT, KILL…) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    /// kill -9, and waits until it is gone.
    pub async fn kill_9(&mut self) {
        self.signal("KILL");
        self.exit_within(Duration::from_secs(10)).await;
    }

    /// Waits for the process to exit, at most `limit`, and returns how it
    /// exited; panics (with its log) when it is still running.
    pub async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("wait for the process"),
            Err(_) => panic!(
                "{} still runs after {limit:?}; its log:\n{}",
                self.name,
                self.log()
            ),
        }
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it has printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with its log unless `ready` returns true before the timeout,
    /// or at once when the process exits.
    async fn wait_until<F, R>(&mut self, mut ready: F)
    where
        F: FnMut() -> R,
        R: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if !self.running() {
                panic!(
                    "{} exited while starting; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            if ready().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} not ready after {START_TIMEOUT:?}; its log:\n{}",
            self.name,
            self.log()
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The health status the service at `grpc_url` reports for `service` ("" for
/// the whole server), or the error that kept it from answering.
pub async fn health(grpc_url: &str, service: &str) -> Result<ServingStatus, tonic::Status> {
    health_via(
        Endpoint::from_shared(grpc_url.to_owned()).expect("gRPC url"),
        service,
    )
    .await
}

/// [`health`] through an endpoint of the caller's making (e.g. with TLS).
pub async fn health_via(endpoint: Endpoint, service: &str) -> Result<ServingStatus, tonic::Status> {
    let channel = endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(reply.into_inner().status())
}

/// An `identity-service` process serving `database_url` at `addr`, with
/// the harness's operator token and extra `env` (which wins).
pub async fn start_service(
    database_url: &str,
    addr: SocketAddr,
    env: &[(&str, String)],
) -> Process {
    let probe = Endpoint::from_shared(format!("http://{addr}")).expect("gRPC url");
    start_service_probed(database_url, addr, env, probe).await
}

/// [`start_service`], ready once its health answers SERVING through `probe`
/// (e.g. an endpoint with TLS for a service with a certificate).
pub async fn start_service_probed(
    database_url: &str,
    addr: SocketAddr,
    env: &[(&str, String)],
    probe: Endpoint,
) -> Process {
    let mut all = vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("IDENTITY_GRPC_ADDR", addr.to_string()),
        ("IDENTITY_ADMIN_TOKEN", crate::ADMIN_TOKEN.to_owned()),
        ("IDENTITY_DB_POOL_SIZE", "4".to_owned()),
        // Several services run at once: none takes the default admin port.
        ("IDENTITY_ADMIN_ADDR", "off".to_owned()),
    ];
    all.extend(env.iter().cloned());
    let mut process = Process::spawn("identity-service", &all);
    process
        .wait_until(|| {
            let probe = probe.clone();
            async move { matches!(health_via(probe, "").await, Ok(ServingStatus::Serving)) }
        })
        .await;
    process
}

/// A `scim-adapter` process at `addr` calling the service at `grpc_url`,
/// with extra `env`; returned once it answers `/healthz` (its readiness
/// follows the service's).
pub async fn start_adapter(grpc_url: &str, addr: SocketAddr, env: &[(&str, String)]) -> Process {
    let mut all = vec![
        ("SCIM_LISTEN_ADDR", addr.to_string()),
        ("IDENTITY_GRPC_URL", grpc_url.to_owned()),
        ("SCIM_PUBLIC_URL", format!("http://{addr}")),
    ];
    all.extend(env.iter().cloned());
    let mut process = Process::spawn("scim-adapter", &all);
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/healthz");
    process
        .wait_until(|| {
            let request = http.get(&url).timeout(Duration::from_secs(2)).send();
            async move { request.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
    process
}
