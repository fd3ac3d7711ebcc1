// The cutout editor: the photo on a canvas with the mask preview drawn over it as a tint.
//
// Clicks add points (shift-click, right-click or the "Exclude" mode add negative points; clicking
// an existing point removes it); dragging draws a box. After each edit the WHOLE click list is
// POSTed to /photos/{id}/cutout/preview (debounced; older answers are dropped), and the returned
// greyscale mask (L-mode PNG at preview resolution) becomes the overlay. Keyboard: arrow keys
// move a crosshair, Enter adds a point, Shift+Enter / "-" a negative one, "b" sets box corners,
// Backspace undoes. Coordinates sent to the API are ORIGINAL photo pixels (x, y), boxes XYXY.

import { API, ApiError, download, imageSrc, put, request } from "./api.js";
import { announce, clearError, debounce, h, icon, nextId, setBusy, showError } from "./dom.js";

const TINT = [99, 102, 241]; // indigo: the product
const DIM = [15, 17, 26]; // the background is darkened
const EDGE = [165, 180, 252]; // outline of the mask
const DRAG_PX = 6; // a pointer move longer than this (CSS px) is a box, not a click
const HIT_PX = 12; // clicking this close to a point removes it

export class MaskEditor {
  /**
   * @param {{photo: {id, width, height, image_url}, productName: string, engine?: string}} opts
   */
  constructor({ photo, productName, engines = ["auto"] }) {
    this.photo = photo;
    this.productName = productName;
    this.engine = "auto";
    this.state = { points: [], neg_points: [], boxes: [] };
    this.undoStack = [];
    this.mode = "include";
    this.dirty = false;
    this.seq = 0;
    this.previews = 0;
    this.inflight = null;
    this.image = null; // the photo, decoded
    this.overlay = null; // canvas with the tinted mask at mask resolution
    this.cross = null; // keyboard crosshair, photo px
    this.boxAnchor = null; // keyboard box corner, photo px
    this.drag = null;
    this.requestPreview = debounce(() => this.preview(), 180);
    this.restoreClicks();
    this.build(engines);
  }

  // ---- DOM -----------------------------------------------------------------------------------------

  build(engines) {
    const helpId = nextId("mask-help");
    this.canvas = h("canvas", {
      class: "mask-canvas", tabindex: "0", role: "img",
      "aria-label": "Cutout editor: the photo with the cutout tinted. Click to add a point.",
      "aria-describedby": helpId, "data-testid": "mask-canvas",
    });
    this.canvas.dataset.previews = "0";
    this.stage = h("div", { class: "mask-stage" }, this.canvas,
      h("div", { class: "mask-busy", "aria-hidden": "true" }));
    this.statusEl = h("p", { class: "mask-status", "aria-live": "polite" }, "Loading photo…");

    const modeName = nextId("mask-mode");
    const modeRadio = (value, label, hint) => h("label", { class: "seg", title: hint },
      h("input", { type: "radio", name: modeName, value, checked: value === this.mode,
                   onchange: () => { this.mode = value; } }),
      h("span", {}, icon(value === "include" ? "plus" : "minus", 15), label));
    this.modeGroup = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Click adds" },
      modeRadio("include", "Include", "Clicks add parts of the product"),
      modeRadio("exclude", "Exclude", "Clicks remove background (or shift-click)"));

    this.undoBtn = h("button", { type: "button", class: "btn btn-small", onclick: () => this.undo(),
                                 disabled: true }, icon("undo", 15), "Undo");
    this.resetBtn = h("button", { type: "button", class: "btn btn-small", onclick: () => this.reset(),
                                  title: "Forget the clicks and use the automatic cutout" }, icon("wand", 15), "Auto cutout");
    this.commitBtn = h("button", { type: "button", class: "btn btn-small",
                                   onclick: () => this.commit().catch(() => {}) }, "Use this cutout");
    this.downloadBtn = h("button", { type: "button", class: "btn btn-small",
                                     onclick: () => this.downloadCutout() }, icon("download", 15), "Download cutout");
    const engineSelect = h("select", { "aria-label": "Cutout engine", class: "select-small",
                                       onchange: (e) => { this.engine = e.target.value; this.changed(false); } },
      engines.map((e) => h("option", { value: e }, e === "auto" ? "Engine: auto" : `Engine: ${e}`)));
    this.engineSelect = engineSelect;
    if (engines.includes(this.engine)) engineSelect.value = this.engine;

