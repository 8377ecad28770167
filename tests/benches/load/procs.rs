//! The stack under load: its own database on the given server, and the two
//! release binaries started as separate processes, as scripts/quickstart
//! starts them, so their RSS and CPU time are theirs alone.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use identity_lifecycle_tests::ADMIN_TOKEN;

/// The same URL naming another database on the same server.
pub fn database_url(admin_url: &str, database: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    format!("{server}/{database}{query}")
}

/// Runs one statement on the admin database (CREATE/DROP DATABASE).
pub async fn admin(admin_url: &str, sql: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connect to the database server: {e}"))?;
    tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .map_err(|e| format!("{sql}: {e}"))
}

/// A free loopback port, released for the child to bind.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("find a free port: {e}"))
}

/// CPU seconds, resident memory and its peak of one process at one moment.
#[derive(Clone, Copy, Default)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

pub struct Process {
    pub name: &'static str,
    child: Child,
}

impl Process {
    pub fn spawn(name: &'static str, command: &mut Command, log: &Path) -> Result<Process, String> {
        let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {name}: {e}"))?;
        Ok(Process { name, child })
    }

    pub fn usage(&self) -> Usage {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or_default()
        };
        Usage {
            cpu_seconds: cpu_seconds(&pid.to_string()),
            rss_kib: kib("VmRSS:"),
            peak_rss_kib: kib("VmHWM:"),
        }
    }

    /// Restarts VmHWM from the current RSS, so each scenario's peak is its own.
    pub fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kernel's clock ticks per second, as `getconf CLK_TCK` reports them.
/// CPU seconds (user and system) process `pid` has used, 0 once it is gone.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name, which may hold spaces:
    // utime and stime are the 14th and 15th fields of the whole line.
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or_default();
    ticks as f64 / clock_ticks()
}

/// CPU seconds of every PostgreSQL process on this machine: the server the
/// stack and pgbench use, so a run's share of it is its difference.
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .map(|pid| cpu_seconds(&pid))
        .sum()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The CPU-only entries of [`Stack::sample`].
pub const POSTGRES: &str = "postgres";
pub const DRIVER: &str = "load driver";

pub struct Stack {
    pub grpc_url: String,
    pub scim_base: String,
    processes: Vec<Process>,
    admin_url: String,
    database: String,
}

impl Stack {
    pub async fn start(
        bin_dir: &Path,
        admin_url: &str,
        run_id: &str,
        out: &Path,
    ) -> Result<Stack, String> {
        let database = format!("{run_id}_stack");
        admin(admin_url, &format!("CREATE DATABASE \"{database}\"")).await?;
        let mut stack = Stack {
            grpc_url: String::new(),
            scim_base: String::new(),
            processes: Vec::new(),
            admin_url: admin_url.to_string(),
            database: database.clone(),
        };
        let grpc_port = free_port()?;
        let scim_port = free_port()?;
        let metrics_port = free_port()?;
        stack.grpc_url = format!("http://127.0.0.1:{grpc_port}");
        let scim_url = format!("http://127.0.0.1:{scim_port}");
        stack.scim_base = format!("{scim_url}/scim/v2");

        stack.processes.push(Process::spawn(
            "identity-service",
            Command::new(bin_dir.join("identity-service"))
                .env("DATABASE_URL", database_url(admin_url, &database))
                .env("IDENTITY_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
                .env("IDENTITY_ADMIN_ADDR", format!("127.0.0.1:{metrics_port}"))
                .env("IDENTITY_ADMIN_TOKEN", ADMIN_TOKEN),
            &out.join("identity-service.log"),
        )?);
        wait_for(&format!("127.0.0.1:{grpc_port}"), "identity-service").await?;
        stack.processes.push(Process::spawn(
            "scim-adapter",
            Command::new(bin_dir.join("scim-adapter"))
                .env("SCIM_LISTEN_ADDR", format!("127.0.0.1:{scim_port}"))
                .env("IDENTITY_GRPC_URL", &stack.grpc_url)
                .env("SCIM_PUBLIC_URL", &scim_url),
            &out.join("scim-adapter.log"),
        )?);
        wait_for(&format!("127.0.0.1:{scim_port}"), "scim-adapter").await?;
        Ok(stack)
    }

    /// The servers, then PostgreSQL's processes and this load driver, whose
    /// CPU time says where a request's cost goes (they have no RSS here).
    pub fn names(&self) -> Vec<&'static str> {
        let servers = self.processes.iter().map(|p| p.name);
        servers.chain([POSTGRES, DRIVER]).collect()
    }

    /// The two servers, whose memory the soak follows.
    pub fn server_names(&self) -> Vec<&'static str> {
        self.processes.iter().map(|p| p.name).collect()
    }

    pub fn server_rss_kib(&self) -> Vec<u64> {
        self.processes.iter().map(|p| p.usage().rss_kib).collect()
    }

    pub fn sample(&self) -> Vec<Usage> {
        let servers = self.processes.iter().map(Process::usage);
        let cpu_only = |cpu_seconds| Usage {
            cpu_seconds,
            ..Usage::default()
        };
        servers
            .chain([
                cpu_only(postgres_cpu_seconds()),
                cpu_only(cpu_seconds("self")),
            ])
            .collect()
    }

    pub fn reset_peaks(&self) {
        self.processes.iter().for_each(Process::reset_peak);
    }

    /// Stops both processes and drops the stack's database.
    pub async fn stop(mut self) {
        self.processes.clear();
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database);
        if let Err(e) = admin(&self.admin_url, &drop).await {
            eprintln!("warning: {e}");
        }
    }
}

/// Waits until `addr` accepts connections (the service migrates first).
pub async fn wait_for(addr: &str, name: &str) -> Result<(), String> {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{name} did not listen on {addr} within 60 s (see its log)"
    ))
}
