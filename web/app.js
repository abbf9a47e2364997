// The kb study page: a client of kb's public API like any other. Views are addressed by the
// URL fragment (#/, #/q/16, #/study, #/due, #/progress, #/new, #/edit/16, #/settings) with
// their state in its query string, so a search can be shared and the back button works.

import { api, ApiError, qs, store, tokenLearner } from "./api.js";
import { renderHighlight, renderMarkdown } from "./markdown.js";
import { lang, setLang, t } from "./i18n.js";

const main = document.getElementById("main");
const PAGE = 10;

// ---------- small DOM helpers (text only: nothing here parses HTML) ----------

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

function show(...nodes) {
  main.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined));
}

function errorNotice(err) {
  const text = err instanceof ApiError
    ? err.status === 429 ? t("err.rate") : err.code === "overloaded" ? t("err.busy")
      : t("err.generic") + err.message
    : t("err.generic") + String(err.message || err);
  return h("div", { class: "notice bad", role: "alert" }, text);
}

function meta(q) {
  return h("div", { class: "meta" },
    h("span", { class: "chip" }, q.category.name),
    h("span", { class: "chip" }, t("d." + q.difficulty)),
    q.tags.map((tag) => h("span", { class: "chip" }, "#" + tag)));
}

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

function go(path, params = {}) {
  location.hash = path + qs(params);
}

// ---------- search ----------

async function viewSearch(params) {
  const q = params.get("q") || "";
  const filters = {
    category: params.get("category") || "", tag: params.get("tag") || "",
    difficulty: params.get("difficulty") || "",
  };
  const page = Math.max(1, parseInt(params.get("page") || "1", 10) || 1);
  const input = h("input", {
    id: "q", type: "search", name: "q", value: q, placeholder: t("search.placeholder"),
    autocomplete: "off", role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
    "aria-controls": "suggestions",
  });
  const list = h("ul", { id: "suggestions", class: "suggestions", role: "listbox", hidden: true });
  const form = h("form", { role: "search", onsubmit: (e) => {
    e.preventDefault();
    go("/", { q: input.value.trim(), ...filters, category: "", tag: "", difficulty: "" });
  } }, input, h("button", { class: "primary", type: "submit" }, t("search.go")));
  attachSuggestions(input, list);
  const results = h("div", { "aria-live": "polite" });
  show(h("h1", {}, t("search.label")), h("div", { class: "searchbox" },
    h("label", { for: "q", class: "visually-hidden" }, t("search.label")), form, list), results);
  if (!q) {
    results.append(h("p", { class: "muted" }, t("search.start")));
    try {
      const { body } = await api("/categories");
      results.append(h("div", { class: "row" }, body.map((c) => h("a", {
        class: "button", href: "#/browse" + qs({ category: c.slug }),
      }, `${c.name} (${c.question_count})`))));
    } catch (err) {
      results.append(errorNotice(err));
    }
    return;
  }
  results.append(h("p", { class: "muted" }, t("loading")));
  let body;
  try {
    ({ body } = await api("/search" + qs({ q, ...filters, limit: PAGE, offset: (page - 1) * PAGE })));
  } catch (err) {
    results.replaceChildren(errorNotice(err));
    return;
  }
  const facet = (name, counts, label) => h("section", {},
    h("h3", {}, label),
    Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, 12).map(([value, n]) => {
      const on = filters[name] === value;
      return h("button", {
        type: "button", "aria-pressed": on ? "true" : "false", "data-facet": name, "data-value": value,
        onclick: () => go("/", { q, ...filters, [name]: on ? "" : value }),
      }, h("span", {}, name === "difficulty" ? t("d." + value) : value), h("span", {}, String(n)));
    }));
  const hits = h("ol", { class: "hits" }, body.hits.map((hit) => h("li", { class: "hit" },
    h("h2", {}, h("a", { href: "#/q/" + hit.question.id }, renderHighlight(hit.highlights.title))),
    h("p", {}, renderHighlight(hit.highlights.answer)),
    meta(hit.question))));
  // The API pages no further than offset 10,000, and beyond 10,000 matches totals are estimates.
  const pages = Math.min(Math.ceil(body.total / PAGE), Math.floor(10000 / PAGE) + 1);
  const pager = pages > 1 ? h("nav", { class: "pager", "aria-label": t("page.n", page) },
    h("button", { type: "button", disabled: page <= 1, onclick: () => go("/", { q, ...filters, page: page - 1 }) }, t("page.prev")),
    h("span", { class: "progress" }, `${t("page.n", page)} / ${pages}`),
    h("button", { type: "button", disabled: page >= pages, onclick: () => go("/", { q, ...filters, page: page + 1 }) }, t("page.next"))) : null;
  // Beside the hits on wide screens; on phones, behind a toggle so the first hit comes first.
  const aside = h("aside", { class: "facets", id: "facets", "aria-label": t("search.filters", 0) },
    facet("category", body.facets.category, t("search.categories")),
    facet("difficulty", body.facets.difficulty, t("search.difficulty")),
    facet("tag", body.facets.tag, t("search.tags")));
  const toggle = h("button", {
    type: "button", class: "filters-toggle", id: "filters-toggle", "aria-expanded": "false", "aria-controls": "facets",
    onclick: () => toggle.setAttribute("aria-expanded", String(aside.classList.toggle("open"))),
  }, t("search.filters", Object.values(filters).filter(Boolean).length));
  results.replaceChildren(
    h("div", { class: "row results-head" }, h("p", { class: "muted", id: "total" },
      (body.relaxed ? t("search.relaxed") + " " : "") + t(body.total_exact === false ? "search.about" : "search.results", body.total)),
    toggle),
    h("div", { class: "layout" }, aside,
      h("div", {}, body.hits.length ? hits : h("p", {}, t("search.none")), pager)));
}

