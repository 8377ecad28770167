//! bench-report.md and bench-report.json: the targets at 16
//! clients first, then one table per scenario with each row next to the
//! pgbench ceiling of its statement and to the peer at the same client
//! count, the side-by-side views the targets compare, the soak, and the
//! history of measured changes kept in tests/benches/load/history.md.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::Options;
use crate::ceiling::Ceiling;
use crate::drive::{Family, Run, Scenario};
use crate::procs::Usage;
use crate::seed::Seeding;
use crate::soak::{SOAK_CLIENTS, Soak};

/// The history of measured changes, copied into every report.
const HISTORY: &str = include_str!("history.md");
/// The client count the targets are stated at.
pub const TARGET_CLIENTS: usize = SOAK_CLIENTS;
const RSS_LIMIT_MB: f64 = 128.0;
const DELIVERY_P99_MS: f64 = 100.0;
/// The share of POST /Users throughput the events outbox may cost.
const OUTBOX_LOSS_LIMIT: f64 = 0.15;

/// CPU seconds one process spent during a run, and its peak RSS in it.
pub struct ProcessUsage {
    pub name: &'static str,
    pub cpu_seconds: f64,
    pub peak_rss_kib: u64,
}

/// One scenario at one client count, with the usage of each process.
pub struct Row {
    pub run: Run,
    pub usage: Vec<ProcessUsage>,
}

impl Row {
    pub fn new(run: Run, names: &[&'static str], before: &[Usage], after: &[Usage]) -> Row {
        let usage = names
            .iter()
            .zip(before.iter().zip(after))
            .map(|(&name, (b, a))| ProcessUsage {
                name,
                cpu_seconds: a.cpu_seconds - b.cpu_seconds,
                peak_rss_kib: a.peak_rss_kib,
            })
            .collect();
        Row { run, usage }
    }

    fn errors(&self) -> String {
        if self.run.errors.is_empty() {
            return "0".to_string();
        }
        self.run
            .errors
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub struct PeerRuns {
    pub users: usize,
    pub seed_seconds: f64,
    pub scenarios: Vec<(Scenario, Vec<Row>)>,
}

pub struct Report {
    pub seeding: Seeding,
    pub walk_seconds: Option<f64>,
    pub scenarios: Vec<(Scenario, Vec<Row>)>,
    pub peer: Option<PeerRuns>,
    /// Why the peer was not measured.
    pub peer_note: Option<String>,
    pub soak: Option<Soak>,
    /// Event delivery to watchers, or why it was not measured.
    pub events: Option<Result<crate::events::Delivery, String>>,
    /// SCIM POST /Users at the target client count in an earlier report,
    /// to price the events outbox against.
    pub baseline: Option<Baseline>,
    pub ceiling: Ceiling,
    pub wall_seconds: f64,
}

/// A figure of an earlier report.
pub struct Baseline {
    pub file: String,
    pub commit: String,
    pub post_per_second: f64,
}

impl Baseline {
    /// SCIM POST /Users at `clients` in the JSON report at `path`.
    pub fn read(path: &std::path::Path, clients: usize) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let report: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let post_per_second = report["scenarios"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["scenario"] == Scenario::ScimPost.name())
            .flat_map(|s| s["runs"].as_array().into_iter().flatten())
            .find(|r| r["clients"] == clients)
            .and_then(|r| r["requests_per_second"].as_f64())
            .ok_or(format!(
                "{}: no POST /Users run at {clients} clients",
                path.display()
            ))?;
        // Named from the repository root when it is under it.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = match (path.canonicalize(), root.canonicalize()) {
            (Ok(path), Ok(root)) => path
                .strip_prefix(&root)
                .map_or(path.clone(), |p| p.to_path_buf())
                .display()
                .to_string(),
            _ => path.display().to_string(),
        };
        Ok(Baseline {
            file,
            commit: report["commit"].as_str().unwrap_or("unknown").to_string(),
            post_per_second,
        })
    }
}

impl Report {
    pub fn new(seeding: Seeding, walk_seconds: Option<f64>) -> Report {
        Report {
            seeding,
            walk_seconds,
            scenarios: Vec::new(),
            peer: None,
            peer_note: None,
            soak: None,
            events: None,
            baseline: None,
            ceiling: Ceiling::default(),
            wall_seconds: 0.0,
        }
    }

