// The Generate tab: the cutout editor, the scene form (prompt, dice, examples, structured fields,
// looks/presets, canvas, candidates, engine, seed, advanced), the job's progress and the grid
// of candidates.

import { API, ApiError, followJob, get, isFinal, post } from "./api.js";
import { announce, clearError, debounce, h, icon, mountInto, setBusy, showError } from "./dom.js";
import { resultCard } from "./candidates.js";
import { MaskEditor } from "./mask.js";
import { createLooksPanel } from "./looks.js";
import { createBackgroundField } from "./background.js";
import { createAdapterField } from "./adapters.js";

/** Looks: one click sets the prompt (and for Amazon the marketplace preset). */
const LOOKS = [
  { id: "custom", label: "Custom" },
  { id: "amazon", label: "Amazon white", canvas: "preset:amazon", prompt: "pure white background",
    hint: "Pure white RGB 255 background, 2000×2000, product fills 85%: Amazon's main-image rules." },
  { id: "studio", label: "Studio", engine: "studio", prompt: "seamless light grey studio backdrop, soft even light",
    fields: { surface: "seamless paper sweep", background: "light grey studio backdrop", lighting: "soft even light" } },
  { id: "lifestyle", label: "Lifestyle", prompt: "on a wooden kitchen table, warm morning light, plants softly blurred behind",
    fields: { surface: "wooden kitchen table", surroundings: "plants softly blurred", lighting: "warm morning light", mood: "cosy" } },
  { id: "marble", label: "Marble", prompt: "on a white marble table, soft morning light from the left",
    fields: { surface: "white marble table", lighting: "soft morning light from the left", mood: "clean" } },
  { id: "outdoor", label: "Outdoor", prompt: "on a flat stone in a sunny garden, shallow depth of field",
    fields: { surface: "flat stone", surroundings: "sunny garden", lighting: "natural sunlight", mood: "fresh" } },
  { id: "dark", label: "Dark & moody", prompt: "on dark slate, dramatic side light, black background",
    fields: { surface: "dark slate", background: "black", lighting: "dramatic side light", mood: "moody" } },
];

const FIELDS = [
  ["surface", "Surface", "e.g. white marble table"],
  ["surroundings", "Surroundings", "e.g. eucalyptus leaves"],
  ["background", "Background", "e.g. soft beige wall"],
  ["lighting", "Lighting", "e.g. soft morning light from the left"],
  ["mood", "Mood", "e.g. calm, minimal"],
];

const ASPECTS = [
  ["original", "Photo's own shape"],
  ["1:1", "Square 1:1"],
  ["4:5", "Portrait 4:5"],
  ["2:3", "Portrait 2:3"],
  ["9:16", "Story 9:16"],
  ["3:2", "Landscape 3:2"],
  ["16:9", "Wide 16:9"],
];

/** GenerateRequest fields a Variations job may copy from a result's parameters. */
const REQUEST_FIELDS = ["prompt", "negative_prompt", "engine", "model", "preset", "size", "aspect", "keep_framing",
  "placement", "margin", "scale", "steps", "guidance", "strength", "scheduler", "mode", "seam_pass",
  "controlnet", "control_image", "ip_adapter", "output_format", "shadow", "background_id"];

const VARIATION_SEED_STEP = 100;

let enginesCache = null;
async function loadEngines() {
  if (!enginesCache) {
    enginesCache = get(`${API}/engines`).catch((err) => {
      enginesCache = null;
      throw err;
    });
  }
  return enginesCache;
}

