//! The chart page's indicators (SMA, EMA, VWAP, Bollinger) against a reference computed from the candles
//! the test ingests: the page's pure formulas, its line series, its legend under the mouse, its toggles.

use std::time::Duration;

use kline_tests::KlineServer;
use kline_tests::indicator_reference::{MidnightMarket, assert_shown, at, parse_price};
use kline_tests::webdriver::Browser;
use serde_json::Value;

use super::{QuietServerPage, page, target_dir, wait_for};

/// The page's indicator state: the lines the chart holds, the legend rows, and the candle legend.
async fn indicators(browser: &Browser) -> Value {
    browser
        .execute(
            "const k = window.__kline; if (!k) return null;
             return {series: k.indicatorSeries, legend: k.indicatorLegend,
                     candleLegend: document.getElementById('legend').textContent,
                     query: location.search};",
        )
        .await
}

/// The values of one legend row (`SMA 5 0.0₇25012`, `BB 20 2 upper middle lower`): the words after the
/// label and its settings.
fn legend_values(state: &Value, kind: &str) -> Option<Vec<Option<f64>>> {
    let row = state["legend"]
        .as_array()?
        .iter()
        .find(|row| row["kind"] == kind)?;
    let words: Vec<&str> = row["text"].as_str()?.split_whitespace().collect();
    let settings = match kind {
        "vwap" => 1,
        "bb" => 3,
        _ => 2,
    };
    Some(words[settings..].iter().map(|w| parse_price(w)).collect())
}

/// Every point of the line `key` equals the reference at its candle, and it has a point exactly where
/// the reference is defined.
fn assert_series(
    state: &Value,
    key: &str,
    market: &MidnightMarket,
    reference: &dyn Fn(usize) -> Option<f64>,
) {
    let points = state["series"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} series: {}", state["series"]));
    let expected: Vec<(i64, f64)> = (0..market.candles.len())
        .filter_map(|i| reference(i).map(|v| (market.candles[i].time, v)))
        .collect();
    assert_eq!(points.len(), expected.len(), "{key}: {points:?}");
    for (point, (time, value)) in points.iter().zip(expected) {
        assert_eq!(point["time"], time, "{key}");
        let shown = point["value"].as_f64().unwrap();
        assert!(
            (shown - value).abs() <= 1e-12 * value.abs(),
            "{key} at {time}: {shown:e} vs the reference {value:e}"
        );
    }
}

