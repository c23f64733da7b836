//! The retention the soak asks the server for, and durations on the command line (`90`, `90s`, `20m`,
//! `1h`, `2d`): the same spelling as the server's `[retention]` keys, so a window is passed on as written.

use std::time::Duration;

/// The candle intervals the server can keep (`kline.intervals`): `[retention.candles]` names each.
const CANDLE_INTERVALS: [&str; 9] = ["s1", "s15", "s30", "m1", "m5", "m15", "h1", "h4", "d1"];

/// What the soak passes to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// No `[retention]` keys at all: the server's own defaults (a server without the section rejects
    /// them, so this is how the soak runs against one).
    None,
    /// Events, trades and every candle interval kept for this long, checked every `check_every`.
    Window(Duration),
}

impl Retention {
    /// `none`, or a duration (`2m`).
    pub fn parse(text: &str) -> Result<Retention, String> {
        match text.trim() {
            "none" => Ok(Retention::None),
            other => parse_duration(other).map(Retention::Window),
        }
    }

    pub fn window(&self) -> Option<Duration> {
        match self {
            Retention::None => None,
            Retention::Window(window) => Some(*window),
        }
    }

    /// The server's `--set` overrides: `retention.events`, `retention.trades`, `retention.check_every`
    /// and `retention.candles.<interval>` for every interval.
    pub fn server_overrides(&self, check_every: Duration) -> Vec<String> {
        let Retention::Window(window) = self else {
            return Vec::new();
        };
        let window = format_duration(*window);
        let mut sets = vec![
            format!("retention.events={window}"),
            format!("retention.trades={window}"),
            format!("retention.check_every={}", format_duration(check_every)),
        ];
        sets.extend(
            CANDLE_INTERVALS
                .iter()
                .map(|interval| format!("retention.candles.{interval}={window}")),
        );
        sets.into_iter()
            .flat_map(|set| ["--set".to_owned(), set])
            .collect()
    }
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retention::None => f.write_str("none"),
            Retention::Window(window) => f.write_str(&format_duration(*window)),
        }
    }
}

/// `90` (seconds), `90s`, `20m`, `1h` or `2d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 20m, 1h or 2d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(count * seconds))
}

/// [`parse_duration`] in whole seconds, for the bench's `--duration`.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    parse_duration(text).map(|d| d.as_secs())
}

/// The largest whole unit: `120 s` is `2m`, `90 s` stays `90s`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0 => "0s".to_owned(),
        _ if secs.is_multiple_of(86_400) => format!("{}d", secs / 86_400),
        _ if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
        _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_servers_spelling_and_print_back_the_same() {
        for (text, secs) in [
            ("90", 90),
            ("90s", 90),
            ("2m", 120),
            ("1h", 3600),
            ("30d", 2_592_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(48 * 3600)), "2d");
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("5ms").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn a_window_sets_events_trades_the_check_and_every_candle_interval() {
        let sets = Retention::parse("2m")
            .unwrap()
            .server_overrides(Duration::from_secs(10));
        let values: Vec<&str> = sets.iter().skip(1).step_by(2).map(String::as_str).collect();
        assert!(sets.iter().step_by(2).all(|flag| flag == "--set"));
        assert_eq!(
            values[..3],
            [
                "retention.events=2m",
                "retention.trades=2m",
                "retention.check_every=10s"
            ]
        );
        assert!(values.contains(&"retention.candles.s1=2m"));
        assert!(values.contains(&"retention.candles.d1=2m"));
        assert_eq!(values.len(), 3 + CANDLE_INTERVALS.len());
        assert!(
            Retention::None
                .server_overrides(Duration::from_secs(10))
                .is_empty()
        );
    }
}