    this.el = h("div", { class: "mask-editor" },
      h("div", { class: "mask-toolbar" }, this.modeGroup, this.undoBtn, this.resetBtn,
        engines.length > 1 ? engineSelect : null),
      this.stage,
      h("p", { id: helpId, class: "hint" },
        "Click the product to add it, shift-click (or right-click) the background to remove it, ",
        "click a point again to delete it, drag to draw a box. Keyboard: focus the photo, arrow keys ",
        "move the crosshair, Enter adds, Shift+Enter removes, B sets box corners, Backspace undoes."),
      h("div", { class: "mask-footer" }, this.statusEl,
        h("div", { class: "row" }, this.commitBtn, this.downloadBtn)));

    this.bindPointer();
    this.bindKeys();
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.stage);
  }

  async start() {
    try {
      const src = await imageSrc(this.photo.image_url);
      const img = new Image();
      img.src = src;
      await img.decode();
      if (src.startsWith("blob:")) URL.revokeObjectURL(src);
      this.image = img;
      this.draw();
    } catch (err) {
      this.setStatus("The photo could not be loaded.");
      showError(err, { context: "Photo" });
      return;
    }
    await this.preview();
  }

  destroy() {
    this.requestPreview.cancel();
    if (this.inflight) this.inflight.abort();
    this.resizeObserver.disconnect();
  }

  setStatus(text) {
    this.statusEl.textContent = text;
  }

  // ---- geometry --------------------------------------------------------------------------------------

  /** CSS px per photo px. */
  get scale() {
    return this.canvas.clientWidth / this.photo.width || 1;
  }

  toPhoto(clientX, clientY) {
    const r = this.canvas.getBoundingClientRect();
    const s = r.width / this.photo.width;
    const x = Math.round((clientX - r.left) / s);
    const y = Math.round((clientY - r.top) / s);
    return [clamp(x, 0, this.photo.width - 1), clamp(y, 0, this.photo.height - 1)];
  }

  // ---- editing -------------------------------------------------------------------------------------

  snapshot() {
    this.undoStack.push(JSON.stringify(this.state));
    if (this.undoStack.length > 100) this.undoStack.shift();
  }

  addPoint([x, y], negative) {
    this.snapshot();
    (negative ? this.state.neg_points : this.state.points).push([x, y]);
    this.changed();
    announce(`${negative ? "Negative" : "Positive"} point at ${x}, ${y}`, 1500);
  }

  addBox(a, b) {
    const box = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]) + 1, Math.max(a[1], b[1]) + 1];
    if (box[2] - box[0] < 4 || box[3] - box[1] < 4) return false;
    this.snapshot();
    this.state.boxes = [box]; // one box frames the product; a new one replaces it
    this.changed();
    announce(`Box ${box.join(", ")}`, 1500);
    return true;
  }

  /** Remove the point nearest to (x, y) if it is within HIT_PX on screen; returns true if removed. */
  removeNear([x, y]) {
    const limit = HIT_PX / this.scale;
    for (const key of ["points", "neg_points"]) {
      const list = this.state[key];
      const i = list.findIndex(([px, py]) => Math.hypot(px - x, py - y) <= limit);
      if (i >= 0) {
        this.snapshot();
        list.splice(i, 1);
        this.changed();
        announce("Point removed", 1500);
        return true;
      }
    }
    return false;
  }

  undo() {
    if (!this.undoStack.length) return;
    this.state = JSON.parse(this.undoStack.pop());
    this.changed();
  }

  reset() {
    if (!this.hasClicks()) {
      this.changed();
      return;
    }
    this.snapshot();
    this.state = { points: [], neg_points: [], boxes: [] };
    this.changed();
  }

  hasClicks() {
    const s = this.state;
    return s.points.length + s.neg_points.length + s.boxes.length > 0;
  }

  changed(markDirty = true) {
    if (markDirty) this.dirty = true;
    this.undoBtn.disabled = !this.undoStack.length;
    this.draw();
    this.updateStatus("Updating preview…");
    this.requestPreview();
  }

  body() {
    return { points: this.state.points, neg_points: this.state.neg_points, boxes: this.state.boxes,
             engine: this.engine };
  }

  updateStatus(prefix) {
    const s = this.state;
    const parts = [];
    if (s.points.length) parts.push(`${s.points.length} point${s.points.length > 1 ? "s" : ""}`);
    if (s.neg_points.length) parts.push(`${s.neg_points.length} negative`);
    if (s.boxes.length) parts.push("1 box");
    const what = parts.length ? parts.join(", ") : "Automatic cutout";
    const saved = this.dirty ? " · not applied yet" : "";
    this.setStatus(prefix ? `${what} · ${prefix}` : `${what}${saved}`);
  }

  // ---- server calls -----------------------------------------------------------------------------------

  /** POST the full click list; draw the returned mask. Stale answers are dropped. */
  async preview() {
    const seq = ++this.seq;
    if (this.inflight) this.inflight.abort();
    const ctrl = new AbortController();
    this.inflight = ctrl;
    this.stage.classList.add("busy");
    try {
      const response = await request("POST", `${API}/photos/${encodeURIComponent(this.photo.id)}/cutout/preview`,
        { json: this.body(), raw: true, signal: ctrl.signal });
      // an empty mask comes with a note ("no product found ...") instead of an error
      const note = response.headers.get("X-Cutout-Note");
      const blob = await response.blob();
      const bitmap = await createImageBitmap(blob);
      if (seq !== this.seq) return;
      this.overlay = tintMask(bitmap);
      bitmap.close?.();
      this.previews += 1;
      this.canvas.dataset.previews = String(this.previews);
      this.canvas.dataset.coverage = this.overlay.coverage.toFixed(4);
      this.canvas.dataset.maskHash = this.overlay.hash;
      this.draw();
      this.updateStatus();
      if (note || this.overlay.coverage === 0) {
        this.noProduct(note || "no product found in this photo (the mask is empty)");
      }
      else if (this.noted) {
        // the product is found now: drop our own notice (not someone else's error)
        const shown = document.querySelector("#alert .alert-text");
        if (shown && shown.textContent === this.noted) clearError();
        this.noted = null;
      }
    } catch (err) {
      if (err && err.name === "AbortError") return;
      if (seq !== this.seq) return;
      this.overlay = null;
      this.draw();
      if (err instanceof ApiError && err.status === 422) {
        this.noProduct(err.message);
      } else {
        this.setStatus("The preview failed.");
        showError(err, { context: "Cutout preview" });
      }
    } finally {
      if (seq === this.seq) {
        this.stage.classList.remove("busy");
        this.inflight = null;
      }
    }
  }

  /** Nothing found: say so in the editor and in the page's alert region. */
  noProduct(message) {
    this.setStatus("No product found: click on the product to mark it, or drag a box around it.");
    this.noted = showError(message, { context: "Cutout" });
  }

  /** PUT the click list: the full-resolution cutout later jobs use. */
  async commit() {
    setBusy(this.commitBtn, true, "Applying…");
    try {
      const out = await put(`${API}/photos/${encodeURIComponent(this.photo.id)}/cutout`, this.body());
      this.dirty = false;
      this.saveClicks();
      this.updateStatus();
      if (out && out.confidence != null && out.confidence < 0.5) {
        // shown next to the cutout: the engine's own doubt, with its reasons
        this.statusEl.textContent = `Low cutout confidence ${out.confidence.toFixed(2)}: `
          + `${(out.reasons || []).join("; ")}. Check it, or add a box or clicks.`;
        this.statusEl.classList.add("mask-status-warn");
        announce(this.statusEl.textContent);
      } else {
        this.statusEl.classList.remove("mask-status-warn");
        announce("Cutout applied");
      }
      return out;
    } catch (err) {
      showError(err, { context: "Cutout" });
      throw err;
    } finally {
      setBusy(this.commitBtn, false);
    }
  }

  async commitIfDirty() {
    if (this.dirty) await this.commit();
  }

  async downloadCutout() {
    setBusy(this.downloadBtn, true, "Preparing…");
    try {
      await this.commitIfDirty();
      const safe = (this.productName || "product").replace(/[^\w.-]+/g, "-").replace(/^-+|-+$/g, "") || "product";
      await download(`${API}/photos/${encodeURIComponent(this.photo.id)}/cutout.png`, `${safe}-cutout.png`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 422 && this.dirty)) showError(err, { context: "Download" });
    } finally {
      setBusy(this.downloadBtn, false);
    }
  }

  // the click list of a committed cutout is kept in this browser, so a reload shows the same mask
  storageKey() {
    return `packshot.clicks.${this.photo.id}`;
  }

  saveClicks() {
    try {
      localStorage.setItem(this.storageKey(), JSON.stringify({ ...this.state, engine: this.engine }));
    } catch { /* storage full or disabled */ }
  }

  restoreClicks() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.storageKey()) || "null");
      if (saved && Array.isArray(saved.points)) {
        this.state = { points: saved.points, neg_points: saved.neg_points || [], boxes: saved.boxes || [] };
        this.engine = saved.engine || "auto";
      }
    } catch { /* ignore a corrupt entry */ }
  }

  // ---- input -------------------------------------------------------------------------------------------

  bindPointer() {
    const c = this.canvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 && e.button !== 2) return;
      c.setPointerCapture(e.pointerId);
      this.drag = { x: e.clientX, y: e.clientY, start: this.toPhoto(e.clientX, e.clientY), end: null,
                    negative: e.shiftKey || e.button === 2 || this.mode === "exclude", moved: false };
    });
    c.addEventListener("pointermove", (e) => {
      if (!this.drag) return;
      if (Math.hypot(e.clientX - this.drag.x, e.clientY - this.drag.y) > DRAG_PX) this.drag.moved = true;
      if (this.drag.moved) {
        this.drag.end = this.toPhoto(e.clientX, e.clientY);
        this.draw();
      }
    });
    const finish = (e) => {
      const d = this.drag;
      this.drag = null;
      if (!d) return;
      if (d.moved && d.end) {
        if (!this.addBox(d.start, d.end)) this.draw();
      } else if (!this.removeNear(d.start)) {
        this.addPoint(d.start, d.negative);
      }
    };
    c.addEventListener("pointerup", finish);
    c.addEventListener("pointercancel", () => {
      this.drag = null;
      this.draw();
    });
  }

  bindKeys() {
    const c = this.canvas;
    c.addEventListener("focus", () => {
      if (!this.cross) this.cross = [Math.round(this.photo.width / 2), Math.round(this.photo.height / 2)];
      this.draw();
    });
    c.addEventListener("blur", () => this.draw());
    c.addEventListener("pointerdown", () => { this.keyboard = false; });
    c.addEventListener("keydown", (e) => {
      this.keyboard = true;
      const stepCss = e.shiftKey ? 40 : 8;
      const step = Math.max(1, Math.round(stepCss / this.scale));
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (!this.cross) this.cross = [Math.round(this.photo.width / 2), Math.round(this.photo.height / 2)];
      if (moves[e.key]) {
        e.preventDefault();
        const [dx, dy] = moves[e.key];
        this.cross = [clamp(this.cross[0] + dx, 0, this.photo.width - 1), clamp(this.cross[1] + dy, 0, this.photo.height - 1)];
        this.draw();
      } else if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.addPoint([...this.cross], e.shiftKey || this.mode === "exclude");
      } else if (e.key === "-" || e.key === "_") {
        e.preventDefault();
        this.addPoint([...this.cross], true);
      } else if (e.key === "b" || e.key === "B") {
        e.preventDefault();
        if (!this.boxAnchor) {
          this.boxAnchor = [...this.cross];
          announce("Box corner set: move to the opposite corner and press B again", 2500);
          this.draw();
        } else {
          const a = this.boxAnchor;
          this.boxAnchor = null;
          if (!this.addBox(a, this.cross)) this.draw();
        }
      } else if (e.key === "Escape" && this.boxAnchor) {
        this.boxAnchor = null;
        this.draw();
      } else if (e.key === "Backspace" || e.key === "Delete" || ((e.ctrlKey || e.metaKey) && e.key === "z")) {
        e.preventDefault();
        this.undo();
      }
    });
  }

  // ---- drawing -----------------------------------------------------------------------------------------

  draw() {
    const c = this.canvas;
    const width = this.stage.clientWidth;
    if (!width) return;
    const aspect = this.photo.height / this.photo.width;
    const maxH = Math.max(240, window.innerHeight * 0.62);
    const cssW = Math.min(width, maxH / aspect);
    const cssH = cssW * aspect;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(cssW * dpr) || c.height !== Math.round(cssH * dpr)) {
      c.width = Math.round(cssW * dpr);
      c.height = Math.round(cssH * dpr);
      c.style.width = `${cssW}px`;
      c.style.height = `${cssH}px`;
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cssW, cssH);
    if (this.image) g.drawImage(this.image, 0, 0, cssW, cssH);
    if (this.overlay) {
      g.imageSmoothingEnabled = true;
      g.drawImage(this.overlay.canvas, 0, 0, cssW, cssH);
    }
    const s = cssW / this.photo.width;
    for (const b of this.state.boxes) drawBox(g, b, s, false);
    if (this.drag && this.drag.moved && this.drag.end) {
      const [a, e] = [this.drag.start, this.drag.end];
      drawBox(g, [Math.min(a[0], e[0]), Math.min(a[1], e[1]), Math.max(a[0], e[0]), Math.max(a[1], e[1])], s, true);
    }
    for (const p of this.state.points) drawPoint(g, p, s, true);
    for (const p of this.state.neg_points) drawPoint(g, p, s, false);
    if (document.activeElement === c && this.cross && (this.keyboard || c.matches(":focus-visible"))) {
      if (this.boxAnchor) {
        const [a, e] = [this.boxAnchor, this.cross];
        drawBox(g, [Math.min(a[0], e[0]), Math.min(a[1], e[1]), Math.max(a[0], e[0]), Math.max(a[1], e[1])], s, true);
      }
      drawCross(g, this.cross, s, cssW, cssH);
    }
  }
}

