"""Runs the REST app with uvicorn inside the gRPC server's event loop (one process, one core)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

from hashmatch.errors import ConfigError


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The hashmatch process owns SIGTERM/SIGINT (graceful drain of both faces).
        yield


class RestServer:
    def __init__(self, app: Starlette, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        config = uvicorn.Config(
            app, host=host or "127.0.0.1", port=int(port), log_level="warning", lifespan="off",
            access_log=False,
        )  # fmt: skip
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self.listen = listen

    async def start(self) -> int:
        self._task = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                raise ConfigError(f"cannot serve REST on {self.listen}")
            await asyncio.sleep(0.01)
        sock = self._server.servers[0].sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, SystemExit):
                await self._task
