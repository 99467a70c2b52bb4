"""Port helpers: named permutations, transposed-conv crop arithmetic, reflect-pad order (single layers)."""
import numpy as np
import pytest
import torch

import acg2vec_lab  # noqa: F401  (before tensorflow)
from acg2vec_lab.port import layout, transposed


def test_permutations_shapes_and_roundtrip():
    w = np.random.rand(8, 3, 4, 5)
    assert layout.oihw_to_hwio(w).shape == (4, 5, 3, 8)
    np.testing.assert_array_equal(layout.hwio_to_oihw(layout.oihw_to_hwio(w)), w)
    np.testing.assert_array_equal(layout.hwoi_to_iohw(layout.iohw_to_hwoi(w)), w)
    assert layout.reversed_axes(w).shape == (5, 4, 3, 8)
    with pytest.raises(ValueError):
        layout.oihw_to_hwio(w[0])
    with pytest.raises(ValueError):
        layout.oihw_to_hwio(w, expect=(8, 3, 4, 4))
    x = np.random.rand(2, 3, 5, 7)
    np.testing.assert_array_equal(layout.nhwc_to_nchw(layout.nchw_to_nhwc(x)), x)


@pytest.mark.parametrize("k,s,p", [(4, 2, 3), (5, 3, 2), (2, 2, 0)])
def test_transposed_valid_plus_crop_matches_torch(k, s, p):
    import tensorflow as tf

    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose2d(3, 2, k, s, p)
    x = torch.rand(1, 3, 7, 9)
    ref = conv(x).detach().numpy().transpose(0, 2, 3, 1)
    kernel = layout.iohw_to_hwoi(conv.weight.detach().numpy())
    y = tf.nn.conv2d_transpose(tf.constant(x.numpy().transpose(0, 2, 3, 1)), kernel,
                               [1, transposed.valid_out(7, k, s), transposed.valid_out(9, k, s), 2], s, "VALID")
    a, b = transposed.crop(k, s, p)
    y = (y[:, a:y.shape[1] - b, a:y.shape[2] - b] + conv.bias.detach().numpy()).numpy()
    assert y.shape[1] == transposed.torch_out(7, k, s, p)
    assert np.abs(y - ref).max() < 1e-5
    # a flipped kernel is wrong (so the check above can fail)
    yf = tf.nn.conv2d_transpose(tf.constant(x.numpy().transpose(0, 2, 3, 1)), kernel[::-1, ::-1].copy(),
                                [1, transposed.valid_out(7, k, s), transposed.valid_out(9, k, s), 2], s, "VALID")
    yf = (yf[:, a:yf.shape[1] - b, a:yf.shape[2] - b] + conv.bias.detach().numpy()).numpy()
    assert np.abs(yf - ref).max() > 1e-3
    if k - s != 2 * p:
        assert transposed.same_out(7, s) != transposed.torch_out(7, k, s, p)


def test_reflect_pad_order():
    import tensorflow as tf

    x = torch.rand(1, 2, 6, 8)
    pad = (1, 3, 2, 4)  # left, right, top, bottom
    ref = torch.nn.functional.pad(x, pad, mode="reflect").numpy().transpose(0, 2, 3, 1)
    y = tf.pad(x.numpy().transpose(0, 2, 3, 1), layout.torch_reflect_pad_to_tf(pad), mode="REFLECT").numpy()
    np.testing.assert_array_equal(y, ref)
    wrong = tf.pad(x.numpy().transpose(0, 2, 3, 1), [[0, 0], [1, 3], [2, 4], [0, 0]], mode="REFLECT").numpy()
    assert wrong.shape != ref.shape or not np.array_equal(wrong, ref)