    pub fn rows(&self, scenario: Scenario) -> Option<&[Row]> {
        self.scenarios
            .iter()
            .find(|(s, _)| *s == scenario)
            .map(|(_, rows)| rows.as_slice())
    }

    pub fn row(&self, scenario: Scenario, clients: usize) -> Option<&Row> {
        self.rows(scenario)?
            .iter()
            .find(|r| r.run.clients == clients)
    }

    pub fn peer_row(&self, scenario: Scenario, clients: usize) -> Option<&Row> {
        self.peer
            .as_ref()?
            .scenarios
            .iter()
            .find(|(s, _)| *s == scenario)?
            .1
            .iter()
            .find(|r| r.run.clients == clients)
    }

    pub fn ceiling_ratio(&self, scenario: Scenario, row: &Row) -> Option<f64> {
        self.ceiling
            .at(scenario.statement(), row.run.clients)
            .filter(|c| c.per_second > 0.0)
            .map(|c| row.run.throughput() / c.per_second)
    }

    pub fn peer_ratio(&self, scenario: Scenario, row: &Row) -> Option<f64> {
        self.peer_row(scenario, row.run.clients)
            .filter(|p| p.run.throughput() > 0.0)
            .map(|p| row.run.throughput() / p.run.throughput())
    }

    /// The p50 latency of `a` over that of `b` at the same client count.
    fn p50_ratio(&self, a: Scenario, b: Scenario, clients: usize) -> Option<f64> {
        let a = self.row(a, clients)?.run.ms(0.5);
        let b = self.row(b, clients)?.run.ms(0.5);
        (b > 0.0).then(|| a / b)
    }

    /// The throughput of `a` over that of `b` at the same client count.
    fn throughput_ratio(&self, a: Scenario, b: Scenario, clients: usize) -> Option<f64> {
        let a = self.row(a, clients)?.run.throughput();
        let b = self.row(b, clients)?.run.throughput();
        (b > 0.0).then(|| a / b)
    }

