// The REST client: one `request()` that turns every failure into an ApiError with a readable,
// one-line message (the API's {"detail": ...}, or "cannot reach the server"), plus the API key,
// authenticated image/blob loading, downloads and the job event stream (SSE over fetch).

export const API = "/api/v1";
const KEY_STORAGE = "packshot.apiKey";

export class ApiError extends Error {
  /** @param {string} message one line  @param {number} status HTTP status, 0 = network failure */
  constructor(message, status = 0, detail = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
  }
  get unreachable() {
    return this.status === 0;
  }
}

// ---- API key (only needed when the server is configured with keys) --------------------------------

export function getApiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* private mode: the key lives for this page only */
  }
  memoryKey = key;
}
let memoryKey = "";

function authHeaders() {
  const key = getApiKey() || memoryKey;
  return key ? { "X-API-Key": key } : {};
}

/** Listeners told when the server answers 401 (the shell shows the API-key field). */
const unauthorizedListeners = new Set();
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

// ---- requests ---------------------------------------------------------------------------------------

/** Turn a pydantic-style detail (list of {loc, msg}) or a string into one line. */
export function detailText(detail) {
  if (detail === null || detail === undefined) return "";
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => {
        if (typeof d === "string") return d;
        const loc = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return loc ? `${loc}: ${d.msg}` : d.msg || JSON.stringify(d);
      })
      .join("; ");
  }
  if (typeof detail === "object" && detail.message) return String(detail.message);
  return JSON.stringify(detail);
}

async function errorFrom(response, method, path) {
  let detail = null;
  let text = "";
  try {
    text = await response.text();
    detail = JSON.parse(text).detail;
  } catch {
    /* not JSON */
  }
  let message = detailText(detail);
  if (!message) {
    const snippet = text && text.length < 200 && !text.trimStart().startsWith("<") ? `: ${text.trim()}` : "";
    message = `${method} ${path} failed with HTTP ${response.status} ${response.statusText || ""}`.trim() + snippet;
  }
  if (response.status === 401) unauthorizedListeners.forEach((fn) => fn(message));
  return new ApiError(message, response.status, detail);
}

function networkError(err, method, path) {
  if (err && err.name === "AbortError") return err;
  return new ApiError(
    `Cannot reach the packshot server at ${location.origin} (${method} ${path}): ` +
      `${(err && err.message) || "network error"}. Is \`packshot serve\` running?`,
    0,
  );
}

/**
 * Call the API. `json` sends a JSON body; `form` sends FormData (multipart).
 * Returns parsed JSON (or null for 204), a Response when `raw` is true.
 * Throws ApiError (status 0 when the server cannot be reached) or AbortError.
 */
export async function request(method, path, { json, form, signal, raw = false, query } = {}) {
  let url = path.startsWith("/") ? path : `${API}/${path}`;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
    const s = qs.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  const headers = { Accept: "application/json", ...authHeaders() };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, signal });
  } catch (err) {
    throw networkError(err, method, url);
  }
  if (!response.ok) throw await errorFrom(response, method, url);
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const get = (path, opts) => request("GET", path, opts);
export const post = (path, json, opts = {}) => request("POST", path, { ...opts, json });
export const put = (path, json, opts = {}) => request("PUT", path, { ...opts, json });
export const del = (path, opts) => request("DELETE", path, opts);

// ---- images and downloads ------------------------------------------------------------------------

/**
 * A URL an <img> can load. Without an API key that is the URL itself (the browser caches it);
 * with a key the bytes are fetched with the header and shown through an object URL.
 */
export async function imageSrc(url) {
  if (!url) return "";
  if (!getApiKey()) return url;
  const response = await request("GET", url, { raw: true });
  return URL.createObjectURL(await response.blob());
}

/** Set img.src via imageSrc(); a failure is reported through `onError` (never a broken page). */
export function loadImage(img, url, onError) {
  imageSrc(url)
    .then((src) => {
      if (src.startsWith("blob:")) {
        const free = () => URL.revokeObjectURL(src); // decoded: the bytes are no longer needed
        img.addEventListener("load", free, { once: true });
        img.addEventListener("error", free, { once: true });
      }
      img.src = src;
    })
    .catch((err) => onError && onError(err));
}

/** Fetch `url` and save it as `filename` (works with API keys, unlike a plain link). */
export async function download(url, filename) {
  const response = await request("GET", url, { raw: true });
  const blob = await response.blob();
  const objectUrl = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = objectUrl;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(objectUrl), 10_000);
  return blob;
}

// ---- job progress ------------------------------------------------------------------------------------

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
export const isFinal = (job) => FINAL.has(job && job.status);

/**
 * Follow a job until it ends, calling onUpdate(job) on each change. Reads the SSE stream
 * (GET /jobs/{id}/events) with fetch so the API key header goes along; if the stream is not
 * available or breaks, polls GET /jobs/{id}. Resolves with the final Job; rejects on abort or
 * when the server stays unreachable.
 */
export async function followJob(jobId, onUpdate, { signal, pollMs = 700 } = {}) {
  let last = null;
  const seen = (job) => {
    last = job;
    onUpdate(job);
    return isFinal(job);
  };
  try {
    const done = await streamEvents(`${API}/jobs/${jobId}/events`, seen, signal);
    if (done) return last;
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 404 && err.status !== 405) {
      throw err;
    }
    console.info("[packshot] event stream unavailable, polling instead:", err && err.message);
  }
  // polling fallback
  let failures = 0;
  for (;;) {
    if (signal && signal.aborted) throw new DOMException("aborted", "AbortError");
    try {
      const job = await get(`${API}/jobs/${jobId}`, { signal });
      failures = 0;
      if (!last || job.status !== last.status || job.progress !== last.progress || job.message !== last.message) {
        if (seen(job)) return job;
      } else if (isFinal(job)) {
        return job;
      }
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      failures += 1;
      if (!(err instanceof ApiError && err.unreachable) || failures >= 5) throw err;
    }
    await sleep(pollMs, signal);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        reject(new DOMException("aborted", "AbortError"));
      }, { once: true });
    }
  });
}

/** Read a text/event-stream at `url` (a job's or a batch's events); `onJob(data)` returns true
 * when the data is final. Returns true once final data was seen, false if the stream ended early. */
export async function streamEvents(url, onJob, signal) {
  const response = await request("GET", url, { raw: true, signal });
  const type = response.headers.get("Content-Type") || "";
  if (!type.includes("text/event-stream") || !response.body) {
    throw new ApiError("no event stream", 405);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (!data) continue;
        let job;
        try {
          job = JSON.parse(data);
        } catch {
          continue;
        }
        if (job && job.status && onJob(job)) {
          reader.cancel().catch(() => {});
          return true;
        }
      }
    }
  } finally {
    reader.releaseLock?.();
  }
}
