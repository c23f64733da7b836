//! Token names in the terminal client (issue 26, item 1), the real binary in tmux against the server's
//! simulator (its mints are named `Simulated Otter`, `OTTER`…): the picker narrows the symbols by name,
//! ticker or address as you type, Enter opens the chart, whose header reads `TICKER · name (3bue…qAZQ)`.

use kline_core::simulated_market::SimulatedMarket;
use kline_tests::tmux::Tmux;
use kline_tests::{KlineServer, ServerProcess, get_json, tui_binary, wait_until};

const SEED: &str = "source.simulator.seed=5";

fn short(mint: &str) -> String {
    format!("{}…{}", &mint[..4], &mint[mint.len() - 4..])
}

#[tokio::test]
async fn the_picker_finds_a_token_by_name_ticker_or_address_and_the_header_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("db"),
        &["--set", "source.simulator.mints=3", "--set", SEED],
    );
    wait_until(
        "the three simulated mints are listed",
        std::time::Duration::from_secs(30),
        || async {
            get_json(&server.url("/api/v1/symbols"))
                .await
                .as_array()
                .is_some_and(|list| list.len() == 3 && list.iter().all(|e| e["name"].is_string()))
        },
    )
    .await;
    let market = SimulatedMarket::new(5, 3);
    let (otter, lynx) = (market.mints()[0].to_string(), market.mints()[1].to_string());
    let command = format!(
        "{} --url {} --interval s1 --utc --log {}",
        tui_binary().display(),
        server.ws_url(),
        dir.path().join("tui.log").display()
    );
    let tui = Tmux::start("kline-tui-names", 100, 30, &command);
    tui.wait_for("the picker with the named tokens", &|s: &str| {
        s.contains("OTTER") && s.contains("Simulated Lynx") && s.contains("HERON")
    });

    // By name, in any case: only the Lynx is left; Enter opens its chart.
    tui.send_keys(&["-l", "simulated LYNX"]);
    tui.wait_for("only the Lynx in the picker", &|s: &str| {
        s.contains("│LYNX") && !s.contains("│OTTER") && !s.contains("│HERON")
    });
    tui.send_keys(&["Enter"]);
    let header = format!("LYNX · Simulated Lynx ({})", short(&lynx));
    tui.wait_for("the Lynx chart's header", &|s: &str| {
        s.lines().next().is_some_and(|l| l.contains(&header))
    });

    // By ticker, and by a piece of the address.
    tui.send_keys(&["s"]);
    tui.wait_for("the picker again", &|s: &str| {
        s.contains("filter (ticker, name, address)")
    });
    tui.send_keys(&["-l", "otter"]);
    // Picker rows start at the box's left edge: `│TICKER  name …`.
    tui.wait_for("only the Otter", &|s: &str| {
        s.contains("│OTTER") && !s.contains("│LYNX") && !s.contains("│HERON")
    });
    tui.send_keys(&["Escape"]);
    tui.send_keys(&["s"]);
    tui.send_keys(&["-l", &otter[..8]]);
    tui.wait_for("the Otter found by its address", &|s: &str| {
        s.contains("│OTTER") && !s.contains("│LYNX") && !s.contains("│HERON")
    });
    tui.send_keys(&["Enter"]);
    let header = format!("OTTER · Simulated Otter ({})", short(&otter));
    tui.wait_for("the Otter chart's header", &|s: &str| {
        s.lines().next().is_some_and(|l| l.contains(&header))
    });
    tui.send_keys(&["q"]);
}
