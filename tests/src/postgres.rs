//! A private PostgreSQL server of one test, from the machine's server
//! binaries (as scripts/dev-postgres finds them), for faults the shared
//! server must not see: stopping and restarting the database itself. As
//! root, initdb and postgres run as the `postgres` user (they refuse root).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// A data directory of its own, on a loopback port of its own; stopped
/// and deleted when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    owner: Option<String>,
}

impl PrivatePostgres {
    /// Runs initdb (trust authentication, user postgres) and picks a port;
    /// the server is not started yet.
    pub async fn init() -> PrivatePostgres {
        let bin = server_bin_dir();
        let owner = running_as_root().then(|| "postgres".to_owned());
        let dir = std::env::temp_dir().join(format!(
            "idl-pg-{}-{}",
            identity_test_db::run_id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&dir).expect("create the data directory's parent");
        let server = PrivatePostgres {
            bin,
            dir,
            port: crate::process::free_addr().port(),
            owner,
        };
        if let Some(owner) = &server.owner {
            let chown = std::process::Command::new("chown")
                .arg(owner)
                .arg(&server.dir)
                .status()
                .expect("run chown");
            assert!(chown.success(), "chown {owner} {}", server.dir.display());
        }
        let data = server.data_dir();
        server
            .run(
                "initdb",
                &[
                    "--pgdata",
                    &data,
                    "--username=postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            )
            .await;
        server
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "--pgdata",
                &self.data_dir(),
                "--log",
                &log.display().to_string(),
                "--wait",
                "--timeout=60",
                "-o",
                &options,
                "start",
            ],
        )
        .await;
    }

    /// Stops the server the way an operator restarting it would: `fast`
    /// mode ends every session (and rolls their transactions back).
    pub async fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "--pgdata",
                &self.data_dir(),
                "--mode=fast",
                "--wait",
                "stop",
            ],
        )
        .await;
    }

    /// What the server logged so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Runs one of the server binaries as the data directory's owner;
    /// panics with its output when it fails.
    async fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program, args)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        match &self.owner {
            Some(owner) => {
                let mut command = Command::new("runuser");
                command.args(["-u", owner, "--"]).arg(program).args(args);
                command
            }
            None => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        if Path::new(&data).join("postmaster.pid").exists() {
            let mut stop = std::process::Command::new(match &self.owner {
                Some(_) => PathBuf::from("runuser"),
                None => self.bin.join("pg_ctl"),
            });
            if let Some(owner) = &self.owner {
                stop.args(["-u", owner, "--"]).arg(self.bin.join("pg_ctl"));
            }
            let _ = stop
                .args(["--pgdata", &data, "--mode=immediate", "--wait", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory of initdb and pg_ctl: on PATH, else the newest of
/// /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
fn server_bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    if let Some(dir) = on_path {
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin; install a PostgreSQL server")
    })
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}
