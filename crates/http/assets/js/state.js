// What the page knows: records as the API returned them, kept current by the hub's event
// stream (`/api/v1/events`, Server-Sent Events read through `fetch`, so the stream carries the
// session's header like every other call; it resumes after the last event it applied). Nothing
// here decides anything the hub did not say; events only replace or merge the hub's own
// records.

import { api, authHeaders, forgetSession } from "./api.js";

export const state = {
  health: null,
  workers: new Map(),
  tasks: new Map(),
  runs: new Map(),
  questions: new Map(),
  /** Per task: live peek (text, tool calls) for tasks someone is looking at, and counters. */
  live: new Map(),
  connected: false,
  /** The session ended (logout, expiry, a restarted hub): nothing more comes until a new login. */
  loggedOut: false,
  lastEventId: 0,
  error: null,
};

/** Most characters of streamed text a peek keeps (the tail). */
const PEEK_CHARS = 20000;
/** Log lines kept for a following log view. */
const LOG_KEEP = 2000;

export const logs = [];

const listeners = new Set();
const dirty = new Set();
let flushing = false;
/** Events applied since the last render, with the time each arrived (for the benchmark). */
let applied = [];

/** `fn(changes: Set<string>)` after each batch of changes (at most once per frame). */
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function touch(key) {
  dirty.add(key);
  schedule();
}

function schedule() {
  if (flushing) return;
  flushing = true;
  // A frame when the page is visible; the timer keeps a hidden page current too.
  const timer = setTimeout(flush, 50);
  requestAnimationFrame(() => {
    clearTimeout(timer);
    flush();
  });
}

function flush() {
  if (!flushing) return;
  flushing = false;
  const changes = new Set(dirty);
  dirty.clear();
  for (const fn of listeners) {
    try {
      fn(changes);
    } catch (err) {
      console.error("a view failed to update", err);
    }
  }
  // Hub event → DOM updated: measured by `orchestra-bench --only panel` when it sets
  // window.__orchestraPerf to an array.
  const perf = window.__orchestraPerf;
  if (perf && applied.length) {
    const now = performance.timeOrigin + performance.now();
    for (const at of applied) perf.push(now - at);
  }
  applied = [];
}

export function liveOf(jobId) {
  let live = state.live.get(jobId);
  if (!live) {
    live = { chars: 0, text: "", tools: new Map(), answers: [], peek: false, lastId: 0 };
    state.live.set(jobId, live);
  }
  return live;
}

/** Loads everything a first render needs; events after `lastEventId` keep it current. */
export async function load() {
  const health = await api.health();
  state.health = health;
  state.lastEventId = health.lastEventId;
  const [workers, tasks, runs, questions] = await Promise.all([
    api.workers(),
    api.tasks(),
    api.runs(),
    api.questions(),
  ]);
  for (const w of workers) state.workers.set(w.id, w);
  for (const t of tasks) state.tasks.set(t.id, t);
  for (const r of runs) state.runs.set(r.runId, r);
  for (const question of questions) state.questions.set(question.requestId, question);
  touch("all");
}

/** A task's events so far, for its peek: the text it streamed and its tool calls. Events that
 * arrive while they load are held and applied after them, each once. */
export async function openPeek(jobId) {
  const live = liveOf(jobId);
  if (live.peek) return;
  live.peek = true;
  live.loading = true;
  live.pending = [];
  let events;
  try {
    events = await api.taskEvents(jobId, 0);
  } catch (err) {
    live.peek = false;
    live.loading = false;
    throw err;
  }
  live.text = "";
  live.tools = new Map();
  live.answers = [];
  live.lastId = 0;
  live.loading = false;
  for (const event of [...events, ...live.pending]) peekEvent(live, event);
  live.pending = [];
  touch(`task:${jobId}`);
}

function peekEvent(live, event) {
  if (!live.peek) return;
  if (live.loading) {
    live.pending.push(event);
  } else if (event.id > live.lastId) {
    applyPeek(live, event);
    live.lastId = event.id;
  }
}

function applyPeek(live, event) {
  const d = event.data;
  switch (event.type) {
    case "orchestra.job.delta":
      live.text = (live.text + d.text).slice(-PEEK_CHARS);
      break;
    case "orchestra.job.tool":
      live.tools.set(d.callId, { tool: d.tool, status: d.status, title: d.title, at: event.timestamp });
      break;
    case "orchestra.permission.answered":
      live.answers.push({ ...d, at: event.timestamp });
      break;
    default:
      break;
  }
}

