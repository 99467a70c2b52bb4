"""EfficientNet-Lite0 real weights, the chance baseline, and compare_embedders on a small fake set."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acg2vec_lab.embedders import Embedder
from acg2vec_lab.embedders.chance import make_embedders as chance_embedders
from acg2vec_lab.retrieval import evaluate


@pytest.mark.assets
def test_efficientnet_lite0_real_weights_recognise_a_daisy():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from acg2vec_lab.embedders.efficientnet_lite0 import DIM, WEIGHTS, classify, encode, make_embedders

    (emb,) = make_embedders("smoke")
    assert emb.weights == WEIGHTS and emb.weights.startswith("real:") and emb.dim == DIM == 1280
    flower = Image.fromarray(sklearn_datasets.load_sample_image("flower.jpg"))
    probs = classify([flower])
    assert probs.shape == (1, 1000) and int(probs.argmax()) == 985  # ImageNet 985 = daisy
    v = encode([flower, flower.transpose(Image.FLIP_LEFT_RIGHT), Image.new("RGB", (50, 80), "white")])
    assert v.shape == (3, 1280) and v.dtype == np.float32 and np.isfinite(v).all()
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert cos(v[0], v[1]) > cos(v[0], v[2])  # a mirrored flower is nearer than a blank page


def test_chance_vectors_depend_only_on_input():
    img_emb, txt_emb = chance_embedders("smoke")
    a = Image.new("RGB", (8, 8), "red")
    b = Image.new("RGB", (8, 8), "blue")
    v = img_emb.encode([a, b, a.copy()])
    assert np.allclose(v[0], v[2]) and not np.allclose(v[0], v[1])
    assert np.allclose(np.linalg.norm(v, axis=1), 1)
    assert txt_emb.encode(["x"]).shape == (1, 128) and img_emb.weights.startswith("none:")


@dataclasses.dataclass
class FakeTag:
    name: str
    category: int


@dataclasses.dataclass
class FakePost:
    id: int
    md5: str
    tags: list
    score: int = 0


class FakeSet:
    """Minimal DanbooruDataset stand-in: image files whose colour encodes the character."""

    def __init__(self, root: Path, n: int = 24):
        self.root = root
        self.posts = []
        colours = {"alice": "red", "bob": "green", "carol": "blue"}
        for i in range(n):
            ch = list(colours)[i % 3]
            tags = [FakeTag(ch, 4), FakeTag("series_" + ("x" if ch != "carol" else "y"), 3), FakeTag("solo", 0)]
            im = Image.new("RGB", (16, 16), colours[ch])
            im.putpixel((0, 0), (i, i, i))  # every file differs (the chance embedder hashes the pixels)
            im.save(root / f"{i}.png")
            self.posts.append(FakePost(i, f"md5{i}", tags))

    def image_path(self, post):
        return self.root / f"{post.id}.png"

    def split(self, name):
        return [p for p in self.posts if (p.id % 4 == 0) == (name == "test")]


def test_compare_embedders_scores_a_perfect_model_above_chance(tmp_path, monkeypatch):
    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path / "cache"))
    ds = FakeSet(tmp_path)
    calls = []

    def colour_encode(items):
        calls.append(len(items))
        out = []
        for p in items:
            rgb = np.asarray(Image.open(p).convert("RGB"), dtype=np.float32).mean((0, 1))
            out.append(rgb / 255 + 1e-3)
        return np.array(out, dtype=np.float32)

    perfect = Embedder("colour", "image", 3, "random init", colour_encode)
    embs = {"chance": chance_embedders("smoke")[0], "colour": perfect}
    table = evaluate.compare_embedders(ds, embs, ks=(1, 5))
    assert list(table["model"]) == ["colour", "chance"] and set(table["weights"]) == {"random init", embs["chance"].weights}
    colour = table.set_index("model").loc["colour"]
    chance = table.set_index("model").loc["chance"]
    assert colour["character/mAP@10"] == pytest.approx(1.0) and colour["character/recall@1"] > 0
    assert colour["character/median_rank"] == 1.0
    assert chance["character/mAP@10"] < 0.9
    assert colour["character/n_queries"] == 6
    # the second call reads the cached embeddings instead of encoding again
    n_calls = len(calls)
    evaluate.compare_embedders(ds, embs, ks=(1, 5))
    assert len(calls) == n_calls


def test_neighbour_purity_against_chance():
    rng = np.random.default_rng(0)
    labels = ["a"] * 10 + ["b"] * 10 + [None] * 5
    x = np.concatenate([rng.normal(size=(10, 4)) + 5, rng.normal(size=(10, 4)) - 5, rng.normal(size=(5, 4))])
    assert evaluate.neighbour_purity(x, labels, k=5) > 0.9
    assert evaluate.label_chance_purity(labels) == pytest.approx(9 / 24)
