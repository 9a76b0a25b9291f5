// Uploading a file from the browser straight to storage: the API makes an
// asset and presigns its upload (one PUT, or parts for a large file); the
// bytes go to the object store, never through the API server. Progress is
// reported as bytes sent. A failed upload is undone (the asset deleted, or
// its multipart upload aborted) so nothing half-written is left.

import { api } from "./lib.js";

// Parts sent at once for a multipart upload.
const partConcurrency = 3;
// Attempts per part before the upload gives up.
const partAttempts = 3;

// put sends body to a presigned URL with XMLHttpRequest (fetch reports no
// upload progress), calling onBytes with the bytes sent so far; it
// resolves with the ETag storage answers.
function put(url, body, contentType, onBytes, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    if (contentType) xhr.setRequestHeader("Content-Type", contentType);
    xhr.upload.addEventListener("progress", (e) => onBytes(e.loaded));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onBytes(body.size);
        resolve(xhr.getResponseHeader("ETag") || "");
      } else {
        reject(new Error("storage refused the upload (HTTP " + xhr.status + ")"));
      }
    });
    xhr.addEventListener("error", () => reject(new Error("the upload could not reach storage (network error, or the bucket's CORS rules do not allow this console; see docs/console.md)")));
    xhr.addEventListener("abort", () => reject(new Error("upload cancelled")));
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

// uploadFile uploads file as a new asset of the organization and resolves
// with the asset once storage holds every byte. onProgress(sent, total) is
// called as bytes go.
export async function uploadFile(file, onProgress, signal) {
  const asset = await api("POST", "/v1/assets", { filename: file.name, content_type: file.type || undefined, size_bytes: file.size });
  const assetPath = "/v1/assets/" + encodeURIComponent(asset.id);
  try {
    if (asset.upload) {
      await put(asset.upload.url, file, asset.content_type, (n) => onProgress(n, file.size), signal);
      return asset;
    }
    return await uploadParts(asset, file, onProgress, signal);
  } catch (err) {
    // Undo: no asset is left that claims bytes storage does not hold.
    const undo = asset.upload ? api("DELETE", assetPath) : api("DELETE", assetPath + "/upload");
    await undo.catch(() => {});
    throw err;
  }
}

async function uploadParts(asset, file, onProgress, signal) {
  const { part_size: size, part_count: count } = asset.multipart;
  const urls = new Map(asset.multipart.parts.map((p) => [p.part_number, p]));
  const sent = new Map();
  const report = () => onProgress([...sent.values()].reduce((a, b) => a + b, 0), file.size);
  const etags = new Array(count);
  const urlOf = async (n) => {
    if (!urls.has(n)) {
      const next = [];
      for (let k = n; k <= count && next.length < 100; k++) if (!urls.has(k)) next.push(k);
      const got = await api("POST", "/v1/assets/" + encodeURIComponent(asset.id) + "/upload/parts", { part_numbers: next });
      for (const p of got.parts) urls.set(p.part_number, p);
    }
    return urls.get(n).url;
  };
  let next = 1;
  const worker = async () => {
    while (next <= count) {
      const n = next++;
      const blob = file.slice((n - 1) * size, Math.min(n * size, file.size));
      for (let attempt = 1; ; attempt++) {
        try {
          etags[n - 1] = await put(await urlOf(n), blob, null, (b) => { sent.set(n, b); report(); }, signal);
          break;
        } catch (err) {
          sent.set(n, 0);
          if (attempt >= partAttempts || (signal && signal.aborted)) throw err;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(partConcurrency, count) }, worker));
  if (etags.some((e) => !e)) throw new Error("storage answered a part without an ETag: the bucket's CORS rules must expose the ETag header (docs/console.md)");
  return api("POST", "/v1/assets/" + encodeURIComponent(asset.id) + "/upload/complete",
    { parts: etags.map((etag, i) => ({ part_number: i + 1, etag })) });
}
