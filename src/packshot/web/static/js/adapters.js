// Trained models of a product (issue 12): the product page's "Trained models" card (the list,
// a "Train a model" form, live progress over SSE, cancel, delete) and the generate form's adapter
// choice, which puts ["<adapter id>:<weight>"] into the job's `adapters`.
//
// Both share one store per product page (`createAdapters(product)`): when a training ends, the
// generate form's select gets the new model at once.

import { API, ApiError, del, get, post, streamEvents } from "./api.js";
import { announce, formatDate, h, mountInto, setBusy, showError } from "./dom.js";

const FINAL = new Set(["done", "failed", "cancelled"]);
const METHODS = [
  ["lora", "LoRA"],
  ["dreambooth-lora", "DreamBooth-LoRA"],
  ["textual-inversion", "Textual inversion"],
];

/** The product's adapters, kept fresh; listeners hear every change. */
export function createAdapters(product) {
  let items = [];
  const listeners = new Set();
  const changed = () => listeners.forEach((fn) => fn(items));
  return {
    get items() {
      return items;
    },
    done: () => items.filter((a) => a.status === "done"),
    onChange(fn) {
      listeners.add(fn);
    },
    async reload() {
      const data = await get(`${API}/products/${encodeURIComponent(product.id)}/adapters`);
      items = data.items || [];
      changed();
      return items;
    },
    update(adapter) {
      const i = items.findIndex((a) => a.id === adapter.id);
      if (i >= 0) items[i] = adapter;
      else items.unshift(adapter);
      changed();
    },
    remove(id) {
      items = items.filter((a) => a.id !== id);
      changed();
    },
  };
}

/** The "Trained models" card of the product page. */
export function createAdaptersPanel(product, store) {
  const pid = product.id;
  const photoCount = (product.photos || []).length;
  const base = h("input", { id: `train-base-${pid}`, type: "text", required: true, maxlength: "200",
                            placeholder: "model id, e.g. sd15", autocomplete: "off", spellcheck: "false",
                            list: `train-bases-${pid}` });
  const bases = h("datalist", { id: `train-bases-${pid}` });
  const method = h("select", { id: `train-method-${pid}` }, METHODS.map(([v, l]) => h("option", { value: v }, l)));
  const steps = h("input", { id: `train-steps-${pid}`, type: "number", min: "1", max: "20000", value: "400",
                             inputmode: "numeric" });
  const trainBtn = h("button", { type: "submit", class: "btn btn-primary" }, "Train a model");
  const field = (label, control) => h("div", { class: "field" }, h("label", { for: control.id }, label), control);
  const form = h("form", { class: "train-form", novalidate: true, "aria-label": "Train a model",
                           onsubmit: (e) => { e.preventDefault(); train(); } },
    h("div", { class: "grid-3" }, field("Base model", base), field("Method", method), field("Steps", steps)),
    bases,
    h("div", { class: "row" }, trainBtn,
      h("span", { class: "hint" }, photoCount >= 3
        ? `Learns this product from its ${photoCount} photos; use it in Generate with <product> in the prompt.`
        : `Training needs 3 to 20 photos of the product (it has ${photoCount}).`)));
  const list = h("ul", { class: "adapter-list", "aria-label": "Trained models" });
  const el = h("section", { class: "card adapters-card", "aria-labelledby": `adapters-title-${pid}` },
    h("details", { class: "subsection", open: true },
      h("summary", {}, h("h2", { id: `adapters-title-${pid}`, class: "inline-title" }, "Trained models")),
      list, form));
  const follows = new Map(); // adapter id -> AbortController of its event stream

  store.onChange(render);

  async function start() {
    try {
      await store.reload();
    } catch (err) {
      showError(err, { context: "Trained models" });
    }
    for (const a of store.items) if (!FINAL.has(a.status)) follow(a);
    try {
      const models = await get(`${API}/models`);
      const ids = (models.items || []).filter((m) => /sd|diffusion|xl/i.test(`${m.kind} ${m.id}`)).map((m) => m.id);
      mountInto(bases, ids.map((id) => h("option", { value: id })));
    } catch {
      // suggestions only: the field still takes any id
    }
  }

  function render(items) {
    if (!items.length) {
      mountInto(list, h("li", { class: "empty" }, "No trained model yet."));
      return;
    }
    mountInto(list, items.map(row));
  }

  function row(a) {
    const running = !FINAL.has(a.status);
    const loss = typeof a.loss === "number" ? a.loss.toFixed(4) : "–";
    const bar = running ? h("progress", { max: String(a.total || 1), value: String(a.step || 0),
                                          "aria-label": `Training progress of ${a.name}` }) : null;
    const cancel = running ? h("button", { type: "button", class: "btn btn-small", onclick: (e) => cancelOne(a, e.target) },
      "Cancel") : null;
    const remove = running ? null : h("button", { type: "button", class: "btn btn-small btn-quiet",
                                                   onclick: (e) => removeOne(a, e.target) }, "Delete");
    return h("li", { class: `adapter adapter-${a.status}`, dataset: { adapterId: a.id } },
      h("div", { class: "adapter-head" },
        h("strong", { class: "adapter-name" }, a.name),
        h("span", { class: `badge status-${a.status}` }, a.status)),
      h("p", { class: "adapter-meta muted" },
        `${a.method} on ${a.base} · `,
        h("span", { class: "adapter-steps" }, `step ${a.step}/${a.total}`),
        " · loss ", h("span", { class: "adapter-loss" }, loss),
        a.resumed_from ? ` · resumed from step ${a.resumed_from}` : "",
        ` · ${formatDate(a.created_at)}`),
      a.error ? h("p", { class: "job-error" }, a.error) : null,
      h("div", { class: "row" }, bar, cancel, remove));
  }

  function follow(a) {
    if (follows.has(a.id)) return;
    const ctrl = new AbortController();
    follows.set(a.id, ctrl);
    const seen = (data) => {
      store.update(data);
      if (FINAL.has(data.status)) {
        announce(`Training ${data.name}: ${data.status}`);
        return true;
      }
      return false;
    };
    streamEvents(`${API}/adapters/${encodeURIComponent(a.id)}/events`, seen, ctrl.signal)
      .then((final) => (final ? null : get(`${API}/adapters/${encodeURIComponent(a.id)}`).then(store.update)))
      .catch((err) => {
        if (!(err && err.name === "AbortError")) showError(err, { context: `Training ${a.name}` });
      })
      .finally(() => follows.delete(a.id));
  }

  async function train() {
    const body = { base: base.value.trim(), method: method.value, steps: Number(steps.value) };
    if (!body.base) {
      showError(new Error("Base model: give the id of the diffusion model to train on"));
      base.focus();
      return;
    }
    if (!Number.isInteger(body.steps) || body.steps < 1 || body.steps > 20000) {
      showError(new Error(`Steps must be a whole number from 1 to 20000 (got ${steps.value})`));
      return;
    }
    setBusy(trainBtn, true, "Starting…");
    try {
      const a = await post(`${API}/products/${encodeURIComponent(pid)}/adapters`, body);
      store.update(a);
      follow(a);
      announce(`Training ${a.name} started`);
    } catch (err) {
      showError(err, { context: "Train a model" });
    } finally {
      setBusy(trainBtn, false);
    }
  }

  async function cancelOne(a, button) {
    setBusy(button, true, "Cancelling…");
    try {
      store.update(await post(`${API}/adapters/${encodeURIComponent(a.id)}/cancel`, {}));
    } catch (err) {
      showError(err, { context: `Cancel ${a.name}` });
      setBusy(button, false);
    }
  }

  async function removeOne(a, button) {
    setBusy(button, true, "Deleting…");
    try {
      await del(`${API}/adapters/${encodeURIComponent(a.id)}`);
      store.remove(a.id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) store.remove(a.id);
      else {
        showError(err, { context: `Delete ${a.name}` });
        setBusy(button, false);
      }
    }
  }

  return {
    el,
    start,
    cleanup() {
      for (const ctrl of follows.values()) ctrl.abort();
      follows.clear();
    },
  };
}

