//! The sequencer: every replica runs one, which gives pending events their
//! final numbers (see [`store::sequence_round`] and the module comment of
//! [`store`] for why the numbers are gap-free and in order). It wakes on a
//! pending notice (a write committed events), on the fallback poll (a
//! notice lost, or a round that failed), and once at start-up (events a
//! killed process left pending); wake-ups that arrive during a round
//! coalesce into one more round.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::store;
use crate::db::{self, Pool, StoreError};

/// What the sequencer needs.
pub(crate) struct Sequencer {
    pub pool: Pool,
    /// Notified by the hub's listener on each pending notice.
    pub wake: Arc<Notify>,
    /// How long it sleeps without a notice before looking anyway.
    pub poll_interval: Duration,
}

impl Sequencer {
    /// Numbers pending events until the task is aborted.
    pub(crate) async fn run(self) {
        loop {
            if let Err(error) = self.drain().await {
                tracing::warn!(%error, "numbering events failed; trying again at the next poll");
            }
            // A notice sent during the round left a permit: one more round.
            let _ = tokio::time::timeout(self.poll_interval, self.wake.notified()).await;
        }
    }

    /// Rounds until one leaves nothing pending.
    async fn drain(&self) -> Result<(), StoreError> {
        let mut conn = db::conn(&self.pool).await?;
        while store::sequence_round(&mut conn).await? == store::ROUND as u64 {}
        Ok(())
    }
}
