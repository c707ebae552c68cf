//! Retrying one protocol step: exponential backoff with jitter for transient errors,
//! `Retry-After` (capped) for rate limits, a warning per retry, never a secret logged.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::{PublishError, RetryPolicy};

fn backoff(policy: &RetryPolicy) -> ExponentialBuilder {
    let retries = policy.attempts.saturating_sub(1) as usize;
    ExponentialBuilder::default()
        .with_min_delay(policy.initial)
        .with_max_delay(policy.max.max(policy.initial))
        .with_max_times(retries)
        .with_jitter()
}

/// The wait before the next try: the backoff's, or what the platform asked for (capped
/// at `max`). `None` once the tries are used up.
fn next_wait(err: &PublishError, backoff: Option<Duration>, max: Duration) -> Option<Duration> {
    let backoff = backoff?;
    Some(match err.retry_after() {
        Some(asked) => asked.min(max),
        None => backoff.min(max),
    })
}

/// Runs `attempt` until it succeeds, fails with an error that is not retryable, or the
/// policy's tries are used up; the last error is returned.
pub async fn retrying<T, F, Fut>(
    policy: &RetryPolicy,
    step: &'static str,
    attempt: F,
) -> Result<T, PublishError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PublishError>>,
{
    let max = policy.max;
    attempt
        .retry(backoff(policy))
        .when(PublishError::is_retryable)
        .adjust(move |err, wait| next_wait(err, wait, max))
        .notify(|err, wait| {
            tracing::warn!(
                step,
                class = err.class(),
                reason = %err,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
        })
        .await
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

    #[tokio::test]
    async fn rate_limit_waits_retry_after_capped_at_max() {
        let p = RetryPolicy {
            attempts: 2,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(50),
        };
        let start = std::time::Instant::now();
        let tries = AtomicU32::new(0);
        let result = retrying(&p, "test", || async {
            if tries.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(PublishError::RateLimited {
                    retry_after: Some(Duration::from_secs(3600)),
                })
            } else {
                Ok(42)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 42);
        // Waited the cap, not the hour asked for (and not the 1 ms backoff).
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn no_wait_once_tries_are_used_up() {
        let err = PublishError::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(next_wait(&err, None, Duration::from_secs(9)), None);
    }
}
