"""``acg2vec-lab search``: build a vector index from images or saved vectors, then query it by image or text."""
from __future__ import annotations

from acg2vec_lab.commands._util import add_allow_untrained, add_command, add_runtime_options

EXAMPLES = """  acg2vec-lab search build --images art/ --model efficientnet_lite0 --out art.index
  acg2vec-lab search build --vectors vecs.npy --ids ids.txt --out vecs.index --kind ivf_sq8 --metric l2
  acg2vec-lab search query art.index --image query.png -k 10
  acg2vec-lab search query art.index --text "1girl, silver hair" -k 5    # needs a text embedder in the same space (dclip)
  acg2vec-lab search build --images art/ --model dclip_image --out d.index --allow-untrained  # before notebook 08 trains DCLIP

An embedder without trained weights (a random init) is refused unless --allow-untrained, for build
and for query; the index records whether it was built untrained.
"""


def _embed_folder(emb, folder, batch: int, checkpoint=None):
    """Embed every readable image under ``folder``; unreadable ones are skipped and reported.

    With ``checkpoint`` (an :class:`~acg2vec_lab.commands._resume.EmbedCheckpoint`), the files of its
    finished batches are not embedded again and every new batch of ``batch`` files is kept in it.
    """
    import numpy as np

    from acg2vec_lab.data.images import ImageLoadError, iter_image_files, load_image

    files = iter_image_files(folder)
    paths, vecs, skipped = [], [], []
    start = 0
    if checkpoint is not None:
        paths, x, skipped = checkpoint.result(emb.dim)
        vecs, start = [x], checkpoint.consumed
    from acg2vec_lab import progress

    for i in progress.bar(range(start, len(files), max(batch, 1)), desc=f"embed {emb.name}", unit="batch"):
        chunk = files[i:i + max(batch, 1)]
        images, names, bad = [], [], []
        for path in chunk:
            try:
                images.append(load_image(path))
                names.append(path)
            except ImageLoadError as exc:
                bad.append({"path": str(path), "error": f"{type(exc).__name__}: {exc.problem}"})
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop a folder
                bad.append({"path": str(path), "error": f"{type(exc).__name__}: {exc}"})
        v = np.asarray(emb.encode(images), dtype=np.float32) if images else np.zeros((0, emb.dim), np.float32)
        if checkpoint is not None:
            checkpoint.add([str(p) for p in names], v, bad, len(chunk))
        vecs.append(v)
        paths.extend(names)
        skipped.extend(bad)
    vecs = [v for v in vecs if len(v)]
    x = np.concatenate(vecs) if vecs else np.zeros((0, emb.dim), np.float32)
    return paths, x, skipped


def _remove_stale_index_parts(out) -> None:
    """The temporary folders a killed ``search build`` left beside ``out`` (its own names only)."""
    import re
    import shutil

    from acg2vec_lab.io import _pid_alive, remove_stale_parts

    remove_stale_parts(out.parent, {out.name}, min_age_s=0)  # one --out has one writer at a time
    for old in out.parent.glob(f".{out.name}.old-*"):  # moved aside by a save killed before its last rename
        m = re.fullmatch(r"\.(.+)\.old-(\d+)", old.name)
        if m and m.group(1) == out.name and not _pid_alive(int(m.group(2))):
            shutil.rmtree(old, ignore_errors=True)


def _read_ids(path, n):
    from pathlib import Path

    import numpy as np

    from acg2vec_lab.commands._util import CLIError

    p = Path(path)
    try:
        ids = np.load(p, allow_pickle=False) if p.suffix == ".npy" else \
            np.array([int(line) for line in p.read_text().split()], dtype=np.int64)
    except (OSError, ValueError) as exc:  # a pickled object array is a ValueError with allow_pickle=False
        raise CLIError(f"{path}: cannot read ids: {exc}") from exc
    if len(ids) != n:
        raise CLIError(f"{path} has {len(ids)} ids for {n} vectors")
    return ids.astype(np.int64)


