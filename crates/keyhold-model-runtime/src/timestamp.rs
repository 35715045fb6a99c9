//! The `timestamp` wire type.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A KMS `timestamp`: seconds since the Unix epoch (fractions allowed), a JSON number on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Timestamp(pub f64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Seconds since the epoch.
    pub fn epoch_seconds(self) -> f64 {
        self.0
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(d.as_secs_f64()),
            Err(e) => Timestamp(-e.duration().as_secs_f64()),
        }
    }
}

impl From<Timestamp> for SystemTime {
    /// Non-finite or out-of-range values saturate to the epoch.
    fn from(t: Timestamp) -> Self {
        let d = Duration::try_from_secs_f64(t.0.abs()).unwrap_or_default();
        let r = if t.0 >= 0.0 {
            UNIX_EPOCH.checked_add(d)
        } else {
            UNIX_EPOCH.checked_sub(d)
        };
        r.unwrap_or(UNIX_EPOCH)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Whole seconds are written without a fraction (`1700000000`, not `1700000000.0`).
        if self.0.fract() == 0.0 && self.0.abs() < 9.0e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch seconds as a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(v as f64))
            }
        }
        d.deserialize_f64(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_number_round_trip() {
        assert_eq!(
            serde_json::to_string(&Timestamp(1700000000.0)).unwrap(),
            "1700000000"
        );
        assert_eq!(serde_json::to_string(&Timestamp(1.5)).unwrap(), "1.5");
        assert_eq!(
            serde_json::from_str::<Timestamp>("1.5").unwrap(),
            Timestamp(1.5)
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>("17").unwrap(),
            Timestamp(17.0)
        );
        assert!(serde_json::from_str::<Timestamp>("\"17\"").is_err());
        let t = SystemTime::from(Timestamp(f64::NAN));
        assert_eq!(t, UNIX_EPOCH);
        let back = Timestamp::from(SystemTime::from(Timestamp(12.25)));
        assert_eq!(back, Timestamp(12.25));
    }
}
