//! Start-up against a database that may come up after the service (a whole
//! stack starting at once, a failover): migrations are retried with
//! backoff for a bounded time, each failure logged with the database's
//! host:port only.

use std::time::Duration;

use tokio::time::Instant;

use crate::StartupError;
use crate::db::migrate;

/// The first pause after a failed attempt; each next one doubles, up to
/// [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Applies pending migrations (under the migration lock, see
/// [`migrate`]) once the database answers, trying again while it cannot be
/// reached and `patience` is not spent. Any other failure (a migration
/// that fails, a bad URL) is returned at once.
pub async fn migrate_when_reachable(
    database_url: &str,
    patience: Duration,
) -> Result<(), StartupError> {
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut attempt: u32 = 1;
    loop {
        match migrate(database_url).await {
            Err(StartupError::Database { target, reason })
                if started.elapsed() + pause < patience =>
            {
                tracing::warn!(
                    database = %target,
                    %reason,
                    attempt,
                    retry_in = ?pause,
                    "database not reachable yet; retrying"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
                attempt += 1;
            }
            Err(StartupError::Database { target, reason }) => {
                tracing::error!(
                    database = %target,
                    %reason,
                    attempts = attempt,
                    waited = ?started.elapsed(),
                    "database still not reachable; giving up"
                );
                return Err(StartupError::Database { target, reason });
            }
            done => return done,
        }
    }
}
