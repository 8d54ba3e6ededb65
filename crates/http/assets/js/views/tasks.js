// #/tasks: every task the hub knows, grouped Needs input / Running / Done / Failed / Canceled,
// each row updated in place as its events arrive (no re-render of the list).

import { badge, cost, elapsed, empty, h, setElapsed, setText, short, tokens } from "../dom.js";
import { groupOf, state } from "../state.js";

export const GROUPS = [
  ["needs-input", "Needs input"],
  ["running", "Running"],
  ["done", "Done"],
  ["failed", "Failed"],
  ["canceled", "Canceled"],
];

export function render(container) {
  const filter = h("input.filter", {
    type: "search",
    placeholder: "filter by worker, task id or requester  ( / )",
    "data-search": true,
    "aria-label": "filter tasks",
  });
  const sections = new Map();
  const body = h("div.groups");
  for (const [key, title] of GROUPS) {
    const count = h("span.count");
    const tbody = h("tbody");
    const section = h(
      `section.group.g-${key}`,
      null,
      h("h2", null, title, " ", count),
      h(
        "table.tasks",
        null,
        h(
          "thead",
          null,
          h("tr", null, ["Task", "Worker", "Requester", "Status", "Elapsed", "Tokens in / out / cache", "Cost", "Activity"].map((t) => h("th", null, t))),
        ),
        tbody,
      ),
    );
    sections.set(key, { section, tbody, count });
    body.append(section);
  }
  container.append(h("div.toolbar", null, filter), body);

  const rows = new Map();

  function rowOf(task) {
    let row = rows.get(task.id);
    if (row) return row;
    const cells = {
      id: h("a", { href: `#/tasks/${encodeURIComponent(task.id)}` }),
      worker: h("td"),
      requester: h("td.dim"),
      status: h("td"),
      elapsed: elapsed(),
      tokens: h("td.num"),
      cost: h("td.num"),
      activity: h("td.activity"),
    };
    const tr = h(
      "tr",
      { "data-nav": true, "data-href": `#/tasks/${encodeURIComponent(task.id)}`, "data-task": task.id },
      h("td.mono", null, cells.id),
      cells.worker,
      cells.requester,
      cells.status,
      h("td.num", null, cells.elapsed),
      cells.tokens,
      cells.cost,
      cells.activity,
    );
    row = { tr, cells, group: null, status: null, startedAt: task.startedAt };
    rows.set(task.id, row);
    return row;
  }

  function paint(task) {
    const row = rowOf(task);
    const c = row.cells;
    setText(c.id, short(task.id));
    setText(c.worker, task.workerId);
    setText(c.requester, task.requestedBy ?? "");
    if (row.status !== task.status) {
      c.status.replaceChildren(badge(task.status));
      row.status = task.status;
    }
    setElapsed(c.elapsed, task.startedAt, task.durationMs);
    const u = task.usage ?? {};
    setText(c.tokens, `${tokens(u.input)} / ${tokens(u.output)} / ${tokens((u.cacheRead || 0) + (u.cacheWrite || 0))}`);
    setText(c.cost, cost(u.cost));
    paintActivity(task, row);
    const group = groupOf(task);
    if (row.group !== group) {
      row.group = group;
      place(row, group);
    }
    row.tr.hidden = !matches(task);
  }

  function paintActivity(task, row) {
    const live = state.live.get(task.id);
    const progress = task.progress ?? {};
    let text = "";
    if (task.status === "running") {
      const tool = live?.lastTool ?? (progress.lastTool ? { tool: progress.lastTool } : null);
      const parts = [];
      if (progress.toolCalls) parts.push(`${progress.toolCalls} tool call${progress.toolCalls === 1 ? "" : "s"}`);
      if (tool) parts.push(`${tool.tool}${tool.status ? ` (${tool.status})` : ""}`);
      if (live?.chars) parts.push(`✎ ${tokens(live.chars)} chars`);
      text = parts.join(" · ") || "starting…";
    } else if (task.status === "failed" || task.status === "canceled") {
      text = task.error ?? "";
    } else {
      text = progress.toolCalls ? `${progress.toolCalls} tool call${progress.toolCalls === 1 ? "" : "s"}` : "";
    }
    setText(row.cells.activity, text);
  }

  /** Newest first within a group. */
  function place(row, group) {
    const { tbody } = sections.get(group);
    let before = null;
    for (const other of tbody.children) {
      const otherRow = rows.get(other.dataset.task);
      if (otherRow && otherRow.startedAt < row.startedAt) {
        before = other;
        break;
      }
    }
    tbody.insertBefore(row.tr, before);
  }

  function counts() {
    for (const [key, { section, tbody, count }] of sections) {
      const visible = [...tbody.children].filter((tr) => !tr.hidden).length;
      setText(count, visible ? String(visible) : "");
      section.classList.toggle("is-empty", tbody.children.length === 0);
    }
  }

  function matches(task) {
    const words = filter.value.trim().toLowerCase();
    if (!words) return true;
    return [task.id, task.workerId, task.requestedBy ?? "", task.kind].some((v) => v.toLowerCase().includes(words));
  }

  function all() {
    for (const task of state.tasks.values()) paint(task);
    counts();
    const none = body.querySelector(".none");
    if (!state.tasks.size && !none) {
      body.prepend(h("div.none", null, empty("No tasks yet. Start one through MCP (task_start) or `orchestra run`.")));
    } else if (state.tasks.size && none) {
      none.remove();
    }
  }

  filter.addEventListener("input", all);
  all();

  return {
    title: "Tasks",
    update(changes) {
      if (changes.has("all") || changes.has("questions") || changes.has("tasks")) {
        // Groups depend on questions; a whole pass is cheap (rows are patched, not rebuilt).
        all();
        return;
      }
      for (const key of changes) {
        if (key.startsWith("live:")) {
          const task = state.tasks.get(key.slice(5));
          const row = task && rows.get(task.id);
          if (row) paintActivity(task, row);
        }
      }
    },
  };
}
