"""uvicorn inside our own event loop, so signals and shutdown order stay the composition root's.

The listening socket is bound here, before uvicorn starts, so a port already in use is one clear
:class:`~sentinel.errors.PortInUse` (the CLI prints one line and exits 2) instead of uvicorn's ``SystemExit`` from a
task nobody awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from sentinel.errors import PortInUse


class _OwnSignalsServer(uvicorn.Server):
    """uvicorn would take SIGINT/SIGTERM for itself; Sentinel stops its parts in its own order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse(host, port) from None
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class ApiServer:
    """``bind()`` first (the composition root does it before anything else, so a taken port fails fast), then
    ``start(app)``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.requested_port = port
        self.server: _OwnSignalsServer | None = None
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    def bind(self) -> None:
        if self._socket is None:
            self._socket = bind(self.host, self.requested_port)

    async def start(self, app: FastAPI) -> None:
        self.bind()
        assert self._socket is not None
        self.server = _OwnSignalsServer(
            uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", lifespan="off", log_config=None)
        )
        self._task = asyncio.create_task(self.server.serve(sockets=[self._socket]), name="http-api")
        while not self.server.started:
            if self._task.done():
                await self._task
                raise OSError("the HTTP server stopped during start-up")
            await asyncio.sleep(0.02)

    @property
    def port(self) -> int:
        if self._socket is not None:
            return int(self._socket.getsockname()[1])
        return self.requested_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