/** Suggestions as you type, from /search/suggest; arrows move, Enter opens, Escape closes. */
function attachSuggestions(input, list) {
  let timer = null;
  let items = [];
  let active = -1;
  const close = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); active = -1; };
  const mark = () => [...list.children].forEach((li, i) => li.setAttribute("aria-selected", i === active ? "true" : "false"));
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) return close();
    timer = setTimeout(async () => {
      try {
        const { body } = await api("/search/suggest" + qs({ q, limit: 8 }));
        items = body;
        list.replaceChildren(...items.map((s, i) => h("li", {
          role: "option", id: "sugg-" + i, "aria-selected": "false",
          onmousedown: (e) => { e.preventDefault(); go("/q/" + s.id); },
        }, s.title)));
        list.hidden = items.length === 0;
        input.setAttribute("aria-expanded", items.length ? "true" : "false");
      } catch { close(); }
    }, 150);
  });
  input.addEventListener("keydown", (e) => {
    if (list.hidden) return;
    if (e.key === "ArrowDown") { active = Math.min(items.length - 1, active + 1); mark(); e.preventDefault(); }
    else if (e.key === "ArrowUp") { active = Math.max(-1, active - 1); mark(); e.preventDefault(); }
    else if (e.key === "Escape") close();
    else if (e.key === "Enter" && active >= 0) { e.preventDefault(); go("/q/" + items[active].id); }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
}

async function viewBrowse(params) {
  const category = params.get("category") || "";
  show(h("p", { class: "muted" }, t("loading")));
  try {
    const { body } = await api("/questions" + qs({ category, limit: 50 }));
    show(h("h1", {}, category), h("ol", { class: "hits" }, body.items.map((q) => h("li", { class: "hit" },
      h("h2", {}, h("a", { href: "#/q/" + q.id }, q.title)), meta(q)))));
  } catch (err) {
    show(errorNotice(err));
  }
}

// ---------- reading ----------

async function viewQuestion(id) {
  show(h("p", { class: "muted" }, t("loading")));
  let q;
  try {
    ({ body: q } = await api("/questions/" + id));
  } catch (err) {
    show(err.status === 404 ? h("p", {}, t("q.notfound")) : errorNotice(err));
    return;
  }
  const similar = h("ul", {});
  show(
    h("article", {},
      h("h1", {}, q.title), meta(q),
      q.body ? h("div", { class: "card" }, renderMarkdown(q.body)) : null,
      h("h2", {}, t("q.answers")),
      q.answers.length ? q.answers.map((a) => h("div", { class: "answer" }, renderMarkdown(a.body)))
        : h("p", { class: "muted" }, t("q.none")),
      h("p", {}, h("a", { href: "#/edit/" + q.id }, t("q.edit")))),
    h("section", {}, h("h2", {}, t("q.similar")), similar));
  try {
    const { body } = await api(`/questions/${id}/similar?limit=5`);
    similar.replaceChildren(...body.items.map((s) => h("li", {}, h("a", { href: "#/q/" + s.question.id }, s.question.title))));
  } catch { /* related questions are a nicety */ }
}

// ---------- studying ----------

// Without a learner token, reviews stay in this browser: {questionId: {due, interval}}.
const local = {
  load() { try { return JSON.parse(localStorage.getItem("kb.reviews") || "{}"); } catch { return {}; } },
  review(id, rating) {
    const all = this.load();
    const prev = all[id]?.interval || 0;
    const days = { again: 0.01, hard: Math.max(1, prev * 1.2), good: Math.max(2, prev * 2.5), easy: Math.max(4, prev * 3.5) }[rating];
    all[id] = { interval: days, due: Date.now() + days * 86400000 };
    localStorage.setItem("kb.reviews", JSON.stringify(all));
  },
};

async function recordReview(questionId, rating) {
  const info = store.token && tokenLearner(store.token);
  if (info) {
    await api(`/learners/${encodeURIComponent(info.learner)}/reviews`, {
      method: "POST", auth: "learner", body: { question_id: questionId, rating },
    });
  } else {
    local.review(questionId, rating);
  }
}

async function viewStudy(params) {
  const mode = params.get("mode") || "flashcard";
  const category = params.get("category") || "";
  const difficulty = params.get("difficulty") || "";
  let categories = [];
  try { ({ body: categories } = await api("/categories")); } catch { /* the form still works */ }
  const info = store.token && tokenLearner(store.token);
  const sel = (name, value, options) => h("select", { id: name, name },
    options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
  const form = h("form", { onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(form);
    startRound({ mode: f.get("mode"), category: f.get("category"), difficulty: f.get("difficulty") });
  } },
  h("label", { for: "mode" }, t("study.mode")),
  sel("mode", mode, [["flashcard", t("study.flashcard")], ["choice", t("study.choice")]]),
  h("label", { for: "category" }, t("edit.category")),
  sel("category", category, [["", t("study.any")], ...categories.map((c) => [c.slug, c.name])]),
  h("label", { for: "difficulty" }, t("edit.difficulty")),
  sel("difficulty", difficulty, [["", t("study.any")], ...["easy", "medium", "hard"].map((d) => [d, t("d." + d)])]),
  h("p", {}, h("button", { class: "primary", type: "submit", id: "start" }, t("study.start"))));
  show(h("h1", {}, t("study.title")),
    h("p", { class: "muted" }, info ? t("study.synced", info.learner) : t("study.local")), form);
}

async function startRound({ mode, category, difficulty }) {
  let session;
  try {
    ({ body: session } = await api("/quiz/sessions", {
      method: "POST", auth: store.token ? "learner" : undefined,
      body: Object.fromEntries(Object.entries({ category, difficulty }).filter(([, v]) => v)),
    }));
  } catch (err) {
    show(errorNotice(err));
    return;
  }
  const round = { token: session.token, total: session.remaining, done: 0, mode, seen: new Set() };
  nextCard(round);
}

async function nextCard(round) {
  let item;
  try {
    const { body } = await api("/quiz" + qs({ count: 1, session: round.token, mode: round.mode }));
    item = body.items[0];
  } catch (err) {
    if (err.code === "quiz_session_exhausted") {
      show(h("h1", {}, t("study.title")), h("div", { class: "notice ok", id: "round-done" }, t("study.done")),
        h("p", {}, h("a", { class: "button primary", href: "#/study?mode=" + round.mode }, t("study.again_round"))));
      return;
    }
    show(errorNotice(err));
    return;
  }
  round.done += 1;
  round.seen.add(item.question.id);
  const progress = h("p", { class: "progress", id: "progress" }, t("study.progress", round.done, round.total));
  const card = h("div", { class: "card", "data-question": String(item.question.id) },
    h("h1", { id: "card-title" }, item.question.title), meta(item.question));
  if (round.mode === "choice") {
    const feedback = h("div", { "aria-live": "polite" });
    const buttons = item.choices.map((c) => h("button", { type: "button", "data-choice": c.id, onclick: async () => {
      buttons.forEach((b) => { b.disabled = true; });
      try {
        const { body: g } = await api("/quiz/answers", {
          method: "POST", auth: store.token ? "learner" : undefined, body: { ticket: item.ticket, choice_id: c.id },
        });
        for (const b of buttons) {
          if (b.dataset.choice === g.correct_choice_id) b.classList.add("right");
          else if (b.dataset.choice === c.id) b.classList.add("wrong");
        }
        feedback.replaceChildren(
          h("p", { class: g.correct ? "notice ok" : "notice bad", id: "verdict" }, g.correct ? t("study.right") : t("study.wrong")),
          h("div", { class: "answer" }, renderMarkdown(g.answer)),
          h("button", { class: "primary", type: "button", id: "next", onclick: () => nextCard(round) }, t("study.next")));
        document.getElementById("next")?.focus();
      } catch (err) {
        feedback.replaceChildren(errorNotice(err));
      }
    } }, c.text));
    show(progress, card, h("div", { class: "choices" }, buttons), feedback);
    return;
  }
  const answers = h("div", { hidden: true, id: "answers" },
    item.answers.map((a) => h("div", { class: "answer" }, renderMarkdown(a.body))),
    h("div", { class: "ratings" }, ["again", "hard", "good", "easy"].map((r) => h("button", {
      type: "button", "data-rating": r, onclick: async () => {
        try { await recordReview(item.question.id, r); } catch (err) { main.append(errorNotice(err)); return; }
        nextCard(round);
      },
    }, t("study." + r)))));
  const reveal = h("button", { class: "primary", type: "button", id: "reveal", onclick: () => {
    answers.hidden = false;
    reveal.hidden = true;
    answers.querySelector("button")?.focus();
  } }, t("study.reveal"));
  show(progress, card, reveal, answers);
  reveal.focus();
}

async function viewDue() {
  const info = store.token && tokenLearner(store.token);
  show(h("p", { class: "muted" }, t("loading")));
  let items = [];
  try {
    if (info) {
      const { body } = await api(`/learners/${encodeURIComponent(info.learner)}/due?limit=50`, { auth: "learner" });
      items = body.items.map((i) => ({ question: i.question, due: i.due }));
    } else {
      const reviews = local.load();
      const due = Object.entries(reviews).filter(([, r]) => r.due <= Date.now()).slice(0, 50);
      for (const [id, r] of due) {
        try {
          const { body } = await api("/questions/" + id);
          items.push({ question: body, due: new Date(r.due).toISOString() });
        } catch { /* deleted since */ }
      }
    }
  } catch (err) {
    show(errorNotice(err));
    return;
  }
  show(h("h1", {}, t("due.title")),
    h("p", { class: "muted" }, info ? t("study.synced", info.learner) : t("study.local")),
    items.length ? h("ol", { class: "hits" }, items.map((i) => h("li", { class: "hit" },
      h("h2", {}, h("a", { href: "#/q/" + i.question.id }, i.question.title)),
      h("div", { class: "meta" }, h("span", { class: "chip" }, i.due ? t("due.overdue") + " " + new Date(i.due).toLocaleString() : t("due.never")))))) :
      h("p", {}, t("due.none")));
}

// ---------- progress ----------

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element, like h() but in the SVG namespace. */
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children.flat()) if (c) e.append(c);
  return e;
}

