//! bench-report.md and bench-report.json: one table per scenario, each row
//! next to the pgbench ceiling of its statement at the same client count.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::Options;
use crate::ceiling::Ceiling;
use crate::drive::{Run, Scenario};
use crate::procs::Usage;

/// What the issue asks for that this version does not measure yet.
const NOT_MEASURED: &str = "SCIM PATCH deactivate/reactivate; PATCH member add/remove on a \
100,000-member group and a 10-member group; 1,000 groups; deep list pages by startIndex and by \
cursor; the scim2-server peer; charts; the 10-minute RSS soak";

/// One scenario at one client count, with the usage of each process.
pub struct Row {
    run: Run,
    /// (CPU seconds spent during the run, peak RSS in KiB during it) per process.
    usage: Vec<(f64, u64)>,
}

impl Row {
    pub fn new(run: Run, before: &[Usage], after: &[Usage]) -> Row {
        let usage = before
            .iter()
            .zip(after)
            .map(|(b, a)| (a.cpu_seconds - b.cpu_seconds, a.peak_rss_kib))
            .collect();
        Row { run, usage }
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.run.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.run.latency.max() as f64 / 1000.0
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

pub struct Report {
    pub seed_seconds: f64,
    pub processes: Vec<&'static str>,
    pub scenarios: Vec<(Scenario, Vec<Row>)>,
    pub ceiling: Ceiling,
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

fn markdown(options: &Options, report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Load benchmark\n");
    let _ = writeln!(
        md,
        "Tenant of {} users seeded through gRPC CreateUser in {:.1} s; {} s per run; \
         closed-loop clients; release binaries as separate processes, logging at their default \
         level (one line per request), as scripts/quickstart runs them.\n",
        options.users,
        report.seed_seconds,
        options.duration.as_secs_f64()
    );
    let _ = writeln!(md, "Not measured yet: {NOT_MEASURED}.\n");
    let _ = writeln!(
        md,
        "Ceiling: pgbench `-M prepared`, one statement per transaction on tables built by our \
         migrations (INSERT for creates, SELECT by lower(user_name) for reads, also for reads by id). \
         CPU is seconds spent during the run; RSS is the peak (VmHWM) during it.\n"
    );
    for (scenario, rows) in &report.scenarios {
        let _ = writeln!(md, "## {}\n", scenario.title());
        let mut header =
            "| clients | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | ceiling/s | ratio |"
                .to_string();
        let mut rule = "|---|---|---|---|---|---|---|---|---|".to_string();
        for name in &report.processes {
            let _ = write!(header, " {name} CPU s | {name} RSS MB |");
            rule.push_str("---|---|");
        }
        let _ = writeln!(md, "{header}\n{rule}");
        for row in rows {
            let ceiling = report.ceiling.at(scenario.statement(), row.run.clients);
            let (ceiling_text, ratio) = match ceiling {
                Some(rate) if rate.tps > 0.0 => (
                    format!("{:.0}", rate.tps),
                    format!("{:.3}", row.run.throughput() / rate.tps),
                ),
                _ => ("-".to_string(), "-".to_string()),
            };
            let _ = write!(
                md,
                "| {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {ceiling_text} | {ratio} |",
                row.run.clients,
                row.run.throughput(),
                row.ms(0.5),
                row.ms(0.9),
                row.ms(0.99),
                row.max_ms(),
                row.errors()
            );
            for (cpu, rss) in &row.usage {
                let _ = write!(md, " {cpu:.2} | {:.1} |", *rss as f64 / 1024.0);
            }
            md.push('\n');
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Ceiling (pgbench)\n");
    let _ = writeln!(
        md,
        "| clients | insert tps | insert avg ms | select tps | select avg ms |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for (insert, select) in report.ceiling.insert.iter().zip(&report.ceiling.select) {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.3} | {:.0} | {:.3} |",
            insert.clients, insert.tps, insert.latency_ms, select.tps, select.latency_ms
        );
    }
    md
}

fn document(options: &Options, report: &Report) -> Value {
    let scenarios: Vec<Value> = report
        .scenarios
        .iter()
        .map(|(scenario, rows)| {
            let rows: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let ceiling = report.ceiling.at(scenario.statement(), row.run.clients);
                    let processes: Vec<Value> = report
                        .processes
                        .iter()
                        .zip(&row.usage)
                        .map(|(name, (cpu, rss))| {
                            json!({"process": name, "cpu_seconds": cpu, "peak_rss_kib": rss})
                        })
                        .collect();
                    json!({
                        "clients": row.run.clients,
                        "seconds": row.run.elapsed.as_secs_f64(),
                        "requests": row.run.latency.len(),
                        "requests_per_second": row.run.throughput(),
                        "p50_ms": row.ms(0.5),
                        "p90_ms": row.ms(0.9),
                        "p99_ms": row.ms(0.99),
                        "max_ms": row.max_ms(),
                        "errors": row.run.errors,
                        "ceiling_per_second": ceiling.map(|c| c.tps),
                        "ratio_to_ceiling": ceiling
                            .filter(|c| c.tps > 0.0)
                            .map(|c| row.run.throughput() / c.tps),
                        "processes": processes,
                    })
                })
                .collect();
            json!({"scenario": scenario.key(), "title": scenario.title(), "runs": rows})
        })
        .collect();
    let rates = |rates: &[crate::ceiling::Rate]| -> Vec<Value> {
        rates
            .iter()
            .map(|r| {
                json!({"clients": r.clients, "tps": r.tps, "latency_avg_ms": r.latency_ms,
                       "failed": r.failed})
            })
            .collect()
    };
    json!({
        "users": options.users,
        "duration_seconds": options.duration.as_secs_f64(),
        "clients": options.clients,
        "seed_seconds": report.seed_seconds,
        "not_measured_yet": NOT_MEASURED,
        "scenarios": scenarios,
        "ceiling": {"insert": rates(&report.ceiling.insert), "select": rates(&report.ceiling.select)},
    })
}
