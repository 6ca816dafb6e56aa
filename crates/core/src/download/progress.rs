//! Counters that transfers bump lock-free, and the speed they add up to.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Counters {
    pub bytes_done: AtomicU64,
    /// The size of a URL download once the server said it (hub downloads take theirs from the plan).
    pub bytes_total: AtomicU64,
    pub files_done: AtomicU32,
    /// Files whose bytes on disk are being re-hashed before a resume.
    pub verifying: AtomicU32,
    /// How the files came (each way once).
    transports: std::sync::Mutex<Vec<String>>,
}

impl Counters {
    /// Notes a way the bytes came, once.
    pub fn note_transport(&self, transport: impl Into<String>) {
        let transport = transport.into();
        let mut all = self.transports.lock().unwrap();
        if !all.contains(&transport) {
            all.push(transport);
        }
    }

    /// The ways noted, for the download's details: Xet first, then HTTP, then HTTP taken after Xet failed.
    pub fn transport(&self) -> Option<String> {
        let mut all = self.transports.lock().unwrap().clone();
        all.sort_by_key(|t| match t.as_str() {
            "Xet" => 0,
            "HTTP" => 1,
            _ => 2,
        });
        (!all.is_empty()).then(|| all.join("; "))
    }
}

/// One speed limit shared by every transfer of a queue: each chunk books its time on a common clock.
#[derive(Default)]
pub(crate) struct RateLimiter {
    /// Bytes per second; 0 for no limit.
    rate: AtomicU64,
    next: std::sync::Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn set(&self, bytes_per_second: Option<u64>) {
        self.rate.store(bytes_per_second.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the user set a limit (then a slow transfer is what was asked for).
    pub fn is_set(&self) -> bool {
        self.rate.load(std::sync::atomic::Ordering::Relaxed) != 0
    }

    /// Waits as long as `n` bytes take at the limit, after the bytes booked before them.
    pub async fn take(&self, n: u64) {
        let rate = self.rate.load(std::sync::atomic::Ordering::Relaxed);
        if rate == 0 {
            return;
        }
        let wait = {
            let mut next = self.next.lock().unwrap();
            let now = Instant::now();
            let start = next.filter(|t| *t > now).unwrap_or(now);
            *next = Some(start + Duration::from_secs_f64(n as f64 / rate as f64));
            start.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Bytes per second over a sliding window.
pub(crate) struct Speed {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl Speed {
    pub fn new(window: Duration) -> Speed {
        Speed { window, samples: VecDeque::new() }
    }

    pub fn sample(&mut self, now: Instant, bytes: u64) -> u64 {
        self.samples.push_back((now, bytes));
        while self.samples.len() > 2 && now.duration_since(self.samples[0].0) > self.window {
            self.samples.pop_front();
        }
        let (t0, b0) = self.samples[0];
        let dt = now.duration_since(t0).as_secs_f64();
        if dt < 0.05 {
            return 0;
        }
        (bytes.saturating_sub(b0) as f64 / dt) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_is_bytes_over_the_window() {
        let mut s = Speed::new(Duration::from_secs(3));
        let t = Instant::now();
        assert_eq!(s.sample(t, 0), 0);
        assert_eq!(s.sample(t + Duration::from_secs(1), 1000), 1000);
        assert_eq!(s.sample(t + Duration::from_secs(2), 3000), 1500);
        // Old samples fall out of the window: the last 3 s moved 6000 - 1000 bytes.
        assert_eq!(s.sample(t + Duration::from_secs(4), 6000), 1666);
    }
}
