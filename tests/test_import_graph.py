"""The package's import graph: no cycles (function-level imports counted), frameworks only where declared.

Two rules keep the package layered (issue 14, item 5):

* no module imports, at any level, a module that imports it back: the graph built from every
  ``import`` statement (module top and function bodies) of ``acg2vec_lab`` is acyclic;
* the heavy frameworks (TensorFlow, Keras, PyTorch, open_clip, sentence-transformers, faiss, umap) are
  imported at module top only by the modules in :data:`FRAMEWORK_MODULES` (network definitions that
  subclass a framework's classes); every other module imports with those frameworks blocked, so listing
  models, reading configs or tagging metrics never pays for a framework, and the TF port of Real-CUGAN
  imports without torch.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import acg2vec_lab

PKG = Path(acg2vec_lab.__file__).parent
HEAVY = ("tensorflow", "keras", "tf_keras", "torch", "torchvision", "open_clip", "sentence_transformers",
         "faiss", "umap", "onnx", "onnxruntime")
# modules whose classes subclass a framework's (nn.Module, keras.Layer ...): they import it at top
FRAMEWORK_MODULES = {
    "acg2vec_lab.models.real_cugan.torch_model",
    "acg2vec_lab.models.real_cugan.tf_model",
    "acg2vec_lab.models.waifu2x",
    "acg2vec_lab.models.deepdanbooru.torch_model",
    "acg2vec_lab.models.joytag.model",
    "acg2vec_lab.models.joytag.loader",
    "acg2vec_lab.models.joytag.loss",
    "acg2vec_lab.models.pix2score.model",
    "acg2vec_lab.models.pix2score.serving",
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def all_modules() -> list[str]:
    return sorted(module_name(p) for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Package modules ``path`` imports anywhere in its body (``from a import b`` counts ``a.b`` when it is a module)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for n in names:
            while n and n not in known:  # `import acg2vec_lab.models.x.y` -> the longest known prefix
                n = n.rpartition(".")[0]
            if n and n != me:
                out.add(n)
    return out


def import_graph() -> dict[str, set[str]]:
    known = set(all_modules())
    return {module_name(p): imports_of(p, known) for p in PKG.rglob("*.py") if "__pycache__" not in p.parts}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None (iterative DFS, three colours)."""
    colour = dict.fromkeys(graph, 0)
    for root in sorted(graph):
        if colour[root]:
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        colour[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child, 2) == 1:
                return path[path.index(child):] + [child]
            elif colour.get(child, 2) == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_package_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 100  # the walk saw the package
    assert "acg2vec_lab.models.deepdanbooru.train" in graph["acg2vec_lab.models.deepdanbooru.tagger"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


_BLOCKED_IMPORT = r"""
import importlib, importlib.abc, json, sys
blocked = tuple(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"blocked framework {name}")
        return None

sys.meta_path.insert(0, Block())
result = {}
for mod in sys.argv[2].split(","):
    try:
        importlib.import_module(mod)
        result[mod] = None
    except ImportError as e:
        result[mod] = str(e)
    for m in [m for m in sys.modules if m.startswith("acg2vec_lab.") and m != "acg2vec_lab"]:
        del sys.modules[m]  # each module on its own: one module's import must not rescue another's
print(json.dumps(result))
"""


def _import_with_blocked(blocked: tuple[str, ...], modules: list[str]) -> dict[str, str | None]:
    out = subprocess.run([sys.executable, "-c", _BLOCKED_IMPORT, ",".join(blocked), ",".join(modules)],
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_modules_import_without_frameworks_except_the_declared_ones():
    mods = all_modules()
    assert FRAMEWORK_MODULES <= set(mods), FRAMEWORK_MODULES - set(mods)
    res = _import_with_blocked(HEAVY, mods)
    failed = {m: e for m, e in res.items() if e and m not in FRAMEWORK_MODULES}
    assert not failed, "these modules need a framework at import time (import it inside the function):\n" + \
        "\n".join(f"  {m}: {e}" for m, e in sorted(failed.items()))
    # the exemptions are needed: a module that no longer needs its framework leaves the list
    unneeded = sorted(m for m in FRAMEWORK_MODULES if res[m] is None)
    assert not unneeded, f"no longer framework modules, remove them from FRAMEWORK_MODULES: {unneeded}"


def test_real_cugan_tf_port_and_tiling_import_without_torch():
    res = _import_with_blocked(("torch", "torchvision"), ["acg2vec_lab.models.real_cugan.tf_model",
                                                          "acg2vec_lab.models.real_cugan.tiling",
                                                          "acg2vec_lab.models.real_cugan.geometry"])
    assert res == dict.fromkeys(res), res
