//! The trades pane: the mint's latest trades, newest on top (toggled with `t`).

use std::collections::VecDeque;

use chrono::{DateTime, Local, Utc};
use kline_protocol::{Side, Trade};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use super::chart::{DOWN, UP};
use super::price::format_price;

/// Columns the pane takes, borders included.
pub const TRADES_WIDTH: u16 = 36;

pub struct TradesPane<'a> {
    /// Newest first.
    pub trades: &'a VecDeque<Trade>,
    pub utc: bool,
}

impl Widget for &TradesPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let rows = area.height.saturating_sub(2) as usize;
        let lines: Vec<Line> = if self.trades.is_empty() {
            vec![Line::from("no trades yet")]
        } else {
            self.trades
                .iter()
                .take(rows)
                .map(|trade| trade_line(trade, self.utc))
                .collect()
        };
        Paragraph::new(lines)
            .block(Block::default().borders(Borders::ALL).title(" trades "))
            .render(area, buf);
    }
}

/// `HH:MM:SS buy   0.0₇2812    1.500◎`: time, side (coloured), price, SOL amount.
fn trade_line(trade: &Trade, utc: bool) -> Line<'static> {
    let (side, color) = match trade.side {
        Side::Buy => ("buy ", UP),
        Side::Sell => ("sell", DOWN),
    };
    Line::from(vec![
        Span::raw(format!("{} ", clock(trade.time, utc))),
        Span::styled(side, Style::new().fg(color)),
        Span::raw(format!(
            " {:>9} {:>8}◎",
            format_price(trade.price, 4),
            format_sol(trade.sol_amount)
        )),
    ])
}

fn clock(time_ms: i64, utc: bool) -> String {
    let Some(at) = DateTime::<Utc>::from_timestamp_millis(time_ms) else {
        return "--:--:--".into();
    };
    if utc {
        at.format("%H:%M:%S").to_string()
    } else {
        at.with_timezone(&Local).format("%H:%M:%S").to_string()
    }
}

fn format_sol(sol: f64) -> String {
    if sol >= 1000.0 {
        format!("{:.0}", sol)
    } else {
        format!("{sol:.3}")
    }
}

#[cfg(test)]
mod tests {
    use kline_protocol::{Symbol, TradeId, TradeKind};

    use super::*;

    fn trade(n: u8, side: Side, sol_amount: f64) -> Trade {
        let id = TradeId::new([n; 64], 0);
        Trade {
            signature: id.signature().to_owned(),
            id,
            symbol: Symbol::from_bytes(&[5; 32]),
            time: 1_764_000_123_000 + i64::from(n) * 1000,
            slot: u64::from(n),
            tx_index: Some(0),
            event_index: 0,
            event_type: TradeKind::BuySell,
            side,
            price: 2.8123e-8,
            token_amount: 1.0,
            sol_amount,
            payer: Symbol::from_bytes(&[9; 32]),
        }
    }

    #[test]
    fn newest_trade_on_top_with_its_side_price_and_sol() {
        let trades: VecDeque<Trade> = [trade(2, Side::Sell, 0.25), trade(1, Side::Buy, 1500.0)]
            .into_iter()
            .collect();
        let pane = TradesPane {
            trades: &trades,
            utc: true,
        };
        let mut buffer = Buffer::empty(Rect::new(0, 0, TRADES_WIDTH, 5));
        (&pane).render(buffer.area, &mut buffer);
        let text: Vec<String> = (0..5)
            .map(|y| {
                (0..TRADES_WIDTH)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect()
            })
            .collect();
        assert!(text[0].contains(" trades "), "{text:?}");
        assert_eq!(text[1], "│16:02:05 sell  0.0₇2812    0.250◎ │");
        assert!(text[2].starts_with("│16:02:04 buy "), "{text:?}");
        assert!(text[2].contains("1500◎"), "{text:?}");
        assert_eq!(buffer[(10, 1)].fg, DOWN);
        assert_eq!(buffer[(10, 2)].fg, UP);
    }
}
