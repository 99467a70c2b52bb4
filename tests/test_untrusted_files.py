"""No code runs from a file a user hands in (issue "Safe with untrusted files", item 1).

Each loader gets a file that would run code - a pickle whose ``__reduce__`` writes a marker file
(written here with plain ``torch.save`` / ``numpy.save``, independent of the package's writers) or a
Keras model with a ``Lambda`` layer / a class that is not a built-in Keras layer (built with Keras
here, saved as ``.keras`` and as ``.h5``) - and must (a) refuse it with an error naming the file and
(b) leave no marker behind. Each payload is shown to be live (a trusting load does run it), so the
tests can fail. A scan of the package source forbids the spellings that would unpickle.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import acg2vec_lab  # noqa: F401  (before tensorflow)
from acg2vec_lab.io_safety import KERAS_LAYER_ALLOWLIST, UnsafeModelFile, check_keras_config

PKG = Path(acg2vec_lab.__file__).parent


class _WritesMarker:
    """Pickles to ``exec(<write the marker file>)``: a full unpickle runs that code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


# --------------------------------------------------------------------------------------------- torch pickles

def _torch_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """One evil file per torch loader, each otherwise shaped like what that loader expects."""
    import torch

    payload = _WritesMarker(marker)
    files = {"port": tmp_path / "model-port.pt", "cugan": tmp_path / "up2x.pth", "dclip": tmp_path / "dclip.pt",
             "train_state": tmp_path / "state.pt"}
    torch.save({"n_Conv_0.weight": torch.zeros(8, 3, 7, 7), "tags": payload}, files["port"])
    torch.save({"unet1.conv_bottom.weight": torch.zeros(64, 3, 4, 4), "pro": payload}, files["cugan"])
    torch.save({"epoch": 1, "model_state_dict": {"w": torch.zeros(2)}, "loss": payload}, files["dclip"])
    torch.save({"step": 3, "model": {"w": torch.zeros(2)}, "rng": payload}, files["train_state"])
    (tmp_path / "joytag").mkdir()
    (tmp_path / "joytag" / "config.json").write_text(json.dumps({"class": "ViT", "n_tags": 2, "image_size": 32,
        "num_blocks": 1, "patch_size": 16, "d_model": 32, "mlp_dim": 64, "num_heads": 4}))
    files["joytag"] = tmp_path / "joytag" / "model.pt"
    torch.save({"model": {"head.weight": torch.zeros(2, 32)}, "optimizer": payload}, files["joytag"])
    return files


def _torch_loaders(files: dict[str, Path]) -> dict:
    from acg2vec_lab.models.dclip.model import read_state_dict
    from acg2vec_lab.models.deepdanbooru import loaders as L
    from acg2vec_lab.models.joytag.loader import load_folder
    from acg2vec_lab.models.real_cugan import torch_model as tm

    return {"port": lambda: L.load_port_into_torch(files["port"]),
            "port_safe_torch_load": lambda: L.safe_torch_load(files["port"]),
            "cugan": lambda: tm.load_pth(str(files["cugan"])),
            "joytag": lambda: load_folder(files["joytag"].parent),
            "dclip": lambda: read_state_dict(files["dclip"])}


@pytest.mark.parametrize("name", ["port", "port_safe_torch_load", "cugan", "joytag", "dclip"])
def test_torch_pickle_that_runs_code_is_refused(tmp_path, name):
    marker = tmp_path / "marker.txt"
    files = _torch_files(tmp_path, marker)
    path = files[name.split("_safe")[0]]
    with pytest.raises(ValueError, match="refused to load") as info:
        _torch_loaders(files)[name]()
    assert str(path) in str(info.value), info.value
    assert not marker.exists(), f"{name}: code from the file ran"


def test_torch_payload_is_live(tmp_path):
    """The same file does run code under a trusting load, so the refusals above are not vacuous."""
    import torch

    marker = tmp_path / "marker.txt"
    files = _torch_files(tmp_path, marker)
    torch.load(files["dclip"], weights_only=False)  # the one trusting load of this test suite
    assert marker.read_text() == "code ran"


def test_train_state_pickle_runs_no_code(tmp_path):
    """``train.run.load_torch_state`` (weights_only=True) refuses the file and nothing runs."""
    from acg2vec_lab.train.run import load_torch_state

    marker = tmp_path / "marker.txt"
    files = _torch_files(tmp_path, marker)
    with pytest.raises(Exception, match="(?i)weights only|refused"):
        load_torch_state(files["train_state"])
    assert not marker.exists()


