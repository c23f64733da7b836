// Indicator formulas, computed on the page from the candles it holds (the protocol carries none). Pure
// functions over a series, oldest first, with one result per element: `null` where the indicator is not
// defined yet. The terminal client computes the same (client-tui/src/indicators/math.rs).
//
// - SMA(p): the mean of the last p closes.
// - EMA(p): seeded with the SMA of the first p closes, then ema = α·close + (1 − α)·ema, α = 2 / (p + 1).
// - Bollinger(p, k): SMA(p) as the middle band, middle ± k·σ, σ the population standard deviation of the
//   same p closes.
// - VWAP: Σ(typical price × volume) / Σ volume, typical price (high + low + close) / 3, token volume,
//   summed from the first candle held of each UTC day (it restarts at 00:00 UTC).

const SECS_PER_DAY = 86_400;

/** Simple moving average of `period` values ending at each index. */
export function sma(values, period) {
  const out = new Array(values.length).fill(null);
  if (!(period >= 1)) return out;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    if (i >= period) sum -= values[i - period];
    if (i + 1 >= period) out[i] = sum / period;
  }
  return out;
}

/** Exponential moving average seeded with the SMA of the first `period` values. */
export function ema(values, period) {
  const out = new Array(values.length).fill(null);
  if (!(period >= 1) || values.length < period) return out;
  const alpha = 2 / (period + 1);
  let current = values.slice(0, period).reduce((a, b) => a + b, 0) / period;
  out[period - 1] = current;
  for (let i = period; i < values.length; i++) {
    current = alpha * values[i] + (1 - alpha) * current;
    out[i] = current;
  }
  return out;
}

/** Bollinger bands `{upper, middle, lower}`: SMA(`period`) ± `k` population standard deviations. */
export function bollinger(values, period, k) {
  return sma(values, period).map((middle, i) => {
    if (middle === null) return null;
    let squares = 0;
    for (let j = i + 1 - period; j <= i; j++) squares += (values[j] - middle) ** 2;
    const spread = k * Math.sqrt(squares / period);
    return { upper: middle + spread, middle, lower: middle - spread };
  });
}

/** Volume-weighted average price since the first candle of each UTC day in `candles` (ascending). */
export function vwapDaily(candles) {
  let day = null;
  let weighted = 0;
  let volume = 0;
  return candles.map((candle) => {
    const candleDay = Math.floor(candle.time / SECS_PER_DAY);
    if (candleDay !== day) {
      day = candleDay;
      weighted = 0;
      volume = 0;
    }
    const traded = candle.volume ?? 0;
    if (Number.isFinite(traded) && traded > 0) {
      weighted += ((candle.high + candle.low + candle.close) / 3) * traded;
      volume += traded;
    }
    return volume > 0 ? weighted / volume : null;
  });
}

/**
 * The lines of one indicator over `candles`: `[{key, values}]`, one line for `sma`, `ema` and `vwap`,
 * three for `bb` (`bb.upper`, `bb.middle`, `bb.lower`).
 */
export function indicatorLines(kind, candles, { period = 20, k = 2 } = {}) {
  const closes = () => candles.map((c) => c.close);
  switch (kind) {
    case "sma":
      return [{ key: "sma", values: sma(closes(), period) }];
    case "ema":
      return [{ key: "ema", values: ema(closes(), period) }];
    case "vwap":
      return [{ key: "vwap", values: vwapDaily(candles) }];
    case "bb": {
      const bands = bollinger(closes(), period, k);
      return ["upper", "middle", "lower"].map((band) => ({
        key: `bb.${band}`,
        values: bands.map((b) => (b ? b[band] : null)),
      }));
    }
    default:
      throw new Error(`unknown indicator ${kind}`);
  }
}
