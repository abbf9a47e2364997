#!/usr/bin/env python3
"""Webhook deliveries measured from the receiving end (benches/webhooks.sh drives it).

A receiver (ThreadingHTTPServer on 127.0.0.1, HTTP/1.1 keep-alive) answers every POST with
204 at once and keeps, per delivery, the moment it arrived (time.monotonic(), the clock the
writes are timed with too: one process, one machine), the path (one per endpoint) and the
body, which is parsed only after the measurement. Writes go through http.client, one
connection per writer thread.

    bench.py throughput BASE KEY ENDPOINTS QUESTIONS [WRITERS]
        ENDPOINTS endpoints registered disabled (events question.*), QUESTIONS questions
        written (WRITERS threads, default 4), then every endpoint enabled; the time from the
        first PATCH to the last delivery received. Prints one line:
        "endpoints questions deliveries got secs per_s first_ms pending_disabled dup
         out_of_order write_per_s kb_cpu_s receiver_cpu_s" (kb's CPU time from the first
        PATCH to the last delivery when KB_PID is its process id, else 0; the receiver's is
        this whole process's, the waiting loop included)
    bench.py latency BASE KEY RATE SECONDS
        One enabled endpoint; one writer (c=1) writes RATE questions a second for SECONDS;
        for each, the time from its 201 to the receiver getting its question.created.
        Prints one line: "n got p50 p90 p99 max from_send_p50 from_send_p99 write_p50
         write_p99 achieved_rate" (milliseconds, rate per second).
    bench.py register BASE KEY COUNT URL [on] COUNT endpoints at URL (…/0, …/1, …), disabled
                                              (enabled with `on`); prints their ids
    bench.py toggle BASE KEY on|off ID...     enables or disables endpoints
    bench.py delete BASE KEY ID...

With RAW=file, latency also writes every question's id and the moments (seconds from the
start) it was sent, acknowledged and delivered. Every subcommand but the last three deletes the endpoints it registered before it ends.
"""
import base64
import http.client
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

