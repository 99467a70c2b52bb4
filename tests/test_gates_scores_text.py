"""The Pix2Score and DCLIP quality gates pass for a model trained normally and fail for one broken on purpose.

* Pix2Score: the notebook's learnability control (labels that are a function of the pixels, brightness bins)
  is learned and beats the majority class by the gate's margin; the same training on labels shuffled across
  images does not pass the gate. (This replaces the ``0 <= accuracy <= 1`` check that trained on random labels.)
* DCLIP: the smoke run of notebook 08 (same config and seed) passes its recall gates; the same run with
  learning rate 0 (so: the untrained model) fails them.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from acg2vec_lab import load_config
from acg2vec_lab.gates import QualityGateError, check_all


@pytest.fixture(scope="module")
def smoke_data():
    from acg2vec_lab.data import synthetic_dataset

    return synthetic_dataset("smoke")


# ------------------------------------------------------------------------------------------- Pix2Score
@pytest.fixture(scope="module")
def pixiv(smoke_data):
    from acg2vec_lab.models.pix2score.experiment import prepare_data

    return prepare_data(smoke_data, load_config("pix2score", "smoke"))


def _control_gates(data, shuffle: bool):
    from acg2vec_lab.models.pix2score import train as p2s
    from acg2vec_lab.models.pix2score.experiment import CONTROL_EPOCHS, control_gates, control_labels

    cfg = dataclasses.replace(load_config("pix2score", "smoke"), epochs=CONTROL_EPOCHS)
    y_train, y_test = control_labels(data.x["train"]), control_labels(data.x["test"])
    if shuffle:
        perm = np.random.default_rng(0).permutation(len(data.x["train"]))
        y_train = {h: v[perm] for h, v in y_train.items()}
    model, _ = p2s.train(cfg, data.x["train"], y_train, seed=0)
    return control_gates("smoke", p2s.head_metrics(y_test, p2s.predict(model, data.x["test"])))


def test_control_labels_are_a_function_of_the_pixels():
    from acg2vec_lab.models.pix2score.experiment import control_labels

    x = np.zeros((6, 4, 4, 3), np.uint8)
    x[:, :, :, :] = np.array([0, 40, 80, 120, 160, 200], np.uint8)[:, None, None, None]
    y = control_labels(x)
    assert y["bookmark_predict"].tolist() == [0, 0, 1, 1, 2, 2] and y["sanity_predict"].tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="images"):
        control_labels(np.zeros((3, 4, 4), np.uint8))


def test_pix2score_learns_a_learnable_signal_and_not_shuffled_labels(pixiv):
    check_all(_control_gates(pixiv, shuffle=False), record=False)  # raises if the control is not learned
    with pytest.raises(QualityGateError, match="pix2score/control"):
        check_all(_control_gates(pixiv, shuffle=True), record=False)


# ------------------------------------------------------------------------------------------------ DCLIP
@pytest.fixture(scope="module")
def dclip_data(smoke_data):
    from acg2vec_lab.models.dclip import pipeline as P

    return P.prepare_data(load_config("dclip", "smoke"), smoke_data)


def _dclip_gates(data, lr: float | None = None):
    from acg2vec_lab.models.dclip import pipeline as P

    cfg = load_config("dclip", "smoke")
    if lr is not None:
        cfg = dataclasses.replace(cfg, lr=lr)
    run = P.run(cfg, data, None)
    trained = P.evaluate_model(run["model"], run["tokenize"], data, cfg)
    return P.recall_gates("smoke", trained, P.random_baseline(cfg, data))


def test_dclip_gate_passes_trained_and_fails_lr0(dclip_data):
    check_all(_dclip_gates(dclip_data), record=False)
    with pytest.raises(QualityGateError, match="recall@5_vs_untrained"):
        check_all(_dclip_gates(dclip_data, lr=0.0), record=False)
