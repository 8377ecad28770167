//! Retention: every replica wakes each prune interval and deletes the events
//! older than the retention, tenant by tenant, in small batches of their
//! oldest events (see [`store::prune`]). One replica prunes at a time; the
//! others find the lock taken and skip the round. A watcher or pager that
//! had not yet read what was pruned of its kinds of event gets OUT_OF_RANGE
//! (see [`store::Bounds::pruned_after`]).

use std::time::Duration;

use super::store;
use crate::db::{self, Pool, StoreError};
use crate::metrics::EventMetrics;

/// Rows one statement deletes at most: a short transaction whatever the
/// backlog.
const BATCH: i64 = 1000;

/// What the pruner needs.
pub(crate) struct Pruner {
    pub pool: Pool,
    pub retention: Duration,
    pub interval: Duration,
    pub metrics: EventMetrics,
}

impl Pruner {
    /// Prunes once per interval until the task is aborted.
    pub(crate) async fn run(self) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.round().await {
                Ok(0) => {}
                Ok(pruned) => {
                    tracing::debug!(pruned, "pruned events older than the retention");
                }
                Err(error) => {
                    self.metrics.prune_failures.inc();
                    tracing::warn!(%error, "pruning events failed; trying again next interval");
                }
            }
        }
    }

    /// One round: the events it deleted.
    async fn round(&self) -> Result<u64, StoreError> {
        let mut conn = db::conn(&self.pool).await?;
        let tenants = store::tenants_to_prune(&mut conn, self.retention).await?;
        let mut total = 0;
        for tenant in tenants {
            loop {
                match store::prune(&mut conn, tenant, self.retention, BATCH).await? {
                    // Another replica prunes this round.
                    None => return Ok(total),
                    Some(deleted) => {
                        total += deleted;
                        self.metrics.pruned.inc_by(deleted);
                        if deleted < BATCH as u64 {
                            break;
                        }
                    }
                }
            }
        }
        Ok(total)
    }
}
