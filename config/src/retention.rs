//! `[retention]`: how long each kind of stored record is kept, and how often the retention pass runs.
//!
//! A period is a duration as text (`"90s"`, `"15m"`, `"48h"`, `"30d"`, humantime's syntax) or `"forever"`,
//! so keeping everything is an explicit choice. What bounds what, and the defaults' disk sizes:
//! docs/operations.md.

use std::collections::BTreeMap;
use std::time::Duration;

use kline_protocol::Interval;
use serde::{Deserialize, Deserializer, de};

/// How long records of one kind are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Forever,
    For(Duration),
}

impl Keep {
    /// Records older than this (Unix milliseconds) are past the window at `now_ms`; `None`: kept forever.
    pub fn cutoff_ms(self, now_ms: i64) -> Option<i64> {
        match self {
            Keep::Forever => None,
            Keep::For(period) => Some(now_ms.saturating_sub(period.as_millis() as i64)),
        }
    }

    fn longer_than(self, other: Keep) -> bool {
        match (self, other) {
            (Keep::Forever, Keep::Forever) => false,
            (Keep::Forever, Keep::For(_)) => true,
            (Keep::For(_), Keep::Forever) => false,
            (Keep::For(a), Keep::For(b)) => a > b,
        }
    }
}

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim() == "forever" {
            return Ok(Keep::Forever);
        }
        match humantime::parse_duration(&text) {
            Ok(period) if !period.is_zero() => Ok(Keep::For(period)),
            Ok(_) => Err(de::Error::custom(
                "a retention of 0 would delete everything; write \"forever\" to keep everything",
            )),
            Err(err) => Err(de::Error::custom(format!(
                "expected a duration such as \"30d\", \"48h\" or \"15m\", or \"forever\"; {text:?}: {err}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Every stored event (a token's `TokenCreated` event is kept forever: it names the token).
    pub events: Keep,
    /// The trade index (`trades` requests, the trade feed's history). At most `events`: a trade is read
    /// from its event.
    pub trades: Keep,
    /// Candles, per interval; an interval not listed is kept forever.
    #[serde(default)]
    pub candles: BTreeMap<Interval, Keep>,
    /// How often the retention pass runs.
    #[serde(deserialize_with = "duration")]
    pub check_every: Duration,
}

impl RetentionConfig {
    /// Why the settings cannot work together, if they cannot.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.trades.longer_than(self.events) {
            return Some((
                "retention.trades",
                "must not be longer than retention.events: a trade is read from its event",
            ));
        }
        if self.check_every.is_zero() {
            return Some(("retention.check_every", "must be positive"));
        }
        None
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|err| {
        de::Error::custom(format!(
            "expected a duration such as \"10m\" or \"30s\"; {text:?}: {err}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RetentionConfig, String> {
        toml::from_str(text).map_err(|err| err.to_string())
    }

    #[test]
    fn periods_are_durations_or_forever() {
        let config = parse(
            "events = \"30d\"\ntrades = \"48h\"\ncheck_every = \"10m\"\n[candles]\ns1 = \"2m\"\nd1 = \"forever\"\n",
        )
        .unwrap();
        assert_eq!(config.events, Keep::For(Duration::from_secs(30 * 86_400)));
        assert_eq!(config.trades, Keep::For(Duration::from_secs(48 * 3600)));
        assert_eq!(
            config.candles[&Interval::S1],
            Keep::For(Duration::from_secs(120))
        );
        assert_eq!(config.candles[&Interval::D1], Keep::Forever);
        assert_eq!(config.check_every, Duration::from_secs(600));
        assert_eq!(config.problem(), None);
        assert_eq!(
            Keep::For(Duration::from_secs(2)).cutoff_ms(10_000),
            Some(8_000)
        );
        assert_eq!(Keep::Forever.cutoff_ms(10_000), None);
    }

    #[test]
    fn bad_periods_and_trades_outliving_events_are_refused_with_the_reason() {
        let err = parse("events = \"soon\"\ntrades = \"1d\"\ncheck_every = \"1m\"\n").unwrap_err();
        assert!(err.contains("expected a duration"), "{err}");
        let err = parse("events = \"0s\"\ntrades = \"1d\"\ncheck_every = \"1m\"\n").unwrap_err();
        assert!(err.contains("write \"forever\""), "{err}");
        let config =
            parse("events = \"1d\"\ntrades = \"forever\"\ncheck_every = \"1m\"\n").unwrap();
        assert_eq!(config.problem().unwrap().0, "retention.trades");
    }
}
