// Keyboard navigation: views by number, rows with j/k (or the arrows), Enter to open, u/Esc to
// go back, / to search; a view adds its own keys (x cancels a task, o/a/r answer a question).

const VIEWS = ["tasks", "inbox", "workers", "runs", "memory", "logs", "config"];

let viewKeys = {};

/** Keys of the view on screen: `{x: fn}`; replaced when the view changes. */
export function setViewKeys(keys) {
  viewKeys = keys ?? {};
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

function rows(main) {
  return [...main.querySelectorAll("[data-nav]")].filter((el) => el.offsetParent !== null);
}

export function selected(main) {
  return main.querySelector("[data-nav].selected");
}

function move(main, step) {
  const all = rows(main);
  if (!all.length) return;
  const current = selected(main);
  let index = all.indexOf(current);
  index = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, index + step));
  current?.classList.remove("selected");
  const next = all[index];
  next.classList.add("selected");
  next.scrollIntoView({ block: "nearest" });
  next.querySelector("a, button")?.focus({ preventScroll: true });
}

export function installKeys(main, help) {
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    const key = e.key;
    if (key === "?") {
      help.hidden = !help.hidden;
    } else if (/^[1-7]$/.test(key)) {
      location.hash = `#/${VIEWS[Number(key) - 1]}`;
    } else if (key === "j" || key === "ArrowDown") {
      move(main, 1);
    } else if (key === "k" || key === "ArrowUp") {
      move(main, -1);
    } else if (key === "Enter") {
      // A focused link or button does what it does on its own.
      if (e.target instanceof HTMLElement && /^(A|BUTTON|SUMMARY)$/.test(e.target.tagName)) return;
      const row = selected(main);
      const target = row?.dataset.href;
      if (!target) return;
      location.hash = target;
    } else if (key === "u" || key === "Escape") {
      if (!help.hidden) {
        help.hidden = true;
      } else {
        const parts = location.hash.split("/");
        if (parts.length > 2) location.hash = parts.slice(0, 2).join("/");
      }
    } else if (key === "/") {
      const search = main.querySelector("[data-search]");
      if (!search) return;
      search.focus();
    } else if (viewKeys[key]) {
      viewKeys[key](selected(main));
    } else {
      return;
    }
    e.preventDefault();
  });
}
