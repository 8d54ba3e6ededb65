// #/workers: each profile's worker — state, server pid and port, model, sessions running, RSS,
// uptime — and Restart. RSS is re-read every few seconds while the view is open (it changes
// without an event).

import { api } from "../api.js";
import { badge, bytes, elapsed, empty, errorBox, fill, h, setElapsed, setText } from "../dom.js";
import { state, touch } from "../state.js";

const RSS_REFRESH_MS = 5000;

/** Our WorkerStatus in the panel's words: a server that failed and is not coming back is dead. */
const LABEL = { starting: "starting", ready: "ready", busy: "busy", restarting: "restarting", error: "dead", stopped: "not started" };

export function render(container) {
  const tbody = h("tbody");
  const note = h("div.note");
  container.append(
    h("h1", null, "Workers"),
    note,
    h(
      "table.workers",
      null,
      h("thead", null, h("tr", null, ["Worker", "State", "Server pid", "Port", "Model", "Sessions", "RSS", "Uptime", "Restarts", ""].map((t) => h("th", null, t)))),
      tbody,
    ),
  );
  const rows = new Map();

  function row(worker) {
    let r = rows.get(worker.id);
    if (r) return r;
    const c = {
      state: h("td"),
      pid: h("td.num.mono"),
      port: h("td.num.mono"),
      model: h("td"),
      sessions: h("td.num"),
      rss: h("td.num"),
      uptime: elapsed(),
      restarts: h("td.num"),
      warning: h("div.warning"),
      button: h("button", { type: "button" }, "Restart"),
    };
    c.button.addEventListener("click", () => restart(worker.id, c));
    const tr = h(
      "tr",
      { "data-nav": true, "data-worker": worker.id },
      h("td", null, h("strong", null, worker.id), h("div.dim", null, worker.name), c.warning),
      c.state,
      c.pid,
      c.port,
      c.model,
      c.sessions,
      c.rss,
      h("td.num", null, c.uptime),
      c.restarts,
      h("td", null, c.button),
    );
    r = { tr, c, status: null };
    rows.set(worker.id, r);
    tbody.append(tr);
    return r;
  }

  async function restart(id, c) {
    if (c.button.dataset.armed !== "1") {
      c.button.dataset.armed = "1";
      setText(c.button, "Really restart?");
      setTimeout(() => {
        delete c.button.dataset.armed;
        setText(c.button, "Restart");
      }, 4000);
      return;
    }
    delete c.button.dataset.armed;
    c.button.disabled = true;
    setText(c.button, "Restarting…");
    fill(note);
    try {
      const worker = await api.restartWorker(id);
      state.workers.set(worker.id, worker);
      fill(note, h("p.ok", null, `Worker ${id}'s server was restarted (pid ${worker.pid ?? "?"}); tasks that ran on it failed and say so.`));
      touch("workers");
    } catch (err) {
      fill(note, errorBox(err));
    } finally {
      c.button.disabled = false;
      setText(c.button, "Restart");
    }
  }

  function paint() {
    if (!state.workers.size) {
      fill(note, empty("No workers are configured."));
      return;
    }
    for (const w of state.workers.values()) {
      const { c, ...r } = row(w);
      if (r.status !== w.status) {
        c.state.replaceChildren(badge(LABEL[w.status] ?? w.status));
        rows.get(w.id).status = w.status;
      }
      setText(c.pid, w.pid ?? "—");
      setText(c.port, w.port ?? "—");
      c.model.title = w.modelResolution ?? "";
      setText(c.model, w.model ?? `${w.modelRef} (not resolved yet)`);
      setText(c.sessions, String(w.activeJobs));
      setText(c.rss, w.rssBytes ? bytes(w.rssBytes) : "—");
      setElapsed(c.uptime, w.serverStartedAt);
      setText(c.restarts, String(w.restarts));
      setText(c.warning, w.warning ?? "");
    }
  }
  paint();

  const timer = setInterval(async () => {
    try {
      for (const w of await api.workers()) state.workers.set(w.id, w);
      touch("workers");
    } catch {
      // The header shows a lost connection; the next refresh tries again.
    }
  }, RSS_REFRESH_MS);

  return {
    title: "Workers",
    update(changes) {
      if (changes.has("workers") || changes.has("all")) paint();
    },
    destroy() {
      clearInterval(timer);
    },
  };
}
