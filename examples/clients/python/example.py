"""What an integrator does with kb, through a Python client generated from openapi/openapi.json.

Run by .ci/sdk against a fresh kb (seed loaded, KB_WEBHOOKS_ALLOW_PRIVATE=true so a receiver on
this machine may be registered); by hand:

    openapi-python-client generate --path openapi/openapi.json --output-path target/sdk/python \
        --overwrite --config examples/clients/python/openapi-python-client.yaml
    PYTHONPATH=target/sdk/python KB_URL=http://127.0.0.1:8080 KB_ADMIN_KEY=... \
        python examples/clients/python/example.py

Steps: search in Chinese; page through every question with the cursor; register a webhook with a
receiver started here; create a question with an Idempotency-Key and retry it; find the creation
in the change feed; receive the webhook deliveries (a ping and the creation) and verify their
signatures with the reference `standardwebhooks` package. Every step asserts what it got: any
surprise ends the script with a traceback and a non-zero exit status.
"""

from __future__ import annotations

import http.server
import os
import queue
import threading
import uuid
from typing import Any, TypeVar

import httpx
from kb_client import AuthenticatedClient
from kb_client.api.questions import create_question, delete_question, list_questions
from kb_client.api.search import search_questions
from kb_client.api.sync import changes
from kb_client.api.webhooks import create_webhook, delete_webhook, ping
from kb_client.models import (
    AnswerInput,
    ChangeEvent,
    ChangePage,
    CreateQuestion,
    CreateWebhook,
    DeliveryOut,
    Problem,
    QuestionOut,
    QuestionPage,
    SearchResponse,
    WebhookOut,
)
from kb_client.types import UNSET, Response, Unset
from standardwebhooks import Webhook, WebhookVerificationError

T = TypeVar("T")


def expect(response: Response[Any], status: int, kind: type[T]) -> T:
    """The parsed body of a response that must have this status; a problem+json body says why not."""
    parsed = response.parsed
    if response.status_code != status or not isinstance(parsed, kind):
        why = f"{parsed.code}: {parsed.detail}" if isinstance(parsed, Problem) else response.content[:300]
        raise AssertionError(f"expected {status} {kind.__name__}, got {response.status_code} ({why!r})")
    return parsed


def search(kb: AuthenticatedClient) -> None:
    for q in ("调度器", "sync.Map"):
        found = expect(search_questions.sync_detailed(client=kb, q=q, limit=3), 200, SearchResponse)
        assert found.hits, f"no hit for {q!r}"
        assert found.query == q, found.query
        print(f"search {q!r}: {found.total} hits, first {found.hits[0].question.title!r}")


