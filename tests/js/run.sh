#!/usr/bin/env bash
# Runs the design document's JavaScript client (section 9.2, `ws` npm package) against the real
# kline-server with its simulator on, the old Spin Pet server's Socket.IO client flow (socket.io-client,
# both transports), then the closing-handshake and permessage-deflate checks with Node `ws` and Python
# `websockets`, and the ticker stream with Python `websockets`. Used by .ci/run; needs node, npm, python3
# with `websockets` and a built kline-server.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${KLINE_SERVER_BIN:-${CARGO_TARGET_DIR:-$here/../../target}/debug/kline-server}
work=$(mktemp -d)
log=$work/server.log

"$bin" --bind 127.0.0.1:0 --data-dir "$work/db" --set source.simulator.events_per_sec=50 2>"$log" &
pid=$!
tls_pid=""
trap 'kill "$pid" $tls_pid 2>/dev/null; wait "$pid" $tls_pid 2>/dev/null; rm -rf "$work"' EXIT

addr=""
for _ in $(seq 1 600); do
    addr=$(grep -o 'addr=[0-9.:]*' "$log" | head -n 1 | cut -d= -f2 || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "kline-server did not start:"; cat "$log"; exit 1; }

mint=""
for _ in $(seq 1 100); do
    mint=$(node -e '
        fetch(process.argv[1]).then(r => r.json())
            .then(list => console.log(list.length ? list[0].symbol : ""))
            .catch(() => console.log(""));' "http://$addr/api/v1/symbols")
    [ -n "$mint" ] && break
    sleep 0.1
done
[ -n "$mint" ] || { echo "no simulated mint appeared"; exit 1; }

cd "$here"
npm ci --no-audit --no-fund --silent
KLINE_WS_URL="ws://$addr/ws" KLINE_MINT="$mint" node test_kline_websocket.js | tee "$work/out.txt"
grep -q "All tests passed" "$work/out.txt" || { echo "the design document's client did not pass"; exit 1; }
echo "js-client: 1 passed, 0 failed"

# The old server's front-ends: Socket.IO namespace /kline, websocket and polling transports.
KLINE_HTTP_URL="http://$addr" KLINE_MINT="$mint" node test_socketio_kline.js

# The closing handshake as independent clients see it: Node `ws` and Python `websockets`.
KLINE_WS_URL="ws://$addr/ws" node test_close_handshake.js
KLINE_WS_URL="ws://$addr/ws" python3 "$here/../py/test_close_handshake.py"
echo "close-handshake clients: 2 passed, 0 failed"

# The ticker stream (snapshot, at most one update a second, unsubscribe) seen by Python `websockets`.
KLINE_WS_URL="ws://$addr/ws" python3 "$here/../py/test_tickers.py"
echo "ticker stream client: 1 passed, 0 failed"

# permessage-deflate with the same two clients, compression on and off.
KLINE_WS_URL="ws://$addr/ws" KLINE_MINT="$mint" node test_compression.js
KLINE_WS_URL="ws://$addr/ws" KLINE_MINT="$mint" python3 "$here/../py/test_compression.py"
echo "compression clients: 2 passed, 0 failed"

# The same clients over TLS: the server's own listener (server.tls) with a certificate made here, trusted by
# Node through NODE_EXTRA_CA_CERTS and by Python through SSL_CERT_FILE.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
"$bin" --bind 127.0.0.1:0 --data-dir "$work/db-tls" --set source.simulator.events_per_sec=50 \
    --set server.tls.enabled=true --set websocket.max_connections=1000 --set "server.tls.cert_file=\"$work/cert.pem\"" \
    --set "server.tls.key_file=\"$work/key.pem\"" 2>"$work/tls.log" &
tls_pid=$!
tls_addr=""
for _ in $(seq 1 600); do
    tls_addr=$(grep -o 'addr=[0-9.:]*' "$work/tls.log" | head -n 1 | cut -d= -f2 || true)
    [ -n "$tls_addr" ] && break
    sleep 0.1
done
[ -n "$tls_addr" ] || { echo "kline-server with TLS did not start:"; cat "$work/tls.log"; exit 1; }
secure="localhost:${tls_addr##*:}"
export NODE_EXTRA_CA_CERTS="$work/cert.pem"
KLINE_WS_URL="wss://$secure/ws" KLINE_MINT="$mint" node test_kline_websocket.js | tee "$work/out-tls.txt"
grep -q "All tests passed" "$work/out-tls.txt" || { echo "the design document's client did not pass over wss://"; exit 1; }
KLINE_HTTP_URL="https://$secure" KLINE_MINT="$mint" node test_socketio_kline.js
KLINE_WS_URL="wss://$secure/ws" node test_close_handshake.js
KLINE_WS_URL="wss://$secure/ws" SSL_CERT_FILE="$work/cert.pem" python3 "$here/../py/test_close_handshake.py"
echo "clients over TLS (js, socket.io, close handshake js + py): 4 passed, 0 failed"