def _build(args) -> int:
    import time
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from acg2vec_lab.commands._util import CLIError, print_json, refuse_untrained, untrained_label
    from acg2vec_lab.config import current_profile
    from acg2vec_lab.retrieval.index import IndexSpec, build_index
    from acg2vec_lab.retrieval.planner import plan_index

    if bool(args.images) == bool(args.vectors):
        raise CLIError("give exactly one of --images FOLDER or --vectors FILE.npy")
    profile = current_profile(args.profile)
    t0 = time.perf_counter()
    info, skipped, meta, resumed, checkpoint, ran_on = {}, [], None, {}, None, None
    _remove_stale_index_parts(Path(args.out))
    if args.images:
        if bool(args.model) == bool(args.weights):
            raise CLIError("--images needs --model NAME (see `acg2vec-lab embed-image --list`) or --weights PATH "
                           "(a released tagger folder), one of them")
        if not Path(args.images).is_dir():
            raise CLIError(f"{args.images} is not a folder")
        if args.weights:
            from acg2vec_lab.models.released import WeightsError, load_embedder

            try:
                emb = load_embedder(args.weights, "image")
            except (WeightsError, FileNotFoundError) as exc:
                raise CLIError(str(exc)) from exc
        else:
            from acg2vec_lab.embedders import get

            try:
                emb = get(args.model, profile)
            except KeyError as exc:
                raise CLIError(str(exc.args[0])) from exc
        if emb.modality != "image":
            raise CLIError(f"{args.model} embeds {emb.modality}, not images")
        untrained = refuse_untrained(emb.name, emb.weights, profile, args.allow_untrained)
        from acg2vec_lab.commands._util import place

        ran_on = place(None, emb.framework, f"search build {emb.name}")
        from acg2vec_lab.commands._resume import EmbedCheckpoint, inputs_digest
        from acg2vec_lab.data.images import iter_image_files

        files = iter_image_files(args.images)
        checkpoint = EmbedCheckpoint(Path(args.out), {
            "command": "search build", "model": emb.name, "weights": emb.weights, "profile": profile,
            "inputs": inputs_digest(files), "n": len(files), "batch": args.batch}).open()
        paths, x, skipped = _embed_folder(emb, args.images, args.batch, checkpoint)
        resumed = {"resumed": checkpoint.resumed, "embedded": len(files) - checkpoint.resumed}
        if not len(x):
            checkpoint.finish()
            raise CLIError(f"no readable images under {args.images} ({len(skipped)} skipped)")
        ids = np.arange(len(x), dtype=np.int64)
        meta = pd.DataFrame({"path": [str(p) for p in paths]})
        info = {"model": emb.name, "space": emb.space, "weights": emb.weights, "profile": profile,
                "untrained": untrained}
        if args.weights:
            info["weights_path"] = str(Path(args.weights).resolve())
    else:
        try:
            x = np.load(args.vectors, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot read {args.vectors}: {exc}") from exc
        if x.ndim != 2:
            raise CLIError(f"{args.vectors}: expected (N, d) vectors, got shape {x.shape}")
        ids = _read_ids(args.ids, len(x)) if args.ids else np.arange(len(x), dtype=np.int64)
        info = {"model": args.model, "space": None, "weights": None, "profile": profile, "source": str(args.vectors),
                "untrained": False}
        if args.model:
            from acg2vec_lab.embedders import get

            try:
                e = get(args.model, profile)
            except KeyError as exc:
                raise CLIError(str(exc.args[0])) from exc
            # the vectors exist already; the index only records what made them (queries are checked later)
            info.update(space=e.space, weights=e.weights, untrained=refuse_untrained(e.name, e.weights, profile, True))
    if args.kind == "auto":
        spec = plan_index(len(x), x.shape[1], int(args.memory_gb * 1e9), args.metric).spec
    else:
        spec = IndexSpec(args.kind, args.metric)
    index = build_index(x, spec, ids=ids, metadata=meta, **info)
    from acg2vec_lab.io import fault_point

    fault_point("search build: index save")
    index.save(args.out)
    if checkpoint is not None:
        checkpoint.finish()  # the index holds every batch now
    print_json({"index": str(args.out), "kind": index.spec.kind, "metric": index.spec.metric, "n": len(index),
                "dim": index.dim, "model": info.get("model"), "weights": info.get("weights"),
                **untrained_label(bool(info.get("untrained"))), "seconds": round(time.perf_counter() - t0, 2),
                "skipped": skipped, **resumed, **({"device": ran_on} if ran_on else {})}, stats=True)
    return 0


def _query(args) -> int:
    from pathlib import Path

    from acg2vec_lab.commands._util import CLIError, print_json, refuse_untrained, untrained_label
    from acg2vec_lab.config import current_profile
    from acg2vec_lab.retrieval.index import VectorIndex

    if bool(args.image) == bool(args.text):
        raise CLIError("give exactly one of --image PATH or --text TEXT")
    if not (Path(args.index) / "index.json").is_file():
        raise CLIError(f"{args.index} is not an index folder (build one with `acg2vec-lab search build`)")
    index = VectorIndex.load(args.index)
    profile = current_profile(args.profile or index.info.get("profile"))
    model = index.info.get("model")
    if not model:
        raise CLIError("this index was built from bare vectors without --model; it can only be queried from Python")
    from acg2vec_lab.embedders import available

    if index.info.get("weights_path"):  # built with --weights: the same released files embed the query
        from acg2vec_lab.models.released import WeightsError, load_embedder

        if args.text:
            raise CLIError(f"{args.index} was built from released image weights; it takes --image queries only")
        try:
            embs = {model: load_embedder(index.info["weights_path"], "image")}
        except (WeightsError, FileNotFoundError) as exc:
            raise CLIError(f"{args.index} was built with --weights {index.info['weights_path']}: {exc}") from exc
    else:
        embs = available(profile)
    if model not in embs:
        raise CLIError(f"the index's model {model!r} is not available in profile {profile}")
    built_with = index.info.get("weights")
    if built_with and built_with != embs[model].weights:
        raise CLIError(f"{args.index} was built with {model} weights {built_with!r}, but {model} now has "
                       f"{embs[model].weights!r}: query vectors would come from another model; rebuild the index")
    if args.image:
        from acg2vec_lab.data.images import ImageLoadError, load_image

        try:
            image = load_image(args.image)
        except (ImageLoadError, OSError) as exc:
            raise CLIError(f"cannot read {args.image}: {exc}") from exc
        untrained = refuse_untrained(model, embs[model].weights, profile, args.allow_untrained)
        q = embs[model].encode([image])
        query = {"image": str(args.image)}
    else:
        space = index.info.get("space")
        texts = [e for e in embs.values() if e.modality == "text" and space and e.space == space]
        if not texts:
            raise CLIError(f"model {model!r} has no text counterpart in the same space "
                           f"(space={space!r}); text queries need e.g. a dclip index")
        untrained = refuse_untrained(texts[0].name, texts[0].weights, profile, args.allow_untrained)
        q = texts[0].encode([args.text])
        query = {"text": args.text, "text_model": texts[0].name}
    table = index.query(q, args.k)
    results = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items() if k != "query"}
               for row in table.to_dict("records")]
    untrained = untrained or bool(index.info.get("untrained"))
    print_json({"index": str(args.index), "model": model, **query, "weights": embs[model].weights,
                **untrained_label(untrained), "k": args.k, "results": results}, stats=True)
    return 0


