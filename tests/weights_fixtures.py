"""A model zoo on 127.0.0.1 for the weights tests: a real HTTP server in a thread serving
generated files, with the failures a real one can have; and generated backbone files."""

from __future__ import annotations

import hashlib
import io
import signal
import socket
import struct
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import build_network, fresh_initializer

ZIP_TYPE = "application/zip"


@dataclass
class Route:
    """What the server answers for one path."""

    body: bytes
    content_type: str = ZIP_TYPE
    ranges: bool = True
    """Honour ``Range: bytes=N-`` with a 206; otherwise always send the whole body."""
    cut_at: int | None = None
    """Stop sending at this byte of the body although Content-Length promised it all."""
    reset: bool = False
    """After ``cut_at``, drop the connection (TCP reset) instead of closing it."""
    interrupt: bool = False
    """After ``cut_at``, press Ctrl-C (SIGINT to the main thread) and keep the connection
    open until the test ends."""
    status: int = 200


@dataclass
class ModelZooServer:
    """The running server: its ``url`` (a repository URL ending in ``/``), the ``routes`` it
    serves and the ``requests`` it saw as ``(path, Range header or None)``."""

    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    reset_when: threading.Event = field(default_factory=threading.Event)
    """A reset waits for this (set by the test once the client has read the headers)."""

    def serve(self, file_name: str, route: Route) -> str:
        """Serve ``route`` as the model zoo's ``gluon/models/FILE_NAME.zip``; its URL."""
        self.routes[f"/gluon/models/{file_name}.zip"] = route
        return f"{self.url}gluon/models/{file_name}.zip"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        zoo = self.server.zoo
        asked = self.headers.get("Range")
        zoo.requests.append((self.path, asked))
        route = zoo.routes.get(self.path)
        if route is None:
            route = Route(b"<html><body>Not Found</body></html>", "text/html", status=404)
        start = int(asked.removeprefix("bytes=").rstrip("-")) if asked and route.ranges else 0
        if start >= len(route.body) > 0:
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else route.status)
        if start:
            end = len(route.body) - 1
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(route.body)}")
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(route.body) - start))
        self.end_headers()
        stop = len(route.body) if route.cut_at is None else max(route.cut_at, start)
        self.wfile.write(route.body[start:stop])
        self.wfile.flush()
        if route.interrupt:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            zoo.reset_when.wait(60)
        if route.reset:
            zoo.reset_when.wait(30)
            # SO_LINGER 0: closing sends a reset, as a dropped connection does; closed here,
            # before the server's own shutdown would send an orderly end first.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.wfile.close()
            self.rfile.close()
            self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    zoo: ModelZooServer


@pytest.fixture
def model_zoo(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelZooServer]:
    """A model zoo at ``http://127.0.0.1:PORT/``, also set as ``$MXNET_GLUON_REPO``."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.zoo = ModelZooServer(f"http://127.0.0.1:{server.server_address[1]}/")
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    monkeypatch.setenv("MXNET_GLUON_REPO", server.zoo.url)
    try:
        yield server.zoo
    finally:
        server.zoo.reset_when.set()
        server.shutdown()
        server.server_close()
        thread.join()


def zoo_zip(member_name: str, content: bytes, *extra: tuple[str, bytes]) -> bytes:
    """A zip as the model zoo serves it: the ``.params`` stored under its name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(member_name, content)
        for name, data in extra:
            archive.writestr(name, data)
    return buffer.getvalue()


def sha1_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def save_backbone(depth: int, path: Path) -> Path:
    """A real ``resnetNN_v1`` file made by our own network (random weights, initialised as
    training initialises, from a fixed seed): ``features.*`` and ``output.*`` arrays, as the
    model zoo's files hold."""
    mx = mxnet()
    mx.random.seed(depth)  # the same file in every session: what is trained on it repeats
    net = build_network(depth, 1000, (3, 32, 32))
    net.initialize(fresh_initializer())
    net(mx.nd.zeros((1, 3, 32, 32)))
    arrays = {
        key: param.data()
        for key, param in net._collect_params_with_prefix().items()
        if key.startswith(("features.", "output."))
    }
    mx.nd.save(str(path), arrays)
    return path


@pytest.fixture(scope="session")
def resnet18_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ResNet-18 backbone file (~47 MB), made once per session."""
    return save_backbone(18, tmp_path_factory.mktemp("backbones") / "resnet18_v1.params")
