"""``acg2vec-lab embed-image`` / ``embed-text``: inputs -> vectors with any registered embedder, as JSON or .npy."""
from __future__ import annotations

from acg2vec_lab.commands._util import add_allow_untrained, add_command, add_runtime_options
from acg2vec_lab.retrieval.metrics import l2_normalize

IMAGE_EXAMPLES = """  acg2vec-lab embed-image --model efficientnet_lite0 a.png b.jpg     # real ImageNet weights
  acg2vec-lab embed-image --model efficientnet_lite0 art/*.png --out vecs.npy
  acg2vec-lab embed-image --list                                     # names, dims and weights of each
  acg2vec-lab embed-image --model illust2vec a.png --allow-untrained # random weights if notebook 02 has not run

A model whose weights are a random init (illust2vec, joytag, dclip_image before their notebook
trains them) is refused unless --allow-untrained; the error says which notebook trains it.
"""
TEXT_EXAMPLES = """  acg2vec-lab embed-text --model acgvoc2vec "艦これ" "kancolle"     # e5 base until notebook 07 fine-tunes it
  acg2vec-lab embed-text --list
"""


def _run(args, modality: str) -> int:

    from acg2vec_lab.commands._util import CLIError, is_untrained, print_json, refuse_untrained, untrained_label
    from acg2vec_lab.config import current_profile
    from acg2vec_lab.embedders import available

    profile = current_profile(args.profile)
    if args.weights:  # released weights: the format is read from the files (models/released.py)
        from acg2vec_lab.models.released import WeightsError, load_embedder

        if args.model:
            raise CLIError("give --model NAME (an embedder of this workbook) or --weights PATH (released weights), "
                           "not both")
        try:
            emb = load_embedder(args.weights, modality)
        except (WeightsError, FileNotFoundError) as exc:
            raise CLIError(str(exc)) from exc
        return _embed(args, emb, untrained_label(False), modality)
    embs = available(profile, modality)
    if args.list:
        print_json([{"name": e.name, "dim": e.dim, "weights": e.weights, "untrained": is_untrained(e.weights),
                     "space": e.space} for e in embs.values()])
        return 0
    if not args.model:
        raise CLIError(f"--model is required; available {modality} embedders: {', '.join(sorted(embs)) or 'none'}")
    if args.model not in embs:
        raise CLIError(f"no {modality} embedder {args.model!r}; available: {', '.join(sorted(embs)) or 'none'}")
    emb = embs[args.model]
    label = untrained_label(refuse_untrained(emb.name, emb.weights, profile, args.allow_untrained))
    return _embed(args, emb, label, modality)


def _embed(args, emb, label, modality: str) -> int:
    """Embed ``args.inputs`` with ``emb`` (a registered embedder or one over ``--weights``)."""
    import numpy as np

    from acg2vec_lab.commands._util import CLIError, place, print_json

    if not args.inputs:
        raise CLIError("nothing to embed")
    label["device"] = place(None, emb.framework, f"{args.command} {emb.name}")  # the embedder places its model
    if modality == "image" and args.out:
        return _embed_images_to_file(args, emb, label)
    inputs, names, skipped = list(args.inputs), list(args.inputs), []
    if modality == "image":
        from acg2vec_lab.data.images import ImageLoadError, load_image

        inputs, names = [], []
        for path in args.inputs:
            try:
                inputs.append(load_image(path))
                names.append(path)
            except (ImageLoadError, OSError) as exc:
                skipped.append({"path": path, "error": str(exc)})
        if not inputs:
            raise CLIError(f"no readable image among the {len(args.inputs)} given: {skipped}")
    vecs = np.asarray(emb.encode(inputs), dtype=np.float32)
    if args.normalize:
        vecs = l2_normalize(vecs)
    if args.out:
        from acg2vec_lab.io import atomic_path

        with atomic_path(args.out) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, vecs)
        print_json({"model": emb.name, "weights": emb.weights, **label, "dim": emb.dim, "n": len(vecs), "out": args.out,
                    "inputs": names, "skipped": skipped}, stats=True)
    else:
        print_json({"model": emb.name, "weights": emb.weights, **label, "dim": emb.dim, "skipped": skipped,
                    "vectors": [{"input": n, "vector": [round(float(v), 6) for v in row]} for n, row in zip(names, vecs)]}, stats=True)
    return 0