def _object_npy(path: Path, marker: Path) -> Path:
    np.save(path, np.array([_WritesMarker(marker)], dtype=object), allow_pickle=True)
    return path


def test_numpy_pickles_run_no_code(tmp_path):
    """Object arrays (pickles) in user ``.npy`` / ``.npz`` files are refused by every np.load of user
    files (``search``'s ids, waifu2x weights, the embed checkpoint shards) and nothing runs."""
    from acg2vec_lab.commands._util import CLIError
    from acg2vec_lab.commands.search import _read_ids
    from acg2vec_lab.models.waifu2x import load_npz

    marker = tmp_path / "marker.txt"
    ids = _object_npy(tmp_path / "ids.npy", marker)
    npz = tmp_path / "w.npz"
    np.savez(npz, **{"conv1/W": np.array([_WritesMarker(marker)], dtype=object)}, allow_pickle=True)
    for load in (lambda: _read_ids(ids, 1), lambda: load_npz(npz)):
        with pytest.raises((ValueError, CLIError), match="allow_pickle"):
            load()
        assert not marker.exists()
    np.load(ids, allow_pickle=True)  # live payload
    assert marker.read_text() == "code ran"


def test_other_loaders_name_the_refused_file(tmp_path):
    from acg2vec_lab.commands._util import CLIError
    from acg2vec_lab.commands.search import _read_ids
    from acg2vec_lab.train.run import load_torch_state

    marker = tmp_path / "marker.txt"
    files = _torch_files(tmp_path, marker)
    ids = _object_npy(tmp_path / "ids.npy", marker)
    for path, load in ((files["train_state"], lambda: load_torch_state(files["train_state"])),
                       (ids, lambda: _read_ids(ids, 1))):
        with pytest.raises((ValueError, CLIError)) as info:
            load()
        assert str(path) in str(info.value) and not marker.exists()


# --------------------------------------------------------------------------------------------- Keras files

@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """A model whose Lambda writes the marker when the graph is built, saved as .keras and .h5, and
    copies whose config names a class that is not a built-in Keras layer."""
    import keras

    base = tmp_path_factory.mktemp("keras_evil")
    marker = base / "marker.txt"
    fn = eval(f"lambda z: (open({str(marker)!r}, 'w').write('code ran'), z)[1]")  # noqa: S307 - the test's own payload
    inp = keras.Input((4,), name="x")
    out = keras.layers.Lambda(fn, name="evil_lambda")(keras.layers.Dense(2, name="dense")(inp))
    model = keras.Model(inp, out)
    files = {"keras": base / "lambda.keras", "h5": base / "lambda.h5"}
    model.save(files["keras"])
    model.save(files["h5"])
    marker.unlink(missing_ok=True)  # building the graph above ran the function once

    # an unknown layer class in the h5's model_config
    import h5py

    plain = keras.Model(inp, keras.layers.Dense(2, name="dense2")(inp))
    files["h5_unknown"] = base / "unknown.h5"
    plain.save(files["h5_unknown"])
    with h5py.File(files["h5_unknown"], "a") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"]["layers"][1]["class_name"] = "EvilDense"
        f.attrs["model_config"] = json.dumps(cfg)
    # a custom module / registered class in the .keras config.json
    files["keras_custom"] = base / "custom.keras"
    plain.save(base / "plain.keras")
    with zipfile.ZipFile(base / "plain.keras") as src, zipfile.ZipFile(files["keras_custom"], "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                cfg["config"]["layers"][1].update(module="evil_package.layers", registered_name="Evil>Dense")
                data = json.dumps(cfg).encode()
            dst.writestr(item, data)
    return files, marker


@pytest.mark.parametrize("loader,kind", [("load_keras_file", "keras"), ("load_keras_file", "h5"),
                                         ("load_h5_model", "h5"), ("read_legacy_h5", "h5")])
def test_keras_lambda_layer_is_refused(keras_files, loader, kind):
    from acg2vec_lab.models.deepdanbooru import loaders as L

    files, marker = keras_files
    with pytest.raises(L.LoadError, match="Lambda") as info:
        getattr(L, loader)(files[kind])
    assert str(files[kind]) in str(info.value) and "evil_lambda" in str(info.value), info.value
    assert not marker.exists(), f"{loader}({kind}): the Lambda ran"


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_project_folder_with_a_lambda_model_is_refused(keras_files, tmp_path, kind):
    from acg2vec_lab.models.deepdanbooru import loaders as L

    files, marker = keras_files
    (tmp_path / "project.json").write_text(json.dumps({"model": "evil"}))
    (tmp_path / "tags.txt").write_text("a\nb\n")
    model_file = tmp_path / f"model-evil.{kind}"
    model_file.write_bytes(files[kind].read_bytes())
    with pytest.raises(L.LoadError, match="Lambda") as info:
        L.load_project(tmp_path)
    assert str(model_file) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("kind,why", [("h5_unknown", "'EvilDense', not a built-in"),
                                      ("keras_custom", "module 'evil_package.layers'")])
def test_keras_unknown_class_is_refused(keras_files, kind, why):
    from acg2vec_lab.models.deepdanbooru import loaders as L

    files, _ = keras_files
    loader = L.load_keras_file if kind.startswith("keras") else L.load_h5_model
    with pytest.raises(L.LoadError, match=re.escape(why)) as info:
        loader(files[kind])
    assert str(files[kind]) in str(info.value)


def test_keras_lambda_payload_is_live(keras_files):
    """Keras' own loader with safe_mode off does run the Lambda: the refusals above are not vacuous."""
    import keras

    files, marker = keras_files
    keras.saving.load_model(files["keras"], safe_mode=False)
    assert marker.read_text() == "code ran"
    marker.unlink()


def test_keras_allow_list_walks_nested_models_and_wrappers():
    inner = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "TimeDistributed", "name": "td", "config": {"layer": {"class_name": "Lambda", "name": "deep"}}}]}}
    outer = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "name": "d"}, inner]}}
    with pytest.raises(UnsafeModelFile, match="f.h5.*'td'.*TimeDistributed"):  # not allowed itself
        check_keras_config(outer, "f.h5")
    inner["config"]["layers"][0] = {"class_name": "Dense", "name": "d2", "config": {}}
    check_keras_config(outer, "f.h5")  # built-ins only: accepted
    inner["config"]["layers"].append({"class_name": "TFOpLambda", "name": "op"})
    with pytest.raises(UnsafeModelFile, match="'op'"):
        check_keras_config(outer, "f.h5")
    assert "Lambda" not in KERAS_LAYER_ALLOWLIST and "Conv2D" in KERAS_LAYER_ALLOWLIST


