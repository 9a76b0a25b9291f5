// Uploading a file from the browser straight to storage: the API makes an
// asset and presigns its upload (one PUT, or parts for a large file); the
// bytes go to the object store, never through the API server. Progress is
// reported as bytes sent. A failed or cancelled upload is undone (the
// asset deleted, which also aborts its multipart upload) so nothing
// half-written is left.

import { api } from "./lib.js";

// Parts sent at once for a multipart upload.
const partConcurrency = 3;
// Attempts per part before the upload gives up, and the pause before a
// second and a third (a part's URL is presigned again after a 403: it may
// have outlived its signature).
const partAttempts = 3;
const retryPauseMs = 1000;

// put sends body to a presigned URL with XMLHttpRequest (fetch reports no
// upload progress), calling onBytes with the bytes sent so far; it
// resolves with the ETag storage answers. A rejection carries the HTTP
// status (0: storage not reached).
function put(url, body, contentType, onBytes, signal) {
  return new Promise((resolve, reject) => {
    const fail = (message, status) => { const e = new Error(message); e.status = status; reject(e); };
    if (signal.aborted) { fail("upload cancelled", 0); return; }
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    if (contentType) xhr.setRequestHeader("Content-Type", contentType);
    xhr.upload.addEventListener("progress", (e) => onBytes(e.loaded));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onBytes(body.size);
        resolve(xhr.getResponseHeader("ETag") || "");
      } else {
        fail("storage refused the upload (HTTP " + xhr.status + ")", xhr.status);
      }
    });
    xhr.addEventListener("error", () => fail("the upload could not reach storage (network error, or the bucket's CORS rules do not allow this console; see docs/console.md)", 0));
    xhr.addEventListener("abort", () => fail("upload cancelled", 0));
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

// uploadFile uploads file as a new asset of the organization and resolves
// with the asset once storage holds every byte. onProgress(sent, total) is
// called as bytes go; aborting signal cancels the upload.
export async function uploadFile(file, onProgress, signal) {
  const asset = await api("POST", "/v1/assets", { filename: file.name, content_type: file.type || undefined, size_bytes: file.size });
  const assetPath = "/v1/assets/" + encodeURIComponent(asset.id);
  // One failed part stops the others: they share this signal.
  const stop = new AbortController();
  const cancel = () => stop.abort();
  signal.addEventListener("abort", cancel, { once: true });
  try {
    if (asset.upload) {
      await put(asset.upload.url, file, asset.content_type, (n) => onProgress(n, file.size), stop.signal);
      return asset;
    }
    return await uploadParts(asset, assetPath, file, onProgress, stop);
  } catch (err) {
    stop.abort();
    // Undo: no asset is left that claims bytes storage does not hold.
    await api("DELETE", assetPath).catch(() => {});
    throw err;
  } finally {
    signal.removeEventListener("abort", cancel);
  }
}

async function uploadParts(asset, assetPath, file, onProgress, stop) {
  const { part_size: size, part_count: count } = asset.multipart;
  const urls = new Map(asset.multipart.parts.map((p) => [p.part_number, Promise.resolve(p.url)]));
  const sent = new Map();
  const report = () => onProgress([...sent.values()].reduce((a, b) => a + b, 0), file.size);
  const etags = new Array(count);
  // urlOf presigns the parts from n on (up to 100) the first time one of
  // them is needed; concurrent parts wait for the same answer.
  const urlOf = (n) => {
    if (!urls.has(n)) {
      const next = [];
      for (let k = n; k <= count && next.length < 100; k++) if (!urls.has(k)) next.push(k);
      const batch = api("POST", assetPath + "/upload/parts", { part_numbers: next });
      for (const k of next) urls.set(k, batch.then((got) => got.parts.find((p) => p.part_number === k).url));
    }
    return urls.get(n);
  };
  let next = 1;
  const worker = async () => {
    while (next <= count && !stop.signal.aborted) {
      const n = next++;
      const blob = file.slice((n - 1) * size, Math.min(n * size, file.size));
      for (let attempt = 1; ; attempt++) {
        try {
          etags[n - 1] = await put(await urlOf(n), blob, null, (b) => { sent.set(n, b); report(); }, stop.signal);
          break;
        } catch (err) {
          sent.set(n, 0);
          if (attempt >= partAttempts || stop.signal.aborted) throw err;
          if (err.status === 403) urls.delete(n); // presign it again
          await new Promise((r) => setTimeout(r, retryPauseMs * attempt));
        }
      }
    }
  };
  let first = null; // the part failure that stopped the others
  await Promise.allSettled(Array.from({ length: Math.min(partConcurrency, count) }, () => worker().catch((err) => {
    first = first || err;
    stop.abort();
  })));
  if (first) throw first;
  if (stop.signal.aborted) throw new Error("upload cancelled");
  if (etags.some((e) => !e)) throw new Error("storage answered a part without an ETag: the bucket's CORS rules must expose the ETag header (docs/console.md)");
  return api("POST", assetPath + "/upload/complete", { parts: etags.map((etag, i) => ({ part_number: i + 1, etag })) });
}
