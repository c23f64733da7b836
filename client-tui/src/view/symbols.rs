//! How a symbol is shown: the chart's title (`TICKER · name (3bue…qAZQ)`) and the symbol picker, which
//! narrows the known symbols by ticker, name or address as you type.
//!
//! Names come from the server already sanitised, and the protocol's [`TokenText`](kline_protocol::TokenText)
//! sanitises again whatever is parsed into it (no control character reaches the terminal).

use kline_protocol::{NameText, Symbol, SymbolName, TickerText};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use super::price::format_price;
use crate::token_match::token_matches;

/// Longest name shown in a title, in characters (a name may have 64).
const TITLE_NAME_CHARS: usize = 32;

/// A known symbol, for the picker.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolEntry {
    pub symbol: String,
    pub ticker: Option<TickerText>,
    pub name: Option<NameText>,
    pub last_price: f64,
}

impl SymbolEntry {
    /// Whether the entry matches `filter` in its ticker, name or address.
    fn matches(&self, filter: &str) -> bool {
        token_matches(
            self.ticker.as_ref(),
            self.name.as_ref(),
            &self.symbol,
            filter,
        )
    }

    /// The entry as `connection_success` would name it, if its symbol is valid.
    pub fn symbol_name(&self) -> Option<SymbolName> {
        let symbol = Symbol::parse(&self.symbol).ok()?;
        Some(SymbolName::new(
            symbol,
            self.ticker.clone(),
            self.name.clone(),
        ))
    }
}

/// The symbol picker's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Picker {
    pub filter: String,
    pub symbols: Vec<SymbolEntry>,
    pub selected: usize,
    pub message: Option<String>,
}

impl Picker {
    pub fn matches(&self) -> Vec<&SymbolEntry> {
        self.symbols
            .iter()
            .filter(|s| s.matches(&self.filter))
            .collect()
    }
}

/// `3bue6…qAZQ`: a mint address's first five and last four characters (the whole of a short one).
pub fn short_mint(symbol: &str) -> String {
    if symbol.len() <= 12 {
        symbol.to_owned()
    } else {
        format!("{}…{}", &symbol[..5], &symbol[symbol.len() - 4..])
    }
}

/// The chart's title: `TICKER · name (3bue…qAZQ)`, or what of it is known; the short address alone
/// without a name.
pub fn chart_title(symbol: &Symbol, name: Option<&SymbolName>) -> String {
    let text = symbol.as_str();
    let ticker = name.and_then(|n| n.ticker.as_ref()).map(TickerText::as_str);
    let long_name = name.and_then(|n| n.name.as_ref()).map(|n| {
        let mut shown: String = n.as_str().chars().take(TITLE_NAME_CHARS).collect();
        if n.as_str().chars().count() > TITLE_NAME_CHARS {
            shown.push('…');
        }
        shown
    });
    let label = match (ticker, long_name) {
        (Some(ticker), Some(name)) => format!("{ticker} · {name}"),
        (Some(ticker), None) => ticker.to_owned(),
        (None, Some(name)) => name,
        (None, None) => return short_mint(text),
    };
    format!("{label} ({}…{})", &text[..4], &text[text.len() - 4..])
}

/// The longest of the title's forms that fits `max_chars`: `TICKER · name (3bue…qAZQ)`, then
/// `TICKER (3bue…qAZQ)` (or the name's, without a ticker), then the short address whatever its length.
pub fn fitted_title(symbol: &Symbol, name: Option<&SymbolName>, max_chars: usize) -> String {
    let full = chart_title(symbol, name);
    if full.chars().count() <= max_chars {
        return full;
    }
    let ticker_only = name.map(|n| {
        let short = SymbolName::new(
            symbol.clone(),
            n.ticker.clone(),
            if n.ticker.is_some() {
                None
            } else {
                n.name.clone()
            },
        );
        chart_title(symbol, Some(&short))
    });
    match ticker_only {
        Some(title) if title.chars().count() <= max_chars => title,
        _ => short_mint(symbol.as_str()),
    }
}

