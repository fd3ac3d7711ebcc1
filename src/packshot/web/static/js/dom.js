// Small DOM helpers shared by every view: an element builder, the page's alert region,
// a polite status line, debounce and formatting.

/**
 * Build an element: h("button", {class: "btn", onclick: fn, "aria-label": "Close"}, "x").
 * Attributes starting with "on" become listeners; `false`/`null` attributes are skipped;
 * children may be strings, nodes, arrays or null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key.startsWith("aria-")) {
      el.setAttribute(key, String(value)); // aria-selected="false" must be written out
      continue;
    }
    if (value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "value") {
      el.value = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value; // properties such as checked, value (number), disabled
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function mountInto(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A page-unique id for label/aria wiring. */
export function nextId(prefix = "id") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// ---- the alert region (role="alert"): errors the user must see --------------------------------

const alertBox = () => document.getElementById("alert");

/** Show an error in the page's alert region. `error` may be an Error, an ApiError or a string. */
export function showError(error, { context } = {}) {
  const box = alertBox();
  const text = typeof error === "string" ? error : (error && error.message) || String(error);
  const message = context ? `${context}: ${text}` : text;
  console.warn("[packshot]", message);
  mountInto(
    box,
    h("span", { class: "alert-icon", "aria-hidden": "true" }, "!"),
    h("p", { class: "alert-text" }, message),
    h("button", { type: "button", class: "btn btn-quiet alert-close", "aria-label": "Dismiss error",
                  onclick: clearError }, "×"),
  );
  box.hidden = false;
  return message;
}

export function clearError() {
  const box = alertBox();
  if (!box) return;
  box.replaceChildren();
  box.hidden = true;
}

// ---- the status line (role="status"): polite, transient notices ----------------------------------

let statusTimer = null;
export function announce(text, ms = 3500) {
  const box = document.getElementById("status");
  if (!box) return;
  box.textContent = text;
  box.classList.add("visible");
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => box.classList.remove("visible"), ms);
}

// ---- misc -----------------------------------------------------------------------------------------

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  wrapped.flush = (...args) => {
    clearTimeout(timer);
    return fn(...args);
  };
  return wrapped;
}

export function formatDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** The headline score of a result: overall/total/score, else the mean of numeric scores. */
export function headlineScore(scores) {
  if (!scores || typeof scores !== "object") return null;
  for (const key of ["overall", "total", "score", "rank_score"]) {
    if (typeof scores[key] === "number") return scores[key];
  }
  const nums = Object.values(scores).filter((v) => typeof v === "number");
  return nums.length ? nums.reduce((a, b) => a + b, 0) / nums.length : null;
}

export function fmtScore(value) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(2) : "–";
}

/** A visually hidden spinner + text for busy buttons. */
export function setBusy(button, busy, busyText) {
  if (!button) return;
  if (busy) {
    if (button.dataset.busy !== "1") button._idleHtml = button.innerHTML;
    button.dataset.busy = "1";
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    if (busyText) button.textContent = busyText;
  } else {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    if (button.dataset.busy === "1" && button._idleHtml !== undefined) button.innerHTML = button._idleHtml;
    delete button.dataset.busy;
  }
}

// ---- icons: inline SVG (no icon font, no emoji font needed) --------------------------------------

const ICONS = {
  dice: '<rect x="3" y="3" width="18" height="18" rx="4"/><circle cx="8.5" cy="8.5" r="1.4" fill="currentColor" stroke="none"/>' +
    '<circle cx="15.5" cy="15.5" r="1.4" fill="currentColor" stroke="none"/><circle cx="12" cy="12" r="1.4" fill="currentColor" stroke="none"/>' +
    '<circle cx="15.5" cy="8.5" r="1.4" fill="currentColor" stroke="none"/><circle cx="8.5" cy="15.5" r="1.4" fill="currentColor" stroke="none"/>',
  upload: '<path d="M12 16V4m0 0-4.5 4.5M12 4l4.5 4.5"/><path d="M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3"/>',
  download: '<path d="M12 4v12m0 0-4.5-4.5M12 16l4.5-4.5"/><path d="M4 18v1a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-1"/>',
  heart: '<path d="M12 20s-7-4.4-7-10a4 4 0 0 1 7-2.6A4 4 0 0 1 19 10c0 5.6-7 10-7 10z"/>',
  plus: '<path d="M12 5v14M5 12h14"/>',
  trash: '<path d="M4 7h16M10 11v6M14 11v6"/><path d="M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3"/>',
  minus: '<path d="M5 12h14"/>',
  undo: '<path d="M9 14 4 9l5-5"/><path d="M4 9h10a6 6 0 0 1 0 12h-3"/>',
  wand: '<path d="m4 20 11-11"/><path d="M15 4v3M13.5 5.5h3M19 9v3M17.5 10.5h3M9 3v2M8 4h2"/>',
  spark: '<path d="M12 3v4M12 17v4M3 12h4M17 12h4M6 6l2.5 2.5M15.5 15.5 18 18M6 18l2.5-2.5M15.5 8.5 18 6"/>',
};

/** An inline SVG icon (decorative: aria-hidden). */
export function icon(name, size = 18) {
  const span = document.createElement("span");
  span.className = `icon icon-${name}`;
  span.setAttribute("aria-hidden", "true");
  span.innerHTML = `<svg viewBox="0 0 24 24" width="${size}" height="${size}" fill="none" stroke="currentColor" ` +
    `stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name] || ""}</svg>`;
  return span;
}
