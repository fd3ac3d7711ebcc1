// "Own background" on the Generate tab: the seller picks a photo of their own scene; it is uploaded
// once to POST /api/v1/backgrounds and the job names it with background_id (the server decodes and
// checks it like a product photo). A file that is not an image is refused here, with one clear line.

import { API, request } from "./api.js";
import { h } from "./dom.js";

export function createBackgroundField(inputId) {
  const input = h("input", { id: inputId, name: "own-background", type: "file", accept: "image/*",
                             "aria-describedby": `${inputId}-hint`, onchange: () => { uploaded = null; } });
  const clear = h("button", { type: "button", class: "btn btn-small", onclick: () => { input.value = ""; uploaded = null; } },
    "Clear");
  const field = h("div", { class: "field span-2" },
    h("label", { for: inputId }, "Own background"),
    h("div", { class: "row" }, input, clear),
    h("p", { class: "hint", id: `${inputId}-hint` },
      "Optional: a photo of your own scene; the product is placed on it with its shadow."));
  let uploaded = null; // {file, id}: a file is uploaded once, however often you generate

  /** The background_id for the picked file (uploading it now if needed), or null when none is picked. */
  async function backgroundId() {
    const file = input.files && input.files[0];
    if (!file) return null;
    if (uploaded && uploaded.file === file) return uploaded.id;
    if (file.type && !file.type.startsWith("image/")) {
      throw new Error(`Own background: “${file.name}” is not an image (pick a JPEG, PNG or WebP photo)`);
    }
    const form = new FormData();
    form.append("photo", file, file.name);
    const bg = await request("POST", `${API}/backgrounds`, { form });
    uploaded = { file, id: bg.id };
    return bg.id;
  }

  return { field, backgroundId };
}
