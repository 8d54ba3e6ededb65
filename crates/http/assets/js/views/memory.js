// #/memory and #/memory/<id>: search the project's memory (scope and kind filters), a record
// with its links and the task that wrote it, retract or supersede. New records
// (`orchestra.memory.written`) refresh the search and the record on screen. When the hub has
// no memory (`memory.enabled` is false, or an older hub), the view says memory is not set up.

import { api, isMissingRoute } from "../api.js";
import { ago, badge, collapsed, empty, errorBox, fill, h, short } from "../dom.js";

const KINDS = ["decision", "convention", "fact", "bug", "fix", "todo", "summary", "artifact", "preference", "error", "observation"];

function notSetUp(err) {
  const why =
    err.kind === "memory_disabled"
      ? err.message
      : "This hub does not serve the memory API (/api/v1/memory/…). Once it does, records written by workflows, tools and people appear here.";
  return h("div.note", null, h("p", null, h("strong", null, "Memory is not set up on this hub. ")), h("p", null, why));
}

const noMemory = (err) => isMissingRoute(err) || err.kind === "memory_disabled";

export function render(container, recordId) {
  return recordId ? recordPage(container, recordId) : searchPage(container);
}

function searchPage(container) {
  const query = h("input.filter", { type: "search", placeholder: "words, identifiers, file paths  ( / )", "data-search": true, "aria-label": "search memory" });
  const scope = h("select", { "aria-label": "scope" }, h("option", { value: "" }, "project + global"), h("option", { value: "project" }, "project"), h("option", { value: "global" }, "global"));
  const kind = h("select", { "aria-label": "kind" }, h("option", { value: "" }, "any kind"), KINDS.map((k) => h("option", { value: k }, k)));
  const superseded = h("input", { type: "checkbox" });
  const retracted = h("input", { type: "checkbox" });
  const results = h("div.results");
  const form = h(
    "form.toolbar",
    { onsubmit: (e) => (e.preventDefault(), search()) },
    query,
    scope,
    kind,
    h("label", null, superseded, " superseded"),
    h("label", null, retracted, " retracted"),
    h("button", { type: "submit" }, "Search"),
  );
  container.append(h("h1", null, "Memory"), form, results);

  let serial = 0;
  async function search() {
    const mine = ++serial;
    fill(results, h("p.dim", null, "Searching…"));
    const params = {
      query: query.value,
      scopes: scope.value ? [scope.value] : [],
      kinds: kind.value ? [kind.value] : [],
      includeSuperseded: superseded.checked,
      includeRetracted: retracted.checked,
      limit: 50,
      budgetTokens: 20000,
      detail: "summary",
    };
    try {
      const page = await api.memorySearch(params);
      if (mine !== serial) return;
      const items = page?.items ?? [];
      fill(
        results,
        items.length
          ? h(
              "ul.records",
              null,
              items.map((hit) => {
                const href = `#/memory/${encodeURIComponent(hit.id)}`;
                return h(
                  "li",
                  { "data-nav": true, "data-href": href },
                  h("a", { href }, hit.title || hit.key || hit.id),
                  " ",
                  badge(hit.kind),
                  " ",
                  hit.status !== "active" ? badge(hit.status) : null,
                  h("span.dim", null, ` ${hit.scope} · ${ago(hit.updatedAt)}`),
                  hit.snippet ? h("div.snippet", null, hit.snippet) : null,
                );
              }),
            )
          : empty("No records match."),
        page?.nextCursor ? h("p.dim", null, "More records match; narrow the search.") : null,
      );
    } catch (err) {
      if (mine !== serial) return;
      fill(results, noMemory(err) ? notSetUp(err) : errorBox(err));
    }
  }
  for (const el of [scope, kind, superseded, retracted]) el.addEventListener("change", search);
  search();
  // A burst of writes (a memory worker's turn) refreshes the results once.
  let pending = null;
  return {
    title: "Memory",
    update(changes) {
      if (!changes.has("memory") || pending) return;
      pending = setTimeout(() => ((pending = null), search()), 250);
    },
    destroy() {
      clearTimeout(pending);
    },
  };
}

