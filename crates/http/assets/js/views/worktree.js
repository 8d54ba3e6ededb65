// A task's git worktree on its page: branch, base, files, +/−, state (all from the task's
// record), its diff (the `worktree.diff` op's answer: the files and the unified patch, shown
// as text) and Merge and Discard (the `worktree.merge` / `worktree.discard` ops). The ops go
// through the same door as every client's: `task_start` with `kind: "op"`, then `task_await`.
// The page computes nothing: each patch line gets a class by its first characters, for colour.

import { ApiError, api } from "../api.js";
import { badge, empty, errorBox, fill, h, short } from "../dom.js";
import { landTask, touch } from "../state.js";

/** How long one `task_await` call waits (the hub caps it lower if it must). */
const AWAIT_MS = 20000;

/** Runs a `worktree.*` op on `taskId`'s worktree and answers with its parsed result. */
async function worktreeOp(op, taskId) {
  const started = await api.tool("task_start", { kind: "op", op, worktree: { taskId } });
  if (started?.isError) throw new ApiError(400, "bad_request", started.text);
  const opId = JSON.parse(started.text).taskId;
  for (;;) {
    const reply = await api.tool("task_await", { taskId: opId, timeoutMs: AWAIT_MS });
    if (reply?.isError) throw new ApiError(400, "bad_request", reply.text);
    const record = JSON.parse(reply.text);
    if (record.status === "running") continue;
    if (record.status !== "succeeded") throw new ApiError(409, "conflict", record.error ?? `${op} ended ${record.status}`);
    return JSON.parse(record.responseText || "{}");
  }
}

/** The class of one patch line: a file header, a hunk header, an added or removed line. */
function lineClass(line) {
  if (line.startsWith("diff --git ")) return "d-file";
  if (line.startsWith("+++ ") || line.startsWith("--- ")) return "d-meta";
  if (line.startsWith("@@")) return "d-hunk";
  if (line.startsWith("+")) return "d-add";
  if (line.startsWith("-")) return "d-del";
  return "d-ctx";
}

function diffView(diff) {
  const files = diff.files ?? [];
  const count = (n) => (n === null || n === undefined ? "binary" : String(n));
  return [
    files.length
      ? h(
          "table.wt-files",
          null,
          h("thead", null, h("tr", null, h("th", null, "File"), h("th.num", null, "+"), h("th.num", null, "−"))),
          h(
            "tbody",
            null,
            files.map((f) => h("tr", { "data-path": f.path }, h("td.mono", null, f.path), h("td.num.d-add", null, count(f.insertions)), h("td.num.d-del", null, count(f.deletions)))),
          ),
        )
      : empty("The branch changes no file."),
    diff.patch
      ? h(
          "pre.diff",
          { "aria-label": "diff" },
          diff.patch.split("\n").map((line) => h(`span.${lineClass(line)}`, null, `${line}\n`)),
        )
      : null,
    diff.truncated ? h("p.dim", null, "The diff is cut at 200 000 characters; `git diff` shows all of it.") : null,
  ];
}

/**
 * The worktree section of task `taskId`'s page. `update(task)` repaints it from the task's
 * record; the diff is asked for again only when the branch's head or state changed.
 */
export function worktreeSection(taskId) {
  const facts = h("dl.facts.wt-facts");
  const outcome = h("div.wt-outcome", { "aria-live": "polite" });
  const merge = h("button.wt-merge", { type: "button" }, "Merge");
  const discard = h("button.danger.wt-discard", { type: "button" }, "Discard");
  const diffBox = h("div.wt-diff");
  const el = h("section.worktree", { hidden: true }, h("h2", null, "Worktree"), facts, outcome, h("div.buttons", null, merge, discard), diffBox);
  let task = null;
  let diffKey = null;
  let busy = false;
  let armed = null;

  const fact = (label, value) => [h("dt", null, label), h("dd", null, value ?? "—")];

  function paint(next) {
    task = next ?? task;
    const wt = task?.worktree;
    el.hidden = !wt;
    if (!wt) return;
    el.dataset.state = wt.state;
    fill(
      facts,
      fact("Branch", h("span.mono", null, wt.branch)),
      fact("Base", h("span.mono", null, `${wt.baseRef} @ ${short(wt.baseSha)}`)),
      fact("Changes", `${wt.files} file(s), +${wt.insertions} −${wt.deletions}`),
      fact("State", badge(wt.state)),
      fact("Path", h("span.mono", null, wt.path)),
      wt.taskId !== task.id ? fact("Owner", h("a.mono", { href: `#/tasks/${encodeURIComponent(wt.taskId)}` }, short(wt.taskId))) : null,
      wt.copied?.length ? fact("Copied in", h("span.mono", null, wt.copied.join(", "))) : null,
      wt.setup ? fact("Setup", `${wt.setup.command.join(" ")} → exit ${wt.setup.exitCode ?? "?"}`) : null,
      wt.conflicts?.length ? fact("Conflicts", h("span.mono", null, wt.conflicts.join(", "))) : null,
    );
    const open = (wt.state === "open" || wt.state === "conflict") && task.status !== "running";
    merge.hidden = discard.hidden = !open;
    merge.disabled = discard.disabled = busy;
    const key = `${wt.state}:${wt.headSha ?? ""}:${task.status}`;
    if (key === diffKey) return;
    diffKey = key;
    if (!open) {
      fill(diffBox, task.status === "running" ? empty("The diff shows once the task has ended.") : null);
      return;
    }
    loadDiff();
  }

  async function loadDiff() {
    const mine = diffKey;
    fill(diffBox, h("p.dim", null, "Loading the diff…"));
    try {
      const diff = await worktreeOp("worktree.diff", taskId);
      if (mine === diffKey) fill(diffBox, h("h3", null, "Diff"), diffView(diff));
    } catch (err) {
      if (mine === diffKey) fill(diffBox, errorBox(err));
    }
  }

  /** The task's record again from the hub: the op changed its worktree. */
  async function reload() {
    try {
      const read = await api.task(taskId);
      if (read?.id) {
        const record = landTask(read);
        touch(`task:${record.id}`);
        paint(record);
      }
    } catch (err) {
      fill(outcome, errorBox(err));
    }
  }

  async function act(op, button, label) {
    if (busy) return;
    busy = true;
    merge.disabled = discard.disabled = true;
    fill(outcome, h("p.dim", null, `${label}…`));
    try {
      const answer = await worktreeOp(op, taskId);
      fill(outcome, h(answer.state === "conflict" ? "p.error-text" : "p.ok", null, answer.message ?? answer.state));
    } catch (err) {
      fill(outcome, errorBox(err));
    } finally {
      busy = false;
      button.disabled = false;
      await reload();
    }
  }

  merge.addEventListener("click", () => act("worktree.merge", merge, "Merging"));
  discard.addEventListener("click", () => {
    // Discard throws the work away: the first click arms it, the second does it.
    if (!armed) {
      discard.textContent = "Really discard?";
      armed = setTimeout(() => {
        armed = null;
        discard.textContent = "Discard";
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    discard.textContent = "Discard";
    act("worktree.discard", discard, "Discarding");
  });

  return { el, update: paint };
}
