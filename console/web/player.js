// MpegFlow console player: plays a finished job's DASH manifest or fMP4
// (CMAF) HLS playlist with Media Source Extensions, for browsers that do
// not play them natively. It reads static manifests only: SegmentTemplate
// (with SegmentTimeline or a fixed duration) in one DASH Period, and HLS
// media playlists with an EXT-X-MAP init segment. MPEG-TS segments,
// encryption, byte ranges and live manifests are refused with a sentence
// saying so (Unplayable), never played badly.
//
// Every failure is reported in words through the say callback or a
// rejected promise; nothing here throws into the page.

const AHEAD = 15; // seconds fetched ahead of the playhead
const BEHIND = 30; // seconds kept behind it

// Unplayable says, in words for the page, why an output cannot be played
// by this player in this browser.
export class Unplayable extends Error {}

// open reads the manifest at url (a .mpd is DASH, anything else HLS),
// picks what this browser decodes, and plays it in video through a
// MediaSource. It resolves to the Session once the manifest is understood;
// later failures are told through say(message).
export async function open(video, url, say) {
  url = new URL(url, location.href).href;
  const text = await get(url, "text");
  const pres = /\.mpd$/i.test(new URL(url, location.href).pathname) ? parseMPD(text, url) : await parseHLS(text, url);
  const decodable = (r) => MediaSource.isTypeSupported(typeOf(r));
  const variants = pres.video.filter(decodable).sort((a, b) => a.width - b.width || a.bandwidth - b.bandwidth);
  if (!variants.length) {
    throw new Unplayable("This browser cannot decode the output's video (" + [...new Set(pres.video.map(typeOf))].join(", ") + ").");
  }
  let audio = pres.audio.filter(decodable).sort((a, b) => b.bandwidth - a.bandwidth)[0] || null;
  if (pres.audio.length && !audio) say("This browser cannot decode the output's audio; playing without sound.");
  return new Session(video, pres.duration, variants, audio, say);
}

function typeOf(r) {
  return r.mime + '; codecs="' + r.codecs + '"';
}

function nameOf(url) {
  return decodeURIComponent(new URL(url, location.href).pathname.split("/").pop());
}

// get fetches url as "text" or "bytes"; null when signal aborted it.
async function get(url, as, signal) {
  let res;
  try {
    res = await fetch(url, { credentials: "same-origin", signal });
    if (res.ok) return as === "text" ? await res.text() : await res.arrayBuffer();
  } catch (err) {
    if (signal && signal.aborted) return null;
    throw new Error("Could not load " + nameOf(url) + ": " + err.message);
  }
  throw new Error("Could not load " + nameOf(url) + " (HTTP " + res.status + ").");
}

// --- DASH -----------------------------------------------------------------

function kids(node, name) {
  return [...node.children].filter((c) => c.localName === name);
}

// baseOf resolves node's BaseURL, if any, against base.
function baseOf(node, base) {
  const b = kids(node, "BaseURL")[0];
  return b ? new URL(b.textContent.trim(), base).href : base;
}

// seconds reads an ISO 8601 duration such as PT1M2.5S; null when absent.
function seconds(iso) {
  const m = /^P(?:([\d.]+)D)?(?:T(?:([\d.]+)H)?(?:([\d.]+)M)?(?:([\d.]+)S)?)?$/.exec((iso || "").trim());
  if (!m) return null;
  const [d, h, min, s] = m.slice(1).map((v) => Number(v || 0));
  return ((d * 24 + h) * 60 + min) * 60 + s;
}