    /// The highest peak RSS of each process over every run and the soak.
    fn peak_rss(&self) -> Vec<(&'static str, u64)> {
        let mut peaks: Vec<(&'static str, u64)> = Vec::new();
        let soak = self.soak.iter().flat_map(|s| {
            s.growth()
                .into_iter()
                .map(|g| (g.name, g.peak_kib))
                .collect::<Vec<_>>()
        });
        let runs = self
            .scenarios
            .iter()
            .flat_map(|(_, rows)| rows)
            .flat_map(|row| row.usage.iter().map(|u| (u.name, u.peak_rss_kib)))
            .filter(|&(name, _)| name != crate::procs::POSTGRES && name != crate::procs::DRIVER);
        for (name, kib) in runs.chain(soak) {
            match peaks.iter_mut().find(|(n, _)| *n == name) {
                Some(peak) => peak.1 = peak.1.max(kib),
                None => peaks.push((name, kib)),
            }
        }
        peaks
    }
}

pub fn write(options: &Options, report: &Report) -> Result<(), String> {
    let md = markdown(options, report);
    let json =
        serde_json::to_string_pretty(&document(options, report)).map_err(|e| e.to_string())?;
    for (name, text) in [("bench-report.md", md), ("bench-report.json", json)] {
        let path = options.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn ratio(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.3}"))
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One line of the targets table.
struct Target {
    what: String,
    measured: String,
    met: String,
}

fn verdict(ok: Option<bool>) -> String {
    match ok {
        Some(true) => "yes".to_string(),
        Some(false) => "**no**".to_string(),
        None => "not measured".to_string(),
    }
}

fn targets(options: &Options, report: &Report) -> Vec<Target> {
    let c = TARGET_CLIENTS;
    let mut targets = Vec::new();
    let mut ceiling_target = |scenario: Scenario, bound: f64, what: &str| {
        let row = report.row(scenario, c);
        let value = row.and_then(|r| report.ceiling_ratio(scenario, r));
        targets.push(Target {
            what: format!(
                "{what} ≥ {bound}× the {} ceiling",
                scenario.statement().title()
            ),
            measured: row.map_or("-".to_string(), |r| {
                format!("{:.0} req/s, {}× ceiling", r.run.throughput(), ratio(value))
            }),
            met: verdict(value.map(|v| v >= bound)),
        });
    };
    ceiling_target(Scenario::ScimPost, 0.5, "SCIM POST /Users");
    ceiling_target(Scenario::ScimFilter, 0.25, "SCIM GET by filter");
    ceiling_target(Scenario::ScimGet, 0.25, "SCIM GET by id");
    ceiling_target(Scenario::GrpcGet, 0.4, "gRPC GetUser");
    for (scenario, what) in [
        (Scenario::ScimFilter, "SCIM GET by filter"),
        (Scenario::ScimGet, "SCIM GET by id"),
    ] {
        let p99 = report.row(scenario, c).map(|r| r.run.ms(0.99));
        targets.push(Target {
            what: format!("{what} p99 < 10 ms"),
            measured: p99.map_or("-".to_string(), |v| format!("{v:.2} ms")),
            met: verdict(p99.map(|v| v < 10.0)),
        });
    }
    for scenario in [Scenario::ScimPost, Scenario::ScimFilter, Scenario::ScimGet] {
        let value = report
            .row(scenario, c)
            .and_then(|r| report.peer_ratio(scenario, r));
        targets.push(Target {
            what: format!("{} ≥ 10× the peer", scenario.title()),
            measured: value.map_or("-".to_string(), |v| format!("{v:.2}×")),
            met: verdict(value.map(|v| v >= 10.0)),
        });
    }
    let latency = report.p50_ratio(Scenario::MemberBig, Scenario::MemberSmall, c);
    let throughput = report.throughput_ratio(Scenario::MemberSmall, Scenario::MemberBig, c);
    targets.push(Target {
        what: format!(
            "member add/remove on the {}-member group within 1.5× of the 10-member group, no ANALYZE",
            report.seeding.big_group
        ),
        measured: format!(
            "p50 big/small {}×, throughput small/big {}×",
            ratio(latency),
            ratio(throughput)
        ),
        met: verdict(latency.zip(throughput).map(|(l, t)| l <= 1.5 && t <= 1.5)),
    });
    let deep = report.p50_ratio(Scenario::PageDeepCursor, Scenario::PageFirstCursor, c);
    let million = options.users >= 1_000_000;
    targets.push(Target {
        what: "a cursor page deep in a 1,000,000-user tenant within 1.5× of the first page (p50)"
            .to_string(),
        measured: format!(
            "{}× at depth {} of {} users",
            ratio(deep),
            report.seeding.users.saturating_sub(crate::drive::PAGE),
            options.users
        ),
        met: if million {
            verdict(deep.map(|d| d <= 1.5))
        } else {
            format!(
                "{} (not a 1,000,000-user run: `--million`)",
                verdict(deep.map(|d| d <= 1.5))
            )
        },
    });
    let first = [Scenario::PageFirstIndex, Scenario::PageFirstCursor]
        .into_iter()
        .filter_map(|s| {
            report
                .row(s, c)
                .map(|r| format!("{} p50 {:.2} ms", s.name(), r.run.ms(0.5)))
        })
        .collect::<Vec<_>>();
    let keyset = report.ceiling.at(crate::drive::Statement::Keyset, c);
    targets.push(Target {
        what: "the first page does not pay to count every match".to_string(),
        measured: format!(
            "{}; keyset ceiling {} ms",
            if first.is_empty() {
                "-".to_string()
            } else {
                first.join(", ")
            },
            keyset.map_or("-".to_string(), |k| format!("{:.2}", k.latency_ms))
        ),
        met: "no numeric bound: compare with the keyset ceiling".to_string(),
    });
    match &report.events {
        Some(Ok(delivery)) => targets.push(Target {
            what: format!(
                "event delivery p99 < {DELIVERY_P99_MS} ms ({} watchers, {} SCIM deactivations)",
                delivery.watchers, delivery.deactivations
            ),
            measured: format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} missing",
                delivery.ms(0.5),
                delivery.ms(0.99),
                delivery.max_ms(),
                delivery.missing
            ),
            met: verdict(Some(
                delivery.ms(0.99) < DELIVERY_P99_MS && delivery.missing == 0,
            )),
        }),
        Some(Err(e)) => targets.push(Target {
            what: format!("event delivery p99 < {DELIVERY_P99_MS} ms"),
            measured: "-".to_string(),
            met: format!("not measured: {e}"),
        }),
        None => {}
    }
    if let Some(baseline) = &report.baseline {
        let now = report
            .row(Scenario::ScimPost, c)
            .map(|r| r.run.throughput());
        let loss = now.map(|n| 1.0 - n / baseline.post_per_second);
        targets.push(Target {
            what: format!(
                "SCIM POST /Users with the events outbox loses < {:.0} % against {} ({})",
                OUTBOX_LOSS_LIMIT * 100.0,
                baseline.file,
                baseline.commit
            ),
            measured: now.map_or("-".to_string(), |n| {
                format!(
                    "{n:.0} req/s against {:.0}: {:+.1} %",
                    baseline.post_per_second,
                    -loss.unwrap_or_default() * 100.0
                )
            }),
            met: verdict(loss.map(|l| l < OUTBOX_LOSS_LIMIT)),
        });
    }
    for (name, kib) in report.peak_rss() {
        targets.push(Target {
            what: format!("{name} peak RSS under load < {RSS_LIMIT_MB} MB"),
            measured: format!("{:.1} MB", mb(kib)),
            met: verdict(Some(mb(kib) < RSS_LIMIT_MB)),
        });
    }
    match &report.soak {
        Some(soak) => {
            for growth in soak.growth() {
                targets.push(Target {
                    what: format!(
                        "{} RSS flat (< 5 % growth) over a {} s soak",
                        growth.name,
                        soak.run.elapsed.as_secs()
                    ),
                    measured: format!(
                        "{:+.1} % ({:.1} -> {:.1} MB)",
                        growth.percent(),
                        mb(growth.after_warm_up_kib),
                        mb(growth.end_kib)
                    ),
                    met: verdict(Some(growth.percent() < 5.0)),
                });
            }
        }
        None => targets.push(Target {
            what: "RSS flat (< 5 % growth) over a 10-minute soak".to_string(),
            measured: "-".to_string(),
            met: "not measured (`--soak 600`)".to_string(),
        }),
    }
    targets
}

fn setup(options: &Options, report: &Report) -> String {
    let s = &report.seeding;
    let mut text = String::new();
    let commit = std::env::var("BENCH_COMMIT").unwrap_or_else(|_| "unknown".to_string());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let _ = writeln!(
        text,
        "Commit `{commit}`, {cpus} CPUs; the whole run took {:.0} s.\n",
        report.wall_seconds
    );
    let _ = writeln!(
        text,
        "- Tenant: {} users (`seed{{n}}@example.com`) and {} spare users (one per client, for \
         member changes) created through gRPC CreateUser in {:.1} s.",
        s.users, s.spares, s.users_seconds
    );
    if s.groups > 0 {
        let _ = writeln!(
            text,
            "- {} groups through gRPC CreateGroup in {:.1} s; a group of {} members filled through \
             SCIM PATCH `add members`, {} per PATCH as Entra sends them, in {:.1} s; a \
             10-member group the same way. No ANALYZE anywhere: the plans are those of a tenant \
             right after the push.",
            s.groups,
            s.groups_seconds,
            s.big_group,
            crate::seed::MEMBERS_PER_PATCH,
            s.big_group_seconds
        );
    } else {
        let _ = writeln!(text, "- No groups: no member scenario was chosen.");
    }
    if let Some(walk) = report.walk_seconds {
        let _ = writeln!(
            text,
            "- The deep page starts at startIndex {} (the cursor found by walking pages, {walk:.1} s).",
            s.deep_index
        );
    }
    let _ = writeln!(
        text,
        "- {} s per point at {:?} closed-loop clients; release binaries as separate processes, \
         logging at their default level (one line per request), as scripts/quickstart runs them. \
         Latencies are HDR histograms of every successful answer.",
        options.duration.as_secs_f64(),
        options.clients
    );
    let _ = writeln!(
        text,
        "- Ceiling: pgbench `-M prepared` in the same run, each statement its own transaction, on \
         tables built by our migrations and seeded alike (with ANALYZE). Paired scripts \
         (deactivate/reactivate, add/remove) count each statement, as our side counts each PATCH.\n"
    );
    text
}

fn markdown(options: &Options, report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Load benchmark\n");
    md.push_str(&setup(options, report));

    let _ = writeln!(md, "## Targets at {TARGET_CLIENTS} clients\n");
    if !options.clients.contains(&TARGET_CLIENTS) {
        let _ = writeln!(
            md,
            "This run left out {TARGET_CLIENTS} clients (`--clients`): the targets stated at \
             {TARGET_CLIENTS} clients are not measured.\n"
        );
    }
    let _ = writeln!(md, "| target | measured | met |\n|---|---|---|");
    for t in targets(options, report) {
        let _ = writeln!(md, "| {} | {} | {} |", t.what, t.measured, t.met);
    }
    md.push('\n');

    let families: Vec<Family> = Family::ALL
        .into_iter()
        .filter(|f| report.scenarios.iter().any(|(s, _)| s.family() == *f))
        .collect();
    if !families.is_empty() {
        let _ = writeln!(md, "## Charts\n");
        for family in &families {
            let _ = writeln!(
                md,
                "- [{}]({}): throughput and p99 against clients",
                family.title(),
                family.chart_file()
            );
        }
        md.push('\n');
    }

    members_table(&mut md, report);
    paging_table(&mut md, report);

    for (scenario, rows) in &report.scenarios {
        scenario_table(&mut md, report, *scenario, rows);
    }
    peer_section(&mut md, report);
    soak_section(&mut md, report);
    events_section(&mut md, report);

    let _ = writeln!(md, "## Ceiling (pgbench)\n");
    let _ = writeln!(
        md,
        "| statement | clients | statements/s | avg ms | failed |\n|---|---|---|---|---|"
    );
    for statement in report.ceiling.statements() {
        for &clients in &options.clients {
            if let Some(rate) = report.ceiling.at(statement, clients) {
                let _ = writeln!(
                    md,
                    "| {} | {clients} | {:.0} | {:.3} | {} |",
                    statement.title(),
                    rate.per_second,
                    rate.latency_ms,
                    rate.failed
                );
            }
        }
    }
    md.push('\n');
    let _ = writeln!(md, "## History\n");
    md.push_str(HISTORY.trim_start_matches(|c: char| c != '\n').trim_start());
    md
}

fn scenario_table(md: &mut String, report: &Report, scenario: Scenario, rows: &[Row]) {
    let _ = writeln!(md, "## {}\n", scenario.title());
    let peer = scenario.compared_with_peer() && report.peer.is_some();
    let mut header =
        "| clients | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | ceiling/s | ours/ceiling |"
            .to_string();
    let mut rule = "|---|---|---|---|---|---|---|---|---|".to_string();
    if peer {
        header.push_str(" peer req/s | ours/peer |");
        rule.push_str("---|---|");
    }
    for usage in rows.first().map_or(&[][..], |r| &r.usage) {
        if cpu_only(usage.name) {
            let _ = write!(header, " {} CPU s |", usage.name);
            rule.push_str("---|");
        } else {
            let _ = write!(header, " {} CPU s | {0} RSS MB |", usage.name);
            rule.push_str("---|---|");
        }
    }
    header.push_str(" CPU µs per request, all |");
    rule.push_str("---|");
    let _ = writeln!(md, "{header}\n{rule}");
    for row in rows {
        let ceiling = report.ceiling.at(scenario.statement(), row.run.clients);
        let _ = write!(
            md,
            "| {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
            row.run.clients,
            row.run.throughput(),
            row.run.ms(0.5),
            row.run.ms(0.9),
            row.run.ms(0.99),
            row.run.max_ms(),
            row.errors(),
            ceiling.map_or("-".to_string(), |c| format!("{:.0}", c.per_second)),
            ratio(report.ceiling_ratio(scenario, row)),
        );
        if peer {
            let _ = write!(
                md,
                " {} | {} |",
                report
                    .peer_row(scenario, row.run.clients)
                    .map_or("-".to_string(), |p| format!("{:.1}", p.run.throughput())),
                ratio(report.peer_ratio(scenario, row))
            );
        }
        for usage in &row.usage {
            if cpu_only(usage.name) {
                let _ = write!(md, " {:.2} |", usage.cpu_seconds);
            } else {
                let _ = write!(
                    md,
                    " {:.2} | {:.1} |",
                    usage.cpu_seconds,
                    mb(usage.peak_rss_kib)
                );
            }
        }
        let answered = row.run.latency.len();
        let cpu: f64 = row.usage.iter().map(|u| u.cpu_seconds).sum();
        if answered > 0 {
            let _ = write!(md, " {:.0} |", cpu * 1e6 / answered as f64);
        } else {
            md.push_str(" - |");
        }
        md.push('\n');
    }
    md.push('\n');
}

/// PostgreSQL and the load driver: sampled for CPU time only.
fn cpu_only(name: &str) -> bool {
    name == crate::procs::POSTGRES || name == crate::procs::DRIVER
}

fn members_table(md: &mut String, report: &Report) {
    let (Some(small), Some(big)) = (
        report.rows(Scenario::MemberSmall),
        report.rows(Scenario::MemberBig),
    ) else {
        return;
    };
    let _ = writeln!(
        md,
        "## Member add/remove: the {}-member group against the 10-member group\n",
        report.seeding.big_group
    );
    let _ = writeln!(
        md,
        "| clients | small req/s | big req/s | small/big req/s | small p50 ms | big p50 ms | \
         big/small p50 | small p99 ms | big p99 ms |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (s, b) in small.iter().zip(big) {
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            s.run.clients,
            s.run.throughput(),
            b.run.throughput(),
            s.run.throughput() / b.run.throughput().max(f64::MIN_POSITIVE),
            s.run.ms(0.5),
            b.run.ms(0.5),
            b.run.ms(0.5) / s.run.ms(0.5).max(f64::MIN_POSITIVE),
            s.run.ms(0.99),
            b.run.ms(0.99)
        );
    }
    md.push('\n');
}

fn paging_table(md: &mut String, report: &Report) {
    let pairs = [
        (
            "startIndex",
            Scenario::PageFirstIndex,
            Scenario::PageDeepIndex,
        ),
        (
            "cursor",
            Scenario::PageFirstCursor,
            Scenario::PageDeepCursor,
        ),
    ];
    if !pairs
        .iter()
        .any(|(_, a, b)| report.rows(*a).is_some() || report.rows(*b).is_some())
    {
        return;
    }
    let _ = writeln!(
        md,
        "## 100-user pages: the first page against the page at startIndex {}\n",
        report.seeding.deep_index
    );
    let _ = writeln!(
        md,
        "| paging | clients | first p50 ms | deep p50 ms | deep/first p50 | first p99 ms | deep p99 ms | \
         first req/s | deep req/s |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (paging, first, deep) in pairs {
        let (Some(first), Some(deep)) = (report.rows(first), report.rows(deep)) else {
            continue;
        };
        for (f, d) in first.iter().zip(deep) {
            let _ = writeln!(
                md,
                "| {paging} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} |",
                f.run.clients,
                f.run.ms(0.5),
                d.run.ms(0.5),
                d.run.ms(0.5) / f.run.ms(0.5).max(f64::MIN_POSITIVE),
                f.run.ms(0.99),
                d.run.ms(0.99),
                f.run.throughput(),
                d.run.throughput()
            );
        }
    }
    md.push('\n');
}

fn peer_section(md: &mut String, report: &Report) {
    let _ = writeln!(md, "## Peer: scim2-server (PyPI, in-memory)\n");
    let Some(peer) = &report.peer else {
        let _ = writeln!(
            md,
            "Not measured: {}.\n",
            report
                .peer_note
                .as_deref()
                .unwrap_or("no compared scenario chosen")
        );
        return;
    };
    let _ = writeln!(
        md,
        "Its own tenant of {} users (`seed{{n}}@example.com`), seeded through its /Bulk in {:.1} s; \
         same clients, same durations, right after ours in the same run. It serves through \
         Python's threaded wsgiref server, whose listen backlog is 5 connections: beyond that \
         many clients, a new connection waits for the kernel's SYN retry (~1 s), which shows in \
         its p99.\n",
        peer.users, peer.seed_seconds
    );
    let _ = writeln!(
        md,
        "| scenario | clients | req/s | p50 ms | p99 ms | errors | ours/peer | CPU s | RSS MB |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for (scenario, rows) in &peer.scenarios {
        for row in rows {
            let ours = report.row(*scenario, row.run.clients);
            let (cpu, rss) = row
                .usage
                .first()
                .map_or((0.0, 0), |u| (u.cpu_seconds, u.peak_rss_kib));
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.2} | {:.2} | {} | {} | {cpu:.2} | {:.1} |",
                scenario.title(),
                row.run.clients,
                row.run.throughput(),
                row.run.ms(0.5),
                row.run.ms(0.99),
                row.errors(),
                ratio(ours.and_then(|o| report.peer_ratio(*scenario, o))),
                mb(rss)
            );
        }
    }
    md.push('\n');
}

