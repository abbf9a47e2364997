// What an integrator does with kb from TypeScript, typed by the OpenAPI document: search in
// Chinese, page through questions with the cursor, create a question with an Idempotency-Key
// (and retry it), follow the change feed, and receive webhooks whose signatures are verified
// with the reference `standardwebhooks` package (src/webhook.ts).
//
// .ci/sdk type-checks this (tsc --noEmit, strict) against types generated afresh from
// openapi/openapi.json, so a change to the document that breaks it fails CI. To run it:
//   npm ci && npm run generate && npx tsc && KB_URL=http://127.0.0.1:8080 KB_ADMIN_KEY=… node dist/example.js
// (the webhook step needs KB_WEBHOOKS_ALLOW_PRIVATE=true on the server: its receiver is local).
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { connect, problem, type Kb, type Schemas } from "./kb.js";
import { receiver, type Delivery } from "./webhook.js";

export async function search(kb: Kb, q: string): Promise<Schemas["SearchResponse"]> {
  const { data, error, response } = await kb.GET("/api/v1/search", { params: { query: { q, limit: 3 } } });
  if (!data) throw problem(response.status, error);
  return data;
}

/** Every question id, a page at a time: pass `next_cursor` back as `cursor` until it is null. */
export async function allQuestionIds(kb: Kb, limit = 10): Promise<number[]> {
  const ids: number[] = [];
  let cursor: string | undefined;
  do {
    const query = cursor === undefined ? { limit } : { limit, cursor };
    const { data, error, response } = await kb.GET("/api/v1/questions", { params: { query } });
    if (!data) throw problem(response.status, error);
    ids.push(...data.items.map((q) => q.id));
    cursor = data.next_cursor ?? undefined;
  } while (cursor !== undefined);
  return ids;
}

/**
 * Creates a question. Send the same `idempotencyKey` (and the same body) on every retry of one
 * logical create: a retry after a timeout then gets the first answer, `replayed`, and the
 * question exists once.
 */
export async function createQuestion(
  kb: Kb,
  body: Schemas["CreateQuestion"],
  idempotencyKey: string,
): Promise<{ question: Schemas["QuestionOut"]; replayed: boolean }> {
  const { data, error, response } = await kb.POST("/api/v1/questions", {
    params: { header: { "Idempotency-Key": idempotencyKey } },
    body,
  });
  if (!data) throw problem(response.status, error);
  return { question: data, replayed: response.headers.get("Idempotent-Replayed") === "true" };
}

/** One page of the change feed after `after` (from its oldest event without), waiting up to `wait` s. */
export async function changes(kb: Kb, after: string | undefined, wait = 0): Promise<Schemas["ChangePage"]> {
  const query = after === undefined ? { limit: 1000, wait } : { limit: 1000, wait, after };
  const { data, error, response } = await kb.GET("/api/v1/changes", { params: { query } });
  if (!data) throw problem(response.status, error);
  return data;
}

/** The feed's current end: read pages while `has_more`. */
export async function feedEnd(kb: Kb): Promise<string> {
  let page = await changes(kb, undefined);
  while (page.has_more) page = await changes(kb, page.next_cursor);
  return page.next_cursor;
}

/** Registers a webhook (admin key); the answer is the only time its `secret` is shown. */
export async function registerWebhook(kb: Kb, url: string): Promise<{ id: number; secret: string }> {
  const { data, error, response } = await kb.POST("/api/v1/webhooks", {
    params: { header: { "Idempotency-Key": randomUUID() } },
    body: { url, events: ["question.*"], description: "sdk example (TypeScript)" },
  });
  if (!data) throw problem(response.status, error);
  assert.ok(data.secret, "the secret is shown on creation");
  return { id: data.id, secret: data.secret };
}

async function main(): Promise<void> {
  const key = process.env["KB_ADMIN_KEY"];
  assert.ok(key, "set KB_ADMIN_KEY");
  const kb = connect(process.env["KB_URL"] ?? "http://127.0.0.1:8080", key);

  for (const q of ["调度器", "sync.Map"]) {
    const found = await search(kb, q);
    assert.ok(found.hits.length > 0, `no hit for ${q}`);
    console.log(`search ${q}: ${found.total} hits, first ${JSON.stringify(found.hits[0]?.question.title)}`);
  }
  const before = await allQuestionIds(kb);
  assert.deepEqual(before, [...new Set(before)].sort((a, b) => a - b), "paging repeated or reordered");
  console.log(`listed ${before.length} questions`);

  // A local receiver; kb must run with KB_WEBHOOKS_ALLOW_PRIVATE=true to deliver to it.
  const received: Delivery[] = [];
  let secret = "";
  const server = createServer((req, res) => receiver(secret, (event) => received.push(event))(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const hook = await registerWebhook(kb, `http://127.0.0.1:${port}/kb-events`);
  secret = hook.secret;

  const ping = await kb.POST("/api/v1/webhooks/{id}/ping", { params: { path: { id: hook.id } } });
  if (!ping.data) throw problem(ping.response.status, ping.error);
  assert.equal(ping.data.status, "delivered", ping.data.error ?? "");
  assert.equal(received[0]?.type, "webhook.ping");

  const cursor = await feedEnd(kb);
  const idempotencyKey = randomUUID();
  const body: Schemas["CreateQuestion"] = { title: "TypeScript 客户端如何跟随变更流？", category: "golang", tags: ["sdk"] };
  const first = await createQuestion(kb, body, idempotencyKey);
  const retry = await createQuestion(kb, body, idempotencyKey);
  assert.ok(!first.replayed && retry.replayed, "the retry is the first answer, replayed");
  assert.equal(retry.question.id, first.question.id);
  console.log(`created question ${first.question.id}; the retry replayed it`);

  const page = await changes(kb, cursor, 10);
  const created = page.items.find((e) => e.type === "question.created" && e.data["id"] === first.question.id);
  assert.ok(created, "the feed holds the creation");
  console.log(`feed: ${created.type} ${created.id}`);

  for (let i = 0; i < 150 && !received.some((e) => e.id === created.id); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(received.some((e) => e.id === created.id), "the creation was delivered, signed");
  console.log(`webhook: ${created.id} delivered, signature verified`);

  await kb.DELETE("/api/v1/webhooks/{id}", { params: { path: { id: hook.id } } });
  await kb.DELETE("/api/v1/questions/{id}", { params: { path: { id: first.question.id } } });
  server.close();
  console.log("typescript client example: all steps passed");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
