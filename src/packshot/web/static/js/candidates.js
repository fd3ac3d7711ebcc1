// One result card, used by the Generate grid and by History: the image (alt text starts with
// "Candidate"), its scores, a 1-5 star rating (native radios: arrow keys work), save, downloads
// as PNG / JPEG / WebP, variations and (in History) delete.

import { API, del, download, loadImage, put } from "./api.js";
import { announce, fmtScore, formatDate, h, headlineScore, icon, nextId, setBusy, showError } from "./dom.js";

const FORMATS = [
  ["png", "PNG"],
  ["jpeg", "JPEG"],
  ["webp", "WebP"],
];

/** The number shown for a result: its position in the grid, else its rank (1 = best). */
function number(result, index) {
  if (Number.isInteger(index)) return index + 1;
  return Number.isInteger(result.rank) ? (result.rank >= 1 ? result.rank : result.rank + 1) : 1;
}

/** "Upscaled 2.3×" when the product was enlarged more than 1.5x from the photo (soft at 100 %). */
function upscaleBadge(params) {
  const up = Number((params || {}).Upscale);
  if (!(up > 1.5)) return null;
  return h("span", { class: "chip chip-warn", title: "The product was enlarged from the photo and will look soft at 100 %. Use a larger photo, or cap it with max_upscale." },
    `Upscaled ${up.toFixed(1)}×`);
}

/** Scene words only a generative engine can draw: said, never silently swapped. */
function generativeNote(params) {
  const words = (params || {})["Needs generative engine"];
  if (!words) return null;
  return h("p", { class: "result-note small", role: "note" },
    `“${words}” needs a generative engine: the studio engine drew a studio scene instead. `
    + "Choose the diffusion engine (needs model weights) or use your own background photo.");
}

export function candidateAlt(result, index) {
  const score = headlineScore(result.scores);
  return `Candidate ${number(result, index)}, seed ${result.seed}, score ${fmtScore(score)}`;
}

/**
 * @param {object} result  the API's Result
 * @param {{index?: number, productName?: string, onVariations?: Function, onDelete?: Function,
 *          onChange?: Function, showPrompt?: boolean}} opts
 */
