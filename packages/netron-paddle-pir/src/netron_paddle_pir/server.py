"""Local viewer: pip ``netron``'s static app with the netron-paddle-pir reader, one server per model.

Each model gets its own ``ThreadingHTTPServer`` whose handler class carries that model only, so
several models are served correctly from one process (``netron.start`` shares one handler class
and serves the last model on every port). No network access is needed; Paddle is not needed.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import functools
import html
import http.server
import importlib.metadata
import importlib.util
import os
import re
import shutil
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ._errors import UserError
from .bundle import bundle

WEB_DIR = Path(__file__).resolve().parent / "web"

# The netron versions whose module layout (ModelFactory contract, paddle.js exports, index.html
# metas, browser.js age/consent checks) this launcher was tested with.
NETRON_MIN = (9, 3, 0)
NETRON_MAX_EXCLUSIVE = (10, 0, 0)

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".ttf": "font/ttf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".gif": "image/gif",
}

# Files of our overlay served at the app root (next to Netron's modules).
OVERLAY = {
    "paddle.js",
    "paddle-pir.js",
    "paddle-pir-program.js",
    "paddle-pir-ops.js",
    "paddle-pir-modules.js",
    "paddle-pir-weights.js",
    "paddle-pir-pdiparams.js",
    "pir-signatures.json",
    "pir-metadata.json",
}


CHUNK = 1 << 20  # bytes per write when streaming a file


class NetronNotFound(UserError):
    """The pip ``netron`` package is missing or outside the tested range."""


def netron_dir(check_version: bool = True) -> Path:
    """Folder of the installed pip ``netron`` static app (checked against the tested range)."""
    spec = importlib.util.find_spec("netron")
    if spec is None or not spec.origin:
        raise NetronNotFound("the 'netron' package is not installed: pip install 'netron>=9.3,<10'")
    folder = Path(spec.origin).parent
    if check_version:
        version = importlib.metadata.version("netron")
        parts = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
        if not (NETRON_MIN <= parts < NETRON_MAX_EXCLUSIVE):
            raise NetronNotFound(
                f"netron {version} is outside the tested range >=9.3,<10 "
                "(pip install 'netron>=9.3,<10')"
            )
    for name in ("index.html", "view.js", "paddle.js", "browser.js"):
        if not (folder / name).is_file():
            raise NetronNotFound(f"netron at {folder} has no {name}: unsupported layout")
    return folder


@dataclass(frozen=True)
class ModelEntry:
    path: Path  # the model file (model.json, __model__.json, or any file netron opens)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return self.path.name


def _index_html(netron: Path, model: ModelEntry) -> bytes:
    text = (netron / "index.html").read_text(encoding="utf-8")
    version = importlib.metadata.version("netron")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    metas = "\n".join(
        [
            '<meta name="type" content="Python">',
            # Version 0.0.0 is how Netron marks an unpackaged build: it turns telemetry off, so the
            # page makes no requests outside this server. The real version is kept for reference.
            '<meta name="version" content="0.0.0">',
            f'<meta name="netron-version" content="{html.escape(version)}">',
            '<meta name="generator" content="netron-paddle-pir">',
            f'<meta name="file" content="/data/{urllib.parse.quote(model.name)}">',
            f'<meta name="identifier" content="{html.escape(model.name)}">',
        ]
    )
    text = re.sub(r'<meta name="version" content="[^"]*">', lambda _: metas, text, count=1)
    # Netron blocks the page with "Please update" 180 days after this date; a local viewer of a
    # pinned, tested netron should not: the date becomes the time the page is served.
    text = re.sub(
        r'<meta name="date" content="[^"]*">',
        lambda _: f'<meta name="date" content="{now}">',
        text,
        count=1,
    )
    return text.encode("utf-8")


def make_handler(model: ModelEntry, netron: Path, web: Path = WEB_DIR, upstream_only=False):
    """A handler class bound to one model (no shared class state between servers)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "netron-paddle-pir"
        # HTTP/1.0: one request per connection, so stop() leaves no idle keep-alive sockets.

        def log_message(self, format, *args):  # noqa: A002 - signature of the base class
            pass

        def do_HEAD(self):  # noqa: N802 - http.server naming
            self._serve(head=True)

        def do_GET(self):  # noqa: N802
            self._serve(head=False)

        def _file(self, folder: Path, relative: str) -> Path | None:
            """The regular file ``relative`` inside ``folder``, or None (outside, missing,
            a folder, a FIFO or a device: nothing that could block or escape)."""
            root = folder.resolve()
            target = (root / relative).resolve()
            if os.path.commonpath([root, target]) != str(root) or not target.is_file():
                return None
            return target

        def _serve(self, head: bool):
            path = urllib.parse.unquote(urllib.parse.urlparse(self.path).path)
            if path in ("", "/"):
                path = "/index.html"
            body, source, ctype, extra = None, None, None, {}
            if path.startswith("/data/"):
                source = self._file(model.folder, path[len("/data/") :])
                ctype = "application/octet-stream"
            elif path == "/index.html":
                body = _index_html(netron, model)
                ctype = MIME_TYPES[".html"]
                # Netron asks for cookie consent until this cookie exists; nothing is sent anywhere.
                extra["Set-Cookie"] = "consent=1; Path=/; SameSite=Strict"
            else:
                name = path.lstrip("/")
                if not upstream_only and name == "paddle.js":
                    # The reader in one file (netron_paddle_pir.bundle): one request, as
                    # upstream's paddle.js is, instead of paddle.js and then its imports.
                    body = bundle(web)
                    ctype = MIME_TYPES[".js"]
                elif not upstream_only and name in OVERLAY:
                    source = self._file(web, name)
                elif not upstream_only and name == "paddle-upstream.js":
                    source = self._file(netron, "paddle.js")
                elif "/" not in name:
                    source = self._file(netron, name)
                ctype = ctype or MIME_TYPES.get(os.path.splitext(name)[1])
                if ctype is None:
                    source = None
            try:
                stream = source.open("rb") if source is not None else None
            except OSError:
                stream = None
            if body is None and stream is None:
                self._send(404, "text/plain", b"404 Not Found", {}, head)
                return
            with stream or contextlib.nullcontext():
                size = len(body) if body is not None else os.fstat(stream.fileno()).st_size
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(size))
                self.send_header("Cache-Control", "no-store")
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                if head:
                    return
                try:
                    if body is not None:
                        self.wfile.write(body)
                    else:
                        # Streamed in chunks: a weights file of any size costs one chunk of
                        # memory per request, never the whole file.
                        shutil.copyfileobj(stream, self.wfile, CHUNK)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the page went away mid-transfer

        def _send(self, status, ctype, body, extra, head):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler


