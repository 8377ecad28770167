//! Load benchmark: the release binaries as separate processes, seeded
//! through gRPC and SCIM PATCH, driven by closed-loop clients at growing
//! client counts, next to pgbench's ceiling for the equivalent single
//! statements and to the scim2-server peer, with an optional RSS soak. Run
//! with `scripts/bench load`; see the usage text below for its flags.

mod ceiling;
mod chart;
mod drive;
mod events;
mod peer;
mod procs;
mod report;
mod seed;
mod soak;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drive::{Family, Scenario, Target};
use soak::SOAK_CLIENTS;

const USAGE: &str = "usage: load [--users N] [--million] [--duration S] [--clients 1,4,16,64]
            [--scenarios NAME,...] [--soak SECONDS] [--peer-users N] [--out DIR]
            [--baseline FILE|none]
  --scenarios: scenario or family names (default: all), e.g. paging or post,filter;
               `events` is the event-delivery measurement
  --baseline: an earlier bench-report.json whose POST /Users rate prices the events outbox
              (default: docs/bench/2-core/bench-report.json)
  --soak: seconds of mixed load at 16 clients sampling RSS every 10 s (default 0: none)
  --peer-users: users seeded into the peer (default: --users, at most 100000)
  env BENCH_BIN_DIR: directory of the release identity-service and scim-adapter
  env TEST_DATABASE_URL: an admin URL of the Postgres server to create databases on
  env BENCH_PEER (optional): the scim2-server executable; without it the peer is skipped
  env BENCH_RUN_ID (optional): prefix of this run's databases, [a-z0-9_]
  env BENCH_COMMIT (optional): the commit measured, named in the report
  env BENCH_CALLER_DIR (optional): the directory a relative --out is under";

/// The peer's tenant is capped: seeding it goes at ~1,000 users/s.
const PEER_USERS_MAX: usize = 100_000;

/// What one run measures, from the command line.
pub struct Options {
    pub users: usize,
    pub duration: Duration,
    pub clients: Vec<usize>,
    pub scenarios: Vec<Scenario>,
    /// Whether event delivery is measured.
    pub events: bool,
    pub soak: Duration,
    pub peer_users: Option<usize>,
    pub out: PathBuf,
    pub baseline: Option<PathBuf>,
}

/// A path given relative to where scripts/bench was called, not to this package.
fn from_caller(path: PathBuf) -> PathBuf {
    match std::env::var_os("BENCH_CALLER_DIR") {
        Some(caller) if path.is_relative() => PathBuf::from(caller).join(path),
        _ => path,
    }
}

fn number(name: &str, text: String) -> Result<usize, String> {
    text.parse().map_err(|e| format!("{name}: {e}"))
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        users: 100_000,
        duration: Duration::from_secs(10),
        clients: vec![1, 4, 16, 64],
        scenarios: Scenario::ALL.to_vec(),
        events: true,
        soak: Duration::ZERO,
        peer_users: None,
        out: PathBuf::from(".local/bench/load"),
        baseline: Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../docs/bench/2-core/bench-report.json"),
        ),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            // cargo bench appends it to every harness-less bench's arguments.
            "--bench" => {}
            "--users" => options.users = number("--users", value("--users")?)?,
            "--million" => options.users = 1_000_000,
            "--duration" => {
                options.duration = identity_proto::parse_duration(&value("--duration")?)?;
            }
            "--soak" => {
                options.soak = Duration::from_secs(number("--soak", value("--soak")?)? as u64);
            }
            "--peer-users" => {
                options.peer_users = Some(number("--peer-users", value("--peer-users")?)?);
            }
            "--scenarios" => {
                (options.scenarios, options.events) =
                    drive::parse_scenarios(&value("--scenarios")?)?;
            }
            "--clients" => {
                options.clients = value("--clients")?
                    .split(',')
                    .map(|c| c.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--clients: {e}"))?;
                if options.clients.is_empty() || options.clients.contains(&0) {
                    return Err("--clients: counts must be at least 1".into());
                }
            }
            "--out" => options.out = from_caller(PathBuf::from(value("--out")?)),
            "--baseline" => {
                let baseline = value("--baseline")?;
                options.baseline =
                    (baseline != "none").then(|| from_caller(PathBuf::from(baseline)));
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if options.users <= drive::PAGE {
        return Err(format!(
            "--users must be more than {} (one page)",
            drive::PAGE
        ));
    }
    if options.duration.is_zero() {
        return Err("--duration must be more than 0".into());
    }
    Ok(options)
}

impl Options {
    fn peer_users(&self) -> usize {
        self.peer_users
            .unwrap_or(self.users.min(PEER_USERS_MAX))
            .max(1)
    }

    fn runs(&self, family: Family) -> bool {
        self.scenarios.iter().any(|s| s.family() == family)
    }

    fn max_clients(&self) -> usize {
        let most = self.clients.iter().copied().max().unwrap_or(1);
        if self.soak.is_zero() {
            most
        } else {
            most.max(SOAK_CLIENTS)
        }
    }
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set\n{USAGE}"))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let options = parse_options()?;
    let bin_dir = PathBuf::from(env("BENCH_BIN_DIR")?);
    let admin_url = env("TEST_DATABASE_URL")?;
    std::fs::create_dir_all(&options.out).map_err(|e| format!("{}: {e}", options.out.display()))?;

    // Names this run's databases; scripts/bench sets it to drop leftovers.
    let run_id = std::env::var("BENCH_RUN_ID").unwrap_or_else(|_| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        format!("idl_bench_{}", now.map(|d| d.as_secs()).unwrap_or_default())
    });
    if !run_id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("BENCH_RUN_ID {run_id:?}: only a-z, 0-9 and _"));
    }
    let started = std::time::Instant::now();
    let stack = procs::Stack::start(&bin_dir, &admin_url, &run_id, &options.out).await?;
    let result = measure(&options, &stack).await;
    stack.stop().await;
    let mut report = result?;

    eprintln!("measuring the database ceiling with pgbench");
    let mut statements: Vec<_> = options.scenarios.iter().map(|s| s.statement()).collect();
    statements.sort();
    statements.dedup();
    report.ceiling = ceiling::measure(
        &admin_url,
        &run_id,
        options.users,
        &statements,
        &options.clients,
        options.duration,
        &options.out,
    )
    .await?;
    report.wall_seconds = started.elapsed().as_secs_f64();
    report::write(&options, &report)?;
    chart::write(&options, &report)?;
    println!(
        "{}",
        std::fs::read_to_string(options.out.join("bench-report.md")).unwrap_or_default()
    );
    eprintln!(
        "done in {:.0} s; results in {}",
        report.wall_seconds,
        options.out.display()
    );
    Ok(())
}