export function resultCard(result, opts = {}) {
  const n = number(result, opts.index);
  const label = `candidate ${n}`;
  const img = h("img", { alt: candidateAlt(result, opts.index), loading: "lazy",
                         width: result.width || null, height: result.height || null });
  const frame = h("div", { class: "result-image" }, img);
  loadImage(img, result.image_url || `${API}/results/${result.id}/image`, (err) => {
    frame.classList.add("broken");
    showError(err, { context: `Image of ${label}` });
  });

  const score = headlineScore(result.scores);
  const numericScores = Object.entries(result.scores || {}).filter(([, v]) => typeof v === "number");
  const scoreDetails = numericScores.map(([k, v]) => `${k.replace(/_/g, " ")} ${fmtScore(v)}`).join(" · ");

  // ---- rating
  const ratingName = nextId("rating");
  const stars = [];
  const legendId = nextId("legend");
  const rating = h("fieldset", { class: "stars", "aria-labelledby": legendId },
    h("legend", { id: legendId, class: "visually-hidden" }, `Rating of ${label}`),
    [1, 2, 3, 4, 5].map((value) => {
      const input = h("input", { type: "radio", name: ratingName, value: String(value),
                                 checked: result.rating === value,
                                 onchange: () => rate(value) });
      stars.push(input);
      return h("label", { class: "star", title: `${value} star${value > 1 ? "s" : ""}` },
        input,
        h("span", { "aria-hidden": "true" }, "★"),
        h("span", { class: "visually-hidden" }, `${value} star${value > 1 ? "s" : ""}`));
    }));
  const paintStars = () => {
    rating.dataset.value = String(result.rating || 0);
    stars.forEach((s, i) => s.parentElement.classList.toggle("on", (result.rating || 0) > i));
  };
  paintStars();

  async function rate(value) {
    const before = result.rating;
    result.rating = value;
    paintStars();
    try {
      Object.assign(result, await put(`${API}/results/${result.id}/rating`, { stars: value }));
      paintStars();
      announce(`Rated ${label}: ${value} star${value > 1 ? "s" : ""}`);
      opts.onChange && opts.onChange(result);
    } catch (err) {
      result.rating = before;
      stars.forEach((s) => { s.checked = Number(s.value) === before; });
      paintStars();
      showError(err, { context: "Rating" });
    }
  }

  // ---- save
  const saveBtn = h("button", { type: "button", class: "btn btn-small save-toggle", "aria-pressed": String(!!result.saved),
                                "aria-label": `Save ${label}`, onclick: toggleSave },
    icon("heart", 15), h("span", { class: "save-text" }));
  const paintSave = () => {
    saveBtn.setAttribute("aria-pressed", String(!!result.saved));
    saveBtn.querySelector(".save-text").textContent = result.saved ? "Saved" : "Save";
  };
  paintSave();
  async function toggleSave() {
    const want = !result.saved;
    setBusy(saveBtn, true);
    try {
      Object.assign(result, await put(`${API}/results/${result.id}/saved`, { saved: want }));
      announce(want ? `Saved ${label}` : `Removed ${label} from saved`);
      opts.onChange && opts.onChange(result);
    } catch (err) {
      showError(err, { context: "Save" });
    } finally {
      setBusy(saveBtn, false);
      paintSave();
    }
  }

  // ---- downloads
  const base = `${(opts.productName || "packshot").replace(/[^\w.-]+/g, "-")}-seed${result.seed}`;
  const downloads = h("div", { class: "downloads", role: "group", "aria-label": `Download ${label}` },
    h("span", { class: "muted small download-label", "aria-hidden": "true" }, icon("download", 14), "Download"),
    FORMATS.map(([fmt, name]) => {
      const b = h("button", { type: "button", class: "btn btn-small btn-quiet", "aria-label": `Download ${label} as ${name}`,
        async onclick() {
          setBusy(b, true);
          try {
            await download(`${API}/results/${result.id}/image?format=${fmt}`, `${base}.${fmt === "jpeg" ? "jpg" : fmt}`);
          } catch (err) {
            showError(err, { context: "Download" });
          } finally {
            setBusy(b, false);
          }
        } }, name);
      return b;
    }));

  const actions = h("div", { class: "result-actions" }, saveBtn,
    opts.onVariations
      ? h("button", { type: "button", class: "btn btn-small", "aria-label": `Variations of ${label}`,
                      title: `A new batch with this prompt and settings, seeds from ${result.seed + 100}`,
                      onclick: () => opts.onVariations(result) }, "Variations")
      : null,
    opts.onDelete
      ? h("button", { type: "button", class: "btn btn-small btn-quiet danger push-right", "aria-label": `Delete ${label}`,
                      title: "Delete",
          async onclick(event) {
            if (!confirm("Delete this result? Its image is removed for good.")) return;
            const b = event.currentTarget;
            setBusy(b, true);
            try {
              await del(`${API}/results/${result.id}`);
              announce(`Deleted ${label}`);
              opts.onDelete(result, card);
            } catch (err) {
              showError(err, { context: "Delete" });
              setBusy(b, false);
            }
          } }, icon("trash", 16))
      : null);

  const card = h("li", { class: "result-card", "data-result-id": result.id, "data-seed": String(result.seed) },
    frame,
    h("div", { class: "result-body" },
      h("div", { class: "result-head" },
        h("span", { class: "result-title" }, `#${n}`),
        h("span", { class: "chip", title: scoreDetails || "no scores" }, `score ${fmtScore(score)}`),
        h("span", { class: "muted small" }, `seed ${result.seed}`),
        result.engine ? h("span", { class: "muted small" }, result.engine) : null,
        upscaleBadge(result.parameters)),
      generativeNote(result.parameters),
      opts.showPrompt
        ? h("p", { class: "result-prompt", title: result.prompt }, result.prompt || h("em", {}, "(no prompt)"))
        : null,
      opts.showPrompt ? h("p", { class: "muted small" }, formatDate(result.created_at)) : null,
      numericScores.length > 1
        ? h("details", { class: "scores small" },
            h("summary", {}, "All scores"),
            h("dl", {}, numericScores.map(([k, v]) => [h("dt", {}, k.replace(/_/g, " ")), h("dd", {}, fmtScore(v))])))
        : null,
      rating,
      actions,
      downloads));
  return card;
}
