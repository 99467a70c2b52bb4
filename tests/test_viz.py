"""viz: palette stability, figures returned with the conventions, seeded UMAP."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from acg2vec_lab import viz  # noqa: E402


def test_label_colours_are_fixed_by_label_not_order():
    a = viz.label_colors(["rem", "ram", "emilia", "rem", None])
    b = viz.label_colors(["emilia", "rem", None, "ram", "ram"])
    assert a == b and None not in a and len(set(a.values())) == 3


def test_scatter_and_curves_follow_conventions():
    viz.style()
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(30, 2))
    labels = ["a", "b", "c"] * 10
    title = viz.map_title("efficientnet_lite0", 15, 0.1, 0, "character")
    fig = viz.scatter_map(coords, labels, title)
    ax = fig.axes[0]
    assert ax.get_title() == title and "n_neighbors=15" in title and "min_dist=0.1" in title and "seed=0" in title
    assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
    fig2 = viz.recall_curves([1, 5, 10], {"m": [0.1, 0.3, 0.5]}, chance=[0.01, 0.05, 0.1])
    assert [line.get_label() for line in fig2.axes[0].get_lines()] == ["m", "chance"]
    assert viz.score_bins([5, 10, 1000], [10, 30]) == ["< 10", "[10, 30)", ">= 30"]


def test_gallery_marks_relevance():
    img = Image.new("RGB", (16, 16), "white")
    fig = viz.retrieval_gallery([img, img], [[img, img], [img]], relevant=[[True, False], [True]])
    axes = np.array(fig.axes).reshape(2, 3)
    assert matplotlib.colors.to_hex(axes[0, 1].spines["left"].get_edgecolor()) == viz.RELEVANT
    assert matplotlib.colors.to_hex(axes[0, 2].spines["left"].get_edgecolor()) == viz.NOT_RELEVANT
    assert not axes[1, 2].axison  # a shorter result row leaves the cell empty


@pytest.mark.slow  # numba compilation: ~50 s cold, a few seconds once $NUMBA_CACHE_DIR is warm
def test_umap_is_seeded_and_uses_pca():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(40, 20)) + 4, rng.normal(size=(40, 20)) - 4]).astype(np.float32)
    a = viz.umap_embed(x, n_neighbors=10, min_dist=0.1, seed=3, pca=5)
    b = viz.umap_embed(x, n_neighbors=10, min_dist=0.1, seed=3, pca=5)
    assert a.shape == (80, 2) and np.allclose(a, b)
    # the two blobs stay apart on the map
    ca, cb = a[:40].mean(0), a[40:].mean(0)
    assert np.linalg.norm(ca - cb) > 2 * max(a[:40].std(0).max(), a[40:].std(0).max())


def test_map_panels_title_carries_umap_parameters_and_synthetic_stamp():
    from acg2vec_lab.record import mark_synthetic

    coords = np.random.default_rng(0).normal(size=(12, 2))
    fig = viz.map_panels(coords, {"character": ["a", "b"] * 6, "series": ["s"] * 12}, "chance", 10, 0.1, 3)
    title = fig._suptitle.get_text()
    assert "chance" in title and "n_neighbors=10" in title and "min_dist=0.1" in title and "seed=3" in title
    assert [ax.get_title() for ax in fig.axes[:2]] == ["colour: character", "colour: series"]
    stamped = mark_synthetic(fig)._suptitle.get_text()
    assert stamped.startswith("SYNTHETIC") and "seed=3" in stamped  # the stamp keeps the UMAP parameters


def test_similarity_heatmap_labels_and_shape_check():
    sim = np.eye(3)
    fig = viz.similarity_heatmap(sim, ["a", "b", "c"], "cosine")
    ax = fig.axes[0]
    assert ax.get_title() == "cosine" and [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="does not match 2 names"):
        viz.similarity_heatmap(sim, ["a", "b"], "bad")


def test_show_displays_once_and_closes(monkeypatch):
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig = viz.similarity_heatmap(np.eye(2), ["a", "b"], "t")
    assert viz.show(fig) is None and shown == [fig] and fig.number not in plt.get_fignums()
