#!/usr/bin/env python3
"""Reads kb's whole change feed from the start, LIMIT events a page, as a mirror's first sync
without an export would; prints events, pages, seconds and events/s. Only the cursor is pulled
out of each page (from the end of the body), so the figure is the server's, not Python's JSON.

    feed.py BASE_URL KEY LIMIT
"""
import re
import sys
import time
import urllib.request

CURSOR = re.compile(rb'"next_cursor":"([^"]+)","has_more":(true|false)\}$')


def main():
    base, key, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    after, events, pages, size = "", 0, 0, 0
    started = time.monotonic()
    while True:
        url = f"{base}/api/v1/changes?limit={limit}{after}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
        pages += 1
        size += len(body)
        events += body.count(b'"cursor":')
        m = CURSOR.search(body)
        after = "&after=" + m.group(1).decode()
        if m.group(2) == b"false":
            break
    took = time.monotonic() - started
    print(f"{events} {pages} {took:.2f} {events / took:.0f} {size / took / 1e6:.1f}")


if __name__ == "__main__":
    main()
