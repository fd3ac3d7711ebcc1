// Home: the product gallery, and a drop zone that creates a product from one or more photos.

import { API, del, loadImage, request, get } from "./api.js";
import { announce, clearError, h, icon, mountInto, setBusy, showError } from "./dom.js";

const ACCEPT = "image/jpeg,image/png,image/webp,image/tiff,image/bmp,image/heic,image/*";

export async function renderHome(view) {
  const gallery = h("ul", { class: "gallery", "aria-label": "Products" });
  const count = h("span", { class: "muted" });
  const nameInput = h("input", { id: "product-name", name: "name", type: "text", autocomplete: "off",
                                 placeholder: "e.g. Red mug (optional)", maxlength: "200" });
  const fileInput = h("input", { id: "product-photo", name: "photo", type: "file", multiple: true,
                                 accept: ACCEPT, class: "visually-hidden-file",
                                 "aria-describedby": "drop-help" });
  const progress = h("p", { class: "upload-progress", hidden: true, "aria-live": "polite" });

  const drop = h("div", { class: "dropzone", "data-testid": "dropzone" },
    h("div", { class: "dropzone-icon", "aria-hidden": "true" }, icon("upload", 22)),
    h("p", { class: "dropzone-title" }, "Drop product photos here"),
    h("p", { id: "drop-help", class: "muted" },
      "JPEG, PNG or WebP. Several photos of the same product become one product."),
    h("label", { for: "product-photo", class: "btn btn-primary" }, "Product photo"),
    fileInput,
    progress);

  async function create(files) {
    files = [...files];
    if (!files.length) return;
    clearError();
    const form = new FormData();
    const name = nameInput.value.trim() || files[0].name.replace(/\.[^.]+$/, "") || "Product";
    form.append("name", name);
    for (const f of files) form.append("photo", f, f.name);
    progress.hidden = false;
    progress.textContent = `Uploading ${files.length} photo${files.length > 1 ? "s" : ""}…`;
    drop.classList.add("busy");
    try {
      const product = await request("POST", `${API}/products`, { form });
      announce(`Created “${product.name}”`);
      location.hash = `#/product/${encodeURIComponent(product.id)}/generate`;
    } catch (err) {
      showError(err, { context: "Upload failed" });
      progress.textContent = "Upload failed. Try another photo.";
    } finally {
      drop.classList.remove("busy");
      fileInput.value = "";
    }
  }

  fileInput.addEventListener("change", () => create(fileInput.files));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "dragend"]) {
    drop.addEventListener(type, () => drop.classList.remove("dragging"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    create(event.dataTransfer.files);
  });

  mountInto(view,
    h("section", { class: "page-head" },
      h("div", {},
        h("h1", {}, "Products"),
        h("p", { class: "muted" }, "Cut a product out of a photo and place it in a new scene described in words.")),
      count),
    h("section", { class: "card create-card", "aria-labelledby": "create-title" },
      h("h2", { id: "create-title" }, "New product"),
      h("div", { class: "field" }, h("label", { for: "product-name" }, "Product name"), nameInput),
      drop),
    gallery);

  async function load() {
    mountInto(gallery, h("li", { class: "loading" }, "Loading products…"));
    let data;
    try {
      data = await get(`${API}/products`);
    } catch (err) {
      showError(err, { context: "Could not load products" });
      mountInto(gallery, h("li", { class: "empty" },
        "Products could not be loaded. ",
        h("button", { type: "button", class: "btn btn-small", onclick: load }, "Retry")));
      return;
    }
    const items = data.items || [];
    count.textContent = `${items.length} product${items.length === 1 ? "" : "s"}`;
    if (!items.length) {
      mountInto(gallery, h("li", { class: "empty" }, "No products yet: drop a photo above to start."));
      return;
    }
    mountInto(gallery, items.map((p) => productCard(p, load)));
  }
  await load();
  return { cleanup() {} };
}

function productCard(product, reload) {
  const img = h("img", { alt: "", loading: "lazy" });
  const cover = product.cover_url || (product.photos && product.photos[0] && product.photos[0].image_url);
  if (cover) loadImage(img, cover, () => img.classList.add("broken"));
  const photos = (product.photos || []).length;
  const href = `#/product/${encodeURIComponent(product.id)}/generate`;
  const remove = h("button", {
    type: "button", class: "btn btn-quiet btn-small danger", "aria-label": `Delete ${product.name}`,
    async onclick() {
      if (!confirm(`Delete “${product.name}” and all its results?`)) return;
      setBusy(remove, true);
      try {
        await del(`${API}/products/${encodeURIComponent(product.id)}`);
        announce(`Deleted “${product.name}”`);
        reload();
      } catch (err) {
        showError(err, { context: "Delete failed" });
        setBusy(remove, false);
      }
    },
  }, "Delete");
  return h("li", { class: "product-card" },
    h("a", { href, class: "product-link" },
      h("div", { class: "thumb" }, img),
      h("div", { class: "product-meta" },
        h("span", { class: "product-name" }, product.name),
        h("span", { class: "muted" },
          `${photos} photo${photos === 1 ? "" : "s"} · ${product.result_count || 0} result${product.result_count === 1 ? "" : "s"}`))),
    h("div", { class: "product-actions" }, remove));
}
