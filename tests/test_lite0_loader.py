"""EfficientNet-Lite0: one loader behind the real-image embedder and Pix2Score's Lite0 trunk."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.assets
def test_pix2score_trunk_and_embedder_share_one_network_and_agree():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from PIL import Image

    from acg2vec_lab.embedders import efficientnet_lite0 as E
    from acg2vec_lab.models.pix2score.lite import LITE_SIZE, lite_features, load_lite0

    assert load_lite0() is E.load_model()  # the same cached network, not a second copy from a second loader
    flower = np.asarray(sklearn_datasets.load_sample_image("flower.jpg"))[:LITE_SIZE, :LITE_SIZE]
    images = np.stack([flower, flower[:, ::-1]])  # (2, 224, 224, 3) uint8 NHWC: no resize on either path
    got = lite_features(load_lite0(), images)
    want = E.encode([Image.fromarray(im) for im in images])
    assert got.shape == want.shape == (2, E.DIM)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # same [-1, 1] scaling, same pooled map
