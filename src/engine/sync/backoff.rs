//! Exponential back-off with jitter, for retrying items and for probing an
//! unreachable authority.

use crate::engine::config::RetryConfig;
use rand::Rng;
use std::time::Duration;

/// The wait after the `failures`-th failure (1-based): base × 2^(n-1),
/// capped at max, then jittered down by up to half ("equal jitter"), so
/// many items failing together do not come back together.
pub fn delay(retry: &RetryConfig, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(40) as i32;
    let full = (retry.base_seconds * 2f64.powi(exp)).min(retry.max_seconds);
    let jitter: f64 = rand::thread_rng().gen_range(0.5..=1.0);
    Duration::from_secs_f64((full * jitter).max(0.001))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let r = RetryConfig {
            base_seconds: 1.0,
            max_seconds: 10.0,
        };
        for _ in 0..50 {
            let d1 = delay(&r, 1).as_secs_f64();
            assert!((0.5..=1.0).contains(&d1), "{d1}");
            let d3 = delay(&r, 3).as_secs_f64();
            assert!((2.0..=4.0).contains(&d3), "{d3}");
            let d9 = delay(&r, 9).as_secs_f64();
            assert!((5.0..=10.0).contains(&d9), "{d9}");
        }
    }
}
