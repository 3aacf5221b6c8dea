"""Running the viz app: a listening socket, uvicorn in the foreground or in a background thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import uvicorn
from fastapi import FastAPI

from irene_core.errors import IreneError


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket, or a one-line error naming the flags."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise IreneError(f"--host {host} --port {port}: cannot listen ({exc.strerror or exc})") from None
    return sock


#: Seconds a stopping server waits for requests in progress before it cancels them.
GRACEFUL_SECONDS = 2


class _Server(uvicorn.Server):
    """uvicorn's server, saying when it has started and answers requests (:attr:`answering`)."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.answering = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.answering.set()


def _server(app: FastAPI) -> _Server:
    return _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                  timeout_graceful_shutdown=GRACEFUL_SECONDS))


def serve(app: FastAPI, sock: socket.socket, ready: futures.Future[Any] | None = None,
          on_start: Callable[[], None] | None = None,
          on_ready: Callable[[BaseException | None], None] | None = None) -> None:
    """Serve until Ctrl-C / SIGTERM (requests in progress get :data:`GRACEFUL_SECONDS`, then are cancelled).

    From another thread, ``on_start`` is called once the server answers requests, then ``on_ready`` once
    ``ready`` (the warm-up) is done too, with the warm-up's exception if it failed; neither once it stops."""
    server = _server(app)
    threading.Thread(target=_announce, args=(server, ready, on_start, on_ready), name="irene-viz-ready",
                     daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _announce(server: _Server, ready: futures.Future[Any] | None, on_start: Callable[[], None] | None,
              on_ready: Callable[[BaseException | None], None] | None) -> None:
    server.answering.wait()
    if on_start is not None and not server.should_exit:
        on_start()
    if ready is not None:
        futures.wait([ready])
    if on_ready is not None and not server.should_exit:
        on_ready(None if ready is None else ready.exception())


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` from a background thread; yields the base URL and stops the server on exit."""
    sock = listen(host, port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="irene-viz-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise IreneError(f"the viz server on {host}:{sock.getsockname()[1]} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
