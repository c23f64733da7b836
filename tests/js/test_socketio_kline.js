// The old Spin Pet server's client flow (its test_kline_websocket.js), with assertions, against our
// Socket.IO endpoint, once per transport (websocket, then polling). socket.io-client 4.8, as the old
// server's scripts and front-ends use it (the websocket run is served by the server's own transport, checked
// on /metrics; then a polling client that upgrades, socketioxide's):
//   1. connect to /kline: connection_success;
//   2. subscribe s1, s30, m5: history_data (newest first) then subscription_confirmed, then kline_data;
//   3. history s1 limit 10;
//   4. unsubscribe s30: unsubscribe_confirmed, and no s30 update after it;
//   5. resubscribe s30: history_data, subscription_confirmed, updates again;
//   6. the old script's invalid mints (TEST_MINT_0..4) and payloads that do not parse: error 1001;
//   7. ping: pong;
//   and the trades of the old server's newest branch: `history_event_data` (the latest events, newest first)
//   between `history_data` and `subscription_confirmed`, then live `event_data` once per socket (not once
//   per subscribed interval), in block order, none already in the first snapshot.
// Env: KLINE_HTTP_URL (http://host:port), KLINE_MINT (a mint the simulator trades).
const { io } = require('socket.io-client');
const assert = require('assert');

const SERVER_URL = process.env.KLINE_HTTP_URL || 'http://127.0.0.1:8080';
const MINT = process.env.KLINE_MINT;
const INTERVALS = ['s1', 's30', 'm5'];
const CANDLE_KEYS = ['close', 'high', 'is_final', 'low', 'open', 'time', 'update_count', 'update_type', 'volume'];
const WAIT_MS = 15000;
const TRADE_EVENTS = ['BuySell', 'LongShort', 'FullClose', 'PartialClose'];
const eventKey = (e) => `${e.event_data.signature}:${e.event_data.event_index || 0}`;

/// Records every event of a socket, so a step can wait for the next one that matches.
class Recorder {
    constructor(socket) {
        this.events = [];
        this.waiters = [];
        socket.onAny((event, ...args) => {
            assert.strictEqual(args.length, 1, `${event} carries one argument`);
            this.events.push({ event, data: args[0] });
            this.waiters = this.waiters.filter((w) => !w.check());
        });
    }

    /// Resolves with the first event from index `from` on that matches; rejects after WAIT_MS.
    next(what, match, from = 0) {
        return new Promise((resolve, reject) => {
            const check = () => {
                for (let i = from; i < this.events.length; i++) {
                    if (match(this.events[i])) {
                        clearTimeout(timer);
                        resolve({ ...this.events[i], index: i });
                        return true;
                    }
                }
                return false;
            };
            const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
            if (!check()) this.waiters.push({ check });
        });
    }

    mark() {
        return this.events.length;
    }
}

const isEvent = (name, fn = () => true) => (e) => e.event === name && fn(e.data);
const forSeries = (interval) => (d) => d.symbol === MINT && d.interval === interval;

function checkCandle(candle) {
    assert.deepStrictEqual(Object.keys(candle).sort(), CANDLE_KEYS);
    assert.ok(Number.isInteger(candle.time) && candle.time > 1.5e9 && candle.time < 1e10, 'time in Unix seconds');
    assert.ok(candle.low <= candle.open && candle.open <= candle.high, 'low <= open <= high');
    assert.ok(candle.low <= candle.close && candle.close <= candle.high, 'low <= close <= high');
    assert.ok(Number.isFinite(candle.volume) && candle.volume >= 0, 'volume: the token volume (the old server sent 0)');
    assert.strictEqual(candle.update_type, candle.is_final ? 'final' : 'realtime');
    assert.ok(candle.update_count >= 1);
}

