//! How a server process of ours ends: the first SIGTERM or Ctrl-C starts a
//! drain (readiness off, a pause so load balancers notice, then no new
//! connections and a bounded wait for the requests in flight); a second
//! signal ends the process at once. Shared by the service and the adapter.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// The two waits of a drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    /// How long the process stays reachable, reporting not ready, before it
    /// stops accepting: the time load balancers need to stop sending to it.
    pub delay: Duration,
    /// How long requests in flight may take to finish once it stops
    /// accepting; those still running then are cut.
    pub grace: Duration,
}

/// Resolves when the server must stop accepting and drain what it holds.
pub type StopAccepting = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Drain {
    /// Runs the server that `serve` builds around a [`StopAccepting`]
    /// future. Once `signal` completes, `unready` runs (readiness goes
    /// false), then after [`Drain::delay`] the server is told to stop
    /// accepting; it then has [`Drain::grace`] to finish. Returns the
    /// server's own result, or `None` when the grace period cut it short.
    pub async fn run<S>(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
        unready: impl Future<Output = ()> + Send + 'static,
        serve: impl FnOnce(StopAccepting) -> S,
    ) -> Option<S::Output>
    where
        S: Future,
    {
        let stopped = Arc::new(Notify::new());
        let stop: StopAccepting = {
            let stopped = Arc::clone(&stopped);
            Box::pin(async move {
                signal.await;
                unready.await;
                tracing::info!(delay = ?self.delay, "draining: reporting not ready before closing the listener");
                tokio::time::sleep(self.delay).await;
                tracing::info!(grace = ?self.grace, "no longer accepting; finishing requests in flight");
                stopped.notify_one();
            })
        };
        let server = serve(stop);
        let grace_over = async {
            stopped.notified().await;
            tokio::time::sleep(self.grace).await;
        };
        tokio::select! {
            output = server => Some(output),
            () = grace_over => {
                tracing::warn!(grace = ?self.grace, "grace period over: cutting the requests still in flight");
                None
            }
        }
    }
}

/// Completes on the first SIGTERM or Ctrl-C (SIGINT). From then on, another
/// of either ends the process at once with status 128 + its number (130
/// for SIGINT, 143 for SIGTERM), for an operator who will not wait for the
/// drain. Call it inside the runtime, at start-up: the handlers are
/// installed at once, so no signal in between is missed.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let mut signals = Signals::install();
    async move {
        let first = signals.next().await;
        tracing::info!(
            signal = first.name(),
            "shutdown requested; a second signal exits at once"
        );
        tokio::spawn(async move {
            let second = signals.next().await;
            tracing::warn!(
                signal = second.name(),
                "second shutdown signal: exiting now"
            );
            std::process::exit(second.exit_status());
        });
    }
}

/// A signal that asks the process to end.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Interrupt,
    Terminate,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
        }
    }

    /// The shell's convention for a process ended by a signal.
    fn exit_status(self) -> i32 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }
}

#[cfg(unix)]
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for {name}");
                None
            }
        };
        Signals {
            interrupt: listen(SignalKind::interrupt(), "SIGINT"),
            terminate: listen(SignalKind::terminate(), "SIGTERM"),
        }
    }

    async fn next(&mut self) -> Stop {
        /// A stream that cannot deliver (never installed, or closed) waits forever.
        async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
            let delivered = match signal {
                Some(signal) => signal.recv().await.is_some(),
                None => false,
            };
            if !delivered {
                std::future::pending::<()>().await;
            }
        }
        tokio::select! {
            () = recv(&mut self.interrupt) => Stop::Interrupt,
            () = recv(&mut self.terminate) => Stop::Terminate,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Self {
        Signals
    }

    async fn next(&mut self) -> Stop {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        Stop::Interrupt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    const DRAIN: Drain = Drain {
        delay: Duration::from_millis(200),
        grace: Duration::from_millis(300),
    };

    #[tokio::test(start_paused = true)]
    async fn readiness_goes_false_before_the_server_stops_accepting() {
        let unready = Arc::new(AtomicBool::new(false));
        let unready_at_stop = DRAIN
            .run(
                async {},
                {
                    let unready = Arc::clone(&unready);
                    async move { unready.store(true, Ordering::SeqCst) }
                },
                |stop| {
                    let unready = Arc::clone(&unready);
                    async move {
                        stop.await;
                        unready.load(Ordering::SeqCst)
                    }
                },
            )
            .await;
        assert_eq!(unready_at_stop, Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn the_delay_passes_before_the_server_stops_accepting() {
        let begin = tokio::time::Instant::now();
        let stopped_at = DRAIN
            .run(async {}, async {}, |stop| async move {
                stop.await;
                tokio::time::Instant::now()
            })
            .await;
        assert_eq!(stopped_at.map(|at| at - begin), Some(DRAIN.delay));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_slower_than_the_grace_period_is_cut() {
        let begin = tokio::time::Instant::now();
        let output = DRAIN
            .run(async {}, async {}, |stop| async move {
                stop.await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            })
            .await;
        assert_eq!(output, None);
        assert_eq!(begin.elapsed(), DRAIN.delay + DRAIN.grace);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_happens_before_the_signal() {
        let (send, signal) = tokio::sync::oneshot::channel::<()>();
        let unready = Arc::new(AtomicBool::new(false));
        let server = DRAIN.run(
            async move {
                let _ = signal.await;
            },
            {
                let unready = Arc::clone(&unready);
                async move { unready.store(true, Ordering::SeqCst) }
            },
            |stop| stop,
        );
        let mut server = std::pin::pin!(server);
        let early = tokio::time::timeout(Duration::from_secs(60), &mut server).await;
        assert!(early.is_err(), "the server ran on while no signal came");
        assert!(!unready.load(Ordering::SeqCst));
        let _ = send.send(());
        assert_eq!(server.await, Some(()));
        assert!(unready.load(Ordering::SeqCst));
    }
}
