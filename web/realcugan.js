// Real-CUGAN in TensorFlow.js: exact tiled inference around the exported graph model.
//
// Shared by the page (web/index.html) and the Node parity script (web/parity.mjs). The module never
// imports TensorFlow.js itself: callers pass their `tf` (the npm package in Node, the dist bundle's
// global in the browser), so both use the one copy they loaded.
//
// The graph (acg2vec_lab/models/real_cugan/tfjs_export.py) maps a padded tile `xp` (1, h, w, 3), a
// scalar `alpha` and SE means `mean0..mean3` to `feat0..feat3` (pre-SE features of SE block i, which
// need only mean0..mean{i-1}) and `out`. TF.js executes only the subgraph of the requested output.
// The loop below is acg2vec_lab/models/real_cugan/tiling.py `run_tiled(mode="exact")` line for line:
// pass i runs every tile up to SE block i and sums the part of its feature map that the tile owns
// (halo cropped; the owned parts partition the whole map), so mean_i is the whole image's mean; the
// last pass writes each tile's scale*tile output pixels. Memory: one padded input and the output at
// full size, activations of one tile at a time.

/** Reflect margin and alignment per scale (geometry.py GEOMETRY), used when meta.json lacks them. */
export const GEOMETRY = { 2: [18, 2], 3: [14, 4], 4: [19, 2] };

/** Padding of the whole image: {t, b, l, r, ph, pw} (geometry.py `padding`). */
export function padding(scale, h0, w0, margin = GEOMETRY[scale][0], multiple = GEOMETRY[scale][1]) {
  const ph = (Math.floor((h0 - 1) / multiple) + 1) * multiple;
  const pw = (Math.floor((w0 - 1) / multiple) + 1) * multiple;
  return { t: margin, b: margin + ph - h0, l: margin, r: margin + pw - w0, ph, pw };
}

/** Side of SE block i's feature map for a padded input side n (geometry.py `se_size`). */
export function seSize(scale, n, i) {
  const s0 = Math.floor((n - 4) / 2) - 4;
  if (i === 0) return s0;
  const u = scale !== 3 ? 4 * s0 - 8 : 6 * s0 - 8;
  const s1 = Math.floor((u - 4) / 2) - 4;
  if (i === 1) return s1;
  const s2 = Math.floor(s1 / 2) - 4;
  return i === 2 ? s2 : 2 * s2 - 4;
}

export function tileStarts(n, tile) {
  const out = [];
  for (let s = 0; s < n; s += tile) out.push(s);
  return out;
}

/** NHWC (one image) reflect pad without edge repeat, in rounds of at most side-1 (np_reflect_pad). */
export function reflectPad(src, h, w, c, top, bottom, left, right) {
  let data = src;
  while (top || bottom || left || right) {
    const t = Math.min(top, h - 1), b = Math.min(bottom, h - 1);
    const l = Math.min(left, w - 1), r = Math.min(right, w - 1);
    const nh = h + t + b, nw = w + l + r;
    const out = new Float32Array(nh * nw * c);
    for (let y = 0; y < nh; y++) {
      let sy = y - t;
      if (sy < 0) sy = -sy; else if (sy >= h) sy = 2 * (h - 1) - sy;
      for (let x = 0; x < nw; x++) {
        let sx = x - l;
        if (sx < 0) sx = -sx; else if (sx >= w) sx = 2 * (w - 1) - sx;
        const o = (y * nw + x) * c, s = (sy * w + sx) * c;
        for (let k = 0; k < c; k++) out[o + k] = data[s + k];
      }
    }
    data = out; h = nh; w = nw;
    top -= t; bottom -= b; left -= l; right -= r;
  }
  return { data, h, w };
}

/** uint8 pixels (3 or 4 channels, alpha ignored) -> float32 network range HxWx3 (geometry.py). */
export function toNetworkRange(pixels, width, height, channels, pro) {
  const out = new Float32Array(width * height * 3);
  const k = Math.fround(255 / 0.7), off = Math.fround(0.15);
  for (let p = 0, q = 0; p < width * height; p++, q += channels) {
    for (let c = 0; c < 3; c++) {
      const v = pixels[q + c];
      out[p * 3 + c] = pro ? Math.fround(Math.fround(v / k) + off) : Math.fround(v / 255);
    }
  }
  return out;
}

