// Node runner for the exported Real-CUGAN graph: the same tiling code as the page (realcugan.js),
// TF.js from npm with the wasm (default) or cpu backend. No tfjs-node: its native binary downloads
// from Google storage at install time.
//
//   node web/parity.mjs job.json
//
// job.json: {"model_dir": ".../models-se__up2x-conservative-<key>", "backend": "wasm" | "cpu",
//            "tile": 128, "alpha": 1.0, "threads": null,
//            "images": [{"input": "in0.rgb", "output": "out0.rgb", "height": 70, "width": 100}, ...]}
// Inputs and outputs are raw uint8 RGB (row-major HxWx3). Prints one JSON line: backend, seconds.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import * as tf from "@tensorflow/tfjs";
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";

import { memoryHandler, upscale } from "./realcugan.js";

const here = dirname(fileURLToPath(import.meta.url));
const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const backend = job.backend ?? "wasm";

if (backend === "wasm") {
  // the .wasm files ship in the npm package; the threaded build needs workers Node's wasm glue
  // does not start here, so the single-threaded SIMD build runs
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  tfwasm.setWasmPaths(pathToFileURL(join(here, "node_modules/@tensorflow/tfjs-backend-wasm/dist/")).href);
}
if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialise`);
await tf.ready();

const dir = job.model_dir;
const modelJson = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
const shards = modelJson.weightsManifest.flatMap((g) => g.paths).map((p) => {
  const b = readFileSync(join(dir, p));
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
});
const meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8"));
const model = await tf.loadGraphModel(memoryHandler(modelJson, shards));
const net = { model, meta };

const seconds = [];
for (const im of job.images) {
  const data = new Uint8Array(readFileSync(im.input));
  const res = await upscale(tf, net, { data, width: im.width, height: im.height, channels: 3 },
    { tile: job.tile ?? 128, alpha: job.alpha ?? 1.0 });
  seconds.push(res.seconds);
  writeFileSync(im.output, res.data);
}
console.log(JSON.stringify({ backend: tf.getBackend(), tfjs: tf.version.tfjs, seconds }));
