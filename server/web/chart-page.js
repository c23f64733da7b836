// The live chart page: symbol picker, interval buttons, the candlestick chart with a volume histogram
// under it (TradingView lightweight-charts, loaded before this module as the global `LightweightCharts`),
// the watchlist and the symbol's latest trades beside it, crosshair legend, UTC/local toggle and status
// line. The WebSocket side is chart-feed.js; the indicators (toggles, lines, their legend) are
// indicator-overlay.js; the watchlist (every mint's ticker, fed by the same socket) is watchlist-panel.js.
//
// `window.__kline` is a read-only view of the page's state for tests and for the curious (see the end).

import { CandleFeed } from "./chart-feed.js";
import { IndicatorOverlay } from "./indicator-overlay.js";
import * as indicatorMath from "./indicators.js";
import { formatPrice, formatVolume, priceFormatFor } from "./price-format.js";
import { SymbolPicker, shortMint, symbolTitle } from "./symbol-picker.js";
import { WatchlistPanel } from "./watchlist-panel.js";

const INTERVALS = ["s1", "s15", "s30", "m1", "m5", "m15", "h1", "h4", "d1"];
const SYMBOLS_REFRESH_MS = 10_000;
const MAX_ERRORS_KEPT = 20;
const TRADES_KEPT = 50;
const UP = "#26a69a";
const DOWN = "#ef5350";
// Volume bars in the candle colours, translucent so the candles above stay readable.
const UP_VOLUME = "rgba(38, 166, 154, 0.5)";
const DOWN_VOLUME = "rgba(239, 83, 80, 0.5)";

const params = new URLSearchParams(location.search);
const state = {
  symbol: params.get("symbol") || null,
  interval: INTERVALS.includes(params.get("interval")) ? params.get("interval") : "m1",
  utc: params.get("tz") === "utc",
  candles: [], // protocol candles of the current pair, ascending by time, one per time
  trades: [], // the symbol's latest trades, newest first (at most TRADES_KEPT)
  hasOlder: false,
  priceFormatSet: false,
  counts: { historicalUpdates: 0, resets: 0 },
  priceLabels: [],
  errors: [],
  updateTimes: [], // arrival times of the last second's updates, for upd/s
  pushLagMs: null,
  status: { state: "connecting", retryInMs: null, rttMs: null },
};

const $ = (id) => document.getElementById(id);
const LWC = window.LightweightCharts;

// ---- time labels (the chart's times are Unix seconds, UTC) ----

function dateParts(time) {
  const d = new Date(time * 1000);
  const get = state.utc
    ? { y: d.getUTCFullYear(), mo: d.getUTCMonth(), d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds() }
    : { y: d.getFullYear(), mo: d.getMonth(), d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds() };
  return get;
}
const pad = (n) => String(n).padStart(2, "0");
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function formatTime(time) {
  const p = dateParts(time);
  return `${p.y}-${pad(p.mo + 1)}-${pad(p.d)} ${pad(p.h)}:${pad(p.mi)}:${pad(p.s)} ${state.utc ? "UTC" : "local"}`;
}

function formatTick(time, tickMarkType) {
  const p = dateParts(time);
  switch (tickMarkType) {
    case LWC.TickMarkType.Year:
      return String(p.y);
    case LWC.TickMarkType.Month:
      return MONTHS[p.mo];
    case LWC.TickMarkType.DayOfMonth:
      return `${MONTHS[p.mo]} ${p.d}`;
    case LWC.TickMarkType.TimeWithSeconds:
      return `${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`;
    default:
      return `${pad(p.h)}:${pad(p.mi)}`;
  }
}

// ---- the chart ----

const chart = LWC.createChart($("chart"), {
  autoSize: true,
  layout: { background: { color: "#131722" }, textColor: "#d1d4dc" },
  grid: { vertLines: { color: "#1e222d" }, horzLines: { color: "#1e222d" } },
  crosshair: { mode: LWC.CrosshairMode.Normal },
  // Room for the legend above the candles and for the volume histogram below them.
  rightPriceScale: { borderColor: "#2a2e39", scaleMargins: { top: 0.12, bottom: 0.28 } },
  timeScale: { borderColor: "#2a2e39", timeVisible: true },
});
const series = chart.addSeries(LWC.CandlestickSeries, {
  upColor: UP,
  downColor: DOWN,
  borderVisible: false,
  wickUpColor: UP,
  wickDownColor: DOWN,
});

