// The reference browser client of contract v1 (docs/protocol.md): one WebSocket to `/ws`, one
// subscription at a time, reconnection with capped jittered backoff, resume with `from`, paging back
// with `history` + `to`, an application-level `ping` for the round-trip time, and the symbol's trades
// (`subscribe_trades`, resumed with `after` = the newest trade held). Beside the chart: every mint's ticker
// (`subscribe_tickers`, subscribed again after each reconnect: its snapshot is the whole state) and small
// candle reads for the watchlist's sparklines (`history` with `subscription_id` "sparkline").
//
// It knows nothing about charts: it reports what arrived through the handlers given to the constructor.
//
//   const feed = new CandleFeed(wsUrl, {
//     newestTime: () => time of the newest candle held for the current pair, or undefined,
//     onStatus(status),                 // {state: "connecting"|"connected"|"reconnecting", retryInMs, rttMs}
//     onSnapshot(pair, candles, {hasMore, resumedFrom}),  // answer to our subscribe; resumedFrom: null or `from`
//     onOlder(pair, candles, {hasMore}),                   // answer to requestOlder()
//     onCandle(pair, candle, producedAtMs),                // one live `kline_data`
//     onError(error),                   // a server `error` payload
//     newestTradeId: () => id of the newest trade held for the current symbol, or undefined,
//     onTrades(symbol, trades, {resumed}),  // `trades_snapshot` (newest first); resumed: it follows newestTradeId
//     onTrade(symbol, trade),           // one live `trade`
//     onTickers(tickers, {snapshot, timestamp}),  // `tickers_snapshot` (snapshot: true) or `tickers`
//     onSparkline(symbol, candles),     // answer to requestSparkline()
//   });
//   feed.watch(symbol, interval);       // (re)subscribe; unsubscribes the previous pair
//   feed.requestOlder(oldestTime);      // one page of older candles
//   feed.watchTickers();                // every mint's ticker, from now on and after every reconnect
//   feed.requestSparkline(symbol, from, limit);  // `m1` candles from `from`; false when not connected

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
const PING_EVERY_MS = 10_000;
const TICKERS_ID = "watchlist";
const SPARKLINE_ID = "sparkline";

export class CandleFeed {
  constructor(url, handlers, { pageSize = 500, tradesKept = 50 } = {}) {
    this.url = url;
    this.handlers = handlers;
    this.pageSize = pageSize;
    this.tradesKept = tradesKept;
    this.tradesResumed = false;
    this.pair = null; // {symbol, interval, generation}
    this.generation = 0;
    this.socket = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pingSentAt = null;
    this.olderPending = false;
    this.tickersWanted = false;
    this.status = { state: "connecting", retryInMs: null, rttMs: null };
    this.stats = {
      connections: 0,
      subscribes: 0,
      snapshots: 0,
      resumes: 0,
      updates: 0,
      olderPages: 0,
      confirmed: false,
      lastSubscribe: null,
      tradeSnapshots: 0,
      trades: 0,
      lastTradesSubscribe: null,
      tickerSnapshots: 0,
      tickerUpdates: 0,
      sparklineRequests: 0,
    };
    this.connect();
  }

  /** Shows `symbol` `interval` from now on: unsubscribes the previous pair, subscribes to this one. */
  watch(symbol, interval) {
    const previous = this.pair;
    this.pair = { symbol, interval, generation: ++this.generation };
    this.olderPending = false;
    this.stats.confirmed = false;
    if (!this.isOpen()) return; // subscribed on connection_success
    if (previous && (previous.symbol !== symbol || previous.interval !== interval)) {
      this.send({ msg_type: "unsubscribe", symbol: previous.symbol, interval: previous.interval });
    }
    const newSymbol = !previous || previous.symbol !== symbol;
    if (previous && newSymbol) this.send({ msg_type: "unsubscribe_trades", symbol: previous.symbol });
    this.subscribe(false);
    if (newSymbol) this.subscribeTrades(false);
  }

  /** Asks for the page of candles just older than `oldestTime`; one request at a time. */
  requestOlder(oldestTime) {
    if (!this.pair || this.olderPending || !this.isOpen()) return false;
    this.olderPending = true;
    this.send({
      msg_type: "history",
      symbol: this.pair.symbol,
      interval: this.pair.interval,
      subscription_id: `older-${this.pair.generation}`,
      to: oldestTime,
      limit: this.pageSize,
    });
    return true;
  }

  /** Every mint's ticker from now on; subscribed again on every (re)connection. */
  watchTickers() {
    this.tickersWanted = true;
    if (this.isOpen()) this.subscribeTickers();
  }

  /**
   * Asks for `symbol`'s `m1` candles from `from` (Unix s), at most `limit`: the seed of a sparkline. The
   * answer goes to `onSparkline`. False (nothing sent) while not connected, so the caller can ask later.
   */
  requestSparkline(symbol, from, limit) {
    if (!this.isOpen()) return false;
    this.stats.sparklineRequests += 1;
    this.send({ msg_type: "history", symbol, interval: "m1", subscription_id: SPARKLINE_ID, from, limit });
    return true;
  }

  /** Drops the connection and reconnects at once (resuming). */
  reconnectNow() {
    this.attempt = 0;
    if (this.socket) this.socket.close();
    else this.connect();
  }

  isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN && this.status.state === "connected";
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setStatus({ state: this.stats.connections === 0 ? "connecting" : "reconnecting", retryInMs: null });
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearInterval(this.pingTimer);
      this.stats.confirmed = false;
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    // Capped exponential backoff with jitter, so a restarted server is not hit by every tab at once.
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt += 1;
    this.setStatus({ state: "reconnecting", retryInMs: delay, rttMs: null });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Subscribes to the current pair; `resume` asks for everything from the newest candle we hold. */
  subscribe(resume) {
    const { symbol, interval, generation } = this.pair;
    const request = { msg_type: "subscribe", symbol, interval, subscription_id: `live-${generation}` };
    const from = resume ? this.handlers.newestTime() : undefined;
    if (from !== undefined) request.from = from;
    else request.limit = this.pageSize;
    this.stats.subscribes += 1;
    this.stats.lastSubscribe = request;
    this.send(request);
  }

  /** Subscribes to the current symbol's trades; `resume` asks for those after the newest trade held. */
  subscribeTrades(resume) {
    const symbol = this.pair.symbol;
    const request = { msg_type: "subscribe_trades", symbol, limit: this.tradesKept };
    const after = resume && this.handlers.newestTradeId ? this.handlers.newestTradeId() : undefined;
    if (after !== undefined) request.after = after;
    this.tradesResumed = after !== undefined;
    this.stats.lastTradesSubscribe = request;
    this.send(request);
  }

  subscribeTickers() {
    this.send({ msg_type: "subscribe_tickers", subscription_id: TICKERS_ID });
  }

  send(request) {
    this.socket.send(JSON.stringify(request));
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      console.warn("kline: a message that is not JSON", text);
      return;
    }
    const data = message.data;
    switch (message.type) {
      case "connection_success":
        this.stats.connections += 1;
        this.attempt = 0;
        this.setStatus({ state: "connected", retryInMs: null });
        this.startPinging();
        if (this.pair) {
          this.subscribe(true);
          this.subscribeTrades(true);
        }
        if (this.tickersWanted) this.subscribeTickers();
        break;
      case "tickers_snapshot":
        this.stats.tickerSnapshots += 1;
        this.handlers.onTickers?.(data.data, { snapshot: true, timestamp: message.timestamp });
        break;
      case "tickers":
        this.stats.tickerUpdates += 1;
        this.handlers.onTickers?.(data.data, { snapshot: false, timestamp: message.timestamp });
        break;
      case "trades_snapshot":
        if (this.pair && data.symbol === this.pair.symbol) {
          this.stats.tradeSnapshots += 1;
          this.handlers.onTrades?.(data.symbol, data.data, { resumed: this.tradesResumed });
        }
        break;
      case "trade":
        if (this.pair && data.symbol === this.pair.symbol) {
          this.stats.trades += 1;
          this.handlers.onTrade?.(data.symbol, data);
        }
        break;
      case "history_data":
        this.receiveHistory(data);
        break;
      case "subscription_confirmed":
        if (this.pair && data.subscription_id === `live-${this.pair.generation}`) this.stats.confirmed = true;
        break;
      case "kline_data":
        if (this.isCurrent(data)) {
          this.stats.updates += 1;
          this.handlers.onCandle(this.pair, data.data, data.timestamp);
        }
        break;
      case "pong":
        if (this.pingSentAt !== null) this.setStatus({ rttMs: Math.round(performance.now() - this.pingSentAt) });
        this.pingSentAt = null;
        break;
      case "error":
        if (this.pair && data.subscription_id === `older-${this.pair.generation}`) this.olderPending = false;
        this.handlers.onError(data);
        break;
      default:
        break; // unsubscribe_confirmed, trades_unsubscribed, and kinds a newer server may add
    }
  }

  receiveHistory(data) {
    if (data.subscription_id === SPARKLINE_ID) {
      this.handlers.onSparkline?.(data.symbol, data.data);
      return;
    }
    if (!this.pair) return;
    const { generation } = this.pair;
    if (data.subscription_id === `live-${generation}`) {
      const from = this.stats.lastSubscribe.from;
      const resumedFrom = from === undefined ? null : from;
      this.stats.snapshots += 1;
      if (resumedFrom !== null) this.stats.resumes += 1;
      this.handlers.onSnapshot(this.pair, data.data, { hasMore: data.has_more, resumedFrom });
    } else if (data.subscription_id === `older-${generation}`) {
      this.olderPending = false;
      this.stats.olderPages += 1;
      this.handlers.onOlder(this.pair, data.data, { hasMore: data.has_more });
    }
  }

  isCurrent(data) {
    return this.pair !== null && data.symbol === this.pair.symbol && data.interval === this.pair.interval;
  }

  startPinging() {
    clearInterval(this.pingTimer);
    const ping = () => {
      if (!this.isOpen()) return;
      if (this.pingSentAt !== null && performance.now() - this.pingSentAt > 2 * PING_EVERY_MS) {
        this.socket.close(); // no pong for two rounds: the connection is dead, start over
        return;
      }
      if (this.pingSentAt === null) this.pingSentAt = performance.now();
      this.send({ msg_type: "ping" });
    };
    ping();
    this.pingTimer = setInterval(ping, PING_EVERY_MS);
  }

  setStatus(change) {
    this.status = { ...this.status, ...change };
    this.handlers.onStatus(this.status);
  }
}
