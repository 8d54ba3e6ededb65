// #/runs: workflow runs, newest first, with their progress and totals.

import { badge, clock, cost, duration, empty, fill, h, short, usageText } from "../dom.js";
import { state } from "../state.js";

/** Top-level steps of the run's definition (a parallel group counts once). */
export function stepCount(run) {
  return run.definition?.steps?.length ?? run.steps?.length ?? 0;
}

export function render(container) {
  const tbody = h("tbody");
  const none = h("div");
  container.append(
    h("h1", null, "Workflow runs"),
    none,
    h(
      "table.runs",
      null,
      h("thead", null, h("tr", null, ["Run", "Workflow", "Status", "Step", "Started", "Working time", "Tokens", "Cost", "Note"].map((t) => h("th", null, t)))),
      tbody,
    ),
  );

  function paint() {
    const runs = [...state.runs.values()].sort((a, b) => b.startedAt - a.startedAt);
    fill(none, runs.length ? null : empty("No workflow runs yet. Start one with task_start({kind: \"workflow\", workflowId, task})."));
    fill(
      tbody,
      runs.map((run) => {
        const href = `#/runs/${encodeURIComponent(run.runId)}`;
        return h(
          "tr",
          { "data-nav": true, "data-href": href, "data-run": run.runId },
          h("td.mono", null, h("a", { href }, short(run.runId))),
          h("td", null, run.workflowName ?? run.workflowId),
          h("td", null, badge(run.status)),
          h("td.num", null, `${Math.min(run.currentStepIndex, stepCount(run))}/${stepCount(run)}`),
          h("td", null, clock(run.startedAt)),
          h("td.num", null, duration(run.activeMs)),
          h("td", null, usageText(run.usage)),
          h("td.num", null, cost(run.usage?.cost)),
          h("td.dim", null, run.reason ?? ""),
        );
      }),
    );
  }
  paint();

  return {
    title: "Runs",
    update(changes) {
      if (changes.has("runs") || changes.has("all")) paint();
    },
  };
}
