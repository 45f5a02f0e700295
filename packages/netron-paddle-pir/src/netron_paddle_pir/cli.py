"""``netron-paddle-pir MODEL [MODEL...]``: open Paddle PIR JSON models in a local Netron.

Imports nothing heavy: ``--help``, ``--version`` and argument errors answer at once, and the
launcher never imports Paddle.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import webbrowser

from . import __version__
from ._errors import UserError, run_cli


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0-65535 (0: a free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netron-paddle-pir",
        description="Open Paddle 3 PIR JSON models (model.json / __model__.json, with their "
        "weights) in Netron, offline. Each model is served on its own port; the URLs are "
        "printed. Works without Paddle installed. Ctrl-C stops.",
    )
    parser.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="model file: model.json (next to model.pdiparams), __model__.json (next to "
        "per-parameter files), or any file Netron opens",
    )
    parser.add_argument(
        "-p",
        "--port",
        type=port_number,
        default=0,
        help="port of the first model; the next models take the following ports "
        "(default: 0, free ports)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    browser = parser.add_mutually_exclusive_group()
    browser.add_argument(
        "-b",
        "--browse",
        action="store_true",
        help="open a web browser, as netron's -b does (default: on unless --no-browser)",
    )
    browser.add_argument(
        "--no-browser", action="store_true", help="do not open a web browser (default: open one)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def serve(args: argparse.Namespace) -> int:
    from .server import Viewer

    if args.port and args.port + len(args.models) - 1 > 65535:
        raise UserError(
            f"{len(args.models)} models from port {args.port} would need ports above 65535",
            f"{args.host}:{args.port}",
        )
    # Ctrl-C and SIGTERM stop the servers cleanly, also when the parent started this process
    # with SIGINT ignored (a background job of a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    viewer = Viewer(host=args.host)
    stop = threading.Event()
    try:
        for index, model in enumerate(args.models):
            url = viewer.add(model, args.port + index if args.port else 0)
            print(f"Serving '{model}' at {url}", flush=True)
            if not args.no_browser:
                webbrowser.open(url)
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
    except KeyboardInterrupt:
        print("\nStopped.", flush=True)
    finally:
        viewer.stop()
    return 0


def _main(argv=None) -> int:
    return serve(build_parser().parse_args(argv))


def main(argv=None) -> int:
    """Entry point: ``error: <what>: <problem>`` and exit 2 for bad input, 0 after Ctrl-C."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
