//! `kline-tui` binary (skeleton: the chart client is its own issue).

fn main() {
    eprintln!("kline-tui: not implemented yet; see the project's issues");
    std::process::exit(2);
}
