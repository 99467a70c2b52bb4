"""``acg2vec-lab upscale``: Real-CUGAN super-resolution of an image or a folder (official weights)."""
from __future__ import annotations

from acg2vec_lab.commands._util import CLIError, add_command, add_runtime_options, place, print_json

EXAMPLES = """  acg2vec-lab upscale in.png out.png                           # 2x, conservative, PyTorch
  acg2vec-lab upscale in.jpg out.png --scale 4 --denoise denoise3x --backend tf
  acg2vec-lab upscale pics/ big/ --tile exact --tile-size 128    # a folder; reruns skip finished files
  acg2vec-lab upscale in.png out.png --weights up2x-denoise3x.pth  # released PyTorch weights (scale read from them)
  acg2vec-lab upscale in.png out.png --weights models-se/up2x-conservative.param  # an ncnn model (.bin beside it)
"""


def _load_weights(path):
    """(torch UpCunet, pro, label) of ``--weights``: an upstream ``.pth`` state dict or an ncnn ``.param``
    (its ``.bin`` beside it); the scale, width and SE come from the file, not from the options."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"--weights {p}: no such file (expected a Real-CUGAN .pth or an ncnn .param with its .bin)")
    try:
        if p.suffix == ".param":
            if not p.with_suffix(".bin").is_file():
                raise CLIError(f"--weights {p}: the ncnn weights {p.with_suffix('.bin').name} are not beside it")
            from acg2vec_lab.models.real_cugan.ncnn import load_ncnn

            model, pro = load_ncnn(p)
        elif p.suffix in (".pth", ".pt"):
            from acg2vec_lab.models.real_cugan.torch_model import load_pth

            model, pro = load_pth(str(p))
        else:
            raise CLIError(f"--weights {p}: not a Real-CUGAN file (expected .pth, or .param with its .bin)")
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise CLIError(f"--weights {p}: {exc}") from exc
    return model, pro, f"released: {p}"
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DENOISE = ("conservative", "no-denoise", "denoise1x", "denoise2x", "denoise3x")


def _load_rgb(path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        return np.asarray(im.convert("RGB"))


def _main(args) -> int:
    from pathlib import Path

    from acg2vec_lab.models.real_cugan import weights

    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise CLIError(f"input {src} does not exist")
    name = weights.variant_name(args.scale, args.denoise, args.family)
    if args.weights:
        name = f"weights:{Path(args.weights).name}"
    elif name not in weights.OFFICIAL_MODELS:
        raise CLIError(f"no official model {name}; available: {', '.join(weights.OFFICIAL_MODELS)}")
    if src.is_dir():
        jobs = [(p, dst / (p.stem + ".png")) for p in sorted(src.iterdir())
                if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    else:
        jobs = [(src, dst / (src.stem + ".png") if dst.is_dir() else dst)]
    from acg2vec_lab.io import remove_stale_parts

    for folder in sorted({d.parent for _, d in jobs}):  # part files of a killed earlier run
        remove_stale_parts(folder, {d.name for _, d in jobs})
    todo = [(s, d) for s, d in jobs if not d.exists()]
    summary = {"model": name, "backend": args.backend, "tile": args.tile, "done": [], "skipped_existing": [],
               "failed": []}
    summary["skipped_existing"] = [str(d) for s, d in jobs if d.exists()]
    if todo:
        import numpy as np
        from PIL import Image

        import acg2vec_lab.io as aio

        if args.weights:
            model, pro, summary["weights"] = _load_weights(args.weights)
        else:
            model, pro = weights.load_official(name)
            summary["weights"] = f"real: official {name}"
        if args.backend == "tf":
            from acg2vec_lab.models.real_cugan import convert, tf_model

            summary["device"] = place(None, "tensorflow", f"upscale {name}")
            net = convert.tf_from_torch(model)
            fn = lambda img: tf_model.upscale_image(net, img, pro, args.alpha, args.tile, args.tile_size)  # noqa: E731
        else:
            from acg2vec_lab.models.real_cugan import torch_model

            summary["device"] = place(model, "torch", f"upscale {name}")
            fn = lambda img: torch_model.upscale_image(model, img, pro, args.alpha, args.tile, args.tile_size)  # noqa: E731
        from acg2vec_lab import progress

        for s, d in progress.bar(todo, desc=f"upscale {name}", unit="img"):
            try:
                img = _load_rgb(s)
                if min(img.shape[:2]) < 2:
                    raise ValueError(f"image too small ({img.shape[1]}x{img.shape[0]})")
                out = fn(img)
            except Exception as exc:  # a bad file is reported and skipped, the rest continue
                summary["failed"].append({"file": str(s), "error": f"{type(exc).__name__}: {exc}"})
                continue
            with aio.atomic_path(d) as tmp:
                Image.fromarray(np.asarray(out)).save(tmp, format="PNG")
            summary["done"].append(str(d))
    print_json(summary, stats=True)
    return 1 if summary["failed"] else 0


def register(sub) -> None:
    p = add_command(sub, "upscale", "Upscale images with Real-CUGAN (official weights; PyTorch or the TF port).",
                    EXAMPLES, _main)
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("output", help="output image path (.png) or folder (created)")
    p.add_argument("--scale", type=int, choices=(2, 3, 4), default=2)
    p.add_argument("--denoise", choices=DENOISE, default="conservative",
                   help="model variant (not every scale has every level; see the error list)")
    p.add_argument("--family", choices=("se", "pro", "nose"), default="se", help="models-se (default), -pro, -nose")
    p.add_argument("--tile", choices=("none", "cache", "exact"), default="none",
                   help="none: whole image; exact: tiled, identical to whole; cache: reference tiled semantics")
    p.add_argument("--tile-size", type=int, default=128, help="tile side in input pixels (any size works)")
    p.add_argument("--backend", choices=("torch", "tf"), default="torch")
    p.add_argument("--alpha", type=float, default=1.0, help="multiplies the SE-scaled conv4 output (1 = as trained)")
    p.add_argument("--weights", metavar="FILE",
                   help="released weights instead of an official model: an upstream .pth or an ncnn .param "
                        "(with its .bin); --scale/--denoise/--family are then read from the file")
    add_runtime_options(p)
