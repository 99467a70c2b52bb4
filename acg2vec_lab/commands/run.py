"""``acg2vec-lab run``: execute the ordered notebooks (the main job)."""
from __future__ import annotations

from acg2vec_lab.commands._util import add_command, add_runtime_options

EXAMPLES = """  acg2vec-lab run                      # every notebook, cpu profile, into runs/<timestamp>/
  acg2vec-lab run --profile smoke      # tiny replicas (what CI runs)
  acg2vec-lab run --only 00 03         # just these notebooks
  acg2vec-lab run --only 02 --data /path/to/danbooru-subset   # an image notebook on your own data
  acg2vec-lab run --list               # the notebook map
"""


def _main(args) -> int:
    from acg2vec_lab import runner
    from acg2vec_lab.commands._util import CLIError
    from acg2vec_lab.config import ConfigError, current_profile

    if args.list:
        for p in runner.list_notebooks():
            print(p.stem)
        return 0
    try:
        profile = current_profile(args.profile)
        _, results = runner.run_all(profile, args.only, timeout=args.timeout, render=not args.no_html, data=args.data)
    except ConfigError as exc:
        raise CLIError(str(exc)) from exc
    return 0 if all(r.status == "ok" for r in results) else 1


def register(sub) -> None:
    p = add_command(sub, "run", "Execute the workbook's notebooks with papermill and gather their results.", EXAMPLES, _main)
    p.add_argument("--profile", help="smoke | cpu | full (default: $ACG2VEC_PROFILE or cpu)")
    p.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers or names to run")
    p.add_argument("--timeout", type=int, help="seconds per notebook (default: by profile)")
    p.add_argument("--no-html", action="store_true", help="skip the HTML rendering of executed notebooks")
    p.add_argument("--list", action="store_true", help="list the notebooks and exit")
    p.add_argument("--data", metavar="PATH",
                   help="your own data: a Danbooru2021-format folder or a DeepDanbooru project; passed as "
                        "-p DATA PATH to every notebook with a DATA parameter (02 03 04 05 09 10)")
    add_runtime_options(p)  # --device reaches the notebooks as $ACG2VEC_DEVICE