function parseMPD(text, url) {
  const doc = new DOMParser().parseFromString(text, "application/xml");
  const mpd = doc.documentElement;
  if (!mpd || mpd.localName !== "MPD" || doc.getElementsByTagName("parsererror").length) {
    throw new Unplayable("The DASH manifest is not a valid MPD.");
  }
  if (mpd.getAttribute("type") === "dynamic") throw new Unplayable("This is a live DASH manifest; the console plays finished outputs.");
  const periods = kids(mpd, "Period");
  if (periods.length !== 1) throw new Unplayable("The DASH manifest has " + periods.length + " periods; the console's player plays one.");
  const period = periods[0];
  const duration = seconds(period.getAttribute("duration")) || seconds(mpd.getAttribute("mediaPresentationDuration"));
  if (!duration) throw new Unplayable("The DASH manifest gives no duration.");
  const base = baseOf(period, baseOf(mpd, url));
  const pres = { duration, video: [], audio: [] };
  let audioSet = false;
  for (const set of kids(period, "AdaptationSet")) {
    const reps = kids(set, "Representation");
    const kind = set.getAttribute("contentType") ||
      (set.getAttribute("mimeType") || (reps[0] && reps[0].getAttribute("mimeType")) || "").split("/")[0];
    if (kind !== "video" && (kind !== "audio" || audioSet)) continue; // text, images, a second language
    if (kids(set, "ContentProtection").length || reps.some((r) => kids(r, "ContentProtection").length)) {
      throw new Unplayable("This output is encrypted; the console's player does not play encrypted media.");
    }
    const setBase = baseOf(set, base);
    for (const rep of reps) pres[kind].push(representation(period, set, rep, setBase, duration));
    if (kind === "audio") audioSet = true;
  }
  if (!pres.video.length) throw new Unplayable("The DASH manifest has no video.");
  return pres;
}

// representation lists one Representation's init and media segments from
// its SegmentTemplate, whose attributes it inherits from the adaptation set
// and the period.
function representation(period, set, rep, base, duration) {
  const attr = (n) => rep.getAttribute(n) || set.getAttribute(n) || "";
  const templates = [rep, set, period].map((n) => kids(n, "SegmentTemplate")[0]).filter(Boolean);
  if (!templates.length) throw new Unplayable("The DASH manifest addresses segments in a way the console's player does not read (it reads SegmentTemplate).");
  const tget = (n) => { const t = templates.find((x) => x.hasAttribute(n)); return t ? t.getAttribute(n) : null; };
  const timeline = templates.map((t) => kids(t, "SegmentTimeline")[0]).find(Boolean);
  const timescale = Number(tget("timescale") || 1);
  const offset = Number(tget("presentationTimeOffset") || 0);
  const first = Number(tget("startNumber") || 1);
  const media = tget("media");
  const repBase = baseOf(rep, base);
  const vars = { RepresentationID: rep.getAttribute("id") || "", Bandwidth: rep.getAttribute("bandwidth") || "" };
  const fill = (template, number, time) => new URL(template.replace(/\$(RepresentationID|Number|Time|Bandwidth)(?:%0(\d+)d)?\$|\$\$/g,
    (all, name, width) => {
      if (!name) return "$";
      const v = String(name === "Number" ? number : name === "Time" ? time : vars[name]);
      return width ? v.padStart(Number(width), "0") : v;
    }), repBase).href;
  if (!media || !tget("initialization")) throw new Unplayable("The DASH manifest's SegmentTemplate names no initialization or media segments.");
  const segments = [];
  const add = (number, time, d) => segments.push({ url: fill(media, number, time), start: (time - offset) / timescale, end: (time + d - offset) / timescale });
  if (timeline) {
    const ss = kids(timeline, "S");
    let t = 0;
    let n = first;
    ss.forEach((s, k) => {
      if (s.hasAttribute("t")) t = Number(s.getAttribute("t"));
      const d = Number(s.getAttribute("d"));
      let r = Number(s.getAttribute("r") || 0);
      if (r < 0) { // repeat to the next S's start or the period's end
        const next = ss[k + 1] && ss[k + 1].getAttribute("t");
        r = Math.ceil(((next !== null && next !== undefined ? Number(next) : offset + duration * timescale) - t) / d) - 1;
      }
      if (!(d > 0) || r > 1e5) throw new Unplayable("The DASH manifest's SegmentTimeline is not one the console's player reads.");
      for (let i = 0; i <= r; i++, n++, t += d) add(n, t, d);
    });
  } else if (Number(tget("duration")) > 0) {
    const d = Number(tget("duration"));
    const count = Math.ceil((duration * timescale) / d - 1e-6);
    for (let i = 0; i < count; i++) add(first + i, offset + i * d, d);
  } else {
    throw new Unplayable("The DASH manifest's SegmentTemplate has neither a SegmentTimeline nor a duration.");
  }
  return {
    label: rep.getAttribute("height") ? rep.getAttribute("height") + "p" : rep.getAttribute("id"),
    width: Number(attr("width") || 0), height: Number(attr("height") || 0), bandwidth: Number(rep.getAttribute("bandwidth") || 0),
    mime: attr("mimeType"), codecs: attr("codecs"), init: fill(tget("initialization"), first, 0), segments,
  };
}

