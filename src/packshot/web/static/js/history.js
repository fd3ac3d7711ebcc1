// The History tab: past results of the product (newest first) with prompt, seed and rating;
// filter by saved or minimum rating; rate, save, download, make variations, delete.

import { API, get } from "./api.js";
import { h, mountInto, showError } from "./dom.js";
import { resultCard } from "./candidates.js";

export function createHistoryTab(ctx) {
  const { product } = ctx;
  const filterKey = `packshot.history.${product.id}`;
  const saved = h("input", { type: "checkbox", id: `saved-only-${product.id}`, onchange: () => { persist(); load(); } });
  const minRating = h("select", { id: `min-rating-${product.id}`, onchange: () => { persist(); load(); } },
    h("option", { value: "" }, "Any rating"),
    [1, 2, 3, 4, 5].map((n) => h("option", { value: String(n) }, n === 5 ? "★★★★★ only" : `${"★".repeat(n)} or more`)));
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const list = h("ul", { class: "results-grid history-grid", "aria-label": "Past results" });
  const refresh = h("button", { type: "button", class: "btn btn-small btn-quiet", onclick: () => load() }, "Refresh");

  const el = h("section", { class: "history" },
    h("div", { class: "filters card", role: "group", "aria-label": "Filter results" },
      h("label", { class: "check" }, saved, " Saved only"),
      h("div", { class: "field inline" }, h("label", { for: minRating.id }, "Minimum rating"), minRating),
      h("div", { class: "spacer" }),
      count,
      refresh),
    list);

  try {
    const f = JSON.parse(sessionStorage.getItem(filterKey) || "null");
    if (f) {
      saved.checked = !!f.saved;
      minRating.value = f.minRating || "";
    }
  } catch { /* ignore */ }

  function persist() {
    try {
      sessionStorage.setItem(filterKey, JSON.stringify({ saved: saved.checked, minRating: minRating.value }));
    } catch { /* ignore */ }
  }

  let seq = 0;
  async function load() {
    const mine = ++seq;
    ctx.historyStale = false;
    list.setAttribute("aria-busy", "true");
    let data;
    try {
      data = await get(`${API}/products/${encodeURIComponent(product.id)}/history`, {
        query: { saved: saved.checked ? "true" : "", min_rating: minRating.value },
      });
    } catch (err) {
      if (mine !== seq) return;
      list.removeAttribute("aria-busy");
      showError(err, { context: "History" });
      mountInto(list, h("li", { class: "empty" }, "History could not be loaded. ",
        h("button", { type: "button", class: "btn btn-small", onclick: () => load() }, "Retry")));
      return;
    }
    if (mine !== seq) return;
    list.removeAttribute("aria-busy");
    const items = data.items || [];
    const filtered = saved.checked || minRating.value;
    count.textContent = `${items.length} result${items.length === 1 ? "" : "s"}${filtered ? " match" : ""}`;
    if (!items.length) {
      mountInto(list, h("li", { class: "empty" },
        filtered ? "No result matches these filters." : "Nothing generated yet: results appear here after a Generate."));
      return;
    }
    mountInto(list, items.map((r) => resultCard(r, {
      productName: product.name, showPrompt: true,
      onVariations: (res) => ctx.runVariations && ctx.runVariations(res),
      onDelete: (res, card) => {
        card.remove();
        const left = list.querySelectorAll(".result-card").length;
        count.textContent = `${left} result${left === 1 ? "" : "s"}`;
        if (!left) mountInto(list, h("li", { class: "empty" }, "No results left."));
      },
      onChange: () => {
        // a filtered view drops a result that no longer matches, on the next visit
        if (filtered) ctx.historyStale = true;
      },
    })));
  }

  return {
    el,
    activate() {
      load();
    },
    cleanup() {
      seq += 1;
    },
  };
}
