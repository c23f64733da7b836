#!/usr/bin/env python3
"""Sums a massif heap snapshot by allocation site, naming each site by the first frames of the server's
libraries on its stack (docs/performance.md, "where an idle Socket.IO socket's memory goes").

Usage: massif_sites.py MASSIF_OUT SNAPSHOT [MIN_BYTES] [FRAMES] [PER]
  SNAPSHOT   the snapshot number (ms_print lists the peak's)
  MIN_BYTES  leaves below this are left out (default 100000)
  FRAMES     frames of interest shown per site (default 4)
  PER        divide the bytes by this, e.g. the number of connections (default 1)
"""
import re
import sys

INTERESTING = re.compile(
    r"(engineioxide|socketioxide|kline_|hyper::|tungstenite|tokio::task::spawn|mpsc|Notify|HashMap|rocksdb)"
)


def leaves(lines, start):
    """Yields (bytes, stack of descriptions) for each leaf of the heap tree that starts at `start`."""
    stack = []
    for line in lines[start:]:
        if line.startswith("snapshot=") or line.startswith("#"):
            return
        match = re.match(r"( *)n(\d+): (\d+) (.*)", line)
        if not match:
            continue
        depth, children, size, description = match.groups()
        stack = stack[: len(depth)] + [re.sub(r"^0x[0-9A-F]+: ", "", description)]
        if int(children) == 0:
            yield int(size), stack


def main():
    path, snapshot = sys.argv[1], int(sys.argv[2])
    min_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    frames = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    per = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    lines = open(path).read().split("\n")
    start = lines.index(f"snapshot={snapshot}")
    while not lines[start].startswith("heap_tree="):
        start += 1
    sites = {}
    for size, stack in leaves(lines, start + 1):
        if size < min_bytes:
            continue
        named = [frame[:110] for frame in stack if INTERESTING.search(frame)][:frames]
        key = " <- ".join(named) if named else stack[-1][:150]
        sites[key] = sites.get(key, 0) + size
    for key, size in sorted(sites.items(), key=lambda item: -item[1]):
        print(f"{size / per:12.0f}  {key}\n")


if __name__ == "__main__":
    main()
