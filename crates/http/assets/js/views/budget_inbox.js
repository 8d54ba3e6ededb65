// Inbox cards for workflow runs their budget paused (`status: "paused"` with `budgetStop`):
// spend against the cap, *Raise* (a higher cap for the dimension that stopped the run, then
// resume: `task_start {kind: "workflow", continueRunId, budget}`) and *Stop* (ends the run for
// good: `POST /api/v1/runs/{id}/cancel`, asked twice).

import { api } from "../api.js";
import { budgetText } from "../budget.js";
import { errorBox, fill, h, short } from "../dom.js";
import { readRun, state } from "../state.js";

/** Runs waiting for a person because their budget is spent, oldest first. */
export function budgetPausedRuns() {
  return [...state.runs.values()]
    .filter((run) => run.status === "paused" && run.budgetStop)
    .sort((a, b) => a.updatedAt - b.updatedAt);
}

/** The raised cap offered first: twice what the run used, in the dimension's own unit. */
function suggestedCap(stop) {
  const raised = Math.max(stop.cap, stop.used) * 2;
  return stop.dimension === "maxCostUsd" ? Number(raised.toFixed(4)) : Math.ceil(raised);
}

export function runBudgetCard(run) {
  const stop = run.budgetStop;
  const result = h("div.result", { "aria-live": "polite" });
  const cap = h("input.raise-cap", {
    type: "number",
    min: 0,
    step: stop.dimension === "maxCostUsd" ? "0.01" : "1",
    value: suggestedCap(stop),
    "aria-label": `new budget.${stop.dimension}`,
  });
  const raise = h("button.raise", { type: "button" }, "Raise and resume");
  const end = h("button.stop.danger", { type: "button" }, "Stop");
  const buttons = [raise, end];
  let armed = null;

  async function act(doing, call, done) {
    for (const b of buttons) b.disabled = true;
    fill(result, `${doing}…`);
    try {
      fill(result, h("span.ok", null, done(await call())));
      await readRun(run.runId);
    } catch (err) {
      fill(result, errorBox(err));
      for (const b of buttons) b.disabled = false;
    }
  }
  raise.addEventListener("click", () => {
    const value = Number(cap.value);
    const budget = { ...run.budget, [stop.dimension]: value };
    act(
      "resuming",
      async () => {
        const reply = await api.tool("task_start", { kind: "workflow", continueRunId: run.runId, task: "continue", budget });
        if (reply.isError) throw new Error(reply.text);
        return JSON.parse(reply.text);
      },
      (started) => `resumed with budget.${stop.dimension} ${value} as task ${short(started.taskId)}`,
    );
  });
  end.addEventListener("click", () => {
    if (!armed) {
      end.textContent = "Really stop the run?";
      armed = setTimeout(() => {
        armed = null;
        end.textContent = "Stop";
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    end.textContent = "Stop";
    act("stopping", () => api.cancelRun(run.runId), () => "the run was stopped for good");
  });

  return h(
    "article.question.budget-run",
    { "data-run": run.runId },
    h(
      "header",
      null,
      h("strong", null, `budget.${stop.dimension}`),
      " spent by run ",
      h("a.mono", { href: `#/runs/${encodeURIComponent(run.runId)}` }, short(run.runId)),
      ` of ${run.workflowName ?? run.workflowId}`,
    ),
    h("p.budget-line", null, budgetText(run.budget, run.spent, stop)),
    h("div.buttons", null, h("label", null, `new budget.${stop.dimension} `, cap), raise, end),
    result,
  );
}