# --------------------------------------------------------------------------------------------- the source

FORBIDDEN = ("weights_only=False", "pickle.load", "pickle.loads", "allow_pickle=True")


def test_package_source_never_unpickles():
    """No module of the package may spell a trusting load (this file's own payload checks live in tests/)."""
    hits = []
    for path in sorted(PKG.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for lineno, line in enumerate(text.splitlines(), 1):
            compact = re.sub(r"\s+", "", line)
            hits += [f"{path.relative_to(PKG.parent)}:{lineno}: {bad}" for bad in FORBIDDEN if bad in compact]
    assert not hits, "trusting loads in the package:\n" + "\n".join(hits)
    # the scan sees what it looks for (a scan that can never fire would prove nothing)
    assert any(bad in re.sub(r"\s+", "", "x = np.load(p, allow_pickle = True)") for bad in FORBIDDEN)


def _np_load_calls(path: Path) -> list[tuple[int, bool]]:
    import ast

    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy"):
            explicit = any(k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False
                           for k in node.keywords)
            out.append((node.lineno, explicit))
    return out


# np.load calls in modules outside this change that rely on numpy's default instead of saying
# allow_pickle=False (safe today: the default is False; the issue asks for it to be explicit)
NP_LOAD_DEFAULT_ONLY: set[str] = set()  # files allowed to rely on numpy's default (none: say it explicitly)


def test_np_load_says_allow_pickle_false():
    implicit = {str(p.relative_to(PKG.parent)): [ln for ln, ok in _np_load_calls(p) if not ok]
                for p in sorted(PKG.rglob("*.py"))}
    implicit = {k: v for k, v in implicit.items() if v}
    unexpected = {k: v for k, v in implicit.items() if k not in NP_LOAD_DEFAULT_ONLY}
    assert not unexpected, f"np.load without allow_pickle=False: {unexpected}"
    fixed = NP_LOAD_DEFAULT_ONLY - set(implicit)
    assert not fixed, f"{sorted(fixed)} now say allow_pickle=False: remove them from NP_LOAD_DEFAULT_ONLY"
