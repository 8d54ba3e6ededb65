// The hub's JSON API, as the page calls it. A call is authorized by the browser session from
// `orchestra panel`'s one-time link: its cookie (which the browser sends by itself, also to
// other servers on 127.0.0.1, so it alone opens nothing) and its key, which this tab keeps in
// `sessionStorage` and sends in a header. An error answer carries `{error, kind}` naming the
// problem and the fix, which the page shows as it is.

/** Where this tab keeps its session's key (storage is per origin, so per hub). */
const SESSION_KEY = "orchestra-session";
/** The key, also in memory: a tab whose storage is off still works until it reloads. */
let sessionKey = readKey();

function readKey() {
  try {
    return sessionStorage.getItem(SESSION_KEY) ?? "";
  } catch {
    return "";
  }
}

/** Keeps the key the login page was given, for this tab only (other tabs log in themselves). */
export function keepSession(key) {
  sessionKey = key;
  try {
    sessionStorage.setItem(SESSION_KEY, key);
  } catch {
    // Storage off: the key lives in memory until the tab reloads.
  }
}

/** Forgets this tab's session (after logout). */
export function forgetSession() {
  sessionKey = "";
  try {
    sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // Nothing kept.
  }
}

/** The headers that authorize a call: every request to the hub sends them. */
export function authHeaders() {
  const headers = { "x-orchestra-client": "panel" };
  if (sessionKey) headers["x-orchestra-session"] = sessionKey;
  return headers;
}

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

async function call(method, path, body) {
  const init = { method, headers: authHeaders(), credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "unreachable", `the hub did not answer (${err.message}); is it still running? \`orchestra status\` tells`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data?.error ?? `${method} ${path} failed with HTTP ${response.status}`;
    throw new ApiError(response.status, data?.kind ?? "error", message);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);

const q = (params) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
};

export const api = {
  health: () => get("/api/v1/health"),
  /** One MCP tool call (`task_start`, `task_await`, …): `{text, isError}`, as MCP answers. */
  tool: (name, args) => post(`/api/v1/tools/${encodeURIComponent(name)}`, args),
  workers: () => get("/api/v1/workers"),
  restartWorker: (id) => post(`/api/v1/workers/${encodeURIComponent(id)}/restart`),
  tasks: (limit = 200) => post("/api/v1/list", { view: "tasks", format: "json", limit }).then((l) => l.json),
  task: (id) => get(`/api/v1/tasks/${encodeURIComponent(id)}`),
  taskEvents: (id, after = 0) => get(`/api/v1/tasks/${encodeURIComponent(id)}/events${q({ after })}`),
  cancelTask: (id) => post(`/api/v1/tasks/${encodeURIComponent(id)}/cancel`, { reason: "canceled from the panel" }),
  runs: (limit = 50) => get(`/api/v1/runs${q({ limit })}`),
  run: (id) => get(`/api/v1/runs/${encodeURIComponent(id)}`),
  pauseRun: (id) => post(`/api/v1/runs/${encodeURIComponent(id)}/pause`),
  resumeRun: (id) => post(`/api/v1/runs/${encodeURIComponent(id)}/resume`),
  cancelRun: (id) => post(`/api/v1/runs/${encodeURIComponent(id)}/cancel`),
  questions: () => get("/api/v1/questions"),
  deliveries: (status) => get(`/api/v1/notify/deliveries${q({ status })}`),
  answer: (requestId, reply) => post(`/api/v1/questions/${encodeURIComponent(requestId)}`, { reply }),
  logs: (params) => get(`/api/v1/logs${q(params)}`),
  config: () => get("/api/v1/config"),
  memorySearch: (params) => post("/api/v1/memory/search", params),
  memoryRecord: (id) => get(`/api/v1/memory/records/${encodeURIComponent(id)}`),
  memorySupersede: (id, body) => post(`/api/v1/memory/records/${encodeURIComponent(id)}/supersede`, body),
  logout: () => post("/api/v1/logout"),
  memoryForget: (id, mode) => post(`/api/v1/memory/records/${encodeURIComponent(id)}/forget`, { mode }),
};

/** True when a route does not exist on this hub (a feature that is not set up). */
export function isMissingRoute(err) {
  if (!(err instanceof ApiError)) return false;
  return err.status === 405 || (err.status === 404 && /no such route/.test(err.message));
}
