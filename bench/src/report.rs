//! Reading the server's `/metrics` (by name, from the Prometheus text format, whichever library writes it),
//! and printing reports: one engine as a flat table, or kline beside the reference with their ratios.

use serde_json::{Map, Value, json};

/// The value of the unlabelled series `name` (e.g. `kline_feed_lagged_total`).
pub fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next()? == name).then_some(())?;
        parts.next()?.parse().ok()
    })
}

/// Upper bound (ms) of the Prometheus histogram bucket `name` holding quantile `q` (None: no samples, or
/// no such histogram).
pub fn histogram_bound_ms(metrics: &str, name: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|line| {
            let (bound, count) = line.strip_prefix(&prefix)?.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            let count = count.split_whitespace().next()?.parse().ok()?;
            Some((bound, count))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = (q * total).ceil();
    buckets
        .iter()
        .find(|(_, cumulative)| *cumulative >= rank)
        .map(|(bound, _)| round(bound * 1000.0))
}

pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The figures compared between kline and the reference: (label, JSON pointer into a report).
const COMPARED: [(&str, &str); 9] = [
    ("latency p50 ms", "/latency_ms/p50"),
    ("latency p99 ms", "/latency_ms/p99"),
    ("latency max ms", "/latency_ms/max"),
    (
        "server CPU % of one core",
        "/server/cpu_percent_of_one_core_during_load",
    ),
    (
        "RSS growth bytes/connection",
        "/server/rss_growth_bytes_per_connection",
    ),
    ("deliveries", "/deliveries"),
    ("wire bytes/delivery", "/wire_bytes_per_delivery"),
    ("lost", "/updates_lost"),
    ("closes", "/closes_total"),
];

/// kline ÷ reference for each compared figure (null where the reference's is 0 or missing).
pub fn ratios(kline: &Value, reference: &Value) -> Value {
    let mut out = Map::new();
    for (label, pointer) in COMPARED {
        let ratio = kline
            .pointer(pointer)
            .and_then(Value::as_f64)
            .zip(reference.pointer(pointer).and_then(Value::as_f64))
            .filter(|(_, theirs)| *theirs != 0.0)
            .map(|(ours, theirs)| round(ours / theirs));
        out.insert(label.to_owned(), json!(ratio));
    }
    Value::Object(out)
}

/// Prints a report: every field as `key value`, then, when a reference ran, the side-by-side table.
pub fn print(report: &Value) {
    let mut rows = Vec::new();
    flatten("", report, &mut rows);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in rows {
        println!("{key:width$}  {value}");
    }
    let (Some(reference), Some(engine)) = (
        report.get("reference").filter(|r| r.is_object()),
        report.pointer("/reference/engine").and_then(Value::as_str),
    ) else {
        return;
    };
    // With `--transport both` the "reference" is kline's Socket.IO run: the ratio is /ws ÷ Socket.IO.
    println!("\n{:30} {:>12} {:>12} {:>8}", "", "kline", engine, "ratio");
    for (label, pointer) in COMPARED {
        let cell = |value: Option<&Value>| value.map_or("-".to_owned(), ToString::to_string);
        println!(
            "{label:30} {:>12} {:>12} {:>8}",
            cell(report.pointer(pointer)),
            cell(reference.pointer(pointer)),
            cell(
                report
                    .get("ratio_kline_to_reference")
                    .and_then(|ratios| ratios.get(label))
            ),
        );
    }
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, inner, rows);
            }
        }
        other => rows.push((prefix.to_owned(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holding_the_quantile_gives_its_upper_bound() {
        let metrics = "\
x_seconds_bucket{le=\"0.001\"} 10
x_seconds_bucket{le=\"0.002\"} 90
x_seconds_bucket{le=\"0.005\"} 99
x_seconds_bucket{le=\"+Inf\"} 100
x_seconds_sum 0.2
x_seconds_count 100";
        assert_eq!(histogram_bound_ms(metrics, "x_seconds", 0.5), Some(2.0));
        assert_eq!(histogram_bound_ms(metrics, "x_seconds", 0.99), Some(5.0));
        assert_eq!(histogram_bound_ms(metrics, "x_seconds", 0.1), Some(1.0));
        assert_eq!(histogram_bound_ms("", "x_seconds", 0.5), None);
    }

    #[test]
    fn a_series_is_found_by_its_whole_name() {
        let metrics = "\
# HELP kline_feed_lagged_total Updates the hub missed.
# TYPE kline_feed_lagged_total counter
kline_feed_lagged_total_x 9
kline_feed_lagged_total 3
kline_connections_active 12.0";
        assert_eq!(metric_value(metrics, "kline_feed_lagged_total"), Some(3.0));
        assert_eq!(
            metric_value(metrics, "kline_connections_active"),
            Some(12.0)
        );
        assert_eq!(metric_value(metrics, "kline_missing"), None);
    }

    #[test]
    fn ratios_divide_kline_by_the_reference() {
        let kline = json!({"latency_ms": {"p50": 4.0, "p99": 30.0}, "updates_lost": 0});
        let nchan = json!({"latency_ms": {"p50": 2.0, "p99": 20.0}, "updates_lost": 0});
        let ratio = ratios(&kline, &nchan);
        assert_eq!(ratio["latency p50 ms"], 2.0);
        assert_eq!(ratio["latency p99 ms"], 1.5);
        assert_eq!(ratio["lost"], Value::Null, "no ratio to a zero");
    }
}
