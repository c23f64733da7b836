//! `kline-tui` end to end: its headless modes and its interactive screens (in tmux), against the real
//! server with the simulator or events the tests post.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kline_protocol::{ServerMessage, ServerPayload};
use kline_tests::tmux::Tmux;
use kline_tests::{
    KlineServer, ServerProcess, free_local_addr, get_json, tui_binary, wait_for_metric_blocking,
};

#[path = "tui/indicators.rs"]
mod indicators;
#[path = "tui/watchlist.rs"]
mod watchlist;

const SIMULATOR: &[&str] = &[
    "--set",
    "source.simulator.events_per_sec=50",
    "--set",
    "source.simulator.mints=3",
];

fn tui(server: &ServerProcess, args: &[&str]) -> Command {
    let mut command = Command::new(tui_binary());
    command
        .arg("--url")
        .arg(server.ws_url())
        .args(["--interval", "s1", "--utc"])
        .args(args);
    command
        .arg("--log")
        .arg(std::env::temp_dir().join(format!("kline-tui-test-{}.log", std::process::id())));
    command
}

/// The interactive client's command line for tmux: against `server`, times in UTC, logging into `dir`,
/// with `args` (a symbol, an interval, flags).
fn interactive_command(server: &ServerProcess, dir: &std::path::Path, args: &str) -> String {
    format!(
        "{} --url {} --utc --log {} {args}",
        tui_binary().display(),
        server.ws_url(),
        dir.join("tui.log").display()
    )
}

fn wait_for_symbols(server: &ServerProcess) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let symbols = runtime.block_on(get_json(&server.url("/api/v1/symbols")));
        if symbols.as_array().is_some_and(|list| !list.is_empty()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the simulator produced no symbol");
}

#[test]
fn watch_prints_twenty_protocol_messages_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("db"), SIMULATOR);
    wait_for_symbols(&server);
    let output = tui(&server, &["watch", "--json", "--count", "20"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<ServerMessage> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| ServerMessage::parse(line).unwrap_or_else(|err| panic!("{line}: {err}")))
        .collect();
    assert_eq!(lines.len(), 20);
    let kinds: Vec<&str> = lines.iter().map(ServerMessage::kind).collect();
    assert_eq!(
        &kinds[..3],
        [
            "connection_success",
            "history_data",
            "subscription_confirmed"
        ]
    );
    assert!(kinds[3..].iter().all(|k| *k == "kline_data"), "{kinds:?}");
}