/** The generate form's "Trained model" choice: a select of the product's finished adapters and a
 * weight. `apply(body)` adds `adapters` to the job (and the adapter's base as the diffusion model
 * when no model is given). */
export function createAdapterField(store, inputId) {
  const select = h("select", { id: inputId, onchange: sync }, h("option", { value: "" }, "None"));
  const weight = h("input", { id: `${inputId}-weight`, type: "number", min: "-2", max: "2", step: "0.1", value: "1",
                              inputmode: "decimal", "aria-label": "Adapter weight", disabled: true });
  const field = h("div", { class: "field span-2 adapter-field" },
    h("label", { for: inputId }, "Trained model"),
    h("div", { class: "row" }, select, h("label", { for: `${inputId}-weight`, class: "muted" }, "weight"), weight),
    h("p", { class: "hint" }, "Generates the product with a model trained on its photos (diffusion engine); " +
      "write <product> in the prompt where it should appear."));

  function fill(items) {
    const keep = select.value;
    const done = items.filter((a) => a.status === "done");
    mountInto(select, h("option", { value: "" }, "None"),
      done.map((a) => h("option", { value: a.id }, `${a.name} (${a.method}, ${a.base})`)));
    select.value = done.some((a) => a.id === keep) ? keep : "";
    field.hidden = !done.length;
    sync();
  }

  function sync() {
    weight.disabled = !select.value;
  }

  store.onChange(fill);
  fill(store.items);

  function apply(body) {
    if (!select.value) return body;
    const a = store.items.find((x) => x.id === select.value);
    const w = Number(weight.value === "" ? 1 : weight.value);
    if (!Number.isFinite(w) || w < -2 || w > 2) throw new Error(`Adapter weight must be from -2 to 2 (got ${weight.value})`);
    body.adapters = [`${select.value}:${w}`];
    body.engine = "diffusion";
    if (!body.model && a) body.model = a.base;
    return body;
  }

  return { field, apply };
}
