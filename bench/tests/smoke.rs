//! Smoke-sized runs of every scenario, so the benchmark cannot rot: the real `kline-bench` binary against
//! the real `kline-server` (debug builds), a few hundred connections for a few seconds; the nginx+nchan
//! reference when it is installed (else the test checks the skip message), a burned core, and the Solana
//! source fed by the fake node (`live`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn run(args: &[&str]) -> Value {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_kline-bench"));
    let server = bench.with_file_name("kline-server");
    assert!(
        server.exists(),
        "kline-server is built by `cargo test --workspace`: {}",
        server.display()
    );
    let out = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new(&bench)
        .args(args)
        .arg("--out")
        .arg(out.path())
        .env("KLINE_SERVER_BIN", &server)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kline-bench {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("latency_ms.p99") || stdout.contains("events_per_sec"),
        "prints its table:\n{stdout}"
    );
    serde_json::from_str(&std::fs::read_to_string(out.path()).unwrap()).unwrap()
}

#[test]
fn fanout_over_ws_and_socketio_in_one_run_delivers_every_update_on_both() {
    let report = run(&[
        "fanout",
        "--connections",
        "100",
        "--pairs",
        "5",
        "--rate",
        "50",
        "--duration",
        "3",
        "--transport",
        "both",
    ]);
    let socketio = &report["reference"];
    assert_eq!(report["engine"], "kline", "{report}");
    assert_eq!(socketio["engine"], "kline-socketio", "{report}");
    for run in [&report, socketio] {
        assert_eq!(run["connections_subscribed"], 100, "{run}");
        assert!(run["deliveries"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(run["updates_lost"], 0, "{run}");
        assert_eq!(run["closes_total"], 0, "{run}");
    }
    assert_eq!(
        socketio["after_all_disconnected"]["socketio_connections_active"], 0,
        "{socketio}"
    );
}

#[test]
fn fanout_delivers_every_update_to_every_client() {
    let report = run(&[
        "fanout",
        "--connections",
        "200",
        "--pairs",
        "10",
        "--rate",
        "100",
        "--duration",
        "3",
    ]);
    assert_eq!(report["connections_subscribed"], 200, "{report}");
    assert_eq!(report["events_accepted"], report["events_sent"], "{report}");
    assert!(report["deliveries"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["updates_lost"], 0, "{report}");
    assert!(
        report["latency_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["server"]["rss_kib_peak"].as_u64().unwrap() > 0,
        "{report}"
    );
}

#[test]
fn hot_idle_and_ingest_run() {
    let hot = run(&[
        "hot",
        "--connections",
        "200",
        "--rate",
        "10",
        "--duration",
        "2",
    ]);
    assert_eq!(hot["updates_lost"], 0, "{hot}");
    assert!(hot["deliveries"].as_u64().unwrap() >= 200, "{hot}");
    let idle = run(&["idle", "--connections", "300", "--duration", "2"]);
    assert_eq!(
        idle["connections_at_end_of_load"], 300,
        "no idle connection dropped: {idle}"
    );
    assert!(
        idle["server"]["rss_growth_bytes_per_connection"].is_number(),
        "{idle}"
    );
    let ingest = run(&["ingest", "--duration", "2"]);
    assert!(ingest["events_per_sec"].as_f64().unwrap() > 0.0, "{ingest}");
}

#[test]
fn churn_leaves_nothing_behind() {
    let report = run(&[
        "churn",
        "--connections",
        "100",
        "--pairs",
        "5",
        "--rate",
        "50",
        "--duration",
        "3",
        "--churners",
        "50",
    ]);
    assert!(report["churn"]["cycles"].as_u64().unwrap() > 50, "{report}");
    assert_eq!(
        report["after_all_disconnected"]["subscriptions_active"], 0,
        "{report}"
    );
    assert_eq!(
        report["after_all_disconnected"]["connections_active"], 0,
        "{report}"
    );
    assert_eq!(report["updates_lost"], 0, "{report}");
}

#[test]
fn the_nchan_reference_runs_the_same_load_beside_kline_or_is_skipped() {
    let report = run(&[
        "fanout",
        "--connections",
        "100",
        "--pairs",
        "5",
        "--rate",
        "50",
        "--duration",
        "2",
        "--reference",
        "nchan",
    ]);
    assert_eq!(report["updates_lost"], 0, "kline ran first: {report}");
    let reference = &report["reference"];
    assert_eq!(reference["engine"], "nchan", "{report}");
    if let Some(why) = reference["skipped"].as_str() {
        eprintln!("nchan reference skipped (nginx or the module is missing): {why}");
        assert!(
            why.contains("apt-get install nginx-light libnginx-mod-nchan"),
            "{why}"
        );
        return;
    }
    assert_eq!(reference["connections_subscribed"], 100, "{reference}");
    assert_eq!(
        reference["events_accepted"], reference["events_sent"],
        "{reference}"
    );
    assert!(reference["deliveries"].as_u64().unwrap() > 0, "{reference}");
    assert_eq!(reference["updates_lost"], 0, "{reference}");
    assert!(
        reference["server"]["cpu_percent_of_one_core_during_load"].is_number(),
        "nginx's processes are sampled: {reference}"
    );
    assert!(
        report["ratio_kline_to_reference"]["latency p50 ms"].is_number(),
        "{report}"
    );
}

#[test]
fn fanout_with_a_core_burned_loses_nothing() {
    let report = run(&[
        "fanout",
        "--connections",
        "100",
        "--pairs",
        "5",
        "--rate",
        "50",
        "--duration",
        "2",
        "--burn-cores",
        "1",
    ]);
    assert_eq!(report["burn_cores"].as_f64(), Some(1.0), "{report}");
    assert_eq!(report["updates_lost"], 0, "{report}");
    assert_eq!(report["closes_total"], 0, "{report}");
    assert!(report["deliveries"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn live_feeds_the_solana_source_through_the_fake_node() {
    let report = run(&[
        "live",
        "--connections",
        "100",
        "--pairs",
        "5",
        "--rate",
        "100",
        "--duration",
        "3",
        "--slot-ms",
        "400",
        "--events-per-tx",
        "4",
    ]);
    assert!(report["events_sent"].as_u64().unwrap() >= 200, "{report}");
    assert_eq!(
        report["events_stored"], report["events_sent"],
        "every event of every slot went through the Solana source: {report}"
    );
    assert!(report["deliveries"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["updates_lost"], 0, "{report}");
    assert_eq!(report["server"]["feed_lagged_total"], 0, "{report}");
    assert_eq!(report["closes_total"], 0, "{report}");
}

#[test]
fn fanout_through_an_edge_delivers_every_update_of_the_writer() {
    let report = run(&[
        "fanout",
        "--through-edge",
        "--connections",
        "100",
        "--pairs",
        "5",
        "--rate",
        "50",
        "--duration",
        "3",
    ]);
    assert_eq!(report["connections_subscribed"], 100, "{report}");
    assert_eq!(report["events_accepted"], report["events_sent"], "{report}");
    assert!(report["deliveries"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        report["updates_lost"], 0,
        "counted against the writer's history: {report}"
    );
    assert!(
        report["upstream"]["writer_cpu_percent_of_one_core_during_load"].is_number(),
        "{report}"
    );
}

#[test]
fn stream_measures_publish_and_apply() {
    let report = run(&["stream", "--duration", "1", "--pairs", "5"]);
    assert!(
        report["without_stream"]["events_per_sec"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    for shape in ["full_speed", "small_groups"] {
        let run = &report[shape];
        assert!(run["publish"]["groups"].as_u64().unwrap() > 0, "{report}");
        assert!(
            run["apply"]["candle_updates_per_sec"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }
    // One group per 5-event request: many more groups per event than at full speed.
    let groups_per_event = |shape: &str| {
        report[shape]["publish"]["groups"].as_f64().unwrap()
            / report[shape]["publish"]["events_accepted"]
                .as_f64()
                .unwrap()
    };
    assert!(
        groups_per_event("small_groups") > 10.0 * groups_per_event("full_speed"),
        "{report}"
    );
}

#[test]
fn soak_samples_into_a_csv_a_plot_and_a_verdict_per_series() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_kline-bench"));
    let out = tempfile::tempdir().unwrap();
    // A short retention: the server must accept the `[retention]` keys the soak passes.
    let output = Command::new(&bench)
        .args([
            "soak",
            "--connections",
            "50",
            "--pairs",
            "5",
            "--rate",
            "100",
        ])
        .args([
            "--duration",
            "6s",
            "--sample-every",
            "1s",
            "--retention",
            "5s",
        ])
        .arg("--out")
        .arg(out.path())
        .env("KLINE_SERVER_BIN", bench.with_file_name("kline-server"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kline-bench soak failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("plateaued"),
        "prints its verdicts:\n{stdout}"
    );
    let csv = std::fs::read_to_string(out.path().join("soak.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0][..3],
        ["elapsed_s", "disk_bytes", "disk_apparent_bytes"]
    );
    assert!(rows.len() >= 6, "a sample a second for 6 s:\n{csv}");
    let column = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    let last = rows.last().unwrap();
    for name in ["disk_bytes", "rss_kib", "open_fds", "queued_batches"] {
        assert!(!last[column(name)].is_empty(), "{name} was read:\n{csv}");
    }
    assert!(
        last[column("disk_bytes")].parse::<u64>().unwrap() > 0,
        "{csv}"
    );
    assert!(
        rows.iter()
            .skip(2)
            .any(|r| !r[column("latency_p99_ms")].is_empty()),
        "latencies were timed:\n{csv}"
    );
    let svg = std::fs::read_to_string(out.path().join("soak.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("soak.json")).unwrap())
            .unwrap();
    assert_eq!(summary["plateau"].as_array().unwrap().len(), 5, "{summary}");
    assert_eq!(
        summary["events_accepted"], summary["events_sent"],
        "{summary}"
    );
}
