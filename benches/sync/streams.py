#!/usr/bin/env python3
"""Opens N Server-Sent-Event streams on kb's change feed, then writes WRITES questions (one
every INTERVAL seconds) and times how long each write takes to reach every stream, from the
moment the write was sent (so the write's own time is included). Prints "p50 p99 max delivered expected" in milliseconds.
Streams may be opened on a different replica (STREAM_URL) than the writes go to (WRITE_URL).

    streams.py STREAM_URL WRITE_URL KEY N WRITES INTERVAL
"""
import asyncio
import json
import sys
import time
import urllib.request
import uuid
from urllib.parse import urlparse


def head(base, key):
    after = ""
    while True:
        req = urllib.request.Request(f"{base}/api/v1/changes?limit=1000{after}",
                                     headers={"Authorization": f"Bearer {key}"})
        page = json.loads(urllib.request.urlopen(req, timeout=60).read())
        after = "&after=" + page["next_cursor"]
        if not page["has_more"]:
            return page["next_cursor"]


async def stream(url, key, cursor, arrivals, opened):
    u = urlparse(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port, limit=1 << 20)
    writer.write((f"GET /api/v1/changes/stream?types=question.created HTTP/1.1\r\n"
                  f"Host: {u.netloc}\r\nAuthorization: Bearer {key}\r\n"
                  f"Last-Event-ID: {cursor}\r\nAccept: text/event-stream\r\n\r\n").encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise SystemExit(f"stream refused: {status!r}")
    opened.release()
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.startswith(b"data:") and b'"title":"' in line:
            start = line.index(b'"title":"') + 9
            title = line[start:line.index(b'"', start)].decode()
            arrivals.setdefault(title, []).append(time.monotonic())


def write(base, key, title):
    body = json.dumps({"title": title, "category": "golang"}).encode()
    req = urllib.request.Request(f"{base}/api/v1/questions", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    sent = time.monotonic()
    urllib.request.urlopen(req, timeout=60).read()
    return sent


async def main():
    stream_url, write_url, key = sys.argv[1:4]
    n, writes, interval = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    cursor = head(stream_url, key)
    arrivals, opened = {}, asyncio.Semaphore(0)
    tasks = [asyncio.create_task(stream(stream_url, key, cursor, arrivals, opened))
             for _ in range(n)]
    for _ in range(n):
        await opened.acquire()
    print("open", flush=True)
    acked = {}
    loop = asyncio.get_running_loop()
    for _ in range(writes):
        title = "streamprobe" + uuid.uuid4().hex[:12]
        acked[title] = await loop.run_in_executor(None, write, write_url, key, title)
        await asyncio.sleep(interval)
    await asyncio.sleep(5)
    lags = sorted((t - acked[title]) * 1000
                  for title, times in arrivals.items() if title in acked for t in times)
    for t in tasks:
        t.cancel()
    if not lags:
        raise SystemExit("no event arrived")
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print(f"{pick(0.5):.1f} {pick(0.99):.1f} {lags[-1]:.1f} {len(lags)} {n * writes}")


if __name__ == "__main__":
    asyncio.run(main())
