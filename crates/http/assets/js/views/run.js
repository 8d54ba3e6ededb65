// #/runs/<id>: one workflow run — its steps as a waterfall (each step's bar from its start to
// its end on the run's time axis), each step's task, duration, tokens and carry size, the
// run's totals, and Pause / Resume / Cancel.

import { api } from "../api.js";
import { budgetText } from "../budget.js";
import { badge, clock, cost, duration, errorBox, fill, h, short, tokens, usageText } from "../dom.js";
import { readRun, state } from "../state.js";
import { stepCount } from "./runs.js";

export function render(container, runId) {
  const title = h("h1", null, "Run ", h("span.mono", null, short(runId)));
  const status = h("span");
  const buttons = {
    pause: h("button", { type: "button", hidden: true }, "Pause"),
    resume: h("button", { type: "button", hidden: true }, "Resume"),
    cancel: h("button.danger", { type: "button", hidden: true }, "Cancel run"),
  };
  const outcome = h("div.outcome", { "aria-live": "polite" });
  const totals = h("dl.facts");
  const waterfall = h("div.waterfall", { role: "table", "aria-label": "steps" });
  container.append(
    h("div.titlebar", null, h("a.back", { href: "#/runs" }, "← Runs"), title, status, buttons.pause, buttons.resume, buttons.cancel),
    outcome,
    totals,
    h("h2", null, "Steps"),
    waterfall,
  );

  let armedCancel = null;

  async function act(name, call, done) {
    for (const b of Object.values(buttons)) b.disabled = true;
    fill(outcome, h("p", null, `${name}…`));
    try {
      const answer = await call();
      fill(outcome, h("p.ok", null, done(answer)));
      await readRun(runId);
    } catch (err) {
      fill(outcome, errorBox(err));
    } finally {
      for (const b of Object.values(buttons)) b.disabled = false;
    }
  }
  buttons.pause.addEventListener("click", () =>
    act("Pausing", () => api.pauseRun(runId), (run) => `Paused: ${run.reason ?? "the running step will run again on resume"}.`),
  );
  buttons.resume.addEventListener("click", () =>
    act("Resuming", () => api.resumeRun(runId), (started) => `Resumed as task ${short(started.taskId)}.`),
  );
  buttons.cancel.addEventListener("click", () => {
    if (!armedCancel) {
      buttons.cancel.textContent = "Really end the run?";
      armedCancel = setTimeout(() => {
        armedCancel = null;
        buttons.cancel.textContent = "Cancel run";
      }, 4000);
      return;
    }
    clearTimeout(armedCancel);
    armedCancel = null;
    buttons.cancel.textContent = "Cancel run";
    act("Ending the run", () => api.cancelRun(runId), () => "The run was ended for good; it cannot be resumed.");
  });

  function paint() {
    const run = state.runs.get(runId);
    if (!run) return;
    fill(status, badge(run.status));
    buttons.pause.hidden = run.status !== "running";
    buttons.resume.hidden = run.status !== "paused";
    buttons.cancel.hidden = run.status !== "running" && run.status !== "paused";
    const u = run.usage ?? {};
    fill(
      totals,
      [h("dt", null, "Workflow"), h("dd", null, `${run.workflowName} (${run.workflowId})`)],
      [h("dt", null, "Step"), h("dd", null, `${Math.min(run.currentStepIndex, stepCount(run))} of ${stepCount(run)} done`)],
      [h("dt", null, "Started"), h("dd", null, clock(run.startedAt))],
      [h("dt", null, "Working time"), h("dd", null, duration(run.activeMs))],
      [h("dt", null, "Tokens"), h("dd", null, usageText(u))],
      [h("dt", null, "Cost"), h("dd", null, cost(u.cost))],
      run.budget ? [h("dt", null, "Budget"), h("dd.budget", null, budgetText(run.budget, run.spent, run.budgetStop))] : null,
      [h("dt", null, "Carry"), h("dd", null, `${(run.carry ?? "").length} chars`)],
      [h("dt", null, "Task"), h("dd", null, h("a.mono", { href: `#/tasks/${encodeURIComponent(run.jobId)}` }, short(run.jobId)))],
      run.reason ? [h("dt", null, "Why"), h("dd", null, run.reason)] : null,
    );
    paintWaterfall(run);
  }

  function paintWaterfall(run) {
    const steps = run.steps ?? [];
    const start = Math.min(...steps.map((s) => s.startedAt ?? Infinity), run.startedAt);
    const now = Date.now();
    const end = Math.max(start + 1, ...steps.map((s) => s.finishedAt ?? (s.startedAt ? now : 0)));
    const span = end - start;
    fill(
      waterfall,
      h("div.wf-head", { role: "row" }, ["Step", "Worker", "Task", "Timeline", "Took", "Tokens in/out", "Carry"].map((t) => h("span", { role: "columnheader" }, t))),
      steps.map((step, index) => {
        const bar = h(`span.bar.s-${step.status}`);
        if (step.startedAt) {
          const from = ((step.startedAt - start) / span) * 100;
          const to = (((step.finishedAt ?? now) - start) / span) * 100;
          bar.style.left = `${from}%`;
          bar.style.width = `${Math.max(0.5, to - from)}%`;
        } else {
          bar.hidden = true;
        }
        const took = step.durationMs ?? (step.startedAt && step.status === "running" ? now - step.startedAt : null);
        return h(
          "div.wf-row",
          { role: "row", "data-nav": true, "data-step": step.id, "data-index": index, "data-status": step.status, "data-href": step.taskId ? `#/tasks/${encodeURIComponent(step.taskId)}` : null },
          h("span.step", { title: step.error ?? step.warning ?? "" }, step.group ? `${step.group} / ` : "", h("strong", null, step.id), " ", h("span.dim", null, step.title), " ", badge(step.status)),
          h("span", null, step.workerId),
          h("span.mono", null, step.taskId ? h("a", { href: `#/tasks/${encodeURIComponent(step.taskId)}` }, short(step.taskId)) : "—"),
          h("span.track", null, bar),
          h("span.num", null, took === null ? "—" : duration(took)),
          h("span.num", null, `${tokens(step.usage?.input)} / ${tokens(step.usage?.output)}`),
          h("span.num", null, step.carryChars === undefined || step.carryChars === null ? "—" : `${step.carryChars} chars`),
        );
      }),
    );
  }

  let timer = null;
  async function start() {
    if (!state.runs.has(runId)) {
      try {
        await readRun(runId);
      } catch (err) {
        fill(container, h("a.back", { href: "#/runs" }, "← Runs"), errorBox(err));
        return;
      }
    }
    paint();
    // Running steps grow on the time axis.
    timer = setInterval(() => {
      if (state.runs.get(runId)?.status === "running") paintWaterfall(state.runs.get(runId));
    }, 1000);
  }
  start();

  return {
    title: `Run ${short(runId)}`,
    update(changes) {
      if (changes.has(`run:${runId}`) || changes.has("all")) paint();
    },
    destroy() {
      clearInterval(timer);
    },
  };
}
