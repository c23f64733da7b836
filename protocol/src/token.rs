//! A token's own words about itself: the ticker (the IDL's `symbol`), the name and the metadata URI that
//! its `TokenCreatedEvent` announced, made safe to show.
//!
//! Anyone can create a Spin Pet token with any name, so these strings are hostile input: a 10 KB name, an
//! ANSI escape that repaints a terminal, a right-to-left override that reverses what follows, `<script>`.
//! A [`TokenText`] can only be built through [`TokenText::new`] (or by deserialising, which runs it), which:
//!
//! 1. removes control characters (Unicode `Cc`: C0, DEL, C1, so no escape sequence survives) and the
//!    invisible formatting characters that reorder or hide text (bidirectional overrides and isolates,
//!    zero-width spaces and joiners, the byte-order mark);
//! 2. turns every run of whitespace into one space and trims both ends;
//! 3. keeps at most `MAX` characters ([`MAX_TICKER_CHARS`], [`MAX_NAME_CHARS`], [`MAX_URI_CHARS`]);
//! 4. gives `None` when nothing is left.
//!
//! It is still text, never markup: a client shows it as text (a browser through `textContent`, never
//! `innerHTML`), and a URI is not checked to be a URL (a client that links it checks its scheme).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::Symbol;

/// Longest ticker kept, in characters (Metaplex metadata allows 10 bytes; room for what others allow).
pub const MAX_TICKER_CHARS: usize = 16;
/// Longest name kept, in characters (Metaplex metadata allows 32 bytes).
pub const MAX_NAME_CHARS: usize = 64;
/// Longest metadata URI kept, in characters (Metaplex metadata allows 200 bytes).
pub const MAX_URI_CHARS: usize = 256;

/// Sanitised text of at most `MAX` characters (see the module's rules); never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TokenText<const MAX: usize>(String);

/// A token's ticker, e.g. `PET`.
pub type TickerText = TokenText<MAX_TICKER_CHARS>;
/// A token's name, e.g. `Spin Pet`.
pub type NameText = TokenText<MAX_NAME_CHARS>;
/// A token's metadata URI, as text.
pub type UriText = TokenText<MAX_URI_CHARS>;

impl<const MAX: usize> TokenText<MAX> {
    /// `raw` made safe to show, or `None` if nothing of it is left.
    pub fn new(raw: &str) -> Option<TokenText<MAX>> {
        let text = sanitize(raw, MAX);
        (!text.is_empty()).then_some(TokenText(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Display for TokenText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for TokenText<MAX> {
    /// Sanitises what it reads (a text that sanitises to nothing is an error: absent values are `null`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        TokenText::new(&raw).ok_or_else(|| serde::de::Error::custom("empty token text"))
    }
}

/// Characters that are not shown but change how the text around them is shown (Unicode `Cf` members that
/// reorder, join or hide text).
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' // soft hyphen
        | '\u{061C}' // Arabic letter mark
        | '\u{180E}' // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
        | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // bidirectional isolates
        | '\u{FEFF}' // byte-order mark
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
    )
}

/// `raw` under the module's rules 1–3 (possibly empty).
pub fn sanitize(raw: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    let mut chars = 0;
    let mut space_pending = false;
    for c in raw.chars() {
        if chars >= max_chars {
            break;
        }
        if c.is_whitespace() {
            space_pending = chars > 0;
            continue;
        }
        if c.is_control() || is_invisible_format(c) {
            continue;
        }
        if space_pending {
            space_pending = false;
            if chars + 1 >= max_chars {
                break;
            }
            out.push(' ');
            chars += 1;
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// A mint with the ticker and name its token announced (`null` when the server never saw its
/// `TokenCreatedEvent`), as `connection_success` lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SymbolName {
    pub symbol: Symbol,
    pub ticker: Option<TickerText>,
    pub name: Option<NameText>,
}

impl SymbolName {
    pub fn new(symbol: Symbol, ticker: Option<TickerText>, name: Option<NameText>) -> SymbolName {
        SymbolName {
            symbol,
            ticker,
            name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_invisible_characters_go_whitespace_folds_and_ends_are_trimmed() {
        assert_eq!(sanitize("  Spin\t\n Pet  ", 64), "Spin Pet");
        assert_eq!(sanitize("\x1b[31mRED\x1b[0m", 64), "[31mRED[0m");
        assert_eq!(
            sanitize("a\u{202E}b\u{200B}c\u{FEFF}\u{7}\u{9B}d", 64),
            "abcd"
        );
        assert_eq!(
            sanitize("<script>alert(1)</script>", 64),
            "<script>alert(1)</script>"
        );
        assert_eq!(sanitize("猫 🐱 Pet", 64), "猫 🐱 Pet");
        assert_eq!(sanitize("\u{0} \u{1f}", 64), "");
        assert_eq!(TickerText::new(" \u{202E} "), None);
    }

    #[test]
    fn at_most_max_characters_never_ending_in_a_space() {
        let long = "é".repeat(10_000);
        assert_eq!(
            sanitize(&long, MAX_NAME_CHARS).chars().count(),
            MAX_NAME_CHARS
        );
        assert_eq!(sanitize("abc def", 4), "abc");
        assert_eq!(sanitize("abc def", 5), "abc d");
        let ticker = TickerText::new(&"X".repeat(100)).unwrap();
        assert_eq!(ticker.as_str().len(), MAX_TICKER_CHARS);
    }

    #[test]
    fn deserialising_sanitises_too() {
        let name: NameText = serde_json::from_str("\"  \\u001b]0;owned\\u0007Pet \"").unwrap();
        assert_eq!(name.as_str(), "]0;ownedPet");
        assert!(serde_json::from_str::<NameText>("\"\\u200b\"").is_err());
        let entry: SymbolName = serde_json::from_str(
            r#"{"symbol":"b4zeKt5mRRSyWiokzX63ww9FDZSkp6RrDjnbdtGFRbP","ticker":null,"name":"A\tB"}"#,
        )
        .unwrap();
        assert_eq!(entry.ticker, None);
        assert_eq!(entry.name.unwrap().as_str(), "A B");
    }
}
