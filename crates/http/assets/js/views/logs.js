// #/logs: the hub's log — its own lines, its workers' OpenCode output, task outcomes — filtered
// by level, worker and task; follow mode appends live lines as they happen; copy and download.

import { api } from "../api.js";
import { clock, copyText, download, errorBox, fill, h, setText } from "../dom.js";
import { logs, state } from "../state.js";

/** Lines kept on screen; older ones are dropped (download reads the same lines). */
const SHOWN = 2000;
const RANK = { debug: 1, trace: 1, info: 2, warn: 3, warning: 3, error: 4 };

export function render(container) {
  const level = h("select", { "aria-label": "level" }, ["info", "warn", "error", "debug"].map((l) => h("option", { value: l }, `${l}+`)));
  const worker = h("select", { "aria-label": "worker" }, h("option", { value: "" }, "all workers"));
  const job = h("input", { type: "search", placeholder: "task id", "aria-label": "task", "data-search": true });
  const text = h("input", { type: "search", placeholder: "text", "aria-label": "text" });
  const follow = h("input", { type: "checkbox", checked: true });
  const status = h("span.dim");
  const copy = h("button", { type: "button" }, "Copy");
  const save = h("button", { type: "button" }, "Download");
  const list = h("ol.log", { "aria-live": "off" });
  container.append(
    h("h1", null, "Logs"),
    h("div.toolbar", null, level, worker, job, text, h("label", null, follow, " follow"), copy, save, status),
    list,
  );
  for (const id of new Set([...state.workers.keys(), "shared"])) worker.append(h("option", { value: id }, id));

  let lines = [];
  let lastId = 0;
  let serial = 0;

  const params = () => ({ level: level.value, worker: worker.value, job: job.value.trim(), text: text.value.trim() });

  function admit(line, p) {
    if ((RANK[line.level] ?? 0) < RANK[p.level]) return false;
    if (p.worker && line.workerId !== p.worker) return false;
    if (p.job && line.jobId !== p.job) return false;
    if (p.text && !line.message.toLowerCase().includes(p.text.toLowerCase())) return false;
    return true;
  }

  function lineEl(line) {
    return h(
      `li.l-${line.level}`,
      null,
      h("span.at", null, clock(line.at)),
      h("span.lvl", null, line.level),
      line.workerId ? h("span.who", null, line.workerId) : null,
      line.jobId ? h("a.who.mono", { href: `#/tasks/${encodeURIComponent(line.jobId)}` }, line.jobId.slice(0, 8)) : null,
      h("span.msg", null, line.message),
    );
  }

  async function reload() {
    const mine = ++serial;
    setText(status, "loading…");
    try {
      const page = await api.logs({ ...params(), limit: SHOWN });
      if (mine !== serial) return;
      lines = page.lines;
      lastId = page.lastEventId;
      fill(list, lines.map(lineEl));
      setText(status, `${lines.length} line${lines.length === 1 ? "" : "s"}${page.more ? " (older lines not shown)" : ""}`);
      list.scrollTop = list.scrollHeight;
    } catch (err) {
      fill(list, errorBox(err));
      setText(status, "");
    }
  }

  function appendLive() {
    if (!follow.checked) return;
    const p = params();
    const fresh = logs.filter((l) => l.id > lastId);
    if (!fresh.length) return;
    lastId = fresh[fresh.length - 1].id;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    for (const line of fresh) {
      if (!admit(line, p)) continue;
      lines.push(line);
      list.append(lineEl(line));
    }
    while (lines.length > SHOWN) {
      lines.shift();
      list.firstChild?.remove();
    }
    setText(status, `${lines.length} lines · following`);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  const asText = () =>
    lines.map((l) => `${new Date(l.at).toISOString()} ${l.level.toUpperCase()} ${l.workerId ?? "-"} ${l.jobId ?? "-"} ${l.target ?? ""} ${l.message}`).join("\n") + "\n";
  copy.addEventListener("click", async () => setText(status, (await copyText(asText())) ? `copied ${lines.length} lines` : "copy failed"));
  save.addEventListener("click", () => download(`orchestra-log-${new Date().toISOString().replace(/[:.]/g, "-")}.txt`, asText()));
  for (const el of [level, worker]) el.addEventListener("change", reload);
  for (const el of [job, text]) el.addEventListener("change", reload);
  follow.addEventListener("change", () => (follow.checked ? reload() : setText(status, `${lines.length} lines · paused`)));
  reload();

  return {
    title: "Logs",
    keys: {
      f: () => {
        follow.checked = !follow.checked;
        follow.dispatchEvent(new Event("change"));
      },
    },
    update(changes) {
      if (changes.has("logs")) appendLive();
    },
  };
}