const locale = () => (lang === "zh" ? "zh-CN" : "en");

/** "2026-12-05" as a short day of the calendar ("12月5日", "Dec 5"). */
function day(date) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(locale(), { month: "short", day: "numeric" });
}

/**
 * A bar chart drawn as SVG, one `<g class="bar">` per item labelled with its `text`; `part`
 * (the `again` reviews) is drawn over the bottom of its bar in its own colour. It stretches to
 * the width it is given; the dates under it are HTML, so they stay readable on a phone.
 */
function barChart(id, label, items) {
  const W = 300, H = 100, slot = W / Math.max(1, items.length);
  const max = Math.max(1, ...items.map((i) => i.value));
  const rect = (cls, i, v) => {
    const height = v ? Math.max(1, (v / max) * (H - 4)) : 0;
    return svg("rect", { class: cls, x: i * slot + slot * 0.15, y: H - height, width: slot * 0.7, height });
  };
  return h("figure", { class: "chart" },
    svg("svg", { id, viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "group", "aria-label": label },
      items.map((it, i) => svg("g", {
        class: "bar", role: "img", "aria-label": it.text, "data-date": it.date, "data-value": it.value,
        "data-part": it.part ?? "",
      }, svg("title", {}, it.text), svg("rect", { class: "slot", x: i * slot, y: 0, width: slot, height: H }),
      rect("fill", i, it.value), it.part ? rect("part", i, it.part) : null)),
      svg("line", { class: "base", x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5 })),
    h("figcaption", { class: "axis" }, h("span", {}, items.length ? day(items[0].date) : ""),
      h("span", {}, t("progress.max", max)), h("span", {}, items.length ? day(items.at(-1).date) : "")));
}