const EVENT_TYPES = [
  "orchestra.job.started",
  "orchestra.job.updated",
  "orchestra.job.delta",
  "orchestra.job.tool",
  "orchestra.permission.asked",
  "orchestra.permission.answered",
  "orchestra.job.finished",
  "orchestra.worker.status",
  "orchestra.workflow.step",
  "orchestra.workflow.run",
  "orchestra.memory.written",
  "orchestra.log",
];

/** The stream sends a comment every 10 s: this long without a byte means the hub is gone. */
const STALL_MS = 30000;
/** Reconnection waits this long at first, doubling up to `RETRY_MAX_MS`. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10000;

/** Ends the stream being followed, if any. */
let stopStream = null;

/** Follows the event stream from `state.lastEventId`, reconnecting after a drop from the last
 * event applied, so nothing is missed; a refused session (401) ends it for good. */
export function connect() {
  stopStream?.();
  const control = new AbortController();
  stopStream = () => control.abort();
  follow(control.signal);
}

async function follow(signal) {
  let wait = RETRY_MIN_MS;
  while (!signal.aborted) {
    let status = 0;
    try {
      const response = await fetch(`/api/v1/events?after=${state.lastEventId}`, {
        headers: authHeaders(),
        credentials: "same-origin",
        cache: "no-store",
        signal,
      });
      status = response.status;
      if (response.ok && response.body) {
        setConnected(true);
        wait = RETRY_MIN_MS;
        await readStream(response.body);
      }
    } catch {
      // A dropped connection or a stop: decided below.
    }
    if (signal.aborted) return;
    setConnected(false);
    if (status === 401) {
      endSession();
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, RETRY_MAX_MS);
  }
}

function setConnected(connected) {
  if (state.connected === connected) return;
  state.connected = connected;
  if (connected) state.error = null;
  touch("connection");
}

/** Reads SSE frames (`id:`, `event:`, `data:` lines, a blank line between) until the stream
 * ends or stalls. */
async function readStream(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let stall = null;
  try {
    for (;;) {
      clearTimeout(stall);
      stall = setTimeout(() => reader.cancel("the event stream stalled"), STALL_MS);
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r/g, "");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        frame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
      }
    }
  } finally {
    clearTimeout(stall);
  }
}

function frame(text) {
  let type = "message";
  const data = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length || !EVENT_TYPES.includes(type)) return;
  let event;
  try {
    event = JSON.parse(data.join("\n"));
  } catch {
    return;
  }
  apply(event);
}

/** The session is over: stop the stream, forget the key, and say so. */
export function endSession() {
  stopStream?.();
  stopStream = null;
  forgetSession();
  state.connected = false;
  state.loggedOut = true;
  touch("connection");
}

/** Logs this tab out: the hub ends the session (for every tab that shares it). */
export async function logout() {
  try {
    await api.logout();
  } catch (err) {
    // Already ended (401) is what was wanted; anything else is shown, and the tab forgets
    // its key all the same.
    if (err.status !== 401) state.error = err.message;
  }
  endSession();
}

