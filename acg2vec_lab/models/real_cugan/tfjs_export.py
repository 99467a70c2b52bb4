"""Real-CUGAN TF port -> TensorFlow.js graph model for the browser, plus the Node parity helper.

The exported graph ``stages(xp, alpha, mean0..mean3) -> {feat0..feat3, out}`` is the exact tiled
decomposition of :mod:`tiling` in one graph: ``feat_i`` is the pre-SE feature map of SE block ``i``
(what tiling's ``run(tile, means[:i], stop_at=i)`` returns) computed with the supplied means
``mean0..mean{i-1}``; ``out`` is the tile's output with all four means supplied. TF.js executes only
the subgraph a requested output needs, and asks only for the inputs that subgraph reads, so the JS
tiling loop (``web/realcugan.js``) fetches ``feat_i`` with ``i`` means per pass and ``out`` last,
from one set of weights. Spatial sizes are dynamic (``[1, None, None, 3]``): edge tiles and small
images reuse the same graph. A "nose" model (no SE) exports ``out`` only.

The SavedModel is written by this project's TensorFlow; the ``tensorflowjs`` converter runs in its own
venv (``.venv-tfjs``, made by ``scripts/setup_web.sh``): ``tensorflowjs`` 4.22 pins
``tensorflow-decision-forests``, which pins ``tensorflow==2.19.0``, ``numpy<2.2`` and ``protobuf<6``,
all older than the project's lock. Exports are build outputs in the cache
(``<cache>/tfjs/<model>-<key>/``), keyed by the model name and a hash of the code that defines the
graph. No framework is imported at module level.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from acg2vec_lab.paths import PROJECT_DIR, cache_dir

#: bump when the exported graph's interface changes (names, inputs, meta.json fields)
EXPORT_VERSION = 1
#: the models the web page offers by default: 2x, 3x and 4x of the se family
DEFAULT_MODELS = ("models-se/up2x-conservative", "models-se/up3x-conservative", "models-se/up4x-conservative")
WEB_DIR = PROJECT_DIR / "web"
TFJS_VERSION = "4.22.0"  # the Python converter; web/package.json pins the same @tensorflow/tfjs version
SETUP_HINT = "run `bash scripts/setup_web.sh` (makes .venv-tfjs, runs `npm ci` in web/, installs chromium)"
# the sources that define the exported graph: any change gives a new cache key
_SOURCES = ("tf_model.py", "geometry.py", "convert.py", "ncnn.py", "tfjs_export.py")


class WebSetupError(RuntimeError):
    """A piece of the web toolchain (converter venv, node, npm packages, chromium) is missing."""


def _slug(name: str) -> str:
    return name.replace("/", "__")


def code_key() -> str:
    """Hash of the export version and the sources that define the graph (8 hex digits)."""
    h = hashlib.sha256(f"v{EXPORT_VERSION}".encode())
    here = Path(__file__).resolve().parent
    for f in _SOURCES:
        h.update((here / f).read_bytes())
    return h.hexdigest()[:8]


def models_root() -> Path:
    """Where exported TF.js models live: ``<cache>/tfjs`` (served as ``/models/`` by serve-web)."""
    return cache_dir("tfjs")


def export_dir(name: str) -> Path:
    """The cache folder of one exported model: ``<cache>/tfjs/<models-se__up2x-conservative>-<key>``."""
    return models_root() / f"{_slug(name)}-{code_key()}"


def converter_venv() -> Path:
    return Path(os.environ.get("ACG2VEC_TFJS_VENV", PROJECT_DIR / ".venv-tfjs"))


def converter_path() -> Path:
    """The ``tensorflowjs_converter`` of the converter venv; :class:`WebSetupError` when missing."""
    exe = converter_venv() / "bin" / "tensorflowjs_converter"
    if not exe.is_file():
        raise WebSetupError(f"the tensorflowjs converter is missing ({exe}); {SETUP_HINT}")
    return exe


def node_path() -> str:
    exe = shutil.which("node")
    if not exe:
        raise WebSetupError(f"node is not on PATH (Node.js >= 18 needed for the parity script); {SETUP_HINT}")
    return exe


def check_node_modules() -> Path:
    """``web/node_modules`` with the pinned TF.js packages; :class:`WebSetupError` when missing."""
    nm = WEB_DIR / "node_modules"
    for pkg in ("@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm"):
        pj = nm / pkg / "package.json"
        if not pj.is_file():
            raise WebSetupError(f"npm package {pkg} is missing in {nm}; {SETUP_HINT} (it runs `npm ci` in web/)")
    return nm


def toolchain_problem() -> str | None:
    """Why the web toolchain cannot run here (the setup step that fixes it), or None when it can."""
    try:
        converter_path()
        node_path()
        check_node_modules()
    except WebSetupError as exc:
        return str(exc)
    return None


# --- the exported graph ---------------------------------------------------------------------------

def stages_function(model) -> Any:
    """The ``tf.function`` that is exported: ``(xp, alpha, mean0..mean{n-1}) -> dict``.

    xp: (1, h, w, 3) float32, a padded tile (network range, NHWC, dynamic h and w); alpha: scalar;
    mean_i: (1, 1, 1, C_i). Returns ``feat_i`` (1, h_i, w_i, C_i) for every SE block and ``out``
    (1, scale*(h-2m), scale*(w-2m), 3). Each entry is the model's own ``core`` (the code tiling.py
    runs), stopped at SE block i or run to the end."""
    import tensorflow as tf

    from acg2vec_lab.models.real_cugan.geometry import N_SE, SECtx, StopAtSE

    model.build()
    n = N_SE if model.se else 0
    chans = model.se_channels()
    sig = [tf.TensorSpec([1, None, None, 3], tf.float32, name="xp"), tf.TensorSpec([], tf.float32, name="alpha")]
    sig += [tf.TensorSpec([1, 1, 1, chans[i]], tf.float32, name=f"mean{i}") for i in range(n)]

    def stages(xp, alpha, *means):
        out = {}
        for i in range(n):
            try:
                model.core(xp, alpha, SECtx(means=dict(enumerate(means[:i])), stop_at=i))
            except StopAtSE as stop:
                out[f"feat{i}"] = tf.identity(stop.features, name=f"feat{i}")
            else:  # pragma: no cover - the model has SE blocks, so core stops
                raise AssertionError(f"core did not stop at SE block {i}")
        out["out"] = tf.identity(model.core(xp, alpha, SECtx(means=dict(enumerate(means)))), name="out")
        return out

    return tf.function(stages, input_signature=sig)


def _save_saved_model(model, path: Path) -> dict[str, str]:
    """Write the SavedModel; returns output key -> tensor name of the traced function (``Identity_4:0``),
    which the converter keeps but cannot always label (it matches signature keys by shape)."""
    import tensorflow as tf

    module = tf.Module()
    module.keras_layers = list(model.layers.values())  # tracks the weights
    module.stages = stages_function(model)
    concrete = module.stages.get_concrete_function()
    tf.saved_model.save(module, str(path), signatures={"serving_default": concrete})
    return {k: v.name for k, v in concrete.structured_outputs.items()}


# --- model.json post-processing -------------------------------------------------------------------
_DTYPE_BYTES = {"float32": 4, "int32": 4}
SHARD_BYTES = 4 * 1024 * 1024


def _read_weights(folder: Path, manifest: list) -> dict[str, tuple[dict, bytes]]:
    out = {}
    for group in manifest:
        blob = b"".join((folder / p).read_bytes() for p in group["paths"])
        pos = 0
        for spec in group["weights"]:
            if spec["dtype"] not in _DTYPE_BYTES or "quantization" in spec:
                raise ValueError(f"unexpected weight {spec['name']}: {spec}")
            n = _DTYPE_BYTES[spec["dtype"]]
            for d in spec["shape"]:
                n *= d
            out[spec["name"]] = (spec, blob[pos:pos + n])
            pos += n
        if pos != len(blob):
            raise ValueError(f"weight group of {len(blob)} bytes, specs cover {pos}")
    return out


def _src(ref: str) -> tuple[str, str, str]:
    """``'^a'`` / ``'a:1'`` / ``'a'`` -> (prefix, node, suffix)."""
    pre = "^" if ref.startswith("^") else ""
    node, _, port = ref[len(pre):].partition(":")
    return pre, node, (":" + port) if port else ""


def postprocess(folder: Path, outputs: dict[str, str]) -> dict:
    """Deduplicate the converted graph and name its outputs; returns a small report.

    Each of the five ``core`` calls in :func:`stages_function` reads the Keras variables again, so the
    frozen graph holds one constant per read (about 3.3x the weights) and five copies of the shared
    prefixes. Merging equal constants (by content) and then equal nodes (same op, inputs and attributes,
    in topological order) leaves one copy of every weight and layer: ``feat_i`` and ``out`` become
    taps on one network. The outputs, which the converter names ``Identity_k`` when their shapes are
    ambiguous, are renamed to their keys (``feat0`` .. ``out``)."""
    mj = folder / "model.json"
    model = json.loads(mj.read_text(encoding="utf-8"))
    nodes = model["modelTopology"]["node"]
    weights = _read_weights(folder, model["weightsManifest"])
    by_name = {n["name"]: n for n in nodes}
    out_nodes = {}
    for key, tensor in outputs.items():
        node = tensor.split(":")[0]
        if node not in by_name:
            raise ValueError(f"output {key} ({tensor}) is not in the converted graph")
        out_nodes[node] = key
    # topological order (Kahn) over data and control inputs
    deps = {n["name"]: {_src(r)[1] for r in n.get("input", [])} for n in nodes}
    order, done = [], set()
    pending = [n["name"] for n in nodes]
    while pending:
        ready = [x for x in pending if deps[x] <= done]
        if not ready:
            raise ValueError("converted graph has a cycle")
        order += ready
        done |= set(ready)
        pending = [x for x in pending if x not in done]
    rename: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in order:
        n = by_name[name]
        inputs = [p + rename.get(q, q) + s for p, q, s in map(_src, n.get("input", []))]
        n["input"] = inputs
        if n["op"] == "Placeholder" or name in out_nodes:
            continue
        if n["op"] == "Const":
            spec, data = weights[name]
            key = json.dumps(["Const", spec["dtype"], spec["shape"], hashlib.sha256(data).hexdigest()])
        else:
            key = json.dumps([n["op"], inputs, n.get("attr", {}), n.get("device", "")], sort_keys=True)
        if key in seen:
            rename[name] = seen[key]
        else:
            seen[key] = name
    kept = [n for n in nodes if n["name"] not in rename]
    used = {n["name"] for n in kept}
    for node, key in out_nodes.items():  # name the outputs by their keys
        if key in used:
            raise ValueError(f"cannot rename output {node} to {key}: the name is taken")
    for n in kept:
        n["input"] = [p + out_nodes.get(q, q) + s for p, q, s in map(_src, n.get("input", []))]
        if n["name"] in out_nodes:
            n["name"] = out_nodes[n["name"]]
    model["modelTopology"]["node"] = kept
    # weights: one group, the surviving constants in graph order, 4 MiB shards
    specs, blob = [], b""
    for n in kept:
        if n["op"] == "Const" and n["name"] in weights:
            spec, data = weights[n["name"]]
            specs.append(spec)
            blob += data
    for group in model["weightsManifest"]:
        for p in group["paths"]:
            (folder / p).unlink()
    count = max(1, -(-len(blob) // SHARD_BYTES))
    paths = [f"group1-shard{i + 1}of{count}.bin" for i in range(count)]
    for i, p in enumerate(paths):
        (folder / p).write_bytes(blob[i * SHARD_BYTES:(i + 1) * SHARD_BYTES])
    model["weightsManifest"] = [{"paths": paths, "weights": specs}]
    sig = model.get("signature", {})
    sig["outputs"] = {key: {**next(iter(v for k, v in sig.get("outputs", {}).items() if v["name"] == tensor), {}),
                            "name": f"{key}:0"} for key, tensor in outputs.items()}
    sig["inputs"] = {v["name"].split(":")[0]: v for v in sig.get("inputs", {}).values()}
    model["signature"] = sig
    mj.write_text(json.dumps(model), encoding="utf-8")
    return {"nodes_before": len(nodes), "nodes_after": len(kept), "weights_before": len(weights),
            "weights_after": len(specs), "weight_bytes": len(blob),
            "ops": dict(sorted(collections.Counter(n["op"] for n in kept).items()))}


def meta_for(name: str, model, pro: bool) -> dict:
    """What the JS tiling loop needs besides the graph (geometry, SE channels, value range)."""
    from acg2vec_lab.models.real_cugan.geometry import GEOMETRY, N_SE

    margin, multiple = GEOMETRY[model.scale]
    return {"name": name, "scale": model.scale, "se": bool(model.se), "n_se": N_SE if model.se else 0,
            "se_channels": model.se_channels() if model.se else [], "margin": margin, "multiple": multiple,
            "pro": bool(pro), "export_version": EXPORT_VERSION, "code_key": code_key(),
            "tfjs_converter": TFJS_VERSION, "inputs": ["xp", "alpha"] + [f"mean{i}" for i in range(N_SE if model.se else 0)],
            "outputs": [f"feat{i}" for i in range(N_SE if model.se else 0)] + ["out"]}


def export(name: str = DEFAULT_MODELS[0], force: bool = False) -> Path:
    """Export official model ``name`` (e.g. ``models-se/up2x-conservative``) to a TF.js graph model.

    Returns the folder holding ``model.json``, its weight shards and ``meta.json``; an existing export
    with the same cache key is reused unless ``force``. The SavedModel is built with this process's
    TensorFlow and converted by ``tensorflowjs_converter`` from the converter venv (float32 weights, no
    quantization: parity is the point)."""
    out = export_dir(name)
    if (out / "meta.json").is_file() and not force:
        return out
    exe = converter_path()
    from acg2vec_lab.models.real_cugan import convert, weights

    torch_model, pro = weights.load_official(name)
    model = convert.tf_from_torch(torch_model)
    root = models_root()
    with tempfile.TemporaryDirectory(dir=root, prefix=".export-") as tmp:
        saved, web = Path(tmp) / "saved_model", Path(tmp) / "web"
        outputs = _save_saved_model(model, saved)
        cmd = [str(exe), "--input_format=tf_saved_model", "--output_format=tfjs_graph_model",
               "--signature_name=serving_default", "--saved_model_tags=serve", str(saved), str(web)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"tensorflowjs_converter failed ({res.returncode}):\n{res.stderr[-4000:]}")
        meta = {**meta_for(name, model, pro), "graph": postprocess(web, outputs)}
        (web / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(web, out)
    write_index()
    return out


def write_index() -> Path:
    """``<cache>/tfjs/index.json``: the exports of the current code key (the page's model list)."""
    root, key = models_root(), code_key()
    items = []
    for meta in sorted(root.glob(f"*-{key}/meta.json")):
        m = json.loads(meta.read_text(encoding="utf-8"))
        items.append({"name": m["name"], "scale": m["scale"], "path": meta.parent.name})
    path = root / "index.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"code_key": key, "models": items}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def ensure_exported(names=DEFAULT_MODELS) -> list[Path]:
    """Export every model in ``names`` that has no export for the current code key."""
    paths = [export(n) for n in names]
    write_index()
    return paths


# --- Node parity --------------------------------------------------------------------------------

def run_node(model_dir: Path, images: list, tile: int = 128, backend: str = "wasm", alpha: float = 1.0,
             threads: int | None = None, timeout: float = 1800) -> tuple[list, dict]:
    """Upscale uint8 HxWx3 ``images`` with ``web/parity.mjs`` (TF.js in Node, the shared tiling code).

    Returns (outputs: uint8 arrays, report: the script's JSON: backend, seconds per image)."""
    import numpy as np

    node = node_path()
    check_node_modules()
    with tempfile.TemporaryDirectory(prefix="acg2vec-tfjs-") as tmp:
        jobs = []
        for i, img in enumerate(images):
            img = np.ascontiguousarray(img, np.uint8)
            src, dst = Path(tmp) / f"in{i}.rgb", Path(tmp) / f"out{i}.rgb"
            src.write_bytes(img.tobytes())
            jobs.append({"input": str(src), "output": str(dst), "height": int(img.shape[0]),
                         "width": int(img.shape[1])})
        job = {"model_dir": str(model_dir), "backend": backend, "tile": int(tile), "alpha": float(alpha),
               "threads": threads, "images": jobs}
        (Path(tmp) / "job.json").write_text(json.dumps(job), encoding="utf-8")
        res = subprocess.run([node, str(WEB_DIR / "parity.mjs"), str(Path(tmp) / "job.json")],
                             capture_output=True, text=True, timeout=timeout, cwd=WEB_DIR)
        if res.returncode != 0:
            raise RuntimeError(f"web/parity.mjs failed ({res.returncode}):\n{res.stderr[-4000:]}")
        report = json.loads(res.stdout.strip().splitlines()[-1])
        scale = json.loads((Path(model_dir) / "meta.json").read_text(encoding="utf-8"))["scale"]
        outs = [np.frombuffer(Path(j["output"]).read_bytes(), np.uint8).reshape(scale * j["height"], scale * j["width"], 3)
                for j in jobs]
    return outs, report


def tf_reference(name: str, images: list, tile: int = 128, mode: str = "exact", alpha: float = 1.0,
                 model=None) -> tuple[list, list]:
    """The TF port's uint8 outputs (``tiling.tf_upscale``) and seconds per image."""
    import numpy as np

    from acg2vec_lab.models.real_cugan import convert, tiling, weights
    from acg2vec_lab.models.real_cugan.geometry import from_network_range_float, quantize, to_network_range

    torch_model, pro = weights.load_official(name)
    model = model or convert.tf_from_torch(torch_model)
    outs, secs = [], []
    for img in images:
        x = to_network_range(np.ascontiguousarray(img), pro)[None]
        t0 = time.perf_counter()
        y = tiling.tf_upscale(model, x, alpha=alpha, mode=mode, tile=tile)
        secs.append(time.perf_counter() - t0)
        outs.append(quantize(from_network_range_float(np.asarray(y)[0], pro)))
    return outs, secs


def node_parity(name: str, images: list, tile: int = 64, backend: str = "wasm") -> Any:
    """Export ``name`` (cached), run the crops through TF.js in Node (tiled, exact) and through the TF
    port (``tf_upscale(mode="exact")``); one row per crop: size, max/mean uint8 difference, share of
    identical values, seconds per megapixel (input) for each side. A pandas DataFrame."""
    import numpy as np
    import pandas as pd

    model_dir = export(name)
    js, report = run_node(model_dir, images, tile=tile, backend=backend)
    ref, secs = tf_reference(name, images, tile=tile)
    rows = []
    for img, a, b, s_js, s_tf in zip(images, js, ref, report["seconds"], secs):
        d = np.abs(a.astype(np.int16) - b.astype(np.int16))
        mp = img.shape[0] * img.shape[1] / 1e6
        rows.append({"model": name, "crop": f"{img.shape[1]}x{img.shape[0]}", "tile": tile,
                     "backend": report["backend"], "max_uint8_diff": int(d.max()), "mean_uint8_diff": float(d.mean()),
                     "identical": float((d == 0).mean()), "node_s_per_mp": s_js / mp, "tf_s_per_mp": s_tf / mp})
    return pd.DataFrame(rows)
