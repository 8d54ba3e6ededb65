// #/inbox: permission questions from any worker whose profile says `onPermissionAsk: "ask"`,
// answered once / always / reject. Unanswered questions are rejected by the hub when they
// expire (`tasks.permissionAskTimeoutMs`); the countdown shows when. Below them: workflow runs
// their budget paused (Raise / Stop, `budget_inbox.js`) and failed notification deliveries.

import { api } from "../api.js";
import { clock, empty, errorBox, fill, h, short } from "../dom.js";
import { state } from "../state.js";
import { budgetPausedRuns, runBudgetCard } from "./budget_inbox.js";
import { failedDeliveries } from "./deliveries.js";

const REPLIES = [
  ["once", "Allow once"],
  ["always", "Always allow"],
  ["reject", "Reject"],
];

/** One question with its three answers; used by the inbox and the task page. */
export function questionCard(question) {
  const result = h("div.result", { "aria-live": "polite" });
  const buttons = REPLIES.map(([reply, label]) =>
    h(`button.reply-${reply}`, { type: "button", "data-reply": reply, onclick: () => answer(reply) }, label),
  );
  async function answer(reply) {
    for (const b of buttons) b.disabled = true;
    fill(result, `sending ${reply}…`);
    try {
      await api.answer(question.requestId, reply);
      fill(result, h("span.ok", null, `answered ${reply}`));
    } catch (err) {
      fill(result, errorBox(err));
      for (const b of buttons) b.disabled = false;
    }
  }
  const until = question.expiresAt ? h("span.dim", { "data-until": question.expiresAt }) : null;
  const card = h(
    "article.question",
    { "data-nav": true, "data-request": question.requestId, "data-href": `#/tasks/${encodeURIComponent(question.jobId)}` },
    h(
      "header",
      null,
      h("strong", null, question.permission),
      " for worker ",
      h("strong", null, question.workerId),
      " · task ",
      h("a.mono", { href: `#/tasks/${encodeURIComponent(question.jobId)}` }, short(question.jobId)),
      " · asked ",
      clock(question.askedAt),
      until ? [" · rejected ", until, " unless answered"] : null,
    ),
    question.patterns?.length ? h("ul.patterns", null, question.patterns.map((p) => h("li.mono", null, p))) : null,
    h("div.buttons", null, buttons),
    result,
  );
  card.answer = answer;
  return card;
}

export function render(container) {
  const list = h("div.inbox");
  const runList = h("div.budget-runs");
  const deliveries = failedDeliveries();
  container.append(h("h1", null, "Needs input"), list, runList, deliveries);
  const cards = new Map();
  const runCards = new Map();

  function paintRuns() {
    const paused = budgetPausedRuns();
    const ids = new Set(paused.map((run) => run.runId));
    for (const [id, card] of runCards) {
      if (!ids.has(id)) {
        card.remove();
        runCards.delete(id);
      }
    }
    for (const run of paused) {
      if (!runCards.has(run.runId)) {
        const card = runBudgetCard(run);
        runCards.set(run.runId, card);
        runList.append(card);
      }
    }
  }

  function paint() {
    for (const [id, card] of cards) {
      if (!state.questions.has(id)) {
        card.remove();
        cards.delete(id);
      }
    }
    for (const question of state.questions.values()) {
      if (!cards.has(question.requestId)) {
        const card = questionCard(question);
        cards.set(question.requestId, card);
        list.append(card);
      }
    }
    list.querySelector(".empty")?.remove();
    paintRuns();
    if (!cards.size && !runCards.size) {
      list.append(empty("Nothing waits for you. Questions appear here when a worker whose profile sets onPermissionAsk to \"ask\" needs a permission, and runs when their budget is spent."));
    }
  }
  paint();

  const answerSelected = (reply) => (row) => {
    const card = row ?? list.querySelector(".question");
    card?.answer?.(reply);
  };
  return {
    title: "Inbox",
    keys: { o: answerSelected("once"), a: answerSelected("always"), r: answerSelected("reject") },
    update(changes) {
      if (changes.has("questions") || changes.has("runs") || changes.has("all")) paint();
    },
    destroy() {
      deliveries.stop();
    },
  };
}
