"""The closing handshake of /ws seen by Python `websockets` (a client the project did not write).

After a close started by the client and after one started by the server, both close frames are exchanged
(close_sent and close_rcvd) with the expected code. Run by tests/js/run.sh with KLINE_WS_URL set.
"""

import asyncio
import json
import os
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

URL = os.environ.get("KLINE_WS_URL", "ws://localhost:8080/ws")


async def hello(ws):
    message = json.loads(await ws.recv())
    assert message["type"] == "connection_success", message


async def client_close(code, expected):
    async with connect(URL) as ws:
        await hello(ws)
        await ws.close(code)
        assert ws.protocol.close_rcvd is not None, "the server answered the close frame"
        assert ws.protocol.close_rcvd.code == expected, ws.protocol.close_rcvd
        assert ws.protocol.close_sent.code == code, ws.protocol.close_sent


async def server_close_too_big():
    async with connect(URL, max_size=None) as ws:
        await hello(ws)
        await ws.send(json.dumps({"msg_type": "ping", "pad": "x" * 65536}))
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1009, closed
            assert closed.sent is not None and closed.sent.code == 1009, closed
            assert closed.rcvd_then_sent, "the server started the handshake"


async def main():
    await client_close(1000, 1000)
    print("✓ client close 1000: echoed 1000")
    await client_close(4001, 4001)
    print("✓ client close 4001: echoed 4001")
    await server_close_too_big()
    print("✓ server close 1009: answered, both frames exchanged")
    print("All close handshake checks passed")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    except Exception as err:  # noqa: BLE001 - report any failure and exit non-zero
        print(f"✗ {err!r}")
        sys.exit(1)
