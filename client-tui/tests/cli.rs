//! The `kline-tui` command line: bad arguments are clear errors. (Also makes `cargo test` build the binary
//! that the end-to-end tests in `tests/` drive.)

use std::process::Command;

fn tui() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kline-tui"))
}

#[test]
fn help_lists_the_modes() {
    let output = tui().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        help.contains("watch") && help.contains("snapshot"),
        "{help}"
    );
}

#[test]
fn bad_arguments_say_what_was_wrong() {
    let output = tui().args(["--interval", "m2", "watch"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown interval `m2`"));
    let output = tui()
        .args(["--url", "http://host/ws", "watch"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("must be a ws:// or wss:// URL"));
    let output = tui().args(["--symbol", "nope", "watch"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("a mint address is 32 bytes"));
    let output = tui().args(["--sma", "9,0", "watch"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("invalid value '9,0' for '--sma <PERIODS>': `0` is not a period")
    );
    let output = tui()
        .args(["--bollinger-sigma", "0", "watch"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a band width"));
}
