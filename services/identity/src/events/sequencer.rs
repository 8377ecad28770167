//! The sequencer: every replica runs one, which gives pending events their
//! final numbers (see [`store::sequence_round`] and the module comment of
//! [`store`] for why the numbers are gap-free and in order). It looks for
//! pending events at start-up (events a killed process left pending), when
//! a write of this process released its connection, after its commit (an
//! in-process wake-up from `AppState::write_call`; a `NOTIFY` would
//! serialise the writers' commits, see [`store`]), and
//! every poll interval (other writes, and events a killed replica left
//! pending): one probe of the pending table when there are none, rounds
//! until none is left when there are. Wake-ups during a round, and for a
//! short spacing after one that numbered events, coalesce into one more:
//! under a stream of writes, rounds then number batches instead of running
//! back to back (each round costs the database a transaction whatever its
//! size, on the cores the writers need).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::store;
use crate::db::{self, Pool};
use crate::metrics::EventMetrics;

/// What the sequencer needs.
pub(crate) struct Sequencer {
    pub pool: Pool,
    /// Notified after a write of this process committed events.
    pub wake: Arc<Notify>,
    /// How long it waits between looks: the most an event waits for its
    /// number, beyond the round itself.
    pub poll_interval: Duration,
    /// The least time between a round that numbered events and the next:
    /// what a delivery may wait beyond the round under a stream of writes.
    pub spacing: Duration,
    /// How often, at most, it vacuums the pending table after numbering
    /// events: what bounds the dead entries its look walks.
    pub vacuum_interval: Duration,
    /// Counts what it numbered and its failed looks.
    pub metrics: EventMetrics,
}

impl Sequencer {
    /// Numbers pending events until the task is aborted.
    pub(crate) async fn run(self) {
        let mut vacuumed = Instant::now();
        loop {
            let numbered = match db::conn(&self.pool).await {
                Ok(mut conn) => {
                    let numbered = store::settle(&mut conn).await;
                    if matches!(numbered, Ok(n) if n > 0)
                        && vacuumed.elapsed() >= self.vacuum_interval
                    {
                        vacuumed = Instant::now();
                        if let Err(error) = store::vacuum_pending(&mut conn).await {
                            tracing::warn!(%error, "vacuuming pending events failed");
                        }
                    }
                    numbered
                }
                Err(error) => Err(error),
            };
            match numbered {
                Ok(0) => {}
                Ok(count) => {
                    self.metrics.numbered.inc_by(count);
                    tokio::time::sleep(self.spacing).await;
                }
                Err(error) => {
                    self.metrics.sequencer_failures.inc();
                    tracing::warn!(%error, "numbering events failed; trying again at the next poll");
                }
            }
            // A wake-up during the round left a permit: one more round.
            let _ = tokio::time::timeout(self.poll_interval, self.wake.notified()).await;
        }
    }
}