// --- HLS ------------------------------------------------------------------

// attributes reads an HLS attribute list (KEY=value,KEY="quoted, value").
function attributes(line) {
  const out = {};
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
  for (const [, k, v] of line.slice(line.indexOf(":") + 1).matchAll(re)) out[k] = v.startsWith('"') ? v.slice(1, -1) : v;
  return out;
}

function lines(text, what) {
  const ls = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (ls[0] !== "#EXTM3U") throw new Unplayable("The " + what + " is not an HLS playlist.");
  return ls;
}

const audioCodec = /^(mp4a|opus|ac-3|ec-3|flac|fLaC|mp3|alac|dts)/i;

async function parseHLS(text, url) {
  const ls = lines(text, "HLS playlist");
  if (!ls.some((l) => l.startsWith("#EXT-X-STREAM-INF:"))) {
    throw new Unplayable("The HLS playlist is not a master playlist naming its codecs.");
  }
  const renditions = ls.filter((l) => l.startsWith("#EXT-X-MEDIA:")).map(attributes).filter((m) => m.TYPE === "AUDIO");
  const variants = [];
  ls.forEach((l, i) => {
    if (!l.startsWith("#EXT-X-STREAM-INF:")) return;
    const uri = ls.slice(i + 1).find((x) => !x.startsWith("#"));
    if (uri) variants.push({ a: attributes(l), url: new URL(uri, url).href });
  });
  if (!variants.length) throw new Unplayable("The HLS master playlist names no variant playlist.");
  const codecs = (v) => (v.a.CODECS || "").split(",").map((c) => c.trim()).filter(Boolean);
  // The first variant's audio group, its default rendition: a separate
  // audio track, unless it has no URI (the audio is in the video's segments).
  const group = renditions.filter((m) => m["GROUP-ID"] === variants[0].a.AUDIO);
  const alt = group.find((m) => m.DEFAULT === "YES") || group[0];
  const separate = Boolean(alt && alt.URI);
  const media = async (playlist) => parseMediaPlaylist(await get(playlist, "text"), playlist);
  const pres = { duration: 0, video: [], audio: [] };
  await Promise.all(variants.map(async (v) => {
    const [w, h] = (v.a.RESOLUTION || "0x0").split("x").map(Number);
    const cs = codecs(v);
    const pl = await media(v.url);
    pres.duration = Math.max(pres.duration, pl.duration);
    pres.video.push({ label: h ? h + "p" : nameOf(v.url), width: w, height: h, bandwidth: Number(v.a.BANDWIDTH || 0), mime: "video/mp4",
      codecs: (separate ? cs.filter((c) => !audioCodec.test(c)) : cs).join(","), ...pl });
  }));
  if (variants.some((v) => !codecs(v).length)) throw new Unplayable("The HLS master playlist does not name its codecs (CODECS).");
  if (separate) {
    const pl = await media(new URL(alt.URI, url).href);
    const cs = codecs(variants[0]).filter((c) => audioCodec.test(c));
    if (cs.length) pres.audio.push({ label: alt.NAME || "audio", bandwidth: 0, mime: "audio/mp4", codecs: cs.join(","), ...pl });
  }
  return pres;
}

