//! Load benchmark: the release binaries as separate processes, seeded
//! through gRPC, driven by closed-loop clients at growing client counts,
//! next to pgbench's ceiling for the equivalent single statement. Run with
//! `scripts/bench load`; see the usage text below for its flags.

mod ceiling;
mod drive;
mod procs;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use drive::Scenario;

const USAGE: &str = "usage: load [--users N] [--duration S] [--clients 1,4,16,64] [--out DIR]
  env BENCH_BIN_DIR: directory of the release identity-service and scim-adapter
  env TEST_DATABASE_URL: an admin URL of the Postgres server to create databases on
  env BENCH_RUN_ID (optional): prefix of this run's databases, [a-z0-9_]
  env BENCH_CALLER_DIR (optional): the directory a relative --out is under";

/// What one run measures, from the command line.
pub struct Options {
    pub users: usize,
    pub duration: Duration,
    pub clients: Vec<usize>,
    pub out: PathBuf,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        users: 100_000,
        duration: Duration::from_secs(10),
        clients: vec![1, 4, 16, 64],
        out: PathBuf::from(".local/bench/load"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            // cargo bench appends it to every harness-less bench's arguments.
            "--bench" => {}
            "--users" => {
                options.users = value("--users")?
                    .parse()
                    .map_err(|e| format!("--users: {e}"))?;
            }
            "--million" => options.users = 1_000_000,
            "--duration" => {
                let text = value("--duration")?;
                options.duration = identity_proto::parse_duration(&text)?;
            }
            "--clients" => {
                options.clients = value("--clients")?
                    .split(',')
                    .map(|c| c.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--clients: {e}"))?;
                if options.clients.contains(&0) {
                    return Err("--clients: counts must be at least 1".into());
                }
            }
            // Relative to where scripts/bench was called, not to this package.
            "--out" => {
                let out = PathBuf::from(value("--out")?);
                options.out = match std::env::var_os("BENCH_CALLER_DIR") {
                    Some(caller) if out.is_relative() => PathBuf::from(caller).join(out),
                    _ => out,
                };
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if options.users == 0 {
        return Err("--users must be at least 1".into());
    }
    Ok(options)
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
    let stack = procs::Stack::start(&bin_dir, &admin_url, &run_id, &options.out).await?;
    let result = measure(&options, &stack, &admin_url, &run_id).await;
    stack.stop().await;
    let report = result?;
    report::write(&options, &report)?;
    println!(
        "{}",
        std::fs::read_to_string(options.out.join("bench-report.md")).unwrap_or_default()
    );
    Ok(())
}

async fn measure(
    options: &Options,
    stack: &procs::Stack,
    admin_url: &str,
    run_id: &str,
) -> Result<report::Report, String> {
    let mut target = drive::Target::connect(stack).await?;
    eprintln!("seeding {} users through gRPC CreateUser", options.users);
    let seeded = target.seed(options.users).await?;
    eprintln!(
        "seeded in {:.1} s ({:.0} users/s)",
        seeded.as_secs_f64(),
        options.users as f64 / seeded.as_secs_f64()
    );

    let target = std::sync::Arc::new(target);
    let mut scenarios = Vec::new();
    for scenario in Scenario::ALL {
        let mut rows = Vec::new();
        for &clients in &options.clients {
            let before = stack.sample();
            stack.reset_peaks();
            let run = drive::run(&target, scenario, clients, options.duration).await;
            let after = stack.sample();
            eprintln!(
                "{:<28} c={clients:<3} {:>9.1} req/s  errors {}",
                scenario.title(),
                run.throughput(),
                run.error_count()
            );
            rows.push(report::Row::new(run, &before, &after));
        }
        scenarios.push((scenario, rows));
    }

    eprintln!("measuring the database ceiling with pgbench");
    let ceiling = ceiling::measure(
        admin_url,
        run_id,
        options.users,
        &options.clients,
        options.duration,
        &options.out,
    )
    .await?;
    Ok(report::Report {
        seed_seconds: seeded.as_secs_f64(),
        processes: stack.names(),
        scenarios,
        ceiling,
    })
}