function stat(id, label, ...value) {
  return h("div", { class: "stat" }, h("dt", {}, label), h("dd", { id }, ...value));
}

async function viewProgress(flash = null) {
  const info = store.token && tokenLearner(store.token);
  const head = [h("h1", {}, t("progress.title")), flash];
  if (!info) {
    const kept = Object.keys(local.load()).length;
    show(head, h("div", { class: "notice", id: "progress-local" }, t("progress.needToken"), " ",
      h("a", { href: "#/settings" }, t("nav.settings"))),
    h("p", { class: "muted" }, t("progress.kept", kept)), eraseSection(null));
    return;
  }
  show(head, h("p", { class: "muted" }, t("loading")));
  let s;
  try {
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    ({ body: s } = await api(`/learners/${encodeURIComponent(info.learner)}/stats` + qs({ days: 30, tz }), { auth: "learner" }));
  } catch (err) {
    show(head, err.status === 404
      ? h("div", { class: "notice", id: "progress-unavailable" }, t("progress.unavailable"))
      : errorNotice(err), eraseSection(info));
    return;
  }
  const sum = (list, key) => list.reduce((a, d) => a + d[key], 0);
  const days = (n) => [h("strong", {}, String(n)), " ", t("progress.dayUnit", n)];
  const next = s.next_due_at ? new Date(s.next_due_at) : null;
  show(head,
    h("p", { class: "muted" }, t("study.synced", info.learner)),
    h("dl", { class: "stats" },
      stat("streak-current", t("progress.streak"), days(s.streak.current)),
      stat("streak-longest", t("progress.longest"), days(s.streak.longest)),
      stat("retention", t("progress.retention"), h("strong", {}, s.retention === null ? "—"
        : new Intl.NumberFormat(locale(), { style: "percent" }).format(s.retention))),
      stat("next-due", t("progress.nextDue"), next
        ? h("time", { datetime: s.next_due_at }, next <= Date.now() ? t("progress.nextNow")
          : next.toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" }))
        : t("progress.nextNone"))),
    h("h2", {}, t("progress.cards")),
    h("dl", { class: "stats" }, ["new", "learning", "review", "relearning"].map((k) =>
      stat("cards-" + k, t("cards." + k), h("strong", {}, String(s.cards[k]))))),
    h("h2", {}, t("progress.reviews", s.days.length)),
    h("p", { class: "muted", id: "reviews-total" }, t("progress.reviewsSum", sum(s.days, "reviews"), sum(s.days, "again")), " ",
      h("span", { class: "key fill" }, t("progress.recalled")), " ", h("span", { class: "key part" }, t("study.again"))),
    barChart("reviews-chart", t("progress.reviews", s.days.length), s.days.map((d) => ({
      date: d.date, value: d.reviews, part: d.again, text: t("progress.bar", day(d.date), d.reviews, d.again),
    }))),
    h("h2", {}, t("progress.forecast", s.forecast.length)),
    h("p", { class: "muted", id: "forecast-total" }, t("progress.forecastSum", sum(s.forecast, "due"))),
    barChart("forecast-chart", t("progress.forecast", s.forecast.length), s.forecast.map((d) => ({
      date: d.date, value: d.due, text: t("progress.dueBar", day(d.date), d.due),
    }))),
    eraseSection(info));
}

/** Erasing: the server's data for the token's learner (if any), then this browser's. */
function eraseSection(info) {
  const status = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "button", class: "danger", id: "erase", onclick: async () => {
    if (!confirm(t("erase.confirm", info?.learner))) return;
    button.disabled = true;
    if (info) {
      try {
        await api(`/learners/${encodeURIComponent(info.learner)}`, { method: "DELETE", auth: "learner" });
      } catch (err) {
        button.disabled = false;
        status.replaceChildren(err.status === 404 || err.status === 405
          ? h("div", { class: "notice bad", role: "alert" }, t("erase.unavailable")) : errorNotice(err));
        return;
      }
    }
    localStorage.removeItem("kb.reviews");
    store.token = "";
    viewProgress(h("div", { class: "notice ok", role: "status", id: "erased" }, t("erase.done")));
  } }, t("erase.button"));
  return h("section", { class: "erase" }, h("h2", {}, t("erase.title")),
    h("p", {}, info ? t("erase.server", info.learner) : t("erase.local")), button, status);
}