// Volume (tokens traded per candle) as a histogram on its own overlay scale, in the bottom fifth.
const volumeSeries = chart.addSeries(LWC.HistogramSeries, {
  priceScaleId: "volume",
  priceFormat: { type: "volume" },
  lastValueVisible: false,
  priceLineVisible: false,
});
volumeSeries.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });

// SMA, EMA, VWAP and Bollinger lines on the candles' price scale, computed from `state.candles`.
const overlay = new IndicatorOverlay(chart, LWC, { controls: $("indicators"), legend: $("indicator-legend") });

function applyTimeOptions() {
  chart.applyOptions({
    localization: { timeFormatter: formatTime },
    timeScale: { tickMarkFormatter: formatTick, secondsVisible: state.interval.startsWith("s") },
  });
}

function setPriceFormat(price) {
  const format = priceFormatFor(price);
  const tickmarks = format.tickmarksFormatter;
  format.tickmarksFormatter = (prices) => {
    const labels = tickmarks(prices);
    state.priceLabels = labels;
    return labels;
  };
  series.applyOptions({ priceFormat: format });
  state.priceFormatSet = true;
}

const toBar = (c) => ({ time: c.time, open: c.open, high: c.high, low: c.low, close: c.close });
const toVolumeBar = (c) => ({ time: c.time, value: c.volume ?? 0, color: c.close >= c.open ? UP_VOLUME : DOWN_VOLUME });