/**
 * Greyscale mask bitmap -> canvas at mask resolution: the product lightly tinted, the background
 * dimmed, and a bright outline along the mask's edge (pixels >= 0.5 with a neighbour < 0.5).
 */
function tintMask(bitmap) {
  const w = bitmap.width;
  const hgt = bitmap.height;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = hgt;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  g.drawImage(bitmap, 0, 0);
  const data = g.getImageData(0, 0, w, hgt);
  const px = data.data;
  const m = new Float32Array(w * hgt);
  let on = 0;
  let hash = 0x811c9dc5; // FNV-1a over the mask bytes: tells tests and tools the mask changed
  for (let i = 0, j = 0; j < m.length; i += 4, j += 1) {
    m[j] = px[i] / 255; // L mode decodes as grey: R = G = B = mask
    if (m[j] >= 0.5) on += 1;
    hash = Math.imul(hash ^ px[i], 0x01000193) >>> 0;
  }
  for (let y = 0; y < hgt; y += 1) {
    for (let x = 0; x < w; x += 1) {
      const j = y * w + x;
      const i = j * 4;
      const v = m[j];
      const inside = v >= 0.5;
      const edge = inside && ((x > 0 && m[j - 1] < 0.5) || (x < w - 1 && m[j + 1] < 0.5) ||
                              (y > 0 && m[j - w] < 0.5) || (y < hgt - 1 && m[j + w] < 0.5));
      if (edge) {
        px[i] = EDGE[0]; px[i + 1] = EDGE[1]; px[i + 2] = EDGE[2]; px[i + 3] = 255;
        continue;
      }
      px[i] = TINT[0] * v + DIM[0] * (1 - v);
      px[i + 1] = TINT[1] * v + DIM[1] * (1 - v);
      px[i + 2] = TINT[2] * v + DIM[2] * (1 - v);
      px[i + 3] = 255 * (0.22 * v + 0.55 * (1 - v));
    }
  }
  g.putImageData(data, 0, 0);
  return { canvas, coverage: on / (w * hgt), hash: hash.toString(16).padStart(8, "0") };
}