// ---------- curating ----------

async function viewEdit(id) {
  if (!store.writeKey) {
    show(h("h1", {}, id ? t("edit.edit") : t("edit.new")), h("div", { class: "notice" }, t("edit.needKey"),
      " ", h("a", { href: "#/settings" }, t("nav.settings"))));
    return;
  }
  let question = null;
  let etag = null;
  let categories = [];
  try {
    ({ body: categories } = await api("/categories"));
    if (id) ({ body: question, etag } = await api("/questions/" + id));
  } catch (err) {
    show(errorNotice(err));
    return;
  }
  const answersBox = h("div", { class: "answers-editor", id: "answers-editor" });
  const addAnswer = (text = "") => {
    const n = answersBox.children.length;
    const row = h("div", { class: "answer-row" },
      h("div", {}, h("textarea", { name: "answer", "aria-label": `${t("edit.answers")} ${n + 1}`, "data-field": `answers[${n}].body` }, text),
        h("p", { class: "field-error", "data-error-for": `answers[${n}].body`, hidden: true })),
      h("button", { type: "button", onclick: () => row.remove() }, t("edit.remove")));
    answersBox.append(row);
  };
  (question?.answers || [{ body: "" }]).forEach((a) => addAnswer(a.body));
  const field = (name, label, control) => h("div", {},
    h("label", { for: name }, label), control,
    h("p", { class: "field-error", "data-error-for": name, id: name + "-error", hidden: true }));
  const status = h("div", { "aria-live": "polite", id: "edit-status" });
  const form = h("form", { novalidate: true, onsubmit: (e) => { e.preventDefault(); save(false); } },
    field("title", t("edit.title"), h("input", { id: "title", name: "title", value: question?.title || "", "data-field": "title" })),
    field("category", t("edit.category"), h("select", { id: "category", name: "category", "data-field": "category" },
      categories.map((c) => h("option", { value: c.slug, selected: c.slug === question?.category.slug }, c.name)))),
    field("difficulty", t("edit.difficulty"), h("select", { id: "difficulty", name: "difficulty" },
      ["easy", "medium", "hard"].map((d) => h("option", { value: d, selected: d === (question?.difficulty || "medium") }, t("d." + d))))),
    field("tags", t("edit.tags"), h("input", { id: "tags", name: "tags", value: (question?.tags || []).join(", ") })),
    field("body", t("edit.body"), h("textarea", { id: "body", name: "body" }, question?.body || "")),
    h("label", {}, t("edit.answers")), answersBox,
    h("p", {}, h("button", { type: "button", onclick: () => addAnswer() }, t("edit.addAnswer"))),
    h("p", {}, h("button", { class: "primary", type: "submit", id: "save" }, t("edit.save"))), status);
  show(h("h1", {}, id ? t("edit.edit") : t("edit.new")), form);

  async function save(overwrite) {
    form.querySelectorAll(".field-error").forEach((p) => { p.hidden = true; p.textContent = ""; });
    const f = new FormData(form);
    const body = {
      title: f.get("title"), category: f.get("category"), difficulty: f.get("difficulty"),
      tags: String(f.get("tags") || "").split(/[,，\s]+/).filter(Boolean),
      answers: f.getAll("answer").filter((a) => String(a).trim()).map((a) => ({ body: a })),
    };
    const text = String(f.get("body") || "");
    if (id) body.body = text.trim() ? text : null;
    else if (text.trim()) body.body = text;
    try {
      const headers = id && etag && !overwrite ? { "If-Match": etag } : {};
      const res = await api(id ? "/questions/" + id : "/questions", {
        method: id ? "PATCH" : "POST", auth: "write", body, headers,
      });
      etag = res.etag;
      status.replaceChildren(h("div", { class: "notice ok" }, t("edit.saved"), " ",
        h("a", { href: "#/q/" + res.body.id }, res.body.title)));
      if (!id) go("/edit/" + res.body.id);
    } catch (err) {
      if (err.code === "precondition_failed") {
        status.replaceChildren(h("div", { class: "notice bad", role: "alert", id: "conflict" }, t("edit.conflict"), " ",
          h("button", { type: "button", onclick: () => viewEdit(id) }, t("edit.reload")), " ",
          h("button", { type: "button", id: "overwrite", onclick: () => save(true) }, t("edit.overwrite"))));
        return;
      }
      if (err.errors?.length) {
        for (const fe of err.errors) {
          const slot = form.querySelector(`[data-error-for="${CSS.escape(fe.field.replace(/\[\d+\]$/, ""))}"]`)
            || form.querySelector(`[data-error-for="${CSS.escape(fe.field)}"]`);
          if (slot) { slot.hidden = false; slot.textContent = fe.message; }
        }
        status.replaceChildren(h("div", { class: "notice bad", role: "alert" }, t("edit.invalid") + " " + err.message));
        return;
      }
      status.replaceChildren(errorNotice(err));
    }
  }
}

