"""Teaches schemathesis the one media type it has no serializer for, and what an idempotency key
means.

`POST /api/v1/import` takes `application/x-ndjson`, documented as a binary string (the bytes of
the lines); it goes on the wire as those bytes, exactly as `application/octet-stream` would.
"""

import json
import os
import re
import urllib.request
from datetime import datetime, timedelta, timezone

import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "application/octet-stream")


@schemathesis.hook
def before_process_path(context, path, methods):
    """Leaves the optional `Idempotency-Key` header out of what schemathesis generates.

    A key names one request: the contract answers 422 `idempotency_key_reused` to the same key
    on a different request, and the checker draws the same few keys for many requests, so it
    would report the contract itself as a schema-valid request rejected. The header stays in
    the document; tests/api/idempotency.rs covers it (replay, reuse, bad keys, crashes).
    """
    for operation in methods.values():
        if isinstance(operation, dict) and isinstance(operation.get("parameters"), list):
            operation["parameters"] = [
                p
                for p in operation["parameters"]
                if not (isinstance(p, dict) and str(p.get("name", "")).lower() == "idempotency-key")
            ]


@schemathesis.hook
def before_call(context, case, kwargs):
    """Adjusts the change feed's parameters, in every phase.

    - A well-formed cursor (`after`, `Last-Event-ID`) becomes one this kb handed out. Cursors
      are opaque and name a position in this database's log; any other is refused (400
      `invalid_cursor`), as the contract says, and a client only sends back what it got.
    - A long poll waits at most a second: `wait` up to 60 s is the contract, but the checker
      gives up on a response after 10 s. Out-of-range values are left for the negative checks.
    - A new API key's `expires_at` becomes a time in the next month. The contract takes a time
      in the future (and at most 3650 days ahead), which a schema cannot say, and answers 422
      naming the field to any other, as it does to a name or rate it refuses; a drawn time is
      almost always in the past. tests/api/keys.rs covers the refusals.
    """
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == "last-event-id" and isinstance(value, str) and _CURSOR.match(value):
            headers[name] = _real_cursor()
    query = case.query or {}
    if isinstance(query.get("after"), str) and _CURSOR.match(query["after"]):
        query["after"] = _real_cursor()
    wait = query.get("wait")
    if isinstance(wait, int) and not isinstance(wait, bool) and 1 < wait <= 60:
        query["wait"] = 1
    body = case.body
    if (
        case.operation.path == "/api/v1/keys"
        and isinstance(body, dict)
        and isinstance(body.get("expires_at"), str)
        and _TIME.match(body["expires_at"])
    ):
        body["expires_at"] = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()


_CURSOR = re.compile(r"^[A-Za-z0-9_-]{18}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_cursor = []


def _real_cursor():
    """A cursor this kb handed out: the position after its first event."""
    if not _cursor:
        url = os.environ["KB_CONFORMANCE_URL"] + "/api/v1/changes?limit=1"
        with urllib.request.urlopen(url, timeout=10) as r:
            _cursor.append(json.loads(r.read())["next_cursor"])
    return _cursor[0]
