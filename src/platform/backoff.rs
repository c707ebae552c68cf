//! Retrying one protocol step: exponential backoff with jitter for transient errors,
//! `Retry-After` (capped) for rate limits, a warning per retry, never a secret logged.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::{PublishError, RetryPolicy};

/// The longest `Retry-After` honoured as asked; a longer one is waited in this size.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How many rate-limit answers in a row one call sits out before it gives up (the job is
/// then held and tried again later). Rate limits do not use up `attempts`.
pub(crate) const MAX_RATE_LIMITED: u32 = 50;

fn backoff(policy: &RetryPolicy) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(policy.initial)
        .with_max_delay(policy.max.max(policy.initial))
        .without_max_times()
        .with_jitter()
        .build()
}

/// Runs `attempt` until it succeeds or fails for good. Transient errors are retried with
/// exponential backoff and jitter, up to `policy.attempts` tries in all. Rate limits wait
/// what the platform asked for (`Retry-After`, else the backoff) and do not count as a
/// try. Anything else is returned at once.
pub(crate) async fn retrying<T, F, Fut>(
    policy: &RetryPolicy,
    step: &'static str,
    mut attempt: F,
) -> Result<T, PublishError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PublishError>>,
{
    let mut delays = backoff(policy);
    let mut tries = 0u32;
    let mut limited = 0u32;
    loop {
        let err = match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let wait = match &err {
            PublishError::RateLimited { retry_after } => {
                limited += 1;
                if limited > MAX_RATE_LIMITED {
                    return Err(err);
                }
                match retry_after {
                    Some(asked) => (*asked).min(MAX_RETRY_AFTER),
                    None => delays.next().unwrap_or(policy.max),
                }
            }
            PublishError::Transient { retry_after, .. } => {
                tries += 1;
                if tries >= policy.attempts.max(1) {
                    return Err(err);
                }
                let backoff = delays.next().unwrap_or(policy.max);
                retry_after.map_or(backoff, |asked| asked.min(MAX_RETRY_AFTER))
            }
            _ => return Err(err),
        };
        tracing::warn!(
            step,
            class = err.class(),
            reason = %err,
            wait_ms = wait.as_millis() as u64,
            "retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(20),
        }
    }

    #[tokio::test]
    async fn retries_transient_up_to_attempts() {
        let tries = AtomicU32::new(0);
        let result: Result<(), _> = retrying(&policy(3), "test", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(PublishError::Transient {
                reason: "503".into(),
                retry_after: None,
            })
        })
        .await;
        assert_eq!(result.unwrap_err().class(), "transient");
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn does_not_retry_rejected_or_unknown() {
        for err in [
            PublishError::Rejected {
                reason: "no".into(),
            },
            PublishError::Unknown {
                reason: "timeout".into(),
            },
        ] {
            let tries = AtomicU32::new(0);
            let result: Result<(), _> = retrying(&policy(5), "test", || {
                tries.fetch_add(1, Ordering::SeqCst);
                let err = err.clone();
                async move { Err(err) }
            })
            .await;
            assert!(result.is_err());
            assert_eq!(tries.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limits_wait_retry_after_and_do_not_use_up_attempts() {
        let p = policy(2);
        let start = tokio::time::Instant::now();
        let tries = AtomicU32::new(0);
        let result = retrying(&p, "test", || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                // Five rate limits in a row, then one transient error: with two attempts
                // allowed, the transient one is the first counted try.
                0..=4 => Err(PublishError::RateLimited {
                    retry_after: Some(Duration::from_secs(30)),
                }),
                5 => Err(PublishError::Transient {
                    reason: "503".into(),
                    retry_after: None,
                }),
                _ => Ok(42),
            }
        })
        .await;
        assert_eq!(result.unwrap(), 42);
        assert_eq!(tries.load(Ordering::SeqCst), 7);
        // Waited what was asked for, five times (the clock is paused: no real waiting).
        assert!(start.elapsed() >= Duration::from_secs(150));
    }

    #[tokio::test(start_paused = true)]
    async fn endless_rate_limits_give_up_after_a_bound() {
        let tries = AtomicU32::new(0);
        let result: Result<(), _> = retrying(&policy(3), "test", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(PublishError::RateLimited {
                retry_after: Some(Duration::from_secs(7200)),
            })
        })
        .await;
        assert_eq!(result.unwrap_err().class(), "rate_limited");
        assert_eq!(tries.load(Ordering::SeqCst), MAX_RATE_LIMITED + 1);
    }
}
