"""``netron-paddle-pir MODEL [MODEL...]``: open Paddle PIR JSON models in a local Netron."""

from __future__ import annotations

import argparse
import sys
import threading
import webbrowser

from . import __version__
from .server import NetronNotFound, Viewer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netron-paddle-pir",
        description="Open Paddle 3 PIR JSON models (model.json / __model__.json, with their "
        "weights) in Netron, offline. Each model is served on its own port; the "
        "URLs are printed. Works without Paddle installed. Ctrl-C stops.",
    )
    parser.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="model file: model.json (next to model.pdiparams), __model__.json "
        "(next to per-parameter files), or any file Netron opens",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port of the first model; the next models take the following ports "
        "(default: free ports)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        viewer = Viewer(host=args.host)
    except NetronNotFound as error:
        print(f"netron-paddle-pir: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    try:
        for index, model in enumerate(args.models):
            port = args.port + index if args.port else 0
            try:
                url = viewer.add(model, port)
            except (FileNotFoundError, OSError) as error:
                print(f"netron-paddle-pir: {error}", file=sys.stderr)
                return 2
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


if __name__ == "__main__":
    raise SystemExit(main())