#[test]
fn watch_fails_when_there_is_no_server() {
    let addr = free_local_addr();
    let output = Command::new(tui_binary())
        .args([
            "--url",
            &format!("ws://{addr}/ws"),
            "--symbol",
            "11111111111111111111111111111111",
        ])
        .args(["watch", "--json", "--count", "1"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"));
}

#[test]
fn snapshot_renders_the_chart_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("db"), SIMULATOR);
    wait_for_symbols(&server);
    wait_for_metric_blocking(&server, "kline_candles_finalized_total", 3.0); // a few s1 candles
    let output = tui(&server, &["snapshot", "--width", "80", "--height", "20"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20, "{text}");
    assert!(
        lines[0].contains(" s1 ") && lines[0].contains("last 0.0"),
        "header: {text}"
    );
    assert!(
        text.contains("┤0.0"),
        "price axis with significant digits: {text}"
    );
    assert!(
        text.chars().any(|c| "█▀▄".contains(c)),
        "candle bodies: {text}"
    );
    assert!(lines[19].contains("● connected"), "status line: {text}");
}

#[test]
fn watch_survives_a_server_restart_without_gaps_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let addr = free_local_addr();
    let mut server = ServerProcess::start_on(&data, &addr, &["--set", "source.simulator.mints=1"]);
    wait_for_symbols(&server);
    let watcher = tui(&server, &["watch", "--json", "--seconds", "9"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The watcher has its snapshot and some live updates before the restart.
    wait_for_metric_blocking(&server, "kline_messages_sent_total", 10.0);
    assert!(
        server
            .terminate(Duration::from_secs(20))
            .is_some_and(|s| s.success())
    );
    std::thread::sleep(Duration::from_millis(500));
    let server = ServerProcess::start_on(&data, &addr, &["--set", "source.simulator.mints=1"]);
    let output = watcher.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("reconnecting"),
        "it noticed the restart"
    );

    let messages: Vec<ServerMessage> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| ServerMessage::parse(line).unwrap())
        .collect();
    let connects = messages
        .iter()
        .filter(|m| m.kind() == "connection_success")
        .count();
    assert_eq!(connects, 2, "connected, then reconnected");
    let mut seen: BTreeMap<i64, u32> = BTreeMap::new();
    let mut symbol = None;
    for message in &messages {
        match &message.payload {
            ServerPayload::HistoryData(history) => {
                symbol = Some(history.symbol.clone());
                for candle in &history.data {
                    seen.insert(candle.time, candle.update_count);
                }
            }
            ServerPayload::KlineData(update) => {
                seen.insert(update.data.time, update.data.update_count);
            }
            _ => {}
        }
    }
    let (first, last) = (
        *seen.keys().next().unwrap(),
        *seen.keys().next_back().unwrap(),
    );
    let url = server.url(&format!(
        "/api/v1/klines?symbol={}&interval=s1&from={first}&limit=1000",
        symbol.unwrap()
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stored = runtime.block_on(get_json(&url));
    for candle in stored["data"].as_array().unwrap() {
        let time = candle["time"].as_i64().unwrap();
        if time < last {
            assert!(
                seen.contains_key(&time),
                "gap at {time} (seen {first}..{last})"
            );
        }
    }
}

/// The real interactive binary in a real terminal (tmux): the chart draws with its newest candle at the
/// right edge and the volume pane under it, `v` hides the pane, `c` shows a candle's volume, `t` shows the
/// trades pane and new trades appear in it live, `5` switches to m5, `?` shows the keys, `q` quits and the
/// terminal is given back.
#[test]
fn interactive_chart_in_tmux() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("db"), SIMULATOR);
    wait_for_symbols(&server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let symbols = runtime.block_on(get_json(&server.url("/api/v1/symbols")));
    let mint = symbols[0]["symbol"].as_str().unwrap().to_owned();
    let command = interactive_command(
        &server,
        dir.path(),
        &format!("--symbol {mint} --interval s1"),
    );
    let term = Tmux::start("kline-tui-test", 100, 30, &command);
    term.wait_for("a live s1 chart", &|s| {
        s.contains("● connected") && s.contains(" s1 ") && s.contains('█')
    });
    // The volume pane with its scale, and the newest candle in the plot's last column (100 columns minus
    // the 12-column price axis), however short the history is.
    let screen = term.wait_for("the volume pane", &|s| {
        s.contains("┤V ") && s.contains('▁') || s.contains("┤V ") && s.contains('█')
    });
    let candle_glyphs = "█▀▄│╵╷";
    assert!(
        screen
            .lines()
            .skip(1)
            .any(|l| l.chars().nth(87).is_some_and(|c| candle_glyphs.contains(c))),
        "the newest candle at the right edge:\n{screen}"
    );
    term.send_keys(&["v"]);
    term.wait_for("the volume pane hidden", &|s| !s.contains("┤V "));
    term.send_keys(&["v"]);
    term.wait_for("the volume pane back", &|s| s.contains("┤V "));
    term.send_keys(&["c"]);
    term.wait_for("the crosshair with a volume", &|s| {
        s.lines()
            .next()
            .is_some_and(|l| l.contains(" O ") && l.contains(" V "))
    });
    term.send_keys(&["c"]);
    term.send_keys(&["t"]);
    // The pane's newest row (below its title row): a trade with its side, then a newer one replaces it.
    let newest_trade = |screen: &str| -> Option<String> {
        let mut lines = screen.lines();
        lines.find(|l| l.contains(" trades "))?;
        let row = lines.next()?;
        let cell = row.rsplit('│').nth(1)?.trim().to_owned();
        (cell.contains(" buy ") || cell.contains(" sell ")).then_some(cell)
    };
    let screen = term.wait_for("the trades pane with a trade", &|s| {
        newest_trade(s).is_some()
    });
    let first = newest_trade(&screen).unwrap();
    term.wait_for("a newer trade on top of the pane", &|s| {
        newest_trade(s).is_some_and(|row| row != first)
    });
    term.send_keys(&["t"]);
    term.wait_for("the trades pane hidden", &|s| !s.contains(" trades "));
    term.send_keys(&["5"]);
    term.wait_for("the m5 chart", &|s| {
        s.lines().next().is_some_and(|l| l.contains(" m5 ")) && s.contains('█')
    });
    term.send_keys(&["?"]);
    term.wait_for("the key help", &|s| {
        s.contains("keys (? to close)") && s.contains("symbol picker")
    });
    term.send_keys(&["?"]);
    term.send_keys(&["q"]);
    term.wait_for_exit(Duration::from_secs(5));
}
