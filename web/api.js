// Talking to kb's API: JSON in and out, problem+json errors as exceptions that keep their
// `code`, `status` and field `errors`. Credentials come from the page's settings: a learner
// token (kept in this browser) or a write key (kept for this tab only). Never embedded here.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "http_" + status;
    this.errors = problem.errors || [];
  }
}

export const store = {
  get writeKey() { return sessionStorage.getItem("kb.writeKey") || ""; },
  set writeKey(v) { v ? sessionStorage.setItem("kb.writeKey", v) : sessionStorage.removeItem("kb.writeKey"); },
  get token() { return localStorage.getItem("kb.token") || ""; },
  set token(v) { v ? localStorage.setItem("kb.token", v) : localStorage.removeItem("kb.token"); },
};

/** The learner a token acts for (its payload is not secret; the server checks the signature). */
export function tokenLearner(token) {
  try {
    const payload = token.replace(/^kbl_/, "").split(".")[0];
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const claims = JSON.parse(json);
    return { learner: claims.l, expires: new Date(claims.e * 1000) };
  } catch {
    return null;
  }
}

/**
 * One API call. `auth`: "write" sends the write key, "learner" the learner token, otherwise
 * nothing. Resolves to {status, etag, body}; rejects with ApiError.
 */
export async function api(path, { method = "GET", body, auth, headers = {} } = {}) {
  const h = { Accept: "application/json", ...headers };
  const credential = auth === "write" ? store.writeKey : auth === "learner" ? store.token : "";
  if (credential) h.Authorization = "Bearer " + credential;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch("/api/v1" + path, {
    method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data || {});
  return { status: res.status, etag: res.headers.get("ETag"), body: data };
}

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") p.set(k, v);
  }
  const s = p.toString();
  return s ? "?" + s : "";
}