/// The indicators on the page, on a market the test ingests (the hour around a UTC midnight): the pure
/// formulas give hand-computed values; switched on (a link, clicks, a period typed in), each line equals
/// the reference computed from the stored candles, and the legend under the mouse (a real pointer move
/// onto a candle) shows the reference values, the VWAP restarting at midnight; switched off, a line
/// leaves the chart and the legend.
#[tokio::test]
async fn chart_page_indicators_equal_the_reference_under_the_crosshair() {
    let Some(quiet) = QuietServerPage::start().await else {
        return;
    };
    let (browser, server) = (&quiet.browser, &quiet.server);
    let market = MidnightMarket::post(server).await;
    browser
        .goto(&server.url(&format!(
            "/chart?symbol={}&interval=m1&tz=utc&indicators=sma:5",
            market.mint
        )))
        .await;

    // indicators.js against values computed by hand (the same as the terminal client's unit tests).
    let math = wait_for("the page's module", Duration::from_secs(20), || async {
        let math = browser
            .execute(
                "const m = window.__kline?.indicatorMath; if (!m) return null;
                 const closes = [1, 3, 2, 6];
                 const day = 1764028800;
                 const candle = (time, high, low, close, volume) => ({time, high, low, close, volume});
                 return {sma: m.sma(closes, 2), ema: m.ema(closes, 2), bands: m.bollinger(closes, 2, 1)[3],
                         vwap: m.vwapDaily([candle(day - 120, 11, 9, 10, 1), candle(day - 60, 13, 11, 12, 3),
                                            candle(day, 21, 18, 21, 2), candle(day + 60, 12, 12, 12, 2)])};",
            )
            .await;
        if math.is_null() { Err("no hook yet".to_owned()) } else { Ok(math) }
    })
    .await;
    // SMA(2): (1+3)/2, (3+2)/2, (2+6)/2. EMA(2), α = 2/3: seed 2, then 2/3·2 + 1/3·2 = 2, 2/3·6 + 1/3·2 = 14/3.
    // Bollinger(2, 1σ) of 2, 6: mean 4, σ 2. VWAP: typical prices 10, 12 (volumes 1, 3) → 10, 11.5; the
    // next UTC day restarts: 20, then (20·2 + 12·2)/4 = 16.
    let by_hand = [
        ("sma", vec![None, Some(2.0), Some(2.5), Some(4.0)]),
        ("ema", vec![None, Some(2.0), Some(2.0), Some(14.0 / 3.0)]),
        ("vwap", vec![Some(10.0), Some(11.5), Some(20.0), Some(16.0)]),
    ];
    for (key, expected) in by_hand {
        let computed: Vec<Option<f64>> = math[key]
            .as_array()
            .unwrap_or_else(|| panic!("{math}"))
            .iter()
            .map(Value::as_f64)
            .collect();
        let same = computed.len() == expected.len()
            && computed.iter().zip(&expected).all(|pair| match pair {
                (Some(c), Some(e)) => (c - e).abs() < 1e-12,
                (c, e) => c == e,
            });
        assert!(same, "{key}: {computed:?}, by hand {expected:?}");
    }
    assert_eq!(
        math["bands"],
        serde_json::json!({"upper": 6, "middle": 4, "lower": 2})
    );

    // SMA 5 from the link; the others switched on as a user would, EMA's period typed in.
    for kind in ["ema", "vwap", "bb"] {
        browser
            .click(&format!(
                "#indicators input[type=checkbox][data-kind={kind}]"
            ))
            .await;
    }
    browser
        .type_into("#indicators input[type=number][data-kind=ema]", "10")
        .await;
    let closes = market.closes();
    let state = wait_for(
        "the four indicators drawn",
        Duration::from_secs(20),
        || async {
            let state = indicators(browser).await;
            let drawn = ["sma", "ema", "vwap", "bb.upper", "bb.middle", "bb.lower"]
                .iter()
                .all(|key| {
                    state["series"][key]
                        .as_array()
                        .is_some_and(|p| !p.is_empty())
                })
                && state["legend"][1]["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("EMA 10 "))
                && state["series"]["sma"].as_array().map(Vec::len)
                    == Some(market.candles.len() - 4);
            if drawn {
                Ok(state)
            } else {
                Err(state.to_string())
            }
        },
    )
    .await;
    assert_eq!(
        state["query"]
            .as_str()
            .map(|q| q.contains("indicators=sma%3A5%2Cema%3A10%2Cvwap%2Cbb%3A20%3A2")),
        Some(true),
        "the query keeps what is shown: {}",
        state["query"]
    );
    assert_series(&state, "sma", &market, &|i| at::sma(&closes, 5, i));
    assert_series(&state, "ema", &market, &|i| at::ema(&closes, 10, i));
    assert_series(&state, "vwap", &market, &|i| at::vwap(&market.candles, i));
    for (n, band) in ["upper", "middle", "lower"].into_iter().enumerate() {
        assert_series(&state, &format!("bb.{band}"), &market, &|i| {
            at::bollinger(&closes, 20, 2.0, i).map(|b| b[n])
        });
    }

    // The legend under the mouse: the newest candle, the first of the new day, the last of the day before.
    let midnight = market.midnight_index();
    for i in [market.candles.len() - 2, midnight, midnight - 1, 2] {
        let time = market.candles[i].time;
        let point = browser
            .execute(&format!("return window.__kline.pointAt({time});"))
            .await;
        browser
            .move_pointer(point["x"].as_i64().unwrap(), point["y"].as_i64().unwrap())
            .await;
        let clock = {
            let t = time.rem_euclid(86_400);
            format!("{:02}:{:02}:{:02} UTC", t / 3600, t / 60 % 60, t % 60)
        };
        let state = wait_for(
            &format!("the legend of candle {i} ({clock})"),
            Duration::from_secs(10),
            || async {
                let state = indicators(browser).await;
                if state["candleLegend"]
                    .as_str()
                    .is_some_and(|l| l.contains(&clock))
                {
                    Ok(state)
                } else {
                    Err(state.to_string())
                }
            },
        )
        .await;
        let shown = |kind: &str| {
            legend_values(&state, kind).unwrap_or_else(|| panic!("no {kind} in {state}"))
        };
        let what = |label: &str| format!("{label} at candle {i}: {}", state["legend"]);
        assert_shown(&what("SMA 5"), shown("sma")[0], at::sma(&closes, 5, i), 5);
        assert_shown(&what("EMA 10"), shown("ema")[0], at::ema(&closes, 10, i), 5);
        assert_shown(
            &what("VWAP"),
            shown("vwap")[0],
            at::vwap(&market.candles, i),
            5,
        );
        let bands = at::bollinger(&closes, 20, 2.0, i);
        for (n, band) in ["upper", "middle", "lower"].into_iter().enumerate() {
            assert_shown(
                &what(&format!("BB {band}")),
                shown("bb")[n],
                bands.map(|b| b[n]),
                5,
            );
        }
    }
    let screenshot = browser.screenshot().await;
    let path = target_dir().join("kline-chart-indicators.png");
    std::fs::write(&path, &screenshot).expect("screenshot written");
    eprintln!("chart screenshot with indicators: {}", path.display());

    // Switched off: the SMA leaves the chart and the legend.
    browser
        .click("#indicators input[type=checkbox][data-kind=sma]")
        .await;
    wait_for("the SMA gone", Duration::from_secs(10), || async {
        let state = indicators(browser).await;
        let gone = state["series"].get("sma").is_none()
            && legend_values(&state, "sma").is_none()
            && legend_values(&state, "ema").is_some();
        if gone { Ok(()) } else { Err(state.to_string()) }
    })
    .await;
    let errors = page(browser).await["errors"].clone();
    assert_eq!(errors, serde_json::json!([]), "the page reported errors");
}
