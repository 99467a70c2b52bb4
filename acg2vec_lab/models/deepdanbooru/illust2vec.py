"""illust2vec: DeepDanbooru tag probabilities AND a trunk embedding from one forward pass.

ACG2vec's illust2vec is the global-average-pooled output of one layer of DeepDanbooru v3 (1024-d at
512 px). Two cut points exist (``models.md`` section 2 and section 9 item 1):

* ``"activation_96"`` (the README): post-ReLU output of global block 31, the stride-2 projection block
  that opens stage 3 (16x16x1024 at 512);
* ``"add_43"`` (the original code): pre-ReLU sum of global block 43, the 13th block of stage 3
  (also 16x16x1024).

Both are located by block position (:func:`tf_model.cut_block`), never by the Keras names, which
shift with every model built earlier in the session. For smaller networks the same rule applies:
the cut stage is stage 3 (or the last stage if there are fewer than four), ``activation_96`` = its
first block, ``add_43`` = its block ``round(12 * n / 20)`` (n = blocks in the stage), clipped to the
stage. The embedding has the cut stage's width (1024 for v3, 64 for tiny, 256 for small).

The embedding alone (the graph up to the cut, as ACG2vec's serving model) is
:func:`acg2vec_lab.models.deepix.model.trunk_model` (the cut map) with
:func:`~acg2vec_lab.models.deepix.model.trunk_embeddings` (its mean over positions); deepix trains on
the same trunk sub-model.
"""
from __future__ import annotations

from typing import Any

from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig
from acg2vec_lab.models.deepdanbooru.tf_model import cut_block, cut_layer_name, topology


def embedding_dim(cfg: DeepDanbooruConfig) -> int:
    """Width of the illust2vec embedding for ``cfg`` (the cut stage's channels)."""
    from acg2vec_lab.models.deepdanbooru.tf_model import cut_stage

    fs, _ = cfg.stages()
    return fs[cut_stage(len(fs))]


def build_illust2vec(tagger, cut: str = "activation_96", l2_normalize: bool = False):
    """A Keras model with two outputs, ``(tag probabilities, embedding)``, sharing ``tagger``'s layers.

    Args:
        tagger: a DeepDanbooru Keras model (ours, or one loaded from a release file).
        cut: ``"activation_96"`` or ``"add_43"`` (block positions; see the module doc).
        l2_normalize: divide each embedding by its L2 norm.
    """
    import keras

    top = topology(tagger)
    name = cut_layer_name(top, cut)
    feat = tagger.get_layer(name).output
    emb = keras.layers.GlobalAveragePooling2D(name="illust2vec_gap")(feat)
    if l2_normalize:
        emb = keras.layers.UnitNormalization(axis=-1, name="illust2vec_l2")(emb)
    emb = keras.layers.Activation("linear", dtype="float32", name="illust2vec_embedding")(emb)
    return keras.Model(tagger.input, [tagger.outputs[0], emb], name="illust2vec")


def describe_cut(tagger, cut: str) -> dict[str, Any]:
    """Where a cut sits: global block, stage, position in stage, layer name in this session, shape."""
    top = topology(tagger)
    b = cut_block(top, cut)
    stage_blocks = top.stage_blocks()[b.stage]
    name = cut_layer_name(top, cut)
    return {"cut": cut, "global_block": b.index, "stage": b.stage, "block_in_stage": stage_blocks.index(b),
            "projection": b.is_projection, "pre_relu": cut == "add_43", "layer": name,
            "shape": tuple(tagger.get_layer(name).output.shape[1:])}
