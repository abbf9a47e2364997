// End-to-end tests of the study page in a real browser: Debian's Chromium driven by
// playwright-core (no browser download), against a real kb started on port 0 with a fresh data
// directory. Run by .ci/run: `node --test web/e2e/`. Screenshots for the README are written to
// docs/screenshots/ by the same tests.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../..");
const KB = process.env.KB_BIN || join(ROOT, "target/debug/kb");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ADMIN = "e2e-admin-key-of-at-least-32-characters";
const SHOTS = join(ROOT, "docs/screenshots");

let server;
let base;
let browser;
let dataDir;

async function call(path, { method = "GET", body, headers = {} } = {}) {
  const res = await fetch(base + "/api/v1" + path, {
    method,
    headers: { Authorization: "Bearer " + ADMIN, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get("etag"), body: text ? JSON.parse(text) : null };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "kb-e2e-"));
  server = spawn(KB, [], {
    env: {
      ...process.env, KB_DATA_DIR: dataDir, KB_BIND: "127.0.0.1:0", KB_LOG_FORMAT: "json",
      KB_LOG: "info", KB_ADMIN_KEY: ADMIN, KB_QUOTAS: "off",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  base = await new Promise((resolveAddr, reject) => {
    const lines = createInterface({ input: server.stdout });
    lines.on("line", (line) => {
      try {
        const v = JSON.parse(line);
        if (v.fields?.address && v.fields?.message === "kb is serving") resolveAddr("http://" + v.fields.address);
      } catch { /* not a log line of ours */ }
    });
    server.on("exit", (code) => reject(new Error("kb exited with " + code)));
  });
  for (let i = 0; i < 200; i++) {
    if ((await fetch(base + "/readyz")).ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
});

async function page(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, locale: "zh-CN" });
  const p = await context.newPage();
  p.on("pageerror", (e) => { throw e; });
  return p;
}

test("searching 协程 shows highlighted hits and a facet narrows them", async () => {
  const p = await page();
  await p.goto(base + "/#/?q=" + encodeURIComponent("协程"));
  await p.waitForSelector(".hit mark");
  const before = await p.locator(".hit").count();
  assert.ok(before > 0);
  const marked = await p.locator(".hit mark").first().textContent();
  assert.ok(marked.length > 0);
  await p.screenshot({ path: join(SHOTS, "desktop-search.png") });
  const facet = p.locator('.facets button[data-facet="difficulty"]').first();
  const value = await facet.getAttribute("data-value");
  await facet.click();
  await p.waitForFunction((v) => location.hash.includes("difficulty=" + v), value);
  await p.waitForSelector('.facets button[aria-pressed="true"]');
  const after = await p.locator(".hit").count();
  assert.ok(after <= before && after > 0, `${after} of ${before}`);
  for (const chip of await p.locator(".hit .meta").allTextContents()) {
    assert.ok(chip.includes({ easy: "简单", medium: "中等", hard: "困难" }[value]), chip);
  }
  // The back button returns to the unfiltered search.
  await p.goBack();
  await p.waitForFunction(() => !location.hash.includes("difficulty="));
  await p.context().close();
});

test("a question page renders Markdown, and a hostile answer stays inert", async () => {
  const hostile = [
    "**粗体** 和 `code`", "", "- 第一点", "- 第二点", "", "```go", "go func() {}()", "```", "",
    "<script>window.__pwned = 1</script>", "<img src=x onerror=\"window.__pwned = 2\">",
    "[点我](javascript:window.__pwned=3) [好链接](https://go.dev/)",
  ].join("\n");
  const created = await call("/questions", {
    method: "POST",
    body: { title: "<b>标题</b> 里的 <script>alert(1)</script>", category: "golang", answers: [{ body: hostile }] },
  });
  assert.equal(created.status, 201);
  const p = await page();
  await p.goto(base + "/#/q/" + created.body.id);
  await p.waitForSelector(".answer strong");
  assert.equal(await p.locator(".answer strong").first().textContent(), "粗体");
  assert.equal(await p.locator(".answer li").count(), 2);
  assert.equal(await p.locator(".answer pre code").textContent(), "go func() {}()");
  assert.equal(await p.locator(".answer img").count(), 0, "raw HTML is text, not an element");
  assert.equal(await p.locator(".answer script").count(), 0);
  assert.ok((await p.locator("h1").textContent()).includes("<script>"), "the title shows as text");
  assert.equal(await p.locator('.answer a[href^="javascript"]').count(), 0);
  assert.equal(await p.locator('.answer a[href="https://go.dev/"]').count(), 1);
  await p.getByText("点我").click().catch(() => {});
  await p.goto(base + "/#/?q=" + encodeURIComponent("标题 script"));
  await p.waitForSelector(".hit");
  assert.equal(await p.evaluate(() => window.__pwned), undefined);
  await p.context().close();
});

test("a quiz session never repeats a question and ends cleanly", async () => {
  const p = await page();
  await p.goto(base + "/#/study");
  await p.waitForSelector("#start");
  await p.selectOption("#category", "distributed");
  await p.click("#start");
  const seen = [];
  for (let i = 0; i < 20; i++) {
    await p.waitForSelector("#reveal, #round-done");
    if (await p.locator("#round-done").count()) break;
    seen.push(await p.locator(".card").getAttribute("data-question"));
    assert.equal(await p.locator("#progress").textContent(), `${seen.length} / 6`);
    await p.click("#reveal");
    await p.click('button[data-rating="good"]');
  }
  assert.equal(seen.length, 6);
  assert.equal(new Set(seen).size, 6, "no question twice");
  assert.ok(await p.locator("#round-done").isVisible());
  // Reviews without a learner token stay in this browser.
  const kept = await p.evaluate(() => Object.keys(JSON.parse(localStorage.getItem("kb.reviews"))).length);
  assert.equal(kept, 6);
  await p.context().close();
});

test("a multiple-choice answer is graded by the server", async () => {
  const p = await page();
  await p.goto(base + "/#/study");
  await p.waitForSelector("#start");
  await p.selectOption("#mode", "choice");
  await p.click("#start");
  await p.waitForSelector(".choices button");
  assert.ok((await p.locator(".choices button").count()) >= 2);
  await p.locator(".choices button").first().click();
  await p.waitForSelector("#verdict");
  assert.equal(await p.locator(".choices button.right").count(), 1);
  await p.context().close();
});

test("a learner token handed over in the link syncs reviews to the server", async () => {
  const issued = await call("/learners/alice/tokens", { method: "POST", body: {} });
  assert.equal(issued.status, 201);
  const p = await page();
  await p.goto(base + "/#/settings?token=" + issued.body.token);
  await p.waitForSelector("#handover");
  assert.ok(!(await p.evaluate(() => location.hash)).includes("kbl_"), "the token leaves the URL");
  assert.ok((await p.locator("#handover").textContent()).includes("alice"));
  assert.equal(await p.evaluate(() => localStorage.getItem("kb.token")), null, "not kept unasked");
  await p.click("#accept-token");
  await p.waitForSelector("#token");
  await p.goto(base + "/#/study");
  await p.waitForSelector("#start");
  assert.ok((await p.locator("main").textContent()).includes("alice"));
  await p.click("#start");
  await p.waitForSelector("#reveal");
  const id = Number(await p.locator(".card").getAttribute("data-question"));
  await p.click("#reveal");
  await p.click('button[data-rating="again"]');
  await p.waitForSelector("#reveal, #round-done");
  // Had the review stayed in the browser, the server would still list the question as never
  // reviewed by alice.
  const due = await call("/learners/alice/due?limit=100");
  assert.ok(due.body.items.some((i) => i.due === null), "the list does hold unreviewed questions");
  assert.equal(due.body.items.some((i) => i.question.id === id && i.due === null), false,
    "alice's review of the question is on the server");
  await p.context().close();
});

test("an edit with a stale version shows the conflict, and overwriting resolves it", async () => {
  const p = await page();
  await p.goto(base + "/#/settings");
  await p.fill("#key", ADMIN);
  await p.click('button[type="submit"]');
  await p.goto(base + "/#/edit/16");
  await p.waitForSelector("#title");
  // Someone else edits the question meanwhile.
  const changed = await call("/questions/16", { method: "PATCH", body: { difficulty: "easy" } });
  assert.equal(changed.status, 200);
  await p.fill("#title", "GMP 指的是什么？（我改的）");
  await p.click("#save");
  await p.waitForSelector("#conflict");
  await p.click("#overwrite");
  await p.waitForSelector("#edit-status .notice.ok");
  const now = await call("/questions/16");
  assert.equal(now.body.title, "GMP 指的是什么？（我改的）");
  // The server's validation errors appear next to their fields.
  await p.fill("#title", "   ");
  await p.click("#save");
  await p.waitForSelector('[data-error-for="title"]:not([hidden])');
  await p.context().close();
});

test("at phone width nothing scrolls sideways", async () => {
  const p = await page({ width: 375, height: 740 });
  for (const route of ["/", "/?q=" + encodeURIComponent("sync.Map 读写"), "/q/9", "/study", "/settings"]) {
    await p.goto(base + "/#" + route);
    await p.waitForFunction(() => document.body.dataset.ready !== undefined);
    await p.waitForTimeout(50);
    const [scroll, width] = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= width, `${route}: ${scroll} > ${width}`);
  }
  await p.goto(base + "/#/q/9");
  await p.waitForSelector(".answer");
  await p.screenshot({ path: join(SHOTS, "phone-question.png"), fullPage: false });
  await p.context().close();
});

test("the page is keyboard reachable and switches to English", async () => {
  const p = await page();
  await p.goto(base + "/#/");
  await p.waitForSelector("#q");
  await p.keyboard.press("Tab");
  const first = await p.evaluate(() => document.activeElement.textContent);
  assert.ok(first.includes("Skip") || first.includes("跳到"), first);
  await p.click("#lang");
  await p.waitForFunction(() => document.documentElement.lang === "en");
  assert.equal(await p.locator('[data-nav="search"]').textContent(), "Search");
  await p.fill("#q", "sync.Ma");
  await p.waitForSelector("#suggestions li");
  await p.keyboard.press("ArrowDown");
  await p.keyboard.press("Enter");
  await p.waitForFunction(() => location.hash.startsWith("#/q/"));
  await p.context().close();
});

test("at phone width the first hit comes first and the filters open from a button", async () => {
  const p = await page({ width: 390, height: 844 });
  await p.goto(base + "/#/?q=" + encodeURIComponent("协程"));
  await p.waitForSelector(".hit");
  const top = (await p.locator(".hit").first().boundingBox()).y;
  assert.ok(top >= 0 && top < 844 - 100, `the first hit starts at ${top}px, below the fold`);
  assert.equal(await p.locator(".facets").isVisible(), false, "filters hidden until asked for");
  assert.equal(await p.locator("#filters-toggle").getAttribute("aria-expanded"), "false");
  await p.click("#filters-toggle");
  assert.ok(await p.locator(".facets").isVisible());
  assert.equal(await p.locator("#filters-toggle").getAttribute("aria-expanded"), "true");
  await p.locator('.facets button[data-facet="difficulty"]').first().click();
  await p.waitForFunction(() => location.hash.includes("difficulty="));
  await p.waitForSelector('.facets button[aria-pressed="true"]', { state: "attached" });
  assert.equal(await p.locator("#filters-toggle").textContent(), "筛选（1）", "the button counts the filters on");
  assert.equal(await p.locator(".facets").isVisible(), false, "the hits come first again");
  // Wider, the filters sit beside the hits as before and the button is gone.
  await p.setViewportSize({ width: 1280, height: 800 });
  assert.ok(await p.locator(".facets").isVisible());
  assert.equal(await p.locator("#filters-toggle").isVisible(), false);
  await p.context().close();
});
