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

async function page(viewport = { width: 1280, height: 800 }, options = {}) {
  const context = await browser.newContext({ viewport, locale: "zh-CN", ...options });
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
  for (const route of ["/", "/?q=" + encodeURIComponent("sync.Map 读写"), "/q/9", "/study", "/progress", "/settings"]) {
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

/** Opens `route` afresh with the learner token `token` (and more) kept as the page keeps them. */
async function asLearner(p, token, route, more = {}) {
  await p.goto(base + "/#/");
  await p.evaluate((items) => Object.entries(items).forEach(([k, v]) => localStorage.setItem(k, v)),
    { "kb.token": token, ...more });
  await p.goto(base + "/#" + route);
  await p.reload();
}

/** What the progress view shows: its bars and numbers, or null when it shows something else. */
async function shownProgress(p) {
  await p.waitForSelector("#reviews-chart, #progress-unavailable, .notice.bad");
  if (!(await p.locator("#reviews-chart").count())) return null;
  const bars = (chart) => p.locator(chart + " g.bar").evaluateAll((gs) => gs.map((g) => ({
    date: g.dataset.date, value: Number(g.dataset.value), part: g.dataset.part,
    title: g.querySelector("title").textContent, label: g.getAttribute("aria-label"),
  })));
  const text = (sel) => p.locator(sel).textContent();
  return {
    days: await bars("#reviews-chart"), forecast: await bars("#forecast-chart"),
    streak: [await text("#streak-current strong"), await text("#streak-longest strong")],
    retention: await text("#retention"),
    cards: await p.locator("[id^=cards-] strong").allTextContents(),
    next: (await p.locator("#next-due time").count()) ? await p.locator("#next-due time").getAttribute("datetime") : null,
  };
}

function assertShows(shown, stats) {
  assert.ok(shown, "the progress view shows charts");
  assert.deepEqual(shown.days.map((b) => [b.date, b.value, Number(b.part)]),
    stats.days.map((d) => [d.date, d.reviews, d.again]), "a bar per day, as the server counts");
  assert.deepEqual(shown.forecast.map((b) => [b.date, b.value]), stats.forecast.map((d) => [d.date, d.due]),
    "a bar per forecast day");
  for (const b of [...shown.days, ...shown.forecast]) {
    assert.ok(b.title.includes(String(b.value)) && b.title === b.label, b.title);
  }
  assert.deepEqual(shown.streak, [String(stats.streak.current), String(stats.streak.longest)]);
  assert.equal(shown.retention, stats.retention === null ? "—" : Math.round(stats.retention * 100) + "%");
  assert.deepEqual(shown.cards, ["new", "learning", "review", "relearning"].map((k) => String(stats.cards[k])));
  assert.equal(shown.next, stats.next_due_at);
}

test("the progress view charts a learner's reviews and due forecast as the server counts them", async () => {
  const tz = "Asia/Shanghai";
  const issued = await call("/learners/carol/tokens", { method: "POST", body: {} });
  assert.equal(issued.status, 201);
  const p = await page({ width: 390, height: 844 }, { timezoneId: tz });
  // A learner without reviews sees zeros, not an error.
  await asLearner(p, issued.body.token, "/progress");
  const empty = await shownProgress(p);
  assertShows(empty, (await call(`/learners/carol/stats?days=30&tz=${tz}`)).body);
  assert.equal(empty.days.length, 30);
  assert.ok(empty.days.every((b) => b.value === 0));
  assert.equal(empty.retention, "—");
  // Reviews over the last ten days: a four-day streak up to today, two misses.
  const now = Date.now();
  const plan = [[9, 1, "good"], [9, 2, "good"], [6, 3, "again"], [6, 3, "good"], [3, 4, "hard"], [3, 1, "good"],
    [2, 2, "easy"], [1, 5, "again"], [0, 6, "good"], [0, 5, "good"], [0, 3, "good"]];
  for (const [ago, question_id, rating] of plan) {
    const reviewed_at = new Date(now - ago * 86400000 - 60000).toISOString();
    const r = await call("/learners/carol/reviews", { method: "POST", body: { question_id, rating, reviewed_at } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  const stats = (await call(`/learners/carol/stats?days=30&tz=${tz}`)).body;
  await p.reload();
  const shown = await shownProgress(p);
  assertShows(shown, stats);
  assert.equal(shown.days.reduce((a, b) => a + b.value, 0), plan.length);
  assert.ok(shown.forecast.some((b) => b.value > 0));
  assert.ok((await p.locator("#reviews-total").textContent()).startsWith(`共 ${plan.length} 次`));
  const [scroll, width] = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scroll <= width, `${scroll} > ${width}`);
  await p.screenshot({ path: join(SHOTS, "progress.png"), fullPage: true });
  await p.context().close();
  // The same in English and the dark scheme.
  const dark = await page({ width: 390, height: 844 }, { timezoneId: tz, colorScheme: "dark" });
  await asLearner(dark, issued.body.token, "/progress", { "kb.lang": "en" });
  assertShows(await shownProgress(dark), stats);
  assert.equal(await dark.locator("h1").textContent(), "Progress");
  await dark.screenshot({ path: join(SHOTS, "progress-dark.png"), fullPage: true });
  await dark.context().close();
});

test("without the server's progress the view says so briefly", async () => {
  const issued = await call("/learners/erin/tokens", { method: "POST", body: {} });
  const p = await page();
  await p.route("**/api/v1/learners/erin/stats*", (r) => r.fulfill({
    status: 404, contentType: "application/problem+json", body: JSON.stringify({ title: "Not Found", status: 404, code: "not_found" }),
  }));
  await asLearner(p, issued.body.token, "/progress");
  assert.equal(await shownProgress(p), null);
  assert.ok(await p.locator("#progress-unavailable").isVisible());
  assert.equal(await p.locator(".notice.bad").count(), 0, "not an error");
  await p.context().close();
});

test("erasing my data clears the server's record of me and this browser's", async () => {
  const issued = await call("/learners/dave/tokens", { method: "POST", body: {} });
  assert.equal((await call("/learners/dave/reviews", { method: "POST", body: { question_id: 1, rating: "good" } })).status, 201);
  const p = await page();
  await asLearner(p, issued.body.token, "/progress", { "kb.reviews": JSON.stringify({ 2: { interval: 0.01, due: 0 } }) });
  await p.waitForSelector("#erase");
  assert.ok((await p.locator(".erase").textContent()).includes("dave"), "it says whose data goes");
  // Declining the confirmation changes nothing.
  p.once("dialog", (d) => d.dismiss());
  await p.click("#erase");
  assert.equal(await p.evaluate(() => localStorage.getItem("kb.token")), issued.body.token);
  p.once("dialog", (d) => d.accept());
  await p.click("#erase");
  await p.waitForSelector("#erased, [role=alert]");
  assert.equal(await p.locator("[role=alert]").count(), 0, await p.locator("main").textContent());
  assert.deepEqual(await p.evaluate(() => [localStorage.getItem("kb.token"), localStorage.getItem("kb.reviews")]), [null, null]);
  assert.ok(await p.locator("#progress-local").isVisible(), "the view no longer shows a learner");
  const stats = await call("/learners/dave/stats?days=30");
  assert.equal(stats.status, 200);
  assert.equal(stats.body.days.reduce((a, d) => a + d.reviews, 0), 0, "no reviews left on the server");
  const refused = await fetch(base + "/api/v1/learners/dave/due", { headers: { Authorization: "Bearer " + issued.body.token } });
  assert.equal(refused.status, 401, "the erased learner's token is gone too");
  await p.goto(base + "/#/due");
  await p.waitForFunction(() => document.body.dataset.ready === "/due");
  assert.equal(await p.locator(".hit").count(), 0);
  assert.ok((await p.locator("main").textContent()).includes("现在没有需要复习的题。"));
  // Without a token, erasing clears this browser only.
  await p.evaluate(() => localStorage.setItem("kb.reviews", JSON.stringify({ 3: { interval: 2, due: 0 } })));
  await p.goto(base + "/#/progress");
  await p.waitForSelector("#erase");
  p.once("dialog", (d) => d.accept());
  await p.click("#erase");
  await p.waitForSelector("#erased");
  assert.equal(await p.evaluate(() => localStorage.getItem("kb.reviews")), null);
  await p.context().close();
});