export function createGenerateTab(ctx) {
  const { product } = ctx;
  const el = h("section", { class: "generate" });
  const jobKey = `packshot.job.${product.id}`;
  const formKey = `packshot.form.${product.id}`;
  let editor = null;
  let running = null; // {jobId, ctrl}
  let started = false;
  let exampleItems = [];

  // ---- form controls -------------------------------------------------------------------------------
  const id = (name) => `${name}-${product.id}`;
  const prompt = h("textarea", { id: id("prompt"), name: "prompt", rows: "3", maxlength: "1000",
                                 placeholder: "Describe the scene: surface, surroundings, light…" });
  const dice = h("button", { type: "button", class: "btn icon-btn", "aria-label": "Random prompt",
                             title: "Random prompt", onclick: rollDice }, icon("dice", 20));
  const examples = h("select", { id: id("examples"), class: "select-small",
                                 onchange: () => pickExample() },
    h("option", { value: "" }, "Examples…"));
  const look = h("select", { id: id("look"), onchange: () => applyLook(look.value) },
    LOOKS.map((l) => h("option", { value: l.id }, l.label)));
  const lookHint = h("p", { class: "hint" });
  const fieldInputs = {};
  const buildPrompt = debounce(buildFromFields, 450);
  const fields = FIELDS.map(([key, label, placeholder]) => {
    const input = h("input", { id: id(key), name: key, type: "text", placeholder, maxlength: "200",
                               oninput: () => buildPrompt() });
    fieldInputs[key] = input;
    return h("div", { class: "field" }, h("label", { for: id(key) }, label), input);
  });
  const canvas = h("select", { id: id("canvas"), onchange: () => syncCanvas() });
  const size = h("input", { id: id("size"), type: "text", placeholder: "1024x1024", value: "1024x1024",
                            pattern: "\\d{2,5}[xX]\\d{2,5}", inputmode: "numeric" });
  const sizeField = h("div", { class: "field", hidden: true }, h("label", { for: id("size") }, "Size"), size);
  const count = h("input", { id: id("n"), type: "number", min: "1", max: "16", value: "4", inputmode: "numeric",
                             "aria-label": "Number of candidates" });
  const engine = h("select", { id: id("engine") }, h("option", { value: "studio" }, "studio"));
  const seed = h("input", { id: id("seed"), type: "number", min: "0", max: String(2 ** 32 - 1),
                            placeholder: "random", inputmode: "numeric" });
  const negative = h("textarea", { id: id("negative"), rows: "2", maxlength: "1000", placeholder: "default negative prompt" });
  const model = h("input", { id: id("model"), type: "text", placeholder: "registry id or local folder",
                             autocomplete: "off", spellcheck: "false" });
  const steps = h("input", { id: id("steps"), type: "number", min: "1", max: "150", placeholder: "30" });
  const guidance = h("input", { id: id("guidance"), type: "number", min: "0", max: "30", step: "0.5", placeholder: "7.5" });
  const placement = h("select", { id: id("placement") },
    h("option", { value: "" }, "Default (standing on the surface)"),
    h("option", { value: "surface" }, "Standing on the surface"),
    h("option", { value: "center" }, "Centred"));
  const view = h("select", { id: id("view") },
    h("option", { value: "" }, "Auto (from the photo)"),
    h("option", { value: "front" }, "Front"),
    h("option", { value: "high" }, "From above the table"),
    h("option", { value: "top" }, "Top (flat lay)"));
  const shadow = h("input", { id: id("shadow"), type: "checkbox", checked: true });
  const format = h("select", { id: id("format") },
    h("option", { value: "png" }, "PNG"), h("option", { value: "jpeg" }, "JPEG"), h("option", { value: "webp" }, "WebP"));

  const looksPanel = createLooksPanel({ prompt, fieldInputs, count, seed, engine, canvas, size, negative, model, steps,
    guidance, placement, shadow, format, syncCanvas: () => syncCanvas(), saveForm: () => saveForm(),
    requestBody: () => requestBody(), getPhoto: () => ctx.photo }, id("looks"));
  const ownBackground = createBackgroundField(id("own-background"));
  const adapterField = ctx.adapters ? createAdapterField(ctx.adapters, id("adapter")) : null;
  const generateBtn = h("button", { type: "submit", class: "btn btn-primary btn-large" }, "Generate");
  const field = (label, control, extra = {}) =>
    h("div", { class: `field ${extra.class || ""}` }, h("label", { for: control.id }, label), control, extra.after || null);

  const form = h("form", { class: "card scene-card", "aria-labelledby": id("scene-title"), novalidate: true,
                           onsubmit: (e) => { e.preventDefault(); generate(); } },
    h("h2", { id: id("scene-title") }, "Scene"),
    field("Look", look, { after: lookHint }),
    h("div", { class: "field" },
      h("div", { class: "label-row" },
        h("label", { for: id("prompt") }, "Prompt"),
        h("div", { class: "row" }, h("label", { for: id("examples"), class: "visually-hidden" }, "Examples"), examples, dice)),
      prompt),
    looksPanel,
    h("details", { class: "subsection" },
      h("summary", {}, "Describe it piece by piece"),
      h("p", { class: "hint" }, "Filling these writes the prompt for you."),
      h("div", { class: "grid-2" }, fields)),
    h("div", { class: "grid-3" },
      field("Candidates", count),
      field("Engine", engine),
      field("Seed", seed)),
    h("div", { class: "grid-2" }, field("Canvas", canvas), sizeField),
    ownBackground.field,
    adapterField && adapterField.field,
    h("details", { class: "subsection" },
      h("summary", {}, "Advanced"),
      h("div", { class: "grid-2" },
        field("Model", model, { class: "span-2" }),
        field("Negative prompt", negative, { class: "span-2" }),
        field("Steps", steps),
        field("Guidance", guidance),
        field("Placement", placement),
        field("Camera view", view),
        field("Format", format),
        h("label", { class: "check span-2" }, shadow, " Add contact shadow"))),
    h("div", { class: "generate-row" }, generateBtn));

  // ---- job area --------------------------------------------------------------------------------------
  const progressBar = h("progress", { max: "1", value: "0", "aria-label": "Generation progress" });
  const progressText = h("p", { class: "progress-text", "aria-live": "polite" });
  const cancelBtn = h("button", { type: "button", class: "btn btn-small", onclick: cancel }, "Cancel");
  const progressBox = h("div", { class: "progress-box", hidden: true }, h("div", { class: "row" }, progressBar, cancelBtn), progressText);
  const jobError = h("p", { class: "job-error", hidden: true });
  const grid = h("ul", { class: "results-grid", "aria-label": "Candidates" });
  const resultsHead = h("h2", { id: id("results-title") }, "Candidates");
  const resultsSection = h("section", { class: "results", "aria-labelledby": id("results-title") },
    h("div", { class: "section-head" }, resultsHead), progressBox, jobError, grid);

  const cutoutCard = h("section", { class: "card cutout-card", "aria-labelledby": id("cutout-title") },
    h("h2", { id: id("cutout-title") }, "Cutout"));
  mountInto(el, h("div", { class: "studio-grid" }, cutoutCard, form), resultsSection);

  // ---- setup -----------------------------------------------------------------------------------------

  async function init() {
    restoreForm();
    let engines = null;
    try {
      engines = await loadEngines();
    } catch (err) {
      showError(err, { context: "Could not load engines" });
    }
    fillEngines(engines);
    fillCanvas(engines);
    restoreForm(); // again: selects now have their options
    setPhoto(ctx.photo, engines);
    loadExamples();
    resumeJob();
  }

  function fillEngines(engines) {
    const list = (engines && engines.background) || [{ name: "studio", available: true }];
    mountInto(engine, list.map((e) => h("option", { value: e.name,
      title: e.available === false ? `${e.description || ""} Not ready: ${shortReason(e)}` : e.description || "" },
      e.available === false ? `${e.name} (not ready)` : e.name)));
    engine.value = list.some((e) => e.name === "studio") ? "studio" : list[0].name;
  }

  function fillCanvas(engines) {
    const presets = (engines && engines.presets) || [];
    mountInto(canvas,
      h("optgroup", { label: "Shape" }, ASPECTS.map(([v, l]) => h("option", { value: `aspect:${v}` }, l))),
      presets.length
        ? h("optgroup", { label: "Marketplace" }, presets.map((p) => h("option", { value: `preset:${p.name}`, title: p.rules || "" },
            `${cap(p.name)} ${Array.isArray(p.size) ? `(${p.size[0]}×${p.size[1]})` : ""}`.trim())))
        : null,
      h("optgroup", { label: "Other" },
        h("option", { value: "keep" }, "Keep the photo's framing"),
        h("option", { value: "size" }, "Custom size…")));
    canvas.value = "aspect:original";
    syncCanvas();
  }

  function syncCanvas() {
    sizeField.hidden = canvas.value !== "size";
  }

  function setPhoto(photo, engines) {
    if (editor) {
      editor.destroy();
      editor.el.remove();
    }
    editor = null;
    if (!photo) {
      cutoutCard.append(h("p", { class: "empty" }, "This product has no photo."));
      return;
    }
    const segNames = engines && engines.segment ? ["auto", ...engines.segment.map((s) => s.name).filter((n) => n !== "auto")] : ["auto"];
    editor = new MaskEditor({ photo, productName: product.name, engines: segNames });
    cutoutCard.append(editor.el);
    editor.start();
  }

  async function loadExamples() {
    try {
      const data = await get(`${API}/prompts/examples`);
      const items = data.items || [];
      examples.append(...items.map((ex, i) => h("option", { value: String(i), title: ex.prompt },
        ex.engines && ex.engines.length ? `${ex.title} · ${ex.engines.join("/")}` : ex.title)));
      exampleItems = items;
    } catch (err) {
      examples.disabled = true;
      examples.title = `Examples unavailable: ${err.message}`;
    }
  }

  function pickExample() {
    const ex = exampleItems[Number(examples.value)];
    examples.value = "";
    if (!ex) return;
    prompt.value = ex.prompt;
    look.value = "custom";
    lookHint.textContent = "";
    if (ex.engines && ex.engines.length && ![...engine.options].some((o) => o.value === engine.value && ex.engines.includes(o.value))) {
      const first = ex.engines.find((e) => [...engine.options].some((o) => o.value === e));
      if (first) engine.value = first;
    }
    saveForm();
    prompt.focus();
  }

  async function rollDice() {
    setBusy(dice, true);
    try {
      const data = await get(`${API}/prompts/random`, { query: { seed: Math.floor(Math.random() * 2 ** 31) } });
      prompt.value = data.prompt;
      for (const [key, input] of Object.entries(fieldInputs)) input.value = (data.fields && data.fields[key]) || "";
      look.value = "custom";
      lookHint.textContent = "";
      buildPrompt.cancel();
      saveForm();
      announce("Random prompt");
    } catch (err) {
      showError(err, { context: "Random prompt" });
    } finally {
      setBusy(dice, false);
    }
  }

  async function buildFromFields() {
    const body = {};
    for (const [key, input] of Object.entries(fieldInputs)) if (input.value.trim()) body[key] = input.value.trim();
    if (!Object.keys(body).length) return;
    try {
      const data = await post(`${API}/prompts/build`, body);
      prompt.value = data.prompt;
      look.value = "custom";
      saveForm();
    } catch (err) {
      showError(err, { context: "Prompt" });
    }
  }

  function applyLook(lookId) {
    const l = LOOKS.find((x) => x.id === lookId);
    if (!l || l.id === "custom") {
      lookHint.textContent = "";
      return;
    }
    if (l.prompt) prompt.value = l.prompt;
    for (const [key, input] of Object.entries(fieldInputs)) input.value = (l.fields && l.fields[key]) || "";
    if (l.engine && [...engine.options].some((o) => o.value === l.engine)) engine.value = l.engine;
    if (l.canvas && [...canvas.options].some((o) => o.value === l.canvas)) canvas.value = l.canvas;
    else if (!l.canvas && canvas.value.startsWith("preset:amazon")) canvas.value = "aspect:original";
    syncCanvas();
    lookHint.textContent = l.hint || "";
    saveForm();
  }

  // ---- the request -------------------------------------------------------------------------------------

  /** The POST /jobs body from the form. Throws ApiError-like Error on an invalid field. */
  function requestBody() {
    const photo = ctx.photo;
    const body = { product_id: product.id, photo_id: photo ? photo.id : undefined,
                   prompt: prompt.value.trim(), engine: engine.value };
    const n = Number(count.value || 4);
    if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`Candidates must be a whole number from 1 to 16 (got ${count.value})`);
    body.n = n;
    if (seed.value !== "") {
      const s = Number(seed.value);
      if (!Number.isInteger(s) || s < 0 || s > 2 ** 32 - 1) throw new Error(`Seed must be a whole number from 0 to 4294967295 (got ${seed.value})`);
      body.seed = s;
    }
    const c = canvas.value;
    if (c.startsWith("preset:")) body.preset = c.slice(7);
    else if (c.startsWith("aspect:")) body.aspect = c.slice(7);
    else if (c === "keep") body.keep_framing = true;
    else if (c === "size") {
      const v = size.value.trim().toLowerCase();
      if (!/^\d{2,5}x\d{2,5}$/.test(v)) throw new Error(`Size must be WIDTHxHEIGHT, e.g. 1024x1024 (got “${size.value}”)`);
      body.size = v;
    }
    if (negative.value.trim()) body.negative_prompt = negative.value.trim();
    if (model.value.trim()) body.model = model.value.trim();
    if (steps.value !== "") body.steps = Number(steps.value);
    if (guidance.value !== "") body.guidance = Number(guidance.value);
    if (placement.value) body.placement = placement.value;
    if (view.value) body.view = view.value;
    body.shadow = shadow.checked;
    body.output_format = format.value;
    if (!body.prompt) delete body.prompt; // the server's default prompt
    if (adapterField) adapterField.apply(body); // a trained model of this product (adapters.js)
    return body;
  }

  async function generate() {
    clearError();
    let body;
    try {
      body = requestBody();
      const backgroundId = await ownBackground.backgroundId();
      if (backgroundId) body.background_id = backgroundId;
    } catch (err) {
      showError(err);
      return;
    }
    saveForm();
    await runJob(body);
  }

  /** Variations of a result: its own settings, seeds from result.seed + 100, current count. */
  async function runVariations(result) {
    clearError();
    if (!started) {
      started = true;
      await init();
    }
    // the request that made it lives on its job; result.parameters is only a display summary
    let params = {};
    try {
      if (result.job_id) params = (await get(`${API}/jobs/${encodeURIComponent(result.job_id)}`)).request || {};
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        showError(err, { context: "Variations" });
        return;
      }
    }
    const body = { product_id: product.id, photo_id: result.photo_id || (ctx.photo && ctx.photo.id) };
    for (const key of REQUEST_FIELDS) if (params[key] !== undefined && params[key] !== null) body[key] = params[key];
    if (body.preset) delete body.size; // preset and size are exclusive; a preset's size is its own
    if (body.keep_framing) { delete body.size; delete body.preset; delete body.aspect; }
    if (!body.prompt && result.prompt) body.prompt = result.prompt;
    if (!body.engine && result.engine) body.engine = result.engine;
    const n = Number(count.value);
    body.n = Number.isInteger(n) && n >= 1 && n <= 16 ? n : 4;
    body.seed = (result.seed + VARIATION_SEED_STEP) % 2 ** 32;
    // show what runs in the form
    if (body.prompt) prompt.value = body.prompt;
    seed.value = String(body.seed);
    if (body.engine && [...engine.options].some((o) => o.value === body.engine)) engine.value = body.engine;
    location.hash = `#/product/${encodeURIComponent(product.id)}/generate`;
    announce(`Variations of seed ${result.seed}: seeds from ${body.seed}`);
    await runJob(body);
  }
  ctx.runVariations = runVariations;

  async function runJob(body) {
    if (running) cancel();
    setBusy(generateBtn, true, "Generating…");
    jobError.hidden = true;
    try {
      if (editor) await editor.commitIfDirty();
    } catch (err) {
      setBusy(generateBtn, false);
      return; // the editor has shown the error
    }
    let job;
    try {
      job = await post(`${API}/jobs`, body);
    } catch (err) {
      setBusy(generateBtn, false);
      failJob(err.message);
      return;
    }
    sessionStorage.setItem(jobKey, job.id);
    await watch(job);
  }

  async function resumeJob() {
    const jobId = sessionStorage.getItem(jobKey);
    if (!jobId) return;
    try {
      const job = await get(`${API}/jobs/${encodeURIComponent(jobId)}`);
      if (running) return; // a newer job started meanwhile
      if (isFinal(job)) await finish(job, { quiet: true });
      else {
        setBusy(generateBtn, true, "Generating…");
        await watch(job);
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) sessionStorage.removeItem(jobKey);
      else showError(err, { context: "Last job" });
    }
  }

  async function watch(job) {
    const ctrl = new AbortController();
    running = { jobId: job.id, ctrl };
    progressBox.hidden = false;
    mountInto(grid);
    resultsHead.textContent = "Candidates";
    showProgress(job);
    try {
      const final = await followJob(job.id, showProgress, { signal: ctrl.signal });
      await finish(final);
    } catch (err) {
      if (err && err.name === "AbortError") return;
      failJob(err.message, "Lost track of the job");
    } finally {
      if (running && running.jobId === job.id) running = null;
      setBusy(generateBtn, false);
      progressBox.hidden = true;
    }
  }

  function showProgress(job) {
    const p = Math.max(0, Math.min(1, Number(job.progress) || 0));
    progressBar.value = p;
    const pct = `${Math.round(p * 100)}%`;
    progressText.textContent = `${cap(job.status)} · ${pct}${job.message ? ` · ${job.message}` : ""}`;
    progressBox.dataset.status = job.status;
  }

  async function finish(job, { quiet = false } = {}) {
    ctx.historyStale = true;
    if (job.status === "failed") {
      failJob(job.error || job.message || "the job failed without a message");
      return;
    }
    if (job.status === "cancelled") {
      resultsHead.textContent = "Candidates";
      mountInto(grid, h("li", { class: "empty" }, "The job was cancelled."));
      return;
    }
    const ids = job.result_ids || [];
    let results;
    try {
      results = await Promise.all(ids.map((rid) => get(`${API}/results/${encodeURIComponent(rid)}`)));
    } catch (err) {
      if (!quiet) showError(err, { context: "Results" });
      return;
    }
    const req = job.request || {};
    resultsHead.textContent = `Candidates · ${results.length} for “${truncate(req.prompt || results[0]?.prompt || "", 60)}”`;
    mountInto(grid, results.map((r, i) => resultCard(r, {
      index: i, productName: product.name, onVariations: runVariations,
      onChange: () => { ctx.historyStale = true; },
    })));
    if (!quiet) announce(`${results.length} candidate${results.length === 1 ? "" : "s"} ready`);
  }

  function failJob(message, context = "Generation failed") {
    jobError.hidden = false;
    jobError.textContent = `${context}: ${message}`;
    showError(message, { context });
  }

  async function cancel() {
    if (!running) return;
    const { jobId, ctrl } = running;
    running = null;
    try {
      await post(`${API}/jobs/${encodeURIComponent(jobId)}/cancel`, {});
      announce("Job cancelled");
    } catch (err) {
      showError(err, { context: "Cancel" });
    }
    ctrl.abort();
    setBusy(generateBtn, false);
    progressBox.hidden = true;
    mountInto(grid, h("li", { class: "empty" }, "The job was cancelled."));
  }

  // ---- the form survives a reload (per product, this tab only) ----------------------------------------

  const persisted = { prompt, look, count, engine, seed, canvas, size, negative, model, steps, guidance, placement, format };
  function saveForm() {
    const data = {};
    for (const [k, input] of Object.entries(persisted)) data[k] = input.value;
    for (const [k, input] of Object.entries(fieldInputs)) data[`f_${k}`] = input.value;
    data.shadow = shadow.checked;
    try {
      sessionStorage.setItem(formKey, JSON.stringify(data));
    } catch { /* ignore */ }
  }
  function restoreForm() {
    let data = null;
    try {
      data = JSON.parse(sessionStorage.getItem(formKey) || "null");
    } catch { /* ignore */ }
    if (!data) return;
    for (const [k, input] of Object.entries(persisted)) {
      if (data[k] === undefined) continue;
      if (input.tagName === "SELECT" && ![...input.options].some((o) => o.value === data[k])) continue;
      input.value = data[k];
    }
    for (const [k, input] of Object.entries(fieldInputs)) if (data[`f_${k}`] !== undefined) input.value = data[`f_${k}`];
    if (typeof data.shadow === "boolean") shadow.checked = data.shadow;
    syncCanvas();
    const l = LOOKS.find((x) => x.id === look.value);
    lookHint.textContent = (l && l.hint) || "";
  }
  form.addEventListener("change", saveForm);

  return {
    el,
    activate() {
      if (!started) {
        started = true;
        init();
      } else if (editor) {
        editor.draw();
      }
    },
    setPhoto(photo) {
      loadEngines().then((e) => setPhoto(photo, e), () => setPhoto(photo, null));
    },
    cleanup() {
      if (running) running.ctrl.abort();
      if (editor) editor.destroy();
      buildPrompt.cancel();
    },
  };
}

function shortReason(engine) {
  const caps = engine.capabilities || {};
  return engine.reason || caps.reason || "needs model weights";
}

function cap(s) {
  s = String(s || "");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function truncate(s, n) {
  s = String(s || "");
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