function parseMediaPlaylist(text, url) {
  let init = null;
  let at = 0;
  let length = 0;
  const segments = [];
  for (const l of lines(text, "media playlist " + nameOf(url))) {
    if (l.startsWith("#EXT-X-MAP:")) {
      const a = attributes(l);
      if (a.BYTERANGE) throw new Unplayable("The HLS output uses byte ranges, which the console's player does not read.");
      init = new URL(a.URI, url).href;
    } else if (l.startsWith("#EXT-X-KEY:") && attributes(l).METHOD !== "NONE") {
      throw new Unplayable("This output is encrypted; the console's player does not play encrypted media.");
    } else if (l.startsWith("#EXT-X-BYTERANGE")) {
      throw new Unplayable("The HLS output uses byte ranges, which the console's player does not read.");
    } else if (l.startsWith("#EXTINF:")) {
      length = parseFloat(l.slice(8));
    } else if (!l.startsWith("#")) {
      segments.push({ url: new URL(l, url).href, start: at, end: at + length });
      at += length;
    }
  }
  if (!init) throw new Unplayable("This HLS output is MPEG-TS: the console's player plays fMP4 segments and does not convert MPEG-TS.");
  return { init, segments, duration: at };
}

// --- Playback ---------------------------------------------------------------

// op runs one SourceBuffer operation (append or remove) to its end.
function op(sb, start) {
  return new Promise((resolve, reject) => {
    const done = (err) => {
      sb.removeEventListener("updateend", ok);
      sb.removeEventListener("error", bad);
      if (err) reject(err); else resolve();
    };
    const ok = () => done();
    const bad = () => done(new Error("The browser could not decode the media."));
    sb.addEventListener("updateend", ok);
    sb.addEventListener("error", bad);
    try { start(); } catch (err) { done(err); }
  });
}

// indexAt is the segment of variant that holds time t (the last one past
// its end).
function indexAt(variant, t) {
  const i = variant.segments.findIndex((s) => s.end > t + 0.01);
  return i < 0 ? variant.segments.length : i;
}

// Session plays one presentation through a MediaSource: a SourceBuffer for
// the video (one variant at a time) and one for the audio, each fed in
// order up to AHEAD seconds past the playhead.
class Session {
  constructor(video, duration, variants, audio, say) {
    this.video = video;
    this.variants = variants;
    this.say = say;
    this.closed = false;
    this.tracks = [];
    this.first = this.fitting();
    this.ms = new MediaSource();
    const url = URL.createObjectURL(this.ms);
    this.ms.addEventListener("sourceopen", () => {
      URL.revokeObjectURL(url);
      try {
        this.tracks.push(this.track(this.first));
        if (audio) this.tracks.push(this.track(audio));
        this.ms.duration = duration;
      } catch (err) {
        this.fail(err);
        return;
      }
      video.addEventListener("seeking", () => { for (const t of this.tracks) this.restart(t, null); });
      for (const ev of ["timeupdate", "waiting", "playing"]) video.addEventListener(ev, () => this.kick());
      this.kick();
    }, { once: true });
    video.src = url;
  }

  // fitting is the widest variant no wider than the player's pixels (the
  // narrowest when none is).
  fitting() {
    const room = (this.video.clientWidth || 640) * (window.devicePixelRatio || 1);
    return this.variants.filter((v) => v.width <= room).pop() || this.variants[0];
  }

  // current is the video variant playing, or chosen to play next.
  get current() {
    return this.tracks[0] ? this.tracks[0].want || this.tracks[0].variant : this.first;
  }

  track(variant) {
    return { variant, type: typeOf(variant), sb: this.ms.addSourceBuffer(typeOf(variant)), init: null, next: 0, gen: 0,
      ctrl: new AbortController(), busy: false, reposition: true, want: null };
  }

