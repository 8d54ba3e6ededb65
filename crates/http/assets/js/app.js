// The control panel: routes (#/tasks/<id>, #/runs/<id>, #/memory/<id>, …), the header, and
// the loop that keeps the view on screen current from the event stream.

import { installKeys, setViewKeys } from "./keys.js";
import { errorBox, fill, h, setText, tick } from "./dom.js";
import { connect, endSession, load, logout, onChange, state } from "./state.js";
import * as tasks from "./views/tasks.js";
import { budgetPausedRuns } from "./views/budget_inbox.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");

// Views load when first shown, so the first paint waits only for the tasks list.
const views = {
  tasks: async () => tasks,
  task: () => import("./views/task.js"),
  inbox: () => import("./views/inbox.js"),
  workers: () => import("./views/workers.js"),
  runs: () => import("./views/runs.js"),
  run: () => import("./views/run.js"),
  memory: () => import("./views/memory.js"),
  logs: () => import("./views/logs.js"),
  config: () => import("./views/config.js"),
};

const ROUTES = [
  [/^#?\/?$/, "tasks"],
  [/^#\/tasks\/?$/, "tasks"],
  [/^#\/tasks\/([^/]+)$/, "task"],
  [/^#\/inbox\/?$/, "inbox"],
  [/^#\/workers\/?$/, "workers"],
  [/^#\/runs\/?$/, "runs"],
  [/^#\/runs\/([^/]+)$/, "run"],
  [/^#\/memory\/?$/, "memory"],
  [/^#\/memory\/([^/]+)$/, "memory"],
  [/^#\/logs\/?$/, "logs"],
  [/^#\/config\/?$/, "config"],
];

let current = null;
let routeSerial = 0;

async function route() {
  if (state.loggedOut) return;
  const hash = location.hash || "#/tasks";
  const match = ROUTES.map(([re, name]) => [hash.match(re), name]).find(([m]) => m);
  const serial = ++routeSerial;
  current?.destroy?.();
  current = null;
  setViewKeys({});
  if (!match) {
    fill(main, errorBox(`no page ${hash}; the views are Tasks, Inbox, Workers, Runs, Memory, Logs and Config`));
    return;
  }
  const [m, name] = match;
  const param = m[1] ? decodeURIComponent(m[1]) : undefined;
  const section = name === "task" ? "tasks" : name === "run" ? "runs" : name;
  for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.dataset.view === section);
  let view;
  try {
    view = await views[name]();
  } catch (err) {
    fill(main, errorBox(`the ${name} view could not load: ${err.message}`));
    return;
  }
  if (serial !== routeSerial) return;
  const container = h("section", { class: `view view-${name}` });
  fill(main, container);
  current = view.render(container, param) ?? {};
  setViewKeys(current.keys);
  document.title = `${current.title ?? section} · Open Orchestra`;
  // Which address the view on screen shows (tests and scripts wait for it after a navigation).
  document.body.dataset.route = hash;
}

/** What a tab whose session ended shows: nothing of the hub's, and how to log in again. */
const LOGGED_OUT =
  "Not logged in: this tab's session has ended (Log out, 12 hours unused, a week old, or the hub restarted), or this tab never logged in — each tab logs in through its own link. Run `orchestra panel` in the project for a new one.";

function loggedOut() {
  current?.destroy?.();
  current = null;
  setViewKeys({});
  const conn = document.getElementById("conn");
  setText(conn, "logged out");
  conn.classList.remove("live");
  document.getElementById("logout").hidden = true;
  fill(main, errorBox(LOGGED_OUT));
}

function header(changes) {
  if (state.loggedOut) {
    loggedOut();
    return;
  }
  if (changes.has("connection") || changes.has("all")) {
    const conn = document.getElementById("conn");
    setText(conn, state.connected ? "live" : "reconnecting…");
    conn.classList.toggle("live", state.connected);
  }
  if (changes.has("tasks") || changes.has("questions") || changes.has("runs") || changes.has("all")) {
    let running = 0;
    for (const task of state.tasks.values()) if (task.status === "running") running += 1;
    setText(document.getElementById("count-tasks"), running ? String(running) : "");
    const waiting = state.questions.size + budgetPausedRuns().length;
    setText(document.getElementById("count-inbox"), waiting ? String(waiting) : "");
  }
}

async function boot() {
  installKeys(main, document.getElementById("help"));
  window.addEventListener("hashchange", route);
  onChange((changes) => {
    header(changes);
    current?.update?.(changes);
  });
  document.getElementById("logout").addEventListener("click", () => logout());
  setInterval(() => tick(main), 1000);
  try {
    await load();
  } catch (err) {
    if (err.status === 401) endSession();
    else fill(main, errorBox(err.message));
    return;
  }
  setText(document.getElementById("project"), state.health.projectDir + (state.health.fake ? " · fake model" : ""));
  connect();
  await route();
}

boot();
