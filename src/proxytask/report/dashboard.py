"""``proxytask report`` (one self-contained HTML file) and ``proxytask dashboard`` (a live page).

The dashboard is a small read-only HTTP server: it never writes into the run. It serves

* ``/``: the page (the same renderer as the report) that polls ``api/page``;
* ``/api/page``: the page JSON (:func:`proxytask.report.page.build_page`), rebuilt at most
  once per ``min_rebuild_secs`` however many browsers poll, so watching never loads the run's
  storage more than one reader does;
* ``/static/plotly.min.js``: the chart library, from the ``plotly`` package (no network);
* ``/files/<path>``: a file inside DIR (a trial's ``stdout.log``, a state file) as plain text.
  Paths that leave DIR (``..``, absolute, encoded or not) are refused with 403.

It binds 127.0.0.1 unless another host is asked for explicitly (then it warns: the page shows
the run's files to whoever can reach the port).
"""

from __future__ import annotations

import http.server
import json
import posixpath
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from proxytask.core import storage
from proxytask.core.errors import StorageError, UsageError
from proxytask.report.html import plotly_js, render_html
from proxytask.report.page import build_page, run_kind

__all__ = ["REPORT_FILE", "DashboardServer", "serve_dashboard", "write_report"]

REPORT_FILE = "REPORT.html"
_MAX_FILE_BYTES = 5 * 1024 * 1024


def write_report(run_dir: str, output: str | None = None, now: float | None = None) -> str:
    """Write the self-contained HTML report of ``run_dir``; return where it went.

    ``output`` defaults to ``<run_dir>/REPORT.html``. The file is written atomically (a reader
    never sees half of it), locally or on an fsspec URL.
    """
    page = build_page(run_dir, time.time() if now is None else now)
    target = output or storage.join(run_dir, REPORT_FILE)
    storage.write_text_atomic(target, render_html(page))
    return target


def safe_relative_path(raw: str) -> str | None:
    """The normalised path inside DIR that ``raw`` (URL-encoded) names, or None when it would
    leave DIR: ``..`` segments, an absolute path, a drive or URL scheme, a NUL byte."""
    path = urllib.parse.unquote(raw)
    if not path or "\x00" in path or "\\" in path or path.startswith("/") or "://" in path:
        return None
    parts = path.split("/")
    if any(part in ("..", ".") for part in parts) or ":" in parts[0]:
        return None
    clean = posixpath.normpath(path)
    return None if clean.startswith("..") else clean


class _Handler(http.server.BaseHTTPRequestHandler):
    server: DashboardServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line per request on the terminal

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        raw_path = self.path.split("?", 1)[0]
        try:
            if raw_path in ("/", "/index.html"):
                self._send(200, self.server.index_html.encode("utf-8"), "text/html; charset=utf-8")
            elif raw_path == "/api/page":
                body = json.dumps(self.server.page(), allow_nan=False, default=str)
                self._send(200, body.encode("utf-8"), "application/json")
            elif raw_path == "/static/plotly.min.js":
                self._send(200, self.server.plotly, "application/javascript")
            elif raw_path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            elif raw_path.startswith("/files/"):
                self._file(raw_path[len("/files/") :])
            else:
                self._text(404, f"not found: {raw_path}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _file(self, raw: str) -> None:
        rel = safe_relative_path(raw)
        if rel is None:
            self._text(403, "refused: only files inside the run dir can be read here")
            return
        try:
            data = storage.read_bytes(storage.join(self.server.run_dir, rel))
        except (StorageError, IsADirectoryError, OSError):
            data = None
        if data is None:
            self._text(404, f"no such file in the run dir: {rel}")
            return
        self._send(200, data[-_MAX_FILE_BYTES:], "text/plain; charset=utf-8")

    def _refuse(self) -> None:
        self._text(405, "read-only: this dashboard only answers GET")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse


class DashboardServer(http.server.ThreadingHTTPServer):
    """The dashboard of one run dir (see the module doc); ``serve_forever`` to run it."""

    daemon_threads = True

    def __init__(
        self,
        run_dir: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        poll_ms: int = 2000,
        min_rebuild_secs: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        run_kind(run_dir)  # bad DIR: UsageError before anything listens
        self.run_dir = run_dir
        self.plotly = plotly_js().encode("utf-8")
        self.index_html = render_html(
            None, live=True, poll_ms=poll_ms, plotly_src="static/plotly.min.js"
        )
        self._clock = clock
        self._min_rebuild = min_rebuild_secs
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise UsageError(
                f"--port must be free on {host}, got {port} ({exc}). Choose another port, or "
                "0 for any free one."
            ) from None

    @property
    def url(self) -> str:
        """Where a browser opens the dashboard."""
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{port}/"

    def page(self) -> dict[str, Any]:
        """The page, rebuilt when the cached one is older than ``min_rebuild_secs``."""
        with self._lock:
            now = self._clock()
            if self._cached is None or now - self._cached[0] >= self._min_rebuild:
                self._cached = (now, build_page(self.run_dir, now))
            return self._cached[1]


def serve_dashboard(run_dir: str, host: str, port: int) -> int:
    """The body of ``proxytask dashboard``: serve until Ctrl-C; return the exit code."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: the dashboard listens on {host}: anyone who can reach this port can read "
            "the run's files through it. Use the default 127.0.0.1 (and an SSH tunnel) unless "
            "you mean it.",
            file=sys.stderr,
        )
    server = DashboardServer(run_dir, host, port)
    print(f"dashboard of {run_dir}: {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("dashboard stopped")
    finally:
        server.server_close()
    return 0