RECEIVED = []  # (monotonic seconds, path, body bytes)


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (the stdlib's name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        RECEIVED.append((time.monotonic(), self.path, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


class Api:
    def __init__(self, base, key):
        u = urlparse(base)
        self.host, self.port, self.key = u.hostname, u.port, key
        self.conn = None

    def call(self, method, path, body=None, want=(200, 201, 204)):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                headers = {"Authorization": f"Bearer {self.key}"}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = "application/json"
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            if r.status not in want:
                raise SystemExit(f"{method} {path}: {r.status} {raw[:300]!r}")
            return json.loads(raw) if raw else None
        return None


def register(api, count, url, enabled=False):
    ids = []
    for i in range(count):
        hook = api.call("POST", "/api/v1/webhooks", {
            "url": f"{url.rstrip('/')}/{i}", "events": ["question.*"], "enabled": enabled,
            "description": f"bench endpoint {i}"})
        ids.append(hook["id"])
    return ids


def toggle(api, ids, on):
    for i in ids:
        api.call("PATCH", f"/api/v1/webhooks/{i}", {"enabled": on})


def delete(api, ids):
    for i in ids:
        api.call("DELETE", f"/api/v1/webhooks/{i}", want=(204, 404))


def question(tag, n):
    return {"title": f"webhook bench {tag} {n} about goroutine", "category": "golang",
            "tags": ["bench"], "answers": [{"body": f"an answer to webhook bench question {n}"}]}


def write_many(base, key, tag, count, writers):
    """Writes COUNT questions from WRITERS threads; returns the seconds it took."""
    left = list(range(count))
    lock = threading.Lock()

    def work():
        api = Api(base, key)
        while True:
            with lock:
                if not left:
                    return
                n = left.pop()
            api.call("POST", "/api/v1/questions", question(tag, n))

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


def kb_cpu():
    """kb's CPU seconds so far (user and system), when KB_PID names its process; else 0."""
    pid = os.environ.get("KB_PID")
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seq_of(event):
    return int.from_bytes(base64.urlsafe_b64decode(event["cursor"] + "==")[5:13], "big")


def wait_for(count, timeout, idle=None):
    """Waits until COUNT deliveries arrived, or TIMEOUT seconds, or IDLE seconds without one."""
    deadline = time.monotonic() + timeout
    last_n, last_change = -1, time.monotonic()
    while len(RECEIVED) < count and time.monotonic() < deadline:
        n = len(RECEIVED)
        if n != last_n:
            last_n, last_change = n, time.monotonic()
        elif idle is not None and time.monotonic() - last_change > idle:
            break
        time.sleep(0.005)


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def throughput(base, key, endpoints, questions, writers=4):
    port = receiver()
    api = Api(base, key)
    ids = register(api, endpoints, f"http://127.0.0.1:{port}/hook")
    write_secs = write_many(base, key, f"t{endpoints}-{time.time_ns()}", questions, writers)
    pending = sum(api.call("GET", f"/api/v1/webhooks/{i}")["pending"] for i in ids)
    expected = endpoints * questions
    kb0, own0 = kb_cpu(), time.process_time()
    started = time.monotonic()
    toggle(api, ids, True)
    enabled = time.monotonic()
    wait_for(expected, timeout=max(600, expected / 5), idle=30)
    kb1, own1 = kb_cpu(), time.process_time()
    # Anything beyond the expected count would be a duplicate: give it a moment to show.
    time.sleep(1)
    got = list(RECEIVED)
    delete(api, ids)
    last = max(t for t, _, _ in got) if got else started
    first = min(t for t, _, _ in got) if got else started
    per_path = {}
    for t, path, body in got:
        per_path.setdefault(path, []).append(json.loads(body))
    dups = out_of_order = 0
    for events in per_path.values():
        seen = set()
        prev = -1
        for e in events:
            if e["id"] in seen:
                dups += 1
            seen.add(e["id"])
            s = seq_of(e)
            if s < prev:
                out_of_order += 1
            prev = max(prev, s)
    secs = last - started
    print(f"enabling {endpoints} endpoints took {(enabled - started) * 1000:.0f} ms",
          file=sys.stderr)
    print(f"{endpoints} {questions} {expected} {len(got)} {secs:.2f} "
          f"{len(got) / secs if secs > 0 else 0:.0f} {(first - started) * 1000:.0f} {pending} "
          f"{dups} {out_of_order} {questions / write_secs:.0f} {kb1 - kb0:.2f} {own1 - own0:.2f}")


def latency(base, key, rate, seconds):
    port = receiver()
    api = Api(base, key)
    ids = register(api, 1, f"http://127.0.0.1:{port}/hook", enabled=True)
    writes = []  # (sent, acknowledged, question id)
    tag = f"l-{time.time_ns()}"
    count = int(rate * seconds)
    started = time.monotonic()
    for n in range(count):
        due = started + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        sent = time.monotonic()
        q = api.call("POST", "/api/v1/questions", question(tag, n))
        writes.append((sent, time.monotonic(), q["id"]))
    took = time.monotonic() - started
    wait_for(count, timeout=60, idle=15)
    time.sleep(0.5)
    arrived = {}
    for t, _, body in list(RECEIVED):
        e = json.loads(body)
        if e["type"] == "question.created":
            arrived.setdefault(e["data"]["id"], t)
    delete(api, ids)
    lat, from_send, write = [], [], []
    for sent, ack, qid in writes:
        write.append((ack - sent) * 1000)
        if qid in arrived:
            lat.append((arrived[qid] - ack) * 1000)
            from_send.append((arrived[qid] - sent) * 1000)
    if os.environ.get("RAW"):
        # Every write, for a closer look: sent, acknowledged, delivered (seconds from start).
        with open(os.environ["RAW"], "w") as f:
            for sent, ack, qid in writes:
                got = arrived.get(qid)
                f.write(f"{qid} {sent - started:.4f} {ack - started:.4f} "
                        f"{'' if got is None else f'{got - started:.4f}'}\n")
    print(f"{count} {len(lat)} {pct(lat, 50):.1f} {pct(lat, 90):.1f} {pct(lat, 99):.1f} "
          f"{max(lat) if lat else float('nan'):.1f} {pct(from_send, 50):.1f} "
          f"{pct(from_send, 99):.1f} {pct(write, 50):.1f} {pct(write, 99):.1f} "
          f"{count / took:.1f}")


def main():
    cmd, base, key = sys.argv[1], sys.argv[2], sys.argv[3]
    args = sys.argv[4:]
    if cmd == "throughput":
        throughput(base, key, int(args[0]), int(args[1]), *(int(a) for a in args[2:3]))
    elif cmd == "latency":
        latency(base, key, float(args[0]), float(args[1]))
    elif cmd == "register":
        on = args[2:3] == ["on"]
        print(" ".join(str(i) for i in register(Api(base, key), int(args[0]), args[1], on)))
    elif cmd == "toggle":
        toggle(Api(base, key), args[1:], args[0] == "on")
    elif cmd == "delete":
        delete(Api(base, key), args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
