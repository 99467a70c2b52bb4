"""``acg2vec-lab serve-web``: the Real-CUGAN browser page on localhost (stdlib http.server).

Serves ``web/`` at ``/`` (the page, ``realcugan.js`` and the pinned TF.js files in ``web/node_modules``)
and the exported TF.js models from the cache at ``/models/`` (exporting the missing ones first). The
responses carry COOP/COEP headers, so the page is cross-origin isolated and the wasm backend may use
threads.
"""
from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

from acg2vec_lab.commands._util import CLIError, add_command

EXAMPLES = """  acg2vec-lab serve-web                         # http://127.0.0.1:8765/, exports 2x/3x/4x se if missing
  acg2vec-lab serve-web --port 9000 --models models-se/up2x-conservative models-pro/up2x-conservative
"""


def make_server(host: str = "127.0.0.1", port: int = 0, web_dir: Path | None = None,
                models_dir: Path | None = None, quiet: bool = True):
    """A ``ThreadingHTTPServer`` for the page (port 0: any free port; read ``server.server_address``).

    The caller runs ``serve_forever`` (e.g. in a thread) and ``shutdown`` + ``server_close`` after."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from acg2vec_lab.models.real_cugan import tfjs_export

    web = str(Path(web_dir or tfjs_export.WEB_DIR).resolve())
    models = str(Path(models_dir or tfjs_export.models_root()).resolve())

    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                          ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
                          ".bin": "application/octet-stream"}

        def translate_path(self, path):
            # one handler per request, so choosing the root per request is safe
            route = urlsplit(path).path
            if route == "/models" or route.startswith("/models/"):
                self.directory, path = models, path[len("/models"):] or "/"
            else:
                self.directory = web
            return super().translate_path(path)

        def end_headers(self):
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cache-Control", "no-cache")
            super().end_headers()

        def log_message(self, format, *args):
            if not quiet:
                super().log_message(format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def _main(args) -> int:
    from acg2vec_lab.models.real_cugan import tfjs_export

    try:
        tfjs_export.check_node_modules()
        if args.no_export:
            tfjs_export.write_index()
        else:
            for name in args.models:
                if not (tfjs_export.export_dir(name) / "meta.json").is_file():
                    print(f"exporting {name} to TF.js ...", file=sys.stderr)
                tfjs_export.export(name)
            tfjs_export.write_index()
    except tfjs_export.WebSetupError as exc:
        raise CLIError(str(exc)) from exc
    server = make_server(args.host, args.port, quiet=not args.verbose)
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/"
    print(f"serving {tfjs_export.WEB_DIR} and {tfjs_export.models_root()} (as /models/) at {url}  (Ctrl-C stops)",
          file=sys.stderr)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def register(sub) -> None:
    from acg2vec_lab.models.real_cugan.tfjs_export import DEFAULT_MODELS

    p = add_command(sub, "serve-web", "Serve the Real-CUGAN browser page (TF.js, exact tiling) on localhost.",
                    EXAMPLES, _main)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default localhost only)")
    p.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME",
                   help="official models to export (if missing) and offer on the page")
    p.add_argument("--no-export", action="store_true", help="serve the exports already in the cache, export nothing")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--verbose", action="store_true", help="log every request")