fn events_section(md: &mut String, report: &Report) {
    let Some(events) = &report.events else {
        return;
    };
    let _ = writeln!(md, "## Event delivery (EventService.Watch)\n");
    match events {
        Err(e) => {
            let _ = writeln!(md, "Not measured: {e}\n");
        }
        Ok(d) => {
            let _ = writeln!(
                md,
                "{} watchers follow the tenant from now on, filtered to USER_DEACTIVATED, while \
                 {} users are deactivated one after another through SCIM (Entra's PATCH) in \
                 {:.1} s. Latency: from the moment the PATCH's HTTP response was read to the \
                 moment a watcher's stream yielded the event; {} deliveries came before the \
                 response was read and count as 0.\n",
                d.watchers, d.deactivations, d.seconds, d.before_response
            );
            let _ = writeln!(
                md,
                "| deliveries | p50 ms | p90 ms | p99 ms | max ms | missing | refused |\n\
                 |---|---|---|---|---|---|---|\n\
                 | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
                d.latency.len(),
                d.ms(0.5),
                d.ms(0.9),
                d.ms(0.99),
                d.max_ms(),
                d.missing,
                d.errors
            );
        }
    }
}

fn soak_section(md: &mut String, report: &Report) {
    let Some(soak) = &report.soak else {
        return;
    };
    let run = &soak.run;
    let _ = writeln!(
        md,
        "## Soak: {} s of mixed load at {} clients\n",
        run.elapsed.as_secs(),
        run.clients
    );
    let mix: Vec<&str> = Scenario::SOAK.iter().map(|s| s.name()).collect();
    let _ = writeln!(
        md,
        "Each client in turn: {} (deactivate then reactivate). {:.1} req/s, p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms, errors {}. RSS sampled every 10 s; growth is from the last \
         sample of the first minute (of the first half, in a soak under two minutes) to the last \
         one.\n",
        mix.join(", "),
        run.throughput(),
        run.ms(0.5),
        run.ms(0.99),
        run.max_ms(),
        run.error_count()
    );
    let _ = writeln!(
        md,
        "| process | RSS after 1 min MB | RSS at end MB | growth | peak MB |\n|---|---|---|---|---|"
    );
    for g in soak.growth() {
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:+.1} % | {:.1} |",
            g.name,
            mb(g.after_warm_up_kib),
            mb(g.end_kib),
            g.percent(),
            mb(g.peak_kib)
        );
    }
    md.push('\n');
}

