//! The HTTP/1.1 accept loop. axum::serve exposes no limits, so the adapter
//! drives hyper itself: a cap on connections, a header size cap (431), a
//! header read timeout and a keep-alive idle timeout, bounded draining of
//! request bodies a handler did not read (so clients read the answer, e.g.
//! a 413, instead of a reset), and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Request, Response, header};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

use crate::{AdapterSettings, StartupError};

/// Most bytes of an unread request body read and discarded after the
/// answer, so that the client, still sending, reads the answer rather than
/// a connection reset. Past it the connection is closed.
const DRAIN_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Longest time spent draining one unread request body.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The connection limits of [`AdapterSettings`], checked.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_header_bytes: usize,
    max_connections: usize,
}

impl Limits {
    pub fn from_settings(settings: &AdapterSettings) -> Result<Self, StartupError> {
        let invalid = |name, reason| Err(StartupError::InvalidLimit { name, reason });
        if settings.header_read_timeout.is_zero() {
            return invalid("SCIM_HEADER_READ_TIMEOUT", "it must be longer than 0");
        }
        if settings.idle_timeout.is_zero() {
            return invalid("SCIM_IDLE_TIMEOUT", "it must be longer than 0");
        }
        if settings.grpc_timeout.is_zero() {
            return invalid("SCIM_GRPC_TIMEOUT", "it must be longer than 0");
        }
        if settings.max_header_bytes < 1024 {
            return invalid("SCIM_MAX_HEADER_BYTES", "it must be at least 1024");
        }
        if settings.max_connections == 0 || settings.max_connections > Semaphore::MAX_PERMITS {
            return invalid(
                "SCIM_MAX_CONNECTIONS",
                "it must be at least 1 and below 2^61",
            );
        }
        Ok(Limits {
            header_read_timeout: settings.header_read_timeout,
            idle_timeout: settings.idle_timeout,
            max_header_bytes: settings.max_header_bytes,
            max_connections: settings.max_connections,
        })
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and waits for in-flight requests to finish.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Past the cap, new connections wait in the listen backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match stream {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let awaits_continue = expects_continue(&request);
            app.clone()
                .oneshot(request.map(|body| DrainOnDrop::body(body, awaits_continue)))
        });
        let clock = Arc::new(ReadClock::new());
        let io = TokioIo::new(ClockedStream {
            stream,
            clock: Arc::clone(&clock),
        });
        let connection = http1::Builder::new()
            .timer(HeadTimer {
                clock,
                header_read: limits.header_read_timeout,
                idle: limits.idle_timeout,
                first_request: Arc::new(AtomicBool::new(true)),
            })
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(limits.max_header_bytes)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// When the socket last delivered bytes, shared by [`ClockedStream`] (which
/// sets it) and [`HeadTimer`] (which tells waiting from a slow head).
struct ReadClock {
    origin: Instant,
    /// Nanoseconds after `origin` plus one; 0 until the first read.
    last_read: AtomicU64,
}

impl ReadClock {
    fn new() -> Self {
        ReadClock {
            origin: Instant::now(),
            last_read: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let since = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.last_read.store(since + 1, Ordering::Relaxed);
    }

    fn last_read(&self) -> Option<Instant> {
        match self.last_read.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(self.origin + Duration::from_nanos(nanos - 1)),
        }
    }
}

/// The connection's socket, recording when bytes arrive.
struct ClockedStream {
    stream: TcpStream,
    clock: Arc<ReadClock>,
}

impl AsyncRead for ClockedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.touch();
        }
        polled
    }
}

impl AsyncWrite for ClockedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// hyper's header read timer, which hyper starts whenever it waits for a
/// request head, between keep-alive requests too. One per connection: the
/// first head must arrive within the header read timeout of the accept;
/// later ones may be awaited for the idle timeout, and must then be
/// complete within the header read timeout of their first byte.
#[derive(Clone)]
struct HeadTimer {
    clock: Arc<ReadClock>,
    header_read: Duration,
    idle: Duration,
    first_request: Arc<AtomicBool>,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let start = Instant::now();
        let first = self.first_request.swap(false, Ordering::Relaxed);
        let wait = if first { self.header_read } else { self.idle };
        Box::pin(HeadSleep {
            clock: Arc::clone(&self.clock),
            start,
            header_read: self.header_read,
            head_began: first.then_some(start),
            sleep: Box::pin(tokio::time::sleep_until((start + wait).into())),
        })
    }
}

/// One wait for a request head; see [`HeadTimer`].
struct HeadSleep {
    clock: Arc<ReadClock>,
    start: Instant,
    header_read: Duration,
    /// When the head's first byte came (the accept, for a first request).
    head_began: Option<Instant>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // hyper polls this right after each read that left the head
        // incomplete, so the first byte after `start` is seen in time.
        if self.head_began.is_none()
            && let Some(read) = self.clock.last_read().filter(|read| *read >= self.start)
        {
            self.head_began = Some(read);
            let deadline = read + self.header_read;
            self.sleep.as_mut().reset(deadline.into());
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

/// A request body that, if the handler drops it unread, is read to its end
/// in the background (bounded by [`DRAIN_MAX_BYTES`] and [`DRAIN_TIMEOUT`]):
/// hyper would otherwise close the connection under a client still
/// sending, which then sees a reset instead of the answer.
struct DrainOnDrop {
    body: Option<Incoming>,
    /// Draining a body the client still holds back for `100 Continue`
    /// would ask for it; hyper then closes the connection after the answer.
    awaits_continue: bool,
    /// Whether the handler read any of it (hyper then sent `100 Continue`).
    polled: bool,
}

impl DrainOnDrop {
    fn body(incoming: Incoming, awaits_continue: bool) -> Body {
        Body::new(DrainOnDrop {
            body: Some(incoming),
            awaits_continue,
            polled: false,
        })
    }
}

impl http_body::Body for DrainOnDrop {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.polled = true;
        match self.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(body) = self.body.take() else { return };
        if http_body::Body::is_end_stream(&body) || (self.awaits_continue && !self.polled) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(body));
        }
    }
}

async fn drain(mut body: Incoming) {
    let discard = async {
        let mut left = DRAIN_MAX_BYTES;
        while let Some(Ok(frame)) = body.frame().await {
            let size = frame.data_ref().map_or(0, Bytes::len);
            if size > left {
                tracing::debug!("unread request body too large to drain; closing");
                return;
            }
            left -= size;
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, discard).await.is_err() {
        tracing::debug!("unread request body too slow to drain; closing");
    }
}

/// Whether the client holds its body back until `100 Continue`.
fn expects_continue(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        let valid = AdapterSettings::new("http://127.0.0.1:50051");
        assert!(Limits::from_settings(&valid).is_ok());
        let broken: [fn(&mut AdapterSettings); 5] = [
            |s| s.header_read_timeout = Duration::ZERO,
            |s| s.idle_timeout = Duration::ZERO,
            |s| s.grpc_timeout = Duration::ZERO,
            |s| s.max_header_bytes = 100,
            |s| s.max_connections = 0,
        ];
        for (index, breaks) in broken.into_iter().enumerate() {
            let mut settings = valid.clone();
            breaks(&mut settings);
            assert!(
                matches!(
                    Limits::from_settings(&settings),
                    Err(StartupError::InvalidLimit { .. })
                ),
                "case {index}"
            );
        }
    }
}
