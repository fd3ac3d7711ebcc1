// Catalog: pick products and a prompt (or a saved look), run them as one batch
// (POST /batches: per product the marketplace's main image + lifestyle images), watch progress
// over the batch's event stream, cancel, and download everything as one zip (images, report.html,
// summary.json).

import { API, download, get, post, streamEvents } from "./api.js";
import { announce, h, mountInto, setBusy, showError } from "./dom.js";

const MARKETPLACES = ["amazon", "walmart", "google", "ebay", "etsy", "shopify"];
const ENDED = new Set(["succeeded", "failed", "cancelled"]);

/** Render the page into `view`; returns {cleanup()}. */
export async function renderCatalog(view) {
  const controller = new AbortController();
  const data = await get(`${API}/products`, { query: { limit: 1000 } });
  const products = data.items || [];
  const boxes = products.map((p) =>
    h("input", { type: "checkbox", id: `cat-${p.id}`, value: p.id, checked: true, "data-name": p.name }));
  const list = h("ul", { class: "catalog-products", "aria-label": "Products" },
    ...products.map((p, i) => h("li", {}, boxes[i], " ", h("label", { for: `cat-${p.id}` }, p.name))));
  const prompt = h("input", { id: "cat-prompt", type: "text", maxlength: "1000",
                              value: "on a light oak table, soft window light" });
  const look = h("input", { id: "cat-look", type: "text", maxlength: "80", placeholder: "(optional) a saved look" });
  const market = h("select", { id: "cat-market" }, ...MARKETPLACES.map((m) => h("option", { value: m }, m)));
  const count = h("input", { id: "cat-count", type: "number", min: "0", max: "8", value: "2" });
  const size = h("select", { id: "cat-size" },
    ...["1024x1024", "2000x2000", "1600x1200", "1080x1350"].map((s) => h("option", { value: s }, s)));
  const run = h("button", { type: "submit", class: "btn btn-primary", id: "cat-run" }, "Run catalog");
  const cancel = h("button", { type: "button", class: "btn btn-quiet", id: "cat-cancel", hidden: true }, "Cancel");
  const zip = h("button", { type: "button", class: "btn", id: "cat-zip", hidden: true }, "Download all (zip)");
  const bar = h("progress", { id: "cat-progress", max: "1", value: "0", hidden: true });
  const state = h("p", { id: "cat-state", class: "muted", "aria-live": "polite" });
  const rows = h("tbody", {});
  const table = h("table", { class: "catalog-items", hidden: true },
    h("thead", {}, h("tr", {}, h("th", {}, "SKU"), h("th", {}, "status"), h("th", {}, "detail"))), rows);
  let batchId = null;

  function show(batch) {
    bar.hidden = false;
    table.hidden = false;
    bar.value = batch.progress;
    const c = batch.counts || {};
    state.textContent = `${batch.status}: ${Math.round(batch.progress * 100)}% · ` +
      Object.entries(c).map(([k, v]) => `${v} ${k}`).join(", ");
    const names = Object.fromEntries(boxes.map((b) => [b.value, b.dataset.name]));
    mountInto(rows, ...batch.items.map((it) => h("tr", { "data-status": it.status },
      h("td", {}, names[it.product_id] || it.sku), h("td", {}, it.status),
      h("td", {}, it.reason || `${Math.round(it.progress * 100)}%`))));
    const ended = ENDED.has(batch.status);
    cancel.hidden = ended;
    zip.hidden = !ended;
    setBusy(run, !ended, "Running…");
    return ended;
  }

  async function follow(id) {
    try {
      if (await streamEvents(`${API}/batches/${id}/events`, show, controller.signal)) return;
    } catch (err) {
      if (err && err.name === "AbortError") return;
    }
    for (;;) { // the stream broke: poll
      if (controller.signal.aborted) return;
      if (show(await get(`${API}/batches/${id}`))) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  const form = h("form", { class: "catalog-form", onsubmit: async (event) => {
    event.preventDefault();
    const ids = boxes.filter((b) => b.checked).map((b) => b.value);
    if (!ids.length) { showError(new Error("pick at least one product")); return; }
    const body = { product_ids: ids, marketplace: market.value, lifestyle: Number(count.value), size: size.value };
    if (look.value.trim()) body.look = look.value.trim(); else body.prompt = prompt.value;
    setBusy(run, true, "Starting…");
    try {
      const batch = await post(`${API}/batches`, body);
      batchId = batch.id;
      announce(`Catalog run started: ${ids.length} products`);
      show(batch);
      await follow(batch.id);
    } catch (err) {
      showError(err, { context: "Catalog run" });
      setBusy(run, false);
    }
  } },
  h("fieldset", {}, h("legend", {}, `Products (${products.length})`), list),
  h("div", { class: "field" }, h("label", { for: "cat-prompt" }, "Lifestyle scene"), prompt),
  h("div", { class: "field" }, h("label", { for: "cat-look" }, "or a saved look"), look),
  h("div", { class: "field" }, h("label", { for: "cat-market" }, "Marketplace (main image)"), market),
  h("div", { class: "field" }, h("label", { for: "cat-count" }, "Lifestyle images per product"), count),
  h("div", { class: "field" }, h("label", { for: "cat-size" }, "Lifestyle size"), size),
  h("div", { class: "actions" }, run, " ", cancel, " ", zip));

  cancel.addEventListener("click", async () => {
    if (!batchId) return;
    setBusy(cancel, true, "Cancelling…");
    try { show(await post(`${API}/batches/${batchId}/cancel`)); } catch (err) { showError(err); }
    setBusy(cancel, false);
  });
  zip.addEventListener("click", async () => {
    try { await download(`${API}/batches/${batchId}/download`, `catalog-${batchId.slice(0, 12)}.zip`); }
    catch (err) { showError(err, { context: "Download" }); }
  });

  mountInto(view, h("section", { class: "catalog" },
    h("h1", {}, "Catalog"),
    h("p", { class: "muted" }, "Per product: the marketplace's main image (checked by its rules) and lifestyle images."),
    products.length ? form : h("p", { class: "empty" }, "No products yet: add some on the Products page."),
    bar, state, table));
  return { cleanup: () => controller.abort() };
}
