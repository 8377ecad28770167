//! The sequencer: every replica runs one, which gives pending events their
//! final numbers (see [`store::sequence_round`] and the module comment of
//! [`store`] for why the numbers are gap-free and in order). It looks for
//! pending events at start-up (events a killed process left pending) and
//! then every poll interval: one probe of the pending index when there are
//! none, rounds until none is left when there are. Writers do not wake it
//! with a `NOTIFY`, which would serialise their commits (see [`store`]).

use std::time::Duration;

use super::store;
use crate::db::{self, Pool};

/// What the sequencer needs.
pub(crate) struct Sequencer {
    pub pool: Pool,
    /// How long it waits between looks: the most an event waits for its
    /// number, beyond the round itself.
    pub poll_interval: Duration,
}

impl Sequencer {
    /// Numbers pending events until the task is aborted.
    pub(crate) async fn run(self) {
        let mut ticks = tokio::time::interval(self.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let numbered = match db::conn(&self.pool).await {
                Ok(mut conn) => store::settle(&mut conn).await,
                Err(error) => Err(error),
            };
            if let Err(error) = numbered {
                tracing::warn!(%error, "numbering events failed; trying again at the next poll");
            }
        }
    }
}
