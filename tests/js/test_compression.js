// permessage-deflate on /ws seen by Node `ws` (a client the project did not write), with compression on and
// off: what is negotiated, that requests the client compresses are answered, that a history answer comes
// compressed (fewer bytes on the wire for the same candles), and a clean close. Exits non-zero on failure.
const WebSocket = require('ws');
const assert = require('assert');

const url = process.env.KLINE_WS_URL || 'ws://localhost:8080/ws';
const mint = process.env.KLINE_MINT;

/** Opens a connection and resolves once `connection_success` has arrived. */
function connect(perMessageDeflate) {
    return new Promise((resolve, reject) => {
        const socket = new WebSocket(url, { perMessageDeflate });
        socket.onerror = (event) => reject(event.error || new Error('connection failed'));
        socket.onmessage = (event) => {
            if (JSON.parse(event.data.toString()).type === 'connection_success') {
                socket.onmessage = null;
                resolve(socket);
            }
        };
    });
}

/** Sends `request` and resolves with the first message of type `kind` and the bytes read meanwhile. */
function ask(socket, request, kind) {
    return new Promise((resolve) => {
        const before = socket._socket.bytesRead;
        socket.onmessage = (event) => {
            const message = JSON.parse(event.data.toString());
            if (message.type === kind) {
                socket.onmessage = null;
                resolve({ message, wireBytes: socket._socket.bytesRead - before });
            }
        };
        socket.send(JSON.stringify(request));
    });
}

function closeCleanly(socket) {
    return new Promise((resolve) => {
        socket.onclose = (event) => resolve(event);
        socket.close(1000);
    });
}

async function main() {
    assert.ok(mint, 'KLINE_MINT is set');
    const history = { msg_type: 'history', symbol: mint, interval: 's1', limit: 1000 };
    // threshold 0: the client compresses even its small requests, so the server must inflate them.
    const compressed = await connect({ threshold: 0 });
    const plain = await connect(false);
    assert.match(compressed.extensions, /permessage-deflate/);
    assert.strictEqual(plain.extensions, '');
    console.log(`✓ negotiated: "${compressed.extensions}"; without an offer: none`);

    const pong = await ask(compressed, { msg_type: 'ping' }, 'pong');
    assert.ok(pong.message.data.server_time > 0);
    console.log('✓ a compressed ping request is answered');

    const a = await ask(plain, history, 'history_data');
    const b = await ask(compressed, history, 'history_data');
    const candles = b.message.data.data.length;
    assert.ok(candles >= 1, 'history has candles');
    assert.deepStrictEqual(b.message.data.data.slice(0, a.message.data.data.length - 1),
        a.message.data.data.slice(0, -1), 'the same candles (but the newest, still moving)');
    const ratio = a.wireBytes / b.wireBytes;
    assert.ok(ratio > 2, `compressed history is smaller on the wire: ${a.wireBytes} vs ${b.wireBytes} bytes`);
    console.log(`✓ history of ${candles} candles: ${a.wireBytes} bytes plain, ${b.wireBytes} compressed (${ratio.toFixed(1)}x)`);

    for (const socket of [compressed, plain]) {
        const event = await closeCleanly(socket);
        assert.strictEqual(event.code, 1000);
        assert.strictEqual(event.wasClean, true);
    }
    console.log('✓ clean close (1000, wasClean) with and without compression');
    console.log('All compression checks passed');
}

main().catch((err) => {
    console.error('✗', err);
    process.exit(1);
});
