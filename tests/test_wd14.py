"""WD14 / wd-v3 ONNX taggers (``acg2vec_lab.models.wd14``) on folders of the released format.

The folders are written here by code independent of the package: a tiny network built with
``onnx.helper`` (NHWC float32 input named like the released models, dynamic batch, fixed 3-channel
square size; Transpose -> Conv -> Relu -> GlobalAveragePool -> Flatten -> dense head -> Sigmoid) and a
``selected_tags.csv`` written by hand. Predictions and embeddings are compared with a numpy
re-implementation of the same network on inputs preprocessed by hand (white composite, centred white
square, PIL bicubic, BGR), so the preprocessing and the channel order are tested, not just plumbing.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from acg2vec_lab.models.wd14.tagger import (  # noqa: E402
    find_embedding_tensor,
    is_wd14_folder,
    load_wd14_tagger,
    mcut_policy,
    mcut_threshold,
    providers_for_device,
)
from acg2vec_lab.tagging.thresholds import ThresholdPolicy, select_tags  # noqa: E402

SIZE = 32
CSV_ROWS = [  # tag_id,name,category,count as in the released files: ratings first, then general, then character
    (9999999, "general", 9, 807691),
    (9999998, "sensitive", 9, 3016211),
    (9999997, "questionable", 9, 1023123),
    (9999996, "explicit", 9, 559316),
    (470575, "1girl", 0, 4225150),
    (212816, "solo", 0, 3466496),
    (13197, "long_hair", 0, 3025367),
    (8601, "breasts", 0, 1728291),
    (1821, "^_^", 0, 60000),
    (416805, "white_background", 0, 1040000),
    (1309835, "hatsune_miku", 4, 120000),
    (1296014, "hakurei_reimu", 4, 80000),
    (1365050, "kafuu_chino", 4, 30000),
]
N_TAGS = len(CSV_ROWS)
C_OUT = 5


def write_selected_tags(path, rows=CSV_ROWS, header="tag_id,name,category,count"):
    lines = [header] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_weights(seed=0, n_tags=N_TAGS):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 1, (C_OUT, 3, 3, 3)).astype(np.float32) / 255.0  # OIHW
    w1[:, 0] *= 3.0  # the first input channel (B in BGR) weighs differently from the third (R)
    w1[:, 2] *= -0.5
    b1 = rng.normal(0, 0.1, C_OUT).astype(np.float32)
    w2 = rng.normal(0, 1.5, (C_OUT, n_tags)).astype(np.float32)
    b2 = np.linspace(-2.0, 2.0, n_tags).astype(np.float32)
    return w1, b1, w2, b2


def build_model(path, input_name="input_1:0", head="matmul", n_tags=N_TAGS, size=SIZE, seed=0,
                input_shape=None):
    """Write a tiny WD14-format network with ``onnx.helper``; returns its weights."""
    w1, b1, w2, b2 = make_weights(seed, n_tags)
    inits = [numpy_helper.from_array(w1, "conv_w"), numpy_helper.from_array(b1, "conv_b")]
    nodes = [
        helper.make_node("Transpose", [input_name], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv_w", "conv_b"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["pooled"], axis=1),
    ]
    if head == "matmul":  # Keras/tf2onnx style: MatMul + Add
        inits += [numpy_helper.from_array(w2, "dense_w"), numpy_helper.from_array(b2, "dense_b")]
        nodes += [helper.make_node("MatMul", ["pooled", "dense_w"], ["logits0"]),
                  helper.make_node("Add", ["logits0", "dense_b"], ["logits"])]
    else:  # PyTorch/timm style: Gemm with a transposed weight
        inits += [numpy_helper.from_array(np.ascontiguousarray(w2.T), "head.weight"),
                  numpy_helper.from_array(b2, "head.bias")]
        nodes += [helper.make_node("Gemm", ["pooled", "head.weight", "head.bias"], ["logits"], transB=1)]
    nodes.append(helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"]))
    shape = input_shape or ["batch", size, size, 3]
    graph = helper.make_graph(
        nodes, "tiny_wd14", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["batch", n_tags])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="test_wd14")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return w1, b1, w2, b2


def numpy_forward(x_nhwc, weights):
    """The same network in numpy: ``(N, S, S, 3)`` -> (probabilities, pooled features)."""
    w1, b1, w2, b2 = weights
    x = np.asarray(x_nhwc, np.float64)
    n, s = x.shape[0], x.shape[1]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out_s = (s + 2 - 3) // 2 + 1
    conv = np.zeros((n, out_s, out_s, C_OUT))
    for ky in range(3):
        for kx in range(3):
            patch = xp[:, ky:ky + 2 * out_s:2, kx:kx + 2 * out_s:2, :]  # (N, o, o, 3)
            conv += patch @ w1[:, :, ky, kx].T.astype(np.float64)
    conv += b1
    pooled = np.maximum(conv, 0).mean(axis=(1, 2))
    logits = pooled @ w2.astype(np.float64) + b2
    return 1 / (1 + np.exp(-logits)), pooled


def hand_preprocess(image, size=SIZE):
    """Independent reference: white composite (numpy, exact for alpha 0/255), centred white square, PIL bicubic, BGR."""
    arr = np.asarray(image.convert("RGBA"), dtype=np.float64)
    a = arr[..., 3:4] / 255.0
    rgb = np.round(arr[..., :3] * a + 255.0 * (1 - a))
    h, w = rgb.shape[:2]
    side = max(h, w)
    sq = np.full((side, side, 3), 255.0)
    top, left = (side - h) // 2, (side - w) // 2
    sq[top:top + h, left:left + w] = rgb
    im = Image.fromarray(sq.astype(np.uint8), "RGB")
    if side != size:
        im = im.resize((size, size), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32)[:, :, ::-1]


def make_image(w, h, seed, alpha=False):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 4 if alpha else 3), dtype=np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]  # R ramps left to right
    arr[..., 2] = 255 - arr[..., 0]  # B is its mirror: R and B differ everywhere
    if alpha:
        arr[..., 3] = np.where(rng.random((h, w)) < 0.4, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGBA" if alpha else "RGB")



@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "wd-tiny-tagger-v3"
    d.mkdir()
    weights = build_model(d / "model.onnx")
    write_selected_tags(d / "selected_tags.csv")
    return d, weights


# --------------------------------------------------------------------------- loading and predictions

@pytest.mark.parametrize("input_name,head", [("input_1:0", "matmul"), ("input", "gemm")])
def test_predictions_match_numpy_network(tmp_path, input_name, head):
    build_model(tmp_path / "model.onnx", input_name=input_name, head=head)
    weights = make_weights()
    write_selected_tags(tmp_path / "selected_tags.csv")
    tagger = load_wd14_tagger(tmp_path)
    assert tagger.name == "wd14" and tagger.input_size == (SIZE, SIZE)
    assert tagger.providers == ["CPUExecutionProvider"] and tagger.source == f"released: {tmp_path / 'model.onnx'}"
    assert tagger.tags[:4] == ["rating:general", "rating:sensitive", "rating:questionable", "rating:explicit"]
    assert tagger.csv_names[:4] == ["general", "sensitive", "questionable", "explicit"]
    assert tagger.tags[4:] == [r[1] for r in CSV_ROWS[4:]]
    assert tagger.categories == [r[2] for r in CSV_ROWS]
    images = [make_image(40, 23, 1), make_image(17, 30, 2, alpha=True), make_image(SIZE, SIZE, 3)]
    batch = np.stack([tagger.preprocess(im) for im in images])
    assert batch.shape == (3, SIZE, SIZE, 3) and batch.dtype == np.float32
    ref = np.stack([hand_preprocess(im) for im in images])
    np.testing.assert_array_equal(batch, ref)
    probs = tagger.predict(batch)  # dynamic batch of 3
    assert probs.shape == (3, N_TAGS) and probs.dtype == np.float32
    expected, pooled = numpy_forward(ref, weights)
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-5)
    assert 0.01 < probs.min() and probs.max() < 0.99 and np.ptp(probs) > 0.3  # a network that is not saturated
    # the channel order matters for this network: RGB input would give other probabilities
    rgb_probs, _ = numpy_forward(ref[..., ::-1], weights)
    assert np.abs(rgb_probs - probs).max() > 1e-2
    for i in range(3):  # batch of 1 == row of the batch of 3
        np.testing.assert_allclose(tagger.predict(batch[i:i + 1])[0], probs[i], rtol=1e-5, atol=1e-6)
    emb = tagger.embed(batch)
    assert emb.shape == (3, C_OUT) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, pooled, rtol=1e-4, atol=1e-4)
    assert tagger.embedding_tensor == "pooled"
    p2, e2 = tagger.predict_and_embed(batch)
    np.testing.assert_allclose(p2, probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(e2, emb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tagger.predict(batch), probs, rtol=1e-5, atol=1e-6)  # predict after embed


def test_embedding_never_writes_into_the_folder(folder):
    d, _ = folder
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir()}
    tagger = load_wd14_tagger(d / "model.onnx")  # the model file itself is accepted too
    tagger.embed(np.full((2, SIZE, SIZE, 3), 128, np.float32))
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir()}
    assert before == after


def test_find_embedding_tensor_walks_back_to_the_dense_layer(tmp_path):
    build_model(tmp_path / "a.onnx", head="matmul")
    build_model(tmp_path / "b.onnx", head="gemm")
    for name in ("a.onnx", "b.onnx"):
        graph = onnx.load(str(tmp_path / name)).graph
        assert find_embedding_tensor(graph, "predictions_sigmoid") == "pooled"
    # a weight reaching the MatMul through a Cast (fp16 weights) is still a constant, not the features
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    w = numpy_helper.from_array(np.ones((4, 2), np.float16), "w16")
    nodes = [helper.make_node("Relu", ["x"], ["feat"]),
             helper.make_node("Cast", ["w16"], ["w"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["w", "feat"], ["z"]),  # the weight on the left
             helper.make_node("Sigmoid", ["z"], ["p"])]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 2])], [w])
    assert find_embedding_tensor(graph, "p") == "feat"
    no_dense = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["p"])], "g", [x],
                                 [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 4])])
    with pytest.raises(ValueError, match="MatMul/Gemm"):
        find_embedding_tensor(no_dense, "p")


# --------------------------------------------------------------------------- preprocessing

def test_preprocess_rgba_composited_on_white_and_padded_to_square(folder):
    d, _ = folder
    tagger = load_wd14_tagger(d)
    # no resize (the square side is the model size): every pixel is checked, including the padding
    arr = np.zeros((23, SIZE, 4), np.uint8)
    arr[..., 0], arr[..., 1], arr[..., 2] = 200, 100, 10  # R, G, B
    arr[..., 3] = 255
    arr[:5, :7, 3] = 0  # fully transparent corner -> white
    arr[10, 10] = (40, 80, 120, 128)  # half transparent -> blended with white
    x = tagger.preprocess(Image.fromarray(arr, "RGBA"))
    assert x.shape == (SIZE, SIZE, 3) and x.dtype == np.float32
    top = (SIZE - 23) // 2  # 4: 4 white rows above, 5 below
    assert top == 4
    np.testing.assert_array_equal(x[:top], 255.0)
    np.testing.assert_array_equal(x[top + 23:], 255.0)
    np.testing.assert_array_equal(x[top + 6, 20], [10.0, 100.0, 200.0])  # BGR
    np.testing.assert_array_equal(x[top + 2, 3], [255.0, 255.0, 255.0])  # transparent -> white
    a = 128 / 255
    blend = np.array([120, 80, 40]) * a + 255 * (1 - a)  # B, G, R
    np.testing.assert_allclose(x[top + 10, 10], blend, atol=1.0)
    # with a resize: equal to the hand pipeline (numpy composite and pad, PIL bicubic, BGR)
    for w, h, alpha in [(57, 40, True), (20, 45, False), (9, 9, True)]:
        im = make_image(w, h, w + h, alpha=alpha)
        np.testing.assert_array_equal(tagger.preprocess(im), hand_preprocess(im))
    # a grayscale image is accepted (converted like RGB)
    gray = Image.fromarray(np.full((10, 30), 77, np.uint8), "L")
    np.testing.assert_array_equal(tagger.preprocess(gray), hand_preprocess(gray.convert("RGB")))


# --------------------------------------------------------------------------- MCut, thresholds, ratings

def test_mcut_on_hand_worked_arrays():
    assert mcut_threshold([0.9, 0.8, 0.3, 0.2]) == pytest.approx(0.55)  # gaps .1 .5 .1 -> (0.8 + 0.3) / 2
    assert mcut_threshold(np.array([0.2, 0.9, 0.3, 0.8])) == pytest.approx(0.55)  # order does not matter
    assert mcut_threshold([0.7, 0.1]) == pytest.approx(0.4)
    assert mcut_threshold([1.0, 0.6, 0.2]) == pytest.approx(0.8)  # tied gaps: the first (highest) one
    assert mcut_threshold([0.95, 0.9, 0.88, 0.1, 0.05]) == pytest.approx(0.49)
    with pytest.raises(ValueError, match="two"):
        mcut_threshold([0.5])


def test_mcut_policy_general_and_character_floor():
    cats = [9, 9, 0, 0, 0, 0, 4, 4, 4]
    probs = np.array([0.7, 0.2, 0.9, 0.8, 0.3, 0.2, 0.1, 0.05, 0.01])
    pol = mcut_policy(probs, cats)
    assert pol.per_category[0] == pytest.approx(0.55)
    assert pol.per_category[4] == pytest.approx(0.15)  # MCut 0.075 is below the floor
    tags = [f"t{i}" for i in range(9)]
    out = select_tags(probs, tags, cats, pol)
    assert [t.name for t in out] == ["t2", "t3", "t0"]  # general 0.9, 0.8; no character; rating arg-max
    probs2 = probs.copy()
    probs2[6:] = [0.6, 0.58, 0.1]  # character MCut (0.58 + 0.1) / 2 = 0.34 > 0.15
    pol2 = mcut_policy(probs2, cats, ThresholdPolicy(max_tags=3), general=False)
    assert pol2.per_category == {4: pytest.approx(0.34)} and pol2.max_tags == 3
    names = [t.name for t in select_tags(probs2, tags, cats, pol2)]
    assert names == ["t2", "t3", "t6", "t0"]  # general at the default 0.35, cap of 3, then the rating


def test_default_thresholds_and_rating(folder):
    d, weights = folder
    tagger = load_wd14_tagger(d)
    pol = tagger.default_policy()
    assert (pol.general, pol.character) == (0.35, 0.85)
    im = make_image(50, 31, 7)
    probs = tagger.predict(tagger.preprocess(im)[None])[0]
    expected, _ = numpy_forward(hand_preprocess(im)[None], weights)
    expected = expected[0]
    cats = np.array([r[2] for r in CSV_ROWS])
    keep = {CSV_ROWS[i][1] for i in range(N_TAGS)
            if (cats[i] == 0 and expected[i] >= 0.35) or (cats[i] == 4 and expected[i] >= 0.85)}
    best_rating = ["rating:general", "rating:sensitive", "rating:questionable", "rating:explicit"][
        int(np.argmax(expected[:4]))]
    out = select_tags(probs, tagger.tags, tagger.categories, pol)
    assert {t.name for t in out if t.category != 9} == keep
    assert [t.name for t in out if t.category == 9] == [best_rating]
    assert tagger.rating(probs) == best_rating
    assert list(tagger.ratings(probs)) == tagger.tags[:4]
    np.testing.assert_allclose(list(tagger.ratings(probs).values()), expected[:4], rtol=1e-4)


# --------------------------------------------------------------------------- the batch pipeline

def test_pipeline_writes_json_sidecars(folder, tmp_path):
    from acg2vec_lab.tagging.format import Writer
    from acg2vec_lab.tagging.pipeline import find_images, tag_images

    d, weights = folder
    images = tmp_path / "images"
    images.mkdir()
    srcs = {"a.png": make_image(40, 24, 11), "b.jpg": make_image(24, 40, 12), "c.png": make_image(33, 33, 13)}
    for name, im in srcs.items():
        im.save(images / name, **({"quality": 100} if name.endswith(".jpg") else {}))
    tagger = load_wd14_tagger(d)
    policy = ThresholdPolicy(general=0.35, character=0.85)
    paths = find_images([images])
    s = tag_images(tagger, paths, Writer("json", root=images), policy, batch_size=2, workers=2, progress=False)
    assert (s.total, s.tagged, s.failed, s.model) == (3, 3, 0, "wd14")
    for p in paths:
        with Image.open(p) as f:
            x = hand_preprocess(f.convert("RGB"))
        expected, _ = numpy_forward(x[None], weights)
        expected = expected[0]
        obj = json.loads((images / f"{p.name}.json").read_text(encoding="utf-8"))
        want = sorted((CSV_ROWS[i][1], CSV_ROWS[i][2]) for i in range(4, N_TAGS)
                      if expected[i] >= (0.85 if CSV_ROWS[i][2] == 4 else 0.35))
        got = sorted((t["name"], {"general": 0, "character": 4}[t["category"]]) for t in obj["tags"])
        assert got == want, p
        for t in obj["tags"]:
            assert t["score"] == pytest.approx(expected[tagger.tags.index(t["name"])], abs=1e-4)
        assert obj["rating"]["name"] == tagger.tags[int(np.argmax(expected[:4]))]
    # a rerun resumes: nothing left to do
    s2 = tag_images(tagger, paths, Writer("json", root=images), policy, progress=False)
    assert (s2.skipped_done, s2.tagged) == (3, 0)


# --------------------------------------------------------------------------- detection and errors

def test_is_wd14_folder(folder, tmp_path):
    d, _ = folder
    assert is_wd14_folder(d) and is_wd14_folder(d / "model.onnx")
    assert is_wd14_folder(str(d))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not is_wd14_folder(empty) and not is_wd14_folder(tmp_path / "missing")
    (empty / "model.onnx").write_bytes(b"x")
    assert not is_wd14_folder(empty) and not is_wd14_folder(empty / "model.onnx")  # a bare ONNX model is not WD14


def test_missing_files_are_named(folder):
    d, _ = folder
    (d / "selected_tags.csv").rename(d / "tags.bak")
    with pytest.raises(FileNotFoundError, match="selected_tags.csv"):
        load_wd14_tagger(d)
    (d / "tags.bak").rename(d / "selected_tags.csv")
    (d / "model.onnx").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.onnx"):
        load_wd14_tagger(d)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_wd14_tagger(d / "nope")


def test_truncated_or_corrupt_model_is_named(folder):
    d, _ = folder
    path = d / "model.onnx"
    data = path.read_bytes()
    path.write_bytes(data[:37])  # a truncated download
    with pytest.raises(ValueError, match=r"model\.onnx.*onnxruntime cannot load"):
        load_wd14_tagger(d)
    path.write_bytes(b"\x08\x07 not an onnx model")
    with pytest.raises(ValueError, match=r"model\.onnx"):
        load_wd14_tagger(d)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"model\.onnx: empty file"):
        load_wd14_tagger(d)


@pytest.mark.parametrize("text,match", [
    ("tag_id,name,category\n1,a,0\n", r"selected_tags\.csv: missing column\(s\) count"),
    ("id,tag,category,count\n1,a,0,5\n", r"missing column\(s\) tag_id, name"),
    ("tag_id,name,category,count\n1,a,0,5\n2,b,zero,5\n", r"selected_tags\.csv: line 3: category 'zero'"),
    ("tag_id,name,category,count\n1,a,0,5\n2,b,0,5\n3,c,0\n", r"line 4: 3 fields"),
    ("tag_id,name,category,count\n1, ,0,5\n", r"line 2: empty tag name"),
    ("", r"selected_tags\.csv: empty file"),
    ("tag_id,name,category,count\n", r"no tag rows"),
])
def test_bad_selected_tags_csv_names_file_and_line(folder, text, match):
    d, _ = folder
    (d / "selected_tags.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        load_wd14_tagger(d)


def test_tag_count_must_match_the_output_width(folder):
    d, _ = folder
    write_selected_tags(d / "selected_tags.csv", CSV_ROWS[:-1])
    with pytest.raises(ValueError, match=rf"{N_TAGS} outputs but .*selected_tags\.csv lists {N_TAGS - 1} tags"):
        load_wd14_tagger(d)


def test_dynamic_output_width_checked_at_predict(tmp_path):
    build_model(tmp_path / "model.onnx")
    m = onnx.load(str(tmp_path / "model.onnx"))
    # the output width computed at run time (a Slice whose end comes from the input's shape), so that
    # neither the graph nor onnxruntime's shape inference knows it before the model runs
    m.graph.node[-1].output[0] = "probs_full"
    m.graph.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), "zero"),
                                numpy_helper.from_array(np.array([1], np.int64), "one")])
    m.graph.node.extend([helper.make_node("Shape", ["input_1:0"], ["in_shape"]),
                         helper.make_node("Gather", ["in_shape", "one"], ["width_end"], axis=0),
                         helper.make_node("Slice", ["probs_full", "zero", "width_end", "one"], ["predictions_sigmoid"])])
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "n_tags"
    onnx.save(m, str(tmp_path / "model.onnx"))
    write_selected_tags(tmp_path / "selected_tags.csv", CSV_ROWS + [(1, "extra", 0, 1)])
    tagger = load_wd14_tagger(tmp_path)
    with pytest.raises(ValueError, match=rf"returned shape \(1, {N_TAGS}\).*lists {N_TAGS + 1} tags"):
        tagger.predict(np.zeros((1, SIZE, SIZE, 3), np.float32))


@pytest.mark.parametrize("shape", [["batch", 3, SIZE, SIZE], ["batch", SIZE, SIZE, 4], ["batch", SIZE, "w", 3],
                                   ["batch", SIZE, 3]])
def test_model_input_must_be_nhwc_with_3_channels(tmp_path, shape):
    # a graph whose declared input is not (batch, S, S, 3); its body only needs to be a valid graph
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)
    w = numpy_helper.from_array(np.ones((1, N_TAGS), np.float32), "w")
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0),
             helper.make_node("Reshape", ["m", "shape"], ["m2"]),
             helper.make_node("MatMul", ["m2", "w"], ["z"]), helper.make_node("Sigmoid", ["z"], ["p"])]
    shp = numpy_helper.from_array(np.array([-1, 1], np.int64), "shape")
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", N_TAGS])],
                              [w, shp])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "model.onnx"))
    write_selected_tags(tmp_path / "selected_tags.csv")
    with pytest.raises(ValueError, match=r"model\.onnx: input 'input'.*NHWC float32 \(batch, S, S, 3\)"):
        load_wd14_tagger(tmp_path)


def test_predict_refuses_a_batch_that_is_not_nhwc(folder):
    d, _ = folder
    tagger = load_wd14_tagger(d)
    with pytest.raises(ValueError, match=r"NCHW\? this model takes NHWC"):
        tagger.predict(np.zeros((2, 3, SIZE, SIZE), np.float32))
    with pytest.raises(ValueError, match=r"expected NHWC \(N, 32, 32, 3\)"):
        tagger.predict(np.zeros((SIZE, SIZE, 3), np.float32))
    with pytest.raises(ValueError, match="expected NHWC"):
        tagger.embed(np.zeros((1, 16, 16, 3), np.float32))


def test_cuda_requested_but_unavailable_is_an_error(folder):
    d, _ = folder
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ValueError, match="CUDAExecutionProvider is not available.*onnxruntime-gpu"):
        load_wd14_tagger(d, providers="cuda")
    with pytest.raises(ValueError, match="CUDAExecutionProvider is not available"):
        load_wd14_tagger(d, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert load_wd14_tagger(d, providers=["cpu"], threads=1).providers == ["CPUExecutionProvider"]


def test_providers_for_device():
    cpu_only, both = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers_for_device("cpu", both) == ["CPUExecutionProvider"]
    assert providers_for_device("auto", cpu_only) == ["CPUExecutionProvider"]
    assert providers_for_device(None, both) == [("CUDAExecutionProvider", {"device_id": 0})]
    assert providers_for_device("gpu:1", cpu_only) == [("CUDAExecutionProvider", {"device_id": 1})]
    with pytest.raises(ValueError, match="unknown device"):
        providers_for_device("tpu")


# --------------------------------------------------------------------------- the one switch: tag --weights

def _tag_cli(*argv):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "acg2vec_lab.cli", "tag", *argv, "--no-progress"],
                          capture_output=True, text=True, timeout=300)


def test_tag_command_takes_a_wd14_folder_through_weights(folder, tmp_path):
    """``acg2vec-lab tag DIR --weights WD14_FOLDER``: format detected, json sidecars equal the numpy
    network's tags, the run reports its weights and device; ``--mcut both`` keeps the tags above each
    image's MCut gap."""
    from acg2vec_lab.tagging.thresholds import mcut_policy, select_tags

    d, weights = folder
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(3):
        make_image(30 + 3 * i, 28, 20 + i).save(images / f"{i}.png")
    res = _tag_cli(str(images), "--weights", str(d), "--format", "json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["model"] == "wd14" and out["tagged"] == 3 and out["weights"].startswith("released:")
    assert out["device"]["framework"] == "onnxruntime" and out["device"]["device"] == "cpu"
    for p in sorted(images.glob("*.png")):
        with Image.open(p) as f:
            expected = numpy_forward(hand_preprocess(f.convert("RGB"))[None], weights)[0][0]
        got = {t["name"] for t in json.loads((images / f"{p.name}.json").read_text())["tags"]}
        want = {CSV_ROWS[i][1] for i in range(4, N_TAGS) if expected[i] >= (0.85 if CSV_ROWS[i][2] == 4 else 0.35)}
        assert got == want, p
    mc = tmp_path / "mcut"
    res = _tag_cli(str(images), "--weights", str(d / "model.onnx"), "--format", "json", "--output-dir", str(mc),
                   "--mcut", "both")
    assert res.returncode == 0, res.stderr
    tagger = load_wd14_tagger(d)
    for p in sorted(images.glob("*.png")):
        with Image.open(p) as f:
            expected = numpy_forward(hand_preprocess(f.convert("RGB"))[None], weights)[0][0]
        pol = mcut_policy(expected, tagger.categories, ThresholdPolicy(), general=True, character=True)
        want = {t.name for t in select_tags(expected, tagger.tags, tagger.categories, pol) if t.category != 9}
        got = {t["name"] for t in json.loads((mc / f"{p.name}.json").read_text())["tags"]}
        assert got == want, p


def test_tag_weights_errors_name_the_path(folder, tmp_path):
    d, _ = folder
    images = tmp_path / "imgs"
    images.mkdir()
    make_image(20, 20, 1).save(images / "a.png")
    empty = tmp_path / "not-weights"
    empty.mkdir()
    (empty / "readme.md").write_text("hi")
    res = _tag_cli(str(images), "--weights", str(empty))
    assert res.returncode == 2 and f"--weights {empty}: no released tagger format here" in res.stderr
    assert "readme.md" in res.stderr and "Traceback" not in res.stderr
    res = _tag_cli(str(images), "--weights", str(d), "--model", "joytag")
    assert res.returncode == 2 and "is a WD14 / wd-v3 ONNX tagger (wd14), not --model joytag" in res.stderr
    (d / "selected_tags.csv").unlink()
    res = _tag_cli(str(images), "--weights", str(d))
    assert res.returncode == 2 and "model.onnx without selected_tags.csv" in res.stderr
    assert not (images / "a.png.txt").exists()


def test_detect_tagger_formats(tmp_path):
    from acg2vec_lab.models.released import WeightsError, detect_tagger

    dd = tmp_path / "dd"
    dd.mkdir()
    (dd / "model-resnet_custom_v3.h5").write_bytes(b"")
    with pytest.raises(WeightsError, match="without tags.txt"):
        detect_tagger(dd)
    (dd / "tags.txt").write_text("1girl\n")
    assert detect_tagger(dd / "model-resnet_custom_v3.h5").model == "deepdanbooru"
    jt = tmp_path / "jt"
    jt.mkdir()
    for n in ("config.json", "model.safetensors", "top_tags.txt"):
        (jt / n).write_text("")
    assert detect_tagger(jt).model == "joytag"
    with pytest.raises(WeightsError, match="no such file"):
        detect_tagger(tmp_path / "missing")