// ---------- settings ----------

function viewSettings(params) {
  // A token handed over in a link (#/settings?token=…) leaves the URL at once, and is kept
  // only when the person says so: a link must not silently make someone study as another
  // learner.
  const handed = params.get("token");
  if (handed) {
    history.replaceState(null, "", "#/settings");
    const who = tokenLearner(handed);
    if (who) {
      show(h("h1", {}, t("set.title")), h("div", { class: "notice", id: "handover" },
        h("p", {}, t("set.handover", who.learner)),
        h("div", { class: "row" },
          h("button", { class: "primary", type: "button", id: "accept-token", onclick: () => {
            store.token = handed;
            viewSettings(new URLSearchParams());
          } }, t("set.accept")),
          h("button", { type: "button", onclick: () => viewSettings(new URLSearchParams()) }, t("set.decline")))));
      return;
    }
  }
  const saved = h("div", { "aria-live": "polite" });
  const token = h("input", { id: "token", value: store.token, autocomplete: "off", spellcheck: "false" });
  const key = h("input", { id: "key", type: "password", value: store.writeKey, autocomplete: "off" });
  const info = store.token && tokenLearner(store.token);
  show(h("h1", {}, t("set.title")),
    h("form", { onsubmit: (e) => {
      e.preventDefault();
      store.token = token.value.trim();
      store.writeKey = key.value.trim();
      saved.replaceChildren(h("div", { class: "notice ok" }, t("set.saved")));
    } },
    h("label", { for: "token" }, t("set.token")), token,
    h("p", { class: "muted" }, t("set.tokenHelp"), info ? ` (${info.learner})` : ""),
    h("label", { for: "key" }, t("set.key")), key,
    h("p", { class: "muted" }, t("set.keyHelp")),
    h("div", { class: "row" }, h("button", { class: "primary", type: "submit" }, t("set.save")),
      h("button", { type: "button", onclick: () => { store.token = ""; store.writeKey = ""; viewSettings(new URLSearchParams()); } }, t("set.clear")))),
    saved);
}

// ---------- router ----------

function translateChrome() {
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  document.getElementById("lang").textContent = lang === "zh" ? "EN" : "中文";
}

async function route() {
  const { path, params } = parseRoute();
  const section = path.startsWith("/q/") || path === "/" || path === "/browse" ? "search"
    : path.startsWith("/edit") || path === "/new" ? "curate" : path.slice(1);
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  let m;
  if ((m = path.match(/^\/q\/(\d+)$/))) await viewQuestion(m[1]);
  else if ((m = path.match(/^\/edit\/(\d+)$/))) await viewEdit(m[1]);
  else if (path === "/new") await viewEdit(null);
  else if (path === "/study") await viewStudy(params);
  else if (path === "/due") await viewDue();
  else if (path === "/progress") await viewProgress();
  else if (path === "/settings") viewSettings(params);
  else if (path === "/browse") await viewBrowse(params);
  else await viewSearch(params);
  document.body.dataset.ready = path;
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(lang === "zh" ? "en" : "zh");
  translateChrome();
  route();
});
window.addEventListener("hashchange", () => { route(); main.focus({ preventScroll: true }); });
setLang(lang);
translateChrome();
route();
