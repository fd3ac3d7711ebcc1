// Entry point: the hash router (#/, #/product/ID/generate, #/product/ID/history), the API-key
// field, and the last line of defence that turns any uncaught error into a visible message.

import { getApiKey, onUnauthorized, setApiKey } from "./api.js";
import { announce, clearError, h, mountInto, showError } from "./dom.js";
import { renderHome } from "./home.js";
import { renderProduct } from "./product.js";
import { renderCatalog } from "./catalog.js";

const view = document.getElementById("view");
let current = null; // {cleanup()} of the view on screen

/** Parse location.hash into a route. */
export function parseRoute(hash = location.hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "catalog") return { name: "catalog" };
  if (parts[0] === "product" && parts[1]) {
    const tab = parts[2] === "history" ? "history" : "generate";
    return { name: "product", productId: parts[1], tab };
  }
  return { name: "home" };
}

let lastRoute = null;

async function route() {
  const r = parseRoute();
  // switching tabs inside the same product keeps the product view (no reload of the photo)
  if (current && lastRoute && r.name === "product" && lastRoute.name === "product" &&
      r.productId === lastRoute.productId && current.showTab) {
    lastRoute = r;
    current.showTab(r.tab);
    return;
  }
  lastRoute = r;
  if (current && current.cleanup) current.cleanup();
  current = null;
  clearError();
  mountInto(view, h("p", { class: "loading" }, "Loading…"));
  try {
    if (r.name === "product") {
      current = await renderProduct(view, r.productId, r.tab);
    } else if (r.name === "catalog") {
      current = await renderCatalog(view);
    } else {
      current = await renderHome(view);
    }
  } catch (err) {
    showError(err);
    mountInto(
      view,
      h("section", { class: "empty-state" },
        h("h1", {}, "Something went wrong"),
        h("p", {}, (err && err.message) || String(err)),
        h("p", {}, h("a", { class: "btn", href: "#/" }, "Back to products"), " ",
          h("button", { type: "button", class: "btn btn-quiet", onclick: route }, "Try again"))),
    );
  }
}

// ---- API key: appears when the server says 401 ---------------------------------------------------

function setupApiKey() {
  const form = document.getElementById("api-key-form");
  const input = document.getElementById("api-key");
  if (getApiKey()) form.hidden = false;
  input.value = getApiKey();
  onUnauthorized(() => {
    form.hidden = false;
    input.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    announce(input.value.trim() ? "API key saved in this browser" : "API key cleared");
    lastRoute = null;
    route();
  });
}

// ---- never a blank page -----------------------------------------------------------------------------

window.addEventListener("error", (event) => {
  if (event.error) showError(event.error, { context: "Unexpected error" });
});
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  if (reason && reason.name === "AbortError") return;
  showError(reason, { context: (reason && reason.name === "ApiError") ? null : "Unexpected error" });
});

window.addEventListener("hashchange", route);
setupApiKey();
route();
