// The watchlist's state without the DOM: every mint's newest ticker (from `tickers_snapshot` and
// `tickers`, docs/protocol.md "Tickers"), the starred mints (kept in localStorage), the sort and the filter,
// and from them the rows in the order they are shown.
//
// Order: starred rows first, then by the sort (24h change or 24h SOL volume, highest first; or name, A to
// Z, by the text shown: `TICKER · name`, or the address when the token has no name); choosing the same
// sort again reverses it; ties go by address, so the order never flickers between equal rows.

import { matchesQuery, tokenLabel } from "./symbol-picker.js";

const STARS_KEY = "kline.watchlist.stars";

/** The text a row is named by (and sorted by, for "name"). */
export const rowLabel = (ticker) => tokenLabel(ticker) || ticker.symbol;

const SORT_KEYS = {
  change: { value: (t) => t.price_change_percent, descending: true },
  volume: { value: (t) => t.quote_volume, descending: true },
  name: { value: (t) => rowLabel(t).toLowerCase(), descending: false },
};

/** The starred mints, saved in `storage` (localStorage) as a JSON array whenever they change. */
export class StarStore {
  constructor(storage) {
    this.storage = storage;
    this.starred = new Set();
    try {
      const saved = JSON.parse(storage?.getItem(STARS_KEY) ?? "[]");
      if (Array.isArray(saved)) this.starred = new Set(saved.filter((s) => typeof s === "string"));
    } catch {
      // A damaged entry is forgotten, not fatal.
    }
  }

  has(symbol) {
    return this.starred.has(symbol);
  }

  toggle(symbol) {
    if (!this.starred.delete(symbol)) this.starred.add(symbol);
    try {
      this.storage?.setItem(STARS_KEY, JSON.stringify([...this.starred]));
    } catch {
      // Storage full or disabled: the star holds for this page only.
    }
  }
}

export class WatchlistModel {
  constructor(stars) {
    this.stars = stars;
    this.tickers = new Map(); // symbol -> newest ticker
    this.sort = { key: "change", descending: true };
    this.query = "";
  }

  /** Takes a `tickers_snapshot` (the whole state) or a `tickers` message; returns the mints that changed. */
  apply(tickers, { snapshot }) {
    if (snapshot) this.tickers.clear();
    for (const ticker of tickers) this.tickers.set(ticker.symbol, ticker);
    return tickers.map((ticker) => ticker.symbol);
  }

  /** Sorts by `key` ("change", "volume", "name"); the key already sorted by is reversed. */
  sortBy(key) {
    if (!SORT_KEYS[key]) return;
    this.sort =
      this.sort.key === key
        ? { key, descending: !this.sort.descending }
        : { key, descending: SORT_KEYS[key].descending };
  }

  /** The tickers that match the filter, in the order shown, at most `limit` of them; and how many matched. */
  rows(limit) {
    const matching = [...this.tickers.values()].filter((t) => matchesQuery(t, this.query));
    const value = SORT_KEYS[this.sort.key].value;
    const direction = this.sort.descending ? -1 : 1;
    const compare = (a, b) => {
      const starred = Number(this.stars.has(b.symbol)) - Number(this.stars.has(a.symbol));
      if (starred) return starred;
      const [x, y] = [value(a), value(b)];
      if (x !== y) return (x < y ? -1 : 1) * direction;
      return a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0;
    };
    return { shown: matching.sort(compare).slice(0, limit), matched: matching.length };
  }
}