function drawPoint(g, [x, y], s, positive) {
  const cx = (x + 0.5) * s;
  const cy = (y + 0.5) * s;
  g.beginPath();
  g.arc(cx, cy, 8, 0, Math.PI * 2);
  g.fillStyle = positive ? "#16a34a" : "#dc2626";
  g.fill();
  g.lineWidth = 2;
  g.strokeStyle = "#fff";
  g.stroke();
  g.beginPath();
  g.moveTo(cx - 4, cy);
  g.lineTo(cx + 4, cy);
  if (positive) {
    g.moveTo(cx, cy - 4);
    g.lineTo(cx, cy + 4);
  }
  g.stroke();
}

function drawBox(g, [x0, y0, x1, y1], s, pending) {
  g.save();
  g.lineWidth = 2;
  g.setLineDash(pending ? [6, 4] : []);
  g.strokeStyle = "#fff";
  g.strokeRect(x0 * s, y0 * s, (x1 - x0) * s, (y1 - y0) * s);
  g.setLineDash([6, 4]);
  g.strokeStyle = "#4f46e5";
  g.strokeRect(x0 * s, y0 * s, (x1 - x0) * s, (y1 - y0) * s);
  g.restore();
}

function drawCross(g, [x, y], s, w, hgt) {
  const cx = (x + 0.5) * s;
  const cy = (y + 0.5) * s;
  g.save();
  g.strokeStyle = "rgba(250, 204, 21, 0.95)";
  g.lineWidth = 1.5;
  g.beginPath();
  g.moveTo(0, cy);
  g.lineTo(w, cy);
  g.moveTo(cx, 0);
  g.lineTo(cx, hgt);
  g.stroke();
  g.beginPath();
  g.arc(cx, cy, 10, 0, Math.PI * 2);
  g.stroke();
  g.restore();
}

function clamp(v, lo, hi) {
  return Math.max(lo, Math.min(hi, v));
}
