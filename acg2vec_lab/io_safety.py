"""Reading files a user hands in without trusting them: paths that cannot escape, Keras files that
cannot run code, text and JSON whose faults are errors naming the file.

* :func:`safe_join` - ``root / relative`` for a path that came from data (metadata, a SQLite table,
  a list of image paths): ``..`` parts, absolute paths, NUL bytes, over-long names and symlinks that
  resolve outside ``root`` raise :class:`UnsafePath` naming the item. :func:`check_inside` does the
  symlink half for a path found by walking ``root``.
* :func:`check_keras_config` - a Keras model config (the ``model_config`` attribute of a legacy
  ``.h5``, the ``config.json`` of a ``.keras`` zip) may only use built-in Keras layers
  (:data:`KERAS_LAYER_ALLOWLIST`); a ``Lambda`` layer (arbitrary Python) or any other class is
  refused with :class:`UnsafeModelFile` naming the file and the layer, *before* Keras deserialises
  anything. Keras' own ``safe_mode`` is applied as well, but this check does not depend on it.
* :func:`read_text_file` / :func:`read_json_file` - UTF-8 text (a BOM is tolerated) and JSON whose
  decoding faults are a ``ValueError`` subclass naming the file and the line, never a bare
  ``UnicodeDecodeError`` / ``JSONDecodeError``.

No framework is imported here (``h5py`` only inside :func:`keras_file_config`): every loader and
reader may import this module cheaply (``tests/test_import_graph.py``).
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

#: Limits of common file systems (ext4, XFS, APFS, NTFS): bytes per path component, bytes per path.
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096


class UnsafePath(ValueError):
    """A path from data that would leave its root (or cannot name a file safely); names the item."""


class UnsafeModelFile(ValueError):
    """A model file whose architecture would run code (a Lambda layer, an unknown class); names the file."""


class InputFileError(ValueError):
    """An input file that cannot be decoded (not UTF-8, not JSON, wrong shape); names the file and line."""


# --------------------------------------------------------------------------------------------- paths

def _describe(what: str, relative: object) -> str:
    return f"{what} {relative!r}" if what else repr(relative)


def check_relative(relative: str | os.PathLike, what: str = "path") -> list[str]:
    """The components of a relative path from data, or :class:`UnsafePath` when it is empty,
    absolute (``/x``, ``\\\\x``, ``C:x``), has a ``..`` part or a NUL byte, or is over-long
    (a component over :data:`MAX_COMPONENT_BYTES` or the whole over :data:`MAX_PATH_BYTES` bytes)."""
    item = _describe(what, relative)
    if isinstance(relative, bytes):
        raise UnsafePath(f"{item}: a path from data must be text, not bytes")
    rel = os.fspath(relative) if isinstance(relative, os.PathLike) else relative
    if not isinstance(rel, str):
        raise UnsafePath(f"{item}: a path from data must be a string, not {type(rel).__name__}")
    if not rel:
        raise UnsafePath(f"{item}: empty path")
    if "\x00" in rel:
        raise UnsafePath(f"{item}: contains a NUL byte")
    if os.path.isabs(rel) or rel.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", rel):
        raise UnsafePath(f"{item}: absolute path is not allowed; paths in data are relative to the data root")
    parts = re.split(r"[\\/]+", rel)
    if any(part == ".." for part in parts):
        raise UnsafePath(f"{item}: contains '..' and could escape the data root")
    try:
        encoded = rel.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate cannot name a file portably
        raise UnsafePath(f"{item}: not encodable as UTF-8 ({exc.reason})") from exc
    if len(encoded) > MAX_PATH_BYTES:
        raise UnsafePath(f"{item}: {len(encoded)} bytes long, over the {MAX_PATH_BYTES}-byte path limit")
    for part in parts:
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise UnsafePath(f"{item}: component {part[:40]!r}... is {len(part.encode('utf-8'))} bytes, "
                             f"over the {MAX_COMPONENT_BYTES}-byte name limit")
    out = [p for p in parts if p not in ("", ".")]
    if not out:
        raise UnsafePath(f"{item}: names the data root itself, not a file in it")
    return out


def check_inside(root: str | os.PathLike, path: str | os.PathLike, what: str = "path") -> Path:
    """``path`` unchanged if it resolves (symlinks followed) inside ``root``, else :class:`UnsafePath`.

    For paths found by walking ``root`` (a symlink in an image folder pointing elsewhere) and as the
    last step of :func:`safe_join`. A symlink loop is refused too.
    """
    return _check_inside(root, Path(path), _describe(what, str(path)))


def _check_inside(root: str | os.PathLike, path: Path, item: str) -> Path:
    try:
        real_root = Path(root).resolve()
        real = path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        raise UnsafePath(f"{item}: cannot be resolved ({exc})") from exc
    if real != real_root and real_root not in real.parents:
        raise UnsafePath(f"{item}: resolves to {real}, outside the data root {real_root} (symlink?)")
    if len(os.fsencode(str(path))) > MAX_PATH_BYTES:
        raise UnsafePath(f"{item}: over the {MAX_PATH_BYTES}-byte path limit once joined to {root}")
    return path


def safe_join(root: str | os.PathLike, relative: str | os.PathLike, what: str = "path") -> Path:
    """``root / relative`` for a ``relative`` path that came from data, checked by
    :func:`check_relative` and :func:`check_inside`; raises :class:`UnsafePath` whose message starts
    with ``what`` (say which record / line / column the path came from)."""
    parts = check_relative(relative, what)
    return _check_inside(root, Path(root).joinpath(*parts), _describe(what, relative))


# --------------------------------------------------------------------------------------------- Keras

#: Built-in Keras layer (and model) classes a model file may name. Everything else, above all
#: ``Lambda`` (a marshalled Python function), ``TFOpLambda`` and any custom registered class, is refused.
KERAS_LAYER_ALLOWLIST = frozenset({
    # models
    "Functional", "Model", "Sequential",
    # core
    "InputLayer", "Input", "Dense", "EinsumDense", "Activation", "Embedding", "Masking", "Identity", "Wrapper",
    # convolution
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    # pooling
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    # normalisation
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization", "RMSNormalization",
    # activations
    "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU",
    # merging
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    # reshaping
    "Reshape", "Flatten", "Permute", "RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    # regularisation
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout", "GaussianNoise",
    "AlphaDropout", "ActivityRegularization",
    # attention
    "Attention", "AdditiveAttention", "MultiHeadAttention", "GroupQueryAttention",
    # preprocessing (arithmetic only)
    "Rescaling", "Normalization", "Resizing", "CenterCrop",
})
_MODEL_CLASSES = {"Functional", "Model", "Sequential"}


def check_keras_config(config: Any, where: str | os.PathLike) -> None:
    """Refuse a Keras model config naming any layer class outside :data:`KERAS_LAYER_ALLOWLIST`.

    Walks the model's ``layers`` (nested models included) in both the Keras 2 and the Keras 3
    spelling. A Keras 3 entry must also come from a ``keras`` module and carry no custom
    ``registered_name``. Raises :class:`UnsafeModelFile` naming ``where`` (the file) and the layer.
    """
    if not isinstance(config, dict):
        raise UnsafeModelFile(f"{where}: the model config is a {type(config).__name__}, not a JSON object")

    def layer_name(entry: dict) -> str:
        conf = entry.get("config")
        name = entry.get("name") or (conf.get("name") if isinstance(conf, dict) else None)
        return repr(name) if name is not None else "(unnamed)"

    def check(entry: Any, path: str) -> None:
        if not isinstance(entry, dict):
            raise UnsafeModelFile(f"{where}: {path} is a {type(entry).__name__}, not a layer object")
        cls = entry.get("class_name")
        if cls == "Lambda":
            raise UnsafeModelFile(f"{where}: refused to load: layer {layer_name(entry)} is a Lambda layer, which "
                                  "holds Python code that would run when the model is built")
        if not isinstance(cls, str) or cls not in KERAS_LAYER_ALLOWLIST:
            raise UnsafeModelFile(f"{where}: refused to load: layer {layer_name(entry)} has class {cls!r}, not a "
                                  "built-in Keras layer (custom classes can run code)")
        module = entry.get("module")
        if module is not None and not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            raise UnsafeModelFile(f"{where}: refused to load: layer {layer_name(entry)} ({cls}) comes from module "
                                  f"{module!r}, not from Keras")
        registered = entry.get("registered_name")
        if registered is not None and registered != cls:
            raise UnsafeModelFile(f"{where}: refused to load: layer {layer_name(entry)} ({cls}) is a custom "
                                  f"registered class {registered!r}")
        conf = entry.get("config")
        if cls in _MODEL_CLASSES:
            layers = conf.get("layers") if isinstance(conf, dict) else conf  # Keras 2 Sequential: a bare list
            if not isinstance(layers, list):
                raise UnsafeModelFile(f"{where}: {path} ({cls}) has no 'layers' list")
            for i, layer in enumerate(layers):
                check(layer, f"{path}.layers[{i}]")
        elif isinstance(conf, dict):
            for key in ("layer", "forward_layer", "backward_layer"):  # wrappers hold a layer
                if isinstance(conf.get(key), dict):
                    check(conf[key], f"{path}.{key}")

    check(config, "model")


def keras_file_config(path: str | os.PathLike) -> dict:
    """The architecture JSON of a Keras model file, read without Keras: ``config.json`` of a
    ``.keras`` zip, or the ``model_config`` attribute of an HDF5 file; errors name the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError as exc:
        raise UnsafeModelFile(f"{path}: cannot read the model file ({exc.strerror or exc})") from exc
    if magic.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                raw = z.read("config.json")
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise UnsafeModelFile(f"{path}: not a readable .keras archive with a config.json ({exc})") from exc
    elif magic == b"\x89HDF\r\n\x1a\n":
        import h5py

        try:
            with h5py.File(path, "r") as f:
                if "model_config" not in f.attrs:
                    raise UnsafeModelFile(f"{path}: no 'model_config' attribute (weights only, or not a Keras model file)")
                raw = f.attrs["model_config"]
        except OSError as exc:
            raise UnsafeModelFile(f"{path}: not a readable HDF5 file ({exc})") from exc
    else:
        raise UnsafeModelFile(f"{path}: neither a .keras zip archive nor an HDF5 file (first bytes {magic!r})")
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return parse_json_text(text, path, error=UnsafeModelFile, what="model config")


