//! The custom key store request quota: a token bucket per custom key store.
//!
//! Each store gets `rate` tokens per second and can hold up to `rate` (one second of burst);
//! every cryptographic operation on a key in the store takes one. Counted per Keyhold node.

use keyhold_kms_model::Exception;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::KmsError;

/// AWS's message for a request over a request quota.
pub(crate) const THROTTLED_MESSAGE: &str =
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by custom key store id.
pub(crate) struct Throttle {
    rate: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Throttle {
    /// `rate` requests per second per store (0 is treated as 1).
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `store_id`, or `ThrottlingException`.
    pub(crate) fn take(&self, store_id: &str) -> Result<(), KmsError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(store_id.to_string()).or_insert(Bucket {
            tokens: self.rate,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(KmsError::new(
                Exception::Throttling,
                THROTTLED_MESSAGE.into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_then_refill() {
        let t = Throttle::new(3);
        for _ in 0..3 {
            assert!(t.take("cks-a").is_ok());
        }
        let e = t.take("cks-a").unwrap_err();
        assert_eq!(e.exception_name(), "ThrottlingException");
        assert_eq!(e.to_string(), THROTTLED_MESSAGE);
        // Other stores have their own bucket.
        assert!(t.take("cks-b").is_ok());
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert!(t.take("cks-a").is_ok());
    }
}
