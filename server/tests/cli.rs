//! The `kline-server` binary's command line: configuration errors name the key and exit non-zero.
//! (Also makes `cargo test` build the binary that the end-to-end tests in `tests/` start.)

use std::process::Command;

fn server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kline-server"))
}

#[test]
fn check_config_accepts_the_shipped_files() {
    let output = server().arg("check-config").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Read at run time: a test binary reused from another checkout must not look in that checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it for tests");
    let production = format!("{manifest_dir}/../config/production.toml");
    let output = server()
        .args(["--config", &production, "check-config"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_bad_key_is_an_error_that_names_it() {
    let output = server()
        .args(["--set", "server.prot=1", "check-config"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("prot"), "{stderr}");

    let output = server()
        .arg("check-config")
        .env("KLINE__KLINE__FINALITY_GRACE_MS", "soon")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("kline.finality_grace_ms"), "{stderr}");
}

#[test]
fn an_out_of_range_value_is_an_error_that_names_the_key_and_the_range() {
    let output = server()
        .args(["--set", "source.solana.gather_max_ms=5000", "check-config"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("source.solana.gather_max_ms"), "{stderr}");
    assert!(stderr.contains("at most 1000"), "{stderr}");
}
