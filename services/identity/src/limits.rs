//! Fairness: a cap on each tenant's requests in flight, so one noisy
//! identity provider cannot take every pooled connection, and an optional
//! per-token rate limit. Both only apply to tenant tokens: the operator is
//! one trusted caller and is never throttled. And a bound on every call.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::TokenRate;

/// Tenants whose slots are kept while idle; past this many the idle ones
/// are dropped, so memory follows the tenants busy right now.
const IDLE_TENANTS_KEPT: usize = 1024;

/// Tokens whose rate state is kept; past this many, those back at a full
/// burst are dropped (they are indistinguishable from new ones).
const RATE_KEYS_KEPT: usize = 10_000;

/// The wait suggested to a refused caller when no better figure is known.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// A call ended by the server-wide bound (`--request-timeout`).
#[derive(Debug, thiserror::Error)]
#[error("the call took longer than the server allows ({limit_ms} ms): retry later")]
pub struct RequestTimedOut {
    pub limit_ms: u128,
}

/// Ends any call that runs longer than `limit`, whatever deadline its
/// caller sent. Its error is a `Status`, which tonic answers as it is;
/// tonic's own deadline (the caller's `grpc-timeout`) wraps this one.
#[derive(Clone)]
pub(crate) struct RequestBound {
    pub(crate) limit: Duration,
}

impl<S> tower::Layer<S> for RequestBound {
    type Service = Bounded<S>;

    fn layer(&self, inner: S) -> Bounded<S> {
        Bounded {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Bounded<S> {
    inner: S,
    limit: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, R> tower::Service<R> for Bounded<S>
where
    S: tower::Service<R>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let call = self.inner.call(request);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, call).await {
                Ok(answer) => answer.map_err(Into::into),
                Err(_) => {
                    tracing::debug!(
                        limit_ms = limit.as_millis(),
                        "refused: call ran past the server's request timeout"
                    );
                    let status = tonic::Status::from(RequestTimedOut {
                        limit_ms: limit.as_millis(),
                    });
                    Err(Box::new(status) as BoxError)
                }
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("too many concurrent requests for this tenant: retry after {retry_after} s")]
    TenantBusy { retry_after: u64 },
    #[error("too many requests with this token: retry after {retry_after} s")]
    TokenRate { retry_after: u64 },
}

impl LimitError {
    /// Whole seconds after which a retry is welcome.
    pub(crate) fn retry_after(&self) -> u64 {
        match self {
            LimitError::TenantBusy { retry_after } | LimitError::TokenRate { retry_after } => {
                *retry_after
            }
        }
    }
}

pub(crate) struct Limits {
    tenant_cap: u32,
    queue_timeout: Duration,
    slots: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    rate: Option<DefaultKeyedRateLimiter<Uuid>>,
}

impl Limits {
    /// `tenant_cap` 0 is refused by the caller's settings check.
    pub(crate) fn new(tenant_cap: u32, queue_timeout: Duration, rate: Option<TokenRate>) -> Limits {
        let rate = rate.and_then(|rate| {
            let burst = NonZeroU32::new(rate.burst.max(1))?;
            Quota::with_period(rate.period).map(|q| q.allow_burst(burst))
        });
        Limits {
            tenant_cap: tenant_cap.max(1),
            queue_timeout,
            slots: Mutex::new(HashMap::new()),
            rate: rate.map(DefaultKeyedRateLimiter::keyed),
        }
    }

    /// Counts one call of `token`; refuses it past the token's rate.
    pub(crate) fn check_rate(&self, token: Uuid) -> Result<(), LimitError> {
        let Some(limiter) = &self.rate else {
            return Ok(());
        };
        let outcome = limiter.check_key(&token);
        if limiter.len() > RATE_KEYS_KEPT {
            limiter.retain_recent();
        }
        outcome.map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::debug!(token_id = %token, retry_after, "refused: token over its rate limit");
            LimitError::TokenRate {
                retry_after: retry_after.max(1),
            }
        })
    }

    /// A slot among `tenant`'s concurrent requests, held until dropped.
    pub(crate) async fn admit(&self, tenant: Uuid) -> Result<OwnedSemaphorePermit, LimitError> {
        let slots = self.slots_of(tenant);
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => tokio::time::timeout(self.queue_timeout, slots.acquire_owned())
                .await
                .map_err(|_| ())
                .and_then(|acquired| acquired.map_err(|_| ())),
        };
        permit.map_err(|()| {
            tracing::debug!(tenant_id = %tenant, cap = self.tenant_cap, "refused: tenant at its concurrent request cap");
            LimitError::TenantBusy {
                retry_after: BUSY_RETRY_AFTER_SECS,
            }
        })
    }

    fn slots_of(&self, tenant: Uuid) -> Arc<Semaphore> {
        let cap = self.tenant_cap as usize;
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slots.len() >= IDLE_TENANTS_KEPT && !slots.contains_key(&tenant) {
            slots.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < cap);
        }
        slots
            .entry(tenant)
            .or_insert_with(|| Arc::new(Semaphore::new(cap)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_tenants_are_forgotten_busy_ones_kept() {
        let limits = Limits::new(1, Duration::from_millis(1), None);
        let busy = Uuid::new_v4();
        let held = limits.admit(busy).await;
        assert!(held.is_ok());
        for _ in 0..IDLE_TENANTS_KEPT + 10 {
            drop(limits.admit(Uuid::new_v4()).await);
        }
        let kept = limits.slots.lock().map(|s| s.len()).unwrap_or_default();
        assert!(kept <= IDLE_TENANTS_KEPT, "{kept} tenants kept");
        assert!(matches!(
            limits.admit(busy).await,
            Err(LimitError::TenantBusy { .. })
        ));
    }

    #[test]
    fn rate_refuses_past_the_burst() {
        let limits = Limits::new(
            1,
            Duration::from_millis(1),
            Some(TokenRate {
                period: Duration::from_secs(3600),
                burst: 2,
            }),
        );
        let token = Uuid::new_v4();
        assert!(limits.check_rate(token).is_ok());
        assert!(limits.check_rate(token).is_ok());
        let refused = limits.check_rate(token);
        assert!(matches!(refused, Err(LimitError::TokenRate { retry_after }) if retry_after > 1));
        assert!(limits.check_rate(Uuid::new_v4()).is_ok());
    }

    #[test]
    fn no_rate_means_no_limit() {
        let limits = Limits::new(1, Duration::from_millis(1), None);
        let token = Uuid::new_v4();
        assert!((0..1000).all(|_| limits.check_rate(token).is_ok()));
    }
}