  // choose switches the video to variant from the segment after the one
  // playing.
  choose(variant) {
    if (this.tracks[0]) this.restart(this.tracks[0], variant);
  }

  // restart abandons a track's fetch in flight and has its feeder find its
  // place again (after a seek), on variant when one is given.
  restart(t, variant) {
    t.gen++;
    t.ctrl.abort();
    t.ctrl = new AbortController();
    t.reposition = true;
    if (variant) t.want = variant;
    this.kick();
  }

  kick() {
    if (this.closed) return;
    if (!this.video.isConnected) { this.close(); return; }
    // Step over a small gap before the first buffered frame.
    const b = this.video.buffered;
    if (b.length && this.video.currentTime < b.start(0) && b.start(0) - this.video.currentTime < 1) this.video.currentTime = b.start(0);
    for (const t of this.tracks) this.feed(t);
  }

  // feed appends a track's init segment and media segments in order while
  // they start less than AHEAD seconds past the playhead.
  async feed(t) {
    if (t.busy || this.closed) return;
    t.busy = true;
    try {
      while (!this.closed) {
        if (!this.video.isConnected) { this.close(); break; } // the page moved on
        const gen = t.gen;
        const now = this.video.currentTime;
        if (t.reposition) {
          t.reposition = false;
          await this.reposition(t, now);
          continue;
        }
        const v = t.variant;
        if (t.init !== v) {
          const data = await get(v.init, "bytes", t.ctrl.signal);
          if (gen !== t.gen) continue;
          await op(t.sb, () => t.sb.appendBuffer(data));
          t.init = v;
          continue;
        }
        const seg = v.segments[t.next];
        if (!seg || seg.start > now + AHEAD) break;
        const data = await get(seg.url, "bytes", t.ctrl.signal);
        if (gen !== t.gen) continue;
        const b = t.sb.buffered;
        if (b.length && b.start(0) < now - BEHIND) await op(t.sb, () => t.sb.remove(0, now - BEHIND));
        try {
          await op(t.sb, () => t.sb.appendBuffer(data));
        } catch (err) {
          if (err.name !== "QuotaExceededError") throw err;
          await op(t.sb, () => t.sb.remove(0, Math.max(0.1, now - 2)));
          break; // the next kick tries again
        }
        if (gen === t.gen) t.next++;
      }
    } catch (err) {
      this.fail(err);
    } finally {
      t.busy = false;
    }
    this.end();
  }

  // reposition points a track at the first segment it lacks at time now:
  // after the buffered range that holds now, or the one that holds now. On
  // a variant change it drops what is buffered past the playing segment.
  async reposition(t, now) {
    if (t.want) {
      const v = t.want;
      t.want = null;
      if (typeOf(v) !== t.type && t.sb.changeType) t.sb.changeType(typeOf(v));
      t.type = typeOf(v);
      t.variant = v;
      const k = indexAt(v, now);
      if (k < v.segments.length && v.segments[k].end < this.ms.duration) await op(t.sb, () => t.sb.remove(v.segments[k].end, this.ms.duration));
    }
    const b = t.sb.buffered;
    let at = now;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= now + 0.1 && b.end(i) > now) at = b.end(i);
    t.next = indexAt(t.variant, at === now ? now : at - 0.05) + (at === now ? 0 : 1);
    if (t.next > t.variant.segments.length) t.next = t.variant.segments.length;
  }

  // end ends the stream once every track has appended its last segment.
  end() {
    if (this.closed || this.ms.readyState !== "open") return;
    if (this.tracks.every((t) => !t.busy && !t.sb.updating && !t.reposition && t.init === t.variant && t.next >= t.variant.segments.length)) {
      try { this.ms.endOfStream(); } catch { /* a seek reopened it; the feeders end it again */ }
    }
  }

  fail(err) {
    this.say("Playback stopped: " + (err && err.message ? err.message : String(err)));
    this.close();
  }

  close() {
    this.closed = true;
    for (const t of this.tracks) t.ctrl.abort();
  }
}
