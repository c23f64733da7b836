//! The terminal client's watchlist (issue 26, items 3 and 5) in tmux, against a real server fed by the
//! test (simulator off): three named tokens whose 24-hour changes the test sets, so it knows every order.
//! `w` opens the list sorted by change; a trade posted over HTTP moves a row to the top with its new price
//! and change; `Tab` sorts by name; typing filters; `*` puts a row first and writes the stars file; the
//! sparkline is seeded from the m1 history; `Enter` opens the selected mint's chart.

use std::time::Duration;

use kline_core::simulated_market::SimulatedMarket;
use kline_tests::spinpet_script::{buy_sell, key};
use kline_tests::tmux::Tmux;
use kline_tests::{ServerProcess, post_events};

/// A day's opening price for every token (SOL per token), so a last price gives the change.
const OPEN: f64 = 1e-7;

fn short(mint: &str) -> String {
    format!("{}…{}", &mint[..4], &mint[mint.len() - 4..])
}

/// The feed the test controls: trades with unique signatures and slots.
struct Feed {
    market: SimulatedMarket,
    trades: u64,
}

impl Feed {
    /// A trade of token `index` at `price`, `ago_secs` before now, as one JSON line.
    fn trade(&mut self, index: usize, price: f64, ago_secs: i64) -> String {
        self.trades += 1;
        let n = self.trades;
        let mut signature = [7u8; 64];
        signature[..8].copy_from_slice(&n.to_le_bytes());
        let now = kline_protocol::response::unix_millis_now() / 1000;
        let event = buy_sell(
            self.market.mints()[index].to_bytes(),
            key(n + 100),
            (price * 1e28) as u128,
            now - ago_secs,
            &bs58::encode(signature).into_string(),
            300_000_000 + n,
            0,
        );
        event.json.to_string() + "\n"
    }
}

fn post(server: &ServerProcess, body: String, count: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, report) = runtime.block_on(post_events(server, body));
    assert!(
        status == 200 && report["accepted"].as_u64() == Some(count),
        "{status}: {report}"
    );
}

/// The watchlist's rows as shown: each row's ticker, `★` first when starred; `None` while the list
/// is not drawn.
fn rows(screen: &str) -> Option<Vec<String>> {
    let mut lines = screen.lines();
    lines.find(|l| l.contains("TICKER") && l.contains("VOL SOL"))?;
    let rows = lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().take(2).collect();
            match cells.as_slice() {
                ["★", ticker] => format!("★{ticker}"),
                [ticker, ..] => (*ticker).to_owned(),
                [] => String::new(),
            }
        })
        .collect();
    Some(rows)
}

/// The row of `ticker` on the screen.
fn row_of<'a>(screen: &'a str, ticker: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.split_whitespace().any(|cell| cell == ticker))
}

/// Waits until the header holds `header` and the rows are `expected`, in that order.
fn wait_for_rows(term: &Tmux, what: &str, header: &str, expected: &[&str]) -> String {
    term.wait_for(what, &|s| {
        s.lines().next().is_some_and(|l| l.contains(header))
            && rows(s).is_some_and(|rows| rows == expected)
    })
}

/// Asserts that `ticker`'s row on `screen` shows each of `texts`.
fn assert_row_shows(screen: &str, ticker: &str, texts: &[&str]) {
    let row = row_of(screen, ticker).unwrap_or_else(|| panic!("no {ticker} row:\n{screen}"));
    for text in texts {
        assert!(row.contains(text), "{ticker}'s row lacks {text:?}: {row}");
    }
}

