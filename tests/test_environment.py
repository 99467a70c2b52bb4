"""The environment: both frameworks in one process, the conda spec in sync, a light UMAP import."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from acg2vec_lab.paths import PROJECT_DIR


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_tensorflow_and_torch_in_one_process():
    # open_clip / sentence-transformers pull in triton, whose LLVM clashes with TensorFlow's unless
    # loaded first; the package handles it at import, in either framework order.
    for order in ("tensorflow, torch", "torch, tensorflow"):
        out = _python(
            "import acg2vec_lab\n"
            f"import {order}\n"
            "import open_clip, sentence_transformers, faiss\n"
            "import numpy as np\n"
            "a = torch.ones(2, 3).numpy(); b = tensorflow.ones((2, 3)).numpy()\n"
            "assert np.array_equal(a, b)\n"
            "t = tensorflow.constant(torch.arange(6.0).reshape(2, 3).numpy())\n"
            "print('ok', float(tensorflow.reduce_sum(t)))\n"
        )
        assert out.returncode == 0 and "ok 15.0" in out.stdout, out.stderr[-2000:]


def test_import_umap_does_not_pull_frameworks():
    out = _python(
        "import sys, acg2vec_lab.viz as v\n"
        "u = v.import_umap()\n"
        "print(hasattr(u, 'UMAP'), 'tensorflow' in sys.modules, 'torch' in sys.modules)\n"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False", "False"]


def test_package_import_is_light_and_offline():
    out = _python("import sys, os, acg2vec_lab\nprint('tensorflow' in sys.modules, os.environ['HF_HUB_OFFLINE'])")
    assert out.stdout.split() == ["False", "1"], out.stderr[-2000:]


def _pins_from_pyproject() -> dict[str, str]:
    data = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    reqs = data["project"]["dependencies"] + [d for group in data["project"]["optional-dependencies"].values() for d in group]
    return dict(r.split("==") for r in reqs)


def test_environment_yml_matches_pyproject():
    text = (PROJECT_DIR / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.M)
    assert re.search(r"^\s*-\s*pip\s*$", text, re.M)
    pip_pins = dict(m.groups() for m in re.finditer(r"^\s*-\s*([A-Za-z0-9_.\-]+)==([^\s]+)\s*$", text, re.M))
    assert pip_pins == _pins_from_pyproject()
    assert re.search(r"^\s*-\s*-e \.\s*$", text, re.M)


def test_lock_covers_every_direct_pin():
    lock = dict(l.strip().split("==") for l in (PROJECT_DIR / "requirements/lock.txt").read_text().splitlines() if "==" in l)
    norm = lambda s: s.lower().replace("_", "-")
    lock = {norm(k): v for k, v in lock.items()}
    for name, version in _pins_from_pyproject().items():
        assert lock.get(norm(name)) == version, f"{name}: pyproject {version}, lock {lock.get(norm(name))}"