fn row_json(report: &Report, scenario: Scenario, row: &Row, peer: bool) -> Value {
    let processes: Vec<Value> = row
        .usage
        .iter()
        .map(|u| {
            json!({"process": u.name, "cpu_seconds": u.cpu_seconds, "peak_rss_kib": u.peak_rss_kib})
        })
        .collect();
    let ceiling = report.ceiling.at(scenario.statement(), row.run.clients);
    let mut value = json!({
        "clients": row.run.clients,
        "seconds": row.run.elapsed.as_secs_f64(),
        "requests": row.run.latency.len(),
        "requests_per_second": row.run.throughput(),
        "p50_ms": row.run.ms(0.5),
        "p90_ms": row.run.ms(0.9),
        "p99_ms": row.run.ms(0.99),
        "max_ms": row.run.max_ms(),
        "errors": row.run.errors,
        "processes": processes,
    });
    if !peer {
        value["ceiling_per_second"] = json!(ceiling.map(|c| c.per_second));
        value["ratio_to_ceiling"] = json!(report.ceiling_ratio(scenario, row));
        value["ratio_to_peer"] = json!(report.peer_ratio(scenario, row));
    }
    value
}

fn document(options: &Options, report: &Report) -> Value {
    let scenarios = |runs: &[(Scenario, Vec<Row>)], peer: bool| -> Vec<Value> {
        runs.iter()
            .map(|(scenario, rows)| {
                let rows: Vec<Value> = rows
                    .iter()
                    .map(|r| row_json(report, *scenario, r, peer))
                    .collect();
                json!({
                    "scenario": scenario.name(),
                    "title": scenario.title(),
                    "ceiling_statement": scenario.statement().title(),
                    "runs": rows,
                })
            })
            .collect()
    };
    let ceiling: Vec<Value> = report
        .ceiling
        .rates
        .iter()
        .map(|r| {
            json!({"statement": r.statement.title(), "clients": r.clients,
                   "statements_per_second": r.per_second, "latency_avg_ms": r.latency_ms,
                   "failed": r.failed})
        })
        .collect();
    let targets: Vec<Value> = targets(options, report)
        .into_iter()
        .map(|t| json!({"target": t.what, "measured": t.measured, "met": t.met}))
        .collect();
    let s = &report.seeding;
    json!({
        "commit": std::env::var("BENCH_COMMIT").ok(),
        "users": options.users,
        "duration_seconds": options.duration.as_secs_f64(),
        "clients": options.clients,
        "wall_seconds": report.wall_seconds,
        "seeding": {
            "users": s.users, "users_seconds": s.users_seconds, "spare_users": s.spares,
            "groups": s.groups, "groups_seconds": s.groups_seconds,
            "big_group_members": s.big_group, "big_group_seconds": s.big_group_seconds,
            "members_per_patch": crate::seed::MEMBERS_PER_PATCH,
            "deep_start_index": s.deep_index, "deep_walk_seconds": report.walk_seconds,
        },
        "targets": targets,
        "scenarios": scenarios(&report.scenarios, false),
        "peer": report.peer.as_ref().map(|p| json!({
            "package": "scim2-server",
            "users": p.users,
            "seed_seconds": p.seed_seconds,
            "scenarios": scenarios(&p.scenarios, true),
        })),
        "peer_not_measured": report.peer_note,
        "soak": report.soak.as_ref().map(|soak| json!({
            "seconds": soak.run.elapsed.as_secs_f64(),
            "clients": soak.run.clients,
            "requests_per_second": soak.run.throughput(),
            "p50_ms": soak.run.ms(0.5),
            "p99_ms": soak.run.ms(0.99),
            "errors": soak.run.errors,
            "growth": soak.growth().iter().map(|g| json!({
                "process": g.name, "after_first_minute_kib": g.after_warm_up_kib,
                "end_kib": g.end_kib, "peak_kib": g.peak_kib, "percent": g.percent(),
            })).collect::<Vec<_>>(),
            "samples": soak.samples.iter().map(|s| json!({
                "seconds": s.seconds,
                "rss_kib": soak.processes.iter().zip(&s.rss_kib)
                    .map(|(p, k)| json!({"process": p, "kib": k})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })),
        "events": report.events.as_ref().map(|events| match events {
            Ok(d) => json!({
                "watchers": d.watchers, "deactivations": d.deactivations,
                "seconds": d.seconds, "deliveries": d.latency.len(),
                "p50_ms": d.ms(0.5), "p90_ms": d.ms(0.9), "p99_ms": d.ms(0.99),
                "max_ms": d.max_ms(), "before_response": d.before_response,
                "missing": d.missing, "refused": d.errors,
            }),
            Err(e) => json!({"not_measured": e}),
        }),
        "baseline": report.baseline.as_ref().map(|b| json!({
            "file": b.file, "commit": b.commit,
            "post_requests_per_second": b.post_per_second,
        })),
        "ceiling": ceiling,
    })
}
