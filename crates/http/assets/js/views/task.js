// #/tasks/<id>: one task — its numbers, the live peek (streamed text, the current tool call,
// the tool calls so far), questions waiting for a person, the prompt and the answer (collapsed:
// they may be private), attachments, the model and why, its worktree with the diff, Merge and
// Discard (`worktree.js`), and Cancel.

import { api } from "../api.js";
import { budgetText } from "../budget.js";
import { badge, bytes, clock, collapsed, cost, elapsed, errorBox, fill, h, setText, short, tokens } from "../dom.js";
import { landTask, liveOf, openPeek, state, touch } from "../state.js";
import { questionCard } from "./inbox.js";
import { worktreeSection } from "./worktree.js";

export function render(container, id) {
  const title = h("h1", null, "Task ", h("span.mono", null, short(id)));
  const statusEl = h("span");
  const cancelButton = h("button.danger", { type: "button", hidden: true }, "Cancel");
  const outcome = h("div.outcome", { "aria-live": "polite" });
  const facts = h("dl.facts");
  const questionsBox = h("div.questions");
  const toolNow = h("p.tool-now");
  const toolRows = h("tbody");
  const text = h("pre.peek", { "aria-label": "streamed text" });
  const extra = h("div.extra");
  const worktree = worktreeSection(id);
  container.append(
    h("div.titlebar", null, h("a.back", { href: "#/tasks" }, "← Tasks"), title, statusEl, cancelButton),
    outcome,
    facts,
    questionsBox,
    worktree.el,
    h(
      "section.live",
      null,
      h("h2", null, "Live peek"),
      toolNow,
      h("table.tools", null, h("thead", null, h("tr", null, h("th", null, "Tool call"), h("th", null, "Status"), h("th", null, "Title"), h("th", null, "At"))), toolRows),
      h("h3", null, "Streamed text"),
      text,
    ),
    extra,
  );

  let task = state.tasks.get(id);
  let armed = null;
  let painted = { answer: null, prompt: null, status: null };

  function fact(label, value) {
    return [h("dt", null, label), h("dd", null, value ?? "—")];
  }

  function paint() {
    if (!task) return;
    if (painted.status !== task.status) {
      fill(statusEl, badge(task.status));
      painted.status = task.status;
    }
    cancelButton.hidden = task.status !== "running";
    const u = task.usage ?? {};
    const p = task.progress ?? {};
    // Its own run (a workflow job) or the run of its step.
    const workflowRun = task.runId;
    fill(
      facts,
      fact("Worker", task.workerId),
      fact("Kind", task.kind),
      fact("Requester", task.requestedBy),
      fact("Started", clock(task.startedAt)),
      fact("Elapsed", elapsed(task.startedAt, task.durationMs)),
      fact("Model", task.model),
      fact("Why this model", task.modelReason),
      task.route ? fact("Routed to", `${task.route.profile}: ${task.route.reason}`) : null,
      fact("Tokens", `${tokens(u.input)} in · ${tokens(u.output)} out · ${tokens(u.reasoning)} reasoning · ${tokens(u.cacheRead)} cache read · ${tokens(u.cacheWrite)} cache write`),
      fact("Cost", cost(u.cost)),
      task.budget ? fact("Budget", budgetText(task.budget, task.spent, task.budgetStop)) : null,
      fact("Tool calls", String(p.toolCalls ?? 0)),
      p.retries ? fact("Provider retries", String(p.retries)) : null,
      fact("Session", task.sessionId),
      workflowRun ? fact("Workflow run", h("a", { href: `#/runs/${encodeURIComponent(workflowRun)}` }, short(workflowRun))) : null,
    );
    const waiting = [...state.questions.values()].filter((q) => q.jobId === id);
    fill(questionsBox, waiting.length ? [h("h2", null, "Needs input"), waiting.map((q) => questionCard(q))] : null);
    worktree.update(task);
    paintExtra();
  }

  function paintExtra() {
    // Built once per final state, so an open <details> stays open while the task runs.
    const key = `${task.status}:${task.responseText?.length ?? 0}:${task.progress?.permissions?.length ?? 0}`;
    if (painted.answer === key) return;
    painted.answer = key;
    const p = task.progress ?? {};
    fill(
      extra,
      task.error ? h("section", null, h("h2", null, "Error"), h("pre.error-text", null, task.error)) : null,
      h("section", null, h("h2", null, "Prompt"), collapsed("Show the prompt (it may be private)", () => h("pre.text", null, task.message))),
      task.responseText
        ? h("section", null, h("h2", null, "Answer"), collapsed("Show the answer", () => h("pre.text.answer", null, task.responseText)))
        : null,
      task.attachments?.length
        ? h(
            "section",
            null,
            h("h2", null, "Attachments"),
            h("ul", null, task.attachments.map((a) => h("li", null, `${a.type}: ${a.name} (${a.mimeType}, ${bytes(a.bytes)})`))),
          )
        : null,
      p.permissions?.length
        ? h(
            "section",
            null,
            h("h2", null, "Permission answers"),
            h("ul.answers", null, p.permissions.map((a) => h("li", null, `${a.permission} ${a.patterns.join(", ")} → ${a.reply} (by ${a.by ?? "profile"}, ${clock(a.at)})`))),
          )
        : null,
    );
  }

  function paintLive() {
    const live = liveOf(id);
    const tools = [...live.tools.entries()];
    const current = tools.filter(([, t]) => t.status === "running" || t.status === "pending").pop();
    setText(toolNow, current ? `Now: ${current[1].tool}${current[1].title ? ` — ${current[1].title}` : ""}` : task?.status === "running" ? "No tool call running." : "");
    if (toolRows.children.length !== tools.length || tools.some(([cid, t], i) => toolRows.children[i]?.dataset.status !== t.status || toolRows.children[i]?.dataset.call !== cid)) {
      fill(
        toolRows,
        tools.map(([cid, t]) => h("tr", { "data-call": cid, "data-status": t.status }, h("td", null, t.tool), h("td", null, badge(t.status)), h("td", null, t.title ?? ""), h("td.dim", null, clock(t.at)))),
      );
    }
    const atBottom = text.scrollHeight - text.scrollTop - text.clientHeight < 24;
    if (text.textContent !== live.text) {
      text.textContent = live.text || (task?.status === "running" ? "" : "(nothing streamed)");
      if (atBottom) text.scrollTop = text.scrollHeight;
    }
  }

  async function cancel() {
    if (!task || task.status !== "running") return;
    if (!armed) {
      setText(cancelButton, "Really cancel?");
      armed = setTimeout(() => {
        armed = null;
        setText(cancelButton, "Cancel");
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    cancelButton.disabled = true;
    setText(cancelButton, "Canceling…");
    fill(outcome, h("p", null, "Asking the hub to abort the worker's session…"));
    try {
      const answer = await api.cancelTask(id);
      const record = answer?.status ? answer : answer?.[0];
      if (record?.id) {
        state.tasks.set(record.id, record);
        task = record;
        touch("tasks");
      }
      fill(
        outcome,
        h(
          "p.ok",
          null,
          record?.status === "canceled"
            ? `Canceled: the worker's session was aborted (${record.error ?? "canceled"}).`
            : `The task ended ${record?.status ?? "?"} before the cancel took effect${record?.error ? `: ${record.error}` : "."}`,
        ),
      );
    } catch (err) {
      fill(outcome, errorBox(err));
    } finally {
      cancelButton.disabled = false;
      setText(cancelButton, "Cancel");
      paint();
    }
  }
  cancelButton.addEventListener("click", cancel);

  async function start() {
    if (!task) {
      try {
        task = landTask(await api.task(id));
      } catch (err) {
        fill(container, h("a.back", { href: "#/tasks" }, "← Tasks"), errorBox(err));
        return;
      }
    }
    paint();
    paintLive();
    try {
      await openPeek(id);
    } catch (err) {
      text.replaceWith(errorBox(err));
    }
  }
  start();

  return {
    title: `Task ${short(id)}`,
    keys: { x: cancel },
    update(changes) {
      if (changes.has("all") || changes.has(`task:${id}`) || changes.has("questions")) {
        task = state.tasks.get(id) ?? task;
        paint();
      }
      if (changes.has(`live:${id}`) || changes.has(`task:${id}`) || changes.has("all")) paintLive();
    },
    destroy() {
      const live = state.live.get(id);
      // The peek's buffers are dropped; counters stay for the list.
      if (live) {
        live.peek = false;
        live.text = "";
        live.tools = new Map();
      }
    },
  };
}
