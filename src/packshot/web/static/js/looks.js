// Scene suggestions and saved looks for the Generate tab.
// "Suggest scenes": GET /photos/{id}/suggestions (from the product itself: palette, shape, finish,
// view); a click on one fills the prompt and its five fields. "Save as look": PUT /looks/{name}
// with the form's scene (everything but the product and photo). "Apply look": the saved look's
// values go back into the form, so every product gets the same scene, light and seed.

import { API, get, put } from "./api.js";
import { announce, h, mountInto, setBusy, showError } from "./dom.js";

const FIELDS = ["surface", "surroundings", "background", "lighting", "mood"];

/** The scene part of a POST /jobs body: what a look keeps. */
export function lookRequest(body) {
  const out = { ...body };
  delete out.product_id;
  delete out.photo_id;
  return out;
}

/** Put a look's (or a suggestion's) request into the form controls `c` (see generate.js). */
export function fillForm(c, req, fields = {}) {
  const set = (input, value) => { if (input && value !== undefined && value !== null) input.value = String(value); };
  set(c.prompt, req.prompt);
  for (const key of FIELDS) if (c.fieldInputs[key]) c.fieldInputs[key].value = fields[key] || "";
  set(c.count, req.n);
  c.seed.value = req.seed === undefined || req.seed === null ? "" : String(req.seed);
  if (req.engine && [...c.engine.options].some((o) => o.value === req.engine)) c.engine.value = req.engine;
  let canvas = null;
  if (req.preset) canvas = `preset:${req.preset}`;
  else if (req.size) { canvas = "size"; c.size.value = req.size; }
  else if (req.keep_framing) canvas = "keep";
  else if (req.aspect) canvas = `aspect:${req.aspect}`;
  if (canvas && [...c.canvas.options].some((o) => o.value === canvas)) c.canvas.value = canvas;
  set(c.negative, req.negative_prompt);
  set(c.model, req.model);
  set(c.steps, req.steps);
  set(c.guidance, req.guidance);
  if (req.placement) c.placement.value = req.placement;
  if (typeof req.shadow === "boolean") c.shadow.checked = req.shadow;
  if (req.output_format) c.format.value = req.output_format;
  c.syncCanvas();
  c.saveForm();
}

/** The panel: Suggest scenes, Save as look, Apply look. `c`: the form controls + requestBody(). */
export function createLooksPanel(c, idPrefix) {
  const suggestBtn = h("button", { type: "button", class: "btn btn-small", onclick: suggest }, "Suggest scenes");
  const list = h("ul", { class: "suggestions", "aria-label": "Suggested scenes" });
  const name = h("input", { id: `${idPrefix}-name`, type: "text", maxlength: "80", placeholder: "e.g. spring catalogue",
                            pattern: "[A-Za-z0-9][A-Za-z0-9 _.\\-]{0,79}", autocomplete: "off" });
  const saveBtn = h("button", { type: "button", class: "btn btn-small", onclick: save }, "Save as look");
  const select = h("select", { id: `${idPrefix}-saved`, class: "select-small" });
  const applyBtn = h("button", { type: "button", class: "btn btn-small", onclick: apply }, "Apply look");
  let saved = [];

  async function refresh(selected = "") {
    try {
      saved = (await get(`${API}/looks`)).items || [];
    } catch (err) {
      showError(err, { context: "Could not load saved looks" });
      return;
    }
    mountInto(select, h("option", { value: "" }, saved.length ? "Saved looks…" : "No saved looks yet"),
      saved.map((l) => h("option", { value: l.name }, l.name)));
    select.value = selected;
  }

  async function suggest() {
    const photo = c.getPhoto();
    if (!photo) return;
    setBusy(suggestBtn, true, "Looking at the product…");
    try {
      const data = await get(`${API}/photos/${encodeURIComponent(photo.id)}/suggestions`, { query: { n: 6 } });
      mountInto(list, data.items.map((s, i) => h("li", {},
        h("button", { type: "button", class: "suggestion", "data-index": String(i), title: (s.why || []).join("; "),
                      onclick: () => {
                        fillForm(c, { prompt: s.prompt, placement: s.request && s.request.placement },
                                 Object.fromEntries(FIELDS.map((k) => [k, s[k]])));
                        announce("Suggestion applied to the prompt");
                      } },
          h("span", { class: "suggestion-kind" }, `${s.palette} · ${s.arrangement}`), " ", s.prompt))));
      announce(`${data.items.length} scene suggestions`);
    } catch (err) {
      showError(err, { context: "Suggest scenes" });
    } finally {
      setBusy(suggestBtn, false);
    }
  }

  async function save() {
    const lookName = name.value.trim();
    if (!lookName || !name.checkValidity()) {
      showError(new Error(`Look name “${name.value}” must be 1–80 letters, digits, spaces, '_', '.' or '-'`),
                { context: "Save as look" });
      return;
    }
    let body;
    try {
      body = lookRequest(c.requestBody());
    } catch (err) {
      showError(err, { context: "Save as look" });
      return;
    }
    const fields = {};
    for (const key of FIELDS) {
      const v = c.fieldInputs[key] && c.fieldInputs[key].value.trim();
      if (v) fields[key] = v;
    }
    setBusy(saveBtn, true, "Saving…");
    try {
      await put(`${API}/looks/${encodeURIComponent(lookName)}`, { request: body, fields });
      announce(`Saved look “${lookName}”`);
      await refresh(lookName);
    } catch (err) {
      showError(err, { context: "Save as look" });
    } finally {
      setBusy(saveBtn, false);
    }
  }

  function apply() {
    const look = saved.find((l) => l.name === select.value);
    if (!look) return;
    fillForm(c, look.request, look.fields || {});
    announce(`Applied look “${look.name}”`);
  }

  refresh();
  return h("div", { class: "field looks-panel" },
    h("div", { class: "row" }, suggestBtn), list,
    h("div", { class: "row" }, h("label", { for: `${idPrefix}-name` }, "Look name"), name, saveBtn),
    h("div", { class: "row" }, h("label", { for: `${idPrefix}-saved` }, "Saved looks"), select, applyBtn));
}