function checkEventUpdate(update) {
    assert.deepStrictEqual(Object.keys(update).sort(), ['event_data', 'event_type', 'symbol', 'timestamp']);
    assert.strictEqual(update.symbol, MINT);
    assert.ok(TRADE_EVENTS.includes(update.event_type), `a price event: ${update.event_type}`);
    assert.strictEqual(update.event_data.event_type, update.event_type, 'event_data carries its event_type tag');
    assert.strictEqual(update.event_data.mint_account, MINT);
    assert.ok(Number.isInteger(update.event_data.slot));
    assert.strictEqual(typeof update.event_data.signature, 'string');
    assert.ok(Math.abs(update.timestamp - Date.now()) < 3600000, 'timestamp in Unix ms');
}

function checkHistoryEvents(data) {
    assert.deepStrictEqual(Object.keys(data).sort(), ['data', 'has_more', 'symbol', 'total_count']);
    assert.strictEqual(data.symbol, MINT);
    assert.ok(data.data.length > 0 && data.data.length <= 300, `1..300 events, got ${data.data.length}`);
    assert.strictEqual(data.total_count, data.data.length);
    assert.strictEqual(typeof data.has_more, 'boolean');
    data.data.forEach(checkEventUpdate);
    for (let i = 1; i < data.data.length; i++) {
        assert.ok(data.data[i - 1].event_data.slot >= data.data[i].event_data.slot, 'history_event_data is newest first');
    }
}

function checkHistory(data, interval, limit) {
    assert.deepStrictEqual(Object.keys(data).sort(), ['data', 'has_more', 'interval', 'symbol', 'total_count']);
    assert.strictEqual(data.symbol, MINT);
    assert.strictEqual(data.interval, interval);
    assert.ok(data.data.length > 0 && data.data.length <= limit, `1..${limit} candles, got ${data.data.length}`);
    data.data.forEach(checkCandle);
    for (let i = 1; i < data.data.length; i++) {
        assert.ok(data.data[i - 1].time > data.data[i].time, 'history_data is newest first');
    }
    assert.strictEqual(typeof data.has_more, 'boolean');
    assert.ok(data.total_count >= data.data.length, 'total_count counts the whole series');
    assert.strictEqual(data.has_more, data.total_count > data.data.length);
}

async function subscribe(socket, rec, interval, id) {
    const from = rec.mark();
    socket.emit('subscribe', { symbol: MINT, interval, subscription_id: id });
    const history = await rec.next(`history_data ${interval}`, isEvent('history_data', forSeries(interval)), from);
    checkHistory(history.data, interval, 100);
    const confirmed = await rec.next(`subscription_confirmed ${interval}`,
        isEvent('subscription_confirmed', forSeries(interval)), from);
    assert.ok(history.index < confirmed.index, 'history_data comes before subscription_confirmed');
    const events = await rec.next(`history_event_data ${interval}`,
        isEvent('history_event_data', (d) => d.symbol === MINT), history.index);
    assert.ok(events.index < confirmed.index, 'history_event_data comes before subscription_confirmed');
    checkHistoryEvents(events.data);
    assert.deepStrictEqual(confirmed.data,
        { symbol: MINT, interval, subscription_id: id, success: true, message: '订阅成功' });
    const update = await rec.next(`kline_data ${interval}`, isEvent('kline_data', forSeries(interval)), confirmed.index);
    assert.deepStrictEqual(Object.keys(update.data).sort(), ['data', 'interval', 'subscription_id', 'symbol', 'timestamp']);
    assert.strictEqual(update.data.subscription_id, null);
    assert.ok(Math.abs(update.data.timestamp - Date.now()) < 60000, 'timestamp in Unix ms');
    checkCandle(update.data.data);
    // Snapshot, then only newer states of each candle: an update of a candle the snapshot holds (e.g. the
    // final of the previous one, sent when its time was up) must be newer than the snapshot's state of it;
    // a candle older than the whole snapshot never comes.
    const candle = update.data.data;
    const oldest = history.data.data[history.data.data.length - 1];
    assert.ok(!oldest || candle.time >= oldest.time, 'no update older than the snapshot');
    const known = history.data.data.find((c) => c.time === candle.time);
    if (known) {
        const newer = candle.update_count > known.update_count
            || (candle.update_count === known.update_count && candle.is_final && !known.is_final);
        assert.ok(newer, `no older or equal state than the snapshot's: ${JSON.stringify(known)} then ${JSON.stringify(candle)}`);
    }
    return update;
}

