// The watchlist's sparklines: each mint's closing price per minute over the last hour, seeded from its `m1`
// candles and kept live from its tickers (the ticker's last price goes into the current minute), drawn as an
// inline SVG polyline; and the queue that paces the seeding reads, so a long list never trips the server's
// WebSocket rate limit (20 tokens/s; a 60-candle `history` costs 1).

export const MINUTES = 60;
const WIDTH = MINUTES - 1;
const HEIGHT = 20;
const SVG = "http://www.w3.org/2000/svg";

/** One mint's closes by minute (Unix s / 60), the last `MINUTES` minutes of them. */
export class MinuteCloses {
  constructor() {
    this.byMinute = new Map();
    this.carry = undefined; // the newest close older than the window: where the line starts from
    this.seeded = false;
  }

  /** The live price: it is the close of `minute` so far. */
  put(minute, price) {
    this.byMinute.set(minute, price);
    this.trim(minute);
  }

  /** The `m1` candles read from the server; a minute already held live keeps its (newer) price. */
  seed(candles, nowMinute) {
    for (const candle of candles) {
      const minute = Math.floor(candle.time / 60);
      if (!this.byMinute.has(minute)) this.byMinute.set(minute, candle.close);
    }
    this.seeded = true;
    this.trim(nowMinute);
  }

  trim(nowMinute) {
    const first = nowMinute - MINUTES + 1;
    let newestDropped = -Infinity;
    for (const [minute, price] of this.byMinute) {
      if (minute >= first) continue;
      if (minute > newestDropped) {
        newestDropped = minute;
        this.carry = price;
      }
      this.byMinute.delete(minute);
    }
  }

  /** The window ending at `nowMinute`, one value per minute (a minute without a trade keeps the last close). */
  values(nowMinute) {
    this.trim(nowMinute);
    const values = [];
    let last = this.carry;
    for (let minute = nowMinute - MINUTES + 1; minute <= nowMinute; minute++) {
      last = this.byMinute.get(minute) ?? last;
      values.push(last);
    }
    return values;
  }
}

/**
 * `x,y` pairs for a polyline in a `WIDTH` × `HEIGHT` box: x is the minute, y the price between the
 * window's low (bottom) and high (top). Minutes before the first known price are left out; one known
 * price, or all equal, is a flat line across the middle.
 */
export function sparklinePoints(values) {
  const known = values.map((value, x) => [x, value]).filter(([, value]) => value !== undefined);
  if (!known.length) return "";
  const prices = known.map(([, value]) => value);
  const low = Math.min(...prices);
  const high = Math.max(...prices);
  if (known.length === 1 || high === low) return `0,${HEIGHT / 2} ${WIDTH},${HEIGHT / 2}`;
  const y = (price) => (1 + ((high - price) / (high - low)) * (HEIGHT - 2)).toFixed(2);
  return known.map(([x, value]) => `${x},${y(value)}`).join(" ");
}

/** An empty sparkline: an `<svg>` holding one `<polyline>`, scaled to its cell. */
export function sparklineElement() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.append(document.createElementNS(SVG, "polyline"));
  return svg;
}

/** Draws `values` into `svg` (from `sparklineElement`), green when the hour ends at or above where it began. */
export function drawSparkline(svg, values) {
  const line = svg.firstChild;
  const points = sparklinePoints(values);
  if (line.getAttribute("points") !== points) line.setAttribute("points", points);
  const known = values.filter((value) => value !== undefined);
  svg.classList.toggle("down", known.length > 1 && known.at(-1) < known[0]);
}

/**
 * Which mints' last hour to read next: `add` queues a mint once, and one read leaves every `everyMs`
 * through `read(symbol)`, which answers false when it could not be sent (the mint is queued again).
 */
export class SeedQueue {
  constructor(read, everyMs = 250) {
    this.read = read;
    this.everyMs = everyMs;
    this.waiting = [];
    this.known = new Set(); // queued or read
    this.timer = null;
  }

  add(symbol) {
    if (this.known.has(symbol)) return;
    this.known.add(symbol);
    this.waiting.push(symbol);
    this.schedule();
  }

  schedule() {
    if (this.timer === null && this.waiting.length) this.timer = setTimeout(() => this.next(), this.everyMs);
  }

  next() {
    this.timer = null;
    const symbol = this.waiting.shift();
    if (symbol !== undefined && !this.read(symbol)) this.waiting.unshift(symbol);
    this.schedule();
  }
}
