#!/usr/bin/env python3
"""A learner with a long review history, for benches/learners.sh (stdlib only).

The history is synthetic but shaped like a heavy learner's: questions taken up one after
another over the first 60 % of the period, each card's reviews spaced days apart (the interval
grows 1.6x after `good`, 1.2x after `hard`, 2.5x after `easy`, up to CAP days, and falls back
to a day after `again`; ±20 % jitter), ratings 80 % good, 10 % again, 5 % hard, 5 % easy, and
every review in one of two sessions a day (from 08:00 and 21:00 in Asia/Shanghai, within 45
minutes). Cards are taken whole until N reviews (the last one cut short). Deterministic for a
seed, relative to the moment it runs.

A card's next review is always at least 24 hours after the one before (the first session
after the interval has passed). A real learner often reviews a card in the evening and again
the next morning; kb (at d79971d) counts the days between two reviews as whole 24-hour
periods, so that pair is 0 days apart, and a card whose second review came less than 24 hours
after its first makes a training item the `fsrs` optimiser refuses with a panic, which aborts
the whole kb process (rayon's pool has no panic handler). See docs/benchmarks.md#learners.

    bench.py plan N DAYS SEED                  the history's shape without a server: prints
                                               "reviews cards per_card_mean first_day last_day"
    bench.py load BASE KEY LEARNER N DAYS SEED  posts the history to …/reviews/batch, 1,000 a
                                               request in time order (each review with an id,
                                               as a syncing device sends them); prints one line:
                                               "reviews cards batches secs per_s batch_p50_ms
                                                batch_max_ms applied duplicate refused"
    bench.py wait-fit BASE KEY LEARNER TIMEOUT  polls …/settings until `fit` is idle; prints
                                               "secs source fitted_reviews" (or "timeout")
    bench.py fit BASE KEY LEARNER [PID]         POST …/settings/fit, then polls …/settings every
                                               0.25 s until `fit` is idle. With PID (kb's), the CPU
                                               seconds of kb's fit thread ("kb-fsrs-fit") and of
                                               the whole process meanwhile, and the fit thread's
                                               nice value. Prints "secs source fitted_reviews
                                               fit_thread_cpu_s kb_cpu_s fit_nice", and kb's
                                               busiest threads meanwhile on standard error
    bench.py fits BASE KEY LEARNER PID SECONDS  fits as above, back to back, until SECONDS have
                                               passed (at least one); prints "fits secs
                                               mean_fit_s max_fit_s source fitted_reviews
                                               fit_thread_cpu_s"
    bench.py stats BASE KEY LEARNER DAYS TZ     one GET …/stats; prints a summary as JSON
    bench.py history-check FILE                 counts an NDJSON history and checks each line
                                               parses; prints "lines bytes first_at last_at"
"""
import http.client
import json
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlparse

CAP = 14.0  # longest interval between two reviews of a card, days
RATINGS = [("good", 0.80), ("again", 0.10), ("hard", 0.05), ("easy", 0.05)]
GROWTH = {"good": 1.6, "hard": 1.2, "easy": 2.5}
SESSIONS_UTC = (0.0, 13.0)  # 08:00 and 21:00 in Asia/Shanghai (UTC+8), hours UTC
SESSION_MINUTES = 45


def conn(base):
    u = urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=600)


def call(c, key, method, path, body=None, accept="application/json"):
    headers = {"Authorization": f"Bearer {key}", "Accept": accept}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    return r.status, r.read()


def question_ids(c, key):
    ids, cursor = [], ""
    while True:
        status, body = call(c, key, "GET", f"/api/v1/questions?limit=100{cursor}")
        if status != 200:
            sys.exit(f"listing questions: {status} {body[:200]!r}")
        page = json.loads(body)
        ids += [q["id"] for q in page["items"]]
        if not page.get("next_cursor"):
            return ids
        cursor = "&cursor=" + page["next_cursor"]


def pick(rng):
    x = rng.random()
    for rating, p in RATINGS:
        if x < p:
            return rating
        x -= p
    return RATINGS[0][0]