def page_through(kb: AuthenticatedClient) -> list[int]:
    """Every question id, ten at a time: pass next_cursor back as cursor until it is null."""
    ids: list[int] = []
    cursor: str | Unset = UNSET
    pages = 0
    while True:
        page = expect(list_questions.sync_detailed(client=kb, limit=10, cursor=cursor), 200, QuestionPage)
        pages += 1
        assert len(page.items) <= 10
        ids.extend(q.id for q in page.items)
        if not isinstance(page.next_cursor, str):  # null (or absent) on the last page
            break
        cursor = page.next_cursor
    assert ids == sorted(set(ids)), "paging repeated or reordered a question"
    assert pages >= -(-len(ids) // 10), (pages, len(ids))
    print(f"listed {len(ids)} questions in {pages} pages")
    return ids


def feed_end(kb: AuthenticatedClient) -> str:
    """The change feed's current end: read pages until has_more is false."""
    after: str | Unset = UNSET
    while True:
        page = expect(changes.sync_detailed(client=kb, after=after, limit=1000), 200, ChangePage)
        after = page.next_cursor
        if not page.has_more:
            return after


def create_twice(kb: AuthenticatedClient) -> QuestionOut:
    """A create sent twice with one Idempotency-Key (as after a timeout) makes one question."""
    key = str(uuid.uuid4())
    body = CreateQuestion(
        title="生成的客户端如何安全地重试？",
        category="golang",
        tags=["sdk", "idempotency"],
        difficulty="easy",
        answers=[AnswerInput(body="每个 POST 带上同一个 `Idempotency-Key`，重试得到第一次的应答。")],
    )
    first = create_question.sync_detailed(client=kb, body=body, idempotency_key=key)
    created = expect(first, 201, QuestionOut)
    assert "Idempotent-Replayed" not in first.headers
    retry = create_question.sync_detailed(client=kb, body=body, idempotency_key=key)
    replayed = expect(retry, 201, QuestionOut)
    assert retry.headers.get("Idempotent-Replayed") == "true", dict(retry.headers)
    assert replayed.id == created.id and replayed.version == created.version
    assert retry.headers.get("Location") == first.headers.get("Location")
    print(f"created question {created.id}; the retry replayed it (Idempotent-Replayed: true)")
    return created


def follow(kb: AuthenticatedClient, after: str, question: QuestionOut) -> ChangeEvent:
    """The feed from a cursor taken before the write holds its question.created event."""
    page = expect(changes.sync_detailed(client=kb, after=after, wait=10), 200, ChangePage)
    events = [e for e in page.items if e.type_ == "question.created" and e.data["id"] == question.id]
    assert len(events) == 1, [(e.type_, e.data.additional_properties.get("id")) for e in page.items]
    event = events[0]
    assert event.data["title"] == question.title and event.data["version"] == question.version
    assert page.next_cursor != after
    print(f"feed: {event.type_} {event.id} for question {question.id}, next cursor {page.next_cursor}")
    return event


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on a free local port; each delivery (headers, raw body) lands in a queue."""

    def __init__(self) -> None:
        self.deliveries: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.deliveries.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)  # answer at once; slow work comes after
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/kb-events"

    def next_verified(self, secret: str) -> tuple[dict[str, str], Any]:
        """The next delivery, its signature checked by the reference Standard Webhooks package."""
        headers, body = self.deliveries.get(timeout=15)
        event = Webhook(secret).verify(body, headers)  # raises WebhookVerificationError if forged
        # A tampered body, or another secret, is refused.
        for forged_body, forged_secret in ((body.replace(b'"', b"'", 1), secret), (body, "whsec_" + "A" * 32)):
            try:
                Webhook(forged_secret).verify(forged_body, headers)
            except WebhookVerificationError:
                pass
            else:
                raise AssertionError("a forged delivery was accepted")
        return headers, event


def main() -> None:
    url = os.environ.get("KB_URL", "http://127.0.0.1:8080")
    # Reads are public, but the generator types every operation that declares any security
    # (`[{}, {"bearer": []}]` means "a key is optional") as taking an AuthenticatedClient, so this
    # example sends the admin key with every request. The timeout covers the feed's `wait=10`.
    kb = AuthenticatedClient(base_url=url, token=os.environ["KB_ADMIN_KEY"], timeout=httpx.Timeout(30.0))

    search(kb)
    before = page_through(kb)

    receiver = Receiver()
    hook = expect(
        create_webhook.sync_detailed(
            client=kb,
            body=CreateWebhook(url=receiver.url, events=["question.*"], description="sdk example"),
            idempotency_key=str(uuid.uuid4()),
        ),
        201,
        WebhookOut,
    )
    assert isinstance(hook.secret, str) and hook.secret.startswith("whsec_"), "the secret is shown on creation"
    secret = hook.secret
    print(f"registered webhook {hook.id} -> {receiver.url}")

    pinged = expect(ping.sync_detailed(client=kb, id=hook.id), 200, DeliveryOut)
    assert pinged.status == "delivered" and pinged.response_status == 204, (pinged.status, pinged.error)
    headers, event = receiver.next_verified(secret)
    assert event["type"] == "webhook.ping" and event["data"]["webhook_id"] == hook.id, event
    assert headers["webhook-id"] == pinged.event_id == event["id"]
    print(f"ping {pinged.event_id}: delivered, signature verified")

    cursor = feed_end(kb)
    question = create_twice(kb)
    fed = follow(kb, cursor, question)
    after = page_through(kb)
    assert after == before + [question.id], "the new question is on the last page, once"

    # The write reaches the receiver too: the same event as in the feed, signed.
    headers, event = receiver.next_verified(secret)
    assert headers["webhook-id"] == event["id"] == fed.id, (headers["webhook-id"], fed.id)
    assert event["type"] == "question.created" and event["data"]["id"] == question.id
    assert event["cursor"] == fed.cursor
    print(f"webhook: {event['type']} {event['id']} delivered, signature verified")

    # Tidy up: the webhook and the question (whose deletion is the feed's next event).
    gone = delete_webhook.sync_detailed(client=kb, id=hook.id)
    assert gone.status_code == 204, gone.status_code
    deleted = delete_question.sync_detailed(client=kb, id=question.id)
    assert deleted.status_code == 204, deleted.status_code
    receiver.shutdown()
    print("python client example: all steps passed")


if __name__ == "__main__":
    main()
