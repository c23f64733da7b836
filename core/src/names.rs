//! [`TokenName`]: the ticker, name and URI a mint's `TokenCreatedEvent` announced, sanitised
//! ([`kline_protocol::token`]). Where names are stored and kept in memory is the pipeline's `names` module.

use kline_protocol::{NameText, TickerText, UriText};

use crate::event::TokenCreated;

/// A token's sanitised texts. At least one is present (a token whose texts all sanitise to nothing has no
/// name: [`TokenName::from_event`] gives `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName {
    pub ticker: Option<TickerText>,
    pub name: Option<NameText>,
    pub uri: Option<UriText>,
}

impl TokenName {
    /// The texts of a `TokenCreated` event, sanitised; `None` if nothing is left of them.
    pub fn from_event(event: &TokenCreated) -> Option<TokenName> {
        TokenName::from_texts(&event.symbol, &event.name, &event.uri)
    }

    /// `ticker` is the IDL's `symbol`.
    pub fn from_texts(ticker: &str, name: &str, uri: &str) -> Option<TokenName> {
        let name = TokenName {
            ticker: TickerText::new(ticker),
            name: NameText::new(name),
            uri: UriText::new(uri),
        };
        (name.ticker.is_some() || name.name.is_some() || name.uri.is_some()).then_some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_name_is_sanitised_and_an_empty_one_is_none() {
        let hostile = format!("<script>alert(1)</script>\u{1b}[2J{}", "x".repeat(10_000));
        let name = TokenName::from_texts("\u{202E}PET\n", &hostile, "ipfs://Qm\u{0}x").unwrap();
        assert_eq!(name.ticker.unwrap().as_str(), "PET");
        let text = name.name.unwrap();
        assert!(text.as_str().starts_with("<script>alert(1)</script>[2Jxxx"));
        assert_eq!(
            text.as_str().chars().count(),
            kline_protocol::token::MAX_NAME_CHARS
        );
        assert_eq!(name.uri.unwrap().as_str(), "ipfs://Qmx");
        assert_eq!(TokenName::from_texts(" ", "\u{7}", ""), None);
    }
}