def register(sub) -> None:
    p = add_command(sub, "search", "Build a vector index (faiss) from images or vectors and query it by image or text.",
                    EXAMPLES, lambda args: args.parser.print_help() or 2)
    p.set_defaults(parser=p)
    ss = p.add_subparsers(dest="search_command", metavar="ACTION")
    b = ss.add_parser("build", help="embed a folder of images (or load vectors) and write an index folder")
    b.add_argument("--images", help="folder of images (searched recursively; unreadable files are skipped and reported)")
    b.add_argument("--vectors", help="(N, d) float .npy file")
    b.add_argument("--ids", help="ids for --vectors: .npy or a text file of integers (default 0..N-1)")
    b.add_argument("--model", help="embedder name (required with --images), e.g. efficientnet_lite0")
    b.add_argument("--weights", metavar="PATH", help="released weights instead of --model: a WD14 / wd-v3, "
                   "DeepDanbooru project or JoyTag folder (its pooled features); queries then need the same "
                   "--weights (the index records them)")
    b.add_argument("--out", required=True, help="index folder to write (replaced atomically)")
    b.add_argument("--kind", default="auto", choices=["auto", "flat", "hnsw", "ivf_flat", "ivf_sq8", "ivf_pq"],
                   help="index type (auto: the planner's choice for N, d and --memory-gb)")
    b.add_argument("--metric", default="cosine", choices=["cosine", "ip", "l2"])
    b.add_argument("--memory-gb", type=float, default=8.0, help="memory budget for --kind auto")
    b.add_argument("--batch", type=int, default=32, help="images per encode call")
    b.add_argument("--profile", help="smoke | cpu | full: which embedder variants (default $ACG2VEC_PROFILE or cpu)")
    add_runtime_options(b)
    add_allow_untrained(b)
    b.set_defaults(func=_build)
    q = ss.add_parser("query", help="top-k of an index for an image or a text, as JSON")
    q.add_argument("index", help="index folder written by `search build`")
    q.add_argument("--image", help="query image")
    q.add_argument("--text", help="query text (needs a text embedder in the index model's space)")
    q.add_argument("-k", type=int, default=10)
    q.add_argument("--profile", help="default: the profile the index was built with")
    add_runtime_options(q)
    add_allow_untrained(q)
    q.set_defaults(func=_query)
