// A small Markdown renderer that builds DOM nodes and sets only text: stored text can never
// become markup, a script, an event handler or a `javascript:` link, whatever it contains.
// It covers what answers use: paragraphs, headings, lists, quotes, fenced and indented code,
// inline code, emphasis and links (http, https and relative only).

function el(tag, children = [], attrs = {}) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function safeHref(href) {
  const h = href.trim();
  if (/^https?:\/\//i.test(h)) return h;
  if (/^[/#?]/.test(h) && !h.startsWith("//")) return h;
  return null;
}

// Inline: `code`, **strong**, *em* / _em_, [text](url). Everything else is text.
function inline(text) {
  const out = [];
  // Code spans of at most 10 backticks: a longer run is text (and the pattern stays linear).
  const re = /(`{1,10})([^`][\s\S]*?|)\1|\*\*([\s\S]+?)\*\*|\*([^*\s][^*]*?)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;
  let at = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    if (m[1]) out.push(el("code", [m[2]]));
    else if (m[3] !== undefined) out.push(el("strong", inline(m[3])));
    else if (m[4] !== undefined) out.push(el("em", inline(m[4])));
    else {
      const href = safeHref(m[6]);
      out.push(href ? el("a", inline(m[5]), { href, rel: "nofollow noopener", target: "_blank" })
        : m[0]);
    }
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

/** Renders Markdown into a new element of class `md`; quotes nest at most 8 deep. */
export function renderMarkdown(source, depth = 0) {
  const root = el("div", [], { class: "md" });
  const lines = String(source).replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  const para = [];
  const flush = () => {
    if (para.length) root.append(el("p", inline(para.join("\n"))));
    para.length = 0;
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)/);
    if (fence) {
      flush();
      const code = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) code.push(lines[i++]);
      i++;
      root.append(el("pre", [el("code", [code.join("\n")])]));
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      flush();
      root.append(el("h" + Math.min(6, heading[1].length + 2), inline(heading[2])));
      i++;
      continue;
    }
    const item = line.match(/^\s*([-*+●○•]|\d+[.)])\s+(.*)$/);
    if (item) {
      flush();
      const ordered = /\d/.test(item[1]);
      const list = el(ordered ? "ol" : "ul");
      while (i < lines.length) {
        const m = lines[i].match(/^\s*([-*+●○•]|\d+[.)])\s+(.*)$/);
        if (!m) break;
        list.append(el("li", inline(m[2])));
        i++;
      }
      root.append(list);
      continue;
    }
    if (/^\s*>/.test(line) && depth < 8) {
      flush();
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
      root.append(el("blockquote", [renderMarkdown(quoted.join("\n"), depth + 1)]));
      continue;
    }
    if (/^( {4}|\t)/.test(line) && !para.length) {
      const code = [];
      while (i < lines.length && (/^( {4}|\t)/.test(lines[i]) || !lines[i].trim())) {
        code.push(lines[i++].replace(/^( {4}|\t)/, ""));
      }
      root.append(el("pre", [el("code", [code.join("\n").replace(/\n+$/, "")])]));
      continue;
    }
    if (!line.trim()) flush();
    else para.push(line);
    i++;
  }
  flush();
  return root;
}

/**
 * A search highlight from the API (`<mark>` around matches, everything else escaped) as DOM
 * nodes. Parsed here rather than trusted: only `<mark>` becomes an element.
 */
export function renderHighlight(html) {
  const decode = (s) => s.replace(/&(lt|gt|quot|#39|#x27|amp);/g, (_, e) =>
    ({ lt: "<", gt: ">", quot: '"', "#39": "'", "#x27": "'", amp: "&" })[e]);
  const nodes = [];
  const parts = String(html).split(/(<mark>|<\/mark>)/);
  let marking = false;
  for (const p of parts) {
    if (p === "<mark>") marking = true;
    else if (p === "</mark>") marking = false;
    else if (p) nodes.push(marking ? el("mark", [decode(p)]) : decode(p));
  }
  return nodes;
}
