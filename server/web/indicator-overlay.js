// The chart page's indicators: a toggle per indicator (with its period) in the header, one line series per
// indicator line on the candles' price scale, and a legend row with each value at the crosshair (or at
// the newest candle). The formulas are indicators.js; the page hands over its candles.
//
// What is shown lives in the query string, `indicators=sma:50,ema:9,vwap,bb:20:2` (kind, period, and
// the bands' width in standard deviations), so a link or a reload keeps it.

import { indicatorLines } from "./indicators.js";
import { formatPrice } from "./price-format.js";

const KINDS = [
  { kind: "sma", label: "SMA", period: 50, color: "#f0b90b", title: "simple moving average of the closes" },
  { kind: "ema", label: "EMA", period: 9, color: "#e040fb", title: "exponential moving average of the closes" },
  { kind: "vwap", label: "VWAP", color: "#26c6da", title: "volume-weighted average price since 00:00 UTC" },
  { kind: "bb", label: "BB", period: 20, k: 2, color: "#42a5f5", title: "Bollinger bands: SMA ± k standard deviations" },
];
const LEGEND_DIGITS = 5;
const MAX_PERIOD = 1000;

const validPeriod = (n) => Number.isInteger(n) && n >= 1 && n <= MAX_PERIOD;
const validWidth = (k) => Number.isFinite(k) && k > 0 && k <= 10;

/** Settings per kind, `{on, period, k}`, from the query's `indicators` value (all off when absent). */
export function parseIndicatorSettings(text) {
  const settings = Object.fromEntries(KINDS.map(({ kind, period, k }) => [kind, { on: false, period, k }]));
  for (const item of (text || "").split(",")) {
    const [kind, period, k] = item.trim().split(":");
    const setting = settings[kind];
    if (!setting) continue;
    setting.on = true;
    if (period !== undefined && validPeriod(Number(period))) setting.period = Number(period);
    if (k !== undefined && validWidth(Number(k))) setting.k = Number(k);
  }
  return settings;
}

/** The query value for `settings` (only the kinds shown). */
export function formatIndicatorSettings(settings) {
  return KINDS.filter(({ kind }) => settings[kind].on)
    .map(({ kind }) => {
      const { period, k } = settings[kind];
      if (kind === "vwap") return kind;
      return kind === "bb" ? `bb:${period}:${k}` : `${kind}:${period}`;
    })
    .join(",");
}

export class IndicatorOverlay {
  /** `controls` receives the toggles, `legend` the values row; `LWC` is the chart library's global. */
  constructor(chart, LWC, { controls, legend }) {
    this.chart = chart;
    this.LWC = LWC;
    this.legend = legend;
    this.settings = parseIndicatorSettings(new URLSearchParams(location.search).get("indicators"));
    this.candles = [];
    this.indexByTime = new Map();
    this.lines = {}; // key -> values, one per candle, for the kinds shown
    this.series = {}; // key -> the chart's line series
    this.legendTime = undefined; // undefined: the newest candle
    this.pending = false;
    this.buildControls(controls);
    this.syncSeries();
  }

  buildControls(container) {
    for (const { kind, label, color, title } of KINDS) {
      const setting = this.settings[kind];
      const toggle = document.createElement("label");
      toggle.className = "indicator";
      toggle.title = title;
      toggle.style.setProperty("--indicator-color", color);
      const box = document.createElement("input");
      box.type = "checkbox";
      box.dataset.kind = kind;
      box.checked = setting.on;
      box.addEventListener("change", () => this.update(kind, { on: box.checked }));
      toggle.append(box, ` ${label}`);
      if (setting.period !== undefined) {
        const period = document.createElement("input");
        period.type = "number";
        period.min = "1";
        period.max = String(MAX_PERIOD);
        period.value = String(setting.period);
        period.dataset.kind = kind;
        period.setAttribute("aria-label", `${label} period`);
        const apply = () => validPeriod(Number(period.value)) && this.update(kind, { period: Number(period.value) });
        period.addEventListener("input", apply);
        period.addEventListener("change", apply);
        toggle.append(period);
      }
      container.append(toggle);
    }
  }

  update(kind, change) {
    Object.assign(this.settings[kind], change);
    const query = new URLSearchParams(location.search);
    const value = formatIndicatorSettings(this.settings);
    if (value) query.set("indicators", value);
    else query.delete("indicators");
    history.replaceState(null, "", `${location.pathname}?${query}`);
    this.syncSeries();
    this.refresh();
  }

  /** One line series per line of each kind shown; the others removed from the chart. */
  syncSeries() {
    for (const { kind, color } of KINDS) {
      const keys = kind === "bb" ? ["bb.upper", "bb.middle", "bb.lower"] : [kind];
      for (const key of keys) {
        if (this.settings[kind].on && !this.series[key]) {
          this.series[key] = this.chart.addSeries(this.LWC.LineSeries, {
            color,
            lineWidth: key === "bb.middle" ? 1 : 2,
            lineStyle: key === "bb.middle" ? this.LWC.LineStyle.Dashed : this.LWC.LineStyle.Solid,
            priceLineVisible: false,
            lastValueVisible: false,
            crosshairMarkerVisible: false,
          });
        } else if (!this.settings[kind].on && this.series[key]) {
          this.chart.removeSeries(this.series[key]);
          delete this.series[key];
        }
      }
    }
  }

  /** The page's candles changed (ascending, one per time): recompute at the next frame. */
  setCandles(candles) {
    this.candles = candles;
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.refresh();
    });
  }

  refresh() {
    this.indexByTime = new Map(this.candles.map((c, i) => [c.time, i]));
    this.lines = {};
    for (const { kind } of KINDS) {
      const setting = this.settings[kind];
      if (!setting.on) continue;
      for (const { key, values } of indicatorLines(kind, this.candles, setting)) {
        this.lines[key] = values;
        const points = [];
        values.forEach((value, i) => value !== null && points.push({ time: this.candles[i].time, value }));
        this.series[key].setData(points);
      }
    }
    this.showAt(this.legendTime);
  }

  /** The legend for the candle at `time` (undefined: the newest). */
  showAt(time) {
    this.legendTime = time;
    const index = time === undefined ? this.candles.length - 1 : (this.indexByTime.get(time) ?? -1);
    const spans = this.legendEntries(index).map(({ kind, text, color }) => {
      const span = document.createElement("span");
      span.dataset.kind = kind;
      span.style.color = color;
      span.textContent = text;
      return span;
    });
    this.legend.replaceChildren(...spans);
  }

  /** `[{kind, text, color}]` of the kinds shown, at candle `index`: `SMA 50 0.0₇25012`, `BB 20 2 up mid low`. */
  legendEntries(index) {
    return KINDS.filter(({ kind }) => this.settings[kind].on).map(({ kind, label, color }) => {
      const { period, k } = this.settings[kind];
      const keys = kind === "bb" ? ["bb.upper", "bb.middle", "bb.lower"] : [kind];
      const values = keys.map((key) => {
        const value = this.lines[key]?.[index];
        return value === undefined || value === null ? "—" : formatPrice(value, LEGEND_DIGITS);
      });
      const name = kind === "vwap" ? label : kind === "bb" ? `${label} ${period} ${k}` : `${label} ${period}`;
      return { kind, text: `${name} ${values.join(" ")}`, color };
    });
  }

  /** Each line series' data as the chart holds it: `{key: [{time, value}]}`. */
  seriesData() {
    return Object.fromEntries(
      Object.entries(this.series).map(([key, series]) => [key, series.data().map(({ time, value }) => ({ time, value }))]),
    );
  }
}