#[test]
fn watchlist_rows_move_sort_filter_star_and_open_a_chart_in_tmux() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("db"),
        &["--set", "source.simulator.enabled=false"],
    );
    // OTTER, LYNX, HERON: named by their TokenCreated events; each opened 30 minutes ago at OPEN and
    // trades now at +10 %, -10 % and +30 %.
    let mut feed = Feed {
        market: SimulatedMarket::new(26, 3),
        trades: 0,
    };
    let now_ms = kline_protocol::response::unix_millis_now();
    let mut body: String = (0..3)
        .map(|index| {
            feed.market
                .token_created(index, now_ms - 3_600_000)
                .to_json()
                + "\n"
        })
        .collect();
    for (index, change) in [(0, 1.1), (1, 0.9), (2, 1.3)] {
        body += &feed.trade(index, OPEN, 30 * 60);
        body += &feed.trade(index, OPEN * change, 2);
    }
    post(&server, body, 9);
    let mints: Vec<String> = feed.market.mints().iter().map(|m| m.to_string()).collect();

    let stars = dir.path().join("config").join("stars");
    let args = format!(
        "--symbol {} --interval m1 --stars-file {}",
        mints[1],
        stars.display()
    );
    let command = super::interactive_command(&server, dir.path(), &args);
    let term = Tmux::start("kline-tui-watchlist", 110, 24, &command);
    term.wait_for("the LYNX chart", &|s| {
        s.contains("● connected") && s.contains('█')
    });
    term.send_keys(&["w"]);
    let screen = wait_for_rows(
        &term,
        "the list by change",
        "sort: 24h change",
        &["HERON", "OTTER", "LYNX"],
    );
    assert_row_shows(&screen, "OTTER", &["Simulated Otter", "+10.00%"]);
    // The hour: nothing known before the first trade, flat at the open since, the high at this minute
    // (seeded from the m1 history, so it is asked for and applied).
    term.wait_for("OTTER's sparkline seeded from its history", &|s| {
        row_of(s, "OTTER").is_some_and(|row| {
            let row = row.trim_end();
            // 41 columns for the hour at this width: about 20 for the last 30 minutes.
            // (The last trade, 2 s ago, may fall in the minute before this one: then two columns are high.)
            row.ends_with('█')
                && row.contains("▁█")
                && row.matches('▁').count() >= 15
                && row.contains(" ▁")
        })
    });

    // The feed moves the list: LYNX trades at +50 %, goes to the top with its new price.
    post(&server, feed.trade(1, OPEN * 1.5, 0), 1);
    let screen = wait_for_rows(
        &term,
        "LYNX on top after its trade",
        "sort: 24h change",
        &["LYNX", "HERON", "OTTER"],
    );
    assert_row_shows(&screen, "LYNX", &[" 0.0₆1500 ", "+50.00%"]);

    // By name (Tab: change → volume → name).
    term.send_keys(&["Tab", "Tab"]);
    wait_for_rows(
        &term,
        "the list by name",
        "sort: name",
        &["HERON", "LYNX", "OTTER"],
    );

    // Typing filters by name, ticker or address; Esc clears the filter.
    term.send_keys(&["-l", "simulated ot"]);
    let screen = wait_for_rows(&term, "only the Otter", "filter: simulated ot▏", &["OTTER"]);
    assert!(
        screen.lines().next().unwrap().contains("1/3 mints"),
        "{screen}"
    );
    term.send_keys(&["Escape"]);
    term.send_keys(&["-l", &mints[2][..8]]);
    wait_for_rows(&term, "the Heron by its address", "1/3 mints", &["HERON"]);
    term.send_keys(&["Escape"]);
    wait_for_rows(
        &term,
        "every row again",
        "sort: name",
        &["HERON", "LYNX", "OTTER"],
    );

    // A star puts OTTER first and writes the file.
    term.send_keys(&["Down", "Down", "*"]);
    wait_for_rows(
        &term,
        "OTTER starred and first",
        "sort: name",
        &["★OTTER", "HERON", "LYNX"],
    );
    assert_eq!(
        std::fs::read_to_string(&stars).unwrap(),
        format!("{}\n", mints[0])
    );

    // Enter opens the selected mint's chart (the selection followed OTTER to the top).
    term.send_keys(&["Enter"]);
    let header = format!("OTTER · Simulated Otter ({})", short(&mints[0]));
    term.wait_for("the Otter chart's header", &|s| {
        s.lines().next().is_some_and(|l| l.contains(&header)) && s.contains('█')
    });
    // Back on the list and out again with Esc, then quit.
    term.send_keys(&["w"]);
    wait_for_rows(
        &term,
        "the list again",
        "sort: name",
        &["★OTTER", "HERON", "LYNX"],
    );
    term.send_keys(&["Escape"]);
    term.wait_for("the chart again", &|s| {
        s.lines().next().is_some_and(|l| l.contains(&header))
    });
    term.send_keys(&["q"]);
    term.wait_for_exit(Duration::from_secs(5));
}
