"""A TCP proxy in front of the test database that a test can unplug.

Unplugged, it looks to Koe exactly like a database that went away: every open connection breaks
at once and new ones are refused, while PostgreSQL itself (and the test's own connection) stays
up. Plugged back in, connections go through again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from conftest import free_port


class DatabaseCable:
    def __init__(self, connection_params: dict[str, Any]) -> None:
        host = str(connection_params.get("host") or "127.0.0.1")
        port = int(connection_params.get("port") or 5432)
        # The embedded server listens on a Unix socket in a folder; others on host:port.
        self._unix_path = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        self._target = (host, port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.connections = 0

    def start(self) -> DatabaseCable:
        self._thread.start()
        self._call(self._listen())
        return self

    def unplug(self) -> None:
        self._call(self._unplug())

    def plug(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._unplug())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._link, "127.0.0.1", self.port, reuse_address=True
        )

    async def _unplug(self) -> None:
        if self._server is not None:
            self._server.close()  # refuse new connections
        for writer in list(self._links):
            writer.transport.abort()  # break the open ones, no goodbye
        self._links.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._unix_path is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(self._unix_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._links |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._links -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort()
