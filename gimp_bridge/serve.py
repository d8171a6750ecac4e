"""``fauve serve``: one process with the Gradio app at ``/`` and the bridge API at ``/bridge/v1``.

It owns the models (loaded once, cached), the job queue (``--concurrency`` jobs at a time, so one
GPU is never oversubscribed) and the device. It binds 127.0.0.1 by default; any other address
needs ``--token``, which then guards the bridge (bearer token) and the app (login: any user name,
the token as password).
"""

from __future__ import annotations

import os

# Before gradio (or anything that imports it) is loaded: no telemetry, no version check, no Hub calls.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_SHARE", "False")

import argparse  # noqa: E402
import hmac  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from fauve.errors import FauveError  # noqa: E402

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_PIXELS = 8192 * 8192  # 67 MP: a 50-megapixel layer fits; tiling keeps device memory bounded
log = logging.getLogger("fauve.serve")


def max_body_for(max_pixels: int) -> int:
    """Largest accepted request body: raw RGBA at the pixel limit, plus room for PNG overhead."""
    return max_pixels * 4 + (1 << 20)


def guard_pillow(max_pixels: int) -> None:
    """Make Pillow refuse (not just warn about) any image above ``max_pixels``, in every decoder the
    server uses, Gradio's uploads included."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def create_app(engine, queue, *, token: str | None, max_pixels: int, workdir: Path):
    """The whole server as one ASGI app (FastAPI with the bridge and the Gradio Blocks mounted)."""
    import gradio as gr
    from fastapi import FastAPI

    from fauve_bridge.app import CSS, build_demo
    from fauve_bridge.bridge import PREFIX, create_bridge_app

    max_body = max_body_for(max_pixels)
    app = FastAPI(title="fauve", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount(PREFIX, create_bridge_app(engine, queue, max_pixels=max_pixels, max_body=max_body, token=token))
    demo = build_demo(engine, queue, max_pixels=max_pixels, workdir=workdir)
    demo.queue(max_size=64, default_concurrency_limit=queue.concurrency)

    def login(_user: str, password: str) -> bool:
        return hmac.compare_digest(password.encode("utf-8"), token.encode("utf-8"))

    return gr.mount_gradio_app(
        app, demo, path="/", auth=login if token else None,
        auth_message="This fauve server needs its token as the password (any user name).",
        footer_links=["api"], ssr_mode=False, show_error=True, max_file_size=max_body, mcp_server=False,
        theme=gr.themes.Default(), css=CSS, allowed_paths=[str(workdir)],
    )


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise FauveError(f"Cannot listen on {host}:{port}: {err.strerror or err}.",
                             hint=f"Another program (maybe another fauve serve) uses port {port}; pick another with --port, "
                                  "or stop the other one.", code="port_in_use") from err


def run(args: argparse.Namespace) -> int:
    from fauve_bridge.security import check_bind

    token = args.token or os.environ.get("FAUVE_TOKEN") or None
    check_bind(args.host, token)
    if args.max_pixels < 16 * 16:
        raise FauveError(f"--max-pixels {args.max_pixels} is too small.", hint="Use at least 256 (the default is 67108864).")
    _check_port(args.host, args.port)
    try:
        import gradio  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise FauveError(f"fauve serve needs the app extras ({err.name} is not installed).",
                         hint="pip install 'fauve[app]'  (Gradio 6, FastAPI, uvicorn)", code="missing_dependency") from err
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    guard_pillow(args.max_pixels)

    from fauve_bridge.engine import Engine
    from fauve_bridge.jobs import JobQueue

    engine = Engine(args.models or (), device=args.device, precision=args.precision, use_catalog=not args.no_catalog,
                    tile=args.tile, backend=args.backend)
    queue = JobQueue(concurrency=args.concurrency, max_queued=args.max_queue)
    workdir = Path(tempfile.mkdtemp(prefix="fauve-serve-"))
    try:
        app = create_app(engine, queue, token=token, max_pixels=args.max_pixels, workdir=workdir)
        import uvicorn

        shown = f"[{args.host}]" if ":" in args.host else args.host
        print(f"fauve serve: http://{shown}:{args.port}/  (bridge API: http://{shown}:{args.port}/bridge/v1, "
              f"device {engine.device}, {len(engine.list_styles())} styles, {args.concurrency} job(s) at a time"
              f"{', token required' if token else ''})", flush=True)
        config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.log_level == "debug",
                                timeout_graceful_shutdown=3, limit_concurrency=args.max_connections)
        uvicorn.Server(config).run()
    finally:
        queue.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="run the browser app and the GIMP bridge API (one process, one job queue)",
        description="Serve the Gradio app at / and the bridge API for the GIMP plug-in at /bridge/v1. "
                    "Binds 127.0.0.1 unless --host is given; any other address requires --token.")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}; others need --token)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    p.add_argument("--precision", default="auto", help="auto | fp32 | fp16 | bf16 (GPU only; default auto)")
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"], help="run the networks in PyTorch or onnxruntime (default torch)")
    p.add_argument("--token", help="bearer token every bridge request must send (also the app's password); "
                                   "default: $FAUVE_TOKEN")
    p.add_argument("--models", nargs="+", action="extend", metavar="DIR",
                   help="model folders (config.json + model.safetensors) or folders of them, served besides the catalog")
    p.add_argument("--no-catalog", action="store_true", help="serve only the --models folders")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"largest image accepted, in pixels (default {DEFAULT_MAX_PIXELS}); bodies above W*H*4 are refused")
    p.add_argument("--tile", type=int, default=1024,
                   help="images with a side above this many pixels run in tiles of this size (default 1024; 0 = never)")
    p.add_argument("--concurrency", type=int, default=1, help="jobs run at the same time (default 1: one GPU, one job)")
    p.add_argument("--max-queue", type=int, default=64, help="jobs allowed to wait (default 64); more get 503")
    p.add_argument("--max-connections", type=int, default=256, help="open HTTP connections before 503 (default 256)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:  # python -m fauve_bridge.serve
    import sys

    parser = argparse.ArgumentParser(prog="fauve")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except FauveError as err:
        print(f"fauve serve: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
