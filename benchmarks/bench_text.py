"""Throughput of the text embedder (acgvoc2vec on the e5-small base) and of DCLIP's encoders.

1. Text embedder: sentences/s at exactly 16 and 32 tokens per sentence (specials included), batch 64,
   through sentence-transformers ``encode`` (tokenisation included), after one warm-up batch.
2. DCLIP image and text encoders, random weights (speed does not depend on the values), for the
   tiny replica and ViT-L/14: images/s (224 px for ViT-L/14) and captions/s (77 tokens),
   ``torch.inference_mode``, median of ``--repeats`` timed batches after one warm-up.

    .venv/bin/python benchmarks/bench_text.py                       # everything
    .venv/bin/python benchmarks/bench_text.py --skip-vit-l --repeats 5

Wall-clock on a shared 2-core machine: ``load_avg`` is printed with the numbers; rerun when quiet.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import acg2vec_lab  # noqa: F401  (offline defaults; before any framework)
from acg2vec_lab.dev.timing import time_calls


def text_embedder(lengths=(16, 32), batch: int = 64, repeats: int = 3) -> dict:
    from acg2vec_lab.models.acgvoc2vec import e5

    model = e5.load_e5()
    out = {}
    for n in lengths:
        model.max_seq_length = n
        texts = [f"{i} 進撃の巨人 Attack on Titan 进击的巨人 " * 8 for i in range(batch)]
        got = {len(ids) for ids in model.tokenizer([e5.QUERY_PREFIX + t for t in texts], truncation=True,
                                                    max_length=n)["input_ids"]}
        assert got == {n}, got
        sec = statistics.median(time_calls(lambda t=texts: model.encode(t, batch_size=batch, show_progress_bar=False), repeats))
        out[f"sentences_per_s@{n}tok"] = round(batch / sec, 1)
    return out


def dclip(name: str, cfg, batch_images: int, batch_texts: int, repeats: int) -> dict:
    import torch

    from acg2vec_lab.models.dclip import model as M

    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = M.build_model(cfg).eval()
    build_s = time.perf_counter() - t0
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    images = torch.randn(batch_images, 3, size, size)
    tok = M.Tokenize(cfg)
    tokens = tok(["hakurei reimu from touhou with 1girl,solo,red bow,long hair " * 4] * batch_texts)
    with torch.inference_mode():
        si = statistics.median(time_calls(lambda: model.encode_image(images), repeats))
        st = statistics.median(time_calls(lambda: model.encode_text(tokens), repeats))
    return {"model": name, "params": M.count_params(model), "image_size": size, "build_s": round(build_s, 1),
            "images_per_s": round(batch_images / si, 2), "captions_per_s": round(batch_texts / st, 1),
            "batch_images": batch_images, "batch_texts": batch_texts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-vit-l", action="store_true", help="skip ViT-L/14 (1.7 GB, slow on CPU)")
    ap.add_argument("--vit-l-images", type=int, default=4)
    ap.add_argument("--vit-l-texts", type=int, default=16)
    args = ap.parse_args()
    import torch

    from acg2vec_lab.config import load_config
    from acg2vec_lab.models.dclip.config import DclipConfig

    res = {"load_avg": os.getloadavg(), "torch_threads": torch.get_num_threads()}
    res["text_embedder(e5-small, batch 64)"] = text_embedder(repeats=args.repeats)
    res["dclip"] = [dclip("tiny", load_config("dclip", "smoke"), 64, 64, args.repeats)]
    if not args.skip_vit_l:
        res["dclip"].append(dclip("ViT-L-14", DclipConfig(model_name="ViT-L-14"), args.vit_l_images,
                                  args.vit_l_texts, max(1, args.repeats - 1)))
    res["load_avg_end"] = os.getloadavg()
    print(json.dumps(res, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
