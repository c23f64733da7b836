// The watchlist beside the chart: one row per mint (star, `TICKER · name`, last price, 24h change, 24h SOL
// volume, the last hour's sparkline), sortable by its column headers, narrowed by its filter box; a click
// on a row opens that mint's chart. The state is watchlist-model.js; the sparklines are sparkline.js.
//
// The DOM work stays bounded: at most `MAX_ROWS` rows exist; a row is made once when it comes into the list
// and then only its changed cells are written (rows are moved, never rebuilt, when the order changes); a
// sparkline is seeded (one small `history` read, paced) only once its row scrolls into view. Names are
// anyone's words: they are set as text, never as markup.

import { formatPrice, formatVolume } from "./price-format.js";
import { MINUTES, MinuteCloses, SeedQueue, drawSparkline, sparklineElement } from "./sparkline.js";
import { shortMint, symbolTitle } from "./symbol-picker.js";
import { StarStore, WatchlistModel } from "./watchlist-model.js";

const MAX_ROWS = 200;
const REDRAW_SPARKLINES_MS = 60_000;

/** `+14.40%` / `-3.10%`. */
export const formatChange = (percent) => `${percent >= 0 ? "+" : ""}${percent.toFixed(2)}%`;

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

export class WatchlistPanel {
  /**
   * `elements`: `{scroller, rows, filter, count, sortButtons}` of chart.html; `onChoose(symbol)` opens a
   * chart; `requestSparkline(symbol, from, limit)` sends a seed read (false when it could not).
   */
  constructor(elements, { onChoose, requestSparkline, storage }) {
    this.elements = elements;
    this.onChoose = onChoose;
    this.model = new WatchlistModel(new StarStore(storage));
    this.closes = new Map(); // symbol -> MinuteCloses
    this.views = new Map(); // symbol -> {row, cells, spark} of the rows shown
    this.current = null;
    this.clockOffsetMs = 0; // server time - local time, from the tickers' timestamps
    this.seeds = new SeedQueue((symbol) => requestSparkline(symbol, (this.nowMinute() - MINUTES + 1) * 60, MINUTES));
    this.visibility = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) if (entry.isIntersecting) this.seeds.add(entry.target.dataset.symbol);
      },
      { root: elements.scroller },
    );
    elements.filter.addEventListener("input", () => {
      this.model.query = elements.filter.value;
      this.render();
    });
    for (const button of elements.sortButtons) {
      button.addEventListener("click", () => {
        this.model.sortBy(button.dataset.sort);
        this.render();
      });
    }
    setInterval(() => this.redrawSparklines(), REDRAW_SPARKLINES_MS);
    this.render();
  }

  nowMinute() {
    return Math.floor((Date.now() + this.clockOffsetMs) / 60_000);
  }

  /** A `tickers_snapshot` or `tickers` message: the changed rows are rewritten, then the order is checked. */
  setTickers(tickers, { snapshot, timestamp }) {
    if (Number.isFinite(timestamp)) this.clockOffsetMs = timestamp - Date.now();
    const minute = this.nowMinute();
    for (const symbol of this.model.apply(tickers, { snapshot })) {
      const ticker = this.model.tickers.get(symbol);
      if (!this.closes.has(symbol)) this.closes.set(symbol, new MinuteCloses());
      this.closes.get(symbol).put(minute, ticker.last_price);
      this.updateRow(symbol);
    }
    this.render();
  }

  /** The answer to a sparkline's seed read: `symbol`'s `m1` candles of the last hour. */
  seed(symbol, candles) {
    if (!this.closes.has(symbol)) this.closes.set(symbol, new MinuteCloses());
    this.closes.get(symbol).seed(candles, this.nowMinute());
    const view = this.views.get(symbol);
    if (view) drawSparkline(view.spark, this.closes.get(symbol).values(this.nowMinute()));
  }

  /** Marks the chart's mint. */
  setCurrent(symbol) {
    this.views.get(this.current)?.row.classList.remove("current");
    this.current = symbol;
    this.views.get(symbol)?.row.classList.add("current");
  }

  /** Makes the rows that came into the list, drops those that left it, and moves rows into order. */
  render() {
    const { shown, matched } = this.model.rows(MAX_ROWS);
    const wanted = new Set(shown.map((ticker) => ticker.symbol));
    for (const [symbol, view] of this.views) {
      if (wanted.has(symbol)) continue;
      this.visibility.unobserve(view.row);
      view.row.remove();
      this.views.delete(symbol);
    }
    const body = this.elements.rows;
    let cursor = body.firstChild;
    for (const ticker of shown) {
      const row = this.views.get(ticker.symbol)?.row ?? this.makeRow(ticker.symbol);
      if (row === cursor) cursor = cursor.nextSibling;
      else body.insertBefore(row, cursor);
    }
    const total = this.model.tickers.size;
    setText(this.elements.count, matched === total && shown.length === total ? `${total}` : `${shown.length} of ${total}`);
    const { key, descending } = this.model.sort;
    for (const button of this.elements.sortButtons) {
      const active = button.dataset.sort === key;
      button.classList.toggle("active", active);
      button.dataset.direction = active ? (descending ? "descending" : "ascending") : "";
    }
  }

  makeRow(symbol) {
    const row = document.createElement("tr");
    row.dataset.symbol = symbol;
    const cell = (className) => {
      const td = document.createElement("td");
      td.className = className;
      row.append(td);
      return td;
    };
    const star = document.createElement("button");
    star.className = "star";
    cell("star").append(star);
    const name = cell("name");
    const ticker = document.createElement("span");
    ticker.className = "ticker";
    const tokenName = document.createElement("span");
    tokenName.className = "token-name";
    name.append(ticker, tokenName);
    const cells = { star, name, ticker, tokenName, price: cell("price"), change: cell("change"), volume: cell("volume") };
    const spark = sparklineElement();
    cell("spark").append(spark);
    star.addEventListener("click", (event) => {
      event.stopPropagation();
      this.model.stars.toggle(symbol);
      this.updateRow(symbol);
      this.render();
    });
    row.addEventListener("click", () => this.onChoose(symbol));
    row.classList.toggle("current", symbol === this.current);
    this.views.set(symbol, { row, cells, spark });
    this.updateRow(symbol);
    this.visibility.observe(row);
    return row;
  }

  /** Writes the cells of `symbol`'s row (if shown) that differ from its ticker. */
  updateRow(symbol) {
    const view = this.views.get(symbol);
    const ticker = this.model.tickers.get(symbol);
    if (!view || !ticker) return;
    const { star, name, ticker: tickerText, tokenName, price, change, volume } = view.cells;
    const starred = this.model.stars.has(symbol);
    setText(star, starred ? "★" : "☆");
    star.setAttribute("aria-pressed", String(starred));
    star.title = starred ? "unstar" : "star: keep at the top";
    const named = ticker.ticker || ticker.name;
    setText(tickerText, named ? ticker.ticker ?? "" : shortMint(symbol));
    setText(tokenName, named ? ticker.name ?? "" : "");
    name.title = `${symbolTitle(ticker)}\n${symbol}`;
    setText(price, formatPrice(ticker.last_price, 4));
    setText(change, formatChange(ticker.price_change_percent));
    const direction = ticker.price_change_percent > 0 ? "up" : ticker.price_change_percent < 0 ? "down" : "flat";
    if (change.className !== `change ${direction}`) change.className = `change ${direction}`;
    setText(volume, formatVolume(ticker.quote_volume));
    volume.title = `${ticker.quote_volume} SOL, ${ticker.volume} tokens, ${ticker.trade_count} trades in 24h`;
    drawSparkline(view.spark, this.closes.get(symbol)?.values(this.nowMinute()) ?? []);
  }

  redrawSparklines() {
    const minute = this.nowMinute();
    for (const [symbol, view] of this.views) drawSparkline(view.spark, this.closes.get(symbol)?.values(minute) ?? []);
  }

  /** The rows as drawn, top to bottom (for tests: `window.__kline.watchlist`). */
  drawnRows() {
    return [...this.elements.rows.rows].map((row) => {
      const view = this.views.get(row.dataset.symbol);
      return {
        symbol: row.dataset.symbol,
        starred: view.cells.star.getAttribute("aria-pressed") === "true",
        current: row.classList.contains("current"),
        ticker: view.cells.ticker.textContent,
        name: view.cells.tokenName.textContent,
        price: view.cells.price.textContent,
        change: view.cells.change.textContent,
        changeClass: view.cells.change.className,
        volume: view.cells.volume.textContent,
        sparkline: view.spark.firstChild.getAttribute("points") ?? "",
        seeded: this.closes.get(row.dataset.symbol)?.seeded ?? false,
      };
    });
  }
}