async function run(transport) {
    const socket = io(`${SERVER_URL}/kline`, { transports: [transport], reconnection: false, timeout: 10000 });
    const rec = new Recorder(socket);
    const passed = [];
    try {
        // 1. connection_success
        const hello = await rec.next('connection_success', isEvent('connection_success'));
        assert.strictEqual(socket.io.engine.transport.name, transport);
        if (transport === 'websocket') {
            // Served by the server's own websocket transport, not socketioxide's.
            const metrics = await (await fetch(`${SERVER_URL}/metrics`)).text();
            const own = metrics.match(/^kline_socketio_websocket_connections_active (\d+)/m);
            assert.ok(own && Number(own[1]) >= 1, 'the socket is counted on the own websocket transport');
        }
        assert.strictEqual(typeof hello.data.client_id, 'string');
        assert.ok(Math.abs(hello.data.server_time - Date.now() / 1000) < 60, 'server_time in Unix seconds');
        assert.ok(Array.isArray(hello.data.supported_symbols));
        for (const interval of INTERVALS) assert.ok(hello.data.supported_intervals.includes(interval));
        passed.push('connection_success');

        // 2. three intervals
        for (const interval of INTERVALS) {
            await subscribe(socket, rec, interval, `test_${interval}_${Date.now()}`);
        }
        passed.push('subscribe s1/s30/m5 (history_event_data between history_data and subscription_confirmed)');

        // Live trades: `event_data` once per socket although three intervals of the mint are subscribed.
        let liveAt = rec.mark();
        for (let i = 0; i < 5; i++) {
            liveAt = (await rec.next('event_data', isEvent('event_data', (d) => d.symbol === MINT), liveAt)).index + 1;
        }
        passed.push('event_data live');

        // 3. history
        let from = rec.mark();
        socket.emit('history', { symbol: MINT, interval: 's1', limit: 10 });
        const history = await rec.next('history_data (limit 10)', isEvent('history_data', forSeries('s1')), from);
        checkHistory(history.data, 's1', 10);
        passed.push('history limit 10');

        // 4. unsubscribe s30: confirmed, and nothing of s30 after it while s1 goes on
        from = rec.mark();
        socket.emit('unsubscribe', { symbol: MINT, interval: 's30', subscription_id: 'test_s30_unsubscribe' });
        const gone = await rec.next('unsubscribe_confirmed', isEvent('unsubscribe_confirmed'), from);
        assert.deepStrictEqual(gone.data,
            { symbol: MINT, interval: 's30', subscription_id: 'test_s30_unsubscribe', success: true });
        let s1Updates = gone.index;
        for (let i = 0; i < 5; i++) {
            s1Updates = (await rec.next('s1 updates after unsubscribe', isEvent('kline_data', forSeries('s1')),
                s1Updates + 1)).index;
        }
        const s30After = rec.events.slice(gone.index).filter(isEvent('kline_data', forSeries('s30')));
        assert.strictEqual(s30After.length, 0, 'no s30 update after unsubscribe_confirmed');
        passed.push('unsubscribe s30');

        // 5. resubscribe
        await subscribe(socket, rec, 's30', `test_s30_resubscribe_${Date.now()}`);
        passed.push('resubscribe s30');

        // 6. the old script's invalid mints, then payloads that do not parse
        from = rec.mark();
        for (let i = 0; i < 5; i++) {
            socket.emit('subscribe', { symbol: `TEST_MINT_${i}`, interval: 's1', subscription_id: `stress_test_${i}` });
        }
        let at = from;
        for (let i = 0; i < 5; i++) {
            const error = await rec.next(`error for TEST_MINT_${i}`, isEvent('error'), at);
            assert.deepStrictEqual(Object.keys(error.data).sort(), ['code', 'message']);
            assert.strictEqual(error.data.code, 1001);
            assert.match(error.data.message, /^Invalid symbol format/);
            at = error.index + 1;
        }
        socket.emit('subscribe', 'not an object');
        const unparsable = await rec.next('error for a string payload', isEvent('error'), at);
        assert.strictEqual(unparsable.data.code, 1001);
        assert.match(unparsable.data.message, /invalid `subscribe` payload/);
        socket.emit('history', { symbol: MINT, interval: 'h2' });
        const badInterval = await rec.next('error for interval h2', isEvent('error'), unparsable.index + 1);
        assert.strictEqual(badInterval.data.code, 1001);
        assert.match(badInterval.data.message, /^Invalid interval: h2, must be one of: s1, s15, s30/);
        passed.push('invalid mints and payloads get error 1001');

        // 7. ping
        from = rec.mark();
        socket.emit('ping', {});
        const pong = await rec.next('pong', isEvent('pong'), from);
        assert.ok(Math.abs(pong.data.server_time - Date.now() / 1000) < 60);
        passed.push('ping');

        // Every update of every series, in order per candle: never an older state after a newer one.
        const last = new Map();
        for (const e of rec.events.filter(isEvent('kline_data'))) {
            const key = `${e.data.interval}:${e.data.data.time}`;
            const seen = last.get(key);
            if (seen) {
                assert.ok(e.data.data.update_count >= seen.update_count, `${key}: update_count never goes back`);
                assert.ok(!(seen.is_final && !e.data.data.is_final), `${key}: nothing after its final`);
            }
            last.set(key, e.data.data);
        }
        passed.push('updates in order');

        // Every event_data once, in block order, none of them already in the first history_event_data.
        const firstSnapshot = rec.events.find(isEvent('history_event_data'));
        const known = new Set(firstSnapshot.data.data.map(eventKey));
        let previous = null;
        for (const e of rec.events.filter(isEvent('event_data'))) {
            checkEventUpdate(e.data);
            const key = eventKey(e.data);
            assert.ok(!known.has(key), `event_data ${key} came once (not twice, not also in the snapshot)`);
            known.add(key);
            if (previous) assert.ok(e.data.event_data.slot >= previous.event_data.slot, 'event_data in block order');
            previous = e.data;
        }
        passed.push('event_data once per socket, in block order');
    } finally {
        socket.disconnect();
    }
    for (const name of passed) console.log(`✓ [${transport}] ${name}`);
    return passed.length;
}