def _embed_images_to_file(args, emb, label) -> int:
    """``embed-image --out``: batches of ``--batch`` images, each kept until the ``.npy`` is written.

    A run killed half-way keeps its finished batches in ``.<out>.resume/`` (see
    :mod:`acg2vec_lab.commands._resume`); the rerun embeds only the images after them and says how
    many it took over (``resumed``) and how many it embedded itself (``embedded``).
    """
    from pathlib import Path

    import numpy as np

    from acg2vec_lab.commands._resume import EmbedCheckpoint, inputs_digest
    from acg2vec_lab.commands._util import CLIError, print_json
    from acg2vec_lab.data.images import ImageLoadError, load_image
    from acg2vec_lab.io import atomic_path, remove_stale_parts

    out = Path(args.out)
    if args.batch < 1:
        raise CLIError(f"--batch must be at least 1, got {args.batch}")
    remove_stale_parts(out.parent, {out.name})  # the part file of a killed earlier run
    ck = EmbedCheckpoint(out, {"command": "embed-image", "model": emb.name, "weights": emb.weights,
                               "inputs": inputs_digest(args.inputs), "n": len(args.inputs),
                               "batch": args.batch}).open()
    todo = list(args.inputs)[ck.consumed:]
    from acg2vec_lab import progress

    for start in progress.bar(range(0, len(todo), args.batch), desc=f"embed {emb.name}", unit="batch"):
        chunk = todo[start:start + args.batch]
        images, names, skipped = [], [], []
        for path in chunk:
            try:
                images.append(load_image(path))
                names.append(path)
            except (ImageLoadError, OSError) as exc:
                skipped.append({"path": path, "error": str(exc)})
        vecs = np.asarray(emb.encode(images), dtype=np.float32) if images else np.zeros((0, emb.dim), np.float32)
        ck.add(names, vecs, skipped, len(chunk))
    names, vecs, skipped = ck.result(emb.dim)
    if not names:
        ck.finish()
        raise CLIError(f"no readable image among the {len(args.inputs)} given: {skipped}")
    if args.normalize:
        vecs = l2_normalize(vecs)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, vecs)
    ck.finish()
    print_json({"model": emb.name, "weights": emb.weights, **label, "dim": emb.dim, "n": len(vecs), "out": args.out,
                "inputs": names, "skipped": skipped, "resumed": ck.resumed,
                "embedded": len(args.inputs) - ck.resumed}, stats=True)
    return 0


def _add(sub, name: str, modality: str, examples: str, what: str) -> None:
    p = add_command(sub, name, f"Embed {what} with a registered embedder; print JSON vectors or write .npy.",
                    examples, lambda args: _run(args, modality))
    p.add_argument("inputs", nargs="*", metavar="IMAGE" if modality == "image" else "TEXT")
    p.add_argument("--model", help="embedder name (see --list)")
    p.add_argument("--weights", metavar="PATH",
                   help="released weights instead of --model: " + (
                       "a WD14 / wd-v3, DeepDanbooru project or JoyTag folder (their pooled features)"
                       if modality == "image" else "a sentence-transformers folder"))
    p.add_argument("--out", help="write an (N, dim) float32 .npy instead of printing vectors")
    p.add_argument("--normalize", action="store_true", help="L2-normalise the vectors")
    if modality == "image":
        p.add_argument("--batch", type=int, default=32,
                       help="images per encode call; with --out each finished batch is kept, so a killed run resumes")
    p.add_argument("--list", action="store_true", help=f"list the {modality} embedders and their weights")
    p.add_argument("--profile", help="smoke | cpu | full (default $ACG2VEC_PROFILE or cpu)")
    add_runtime_options(p)
    add_allow_untrained(p)


def register(sub) -> None:
    _add(sub, "embed-image", "image", IMAGE_EXAMPLES, "images")
    _add(sub, "embed-text", "text", TEXT_EXAMPLES, "texts")
