// Building DOM and formatting numbers. Text from the hub (prompts, answers, log lines, tool
// titles) always goes in as text nodes, never as markup.

/** An element: h("div.card", {title: "x", onclick: f}, child, "text", [more]). */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "text") el.textContent = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Sets text only when it changed (cheap on hot paths). */
export function setText(el, text) {
  const value = String(text ?? "");
  if (el.textContent !== value) el.textContent = value;
}

/** A <details> whose content is built only when opened (prompts and answers stay private). */
export function collapsed(label, build, open = false) {
  const body = h("div.details-body");
  const el = h("details", { open }, h("summary", null, label), body);
  let built = false;
  const render = () => {
    if (el.open && !built) {
      built = true;
      fill(body, build());
    }
  };
  el.addEventListener("toggle", render);
  render();
  return el;
}

export function badge(status) {
  return h(`span.badge.s-${status}`, { text: status });
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

export function short(id) {
  return String(id ?? "").slice(0, 8);
}

export function tokens(n) {
  if (!n) return "0";
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1000).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(2)}M`;
}

export function usageText(u) {
  if (!u) return "—";
  const cache = (u.cacheRead || 0) + (u.cacheWrite || 0);
  return `${tokens(u.input)} in · ${tokens(u.output)} out · ${tokens(cache)} cache`;
}

export function cost(c) {
  if (!c) return "$0";
  return c < 0.01 ? `$${c.toFixed(4)}` : `$${c.toFixed(2)}`;
}

export function bytes(n) {
  if (n === undefined || n === null) return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(0)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export function duration(ms) {
  if (ms === undefined || ms === null || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const hours = Math.floor(m / 60);
  return `${hours} h ${m % 60} min`;
}

export function ago(at) {
  if (!at) return "—";
  return `${duration(Date.now() - at)} ago`;
}

export function clock(at) {
  if (!at) return "";
  const d = new Date(at);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

/** A span that shows the time since `since` (or the fixed `took`) and is kept current by tick(). */
export function elapsed(since, took) {
  const el = h("span.elapsed");
  setElapsed(el, since, took);
  return el;
}

export function setElapsed(el, since, took) {
  if (took !== undefined && took !== null) {
    delete el.dataset.since;
    setText(el, duration(took));
  } else if (since) {
    el.dataset.since = since;
    setText(el, duration(Date.now() - since));
  } else {
    setText(el, "—");
  }
}

/** Refreshes every running clock on the page (called once a second). */
export function tick(root) {
  for (const el of root.querySelectorAll("[data-since]")) {
    setText(el, duration(Date.now() - Number(el.dataset.since)));
  }
  for (const el of root.querySelectorAll("[data-until]")) {
    const left = Number(el.dataset.until) - Date.now();
    setText(el, left > 0 ? `in ${duration(left)}` : "now");
  }
}

/** A message line for an error the API returned (it names the problem and the fix). */
export function errorBox(err) {
  return h("div.error", { role: "alert" }, String(err?.message ?? err));
}

export function empty(text) {
  return h("p.empty", null, text);
}

/** Copies text, with a fallback for browsers that refuse the clipboard API. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea.offscreen");
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

export function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
