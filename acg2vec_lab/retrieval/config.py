"""Sizes of the retrieval and embedding-map notebooks (``configs/retrieval/{tiny,small,full}.json``)."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class RetrievalConfig:
    """What the retrieval notebooks use.

    Attributes:
        max_gallery: gallery images (train split of the synthetic set, first N by id).
        max_queries: query images (test split).
        ks: cut-offs for recall/precision/mAP/nDCG.
        jaccard_threshold: tag-overlap relevance (general tags), Jaccard >= this.
        umap_n_neighbors: UMAP neighbourhood size.
        umap_min_dist: UMAP minimum distance.
        umap_pca: PCA dimensions before UMAP (0 = none).
        map_points: images drawn on each map.
        index_n: vectors in the notebook-scale index comparison.
        index_dim: their dimension (padded/projected EfficientNet-Lite0 features + structured noise).
        index_queries: queries for recall / QPS in that comparison.
    """

    max_gallery: int = 200
    max_queries: int = 40
    ks: tuple = (1, 5, 10)
    jaccard_threshold: float = 0.3
    umap_n_neighbors: int = 15
    umap_min_dist: float = 0.1
    umap_pca: int = 50
    map_points: int = 240
    index_n: int = 5000
    index_dim: int = 256
    index_queries: int = 100
