#!/usr/bin/env python3
"""Replication lag between two kb replicas on one PostgreSQL: writes a question with a unique
word through replica A, and from the moment A acknowledges it (A's own index already has it:
read-your-writes) polls replica B's search until B finds it. Prints p50, p99 and max in ms.

    lag.py A_URL B_URL ADMIN_KEY COUNT INTERVAL_S
"""
import json
import sys
import time
import urllib.request
import uuid


def call(url, key, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=body)
    req.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main():
    a, b, key, count, interval = sys.argv[1:6]
    lags = []
    for _ in range(int(count)):
        word = "lag" + uuid.uuid4().hex[:12]
        body = json.dumps({"title": f"复制延迟探针 {word}", "category": "golang"}).encode()
        call(f"{a}/api/v1/questions", key, "POST", body)
        acked = time.monotonic()
        while True:
            page = call(f"{b}/api/v1/search?q={word}&limit=1", key)
            if page["hits"]:
                lags.append((time.monotonic() - acked) * 1000)
                break
            if time.monotonic() - acked > 30:
                lags.append(float("inf"))
                break
            time.sleep(0.002)
        time.sleep(float(interval))
    lags.sort()
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print(f"{len(lags)} {pick(0.5):.0f} {pick(0.99):.0f} {lags[-1]:.0f}")


if __name__ == "__main__":
    main()
