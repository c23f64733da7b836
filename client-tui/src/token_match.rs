//! How a typed filter matches a token, in the symbol picker and the watchlist alike: by ticker, name or
//! address, ignoring case, anywhere in the text.

use kline_protocol::{NameText, TickerText};

/// Whether `filter` (any case) occurs in the token's ticker, name or address; an empty filter matches all.
pub fn token_matches(
    ticker: Option<&TickerText>,
    name: Option<&NameText>,
    address: &str,
    filter: &str,
) -> bool {
    let filter = filter.to_lowercase();
    [
        ticker.map(TickerText::as_str),
        name.map(NameText::as_str),
        Some(address),
    ]
    .into_iter()
    .flatten()
    .any(|text| text.to_lowercase().contains(&filter))
}
