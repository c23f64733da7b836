// The closing handshake of /ws seen by Node `ws` (a client the project did not write), as a browser sees it:
// after a close started by the client and after one started by the server, the close event carries the
// code and `wasClean: true` (both close frames were exchanged before TCP closed). Prints one line per
// check; exits non-zero on the first failure.
const WebSocket = require('ws');
const assert = require('assert');

const url = process.env.KLINE_WS_URL || 'ws://localhost:8080/ws';

/** Opens a connection and resolves once `connection_success` has arrived. */
function connect(options = {}) {
    return new Promise((resolve, reject) => {
        const socket = new WebSocket(url, options);
        socket.onerror = (event) => reject(event.error || new Error('connection failed'));
        socket.onmessage = (event) => {
            const message = JSON.parse(event.data.toString());
            if (message.type === 'connection_success') {
                socket.onmessage = null;
                resolve(socket);
            }
        };
    });
}

/** Resolves with the close event (the browser `CloseEvent`: code, reason, wasClean). */
function closed(socket) {
    return new Promise((resolve) => {
        socket.onclose = (event) => resolve(event);
    });
}

async function check(name, run) {
    await run();
    console.log(`✓ ${name}`);
}

async function main() {
    await check('client close(1000): code 1000, wasClean', async () => {
        const socket = await connect();
        const done = closed(socket);
        socket.close(1000, 'bye');
        const event = await done;
        assert.strictEqual(event.code, 1000);
        assert.strictEqual(event.wasClean, true);
    });
    await check('client close() without a code: answered with 1000, wasClean', async () => {
        const socket = await connect();
        const done = closed(socket);
        socket.close();
        const event = await done;
        assert.strictEqual(event.code, 1000);
        assert.strictEqual(event.wasClean, true);
    });
    await check('client close(4001): its code is echoed, wasClean', async () => {
        const socket = await connect();
        const done = closed(socket);
        socket.close(4001, 'app reason');
        const event = await done;
        assert.strictEqual(event.code, 4001);
        assert.strictEqual(event.wasClean, true);
    });
    await check('server close (message too big): code 1009, wasClean', async () => {
        const socket = await connect();
        const done = closed(socket);
        socket.send(JSON.stringify({ msg_type: 'ping', pad: 'x'.repeat(64 * 1024) }));
        const event = await done;
        assert.strictEqual(event.code, 1009);
        assert.strictEqual(event.wasClean, true);
    });
    for (const perMessageDeflate of [false, true]) {
        await check(`requests and a clean close with perMessageDeflate: ${perMessageDeflate}`, async () => {
            const socket = await connect({ perMessageDeflate });
            const pong = new Promise((resolve) => {
                socket.onmessage = (event) => resolve(JSON.parse(event.data.toString()));
            });
            socket.send(JSON.stringify({ msg_type: 'ping' }));
            assert.strictEqual((await pong).type, 'pong');
            const done = closed(socket);
            socket.close(1000);
            const event = await done;
            assert.strictEqual(event.code, 1000);
            assert.strictEqual(event.wasClean, true);
        });
    }
    console.log('All close handshake checks passed');
}

main().catch((err) => {
    console.error('✗', err);
    process.exit(1);
});
