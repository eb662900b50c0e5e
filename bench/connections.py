#!/usr/bin/env python3
"""What one kept-alive HTTP/1.1 connection costs a running gateway in resident memory.

Opens N connections to the partner API (from 127.0.0.2 on, at most 900 per source address, under
the gateway's per-peer cap of 1,000), sends one request on each (GET /v1/nothing: refused, 401)
and keeps them open; prints the gateway's resident memory (VmRSS) before and after, and the
difference per connection. Run it against a fresh gateway (memory a gateway freed is reused, not
counted again):

    deploy/dev down && deploy/dev up
    python3 bench/connections.py --pid "$(cat .dev/gateway.pid)" --connections 5000

The gateway's `max_connections` (10,000 by default) bounds N; `ulimit -n` must allow N here.
"""

import argparse
import asyncio


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no process {pid}")


async def connect(i, host, port, path):
    source = f"127.0.0.{2 + i // 900}"
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return reader, writer


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, required=True, help="the gateway's process id")
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--path", default="/v1/nothing")
    args = parser.parse_args()
    before = rss_kib(args.pid)
    opened = await asyncio.gather(*(connect(i, args.host, args.port, args.path) for i in range(args.connections)))
    await asyncio.sleep(1)
    after = rss_kib(args.pid)
    print(f"{len(opened)} connections, one request each: gateway RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB, "
          f"{(after - before) / len(opened):.1f} KiB per connection")
    for _, writer in opened:
        writer.close()


asyncio.run(main())
