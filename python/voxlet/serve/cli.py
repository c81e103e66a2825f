"""`voxlet serve`: load a model once and serve it on loopback (unless told otherwise)."""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path

from voxlet.errors import VoxletError

log = logging.getLogger("voxlet")


def add_parser(sub, add_model_flags, fmt: type[argparse.HelpFormatter]) -> None:
    serve = sub.add_parser(
        "serve", help="serve speech over HTTP and WebSocket", formatter_class=fmt
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    serve.add_argument(
        "--wyoming",
        metavar="URI",
        help="also serve Home Assistant's Wyoming protocol: tcp://127.0.0.1:10200 or unix://PATH",
    )
    serve.add_argument("--voices", type=Path, help="folder of NAME.safetensors voices to offer")
    serve.add_argument("--max-sessions", type=int, default=4, help="streams generating at once")
    serve.add_argument(
        "--max-waiting", type=int, default=16, help="requests that may wait for a session"
    )
    serve.add_argument(
        "--queue-wait", type=float, default=10.0, help="seconds a request waits before 'busy'"
    )
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on every request")
    serve.add_argument("--no-warm-up", action="store_true", help="healthy at once, cold first")
    serve.add_argument("-q", "--quiet", action="store_true", help="no access log")
    add_model_flags(serve)


def main(args: argparse.Namespace, load) -> int:
    try:
        import uvicorn

        from voxlet.serve.app import create_app
    except ImportError as e:
        raise VoxletError(f"voxlet serve needs `pip install voxlet[serve]` ({e})") from e
    from voxlet.serve.settings import ServeSettings

    if not 0 <= args.port <= 65535:
        raise VoxletError(f"--port: must be 0..65535, got {args.port}")
    settings = ServeSettings(
        max_sessions=args.max_sessions,
        max_waiting=args.max_waiting,
        queue_wait_s=args.queue_wait,
        api_key=args.api_key,
        voices_dir=args.voices,
    )
    if args.host not in ("127.0.0.1", "::1", "localhost") and args.api_key is None:
        log.warning(
            "serving on %s without --api-key: anyone who can reach it may use it", args.host
        )
    tts = load(args)
    app = create_app(tts, settings, warm=not args.no_warm_up)
    log.info("voices: %s", ", ".join(app.state.server.voices.names) or "none")
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"  # logs on stderr, all
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=log_config,
        log_level="warning" if args.quiet else "info",
        access_log=not args.quiet,
        timeout_graceful_shutdown=5,
        ws_ping_interval=20,
    )
    http = uvicorn.Server(config)
    if args.wyoming is None:
        http.run()
        return 0
    import asyncio  # here, not at the top: `voxlet say` parses its flags without it

    asyncio.run(_serve_both(http, args.wyoming, app.state.server))
    return 0


async def _serve_both(http, wyoming_uri: str, server) -> None:
    """HTTP and Wyoming on one event loop; uvicorn's shutdown (SIGINT, SIGTERM) ends both."""
    from voxlet.serve import wyoming

    try:
        wy = await wyoming.start(wyoming_uri, server)
    except (OSError, ValueError) as e:
        raise VoxletError(f"--wyoming {wyoming_uri}: {e}") from e
    log.info("Wyoming on %s", wyoming_uri)
    try:
        await http.serve()
    finally:
        await wy.stop()