/** Applies one hub event to what the page knows. */
export function apply(event) {
  state.lastEventId = Math.max(state.lastEventId, event.id);
  applied.push(event.timestamp);
  // Hub event → the page has it (the benchmark's split of event → DOM).
  window.__orchestraRecv?.push(Date.now() - event.timestamp);
  const d = event.data;
  switch (event.type) {
    case "orchestra.job.started":
    case "orchestra.job.finished":
      state.tasks.set(d.job.id, d.job);
      if (event.type === "orchestra.job.finished") dropQuestionsOf(d.job.id);
      touch("tasks");
      touch(`task:${d.job.id}`);
      break;
    case "orchestra.job.updated": {
      const task = state.tasks.get(d.jobId);
      if (task && task.status === "running") {
        Object.assign(task, {
          sessionId: d.sessionId ?? task.sessionId,
          model: d.model ?? task.model,
          modelReason: d.modelReason ?? task.modelReason,
          progress: d.progress,
          usage: d.usage,
        });
        touch("tasks");
        touch(`task:${d.jobId}`);
      }
      break;
    }
    case "orchestra.job.delta": {
      const live = liveOf(d.jobId);
      live.chars += d.text.length;
      peekEvent(live, event);
      touch(`live:${d.jobId}`);
      break;
    }
    case "orchestra.job.tool": {
      const live = liveOf(d.jobId);
      live.lastTool = { tool: d.tool, status: d.status };
      peekEvent(live, event);
      touch(`live:${d.jobId}`);
      break;
    }
    case "orchestra.permission.asked":
      // Only questions that wait for a person (a profile's rule answers the others at once).
      if (d.expiresAt) {
        state.questions.set(d.requestId, d);
        touch("questions");
        touch(`task:${d.jobId}`);
        touch("tasks");
      }
      break;
    case "orchestra.permission.answered": {
      state.questions.delete(d.requestId);
      const live = liveOf(d.jobId);
      peekEvent(live, event);
      touch("questions");
      touch(`task:${d.jobId}`);
      touch("tasks");
      break;
    }
    case "orchestra.worker.status":
      state.workers.set(d.worker.id, d.worker);
      touch("workers");
      break;
    case "orchestra.workflow.step": {
      if (fetching.has(d.runId)) {
        fetching.get(d.runId).later.push(event);
        break;
      }
      const run = state.runs.get(d.runId);
      if (run) {
        run.steps[d.index] = d.step;
        run.jobId = d.jobId;
        touch("runs");
        touch(`run:${d.runId}`);
      } else {
        readRunQuietly(d.runId);
      }
      break;
    }
    case "orchestra.workflow.run": {
      if (fetching.has(d.runId)) {
        fetching.get(d.runId).later.push(event);
        break;
      }
      const run = state.runs.get(d.runId);
      if (run) {
        Object.assign(run, {
          status: d.status,
          currentStepIndex: d.currentStepIndex,
          reason: d.reason,
          usage: d.usage,
          jobId: d.jobId,
        });
        touch("runs");
        touch(`run:${d.runId}`);
      }
      // A new run, or a resumed one (new job, maybe new steps): read it whole.
      readRunQuietly(d.runId);
      break;
    }
    case "orchestra.memory.written":
      touch("memory");
      touch(`memory:${d.recordId}`);
      for (const old of d.superseded ?? []) touch(`memory:${old}`);
      break;
    case "orchestra.log":
      logs.push({ id: event.id, at: event.timestamp, ...d });
      if (logs.length > LOG_KEEP) logs.splice(0, logs.length - LOG_KEEP);
      touch("logs");
      break;
    default:
      break;
  }
}

function dropQuestionsOf(jobId) {
  for (const [id, question] of state.questions) {
    if (question.jobId === jobId) state.questions.delete(id);
  }
  touch("questions");
}

/** Runs being read, each with the run events that arrived while its read was in flight and
 * the read's promise, so every reader (events, a run's view, its buttons) shares one read. */
const fetching = new Map();

/** Reads a run whole into `state.runs`. Every read of a run goes through here: a read answered
 * before an event happened, yet landing after the event was applied, would otherwise put a
 * step that is running back to pending until the step ends (seen in CI: a run's view read the
 * run while an event-driven read of it was in flight, and the older answer landed last). */
export function readRun(runId) {
  const inFlight = fetching.get(runId);
  if (inFlight) return inFlight.done;
  const entry = { later: [], done: null };
  fetching.set(runId, entry);
  entry.done = (async () => {
    try {
      const run = await api.run(runId);
      state.runs.set(run.runId, run);
      touch("runs");
      touch(`run:${run.runId}`);
      return run;
    } finally {
      fetching.delete(runId);
      // The read may have been answered before these events happened: applying them on top
      // keeps a step that started meanwhile from showing as pending until it ends.
      for (const event of entry.later) apply(event);
    }
  })();
  return entry.done;
}

function readRunQuietly(runId) {
  readRun(runId).catch((err) => console.warn("reading a workflow run failed", err));
}

/** Keeps a task read from the hub, unless an event that arrived while the read was in flight
 * already said the task ended: an answer from before the end must not bring it back to
 * running. Returns the copy the page keeps. */
export function landTask(record) {
  const known = state.tasks.get(record.id);
  if (known && known.status !== "running" && record.status === "running") return known;
  state.tasks.set(record.id, record);
  return record;
}

/** The state of a task as the page groups it. */
export function groupOf(task) {
  if (task.status === "running") {
    for (const question of state.questions.values()) {
      if (question.jobId === task.id) return "needs-input";
    }
    return "running";
  }
  return { succeeded: "done", failed: "failed", canceled: "canceled" }[task.status] ?? "done";
}
