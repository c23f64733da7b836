//! Candle intervals: their names on the wire, their length, and which bucket a timestamp falls in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the nine candle intervals of the protocol. On the wire it is its name (`"s1"`, `"m5"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Interval {
    S1,
    S15,
    S30,
    M1,
    M5,
    M15,
    H1,
    H4,
    D1,
}

/// A string that is not one of the protocol's interval names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown interval `{0}`; expected one of s1, s15, s30, m1, m5, m15, h1, h4, d1")]
pub struct IntervalError(pub String);

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 9] = [
        Interval::S1,
        Interval::S15,
        Interval::S30,
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::H1,
        Interval::H4,
        Interval::D1,
    ];

    /// The wire name, e.g. `"m5"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Interval::S1 => "s1",
            Interval::S15 => "s15",
            Interval::S30 => "s30",
            Interval::M1 => "m1",
            Interval::M5 => "m5",
            Interval::M15 => "m15",
            Interval::H1 => "h1",
            Interval::H4 => "h4",
            Interval::D1 => "d1",
        }
    }

    /// Length of one candle in seconds.
    pub const fn duration_secs(self) -> i64 {
        match self {
            Interval::S1 => 1,
            Interval::S15 => 15,
            Interval::S30 => 30,
            Interval::M1 => 60,
            Interval::M5 => 300,
            Interval::M15 => 900,
            Interval::H1 => 3_600,
            Interval::H4 => 14_400,
            Interval::D1 => 86_400,
        }
    }

    /// Start of the bucket that contains `ts` (Unix seconds, UTC): `floor(ts / secs) * secs`.
    /// Uses floor division, so timestamps before 1970 land in the right bucket too.
    pub const fn bucket_start(self, ts: i64) -> i64 {
        let secs = self.duration_secs();
        ts.div_euclid(secs) * secs
    }

    /// A stable small number for this interval (its position in [`Interval::ALL`]), used in storage keys.
    pub const fn index(self) -> u8 {
        self as u8
    }

    /// The interval whose [`Interval::index`] is `index`.
    pub fn from_index(index: u8) -> Option<Interval> {
        Interval::ALL.get(usize::from(index)).copied()
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interval {
    type Err = IntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interval::ALL
            .into_iter()
            .find(|interval| interval.as_str() == s)
            .ok_or_else(|| IntervalError(s.to_owned()))
    }
}

impl TryFrom<String> for Interval {
    type Error = IntervalError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Interval> for &'static str {
    fn from(interval: Interval) -> Self {
        interval.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for interval in Interval::ALL {
            assert_eq!(interval.as_str().parse::<Interval>(), Ok(interval));
            assert_eq!(interval.to_string(), interval.as_str());
            assert_eq!(Interval::from_index(interval.index()), Some(interval));
        }
        assert_eq!(Interval::from_index(9), None);
    }

    #[test]
    fn unknown_name_is_an_error_that_names_it() {
        let err = "m2".parse::<Interval>().unwrap_err();
        assert!(err.to_string().contains("`m2`"), "{err}");
        assert!(
            "S1".parse::<Interval>().is_err(),
            "names are case-sensitive"
        );
    }

    #[test]
    fn bucket_start_floors_to_the_interval() {
        let ts = 1_700_000_123;
        assert_eq!(Interval::S1.bucket_start(ts), ts);
        assert_eq!(Interval::S15.bucket_start(ts), 1_700_000_115);
        assert_eq!(Interval::S30.bucket_start(ts), 1_700_000_100);
        assert_eq!(Interval::M1.bucket_start(ts), 1_700_000_100);
        assert_eq!(Interval::M5.bucket_start(ts), 1_700_000_100);
        assert_eq!(Interval::M15.bucket_start(ts), 1_700_000_100);
        assert_eq!(Interval::H1.bucket_start(ts), 1_699_999_200);
        assert_eq!(Interval::D1.bucket_start(ts), 1_699_920_000);
        assert_eq!(Interval::M1.bucket_start(-1), -60);
    }

    #[test]
    fn serde_uses_the_wire_name() {
        assert_eq!(serde_json::to_string(&Interval::H4).unwrap(), "\"h4\"");
        let parsed: Interval = serde_json::from_str("\"m15\"").unwrap();
        assert_eq!(parsed, Interval::M15);
        let err = serde_json::from_str::<Interval>("\"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown interval `x`"), "{err}");
    }
}
