// Spend against the cap of a task's or a run's budget (`budget`, `spent`, `budgetStop` on the
// record), as one line of text; null when there is no budget.
import { cost, duration, tokens } from "./dom.js";

export function budgetText(budget, spent, stop) {
  if (!budget) return null;
  const s = spent ?? {};
  const parts = [];
  if (budget.maxTokens) parts.push(`tokens ${tokens(s.tokens)} / ${tokens(budget.maxTokens)}`);
  if (budget.maxCostUsd) parts.push(`cost ${cost(s.costUsd)} / ${cost(budget.maxCostUsd)}`);
  if (budget.maxTurns) parts.push(`model steps ${s.turns ?? 0} / ${budget.maxTurns}`);
  if (budget.maxMs) parts.push(`time ${duration(s.ms ?? 0)} / ${duration(budget.maxMs)}`);
  const text = parts.join(" · ");
  return stop ? `${text} — stopped at budget.${stop.dimension}` : text;
}