# --------------------------------------------------------------------------------------------- text and JSON

def read_text_file(path: str | os.PathLike, error: type[Exception] = InputFileError, what: str = "") -> str:
    """The text of a UTF-8 file (a leading BOM dropped). Bytes that are not UTF-8 raise ``error``
    naming the file, the line and the byte offset. (A missing file stays a ``FileNotFoundError``.)"""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        label = f" ({what})" if what else ""
        raise error(f"{path}:{line}: not UTF-8 text{label}: byte offset {exc.start} ({exc.reason})") from exc


def parse_json_text(text: str, path: str | os.PathLike, error: type[Exception] = InputFileError,
                    what: str = "", expect: type | tuple[type, ...] | None = None) -> Any:
    """``json.loads(text)`` whose faults raise ``error`` naming ``path`` and the line;
    ``expect`` is the type the top level must have (``dict``, ``list``)."""
    label = f" ({what})" if what else ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON{label}: {exc.msg}") from exc
    except RecursionError as exc:
        raise error(f"{path}: JSON nested too deeply{label}") from exc
    except ValueError as exc:  # e.g. an integer over Python's 4300-digit conversion limit
        raise error(f"{path}: not usable JSON{label}: {exc}") from exc
    if expect is not None and not isinstance(value, expect):
        names = " or ".join(t.__name__ for t in (expect if isinstance(expect, tuple) else (expect,)))
        kinds = {"dict": "a JSON object", "list": "a JSON list"}
        raise error(f"{path}: expected {kinds.get(names, names)}{label}, got {type(value).__name__}")
    return value


def read_json_file(path: str | os.PathLike, error: type[Exception] = InputFileError, what: str = "",
                   expect: type | tuple[type, ...] | None = None) -> Any:
    """A JSON file read by :func:`read_text_file` and :func:`parse_json_text` (errors name the file)."""
    return parse_json_text(read_text_file(path, error, what), path, error, what, expect)
