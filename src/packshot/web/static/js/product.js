// Product page: title, photo picker and the Generate / History tabs (WAI-ARIA tabs pattern:
// buttons with role="tab" and aria-selected, arrow keys move between them; the tab is in the URL).

import { API, ApiError, get, loadImage } from "./api.js";
import { h, mountInto } from "./dom.js";
import { createGenerateTab } from "./generate.js";
import { createHistoryTab } from "./history.js";
import { createAdapters, createAdaptersPanel } from "./adapters.js";

const TABS = [
  { id: "generate", label: "Generate" },
  { id: "history", label: "History" },
];

export async function renderProduct(view, productId, initialTab) {
  let product;
  try {
    product = await get(`${API}/products/${encodeURIComponent(productId)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      throw new ApiError(err.message || `product ${productId} not found`, 404);
    }
    throw err;
  }
  const photos = product.photos || [];
  const photoKey = `packshot.photo.${product.id}`;
  let photo = photos.find((p) => p.id === sessionStorage.getItem(photoKey)) || photos[0] || null;

  const ctx = {
    product,
    get photo() {
      return photo;
    },
    /** Set by generate.js; history.js calls it for "Variations" from an old result. */
    runVariations: null,
    /** Tell the history tab to reload next time it is shown. */
    historyStale: true,
    /** The product's trained models (adapters.js), shared by the card and the generate form. */
    adapters: createAdapters(product),
  };
  const adaptersPanel = createAdaptersPanel(product, ctx.adapters);

  const generate = createGenerateTab(ctx);
  const history = createHistoryTab(ctx);
  const panels = { generate, history };

  // ---- tabs
  const tabButtons = {};
  const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": "Product views" },
    TABS.map((t, i) => {
      const button = h("button", {
        type: "button", role: "tab", id: `tab-${t.id}`, "aria-controls": `panel-${t.id}`,
        "aria-selected": "false", tabindex: "-1", class: "tab",
        onclick: () => go(t.id),
        onkeydown(event) {
          const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
          let next = null;
          if (step) next = TABS[(i + step + TABS.length) % TABS.length];
          if (event.key === "Home") next = TABS[0];
          if (event.key === "End") next = TABS[TABS.length - 1];
          if (next) {
            event.preventDefault();
            go(next.id);
            tabButtons[next.id].focus();
          }
        },
      }, t.label);
      tabButtons[t.id] = button;
      return button;
    }));

  for (const t of TABS) {
    const panel = panels[t.id].el;
    panel.id = `panel-${t.id}`;
    panel.setAttribute("role", "tabpanel");
    panel.setAttribute("aria-labelledby", `tab-${t.id}`);
    panel.hidden = true;
  }

  function go(tab) {
    const hash = `#/product/${encodeURIComponent(product.id)}/${tab}`;
    if (location.hash !== hash) location.hash = hash; // the router calls showTab
    else showTab(tab);
  }

  let shown = null;
  function showTab(tab) {
    if (!panels[tab]) tab = "generate";
    for (const t of TABS) {
      const on = t.id === tab;
      tabButtons[t.id].setAttribute("aria-selected", String(on));
      tabButtons[t.id].tabIndex = on ? 0 : -1;
      panels[t.id].el.hidden = !on;
    }
    if (shown !== tab) {
      shown = tab;
      panels[tab].activate();
    }
  }

  // ---- photo picker (only when the product has several photos)
  const picker = photos.length > 1
    ? h("div", { class: "photo-picker", role: "radiogroup", "aria-label": "Photo" },
        photos.map((p, i) => {
          const img = h("img", { alt: `Photo ${i + 1}` });
          loadImage(img, p.image_url);
          const radio = h("input", { type: "radio", name: "photo", value: p.id, checked: p.id === (photo && photo.id),
            onchange() {
              photo = p;
              sessionStorage.setItem(photoKey, p.id);
              generate.setPhoto(p);
            } });
          return h("label", { class: "photo-choice" }, radio, img);
        }))
    : null;

  const photoCount = photos.length;
  mountInto(view,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "← Products")),
    h("section", { class: "page-head" },
      h("div", {},
        h("h1", {}, product.name),
        h("p", { class: "muted" },
          `${photoCount} photo${photoCount === 1 ? "" : "s"} · created ${new Date(product.created_at).toLocaleDateString()}`)),
      picker),
    adaptersPanel.el,
    tablist,
    generate.el,
    history.el);

  showTab(initialTab);
  adaptersPanel.start();
  return {
    showTab,
    cleanup() {
      generate.cleanup();
      history.cleanup();
      adaptersPanel.cleanup();
    },
  };
}
