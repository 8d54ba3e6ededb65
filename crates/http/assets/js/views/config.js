// #/config: the configuration the hub runs with (read-only) — the files it read, which file set
// each key, the profiles with the model each would get and why, workflows and their limits.

import { api } from "../api.js";
import { collapsed, empty, errorBox, fill, h } from "../dom.js";

const limitText = (l) =>
  l ? `${l.maxSteps} steps · task ${l.maxTaskChars} chars · carry ${l.maxCarryChars} chars · ${l.perStepTimeoutMs} ms per step · ${l.maxRunMs} ms per run · ${l.maxRunTokens} tokens` : "—";

export function render(container) {
  const body = h("div.config", null, h("p.dim", null, "Loading…"));
  container.append(h("h1", null, "Configuration"), h("p.dim", null, "Read-only. Change orchestrator.json and restart the hub (`orchestra stop`)."), body);
  api
    .config()
    .then((c) => {
      fill(
        body,
        h("h2", null, "Files"),
        h(
          "ol.files",
          null,
          h("li", null, "built-in defaults"),
          c.files.map((f) => h("li", null, h("span.mono", null, f.path), ` (${f.origin})`)),
        ),
        h("h2", null, "Profiles"),
        c.providerPin ? h("p.note", null, `Every task is pinned to provider ${c.providerPin} (--fake).`) : null,
        c.modelsNote ? h("p.note", null, c.modelsNote) : null,
        h(
          "table.profiles",
          null,
          h("thead", null, h("tr", null, ["Profile", "Model", "Would run on", "Why", "Access", "Permission questions", "Isolation"].map((t) => h("th", null, t)))),
          h(
            "tbody",
            null,
            c.profiles.map((p) =>
              h(
                "tr",
                { "data-nav": true },
                h("td", null, h("strong", null, p.id), h("div.dim", null, p.name)),
                h("td.mono", null, p.modelRef),
                h("td.mono", null, p.model ?? "—"),
                h("td.dim", null, p.modelReason ?? ""),
                h("td", null, p.readOnly ? "read-only" : "can edit", h("div.dim", null, Object.entries(p.permission).map(([k, v]) => `${k}: ${v}`).join(", "))),
                h("td", null, p.onPermissionAsk),
                h("td", null, p.isolation),
              ),
            ),
          ),
        ),
        h("h2", null, "Workflows"),
        h("p.dim", null, `Caps (security.workflows): ${limitText(c.workflowCaps)}`),
        h(
          "table.workflows",
          null,
          h("thead", null, h("tr", null, ["Workflow", "Steps", "Limits", "Source"].map((t) => h("th", null, t)))),
          h(
            "tbody",
            null,
            c.workflows.map((w) =>
              h(
                "tr",
                { "data-nav": true },
                h("td", null, h("strong", null, w.id), h("div.dim", null, w.name)),
                h("td", null, w.steps.map((s) => (s.parallel?.length ? `[${s.parallel.map((m) => `${m.id} (${m.workerId})`).join(" ‖ ")}]` : `${s.id} (${s.workerId})`)).join(" → ")),
                h("td", null, w.problem ? h("span.error-text", null, w.problem) : limitText(w.limits)),
                h("td.dim", null, w.source),
              ),
            ),
          ),
        ),
        h("h2", null, "Set in files"),
        c.keys.length
          ? h(
              "table.keys",
              null,
              h("thead", null, h("tr", null, ["Key", "Value", "Set by"].map((t) => h("th", null, t)))),
              h(
                "tbody",
                null,
                c.keys.map((k) => h("tr", { "data-nav": true }, h("td.mono", null, k.key), h("td.mono", null, JSON.stringify(k.value)), h("td.dim", null, `${k.file} (${k.origin})`))),
              ),
            )
          : empty("No file sets anything: every setting is a built-in default."),
        h("h2", null, "Everything in force"),
        collapsed("Show the effective settings (defaults applied)", () => h("pre.text", null, JSON.stringify(c.settings, null, 2))),
      );
    })
    .catch((err) => fill(body, errorBox(err)));
  return { title: "Config" };
}