function recordPage(container, id) {
  const body = h("div.record");
  // Kept across reloads: the outcome of Retract or Supersede stays on screen.
  const outcome = h("div.outcome", { "aria-live": "polite" });
  container.append(h("div.titlebar", null, h("a.back", { href: "#/memory" }, "← Memory"), h("h1", null, "Record ", h("span.mono", null, id))), body);

  async function load() {
    let data;
    try {
      data = await api.memoryRecord(id);
    } catch (err) {
      fill(body, noMemory(err) ? notSetUp(err) : errorBox(err));
      return;
    }
    const record = data?.record;
    if (!record) {
      fill(body, errorBox(`no memory record ${id}; search for it on the Memory page`));
      return;
    }
    const links = data.links ?? [];
    const task = data.task;
    const p = record.provenance ?? {};
    const retract = h("button.danger", { type: "button", hidden: record.status !== "active" }, "Retract");
    retract.addEventListener("click", async () => {
      retract.disabled = true;
      try {
        await api.memoryForget(id, "retract");
        fill(outcome, h("p.ok", null, "Retracted: hidden from search and from workers' memory block."));
        load();
      } catch (err) {
        fill(outcome, errorBox(err));
        retract.disabled = false;
      }
    });
    const newTitle = h("input", { type: "text", value: record.title ?? "", "aria-label": "new title" });
    const newBody = h("textarea", { rows: 6, "aria-label": "new body" });
    newBody.value = record.body ?? "";
    const supersede = h(
      "form.supersede",
      {
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const result = await api.memorySupersede(id, { title: newTitle.value, body: newBody.value, kind: record.kind });
            const next = result?.record?.id ?? result?.id;
            fill(outcome, h("p.ok", null, "Superseded", next ? [" by ", h("a", { href: `#/memory/${encodeURIComponent(next)}` }, next)] : null, "."));
            load();
          } catch (err) {
            fill(outcome, errorBox(err));
          }
        },
      },
      h("label", null, "Title ", newTitle),
      h("label", null, "Body ", newBody),
      h("button", { type: "submit" }, "Supersede with this"),
    );
    fill(
      body,
      outcome,
      h(
        "dl.facts",
        null,
        [h("dt", null, "Title"), h("dd", null, record.title || "—")],
        [h("dt", null, "Kind"), h("dd", null, badge(record.kind))],
        [h("dt", null, "Status"), h("dd", null, badge(record.status))],
        [h("dt", null, "Scope"), h("dd", null, record.scope)],
        record.key ? [h("dt", null, "Key"), h("dd.mono", null, record.key)] : null,
        [h("dt", null, "Updated"), h("dd", null, ago(record.updatedAt))],
        record.tags?.length ? [h("dt", null, "Tags"), h("dd", null, record.tags.join(", "))] : null,
        record.entities?.files?.length ? [h("dt", null, "Files"), h("dd.mono", null, record.entities.files.join(", "))] : null,
        record.entities?.symbols?.length ? [h("dt", null, "Symbols"), h("dd.mono", null, record.entities.symbols.join(", "))] : null,
        [h("dt", null, "Written by"), h("dd.written-by", null, writtenBy(p, task))],
        p.runId ? [h("dt", null, "Workflow run"), h("dd", null, h("a.mono", { href: `#/runs/${encodeURIComponent(p.runId)}` }, short(p.runId)), p.step ? ` step ${p.step}` : "")] : null,
        record.supersedes ? [h("dt", null, "Supersedes"), h("dd", null, h("a.mono", { href: `#/memory/${encodeURIComponent(record.supersedes)}` }, record.supersedes))] : null,
        record.supersededBy ? [h("dt", null, "Superseded by"), h("dd", null, h("a.mono", { href: `#/memory/${encodeURIComponent(record.supersededBy)}` }, record.supersededBy))] : null,
      ),
      h("h2", null, "Body"),
      h("pre.text", null, record.body ?? ""),
      h("h2", null, "Links"),
      links.length
        ? h(
            "ul.links",
            null,
            links.map((l) => {
              const other = l.from === id ? l.to : l.from;
              return h("li", null, l.from === id ? `${l.relation} → ` : `← ${l.relation} `, h("a.mono", { href: `#/memory/${encodeURIComponent(other)}` }, other));
            }),
          )
        : empty("No links."),
      h("div.buttons", null, retract),
      record.status === "active" ? collapsed("Supersede (write the corrected record)", () => supersede) : null,
    );
  }
  load();
  return {
    title: `Memory ${id}`,
    update(changes) {
      if (changes.has(`memory:${id}`)) load();
    },
  };
}

/** The task that wrote a record (from its provenance), with its outcome when the hub knows it. */
function writtenBy(p, task) {
  const taskId = task?.id ?? p.taskId;
  if (!taskId) return [p.producer ?? "—", p.worker ? ` on ${p.worker}` : ""];
  return [
    "task ",
    h("a.mono", { href: `#/tasks/${encodeURIComponent(taskId)}` }, short(taskId)),
    task ? [" ", badge(task.status), ` on ${task.workerId}`, task.message ? h("div.dim", null, task.message) : null] : p.worker ? ` on ${p.worker}` : "",
    p.producer ? ` (${p.producer})` : "",
  ];
}
