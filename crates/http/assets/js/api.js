// The hub's JSON API, as the page calls it. The session cookie (from `orchestra panel`'s
// one-time link) authenticates every call; an error answer carries `{error, kind}` naming the
// problem and the fix, which the page shows as it is.

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

async function call(method, path, body) {
  const init = { method, headers: { "x-orchestra-client": "panel" }, credentials: "same-origin" };
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
  answer: (requestId, reply) => post(`/api/v1/questions/${encodeURIComponent(requestId)}`, { reply }),
  logs: (params) => get(`/api/v1/logs${q(params)}`),
  config: () => get("/api/v1/config"),
  memorySearch: (params) => post("/api/v1/memory/search", params),
  memoryRecord: (id) => get(`/api/v1/memory/records/${encodeURIComponent(id)}`),
  memorySupersede: (id, body) => post(`/api/v1/memory/records/${encodeURIComponent(id)}/supersede`, body),
  memoryForget: (id, mode) => post(`/api/v1/memory/records/${encodeURIComponent(id)}/forget`, { mode }),
};

/** True when a route does not exist on this hub (a feature that is not set up). */
export function isMissingRoute(err) {
  if (!(err instanceof ApiError)) return false;
  return err.status === 405 || (err.status === 404 && /no such route/.test(err.message));
}