def session_at_or_after(rng, t):
    """A moment in the first study session starting at or after `t` (unix seconds)."""
    day = int(t // 86400)
    starts = [(day + k) * 86400 + h * 3600 for k in (0, 1) for h in SESSIONS_UTC]
    start = min(s for s in starts if s >= t)
    return start + rng.uniform(0, SESSION_MINUTES * 60)


def plan(ids, n, days, seed, now):
    """[(reviewed_at unix seconds, question_id, rating)] in time order, and the cards used."""
    rng = random.Random(seed)
    order = list(ids)
    rng.shuffle(order)
    today = int(now // 86400)
    first_day = today - days
    reviews, cards = [], 0
    for qid in order:
        if len(reviews) >= n:
            break
        cards += 1
        t = session_at_or_after(rng, (first_day + rng.uniform(0, days * 0.6)) * 86400)
        interval = 1.0
        while len(reviews) < n and t <= now - 60:
            rating = pick(rng)
            reviews.append((t, qid, rating))
            interval = 1.0 if rating == "again" else min(CAP, interval * GROWTH[rating])
            # At least a full day later (see the docstring), in the first session after.
            t = session_at_or_after(rng, t + max(1.0, interval * rng.uniform(0.8, 1.2)) * 86400)
    reviews.sort()
    return reviews, cards


def rfc3339(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cmd_plan(n, days, seed):
    now = time.time()
    reviews, cards = plan(range(1, 5001), n, days, seed, now)
    first = (reviews[0][0] - now) / 86400
    last = (reviews[-1][0] - now) / 86400
    print(f"{len(reviews)} {cards} {len(reviews) / cards:.1f} {first:.1f} {last:.2f}")


def cmd_load(base, key, learner, n, days, seed):
    c = conn(base)
    ids = question_ids(c, key)
    reviews, cards = plan(ids, n, days, seed, time.time())
    path = f"/api/v1/learners/{quote(learner)}/reviews/batch"
    counts = {"applied": 0, "duplicate": 0, "refused": 0}
    refusals = {}
    took = []
    started = time.monotonic()
    for i in range(0, len(reviews), 1000):
        body = {"reviews": [
            {"review_id": f"bench:{i + j}", "question_id": q, "rating": r, "reviewed_at": rfc3339(t)}
            for j, (t, q, r) in enumerate(reviews[i:i + 1000])]}
        t0 = time.monotonic()
        status, out = call(c, key, "POST", path, body)
        took.append((time.monotonic() - t0) * 1000)
        if status != 200:
            sys.exit(f"batch at {i}: {status} {out[:300]!r}")
        for res in json.loads(out)["results"]:
            counts[res["status"]] += 1
            if res["status"] == "refused":
                refusals[res.get("code")] = refusals.get(res.get("code"), 0) + 1
    secs = time.monotonic() - started
    took.sort()
    if refusals:
        print(f"refused: {refusals}", file=sys.stderr)
    print(f"{len(reviews)} {cards} {len(took)} {secs:.2f} {len(reviews) / secs:.0f} "
          f"{took[len(took) // 2]:.0f} {took[-1]:.0f} "
          f"{counts['applied']} {counts['duplicate']} {counts['refused']}")


def settings(c, key, learner):
    status, body = call(c, key, "GET", f"/api/v1/learners/{quote(learner)}/settings")
    if status != 200:
        sys.exit(f"settings: {status} {body[:200]!r}")
    return json.loads(body)


def cmd_wait_fit(base, key, learner, timeout):
    c = conn(base)
    started = time.monotonic()
    while True:
        s = settings(c, key, learner)
        if s["fit"] == "idle":
            p = s["parameters"]
            print(f"{time.monotonic() - started:.1f} {p['source']} {p.get('reviews', '-')}")
            return
        if time.monotonic() - started > timeout:
            print("timeout")
            return
        time.sleep(0.5)


def threads(pid):
    """{tid: (name, nice, CPU seconds)} of kb's threads."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = (stat[stat.index("(") + 1:stat.rindex(")")], fields[16],
                    (int(fields[11]) + int(fields[12])) / tick)
    return out


def thread_cpu(pid):
    """(CPU seconds of kb's fit thread, of the whole process, the fit thread's nice value)."""
    tick = os.sysconf("SC_CLK_TCK")
    fit, nice = 0.0, "-"
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if comm == "kb-fsrs-fit":
            fit += (int(fields[11]) + int(fields[12])) / tick
            nice = fields[16]
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return fit, (int(fields[11]) + int(fields[12])) / tick, nice


def one_fit(c, key, learner, pid=None):
    """POST …/settings/fit and poll until idle: (seconds, settings, fit thread CPU, kb CPU,
    nice, kb's threads by CPU used meanwhile)."""
    before = thread_cpu(pid) if pid else (0.0, 0.0, "-")
    per_thread = threads(pid) if pid else {}
    nice = before[2]
    started = time.monotonic()
    status, body = call(c, key, "POST", f"/api/v1/learners/{quote(learner)}/settings/fit")
    if status != 202:
        sys.exit(f"fit: {status} {body[:200]!r}")
    while True:
        time.sleep(0.25)
        s = settings(c, key, learner)
        if s["fit"] == "idle":
            break
    secs = time.monotonic() - started
    after = thread_cpu(pid) if pid else (0.0, 0.0, "-")
    used = []
    if pid:
        for tid, (name, nice_, cpu) in threads(pid).items():
            was = per_thread.get(tid, (name, nice_, 0.0))[2]
            used.append((cpu - was, name, nice_, tid))
        used.sort(reverse=True)
    return secs, s, after[0] - before[0], after[1] - before[1], nice, used


def cmd_fit(base, key, learner, pid=None):
    secs, s, fit_cpu, kb_cpu, nice, used = one_fit(conn(base), key, learner, pid)
    if used:
        print("threads by CPU seconds meanwhile: " + ", ".join(
            f"{name} (tid {tid}, nice {n}) {d:.1f}" for d, name, n, tid in used[:6]), file=sys.stderr)
    p = s["parameters"]
    print(f"{secs:.1f} {p['source']} {p.get('reviews', '-')} {fit_cpu:.1f} {kb_cpu:.1f} {nice}")


def cmd_fits(base, key, learner, pid, min_secs):
    c = conn(base)
    started = time.monotonic()
    took, fit_cpu = [], 0.0
    while not took or time.monotonic() - started < min_secs:
        secs, s, cpu, _, _, _ = one_fit(c, key, learner, pid)
        took.append(secs)
        fit_cpu += cpu
    p = s["parameters"]
    print(f"{len(took)} {time.monotonic() - started:.1f} {sum(took) / len(took):.1f} "
          f"{max(took):.1f} {p['source']} {p.get('reviews', '-')} {fit_cpu:.1f}")


def cmd_stats(base, key, learner, days, tz):
    c = conn(base)
    t0 = time.monotonic()
    status, body = call(c, key, "GET",
                        f"/api/v1/learners/{quote(learner)}/stats?days={days}&tz={quote(tz)}")
    ms = (time.monotonic() - t0) * 1000
    if status != 200:
        sys.exit(f"stats: {status} {body[:200]!r}")
    s = json.loads(body)
    print(json.dumps({
        "ms": round(ms, 1),
        "days": len(s["days"]),
        "reviews_in_period": sum(d["reviews"] for d in s["days"]),
        "again_in_period": sum(d["again"] for d in s["days"]),
        "retention": None if s["retention"] is None else round(s["retention"], 4),
        "streak": s["streak"],
        "cards": s["cards"],
        "due_next_30_days": sum(f["due"] for f in s["forecast"]),
        "due_today": s["forecast"][0]["due"],
        "next_due_at": s["next_due_at"],
        "bytes": len(body),
    }))


def cmd_history_check(path):
    lines = size = 0
    first = last = None
    with open(path, "rb") as f:
        for line in f:
            size += len(line)
            item = json.loads(line)
            lines += 1
            first = first or item["reviewed_at"]
            last = item["reviewed_at"]
    print(f"{lines} {size} {first} {last}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "plan":
        cmd_plan(int(args[0]), int(args[1]), int(args[2]))
    elif cmd == "load":
        cmd_load(args[0], args[1], args[2], int(args[3]), int(args[4]), int(args[5]))
    elif cmd == "wait-fit":
        cmd_wait_fit(args[0], args[1], args[2], float(args[3]))
    elif cmd == "fit":
        cmd_fit(args[0], args[1], args[2], int(args[3]) if len(args) > 3 else None)
    elif cmd == "fits":
        cmd_fits(args[0], args[1], args[2], int(args[3]), float(args[4]))
    elif cmd == "stats":
        cmd_stats(args[0], args[1], args[2], int(args[3]), args[4])
    elif cmd == "history-check":
        cmd_history_check(args[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