function quantize(y, pro) {
  const v = pro ? (y - 0.15) * (255 / 0.7) : y * 255;
  const r = Math.round(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** Load `<url>/model.json` + `<url>/meta.json` (browser, or any fetch-capable runtime). */
export async function loadModel(tf, url, { onProgress } = {}) {
  const base = url.replace(/\/$/, "");
  const meta = await (await fetch(`${base}/meta.json`)).json();
  const model = await tf.loadGraphModel(`${base}/model.json`, { onProgress });
  return { model, meta };
}

/** An io handler from already-read files: {modelJson: object, shards: ArrayBuffer[]} (Node). */
export function memoryHandler(modelJson, shards) {
  return {
    load: async () => {
      const total = shards.reduce((n, s) => n + s.byteLength, 0);
      const weightData = new Uint8Array(total);
      let pos = 0;
      for (const s of shards) { weightData.set(new Uint8Array(s), pos); pos += s.byteLength; }
      return {
        modelTopology: modelJson.modelTopology, format: modelJson.format,
        generatedBy: modelJson.generatedBy, convertedBy: modelJson.convertedBy,
        signature: modelJson.signature, userDefinedMetadata: modelJson.userDefinedMetadata,
        weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights), weightData: weightData.buffer,
      };
    },
  };
}

function abortError() {
  return typeof DOMException === "function" ? new DOMException("upscale cancelled", "AbortError")
    : Object.assign(new Error("upscale cancelled"), { name: "AbortError" });
}

const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * Upscale one image with exact tiling.
 *
 * @param tf TensorFlow.js namespace (backend already set).
 * @param net {model, meta} from loadModel / memoryHandler.
 * @param image {data: uint8 pixels, width, height, channels: 3 | 4}.
 * @param opts tile: tile side in input pixels (any size works; rounded down to the stride, >= it;
 *   Infinity or mode "whole" = one tile); alpha; outChannels 3 | 4 (4: RGBA with alpha 255, for
 *   ImageData); onProgress({done, total, pass, passes, tiles}); signal: an AbortSignal (cancel).
 * @returns {data: Uint8ClampedArray, width, height, channels, tiles, seconds}
 */
export async function upscale(tf, net, image, opts = {}) {
  const { model, meta } = net;
  const { alpha = 1.0, outChannels = 3, onProgress = null, signal = null, mode = "exact" } = opts;
  const scale = meta.scale, m = meta.margin, k = meta.multiple, nSe = meta.n_se;
  const { width: w0, height: h0, channels = 3 } = image;
  if (Math.min(w0, h0) < 2) throw new Error(`image too small (${w0}x${h0}); sides must be >= 2`);
  const t0 = Date.now();
  const { t, b, l, r, ph, pw } = padding(scale, h0, w0, m, k);
  const x = toNetworkRange(image.data, w0, h0, channels, meta.pro);
  const xp = reflectPad(x, h0, w0, 3, t, b, l, r);
  const hp = ph + 2 * m, wp = pw + 2 * m;
  let tile = mode === "whole" || !Number.isFinite(opts.tile ?? 128) ? Math.max(ph, pw) : (opts.tile ?? 128);
  tile = Math.max(k, Math.floor(tile / k) * k);
  const tiles = [];
  for (const y0 of tileStarts(ph, tile)) {
    for (const x0 of tileStarts(pw, tile)) tiles.push([y0, Math.min(y0 + tile, ph), x0, Math.min(x0 + tile, pw)]);
  }
  const total = tiles.length * (nSe + 1);
  let done = 0;
  const alphaT = tf.scalar(alpha, "float32");
  const meanTs = [];

  const crop = (y0, y1, x0, x1) => { // xp[y0:y1+2m, x0:x1+2m]
    const th = y1 - y0 + 2 * m, tw = x1 - x0 + 2 * m;
    const buf = new Float32Array(th * tw * 3);
    for (let y = 0; y < th; y++) {
      const s = ((y0 + y) * wp + x0) * 3;
      buf.set(xp.data.subarray(s, s + tw * 3), y * tw * 3);
    }
    return tf.tensor4d(buf, [1, th, tw, 3]);
  };
  const step = async (pass) => {
    done += 1;
    if (onProgress) onProgress({ done, total, pass, passes: nSe + 1, tiles: tiles.length });
    await nextTask(); // let the page repaint and see a cancel click
    if (signal && signal.aborted) throw abortError();
  };
  const run = async (tl, output) => {
    const feeds = { xp: crop(...tl), alpha: alphaT };
    const need = output === "out" ? nSe : Number(output.slice(4));
    for (let i = 0; i < need; i++) feeds[`mean${i}`] = meanTs[i];
    const y = model.execute(feeds, output);
    feeds.xp.dispose();
    const data = await y.data();
    const shape = y.shape;
    y.dispose();
    return { data, shape };
  };

  try {
    if (signal && signal.aborted) throw abortError();
    for (let i = 0; i < nSe; i++) {
      const C = meta.se_channels[i];
      const acc = new Float64Array(C);
      const fullH = seSize(scale, hp, i), fullW = seSize(scale, wp, i);
      for (const tl of tiles) {
        const [y0, y1, x0, x1] = tl;
        const { data, shape } = await run(tl, `feat${i}`);
        const [, fh, fw] = shape;
        if (fh !== seSize(scale, y1 - y0 + 2 * m, i)) throw new Error(`feat${i}: tile map ${fh} != expected`);
        const a0 = fullH - seSize(scale, hp - y0, i);
        const a1 = y1 < ph ? fullH - seSize(scale, hp - y1, i) : fullH;
        const c0 = fullW - seSize(scale, wp - x0, i);
        const c1 = x1 < pw ? fullW - seSize(scale, wp - x1, i) : fullW;
        if (a1 - a0 > fh || c1 - c0 > fw) throw new Error("tile too small for its owned feature window");
        for (let yy = 0; yy < a1 - a0; yy++) {
          for (let xx = 0; xx < c1 - c0; xx++) {
            const o = (yy * fw + xx) * C;
            for (let c = 0; c < C; c++) acc[c] += data[o + c];
          }
        }
        await step(i);
      }
      const mean = new Float32Array(C);
      for (let c = 0; c < C; c++) mean[c] = acc[c] / (fullH * fullW);
      meanTs.push(tf.tensor4d(mean, [1, 1, 1, C]));
    }
    const W = scale * w0, H = scale * h0, oc = outChannels;
    const out = new Uint8ClampedArray(W * H * oc);
    if (oc === 4) out.fill(255);
    for (const tl of tiles) {
      const [y0, y1, x0, x1] = tl;
      const { data, shape } = await run(tl, "out");
      const [, oh, ow] = shape;
      for (let yy = 0; yy < oh; yy++) {
        const Y = scale * y0 + yy;
        if (Y >= H) break;
        for (let xx = 0; xx < ow; xx++) {
          const X = scale * x0 + xx;
          if (X >= W) break;
          const s = (yy * ow + xx) * 3, d = (Y * W + X) * oc;
          out[d] = quantize(data[s], meta.pro);
          out[d + 1] = quantize(data[s + 1], meta.pro);
          out[d + 2] = quantize(data[s + 2], meta.pro);
        }
      }
      await step(nSe);
    }
    return { data: out, width: W, height: H, channels: oc, tiles: tiles.length, seconds: (Date.now() - t0) / 1000 };
  } finally {
    alphaT.dispose();
    for (const mt of meanTs) mt.dispose();
  }
}

/**
 * Pick a backend: "wasm" (needs @tensorflow/tfjs-backend-wasm loaded; wasmPaths: folder of its .wasm
 * files; threads: count, when the runtime allows threads), "cpu" or "webgl". Returns tf.getBackend().
 */
export async function setBackend(tf, name, { wasmPaths = null, threads = null } = {}) {
  if (name === "wasm") {
    const wasm = tf.wasm ?? globalThis.tf?.wasm;
    if (wasmPaths && wasm?.setWasmPaths) wasm.setWasmPaths(wasmPaths);
    if (threads && wasm?.setThreadsCount) wasm.setThreadsCount(threads);
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`TensorFlow.js backend ${name} failed to initialise`);
  await tf.ready();
  return tf.getBackend();
}