/// Runs every chosen scenario at every client count, then the peer and the soak.
async fn measure(options: &Options, stack: &procs::Stack) -> Result<report::Report, String> {
    let mut target = Target::connect(stack).await?;
    let groups = options.runs(Family::Members);
    let mut seeding = target
        .seed(
            &stack.grpc_url,
            options.users,
            options.max_clients(),
            groups,
        )
        .await?;
    let walk_seconds = if options.runs(Family::Paging) {
        let walk = target.find_deep_page(options.users).await?;
        seeding.deep_index = target.deep_index;
        Some(walk)
    } else {
        None
    };
    let target = Arc::new(target);
    let mut report = report::Report::new(seeding, walk_seconds);

    for &scenario in &options.scenarios {
        let mut rows = Vec::new();
        for &clients in &options.clients {
            stack.reset_peaks();
            let before = stack.sample();
            let run = drive::run(&target, &[scenario], clients, options.duration).await;
            let after = stack.sample();
            progress(scenario.title(), &run);
            rows.push(report::Row::new(run, &stack.names(), &before, &after));
        }
        report.scenarios.push((scenario, rows));
    }

    if options.events {
        eprintln!(
            "measuring event delivery: {} watchers, {} deactivations",
            events::WATCHERS,
            events::DEACTIVATIONS
        );
        let delivery = events::measure(&target, &stack.grpc_url).await;
        match &delivery {
            Ok(d) => eprintln!(
                "event delivery p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  missing {}",
                d.ms(0.5),
                d.ms(0.99),
                d.max_ms(),
                d.missing
            ),
            Err(e) => eprintln!("event delivery not measured: {e}"),
        }
        report.events = Some(delivery);
    }
    let prices_outbox = options.scenarios.contains(&Scenario::ScimPost)
        && options.clients.contains(&report::TARGET_CLIENTS);
    if let Some(path) = options.baseline.as_ref().filter(|_| prices_outbox) {
        match report::Baseline::read(path, report::TARGET_CLIENTS) {
            Ok(baseline) => report.baseline = Some(baseline),
            Err(e) => eprintln!("outbox cost not priced: {e}"),
        }
    }

    if !options.soak.is_zero() {
        report.soak = Some(soak::run(&target, stack, options.soak).await);
    }

    let compared: Vec<Scenario> = options
        .scenarios
        .iter()
        .copied()
        .filter(|s| s.compared_with_peer())
        .collect();
    match std::env::var_os("BENCH_PEER") {
        _ if compared.is_empty() => {}
        None => report.peer_note = Some("BENCH_PEER is not set (scripts/bench sets it)".into()),
        Some(executable) => {
            match peer::start(
                &PathBuf::from(executable),
                options.peer_users(),
                &options.out,
            )
            .await
            {
                Ok(peer) => report.peer = Some(measure_peer(options, peer, &compared).await),
                Err(e) => {
                    eprintln!("peer not measured: {e}");
                    report.peer_note = Some(e);
                }
            }
        }
    }
    Ok(report)
}

async fn measure_peer(
    options: &Options,
    peer: peer::Peer,
    compared: &[Scenario],
) -> report::PeerRuns {
    let names = [peer.process.name];
    let target = Arc::new(peer.target);
    let mut runs = report::PeerRuns {
        users: peer.users,
        seed_seconds: peer.seed_seconds,
        scenarios: Vec::new(),
    };
    for &scenario in compared {
        let mut rows = Vec::new();
        for &clients in &options.clients {
            peer.process.reset_peak();
            let before = [peer.process.usage()];
            let run = drive::run(&target, &[scenario], clients, options.duration).await;
            let after = [peer.process.usage()];
            progress(&format!("peer {}", scenario.title()), &run);
            rows.push(report::Row::new(run, &names, &before, &after));
        }
        runs.scenarios.push((scenario, rows));
    }
    runs
}

fn progress(title: &str, run: &drive::Run) {
    eprintln!(
        "{title:<62} c={:<3} {:>9.1} req/s  p99 {:>8.2} ms  errors {}",
        run.clients,
        run.throughput(),
        run.ms(0.99),
        run.error_count()
    );
}
