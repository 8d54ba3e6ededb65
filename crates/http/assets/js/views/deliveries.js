// Failed notification deliveries (`GET /api/v1/notify/deliveries?status=failed`): which of the
// user's `notify` targets did not get which event, and why. Shown in the inbox.

import { api, isMissingRoute } from "../api.js";
import { clock, errorBox, fill, h } from "../dom.js";

/** How often the list is read again while the inbox is open. */
const REFRESH_MS = 5000;

/** A section that lists failed deliveries and keeps itself current; `stop()` ends that. */
export function failedDeliveries() {
  const list = h("div.deliveries");
  const section = h("section.failed-deliveries", { hidden: true }, h("h2", null, "Notifications that failed"), list);
  let timer = null;

  async function refresh() {
    let rows;
    try {
      rows = await api.deliveries("failed");
    } catch (err) {
      if (isMissingRoute(err)) return;
      section.hidden = false;
      fill(list, errorBox(err));
      return;
    }
    section.hidden = rows.length === 0;
    fill(
      list,
      h(
        "table.deliveries",
        null,
        h("thead", null, h("tr", null, ["Event", "Target", "Tries", "Why", "At"].map((t) => h("th", null, t)))),
        h(
          "tbody",
          null,
          rows.map((row) =>
            h(
              "tr",
              { "data-delivery": row.id, "data-event": row.eventId },
              h("td.mono", null, row.eventType),
              h("td.mono", null, row.target),
              h("td.num", null, String(row.attempts)),
              h("td.why", null, row.lastError ?? ""),
              h("td", null, clock(row.createdAt)),
            ),
          ),
        ),
      ),
    );
  }
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
  section.stop = () => clearInterval(timer);
  section.refresh = refresh;
  return section;
}
