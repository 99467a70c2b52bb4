"""NaN guard and BatchNorm statistics check/repair on a small Keras model."""
from __future__ import annotations

import numpy as np

import acg2vec_lab  # noqa: F401  (before tensorflow)


def _model():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((6,))
    x = keras.layers.Dense(8)(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    out = keras.layers.Dense(1)(x)
    return keras.Model(inp, out)


def test_check_and_repair_bn_statistics_by_reestimation():
    from acg2vec_lab.train.guards import check_bn_statistics, corrupt_bn_statistics, repair_bn_statistics

    m = _model()
    rng = np.random.default_rng(0)
    data = [rng.normal(2.0, 3.0, (64, 6)).astype("float32") for _ in range(4)]
    assert check_bn_statistics(m) == []
    name = corrupt_bn_statistics(m, kind="nan")
    issues = check_bn_statistics(m)
    assert {i.layer for i in issues} == {name} and "nan" in {i.problem for i in issues}
    w_before = [w.numpy().copy() for w in m.trainable_weights]
    report = repair_bn_statistics(m, data, method="reestimate")
    assert report["issues_after"] == [] and report["batches"] == 4
    # the re-estimated moving mean is the average of the batch means of the BN input
    bn = m.layers[2]
    dense_out = np.concatenate([m.layers[1](x).numpy() for x in data])
    assert np.allclose(bn.moving_mean.numpy(), dense_out.mean(0), atol=1e-4)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(w_before, m.trainable_weights))


def test_nan_to_num_repair_and_other_problems():
    from acg2vec_lab.train.guards import check_bn_statistics, corrupt_bn_statistics, repair_bn_statistics

    m = _model()
    corrupt_bn_statistics(m, kind="negative_variance")
    assert {i.problem for i in check_bn_statistics(m)} == {"negative_variance"}
    m2 = _model()
    corrupt_bn_statistics(m2, kind="exploded")
    assert {"exploded_mean", "exploded_variance"} <= {i.problem for i in check_bn_statistics(m2)}
    m3 = _model()
    corrupt_bn_statistics(m3, kind="nan")
    rep = repair_bn_statistics(m3, method="nan_to_num")
    assert rep["issues_after"] == []  # NaN -> 0 (the original's crude fix)
    assert np.isfinite(m3.layers[2].moving_variance.numpy()).all()


def test_nan_guard_reports_batch_rolls_back_and_stops():
    import keras

    from acg2vec_lab.train.guards import NaNGuard

    m = _model()
    m.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=False)
    x = np.random.default_rng(0).normal(size=(80, 6)).astype("float32")
    y = np.zeros((80, 1), "float32")
    y[50] = np.nan  # batch 6 of size 8 carries a NaN target -> NaN loss from there on
    guard = NaNGuard(snapshot_every=1, verbose=False)
    m.fit(x, y, batch_size=8, epochs=3, shuffle=False, callbacks=[guard], verbose=0)
    assert guard.triggered and guard.events[0]["batch"] == 6 and guard.events[0]["epoch"] == 0
    assert guard.events[0]["restored_from"] == [0, 5]
    assert all(np.isfinite(w.numpy()).all() for w in m.weights)  # rolled back to finite weights
