"""acgvoc2vec: original architecture on any base, MNRL training with exact resume, retrieval metrics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from acg2vec_lab.models.acgvoc2vec import architecture
from acg2vec_lab.models.acgvoc2vec import evaluate as E
from acg2vec_lab.models.acgvoc2vec import train as TR
from acg2vec_lab.models.acgvoc2vec.config import AcgVoc2VecConfig

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz") + \
        ["進", "撃", "巨", "人", "进", "击", "的", "attack", "titan", "on", "kan", "colle", "艦", "舰"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A randomly initialised 2-layer BERT with a WordPiece tokenizer, saved as a local folder."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0), add_pooling_layer=False).save_pretrained(path)
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(path)
    return str(path)


def test_original_architecture_on_any_base(tiny_bert):
    model = architecture.build_original(tiny_bert, max_seq_length=128)
    d = architecture.describe(model)
    assert d["modules"] == ["Transformer", "Pooling", "Dense"]
    assert d["dim"] == 512 and d["dense_params"] == 32 * 512 + 512 and d["max_seq_length"] == 128
    v = model.encode(["attack on titan", "進撃の巨人"], convert_to_numpy=True)
    assert v.shape == (2, 512) and np.abs(v).max() <= 1.0  # tanh output, not normalised
    assert not np.allclose(np.linalg.norm(v, axis=1), 1.0)


def test_no_duplicate_anime_in_a_batch():
    anime = np.array([1, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 8])
    batches = TR.batches_without_duplicates(anime, 4, seed=0)
    assert batches and all(len(b) == 4 for b in batches)
    for b in batches:
        assert len(set(anime[b])) == len(b)
    flat = np.concatenate(batches)
    assert len(set(flat)) == len(flat)


def _pairs(n_anime=12):
    rows = []
    for a in range(n_anime):
        word = "abcdefghijklmnopqrstuvwxyz"[a]
        rows.append((a, "title_title", "ja", f"{word} {word} titan", "en", f"{word} attack", "train"))
        rows.append((a, "title_tag", "ja", f"{word} {word} titan", "zh", f"{word} 的", "train"))
    return pd.DataFrame(rows, columns=["anime_id", "kind", "lang_a", "text_a", "lang_b", "text_b", "split"])


def test_mnrl_training_reduces_loss_and_resumes_exactly(tiny_bert, tmp_path):
    cfg = AcgVoc2VecConfig(base=tiny_bert, architecture="e5", max_seq_length=16, batch_size=6, epochs=10,
                           max_steps=6, lr=5e-3, warmup_ratio=0.1, amp=False, checkpoint_every=2, keep_checkpoints=2)
    pairs = _pairs()
    straight = TR.train(cfg, pairs, ckpt_dir=tmp_path / "a")
    TR.train(cfg, pairs, ckpt_dir=tmp_path / "b", steps=3)
    resumed = TR.train(cfg, pairs, ckpt_dir=tmp_path / "b")
    assert resumed["resumed_from"] == 3 and resumed["step"] == 6 == straight["step"]
    assert resumed["history"] == pytest.approx(straight["history"], abs=1e-4)
    a = straight["model"].encode(["a a titan"], convert_to_numpy=True)
    b = resumed["model"].encode(["a a titan"], convert_to_numpy=True)
    assert np.allclose(a, b, atol=1e-4)
    assert TR.train_info(tmp_path / "a" / "latest")["step"] == 6
    assert len(list((tmp_path / "a").glob("step-*"))) == 1  # keep_checkpoints=2: latest + one snapshot
    longer = TR.train(AcgVoc2VecConfig(base=tiny_bert, architecture="e5", max_seq_length=16, batch_size=6,
                                       epochs=20, max_steps=40, lr=5e-3, amp=False), pairs)
    assert np.mean(longer["history"][-5:]) < np.mean(longer["history"][:5]) - 0.2
    with pytest.raises(ValueError, match="another config"):
        TR.train(AcgVoc2VecConfig(base=tiny_bert, max_seq_length=16, batch_size=6, max_steps=7, amp=False),
                 pairs, ckpt_dir=tmp_path / "a")


def test_ranks_and_metrics():
    q = np.eye(3, dtype=np.float32)
    g = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], np.float32)
    r = E.ranks(q, g, np.array([0, 2, 1]))
    assert list(r) == [1, 1, 1]
    r = E.ranks(q, g, np.array([1, 1, 1]))
    assert list(r) == [2, 3, 1]  # ties break by gallery position, as retrieval.metrics does
    m = E.rank_metrics(np.array([1, 2, 10, 20]))
    assert m["recall@1"] == 0.25 and m["recall@5"] == 0.5 and m["recall@10"] == 0.75
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0.1 + 0.05) / 4)


def test_cross_lingual_with_an_oracle_and_a_blind_encoder():
    rows = []
    for a in range(20):
        rows.append((a, "title_title", "ja", f"ja-{a}", "zh-Hans", f"zh-{a}", "test"))
    pairs = pd.DataFrame(rows, columns=["anime_id", "kind", "lang_a", "text_a", "lang_b", "text_b", "split"])
    anime = E.held_out_anime(pairs, "test")
    assert len(anime) == 20

    def oracle(texts):
        v = np.zeros((len(texts), 20), np.float32)
        v[np.arange(len(texts)), [int(t.split("-")[1]) for t in texts]] = 1
        return v

    res = E.cross_lingual(oracle, pairs, anime, directions=[("ja", "zh-Hans"), ("zh-Hans", "ja")])
    assert (res["recall@1"] == 1.0).all() and (res["n_queries"] == 20).all()
    blind = E.cross_lingual(lambda t: np.ones((len(t), 4), np.float32) / 2, pairs, anime,
                            directions=[("ja", "zh-Hans")])
    # all scores tie, so rank = gallery position: chance-level recall, not an oracle
    assert blind["recall@1"].iloc[0] == pytest.approx(0.05) and blind["recall@10"].iloc[0] == pytest.approx(0.5)