pub fn render_picker(picker: &Picker, area: Rect, buf: &mut Buffer) {
    let box_area = super::centered(area, 72, area.height.saturating_sub(2).min(20));
    Clear.render(box_area, buf);
    let mut lines = vec![Line::from(format!(
        "filter (ticker, name, address): {}▏",
        picker.filter
    ))];
    if let Some(message) = &picker.message {
        lines.push(Line::styled(
            message.clone(),
            Style::new().fg(Color::Yellow),
        ));
    }
    for (index, entry) in picker.matches().into_iter().enumerate() {
        let style = if index == picker.selected {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        let ticker = entry.ticker.as_ref().map_or("", TickerText::as_str);
        let name: String = entry
            .name
            .as_ref()
            .map_or("", NameText::as_str)
            .chars()
            .take(24)
            .collect();
        lines.push(Line::styled(
            format!(
                "{ticker:<10} {name:<24} {:<11} {}",
                short_mint(&entry.symbol),
                format_price(entry.last_price, super::PRICE_DIGITS)
            ),
            style,
        ));
    }
    Paragraph::new(lines)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" symbols (Enter choose, Esc close) "),
        )
        .render(box_area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(symbol: &Symbol, ticker: &str, name: &str) -> SymbolEntry {
        SymbolEntry {
            symbol: symbol.to_string(),
            ticker: TickerText::new(ticker),
            name: NameText::new(name),
            last_price: 1e-8,
        }
    }

    #[test]
    fn the_picker_matches_ticker_name_or_address_ignoring_case() {
        let otter = Symbol::from_bytes(&[1; 32]);
        let lynx = Symbol::from_bytes(&[2; 32]);
        let picker = |filter: &str| Picker {
            filter: filter.into(),
            symbols: vec![
                entry(&otter, "OTTER", "Simulated Otter"),
                entry(&lynx, "LYNX", "Simulated Lynx"),
            ],
            ..Picker::default()
        };
        let found = |filter: &str| -> Vec<String> {
            picker(filter)
                .matches()
                .iter()
                .map(|e| e.symbol.clone())
                .collect()
        };
        assert_eq!(found("ott"), [otter.to_string()]);
        assert_eq!(found("simulated lynx"), [lynx.to_string()]);
        assert_eq!(
            found(&lynx.as_str()[..6].to_lowercase()),
            [lynx.to_string()]
        );
        assert_eq!(found("").len(), 2);
        assert!(found("zebra").is_empty());
    }

    #[test]
    fn titles_read_ticker_dot_name_and_the_short_address() {
        let symbol = Symbol::parse("3bue6LqFaVYTXF5YNaTZHvT7KJpjRc1VffbhbaSXqAZQ").unwrap();
        let named = SymbolName::new(
            symbol.clone(),
            TickerText::new("PET"),
            NameText::new("Spin Pet"),
        );
        assert_eq!(
            chart_title(&symbol, Some(&named)),
            "PET · Spin Pet (3bue…qAZQ)"
        );
        let ticker_only = SymbolName::new(symbol.clone(), TickerText::new("PET"), None);
        assert_eq!(chart_title(&symbol, Some(&ticker_only)), "PET (3bue…qAZQ)");
        assert_eq!(chart_title(&symbol, None), "3bue6…qAZQ");
        assert_eq!(
            fitted_title(&symbol, Some(&named), 26),
            "PET · Spin Pet (3bue…qAZQ)"
        );
        assert_eq!(fitted_title(&symbol, Some(&named), 25), "PET (3bue…qAZQ)");
        assert_eq!(fitted_title(&symbol, Some(&named), 5), "3bue6…qAZQ");
        let long = SymbolName::new(symbol.clone(), None, NameText::new(&"n".repeat(64)));
        assert_eq!(
            chart_title(&symbol, Some(&long)),
            format!("{}… (3bue…qAZQ)", "n".repeat(32))
        );
    }
}
