"""Live mode: the explorer page served from this computer, with the model running in the server.

The standard library's `ThreadingHTTPServer` is enough: one user, a page and one JSON endpoint,
nothing to install. It is a local tool, not a public service: it binds 127.0.0.1 unless told
otherwise, has no authentication, and every upload runs the model. Bad uploads (too big, not an
image, refused by Pillow) get HTTP 400 with a one-line reason; the server keeps running.

    GET  /            the page (the same HTML as `cnnlab explore`, with live input switched on)
    POST /api/image   the image file as the request body -> {"image": record} or {"error": reason}
"""

from __future__ import annotations

import errno
import json
import signal
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from cnnlab.errors import CnnlabError
from cnnlab.viz.explore.inputs import UPLOAD_LIMIT, decode_upload

NAME_LIMIT = 80  # characters of an uploaded file's name shown on the page
DRAIN_LIMIT = 64 * 1024 * 1024  # a refused upload up to this size is read to its end before the answer


class ExploreServer(ThreadingHTTPServer):
    """Serves `page` (HTML text); uploads run `explorer` (set both before `serve_forever`)."""

    explorer = None
    page = b""

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.lock = threading.Lock()  # one model, one forward pass at a time (hooks are per model)


def make_server(host: str, port: int) -> ExploreServer:
    """The server, bound (so a port in use is a one-line error before any work is done)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "cnnlab-explore"

        def do_GET(self):
            path = self.path.split("?")[0]
            if path in ("/", "/index.html"):
                self._send(200, self.server.page, "text/html; charset=utf-8")
            elif path == "/favicon.ico":  # browsers ask; the page has none
                self._send(204, b"", "image/x-icon")
            else:
                self._json(404, {"error": f"no page {self.path}; the explorer is at /"})

        def do_POST(self):
            if self.path.split("?")[0] != "/api/image":
                self._json(404, {"error": f"no endpoint {self.path}; post images to /api/image"})
                return
            try:
                data = self._body()
                explorer = self.server.explorer
                x = decode_upload(data, explorer.subject)
                name = unquote(self.headers.get("X-Image-Name", "upload"))[:NAME_LIMIT]
                with self.server.lock:
                    record = explorer.image(x, f"upload: {name}")
            except CnnlabError as error:
                self._json(400, {"error": str(error)})
                return
            except Exception as error:  # noqa: BLE001 - a bug in cnnlab: say so, keep serving
                traceback.print_exc(file=sys.stderr)
                self._json(500, {"error": f"internal error ({type(error).__name__}): see the server's terminal"})
                return
            self._json(200, {"image": record})

        def _body(self) -> bytes:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self.close_connection = True
                raise CnnlabError("the request has no Content-Length: send the image file as the request body")
            size = int(length)
            if size > UPLOAD_LIMIT:
                self._discard(size)
                raise CnnlabError(f"the upload is {size:,} bytes; the limit is {UPLOAD_LIMIT:,}")
            return self.rfile.read(size)

        def _discard(self, size: int) -> None:
            """Read a refused body away (up to DRAIN_LIMIT) so the client gets to read our answer."""
            if size > DRAIN_LIMIT:
                self.close_connection = True
                return
            while size > 0:
                size -= len(self.rfile.read(min(size, 1 << 16)) or b"\0" * size)

        def _json(self, status: int, payload) -> None:
            self._send(status, json.dumps(payload, allow_nan=False).encode("utf-8"), "application/json")

        def _send(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_request(self, code="-", size="-"):  # only refusals and failures are worth a line
            if str(getattr(code, "value", code)).startswith(("4", "5")):
                sys.stderr.write(f"cnnlab explore: {self.command} {self.path} -> {getattr(code, 'value', code)}\n")

        def log_message(self, format, *args):  # the standard library's signature
            sys.stderr.write(f"cnnlab explore: {format % args}\n")

    try:
        return ExploreServer((host, port), Handler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CnnlabError(f"port {port} on {host} is already in use: choose another with --port "
                              "(--port 0 picks a free one)") from None
        reason = error.strerror or type(error).__name__
        raise CnnlabError(f"cannot serve on {host}:{port} ({reason}): check --host and --port") from None


def serve(server: ExploreServer, explorer, page: str, title: str) -> None:
    """Serve `page` until Ctrl-C; prints the address first, in one line."""
    server.explorer, server.page = explorer, page.encode("utf-8")
    host = server.server_address[0]
    address = f"http://{host if ':' not in host else f'[{host}]'}:{server.server_address[1]}/"
    public = "" if host in ("127.0.0.1", "localhost", "::1") else \
        f" (reachable from other machines on {host}: there is no password)"
    print(f"cnnlab explore: {title} at {address}{public}; a local tool, not a public service. Ctrl-C stops it.",
          flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    print("cnnlab explore: stopped", flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
