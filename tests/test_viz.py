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


def test_image_grid_cells_frames_and_per_row_colormaps():
    img = np.zeros((8, 8, 3), np.uint8)
    grey = np.linspace(0, 1, 64).reshape(8, 8)
    fig = viz.image_grid([[img, img, None], [grey]], titles=[["a", "b", ""], ["edges"]],
                         frames=[[None, "#123456", None], [None]], row_labels=["rgb", "grad"],
                         cmap=[None, "magma"], vmin=[None, 0.0], vmax=[None, 0.5], captions=[["x\ny", "", ""], [""]])
    axes = np.array(fig.axes).reshape(2, 3)
    assert [axes[0, 0].get_title(), axes[0, 1].get_title(), axes[1, 0].get_title()] == ["a", "b", "edges"]
    assert not axes[0, 2].axison and not axes[1, 1].axison and not axes[1, 2].axison  # None and short rows
    assert not axes[0, 0].spines["left"].get_visible()
    assert matplotlib.colors.to_hex(axes[0, 1].spines["top"].get_edgecolor()) == "#123456"
    im = axes[1, 0].get_images()[0]
    assert im.get_cmap().name == "magma" and im.get_clim() == (0.0, 0.5)
    assert axes[1, 0].get_ylabel() == "grad" and axes[0, 0].texts[0].get_text() == "x\ny"
    assert [len(r) for r in viz.rows_of(list(range(7)), 3)] == [3, 3, 1]
    with pytest.raises(ValueError, match="cmap has 3 entries for 2 rows"):
        viz.image_grid([[img], [img]], cmap=["a", "b", "c"])
    with pytest.raises(ValueError, match="no images"):
        viz.image_grid([])


def test_loss_curves_one_or_many():
    fig = viz.loss_curves([3.0, 2.0, 1.5], title="MNRL loss")
    ax = fig.axes[0]
    assert ax.get_title() == "MNRL loss" and ax.get_legend() is None
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3] and list(ax.get_lines()[0].get_ydata()) == [3.0, 2.0, 1.5]
    fig2 = viz.loss_curves({"random": [2, 1], "e5 text": [1.5, 1.0, 0.5]}, ylabel="contrastive loss")
    ax2 = fig2.axes[0]
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["random", "e5 text"]
    assert ax2.get_ylabel() == "contrastive loss" and len(ax2.get_lines()[1].get_xdata()) == 3


def test_umap_map_embeds_once_and_titles_with_parameters(monkeypatch):
    calls = []

    def fake_embed(x, n_neighbors, min_dist, seed, pca=None, metric="cosine"):
        calls.append((n_neighbors, min_dist, seed, pca, metric))
        return np.asarray(x)[:, :2]

    monkeypatch.setattr(viz, "umap_embed", fake_embed)
    x = np.random.default_rng(0).normal(size=(12, 4))
    fig, coords = viz.umap_map(x, {"language": ["ja", "en"] * 6, "work": ["w1"] * 6 + ["w2"] * 6},
                               "acgvoc2vec", n_neighbors=7, min_dist=0.2, seed=5)
    assert calls == [(7, 0.2, 5, None, "cosine")] and np.array_equal(coords, x[:, :2])
    title = fig._suptitle.get_text()
    assert title == viz.map_title("acgvoc2vec", 7, 0.2, 5)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["colour: language", "colour: work"]


def test_grouped_bars_heights_gaps_and_chance_line():
    fig = viz.grouped_bars({"character": {"untuned": 0.4, "tuned": 0.6}, "bookmark_bin": {"untuned": 0.3}},
                           "recall@10", "recall@10", chance={"character": 0.1, "bookmark_bin": 0.2})
    ax = fig.axes[0]
    heights = {b.get_label(): [r.get_height() for r in b] for b in ax.containers}
    assert heights == {"untuned": [0.4, 0.3], "tuned": [0.6]}  # "tuned" has no bookmark_bin bar
    chance = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [list(line.get_ydata()) for line in chance] == [[0.1, 0.1], [0.2, 0.2]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["character", "bookmark_bin"]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["chance", "tuned", "untuned"]
    assert viz.grouped_bars({"s0": {"channels": 256}}, "t", "size", log2=True).axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="no values"):
        viz.grouped_bars({}, "t", "y")


def test_labelled_image_grid_of_the_data_tour():
    from acg2vec_lab.data import tour

    img = Image.new("RGB", (8, 8), "white")
    fig = tour.plot_labelled_images([(img, {"kind": "sprite", "outfit": "a"}), (img, {"kind": "bg"})] * 2, ncols=3,
                                    keys=("kind", "outfit"))
    axes = np.array(fig.axes).reshape(2, 3)
    assert axes[0, 0].get_title() == "sprite\na" and axes[0, 1].get_title() == "bg" and not axes[1, 1].axison


def test_post_grid_of_the_data_tour_captions_every_post():
    from acg2vec_lab.data import tour
    from acg2vec_lab.data.synthetic import synthetic_dataset

    ds = synthetic_dataset("smoke")
    posts = ds.posts[:5]
    fig = tour.plot_post_grid(ds, posts, ncols=3, title="SYNTHETIC posts")
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes.ravel()[:5]] == [f"post {p.id}" for p in posts]
    assert axes[0, 0].texts[0].get_text() == tour._caption(posts[0]) and not axes[1, 2].axison
    assert fig._suptitle.get_text() == "SYNTHETIC posts"
