//! Retrying transient failures: exponential backoff with full jitter, and the server's `Retry-After` honoured.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; each retry doubles it.
    pub base: Duration,
    /// No backoff (nor `Retry-After`) is longer than this.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 8, base: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// How long to wait before retry number `retry` (1 for the first): the server's `Retry-After` when it gave
    /// one, else a random time in [d/2, d] where d = base·2^(retry-1), both capped at `max`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max);
        }
        let exp = self.base.saturating_mul(1u32 << (retry.saturating_sub(1)).min(20));
        let d = exp.min(self.max);
        let jitter = (random_unit() * d.as_secs_f64() / 2.0).max(0.0);
        Duration::from_secs_f64(d.as_secs_f64() / 2.0 + jitter)
    }
}

/// The failures of a transfer that resumes where it was cut: what both download loops (whole files and pieces)
/// count. Progress since the last failure means a flaky connection, not a dead one, and starts the count again.
#[derive(Debug)]
pub struct Failures {
    policy: RetryPolicy,
    count: u32,
    /// The furthest the transfer got: only bytes past it are progress (a server that cuts at the same place again
    /// makes none).
    furthest: u64,
}

impl Failures {
    pub fn new(policy: RetryPolicy, at: u64) -> Failures {
        Failures { policy, count: 0, furthest: at }
    }

    /// A failure with the transfer at `at`: how long to wait before the next attempt (the server's `Retry-After`
    /// when it gave one), or `Err` with the attempts made when they are spent.
    pub fn failed(&mut self, at: u64, retry_after: Option<Duration>) -> Result<Duration, u32> {
        self.count = if at > self.furthest { 1 } else { self.count + 1 };
        self.furthest = self.furthest.max(at);
        match self.count >= self.policy.attempts {
            true => Err(self.count),
            false => Ok(self.policy.delay(self.count, retry_after)),
        }
    }

    /// The attempt about to be retried (1 for the first retry).
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// A number in [0, 1) that differs between calls and processes; jitter needs no more.
fn random_unit() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ seed ^ u64::from(std::process::id());
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy { attempts: 5, base: Duration::from_millis(100), max: Duration::from_secs(1) };
        for retry in 1..=6 {
            let full = (100u64 << (retry - 1)).min(1000);
            for _ in 0..50 {
                let d = p.delay(retry, None).as_millis() as u64;
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d} ms not in [{}, {full}]", full / 2);
            }
        }
    }

    #[test]
    fn progress_starts_the_count_again_and_the_attempts_run_out_without_it() {
        let p = RetryPolicy { attempts: 3, base: Duration::from_millis(1), max: Duration::from_millis(1) };
        let mut failures = Failures::new(p, 0);
        assert!(failures.failed(0, None).is_ok());
        assert!(failures.failed(0, None).is_ok());
        assert_eq!(failures.count(), 2);
        assert!(failures.failed(10, None).is_ok(), "progress: the count starts again");
        assert_eq!(failures.count(), 1);
        assert!(failures.failed(10, None).is_ok());
        assert_eq!(failures.failed(4, None), Err(3), "going back is no progress");
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = RetryPolicy { attempts: 5, base: Duration::from_millis(100), max: Duration::from_secs(10) };
        assert_eq!(p.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some(Duration::from_secs(300))), Duration::from_secs(10));
    }
}
