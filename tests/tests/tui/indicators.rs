//! The terminal client's indicators (SMA, EMA, VWAP, Bollinger) in tmux, against a reference computed
//! from the candles the test ingests.

use std::collections::BTreeMap;
use std::time::Duration;

use kline_tests::ServerProcess;
use kline_tests::indicator_reference::{MidnightMarket, at, parse_price, shown_as};
use kline_tests::tmux::Tmux;

/// The legend row of the indicators (`--sma 5 --ema 10 --bollinger 20`, VWAP by default), parsed: each
/// label with its values (`None` for `—`); `None` while the row is not drawn.
fn indicator_legend(screen: &str) -> Option<BTreeMap<String, Vec<Option<f64>>>> {
    let row = screen.lines().nth(1)?;
    if !row.trim_start().starts_with("SMA5 ") {
        return None;
    }
    let mut legend: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    let mut label = String::new();
    for token in row.split_whitespace() {
        if token.starts_with(|c: char| c.is_ascii_uppercase()) {
            label = token.to_owned();
            legend.insert(label.clone(), Vec::new());
        } else {
            legend
                .get_mut(&label)
                .expect("a value after a label")
                .push(parse_price(token));
        }
    }
    Some(legend)
}

/// Waits until the crosshair is on candle `i` of the market (its time in the header) with every value of
/// the legend equal to the reference at `i`; the panic names the value that differs.
fn check_legend_at(term: &Tmux, market: &MidnightMarket, i: usize) {
    let time = market.candles[i].time.rem_euclid(86_400);
    let clock = format!(
        " {:02}:{:02}:{:02} ",
        time / 3600,
        time / 60 % 60,
        time % 60
    );
    let closes = market.closes();
    let bands = at::bollinger(&closes, 20, 2.0, i);
    let expected = [
        ("SMA5", vec![at::sma(&closes, 5, i)]),
        ("EMA10", vec![at::ema(&closes, 10, i)]),
        ("VWAP", vec![at::vwap(&market.candles, i)]),
        ("BB20", (0..3).map(|n| bands.map(|b| b[n])).collect()),
    ];
    term.wait_for_ok(
        &format!("the legend of candle {i} ({clock}) equal to the reference"),
        &|screen| {
            if !screen.lines().next().is_some_and(|l| l.contains(&clock)) {
                return Err("the crosshair is elsewhere".into());
            }
            let legend = indicator_legend(screen).ok_or("no legend")?;
            for (label, values) in &expected {
                let shown = legend.get(*label).ok_or(format!("no {label}"))?;
                if shown.len() != values.len() {
                    return Err(format!("{label}: {shown:?}"));
                }
                for (shown, value) in shown.iter().zip(values) {
                    shown_as(*shown, *value, 5).map_err(|err| format!("{label}: {err}"))?;
                }
            }
            Ok(())
        },
    );
}

/// The indicators in a real terminal, on a market the test ingests (the hour around a UTC midnight):
/// `i` draws their lines and a legend, and the legend's values under the crosshair equal the reference
/// computed from the stored candles — at the newest candle, at the first of a UTC day (the VWAP restarts
/// there: it is that candle's typical price), the last of the day before, and an early candle where the
/// longer indicators are not defined yet.
#[test]
fn indicator_legend_under_the_crosshair_equals_the_reference_in_tmux() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("db"),
        &["--set", "source.simulator.enabled=false"],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let market = runtime.block_on(MidnightMarket::post(&server));
    let args = format!(
        "--symbol {} --interval m1 --sma 5 --ema 10 --bollinger 20",
        market.mint
    );
    let command = super::interactive_command(&server, dir.path(), &args);
    let term = Tmux::start("kline-tui-indicators", 130, 30, &command);
    term.wait_for("the m1 chart", &|s| {
        s.contains("● connected") && s.contains('█')
    });
    let is_braille = |c: char| ('⠁'..='⣿').contains(&c);
    term.send_keys(&["i"]);
    term.wait_for("the indicator legend and lines", &|s| {
        indicator_legend(s).is_some() && s.chars().filter(|c| is_braille(*c)).count() > 60
    });

    term.send_keys(&["c"]);
    let newest = market.candles.len() - 1;
    check_legend_at(&term, &market, newest);
    let midnight = market.midnight_index();
    let first_of_day = market.candles[midnight];
    let typical = (first_of_day.high + first_of_day.low + first_of_day.close) / 3.0;
    let vwap = at::vwap(&market.candles, midnight).unwrap();
    assert!(
        (vwap - typical).abs() <= 1e-12 * typical,
        "the reference restarts the VWAP at midnight: {vwap:e} vs {typical:e}"
    );
    for (target, presses) in [
        (midnight, newest - midnight),
        (midnight - 1, 1),
        (2, midnight - 3),
    ] {
        term.send_keys(&vec!["Left"; presses]);
        check_legend_at(&term, &market, target);
    }

    term.send_keys(&["i"]);
    term.wait_for("the indicators hidden", &|s| {
        indicator_legend(s).is_none() && !s.chars().any(is_braille)
    });
    term.send_keys(&["q"]);
    term.wait_for_exit(Duration::from_secs(5));
}
