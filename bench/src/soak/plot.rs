//! The soak's picture: one small panel per [`PLATEAU_SERIES`] against elapsed minutes, stacked, with the
//! retention window marked, so a person sees at a glance whether each one levels off. SVG, drawn by
//! `plotters` without system fonts (the viewer renders the text).

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use super::series::{PLATEAU_SERIES, Sample};

const PANEL_HEIGHT: u32 = 170;
const WIDTH: u32 = 900;

/// Draws `samples` to `path` (an `.svg`); `title` heads the picture, `window` is marked on every panel.
pub fn draw(
    path: &Path,
    title: &str,
    samples: &[Sample],
    window: Option<Duration>,
) -> anyhow::Result<()> {
    let height = 40 + PANEL_HEIGHT * PLATEAU_SERIES.len() as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let panels = root.split_evenly((PLATEAU_SERIES.len(), 1));
    let x_max = samples.last().map_or(1.0, |s| minutes(s.elapsed)).max(0.1);
    for (index, (panel, series)) in panels.iter().zip(&PLATEAU_SERIES).enumerate() {
        // The time axis is named once, under the bottom panel.
        let bottom = index + 1 == PLATEAU_SERIES.len();
        let points: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|s| Some((minutes(s.elapsed), (series.value)(s)?)))
            .collect();
        let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max);
        let y_max = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
        let caption = match series.unit {
            "" => series.label.to_owned(),
            unit => format!("{} ({unit})", series.label),
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 14))
            .margin(6)
            .x_label_area_size(if bottom { 38 } else { 22 })
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(12)
            .y_labels(5)
            .light_line_style(WHITE.mix(0.0));
        if bottom {
            mesh.x_desc("elapsed minutes");
        }
        mesh.draw()?;
        if let Some(window) = window.filter(|w| minutes(*w) < x_max) {
            let at = minutes(window);
            chart.draw_series(LineSeries::new(
                [(at, 0.0), (at, y_max)],
                BLACK.mix(0.25).stroke_width(1),
            ))?;
        }
        chart.draw_series(LineSeries::new(points, BLUE.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

fn minutes(d: Duration) -> f64 {
    d.as_secs_f64() / 60.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_is_an_svg_with_a_panel_per_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("soak.svg");
        let samples: Vec<Sample> = (0..=24)
            .map(|tick| Sample {
                elapsed: Duration::from_secs(tick * 5),
                disk_bytes: tick.min(12) * 1_000_000,
                rss_kib: Some(100_000),
                open_fds: Some(40),
                queued_batches: Some(0.0),
                latency_p99_ms: Some(3.5),
                ..Sample::default()
            })
            .collect();
        draw(&path, "soak test", &samples, Some(Duration::from_secs(60))).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for series in &PLATEAU_SERIES {
            assert!(svg.contains(series.label), "{} has no panel", series.label);
        }
        assert!(svg.contains("elapsed minutes"));
    }

    #[test]
    fn a_run_without_any_sample_still_draws_empty_panels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.svg");
        draw(&path, "nothing", &[], None).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
    }
}