class Viewer:
    """Serves one model per port from the current process; ``stop()`` shuts all down."""

    def __init__(self, host: str = "127.0.0.1", upstream_only: bool = False):
        self.host = host
        self.upstream_only = upstream_only
        self.netron = netron_dir()
        self._servers: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []
        self.urls: list[str] = []

    def add(self, model_path, port: int = 0) -> str:
        """Serve ``model_path`` on ``port`` (0: a free port) and return its URL.

        A missing model raises FileNotFoundError, a folder IsADirectoryError, anything else
        that is not a regular file (a FIFO, a device) or a port that cannot be used a
        ``UserError`` naming it.
        """
        path = Path(model_path).expanduser()
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "no such model file", str(model_path))
        if path.is_dir():
            raise IsADirectoryError(
                errno.EISDIR, "is a folder: give the model file in it (model.json)", str(model_path)
            )
        if not path.is_file():
            raise UserError("not a regular file (a FIFO or a device cannot be a model)", model_path)
        if not 0 <= port <= 65535:
            raise UserError(f"port {port} is outside 0-65535", f"{self.host}:{port}")
        path = path.resolve()
        handler = make_handler(ModelEntry(path), self.netron, upstream_only=self.upstream_only)
        try:
            server = http.server.ThreadingHTTPServer((self.host, port), handler)
        except OSError as error:
            where = f"{self.host}:{port}"
            if error.errno == errno.EADDRINUSE:
                raise UserError(
                    f"port {port} is already in use (choose another with -p/--port, "
                    "or leave it out for a free port)",
                    where,
                ) from error
            if error.errno == errno.EACCES:
                raise UserError(
                    f"no permission to listen on port {port} (ports below 1024 need root)", where
                ) from error
            raise UserError(f"cannot listen here: {error.strerror or error}", where) from error
        server.daemon_threads = True
        thread = threading.Thread(
            target=functools.partial(server.serve_forever, 0.2),
            name=f"netron-paddle-pir:{path.name}",
            daemon=True,
        )
        thread.start()
        self._servers.append((server, thread))
        host = self.host if ":" not in self.host else f"[{self.host}]"
        url = f"http://{host}:{server.server_address[1]}/"
        self.urls.append(url)
        return url

    def stop(self) -> None:
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        self._servers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