/// socket.io-client's default: polling first, then the upgrade to websocket (socketioxide serves both).
async function runUpgrade() {
    const socket = io(`${SERVER_URL}/kline`, { transports: ['polling', 'websocket'], reconnection: false, timeout: 10000 });
    const rec = new Recorder(socket);
    try {
        await rec.next('connection_success', isEvent('connection_success'));
        if (socket.io.engine.transport.name !== 'websocket') {
            await new Promise((resolve, reject) => {
                const timer = setTimeout(() => reject(new Error('timed out waiting for the upgrade')), WAIT_MS);
                socket.io.engine.once('upgrade', () => { clearTimeout(timer); resolve(); });
            });
        }
        const from = rec.mark();
        socket.emit('ping', {});
        await rec.next('pong after the upgrade', isEvent('pong'), from);
    } finally {
        socket.disconnect();
    }
    console.log('✓ [polling→websocket] upgraded, then ping: pong');
    return 1;
}

(async () => {
    assert.ok(MINT, 'KLINE_MINT is set');
    let passed = 0;
    for (const transport of ['websocket', 'polling']) passed += await run(transport);
    passed += await runUpgrade();
    console.log(`socketio-client: ${passed} passed, 0 failed`);
    process.exit(0);
})().catch((err) => {
    console.error('✗ Socket.IO client test failed:', err);
    console.log('socketio-client: 0 passed, 1 failed');
    process.exit(1);
});
