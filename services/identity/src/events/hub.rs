//! Live delivery: one `LISTEN` connection per service process turns the
//! notifications of committed events into [`Notice`]s on a broadcast
//! channel, which every `Watch` of this process reads. A notice only says
//! "read again": events are always read from the table, so a notice lost
//! (the connection dropped, or a watcher lagged on the channel) only delays
//! delivery until the watcher's fallback poll.

use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use super::store::CHANNEL;
use crate::metrics::EventMetrics;

/// A tenant's event `sequence` committed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Notice {
    pub tenant: Uuid,
    pub sequence: u64,
}

impl Notice {
    /// The payload [`super::store::record`] sends: `<tenant id>:<sequence>`.
    fn parse(payload: &str) -> Option<Notice> {
        let (tenant, sequence) = payload.split_once(':')?;
        Some(Notice {
            tenant: Uuid::try_parse(tenant).ok()?,
            sequence: sequence.parse().ok()?,
        })
    }
}

/// How watchers of this process behave.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WatchLimits {
    /// Events a watcher holds for its client beyond what the connection
    /// buffers: what bounds a watcher's memory.
    pub buffer: usize,
    /// How far (in sequence numbers) a client that stopped reading may fall
    /// behind the tenant's newest event before it is closed.
    pub max_lag: u64,
    /// How often a caught-up watcher reads again without a notice.
    pub poll_interval: Duration,
}

/// Notices that travel on the channel before a slow watcher misses some
/// (and then simply reads again).
const NOTICE_CAPACITY: usize = 1024;

/// How long the listener waits before connecting again after a failure.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// What the watchers of one process share.
pub(crate) struct Hub {
    notices: broadcast::Sender<Notice>,
    stopping: watch::Receiver<bool>,
    pub limits: WatchLimits,
    pub metrics: EventMetrics,
}

impl Hub {
    /// The hub, and the listener task that feeds it from `database_url`
    /// (which the caller aborts at shutdown). `stopping` turns true when the
    /// service shuts down, which ends every watch.
    pub(crate) fn start(
        database_url: String,
        limits: WatchLimits,
        metrics: EventMetrics,
        stopping: watch::Receiver<bool>,
    ) -> (Hub, tokio::task::JoinHandle<()>) {
        let (notices, _) = broadcast::channel(NOTICE_CAPACITY);
        let listener = tokio::spawn(listen(database_url, notices.clone()));
        (
            Hub {
                notices,
                stopping,
                limits,
                metrics,
            },
            listener,
        )
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.clone()
    }
}

/// Listens for as long as the process runs, connecting again after a
/// failure; watchers poll meanwhile.
async fn listen(database_url: String, notices: broadcast::Sender<Notice>) {
    loop {
        match listen_once(&database_url, &notices).await {
            Ok(()) => tracing::warn!("the event listener's connection closed; reconnecting"),
            // The error never holds the URL or its password.
            Err(error) => tracing::warn!(%error, "the event listener failed; reconnecting"),
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

async fn listen_once(
    database_url: &str,
    notices: &broadcast::Sender<Notice>,
) -> Result<(), tokio_postgres::Error> {
    let config: tokio_postgres::Config = database_url.parse()?;
    let (client, mut connection) = config.connect(NoTls).await?;
    let forward = notices.clone();
    // Polling the connection both runs the client's statements and yields
    // the notifications.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(notification))) => {
                    if let Some(notice) = Notice::parse(notification.payload()) {
                        // No receiver is no watcher: nothing to tell.
                        let _ = forward.send(notice);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    tracing::debug!("listening for events");
    let ended = driver.await;
    drop(client);
    match ended {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse() {
        let tenant = Uuid::from_u128(7);
        assert_eq!(
            Notice::parse(&format!("{tenant}:42")),
            Some(Notice {
                tenant,
                sequence: 42
            })
        );
        assert_eq!(Notice::parse("nope:1"), None);
        assert_eq!(Notice::parse(&format!("{tenant}:-1")), None);
        assert_eq!(Notice::parse(""), None);
    }
}
