//! The soak: the IdP's everyday mix (create, read by id, lookup by
//! userName, deactivate and reactivate) at 16 clients for a long time,
//! sampling each process's resident memory every 10 s, so that a leak shows
//! as growth between the first minute and the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::drive::{self, Run, Scenario, Target};
use crate::procs::Stack;

/// Clients of the soak, the reference load.
pub const SOAK_CLIENTS: usize = 16;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The baseline is the memory once caches and pools have warmed up.
const WARM_UP: Duration = Duration::from_secs(60);

pub struct Sample {
    pub seconds: f64,
    /// VmRSS per process, in the stack's order.
    pub rss_kib: Vec<u64>,
}

pub struct Soak {
    pub run: Run,
    pub processes: Vec<&'static str>,
    pub samples: Vec<Sample>,
}

/// Growth of one process from the end of the first minute to the end.
pub struct Growth {
    pub name: &'static str,
    pub peak_kib: u64,
    pub after_warm_up_kib: u64,
    pub end_kib: u64,
}

impl Growth {
    pub fn percent(&self) -> f64 {
        if self.after_warm_up_kib == 0 {
            return 0.0;
        }
        (self.end_kib as f64 - self.after_warm_up_kib as f64) * 100.0
            / self.after_warm_up_kib as f64
    }
}

impl Soak {
    pub fn growth(&self) -> Vec<Growth> {
        // A soak shorter than two minutes compares its two halves instead.
        let total = self.samples.last().map_or(0.0, |s| s.seconds);
        let warm = WARM_UP.as_secs_f64().min(total / 2.0);
        // The last sample within the warm-up, else the first one.
        let baseline = self
            .samples
            .iter()
            .rev()
            .find(|s| s.seconds <= warm)
            .or(self.samples.first());
        let end = self.samples.last();
        self.processes
            .iter()
            .enumerate()
            .map(|(i, &name)| Growth {
                name,
                peak_kib: self
                    .samples
                    .iter()
                    .map(|s| s.rss_kib[i])
                    .max()
                    .unwrap_or_default(),
                after_warm_up_kib: baseline.map_or(0, |s| s.rss_kib[i]),
                end_kib: end.map_or(0, |s| s.rss_kib[i]),
            })
            .collect()
    }
}

pub async fn run(target: &Arc<Target>, stack: &Stack, duration: Duration) -> Soak {
    eprintln!(
        "soak: mixed load at {SOAK_CLIENTS} clients for {} s",
        duration.as_secs()
    );
    let started = Instant::now();
    let sample = || Sample {
        seconds: started.elapsed().as_secs_f64(),
        rss_kib: stack.server_rss_kib(),
    };
    let sampler = async {
        let mut samples = vec![sample()];
        let mut next = started + SAMPLE_EVERY;
        while next <= started + duration {
            tokio::time::sleep_until(next.into()).await;
            let now = sample();
            eprintln!(
                "  soak {:>5.0} s  RSS MB {}",
                now.seconds,
                now.rss_kib
                    .iter()
                    .map(|k| format!("{:.1}", *k as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
            samples.push(now);
            next += SAMPLE_EVERY;
        }
        samples
    };
    let (run, samples) = tokio::join!(
        drive::run(target, &Scenario::SOAK, SOAK_CLIENTS, duration),
        sampler
    );
    Soak {
        run,
        processes: stack.server_names(),
        samples,
    }
}
