// The symbol picker and the chart's title: a search box that narrows the symbol list by ticker, name or
// address, and titles that read `TICKER · name (3bue…qAZQ)`.
//
// Token names are anyone's words (a token's creator picks them): the server sends them sanitised (no
// control characters, at most 16 / 64 characters), and this page still only ever sets them as text
// (`textContent`, `option.text`, `document.title`), never as markup.

/** `3bue…qAZQ`: a mint address's first and last four characters. */
export const shortMint = (symbol) => (symbol ? `${symbol.slice(0, 4)}…${symbol.slice(-4)}` : "—");

/** `TICKER · name`, or what of it is known ("" when the token has no name). */
export const tokenLabel = (entry) => [entry.ticker, entry.name].filter(Boolean).join(" · ");

/** `TICKER · name (3bue…qAZQ)`, or what of it is known (the short address alone when no name is). */
export function symbolTitle(entry) {
  if (!entry) return "—";
  const label = tokenLabel(entry);
  return label ? `${label} (${shortMint(entry.symbol)})` : shortMint(entry.symbol);
}

/** Whether `entry` matches the search `query` (case-insensitive, in its ticker, name or address). */
export function matchesQuery(entry, query) {
  const needle = query.trim().toLowerCase();
  if (!needle) return true;
  return [entry.ticker, entry.name, entry.symbol].some((text) => text && text.toLowerCase().includes(needle));
}

/**
 * The picker: `select` lists the symbols that match what `search` holds; choosing one (or Enter in the
 * search box, for the first match) calls `onChoose(symbol)`.
 */
export class SymbolPicker {
  constructor(select, search, onChoose) {
    this.list = select;
    this.search = search;
    this.entries = []; // {symbol, ticker, name, label}
    this.current = null;
    select.addEventListener("change", () => onChoose(select.value));
    search.addEventListener("input", () => this.render());
    search.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      const first = this.matches()[0];
      if (first) onChoose(first.symbol);
    });
  }

  /** Replaces the list: `entries` as `/api/v1/symbols` gives them, each with the text of its option. */
  setEntries(entries, current) {
    this.entries = entries;
    this.current = current;
    this.render();
  }

  /** Marks `symbol` as the chosen one. */
  select(symbol) {
    this.current = symbol;
    this.render();
  }

  /** The entry of `symbol`, if listed. */
  entry(symbol) {
    return this.entries.find((entry) => entry.symbol === symbol);
  }

  matches() {
    return this.entries.filter((entry) => matchesQuery(entry, this.search.value));
  }

  render() {
    const shown = this.matches();
    // The current symbol stays selectable (and selected) even when the search leaves it out.
    const current = this.current && this.entry(this.current);
    if (current && !shown.includes(current)) shown.unshift(current);
    this.list.replaceChildren(
      ...shown.map((entry) => {
        const option = document.createElement("option");
        option.value = entry.symbol;
        option.textContent = entry.label;
        option.title = entry.symbol;
        return option;
      }),
    );
    if (this.current) this.list.value = this.current;
  }
}
