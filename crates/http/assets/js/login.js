// The page `/login` answers once a one-time link was used: it keeps the session's key (in the
// page, never in an address) in this tab, then opens the panel. Opening it from this page,
// which is the hub's own, also makes the browser send the session's `SameSite=Strict` cookie,
// which it would not on a page reached from a file or another site.

import { keepSession } from "./api.js";

const meta = document.querySelector('meta[name="orchestra-session"]');
if (meta?.content) {
  keepSession(meta.content);
  meta.remove();
}
location.replace("/");