/** Index of the candle with `time`, or -(insertion point) - 1. */
function search(time) {
  let lo = 0;
  let hi = state.candles.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const t = state.candles[mid].time;
    if (t === time) return mid;
    if (t < time) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

function redraw() {
  series.setData(state.candles.map(toBar));
  volumeSeries.setData(state.candles.map(toVolumeBar));
  overlay.setCandles(state.candles);
  if (!state.priceFormatSet && state.candles.length) setPriceFormat(state.candles.at(-1).close);
}

/**
 * Upsert by time (protocol: "replace the candle with that time, or append it"). The chart's `update()`
 * only takes the newest bar or, with `historicalUpdate`, an existing older one: a final of the previous
 * candle arriving after the next candle's first update is such a historical update. Anything else
 * (a candle older than the newest that we never had) is inserted and the data set redrawn.
 */
function upsert(candle) {
  const last = state.candles.at(-1);
  if (!last || candle.time > last.time) {
    state.candles.push(candle);
    series.update(toBar(candle));
    volumeSeries.update(toVolumeBar(candle));
  } else {
    const index = search(candle.time);
    if (index >= 0) {
      if (candle.update_count < state.candles[index].update_count) return; // never go backwards
      state.candles[index] = candle;
      const historical = candle.time < last.time;
      if (historical) state.counts.historicalUpdates += 1;
      series.update(toBar(candle), historical);
      volumeSeries.update(toVolumeBar(candle), historical);
    } else {
      state.candles.splice(-index - 1, 0, candle);
      state.counts.resets += 1;
      redraw();
    }
  }
  overlay.setCandles(state.candles);
  if (!state.priceFormatSet) setPriceFormat(candle.close);
}

/** Merges a batch of candles (a resumed snapshot or an older page) into the data set. */
function merge(candles) {
  const byTime = new Map(state.candles.map((c) => [c.time, c]));
  for (const c of candles) {
    const held = byTime.get(c.time);
    if (!held || held.update_count <= c.update_count) byTime.set(c.time, c);
  }
  state.candles = [...byTime.values()].sort((a, b) => a.time - b.time);
  redraw();
}

function safely(what, action) {
  try {
    action();
  } catch (error) {
    // The chart must never stop on one bad update: redraw from the data set and keep going.
    console.error(`kline: ${what} failed`, error);
    recordError({ code: 0, message: `${what}: ${error.message}` });
    state.counts.resets += 1;
    redraw();
  }
}

// ---- trades ----

/** Adds trades newer than those held (newest first in `trades`); a trade held already is skipped. */
function addTrades(trades) {
  const known = new Set(state.trades.map((t) => t.id));
  const fresh = trades.filter((t) => !known.has(t.id));
  state.trades = [...fresh, ...state.trades].slice(0, TRADES_KEPT);
  renderTrades();
}

function clock(ms) {
  const d = new Date(ms);
  return state.utc
    ? `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
    : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function renderTrades() {
  const rows = state.trades.map((trade) => {
    const row = document.createElement("li");
    row.dataset.id = trade.id;
    row.title = `${trade.event_type} ${trade.token_amount} tokens, payer ${trade.payer}, slot ${trade.slot}`;
    const cells = [
      [clock(trade.time), "time"],
      [trade.side, trade.side],
      [formatPrice(trade.price, 4), trade.side],
      [`${trade.sol_amount.toFixed(3)} ◎`, "amount"],
    ];
    for (const [text, cls] of cells) {
      const cell = document.createElement("span");
      cell.textContent = text;
      cell.className = cls;
      row.append(cell);
    }
    return row;
  });
  $("trade-list").replaceChildren(...rows);
}

// ---- legend and status ----

function showLegend(candle) {
  const legend = $("legend");
  if (!candle) {
    legend.textContent = state.symbol ? `${title(state.symbol)} ${state.interval}` : "";
    return;
  }
  const change = candle.open ? ((candle.close - candle.open) / candle.open) * 100 : 0;
  legend.innerHTML = "";
  const parts = [
    [`${title(state.symbol)} ${state.interval}`, "pair"],
    [`O ${formatPrice(candle.open, 5)}`],
    [`H ${formatPrice(candle.high, 5)}`],
    [`L ${formatPrice(candle.low, 5)}`],
    [`C ${formatPrice(candle.close, 5)}`, change >= 0 ? "up" : "down"],
    [`${change >= 0 ? "+" : ""}${change.toFixed(2)}%`, change >= 0 ? "up" : "down"],
    [`V ${formatVolume(candle.volume ?? 0)}`, "volume"],
    [formatTime(candle.time), "time"],
    [candle.is_final ? "final" : `${candle.update_count} events`, "time"],
  ];
  for (const [text, cls] of parts) {
    const span = document.createElement("span");
    span.textContent = text;
    if (cls) span.className = cls;
    legend.append(span);
  }
}

chart.subscribeCrosshairMove((param) => {
  const index = param.time === undefined ? -1 : search(param.time);
  showLegend(index >= 0 ? state.candles[index] : state.candles.at(-1));
  overlay.showAt(index >= 0 ? param.time : undefined);
});

function renderStatus() {
  const status = state.status;
  const now = performance.now();
  state.updateTimes = state.updateTimes.filter((t) => now - t < 1000);
  const line = $("status");
  line.className = status.state;
  const parts = [];
  if (status.state === "connected") {
    parts.push("● connected", `${state.updateTimes.length} upd/s`);
    if (status.rttMs !== null) parts.push(`rtt ${status.rttMs} ms`);
    if (state.pushLagMs !== null) parts.push(`push latency ${state.pushLagMs} ms`);
  } else if (status.state === "reconnecting") {
    const retry = status.retryInMs === null ? "now" : `in ${(status.retryInMs / 1000).toFixed(1)} s`;
    parts.push(`○ reconnecting ${retry}`);
  } else {
    parts.push("○ connecting…");
  }
  parts.push(`${state.candles.length} candles${state.hasOlder ? " (older on scroll)" : ""}`);
  if (state.errors.length) parts.push(`last error: ${state.errors.at(-1).message}`);
  line.textContent = parts.join("  ·  ");
}

function recordError(error) {
  state.errors.push(error);
  if (state.errors.length > MAX_ERRORS_KEPT) state.errors.shift();
  renderStatus();
}

/** The chart's title for `symbol`: `TICKER · name (3bue…qAZQ)` once its name is known (symbol-picker.js). */
const title = (symbol) => symbolTitle(picker.entry(symbol) ?? { symbol });

// ---- the feed ----

const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const pageSize = Math.min(1000, Math.max(1, Number(params.get("limit")) || 500));
const feed = new CandleFeed(
  wsUrl,
  {
    newestTime: () => state.candles.at(-1)?.time,
    onStatus: (status) => {
      state.status = status;
      renderStatus();
    },
    onSnapshot: (_pair, candles, { hasMore, resumedFrom }) =>
      safely("snapshot", () => {
        // A resume answer with more than one page means we missed too much: start over from it.
        if (resumedFrom !== null && !hasMore) {
          merge(candles);
        } else {
          state.candles = candles.slice();
          state.hasOlder = hasMore;
          redraw();
        }
        showLegend(state.candles.at(-1));
        renderStatus();
        loadOlderIfAtLeftEdge();
      }),
    onOlder: (_pair, candles, { hasMore }) =>
      safely("older page", () => {
        state.hasOlder = hasMore && candles.length > 0;
        merge(candles);
        renderStatus();
        loadOlderIfAtLeftEdge();
      }),
    onCandle: (_pair, candle, producedAtMs) =>
      safely("update", () => {
        state.updateTimes.push(performance.now());
        state.pushLagMs = Math.max(0, Date.now() - producedAtMs);
        upsert(candle);
        showLegend(state.candles.at(-1));
      }),
    onError: (error) => recordError(error),
    newestTradeId: () => state.trades[0]?.id,
    onTrades: (symbol, trades, { resumed }) =>
      safely("trades", () => {
        if (symbol !== state.symbol) return;
        if (!resumed) state.trades = [];
        addTrades(trades);
      }),
    onTrade: (symbol, trade) =>
      safely("trade", () => {
        if (symbol === state.symbol) addTrades([trade]);
      }),
    onTickers: (tickers, how) => safely("tickers", () => watchlist.setTickers(tickers, how)),
    onSparkline: (symbol, candles) => safely("sparkline", () => watchlist.seed(symbol, candles)),
  },
  { pageSize, tradesKept: TRADES_KEPT },
);
setInterval(renderStatus, 1000);

function loadOlderIfAtLeftEdge() {
  const range = chart.timeScale().getVisibleLogicalRange();
  if (range && range.from < 10 && state.hasOlder && state.candles.length) {
    feed.requestOlder(state.candles[0].time);
  }
}
chart.timeScale().subscribeVisibleLogicalRangeChange(loadOlderIfAtLeftEdge);

// ---- controls ----

function show(symbol, interval) {
  if (symbol !== state.symbol) {
    state.trades = [];
    renderTrades();
  }
  state.symbol = symbol;
  state.interval = interval;
  state.candles = [];
  state.hasOlder = false;
  state.priceFormatSet = false;
  state.priceLabels = [];
  series.setData([]);
  volumeSeries.setData([]);
  overlay.setCandles(state.candles);
  applyTimeOptions();
  for (const button of document.querySelectorAll("#intervals button")) {
    button.classList.toggle("active", button.dataset.interval === interval);
  }
  picker.select(symbol);
  watchlist.setCurrent(symbol);
  const query = new URLSearchParams(location.search);
  query.set("symbol", symbol);
  query.set("interval", interval);
  history.replaceState(null, "", `/chart?${query}`);
  document.title = `${title(symbol)} ${interval} · kline`;
  showLegend(null);
  feed.watch(symbol, interval);
}

for (const interval of INTERVALS) {
  const button = document.createElement("button");
  button.textContent = interval;
  button.dataset.interval = interval;
  button.addEventListener("click", () => state.symbol && show(state.symbol, interval));
  $("intervals").append(button);
}

const picker = new SymbolPicker($("symbol"), $("symbol-search"), (symbol) => show(symbol, state.interval));
const watchlist = new WatchlistPanel(
  {
    scroller: $("watchlist-scroller"),
    rows: $("watchlist-rows"),
    filter: $("watchlist-filter"),
    count: $("watchlist-count"),
    sortButtons: [...document.querySelectorAll("#watchlist th button[data-sort]")],
  },
  {
    onChoose: (symbol) => show(symbol, state.interval),
    requestSparkline: (symbol, from, limit) => feed.requestSparkline(symbol, from, limit),
    storage: window.localStorage,
  },
);
feed.watchTickers();
$("side-toggle").addEventListener("click", () => document.querySelector("main").classList.toggle("side-toggled"));

$("tz").addEventListener("click", () => {
  state.utc = !state.utc;
  $("tz").textContent = state.utc ? "UTC" : "local";
  applyTimeOptions();
  showLegend(state.candles.at(-1));
  renderTrades();
});
$("tz").textContent = state.utc ? "UTC" : "local";

async function refreshSymbols() {
  try {
    const response = await fetch("/api/v1/symbols");
    if (!response.ok) throw new Error(`GET /api/v1/symbols: ${response.status}`);
    const list = await response.json();
    const entries = list.map((s) => ({
      symbol: s.symbol,
      ticker: s.ticker ?? null,
      name: s.name ?? null,
      label: `${symbolTitle(s)}  ${formatPrice(s.last_price, 4)}`,
    }));
    if (state.symbol && !entries.some((entry) => entry.symbol === state.symbol)) {
      entries.unshift({ symbol: state.symbol, ticker: null, name: null, label: `${shortMint(state.symbol)}  —` });
    }
    const named = state.symbol && title(state.symbol);
    picker.setEntries(entries, state.symbol);
    if (state.symbol && title(state.symbol) !== named) {
      // The current symbol's name arrived: the titles follow.
      document.title = `${title(state.symbol)} ${state.interval} · kline`;
      showLegend(state.candles.at(-1));
    }
    if (!state.symbol && list.length) show(list[0].symbol, state.interval);
  } catch (error) {
    recordError({ code: 0, message: error.message });
  }
}
refreshSymbols();
setInterval(refreshSymbols, SYMBOLS_REFRESH_MS);
applyTimeOptions();
if (state.symbol) show(state.symbol, state.interval);

// ---- the read-only hook ----

Object.defineProperty(window, "__kline", {
  value: Object.freeze({
    get status() {
      return state.status.state;
    },
    get subscription() {
      return { symbol: state.symbol, interval: state.interval, confirmed: feed.stats.confirmed };
    },
    get counts() {
      const { connections, subscribes, snapshots, resumes, updates, olderPages, tradeSnapshots, trades } = feed.stats;
      const { tickerSnapshots, tickerUpdates, sparklineRequests } = feed.stats;
      return {
        connections, subscribes, snapshots, resumes, updates, olderPages, tradeSnapshots, trades,
        tickerSnapshots, tickerUpdates, sparklineRequests, ...state.counts,
      };
    },
    /** The watchlist as drawn, top to bottom: each row's mint, star, highlight and cell texts. */
    get watchlist() {
      return watchlist.drawnRows();
    },
    get lastSubscribe() {
      return feed.stats.lastSubscribe && { ...feed.stats.lastSubscribe };
    },
    /** What the chart itself holds (its series data), not the page's model. */
    get bars() {
      return series.data().map(toBar);
    },
    get lastBar() {
      const bar = series.data().at(-1);
      return bar ? toBar(bar) : null;
    },
    /** The volume histogram's data: `{time, value}` per bar. */
    get volumeBars() {
      return volumeSeries.data().map((bar) => ({ time: bar.time, value: bar.value }));
    },
    get hasOlder() {
      return state.hasOlder;
    },
    /** The trades list as drawn: each row's trade id and text, newest first. */
    get trades() {
      return [...document.querySelectorAll("#trade-list li")].map((li) => ({ id: li.dataset.id, text: li.textContent }));
    },
    get lastTradesSubscribe() {
      return feed.stats.lastTradesSubscribe && { ...feed.stats.lastTradesSubscribe };
    },
    /** Each indicator line as the chart holds it: `{"sma": [{time, value}], "bb.upper": …}`. */
    get indicatorSeries() {
      return overlay.seriesData();
    },
    /** The indicator legend as drawn: `[{kind, text}]`. */
    get indicatorLegend() {
      return [...document.querySelectorAll("#indicator-legend span")].map((s) => ({ kind: s.dataset.kind, text: s.textContent }));
    },
    /** The pure formulas (indicators.js), for tests against hand-computed values. */
    indicatorMath,
    /** Viewport coordinates of the candle at `time` (mid-height of the chart), where a pointer shows it. */
    pointAt(time) {
      const x = chart.timeScale().timeToCoordinate(time);
      if (x === null) return null;
      const box = $("chart").getBoundingClientRect();
      return { x: Math.round(box.left + x), y: Math.round(box.top + box.height / 2) };
    },
    get priceLabels() {
      return state.priceLabels.slice();
    },
    get errors() {
      return state.errors.slice();
    },
    get utc() {
      return state.utc;
    },
    /** The current symbol's title, and the picker as shown: its search text and its options' texts. */
    get title() {
      return state.symbol ? title(state.symbol) : null;
    },
    get picker() {
      const options = [...$("symbol").options].map((option) => ({ value: option.value, text: option.textContent }));
      return { search: $("symbol-search").value, options };
    },
    formatPrice,
    formatVolume,
  }),
});
