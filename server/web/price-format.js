// Price labels for Spin Pet's tiny prices (1e-9 … 1e-5 SOL): significant digits, never `0.00`; and volume
// labels (`1.25B`).
//
// Below 0.001 the zeros after the decimal point are written as a subscript count, as chart sites and the
// terminal client (client-tui/src/view/price.rs) do: 0.00000002796 → `0.0₇2796`.

const SUBSCRIPTS = ["₀", "₁", "₂", "₃", "₄", "₅", "₆", "₇", "₈", "₉"];

/** `price` with `digits` significant digits. */
export function formatPrice(price, digits = 4) {
  digits = Math.max(1, Math.min(digits, 17));
  if (!Number.isFinite(price)) return "—";
  if (price === 0) return "0";
  const sign = price < 0 ? "-" : "";
  price = Math.abs(price);
  if (price >= 0.001) {
    const magnitude = Math.floor(Math.log10(price));
    const decimals = Math.max(0, Math.min(20, digits - 1 - magnitude));
    return sign + price.toFixed(decimals);
  }
  // Exponential form gives the significant digits and the exponent exactly (after rounding).
  const [mantissa, exponent] = price.toExponential(digits - 1).split("e");
  const zeros = -Number(exponent) - 1;
  const subscript = String(zeros).split("").map((d) => SUBSCRIPTS[Number(d)]).join("");
  return `${sign}0.0${subscript}${mantissa.replace(".", "")}`;
}

/**
 * Labels for the price axis: the fewest significant digits (at least 4) that tell every tick apart, so a
 * narrow range never shows the same label twice.
 */
export function formatTickPrices(prices) {
  for (let digits = 4; digits <= 12; digits++) {
    const labels = prices.map((price) => formatPrice(price, digits));
    if (new Set(labels).size === labels.length) return labels;
  }
  return prices.map((price) => formatPrice(price, 12));
}

/**
 * The chart's price format for a series whose prices are around `price`: our labels, and a minimum move
 * of six significant digits. `base` (= 1 / minMove) is given directly because 1 / 1e-15 is not exact.
 */
export function priceFormatFor(price) {
  const magnitude = Number.isFinite(price) && price > 0 ? Math.floor(Math.log10(price)) : -8;
  const base = 10 ** Math.max(0, 5 - magnitude);
  return {
    type: "custom",
    formatter: (value) => formatPrice(value, 6),
    tickmarksFormatter: formatTickPrices,
    minMove: 1 / base,
    base,
  };
}

/** Volume labels: three significant digits with K, M, B or T. */
export function formatVolume(volume) {
  for (const [unit, suffix] of [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]]) {
    if (volume >= unit) return `${(volume / unit).toPrecision(3)}${suffix}`;
  }
  return volume.toPrecision(3);
}
